"""The vectorised (matrix) form of backprop, one block per layer, for a batch of n rows:

    Z^k = O^{k-1} W^k + b^k,     O^k = g_k(Z^k),       O^0 = X
    δ^L = (1/n) ∂L/∂Ŷ ⊙ g_L'      (softmax + cce: (1/n)(Ŷ - Y); softmax elsewhere: its JVP)
    δ^k = (δ^{k+1} W^{k+1 T}) ⊙ g_k'(O^k)
    ∂L/∂W^k = O^{k-1 T} δ^k,     ∂L/∂b^k = Σ_rows δ^k

The element-wise pieces (g' through the output, ∂L/∂ŷ, the fused output δ) are scalar SymPy
expressions taken from the derivation, never typed in; code generation prints them.  The
cost is O(layers): nothing here depends on the widths.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy

from . import notation as nt
from .activations import ACTIVATIONS, a, derivative, z
from .derivation import Derivation
from backprop.core.errors import UserTypeError
from .losses import LOSSES
from .spec import Spec

#: Scalar stand-ins for one element of Y and Ŷ in the element-wise expressions.
y = sympy.Symbol("y", real=True)
yhat = sympy.Symbol("yhat", real=True)


@dataclass(frozen=True)
class LayerForm:
    """Layer k's element-wise pieces: g (stable form, in z) and g' (in ``var``: a or z)."""

    k: int
    activation: str
    forward: sympy.Expr | None  # None for softmax (row-wise, not element-wise)
    derivative: sympy.Expr | None
    var: sympy.Symbol | None


@dataclass(frozen=True)
class OutputForm:
    """The output layer's δ: ``delta`` element-wise in y, ŷ (and z), before the 1/n of the
    batch mean; ``softmax_jvp`` when δ needs the softmax Jacobian-vector product of
    ``dL_dyhat`` (softmax with a loss other than cce)."""

    dL_dyhat: sympy.Expr
    delta: sympy.Expr | None
    softmax_jvp: bool
    loss_term: sympy.Expr
    mean_over_outputs: bool


class VectorisedForm:
    """The matrix form of one derivation: per-layer pieces plus printable equations."""

    def __init__(self, derivation: Derivation):
        self.derivation = derivation
        self.spec = derivation.spec

    def __repr__(self) -> str:
        return f"VectorisedForm({self.spec.describe()})"

    @cached_property
    def layers(self) -> list[LayerForm]:
        forms = []
        for k, name in enumerate(self.spec.activations, start=1):
            act = ACTIVATIONS[name]
            if act.elementwise:
                d, var = derivative(name)
                forms.append(LayerForm(k, name, (act.stable or act.sym)(z), d, var))
            else:
                forms.append(LayerForm(k, name, None, None, None))
        return forms

    @cached_property
    def output(self) -> OutputForm:
        d = self.derivation
        L = d.net.depth
        loss = LOSSES[self.spec.loss]
        scalar = {nt.target(1): y, nt.prediction(1): yhat, nt.preactivation(L, 1): z}
        dL = d.dL_dyhat[0].xreplace(scalar)
        out_act = ACTIVATIONS[self.spec.activations[-1]]
        fused = out_act.elementwise or loss.one_hot
        delta = d._output_delta(1).xreplace(scalar) if fused else None
        term = loss.term(y, yhat)
        return OutputForm(dL, delta, not fused, term, loss.mean_over_outputs)

    # -- printing ---------------------------------------------------------------------------
    def equations(self, style: str = "text") -> list[tuple[str, str]]:
        """[(left side, right side)] for every step, in ``style`` 'text' or 'latex'."""
        tex = style == "latex"
        p = self.derivation.printer
        show = p.latex if tex else p.text
        L = self.derivation.net.depth

        def M(stem: str, k: int | None = None, t: bool = False) -> str:
            if tex:
                sup = ("{" + str(k) + ("\\top" if t else "") + "}") if k is not None else ("{\\top}" if t else "")
                return f"{stem}^{sup}" if sup else stem
            return f"{stem}{'' if k is None else '^' + str(k)}{'ᵀ' if t else ''}"

        def elementwise(expr, mapping) -> str:
            return show(expr.xreplace({s: sympy.Symbol(v) for s, v in mapping.items()}), elementwise=True)

        def grouped(expr, text: str) -> str:
            """g' as a factor of ⊙: parenthesised when it is a sum or product (always in
            LaTeX, where a bracket is what verify reads element by element)."""
            return f"({text})" if tex or isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow)) else text

        odot = r" \odot " if tex else " ⊙ "
        yh = r"\hat{Y}" if tex else "Ŷ"
        eqs = []
        for form in self.layers:
            k = form.k
            prev = "X" if k == 1 else M("O", k - 1)
            bias = f" + {M('b', k)}" if self.spec.bias else ""
            eqs.append((M("Z", k), f"{prev} {M('W', k)}{bias}"))
            g = form.activation if tex is False else rf"\mathrm{{{form.activation}}}".replace("_", r"\_")
            eqs.append((M("O", k) if k < L else yh, f"{g}({M('Z', k)})"))
        out = self.output
        inv_n = r"\frac{1}{n}" if tex else "(1/n)"
        delta_name = (r"\delta" if tex else "δ")
        if out.softmax_jvp:
            G = elementwise(out.dL_dyhat, {y: "Y", yhat: yh})
            rhs = f"{inv_n} {yh}{odot}(G - \\mathrm{{rowsum}}(G{odot}{yh}))" if tex else \
                f"{inv_n} Ŷ ⊙ (G - rowsum(G ⊙ Ŷ)),  G = {G}"
            if tex:
                rhs += rf",\quad G = {G}"
        else:
            rhs = f"{inv_n} ({elementwise(out.delta, {y: 'Y', yhat: yh, z: M('Z', L)})})"
        eqs.append((M(delta_name, L), rhs))
        for form in reversed(self.layers[:-1]):
            k = form.k
            back = f"({M(delta_name, k + 1)} {M('W', k + 1, t=True)})"
            if form.derivative is None:
                rhs = (f"{M('O', k)}{odot}(D - \\mathrm{{rowsum}}(D{odot}{M('O', k)}))" if tex else
                       f"O^{k} ⊙ (D - rowsum(D ⊙ O^{k})),  D = {back}")
                if tex:
                    rhs += rf",\quad D = {back}"
            elif form.derivative == 1:  # linear: δ^k is ∂L/∂O^k itself, no ⊙ (1)
                rhs = back[1:-1]
            else:
                gp = elementwise(form.derivative, {a: M("O", k), z: M("Z", k)})
                rhs = f"{back}{odot}{grouped(form.derivative, gp)}"
            eqs.append((M(delta_name, k), rhs))
        for k in range(L, 0, -1):
            prev_t = M("X", None, t=True) if k == 1 else M("O", k - 1, t=True)
            dW = rf"\frac{{\partial L}}{{\partial {M('W', k)}}}" if tex else f"∂L/∂W^{k}"
            eqs.append((dW, f"{prev_t} {M(delta_name, k)}"))
            if self.spec.bias:
                db = rf"\frac{{\partial L}}{{\partial {M('b', k)}}}" if tex else f"∂L/∂b^{k}"
                rows = r"\sum_{\text{rows}} " if tex else "Σ_rows "
                eqs.append((db, f"{rows}{M(delta_name, k)}"))
        return eqs

    def text(self) -> str:
        return "\n".join(f"{lhs} = {rhs}" for lhs, rhs in self.equations("text"))

    def latex(self) -> str:
        rows = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in self.equations("latex"))
        return "\\begin{aligned}\n" + rows + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


def vectorise(spec_or_derivation: Spec | Derivation) -> VectorisedForm:
    """The matrix form of a spec's derivation (cheap at any width).

    Parameters
    ----------
    spec_or_derivation : Spec or Derivation

    Returns
    -------
    VectorisedForm
        ``.equations(style)`` as (lhs, rhs) pairs in "text" or "latex", ``.text()``,
        ``.latex()``; renders as LaTeX in Jupyter.

    Raises
    ------
    UserTypeError
        For anything else (also a TypeError).

    Examples
    --------
    >>> from backprop.derive import make_spec
    >>> v = vectorise(make_spec("2-2-1", "sigmoid,linear", "se"))
    >>> [lhs for lhs, _ in v.equations("text")][:5]
    ['Z^1', 'O^1', 'Z^2', 'Ŷ', 'δ^2']
    """
    if not isinstance(spec_or_derivation, (Spec, Derivation)):
        raise UserTypeError(f"vectorise() takes a Spec or a Derivation, e.g. vectorise(make_spec('2-2-1', "
                            f"'linear', 'se')), got {type(spec_or_derivation).__name__}")
    d = spec_or_derivation if isinstance(spec_or_derivation, Derivation) else Derivation(spec_or_derivation)
    return VectorisedForm(d)
