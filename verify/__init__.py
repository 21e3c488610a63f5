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

Verdicts are described in :mod:`backprop.verify.checker`; exit codes in
:mod:`backprop.verify.report`.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from backprop.derive import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec

from .checker import Checker, Verdict
from .latex_input import InputError, parse_spec_directive, split_document
from .report import FileReport, Report

NOTES = ("note1_what_is_backprop.tex", "note2_deep_learning_mlp.tex", "note3_delta_rule.tex")


def notes_path(name: str) -> Path:
    """Path of a bundled transcription (``note1_what_is_backprop.tex``)."""
    return Path(str(resources.files("backprop.verify") / "notes" / name))


def check_document(text: str, name: str = "<input>", spec: Spec | None = None) -> FileReport:
    """Verdicts for every equation of ``text`` (a file's contents or one equation)."""
    try:
        doc = split_document(text)
    except InputError as exc:
        raise UserError(f"{name}: {exc.message}") from None
    if not doc.equations:
        raise UserError(f"{name}: no equation found (one per line, or $...$ / $$...$$)")
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
        return checkers[key]

    verdicts = []
    for eq in doc.equations:
        c = checker_for(eq)
        v = c.check(eq)
        v.spec = c.spec.describe()
        verdicts.append(v)
    first = checker_for(doc.equations[0]).spec
    return FileReport(name, first, verdicts)


def verify_text(text: str, spec: Spec | None = None, name: str = "<input>") -> Report:
    return Report([check_document(text, name, spec)])


def verify_file(path: str | Path, spec: Spec | None = None) -> Report:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; give a .tex file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return Report([check_document(text, str(path), spec)])


__all__ = ["Checker", "FileReport", "NOTES", "Report", "Verdict", "check_document", "notes_path",
           "verify_file", "verify_text"]
