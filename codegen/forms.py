"""The element-wise (and row-wise) SymPy pieces a trainer prints, taken from the derivation.

Everything here is a SymPy expression in a few scalar stand-ins — ``z`` (a pre-activation),
``a`` (a node's output), ``y``/``yhat`` (target and prediction), ``d`` (∂L/∂O of a node) and
``n_rows`` (the batch size) — that :mod:`~backprop.codegen.render` renames to the arrays of
one layer (``Z2``, ``O2``, ``Y``) before printing.  Nothing is typed in: g, g', ∂L/∂ŷ and
the fused output δ come from :func:`backprop.derive.vectorise`.  Two things are added here:

* **Row-wise nodes** ``RowSum`` / ``RowMax`` (sums and maxima over a row's nodes, kept as a
  column), so softmax, its Jacobian-vector product and log-softmax are SymPy expressions too
  and go through the same printer (table :data:`ROWWISE`).
* **Faster stable forms** (:data:`FAST_FORMS`) for the forward activations whose table form
  uses NumPy's slow ``logaddexp``: the same function, still finite at any |z|.
* **Loss on the logits**: one-line rules (:data:`LOGIT_RULES`, keyed by the output
  activation) that replace ``log ŷ`` and ``log(1 - ŷ)`` by stable forms in the output
  layer's pre-activation ``z`` (sigmoid: -logaddexp(0, ∓z); softmax: log-softmax), so
  sigmoid + bce and softmax + cce stay finite at any |z|.  The gradient needs no rule: the
  derivation already reduces both δ's to ŷ - y.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy.codegen.cfunctions import log1p
from sympy.codegen.numpy_nodes import logaddexp

from backprop.derive import ACTIVATIONS, LOSSES, Spec, vectorise
from backprop.derive.activations import a, stable_derivative, z
from backprop.derive.vectorised import y, yhat

#: ∂L/∂O of one node (what the next layer sends back) and the number of rows in the batch.
d = sympy.Symbol("d", real=True)
n_rows = sympy.Symbol("n_rows", positive=True, integer=True)


class RowSum(sympy.Function):
    """Σ over the nodes of a row, kept as a column (broadcasts against the row)."""

    nargs = 1


class RowMax(sympy.Function):
    """max over the nodes of a row, kept as a column."""

    nargs = 1


@dataclass(frozen=True)
class RowwiseForm:
    """An activation that mixes a layer's nodes: forward in z, backward (∂L/∂z from ∂L/∂O = d)
    in a and d, and log of its output in z (for losses with log ŷ)."""

    forward: sympy.Expr
    backward: sympy.Expr
    log_output: sympy.Expr


class FloatMax(sympy.Function):
    """The largest finite number of an array's dtype (``np.finfo(Z.dtype).max``)."""

    nargs = 1


#: z minus the row maximum (e^z never overflows), clamped at -FloatMax: a row spanning more
#: than the float range (1e308 and -1e308) gives -1.8e308, not an overflow to -inf (whose
#: 0 · -inf in cce is NaN).  max(z, max(m, 0) - FloatMax) - m never leaves the float range.
_row_max = RowMax(z)
_shifted = sympy.Max(z, sympy.Max(_row_max, 0) - FloatMax(z)) - _row_max

#: Row-wise activations by table key.  softmax: O = e^(z - max) / Σ e^(z - max);
#: backward O ⊙ (d - Σ_row d ⊙ O) (its Jacobian O_j(δ_jm - O_m) applied to d).
ROWWISE: dict[str, RowwiseForm] = {
    "softmax": RowwiseForm(
        forward=sympy.exp(_shifted) / RowSum(sympy.exp(_shifted)),
        backward=a * (d - RowSum(d * a)),
        log_output=_shifted - sympy.log(RowSum(sympy.exp(_shifted))),
    ),
}

#: Stable forms of the logarithms in a loss, by output activation: (pattern, replacement).
LOGIT_RULES: dict[str, tuple[tuple[sympy.Expr, sympy.Expr], ...]] = {
    "sigmoid": (
        (sympy.log(yhat), -logaddexp(0, -z)),  # log σ(z)
        (sympy.log(1 - yhat), -logaddexp(0, z)),  # log(1 - σ(z)) = log σ(-z)
    ),
    "softmax": (
        (sympy.log(yhat), ROWWISE["softmax"].log_output),  # log-softmax
    ),
}


#: Faster forms of the table's stable activations, same value, still finite at any |z|:
#: NumPy's logaddexp is 4x (float64) to 50x (float32) slower than tanh or exp.  The loss
#: keeps logaddexp (it runs once per batch, on the output layer only).  (pattern, form).
FAST_FORMS: tuple[tuple[sympy.Expr, sympy.Expr], ...] = (
    (sympy.exp(-logaddexp(0, -z)), (1 + sympy.tanh(z / 2)) / 2),  # σ(z) = (1 + tanh(z/2))/2
    (logaddexp(0, z), sympy.Max(z, 0) + log1p(sympy.exp(-sympy.Abs(z)))),  # softplus
)


@dataclass(frozen=True)
class LayerPieces:
    """Layer k's printable pieces.  ``derivative`` is g' in ``var`` (a or z), None where
    g' = 1 (linear: δ^k is ∂L/∂O^k itself); ``rowwise`` is set for softmax-like layers."""

    k: int
    activation: str
    forward: sympy.Expr | None
    derivative: sympy.Expr | None
    var: sympy.Symbol | None
    rowwise: RowwiseForm | None
    doc: str

    @property
    def identity(self) -> bool:
        return self.forward == z


@dataclass(frozen=True)
class OutputPieces:
    """The output layer's δ (already divided by n_rows for the batch mean), or, where it needs
    the row-wise Jacobian, ``dL_dO`` (also / n_rows); the per-element loss term (the 1/n_out
    of a mean over outputs included) and whether it is taken on the logits z."""

    delta: sympy.Expr | None
    dL_dO: sympy.Expr | None
    loss_term: sympy.Expr
    on_logits: bool


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """2*y/3 - 2*yhat/3 -> 2*(y - yhat)/3: common numeric factors pulled out for reading."""
    return sympy.factor_terms(expr)


def _float_constants(expr: sympy.Expr) -> sympy.Expr:
    """√2/√π (gelu) -> 0.797..: an irrational constant as one float literal, since NumPy's
    ``np.sqrt(2)`` is a float64 scalar that would turn a float32 trainer's arrays float64.
    Rationals stay exact (``(1/2)*Z`` is Python's float division, weak under NEP 50)."""
    if expr.is_number:
        return expr if expr.is_Rational or expr.is_Float else expr.evalf(17)
    if not expr.args:
        return expr
    if expr.is_Mul:
        numbers = [f for f in expr.args if f.is_number]
        rest = [_float_constants(f) for f in expr.args if not f.is_number]
        return _float_constants(sympy.Mul(*numbers)) * sympy.Mul(*rest)
    return expr.func(*[_float_constants(arg) for arg in expr.args])


def layer_pieces(spec: Spec) -> list[LayerPieces]:
    """Each layer's pieces, from the vectorised derivation."""
    out = []
    for form in vectorise(spec).layers:
        act = ACTIVATIONS[form.activation]
        if act.elementwise:
            # g' as NumPy evaluates it: in z, clipped where the entry is flat (gelu, swish)
            stable, _ = stable_derivative(form.activation)
            deriv = None if form.derivative == 1 else _float_constants(_tidy(stable))
            forward = _float_constants(form.forward.xreplace(dict(FAST_FORMS)))
            out.append(LayerPieces(form.k, form.activation, forward, deriv, form.var, None, act.doc))
        else:
            if form.activation not in ROWWISE:
                raise ValueError(f"no row-wise form for activation {form.activation!r}")
            out.append(LayerPieces(form.k, form.activation, None, None, None,
                                   ROWWISE[form.activation], act.doc))
    return out


def output_pieces(spec: Spec) -> OutputPieces:
    """The output δ (or ∂L/∂O for a row-wise output layer) and the loss term."""
    out = vectorise(spec).output
    term = out.loss_term / spec.n_outputs if out.mean_over_outputs else out.loss_term
    rules = LOGIT_RULES.get(spec.activations[-1], ())
    fused = term.xreplace(dict(rules))
    on_logits = fused != term
    if out.softmax_jvp:
        return OutputPieces(None, _tidy(out.dL_dyhat) / n_rows, fused, on_logits)
    return OutputPieces(_tidy(out.delta) / n_rows, None, fused, on_logits)


def loss_doc(spec: Spec) -> str:
    """One line naming the loss (its table doc)."""
    return LOSSES[spec.loss].doc
