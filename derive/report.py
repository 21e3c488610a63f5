"""A derivation as a report: plain text, LaTeX or a JSON-ready dict.

Everything is printed through :class:`~backprop.derive.printing.NotationPrinter`; nothing
here builds a formula, it only lays out what :mod:`derivation` and :mod:`vectorised` made.
"""
from __future__ import annotations

import sympy

from . import notation as nt
from .budget import MAX_EXPANDED_TERMS, check_per_parameter, expanded_terms
from .derivation import Derivation, Gradient
from .losses import PREDICTION, TARGET
from .vectorised import VectorisedForm

FORMS = ("chain", "memoised", "formula", "expanded")
#: Up to this many outputs L is printed term by term; past it, as Σ_j of the loss table's
#: per-output term (printing a 100 000-term sum cost minutes and said nothing more).
MAX_SPELLED_OUTPUTS = 10


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
        return rf"\frac{{\partial {printer.latex(num)}}}{{\partial {printer.latex(den)}}}"
    return f"∂{printer.text(num)}/∂{printer.text(den)}"


def chain_text(g: Gradient, tex: bool = False) -> str:
    """∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11 = [-2(y - ŷ)] · [w^2_11] · [x_i1]."""
    p = g.derivation.printer
    show = p.latex if tex else p.text
    dot = r" \cdot " if tex else " · "
    paths = g.chain
    names = (" + " if len(paths) > 1 else "").join(dot.join(_frac(f.numerator, f.denominator, p, tex)
                                                            for f in path) for path in paths)
    lb, rb = (r"\left[", r"\right]") if tex else ("[", "]")
    values = " + ".join(dot.join(f"{lb}{show(f.value)}{rb}" for f in path) for path in paths)
    return f"{names} = {values}"


def _expanded_ok(g: Gradient) -> bool:
    return expanded_terms(g.derivation.spec, g.layer) <= MAX_EXPANDED_TERMS


def gradient_dict(g: Gradient, forms=FORMS) -> dict:
    p = g.derivation.printer
    name, index = g.key
    out = {"parameter": g.name, "latex": p.latex(g.parameter), "matrix": name, "index": list(index),
           "layer": g.layer}
    for form in forms:
        if form == "chain":
            out["chain"] = {
                "text": chain_text(g), "latex": chain_text(g, tex=True),
                "paths": [[{"of": p.text(f.numerator), "wrt": p.text(f.denominator),
                            "value": p.text(f.value), "value_latex": p.latex(f.value)} for f in path]
                          for path in g.chain],
            }
        elif form == "expanded" and not _expanded_ok(g):
            out["expanded"] = None
        else:
            expr = getattr(g, form)
            out[form] = {"text": p.text(expr), "latex": p.latex(expr)}
    return out


def delta_lines(d: Derivation, tex: bool = False) -> list[tuple[str, str]]:
    """(δ_kj, its memo definition), output layer first; hidden ones with ∂L/∂O_kj."""
    p = d.printer
    show = p.latex if tex else p.text
    rows = []
    for sym, definition in d.deltas.items():
        k, j = nt.parse(sym).indices
        rhs = show(definition)
        if k < d.net.depth:
            rhs += (r",\quad " if tex else ",   ") + \
                f"{show(nt.grad_output(k, j))} = {show(d.grad_output_definition(k, j))}"
        rows.append((show(sym), rhs))
    return rows


def as_dict(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> dict:
    p = d.printer
    spec = d.spec
    out = {
        "spec": {"layers": list(spec.layers), "activations": list(spec.activations),
                 "loss": spec.loss, "bias": spec.bias},
        "n_parameters": spec.n_parameters,
        "loss": {"text": loss_line(d), "latex": loss_line(d, tex=True)},
        "warnings": list(d.warnings),
    }
    if per_parameter:
        check_per_parameter(spec)
        out["deltas"] = [{"text": f"{a} = {b}", "latex": f"{c} = {e}"}
                         for (a, b), (c, e) in zip(delta_lines(d), delta_lines(d, tex=True))]
        out["gradients"] = [gradient_dict(g) for g in d.gradients()]
    if vectorised is not None:
        out["vectorised"] = [{"lhs": l, "rhs": r, "latex": f"{lt} = {rt}"}
                             for (l, r), (lt, rt) in zip(vectorised.equations("text"),
                                                          vectorised.equations("latex"))]
    return out


def as_text(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    p = d.printer
    spec = d.spec
    lines = [f"{spec.describe()}: {spec.n_parameters} parameters",
             f"L = {loss_line(d)}   (one row; over a batch, the mean over rows)", ""]
    lines += [f"warning: {w}" for w in d.warnings]
    if per_parameter:
        check_per_parameter(spec)
        lines.append("Forward pass")
        for k in range(1, d.net.depth + 1):
            for j in range(1, spec.layers[k] + 1):
                lines.append(f"  {p.text(d.net.O(k, j))} = {p.text(d.net.definition(k, j))}")
        lines += ["", "Memoised deltas δ_kj = ∂L/∂z_kj, each computed once from the layer after it"]
        lines += [f"  {lhs} = {rhs}" for lhs, rhs in delta_lines(d)]
        lines += ["", "Gradients, in backprop order"]
        for g in d.gradients():
            lines.append(f"∂L/∂{g.name}")
            lines.append(f"  chain     {chain_text(g)}")
            lines.append(f"  memoised  {p.text(g.memoised)}")
            lines.append(f"  formula   {p.text(g.formula)}")
            lines.append(f"  expanded  {p.text(g.expanded) if _expanded_ok(g) else '(too large to show)'}")
        lines.append("")
    if vectorised is not None:
        lines.append("Vectorised form (n rows; ⊙ element-wise)")
        lines += [f"  {lhs} = {rhs}" for lhs, rhs in vectorised.equations("text")]
    return "\n".join(lines).rstrip() + "\n"


def as_latex(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    p = d.printer
    spec = d.spec
    out = [f"% backprop derive: {spec.describe()}", r"\begin{align*}",
           f"L &= {loss_line(d, tex=True)} \\\\"]
    if per_parameter:
        check_per_parameter(spec)
        out += [f"{lhs} &= {rhs} \\\\" for lhs, rhs in delta_lines(d, tex=True)]
        for g in d.gradients():
            lhs = rf"\frac{{\partial L}}{{\partial {p.latex(g.parameter)}}}"
            out.append(f"{lhs} &= {chain_text(g, tex=True)} \\\\")
            out.append(f"&= {p.latex(g.formula)} \\\\")
    if vectorised is not None:
        out += [f"{lhs} &= {rhs} \\\\" for lhs, rhs in vectorised.equations("latex")]
    out[-1] = out[-1].rstrip(" \\")
    out.append(r"\end{align*}")
    return "\n".join(out) + "\n"
