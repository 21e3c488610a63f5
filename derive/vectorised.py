"""The vectorised (matrix) form of backprop, one block per layer, for a batch of n rows:

    Z^k = O^{k-1} W^k + b^k,     O^k = g_k(Z^k),       O^0 = X
    δ^L = (1/n) ∂L/∂Ŷ ⊙ g_L'      (softmax + cce: (1/n)(Ŷ - Y); softmax elsewhere: its JVP)
    δ^k = (δ^{k+1} W^{k+1 T}) ⊙ g_k'(O^k)
    ∂L/∂W^k = O^{k-1 T} δ^k,     ∂L/∂b^k = Σ_rows δ^k

A residual layer k adds the skip, O^k = g_k(Z^k) + O^{k-1}: ∂L/∂O^k is printed on its own
and joins ∂L/∂O^{k-1} (δ^{k-1} = (∂L/∂O^k + δ^k W^{kT}) ⊙ g_{k-1}'), and g_k' is written
through g_k(Z^k) = O^k - O^{k-1} (a sign test through Z^k), as the derivation writes it.

A batch-normalised layer adds μ^k, (σ^k)², X̂^k and Z̃^k = γ^k ⊙ X̂^k + β^k before g_k, and its
δ^k comes through the batch-norm Jacobian derived over the batch (:mod:`.batchnorm`).

The element-wise pieces (g' through the output, ∂L/∂ŷ, the fused output δ) are scalar SymPy
expressions taken from the derivation, never typed in; code generation prints them.  The
cost is O(layers): nothing here depends on the widths.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy

from backprop.core.errors import UserTypeError

from . import batchnorm
from . import notation as nt
from .activations import ACTIVATIONS, a, derivative, z
from .derivation import Derivation
from .graph import (O, ActivationBackward, Activate, AddBias, AddSkip, Array, BatchNorm, BatchNormBackward,
                    Graph, LossBackward, MatMul, SkipBackward, SumRows, SumRowsProduct, build)
from .losses import LOSSES
from .network import slope_through
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
        delta = d.output_delta(1).xreplace(scalar) if fused else None
        term = loss.term(y, yhat)
        return OutputForm(dL, delta, not fused, term, loss.mean_over_outputs)

    @cached_property
    def graph(self) -> Graph:
        """The computation as ops (:mod:`~backprop.derive.graph`), which the equations print."""
        return build(self.spec)

    # -- printing ---------------------------------------------------------------------------
    def equations(self, style: str = "text") -> list[tuple[str, str]]:
        """[(left side, right side)] for every step, in ``style`` 'text' or 'latex': the
        graph's ops printed in the notes' notation (∂L/∂O^k written into the δ^k it feeds),
        the forward pass, then the δ recursion, then the gradients."""
        return _NotationWriter(self, style == "latex").equations()

    def text(self) -> str:
        return "\n".join(f"{lhs} = {rhs}" for lhs, rhs in self.equations("text"))

    def latex(self) -> str:
        rows = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in self.equations("latex"))
        return "\\begin{aligned}\n" + rows + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


class _NotationWriter:
    """Prints a graph's ops as the notes' matrix equations, in text or LaTeX.  Each array's
    right side is built up op by op (an accumulated gradient joins its terms with +); ∂L/∂O^k
    is not printed on its own but inside the δ^k it feeds, as the notes write it."""

    def __init__(self, form: VectorisedForm, tex: bool):
        self.form, self.tex = form, tex
        self.spec = form.spec
        self.L = form.derivation.net.depth
        p = form.derivation.printer
        self.show = p.latex if tex else p.text
        self.odot = r" \odot " if tex else " ⊙ "
        self.yh = r"\hat{Y}" if tex else "Ŷ"
        self.delta = r"\delta" if tex else "δ"
        self.inv_n = r"\frac{1}{n}" if tex else "(1/n)"
        self.rhs: dict[Array, str] = {}
        #: a gradient's contributions so far, joined with + into its right side
        self.terms: dict[Array, list[str]] = {}

    def M(self, stem: str, k: int | None = None, t: bool = False) -> str:
        if self.tex:
            sup = ("{" + str(k) + ("\\top" if t else "") + "}") if k is not None else ("{\\top}" if t else "")
            return f"{stem}^{sup}" if sup else stem
        return f"{stem}{'' if k is None else '^' + str(k)}{'ᵀ' if t else ''}"

    def name(self, x: Array, t: bool = False) -> str:
        """An array's spelling: X, O^k (Ŷ for the output), W^k, b^k, Z^k, δ^k."""
        if x.kind == "X":
            return self.M("X", None, t)
        if x.kind == "O" and x.layer == self.L and not t:
            return self.yh
        if x.kind == "var":
            return rf"\left(\sigma^{{{x.layer}}}\right)^{{2}}" if self.tex else f"(σ^{x.layer})²"
        if x.kind == "dZn":
            return self.gradient_name(x)
        stem = (_TEX_STEMS if self.tex else _TEXT_STEMS).get(x.kind, x.kind)
        return self.M(stem, x.layer, t)

    def gradient_name(self, x: Array) -> str:
        param = self.name(Array(x.kind[1:], x.layer))
        return rf"\frac{{\partial L}}{{\partial {param}}}" if self.tex else f"∂L/∂{param}"

    def elementwise(self, expr, mapping) -> str:
        return self.show(expr.xreplace({s: sympy.Symbol(v) for s, v in mapping.items()}), elementwise=True)

    def grouped(self, expr, text: str) -> str:
        """g' as a factor of ⊙: parenthesised when it is a sum or product (always in
        LaTeX, where a bracket is what verify reads element by element)."""
        return f"({text})" if self.tex or isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow)) else text

    def joined(self, x: Array) -> str:
        """The right side of a gradient built from several terms: (a + b), or its one term."""
        terms = self.terms[x]
        return terms[0] if len(terms) == 1 else "(" + " + ".join(t.strip("()") if t.startswith("(") and
                                                                 t.endswith(")") else t for t in terms) + ")"

    def equations(self) -> list[tuple[str, str]]:
        graph = self.form.graph
        forward, deltas, grads = [], [], []
        for op in graph.forward:
            if isinstance(op, MatMul):
                self.rhs[op.out] = f"{self.name(op.left)} {self.name(op.right)}"
            elif isinstance(op, AddBias):
                self.rhs[op.out] += f" + {self.name(op.bias)}"
            elif isinstance(op, BatchNorm):
                forward += [(self.name(op.inp), self.rhs[op.inp])] + self.batch_norm(op)
            elif isinstance(op, Activate):
                act = self.spec.activations[op.layer - 1]
                g = act if not self.tex else rf"\mathrm{{{act}}}".replace("_", r"\_")
                self.rhs[op.out] = f"{g}({self.name(op.inp)})"
                forward.append((self.name(op.inp), self.rhs[op.inp]))
                if op.out.kind != "A":  # a residual layer's g(Z^k) is printed in O^k's line
                    forward.append((self.name(op.out), self.rhs[op.out]))
            elif isinstance(op, AddSkip):  # O^k = g(Z^k) + O^{k-1}
                forward.append((self.name(op.out), f"{self.rhs[op.inp]} + {self.name(op.skip)}"))
        for op in graph.backward():
            if isinstance(op, LossBackward):
                if op.fused:
                    out = self.form.output
                    mapping = {y: "Y", yhat: self.yh, z: self.M("Z", self.L)}
                    deltas.append((self.name(op.out), f"{self.inv_n} ({self.elementwise(out.delta, mapping)})"))
                else:
                    self.rhs[op.out] = self.elementwise(self.form.output.dL_dyhat, {y: "Y", yhat: self.yh})
            elif isinstance(op, MatMul) and op.transpose == "left":  # ∂L/∂W^k = O^{k-1 T} δ^k
                grads.append((op.out, (self.gradient_name(op.out), f"{self.name(op.left, t=True)} {self.name(op.right)}")))
            elif isinstance(op, MatMul):  # ∂L/∂O^{k-1} = δ^k W^{k T}: printed inside δ^{k-1}
                self.add_term(op.out, f"({self.name(op.left)} {self.name(op.right, t=True)})", op.accumulate)
            elif isinstance(op, SkipBackward):  # ∂L/∂O^k, read twice: printed on its own, then by name
                alone = self.rhs[op.grad]
                deltas.append((self.gradient_name(op.grad), alone[1:-1] if len(self.terms[op.grad]) == 1
                               and alone.startswith("(") and alone.endswith(")") else alone))
                self.rhs[op.grad] = self.gradient_name(op.grad)
                self.terms[op.grad] = [self.rhs[op.grad]]
                self.add_term(op.out, self.rhs[op.grad], op.accumulate)
            elif isinstance(op, SumRows):
                rows = r"\sum_{\text{rows}} " if self.tex else "Σ_rows "
                grads.append((op.out, (self.gradient_name(op.out), f"{rows}{self.name(op.inp)}")))
            elif isinstance(op, SumRowsProduct):  # ∂L/∂γ^k = Σ_rows ∂L/∂Z̃^k ⊙ X̂^k
                rows = r"\sum_{\text{rows}} " if self.tex else "Σ_rows "
                grads.append((op.out, (self.gradient_name(op.out),
                                       f"{rows}{self.name(op.left)}{self.odot}{self.name(op.right)}")))
            elif isinstance(op, BatchNormBackward):
                deltas.append((self.name(op.out), self.through_batch_norm(op)))
            elif isinstance(op, ActivationBackward):
                deltas.append((self.name(op.out), self.through_activation(op)))
        grads.sort(key=lambda pair: (-pair[0].layer, pair[0].kind != "dW"))
        return forward + deltas + [eq for _, eq in grads]

    def add_term(self, x: Array, term: str, accumulate: bool) -> None:
        """One more contribution to gradient x (the first one assigns)."""
        self.terms[x] = self.terms[x] + [term] if accumulate else [term]
        self.rhs[x] = self.joined(x)

    def through_activation(self, op: ActivationBackward) -> str:
        """δ^k from ∂L/∂O^k: the Jacobian product (softmax), ∂L/∂O^k itself (g' = 1), or ⊙ g'."""
        k, back = op.layer, self.rhs[op.grad]
        form = self.form.layers[k - 1]
        odot = self.odot
        if form.derivative is None:  # row-wise: O ⊙ (D - rowsum(D ⊙ O)), D = ∂L/∂O
            D, scale = ("G", f"{self.inv_n} ") if k == self.L else ("D", "")
            out = self.name(op.output) if op.output.kind != "A" else f"({self.name(O(k))} - {self.name(O(k - 1))})"
            if self.tex:
                return rf"{scale}{out}{odot}({D} - \mathrm{{rowsum}}({D}{odot}{out})),\quad {D} = {back}"
            return f"{scale}{out} ⊙ ({D} - rowsum({D} ⊙ {out})),  {D} = {back}"
        if form.derivative == 1:  # linear: δ^k is ∂L/∂O^k itself, no ⊙ (1)
            return back[1:-1] if back.startswith("(") and back.endswith(")") and " + (" not in back else back
        if op.output.kind == "A":  # residual: g' through g(Z^k) = O^k - O^{k-1}, a sign through Z^k
            deriv = slope_through(form.activation, a, z, True)
            gp = self.show(deriv.xreplace({a: sympy.Symbol(self.M("O", k)) - sympy.Symbol(self.name(O(k - 1))),
                                           z: sympy.Symbol(self.name(op.inp))}), elementwise=True)
            return f"{back}{odot}{self.grouped(deriv, gp)}"
        gp = self.elementwise(form.derivative, {a: self.M("O", k), z: self.name(op.inp)})
        return f"{back}{odot}{self.grouped(form.derivative, gp)}"

    # -- batch normalisation ---------------------------------------------------------------
    def mean_rows(self, text: str) -> str:
        return rf"\mathrm{{mean}}_{{\text{{rows}}}}\left({text}\right)" if self.tex else f"mean_rows({text})"

    def std(self, k: int) -> str:
        """√((σ^k)² + ε)."""
        var = self.name(Array("var", k))
        return rf"\sqrt{{{var} + \varepsilon}}" if self.tex else f"√({var} + ε)"

    def batch_norm(self, op: BatchNorm) -> list[tuple[str, str]]:
        """μ^k, (σ^k)², X̂^k and Z̃^k: the batch's statistics over the rows, then γ, β."""
        Z, mu, xhat = self.name(op.inp), self.name(op.mean), self.name(op.xhat)
        centred = f"({Z} - {mu})"
        if self.tex:
            rows = r"\frac{1}{n} \sum_{\text{rows}} "
            normalised = rf"\frac{{{Z} - {mu}}}{{{self.std(op.layer)}}}"
        else:
            rows = "(1/n) Σ_rows "
            normalised = f"{centred} / {self.std(op.layer)}"
        self.rhs[op.out] = f"{self.name(op.gamma)}{self.odot}{xhat} + {self.name(op.beta)}"
        return [(mu, f"{rows}{Z}"), (self.name(op.var), f"{rows}{centred}{self.odot}{centred}"),
                (xhat, normalised)]

    def through_batch_norm(self, op: BatchNormBackward) -> str:
        """δ^k from G = ∂L/∂Z̃^k: the result of :func:`batchnorm.derivation` printed with the
        layer's matrices in place of one node's symbols (its two factors, as derived)."""
        k, G = op.layer, "G"
        xhat = self.name(op.xhat)
        stand_ins = {batchnorm.g_i: G, batchnorm.xhat_i: xhat, batchnorm.gamma: self.name(op.gamma),
                     batchnorm.mean_g: self.mean_rows(G),
                     batchnorm.mean_gx: self.mean_rows(f"{G}{self.odot}{xhat}")}
        std = sympy.Symbol(self.std(k), positive=True)
        scale, bracket = (e.xreplace({batchnorm.var: std ** 2 - batchnorm.eps})
                          for e in batchnorm.derivation().factored())
        text = f"{self.elementwise(scale, stand_ins | {std: std.name})}{self.odot}" \
               f"({self.elementwise(bracket, stand_ins)})"
        return rf"{text},\quad {G} = {self.name(op.grad)}" if self.tex else f"{text},  {G} = {self.name(op.grad)}"


#: How the batch-norm arrays are spelled (text, LaTeX); δ^k and the rest by their kind.
_TEXT_STEMS = {"delta": "δ", "Zn": "Z̃", "Xhat": "X̂", "mu": "μ", "gamma": "γ", "beta": "β"}
_TEX_STEMS = {"delta": r"\delta", "Zn": r"\tilde{Z}", "Xhat": r"\hat{X}", "mu": r"\mu", "gamma": r"\gamma",
              "beta": r"\beta"}


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
