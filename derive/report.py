"""A derivation as a report: plain text, LaTeX, one JSON document or JSON lines, streamed.

Everything is printed through :class:`~backprop.derive.printing.NotationPrinter`; nothing
here builds a formula, it only lays out what :mod:`derivation` and :mod:`vectorised` made.
Each ``*_stream`` function yields the report in chunks, one per gradient, as the gradients
are derived, so output starts at once and memory stays flat in the number of parameters.
Every form of every parameter is printed when its own estimated size fits
(:func:`~backprop.derive.budget.form_terms`) and replaced by one line when it does not.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import sympy

from . import notation as nt
from .budget import (MAX_ASKED_TERMS, MAX_SHOWN_TERMS, VECTORISED_HINT, approx,
                     check_parameter_count, form_terms)
from .derivation import Derivation, Gradient
from .errors import UserError
from .losses import PREDICTION, TARGET
from .vectorised import VectorisedForm

FORMS = ("chain", "memoised", "formula", "expanded")
#: Up to this many outputs L is printed term by term; past it, as Σ_j of the loss table's
#: per-output term (printing a 100 000-term sum cost minutes and said nothing more).
MAX_SPELLED_OUTPUTS = 10
#: Forms shown when --forms is not given, by format: LaTeX leaves the expanded form to be
#: asked for (a page of nested sums reads worse than the formula, and verify does not yet
#: read SymPy's ``\tanh^{2}{(...)}`` back).
DEFAULT_FORMS = {"latex": ("chain", "memoised", "formula")}


@dataclass(frozen=True)
class Forms:
    """Which forms to print (in :data:`FORMS` order) and which were asked for by name: those
    are printed past the default size, up to a hard cap."""

    shown: tuple[str, ...] = FORMS
    asked: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str | None, default: tuple[str, ...] = FORMS) -> "Forms":
        """``"chain,formula"`` -> those two, asked for; None -> ``default``, by the size rule."""
        if text is None:
            return cls(default)
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in FORMS]
        if unknown or not names:
            raise UserError(f"unknown form {(unknown or [text])[0]!r} in --forms; "
                            f"forms: {', '.join(FORMS)} (comma-separated, e.g. --forms chain,formula)")
        return cls(tuple(f for f in FORMS if f in names), frozenset(names))


def omitted(g: Gradient, form: str, forms: Forms) -> str | None:
    """None when ``form`` of ``g`` is printed; else the one line that stands in for it,
    decided from this parameter's own estimated size (the form is never built to measure)."""
    if form == "memoised":
        return None
    terms = form_terms(g.derivation.spec, g.layer, form)
    if terms <= MAX_SHOWN_TERMS or (form in forms.asked and terms <= MAX_ASKED_TERMS):
        return None
    if form in forms.asked:
        return (f"{form} form: about {approx(terms)} terms, over the {MAX_ASKED_TERMS:,}-term limit "
                f"per parameter even when asked for; not printed ({VECTORISED_HINT})")
    return f"{form} form: about {approx(terms)} terms, not printed; ask for it with --forms {form}"


@lru_cache(maxsize=8192)
def _show(printer, expr, tex: bool) -> str:
    """One expression printed, remembered: chain factors and symbols recur across parameters."""
    return printer.latex(expr) if tex else printer.text(expr)


def loss_line(d: Derivation, tex: bool = False) -> str:
    """The right-hand side of ``L = ...`` for one row, in text or LaTeX."""
    p = d.printer
    n = d.spec.n_outputs
    if n <= MAX_SPELLED_OUTPUTS:
        return p.latex(d.net.loss) if tex else p.text(d.net.loss)
    term = d.loss.per_output(n).xreplace({
        TARGET: sympy.Symbol("y_j", real=True),
        PREDICTION: sympy.Symbol("yhat_j" if tex else "ŷ_j", real=True)})
    if tex:
        return rf"\sum_{{j=1}}^{{{n}}} {p.latex(term)}"
    return f"Σ_{{j=1..{n}}} {p.text(term)}"


def _frac(num, den, printer, tex: bool) -> str:
    if tex:
        return rf"\frac{{\partial {_show(printer, num, True)}}}{{\partial {_show(printer, den, True)}}}"
    return f"∂{_show(printer, num, False)}/∂{_show(printer, den, False)}"


def chain_text(g: Gradient, tex: bool = False) -> str:
    """∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11 = [-2(y - ŷ)] · [w^2_11] · [x_i1]."""
    p = g.derivation.printer
    dot = r" \cdot " if tex else " · "
    paths = g.chain
    names = (" + " if len(paths) > 1 else "").join(dot.join(_frac(f.numerator, f.denominator, p, tex)
                                                            for f in path) for path in paths)
    lb, rb = (r"\left[", r"\right]") if tex else ("[", "]")
    values = " + ".join(dot.join(f"{lb}{_show(p, f.value, tex)}{rb}" for f in path) for path in paths)
    return f"{names} = {values}"


def memoised_text(g: Gradient, tex: bool = False) -> str:
    """δ_kj O_{k-1,i} (δ_kj for a bias): the memoised product, its two symbols printed by the
    notation printer in its reading order (memo symbol, then the layer below); the tests
    check it equals printing the product whole, which costs ~20× more per parameter."""
    p = g.derivation.printer
    parts = [nt.delta(g.layer, g.node)] + ([] if g.source is None else [g.local])
    return " ".join(_show(p, s, tex) for s in parts)


def form_text(g: Gradient, form: str, tex: bool = False) -> str:
    """One form of one gradient, printed."""
    if form == "chain":
        return chain_text(g, tex)
    if form == "memoised":
        return memoised_text(g, tex)
    p = g.derivation.printer
    expr = getattr(g, form)
    return p.latex(expr) if tex else p.text(expr)


def gradient_dict(g: Gradient, forms: Forms = Forms()) -> dict:
    """One gradient as JSON: its name and place, then each form's text and LaTeX, or
    ``{"omitted": why, "terms": estimate}`` for a form too large to print."""
    p = g.derivation.printer
    name, index = g.key
    out = {"parameter": g.name, "latex": _show(p, g.parameter, True), "matrix": name,
           "index": list(index), "layer": g.layer}
    for form in forms.shown:
        note = omitted(g, form, forms)
        if note:
            out[form] = {"omitted": note, "terms": form_terms(g.derivation.spec, g.layer, form)}
            continue
        out[form] = {"text": form_text(g, form), "latex": form_text(g, form, tex=True)}
        if form == "chain":
            out[form]["paths"] = [[{"of": _show(p, f.numerator, False), "wrt": _show(p, f.denominator, False),
                                    "value": _show(p, f.value, False), "value_latex": _show(p, f.value, True)}
                                   for f in path] for path in g.chain]
    return out


def delta_lines(d: Derivation, tex: bool = False) -> Iterator[tuple[str, str]]:
    """(δ_kj, its memo definition), output layer first; hidden ones with ∂L/∂O_kj."""
    for row in _delta_rows(d, (tex,)):
        yield row[0]


def _delta_rows(d: Derivation, styles: tuple[bool, ...]) -> Iterator[list[tuple[str, str]]]:
    """Each δ row in every style asked for (text False, LaTeX True), each definition built once."""
    p = d.printer
    for sym, definition in d.deltas.items():
        k, j = nt.parse(sym).indices
        grad = d.grad_output_definition(k, j) if k < d.net.depth else None
        row = []
        for tex in styles:
            show = p.latex if tex else p.text
            rhs = show(definition)
            if grad is not None:
                rhs += (r",\quad " if tex else ",   ") + f"{show(nt.grad_output(k, j))} = {show(grad)}"
            row.append((show(sym), rhs))
        yield row


def each_gradient(d: Derivation) -> Iterator[Gradient]:
    """Every gradient in backprop order, made one at a time (none kept alive here)."""
    gradients = d.gradients
    return iter(gradients() if callable(gradients) else gradients)


def _header(d: Derivation, vectorised: VectorisedForm | None, forms: Forms, count: int | None) -> dict:
    spec = d.spec
    out = {
        "spec": {"layers": list(spec.layers), "activations": list(spec.activations),
                 "loss": spec.loss, "bias": spec.bias},
        "n_parameters": spec.n_parameters,
        "loss": {"text": loss_line(d), "latex": loss_line(d, tex=True)},
        "warnings": list(d.warnings),
        "assumptions": list(d.assumptions),
    }
    if count is not None:
        out["forms"] = list(forms.shown)
        out["n_gradients"] = count
    if vectorised is not None:
        out["vectorised"] = [{"lhs": l, "rhs": r, "latex": f"{lt} = {rt}"}
                             for (l, r), (lt, rt) in zip(vectorised.equations("text"),
                                                          vectorised.equations("latex"))]
    return out


def _deltas(d: Derivation) -> Iterator[dict]:
    for (a, b), (c, e) in _delta_rows(d, (False, True)):
        yield {"text": f"{a} = {b}", "latex": f"{c} = {e}"}


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def json_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """One JSON document, built incrementally: the header (spec, loss, δ table) indented,
    then one gradient object per line inside ``"gradients": [...]``, then the tail."""
    head = _header(d, vectorised, forms, count if gradients is not None else None)
    if gradients is None:
        yield json.dumps(head, indent=2, ensure_ascii=False) + "\n"
        return
    head["deltas"] = list(_deltas(d))
    yield json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ',\n  "gradients": ['
    sep = "\n    "
    for g in gradients:
        yield sep + _dump(gradient_dict(g, forms))
        sep = ",\n    "
    yield "\n  ]\n}\n"


def jsonl_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                 vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """JSON lines: a header object, one object per δ and per gradient, then an end object
    (so a reader can tell a complete stream from an interrupted one)."""
    yield _dump({"type": "header", **_header(d, vectorised, forms,
                                              count if gradients is not None else None)}) + "\n"
    if gradients is None:
        return
    for delta in _deltas(d):
        yield _dump({"type": "delta", **delta}) + "\n"
    n = 0
    for g in gradients:
        n += 1
        yield _dump({"type": "gradient", **gradient_dict(g, forms)}) + "\n"
    yield _dump({"type": "end", "n_gradients": n}) + "\n"


def gradient_text(g: Gradient, forms: Forms = Forms()) -> str:
    """∂L/∂w^1_11 and one line per form (or the line saying why a form is not printed)."""
    lines = [f"∂L/∂{g.name}"]
    for form in forms.shown:
        note = omitted(g, form, forms)
        lines.append(f"  {form:<9} {f'[{note}]' if note else form_text(g, form)}")
    return "\n".join(lines) + "\n"


def text_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """The plain-text report: header, forward pass, δ table, then one block per gradient."""
    p = d.printer
    spec = d.spec
    head = [f"{spec.describe()}: {spec.n_parameters} parameters",
            f"L = {loss_line(d)}   (one row; over a batch, the mean over rows)",
            *[f"assuming {a}" for a in d.assumptions], ""]
    head += [f"warning: {w}" for w in d.warnings]
    yield "\n".join(head) + "\n"
    if gradients is not None:
        lines = ["Forward pass"]
        for k in range(1, d.net.depth + 1):
            for j in range(1, spec.layers[k] + 1):
                lines.append(f"  {p.text(d.net.O(k, j))} = {p.text(d.net.definition(k, j))}")
        lines += ["", "Memoised deltas δ_kj = ∂L/∂z_kj, each computed once from the layer after it"]
        yield "\n".join(lines) + "\n"
        yield "".join(f"  {lhs} = {rhs}\n" for lhs, rhs in delta_lines(d))
        order = "" if count not in (None, spec.n_parameters) else ", in backprop order"
        yield f"\nGradients{order}\n"
        for g in gradients:
            yield gradient_text(g, forms)
    if vectorised is not None:
        yield "\n" if gradients is not None else ""
        yield "Vectorised form (n rows; ⊙ element-wise)\n"
        yield "".join(f"  {lhs} = {rhs}\n" for lhs, rhs in vectorised.equations("text"))


def _aligned(lhs: str, rhs: str) -> list[str]:
    """align* rows for ``lhs &= rhs`` without their line breaks: broken across lines by
    :func:`backprop.derive.teaching.aligned_rows` where that module exists, else one row."""
    try:
        from .teaching import aligned_rows
    except ImportError:
        return [f"{lhs} &= {rhs}".lstrip()]
    return [row.rstrip().removesuffix(r"\\").rstrip() for row in aligned_rows(lhs, rhs)]


class _Rows:
    """align* rows joined by ``\\\\`` with none after the last (a trailing break adds an empty
    line); comments wait with the row before them, since a comment would swallow its break."""

    def __init__(self):
        self._pending: list[str] = []

    def add(self, row: str) -> str:
        out = self.flush(r" \\")
        self._pending = [row]
        return out

    def comment(self, text: str) -> None:
        self._pending.append(f"% {text}")

    def flush(self, end: str = "") -> str:
        if not self._pending:
            return ""
        row, *comments = self._pending
        self._pending = []
        return row + end + "\n" + "".join(c + "\n" for c in comments)


def latex_stream(d: Derivation, gradients: Iterable[Gradient] | None,
                 forms: Forms = Forms(DEFAULT_FORMS["latex"]),
                 vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """One align* environment: L, the δ table, then each gradient's forms as ``&=`` rows (a
    form too large to print becomes a ``%`` comment saying so)."""
    p = d.printer
    rows = _Rows()
    yield f"% backprop derive: {d.spec.describe()}\n" + "\\begin{align*}\n"
    yield "".join(rows.add(r) for r in _aligned("L", loss_line(d, tex=True)))
    if gradients is not None:
        yield "".join(rows.add(f"{lhs} &= {rhs}") for lhs, rhs in delta_lines(d, tex=True))
        for g in gradients:
            lhs = rf"\frac{{\partial L}}{{\partial {_show(p, g.parameter, True)}}}"
            out = []
            for form in forms.shown:
                note = omitted(g, form, forms)
                if note:
                    rows.comment(f"{g.name}: {note}")
                    continue
                out += [rows.add(r) for r in _aligned(lhs, form_text(g, form, tex=True))]
                lhs = ""
            yield "".join(out)
    if vectorised is not None:
        yield "".join(rows.add(f"{lhs} &= {rhs}") for lhs, rhs in vectorised.equations("latex"))
    yield rows.flush() + "\\end{align*}\n"


#: --format -> the stream that writes it.
STREAMS = {"text": text_stream, "latex": latex_stream, "json": json_stream, "jsonl": jsonl_stream}


def _whole(stream, d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    if per_parameter:
        check_parameter_count(d.spec, VECTORISED_HINT)
    forms = Forms(DEFAULT_FORMS.get(stream.__name__.removesuffix("_stream"), FORMS))
    return "".join(stream(d, each_gradient(d) if per_parameter else None, forms, vectorised,
                          d.spec.n_parameters))


def as_text(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    """The whole text report as one string (the CLI streams it instead)."""
    return _whole(text_stream, d, vectorised, per_parameter)


def as_latex(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    """The whole LaTeX report as one string (the CLI streams it instead)."""
    return _whole(latex_stream, d, vectorised, per_parameter)


def as_dict(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> dict:
    """The JSON report as a dict (for library callers; the CLI streams it)."""
    return json.loads(_whole(json_stream, d, vectorised, per_parameter))
