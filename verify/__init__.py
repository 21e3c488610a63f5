r"""Verify hand derivations: right, or wrong with the correct formula and a counterexample.

    >>> from backprop.verify import verify_text
    >>> r = verify_text(r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{12}")
    >>> r.verdicts[0].verdict, r.verdicts[0].expected_latex
    ('wrong', '- 2 \\left(y - \\hat{y}\\right) O_{11}')

Input
-----
LaTeX as people type it (see :mod:`backprop.verify.latex_input`): one equation per line,
``$...$`` inline maths or ``$$...$$`` blocks (aligned blocks join into one chain).  Lines that
start with ``%`` are comments, except these directives:

``% spec: layers=2-2-1 activations=linear loss=se [bias=false]``
    the network the equations below it are checked against, until the next ``% spec:``
    (command-line flags win over every one; without either, the notes' 2-2-1 linear
    network with loss (y - ŷ)²).  A new ``% spec:`` also ends a ``% at:`` context.
``% where: <text>``
    a label for the next equation (shown in reports: "note 2, ④").
``% at: x_1=80 x_2=8 y=5 w=1 b=0 [yhat=17] [O_11=3]``
    numeric claims from here on (until ``% at: off``): every segment is evaluated at this
    point (``w=1`` sets every weight, ``b=0`` every bias; node outputs come from a forward
    pass unless given, so ``yhat=17`` states the notes' "suppose we got 17").  ``=`` is
    exact; ``\approx`` allows rounding to the digits written, so ``(1.8-5)^2 = 10.2`` is
    wrong (10.24) and ``(1.8-5)^2 \approx 10.2`` is right.
``% count: [LAYERS] [per-layer|total|weights|biases]``
    the next equation is a parameter count: ``20 + 15 + 8 + 3 = 46`` with LAYERS 5-4-3-2-1
    is checked term by term against (weights + biases) per layer, so it is wrong (24 + 15 +
    8 + 3 = 50); ``total``/``weights``/``biases`` check a single number (``9``, ``6``, ``3``).
``% mode: delta`` / ``% mode: matrix``
    the next equation uses the delta-rule syntax (:mod:`backprop.verify.delta_rule`) or the
    matrix syntax (:mod:`backprop.verify.matrix_form`); lines with ``\leftarrow``,
    ``\Delta``, ``\triangle`` or ``Err_`` (delta rule) and with ``W^k``, ``O^k``, ``\delta^k``,
    ``\odot`` or ``^\top`` (matrix) are recognised without it.
``% vectors: column`` (or ``row``, the default)
    how vectors are laid out in matrix equations from here on (the notes write σ(W^T x + b)
    with columns; ``backprop derive --vectorised`` prints rows).

Notation: ``check_document(..., notation="nielsen")`` (``--notation``) reads another book's
symbols (:mod:`backprop.verify.notations`); a line that cannot be read in the chosen notation
but reads in another says which.  ``explain=True`` (``--explain``) gives each verdict a
``read_as``: the equation as it was read, printed back in the notes' notation.

Verdicts are described in :mod:`backprop.verify.checker` (the type is in
:mod:`backprop.verify.verdict`); exit codes in :mod:`backprop.verify.report`.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from backprop.derive import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec
from backprop.core.userfile import read_text

import sympy

from . import notations
from . import steps
from .checker import MAX_EQUATION_CHARS, Checker
from .latex_input import (BAD_INPUT, LOSS, Derivative, InputError, NotationPass, Text, alias_name,
                          clean_layout, parse_spec_directive, remarks_of, split_document)
from .matrix_form import looks_like_matrix_form
from .notations import DEFAULT, NOTATIONS
from .report import FileReport, Report
from .verdict import Verdict

NOTES = ("note1_what_is_backprop.tex", "note2_deep_learning_mlp.tex", "note3_delta_rule.tex")


def notes_path(name: str) -> Path:
    """Path of a bundled transcription (``note1_what_is_backprop.tex``)."""
    return Path(str(resources.files("backprop.verify") / "notes" / name))


#: A LaTeX input is small by nature (the three notes together are 12 kB): larger inputs are
#: refused before reading them whole, and so are more equations than a person checks at once.
MAX_TEX_BYTES = 500_000
MAX_EQUATIONS = 2000
TOO_BIG = "a derivation file is a few kB: split it into several files"


def read_tex(path: str | Path) -> str:
    """A .tex file's text, refused (one line) if it is a device, a pipe or over MAX_TEX_BYTES."""
    return read_text(path, "LaTeX file", MAX_TEX_BYTES, TOO_BIG)


def check_document(text: str, name: str = "<input>", spec: Spec | None = None, notation: str = DEFAULT,
                   explain: bool = False, progress=None) -> FileReport:
    """Verdicts for every equation of ``text`` (a file's contents or one equation), read in
    ``notation`` (a key of :data:`~backprop.verify.notations.NOTATIONS`); with ``explain``
    each verdict also gets ``read_as``, the equation as it was read, in the notes' notation.
    ``progress(done, total)``, if given, is called after each equation (the CLI's counter)."""
    try:
        profile = notations.get(notation)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        doc = split_document(text)
    except InputError as exc:
        raise UserError(f"{name}: {exc.message}") from None
    if not doc.equations:
        raise UserError(f"{name}: no equation found (one per line, or $...$ / $$...$$)")
    if len(doc.equations) > MAX_EQUATIONS:
        raise UserError(f"{name} has {len(doc.equations):,} equations, more than {MAX_EQUATIONS:,} checked "
                        "in one run; split it into several files")
    checkers: dict = {}

    def checker_for(eq) -> Checker:
        key = None if spec is not None else eq.spec_text
        if key not in checkers:
            if spec is not None:
                checkers[key] = Checker(spec)
            elif key:
                try:
                    checkers[key] = Checker(parse_spec_directive(key))
                except UserError as exc:
                    raise UserError(f"{name}, line {eq.line}: {exc}") from None
            else:
                checkers[key] = Checker(Spec(**NOTES_2_2_1))
            checkers[key].reader.notation = profile
        return checkers[key]

    verdicts = []
    for eq in doc.equations:
        c = checker_for(eq)
        v = _check(c, eq)
        v.spec = c.spec.describe()
        if v.verdict == "error":
            _hint_other_notation(c, eq, v)
        elif v.verdict == "correct":
            dropped = remarks_of(eq.source)
            if dropped:
                note = "the remark " + ", ".join(f"'{r}'" for r in dropped) + " was dropped"
                v.message = f"{v.message}; {note}" if v.message else f"note: {note}"
        if explain:
            v.read_as = read_as(c, eq)
        verdicts.append(v)
        if progress is not None:
            progress(len(verdicts), len(doc.equations))
    steps.annotate(doc.equations, verdicts, checker_for)  # multi-line derivations: first wrong step
    first = checker_for(doc.equations[0]).spec
    return FileReport(name, first, verdicts)


def _check(c: Checker, eq) -> Verdict:
    """One verdict in the reader's notation: in another book's, a^l_j, \\delta^l_j name one
    node (scalar), not the notes' matrices, unless the rewritten line is in the matrix syntax."""
    mode = eq.mode
    if c.reader.notation.key != DEFAULT and not mode and not _matrix_in_notes(c, eq):
        eq.mode = "scalar"
    try:
        return c.check(eq)
    finally:
        eq.mode = mode


def _matrix_in_notes(c: Checker, eq) -> bool:
    """Whether an equation, its names rewritten into the notes' by the chosen profile, is in the
    matrix syntax (the profiles' superscript layers look like the notes' matrices)."""
    try:
        return looks_like_matrix_form(c.reader.prepare(clean_layout(Text.of(eq.source))).s)
    except BAD_INPUT:  # unreadable here: the scalar reader says why
        return False


def _hint_other_notation(c: Checker, eq, v) -> None:
    """An equation that cannot be read in the chosen notation but reads in another: say which."""
    if len(eq.source) > MAX_EQUATION_CHARS:
        return  # refused for its size in every notation
    chosen = c.reader.notation
    mine = NotationPass(c.spec, chosen).stems_in(eq.source) | {"y"}  # y is every book's
    try:
        for other in NOTATIONS.values():
            if other is chosen or not NotationPass(c.spec, other).stems_in(eq.source) - mine:
                continue  # nothing in the line is that book's own
            c.reader.notation = other
            if _check(c, eq).verdict != "error":
                v.message += f"; this reads as {other.title}: try {other.flag}"
                return
    finally:
        c.reader.notation = chosen


def read_as(c: Checker, eq) -> str:
    """The equation as it was read, each segment printed back in the notes' notation."""
    try:
        rels, exprs, aliases, _ = c.parse(eq.source)
    except BAD_INPUT:  # the verdict says why it cannot be read
        return ""
    parts = []
    for rel, expr in zip(rels, exprs):
        shown, names = {}, {}
        for sym in expr.free_symbols:
            obj = aliases.table.get(sym.name)
            if obj is LOSS:
                names[sym] = "L"
            elif isinstance(obj, Derivative):
                if obj.num is not None:
                    names[sym] = c.frac(obj.num, obj.den)
                else:
                    names[sym] = rf"\frac{{\partial}}{{\partial {c.latex(obj.den)}}}\left({c.latex(obj.expr)}\right)"
        for k, (sym, text) in enumerate(sorted(names.items(), key=lambda kv: kv[0].name)):
            placeholder = sympy.Symbol(alias_name(k, "qqph"))
            shown[sym] = placeholder
            names[sym] = (placeholder.name, text)
        try:
            latex = c.latex(expr.xreplace(shown))
        except RecursionError:  # too deep to print: SymPy's own form
            latex = str(expr)
        for sym, (ph, text) in names.items():
            latex = latex.replace(ph, text)
        parts.append(f"{rel} {latex}" if rel else latex)
    return " ".join(parts)


def verify_text(text: str, spec: Spec | None = None, name: str = "<input>", notation: str = DEFAULT,
                explain: bool = False) -> Report:
    r"""Check every equation of a LaTeX text against the derivation of its network.

    Parameters
    ----------
    text : str
        One equation, or a document (see the module's docstring for ``% spec:`` and the other
        directives).
    spec : Spec, optional
        The network; wins over ``% spec:`` lines.  Default: the notes' 2-2-1 linear network
        with loss (y - ŷ)².
    name : str
        What error messages call the text.
    notation : str
        Whose symbols the text uses, a key of :data:`NOTATIONS` (default the notes').
    explain : bool
        Give each verdict ``read_as``: the equation as it was read, in the notes' notation.

    Returns
    -------
    Report
        ``.verdicts`` (one :class:`Verdict` per claim: ``verdict`` is "correct", "wrong",
        ...; a wrong one carries ``expected``/``expected_latex`` and a counterexample) and
        ``.exit_code`` (0 when every claim is correct).

    Raises
    ------
    UserError
        The text has no equation, cannot be read, or names an unknown notation.

    Examples
    --------
    >>> r = verify_text(r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}")
    >>> r.verdicts[0].verdict, r.exit_code
    ('correct', 0)
    """
    return Report([check_document(text, name, spec, notation, explain)])


def verify_file(path: str | Path, spec: Spec | None = None, notation: str = DEFAULT) -> Report:
    return Report([check_document(read_tex(path), str(path), spec, notation)])


__all__ = ["Checker", "FileReport", "NOTATIONS", "NOTES", "Report", "Verdict", "check_document", "notes_path",
           "read_as", "read_tex", "verify_file", "verify_text"]
