"""The computation of one network as a small graph of array operations: the layout every
printer walks (the notes' matrix form in text and LaTeX, the NumPy trainer's ``forward``,
``gradients`` and fused ``sgd_step``, the scalar one-row step).

The forward pass is built from the spec, one op per step of the notes' matrix form::

    Z^k = O^{k-1} W^k   (MatMul)      Z^k += b^k   (AddBias)      O^k = g_k(Z^k)   (Activate)
    L = loss(Y, Ŷ)      (Loss)

A residual layer k adds its input to its activation: A^k = g_k(Z^k), O^k = A^k + O^{k-1}
(AddSkip); its backward passes ∂L/∂O^k to A^k unchanged (∂L/∂A^k is ∂L/∂O^k itself, no
copy) and to O^{k-1}, whose gradient then also receives δ^k W^kᵀ (accumulated).

A batch-normalised layer k normalises Z^k over the rows before its activation (BatchNorm:
Z̃^k = γ^k ⊙ X̂^k + β^k from the batch's μ^k and (σ^k)², which it keeps), and O^k = g_k(Z̃^k).

The backward pass is not written out by hand: it is derived from the forward ops in
reverse, one rule per op kind (:data:`BACKWARD_RULES`), as micrograd does.  An array read by
several later ops receives the sum of their contributions: its first contribution assigns,
the rest are marked ``accumulate`` (``+=``).  Each parameter's :class:`Update` is placed
right after the last op that reads the parameter or writes its gradient, so a fused step
may update in place.  The output layer's loss and activation backward are fused into one
δ^L where the derivation has a fused form (an element-wise output, or softmax with cce).

The graph names arrays and says what is computed from what; the formulas stay in the
derivation (g, g', ∂L/∂ŷ, δ^L come from :mod:`~backprop.derive.vectorised` and the tables),
and each printer looks up the piece an op needs by the op's layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .activations import ACTIVATIONS
from .losses import LOSSES
from .spec import Spec


@dataclass(frozen=True)
class Array:
    """One array of the computation: ``kind`` (X, Y, Z, O, W, b, dO, delta, dW, db, L; for
    batch norm Zn = Z̃, Xhat = X̂, mu, var, gamma, beta and their gradients) and its layer
    (None for X, Y and L).  O of layer 0 is X; O of the last layer is Ŷ."""

    kind: str
    layer: int | None = None

    def __repr__(self) -> str:
        return self.kind if self.layer is None else f"{self.kind}{self.layer}"


def X() -> Array:
    return Array("X")


def O(k: int) -> Array:
    """The output of layer k; layer 0's is the input X."""
    return Array("X") if k == 0 else Array("O", k)


#: What the gradient of an array is called: ∂L/∂Z^k is the notes' δ^k.
GRADIENT_OF = {"Z": "delta", "O": "dO", "W": "dW", "b": "db", "X": "dX", "A": "dA",
               "Zn": "dZn", "gamma": "dgamma", "beta": "dbeta"}


def grad(x: Array) -> Array:
    return Array(GRADIENT_OF[x.kind], x.layer)


@dataclass(frozen=True)
class Op:
    """One step; ``out`` is the array it writes, ``reads`` the arrays it reads."""

    out: Array

    @property
    def reads(self) -> tuple[Array, ...]:
        return ()


@dataclass(frozen=True)
class MatMul(Op):
    """out = left @ right, either side transposed; ``accumulate``: out += left @ right."""

    left: Array
    right: Array
    transpose: str | None = None  # "left" or "right"
    accumulate: bool = False

    @property
    def reads(self):
        return (self.left, self.right)


@dataclass(frozen=True)
class AddBias(Op):
    """out += bias, broadcast over the rows."""

    bias: Array

    @property
    def reads(self):
        return (self.out, self.bias)


@dataclass(frozen=True)
class Activate(Op):
    """out = g_k(inp), layer k's activation."""

    inp: Array
    layer: int

    @property
    def reads(self):
        return (self.inp,)


@dataclass(frozen=True)
class AddSkip(Op):
    """out (O^k) = inp (A^k = g_k(Z^k)) + skip (O^{k-1}): layer k's skip connection."""

    inp: Array
    skip: Array
    layer: int

    @property
    def reads(self):
        return (self.inp, self.skip)


@dataclass(frozen=True)
class BatchNorm(Op):
    """out (Z̃^k) = γ^k ⊙ X̂^k + β^k, X̂^k = (Z^k - μ^k)/√((σ^k)² + ε) with μ^k, (σ^k)² the
    batch's mean and biased variance over the rows (training mode; kept for the backward
    pass, and in running averages for eval mode: :mod:`~backprop.derive.batchnorm`)."""

    inp: Array
    gamma: Array
    beta: Array
    layer: int

    @property
    def reads(self):
        return (self.inp, self.gamma, self.beta)

    @property
    def xhat(self) -> Array:
        return Array("Xhat", self.layer)

    @property
    def mean(self) -> Array:
        return Array("mu", self.layer)

    @property
    def var(self) -> Array:
        return Array("var", self.layer)


@dataclass(frozen=True)
class Loss(Op):
    """out = the loss of the batch (mean over rows) from the targets, Ŷ and its logits."""

    target: Array
    output: Array
    logits: Array

    @property
    def reads(self):
        return (self.target, self.output, self.logits)


@dataclass(frozen=True)
class LossBackward(Op):
    """``fused``: out = δ^L, the loss and the output activation differentiated together;
    otherwise out = ∂L/∂Ŷ (the activation's backward follows).  Over n rows for the mean."""

    target: Array
    output: Array
    logits: Array
    fused: bool

    @property
    def reads(self):
        return (self.target, self.output, self.logits)


@dataclass(frozen=True)
class ActivationBackward(Op):
    """out (δ^k) = ∂L/∂O^k through layer k's activation: times g' element-wise, through the
    Jacobian for a row-wise activation, unchanged where g' = 1."""

    grad: Array
    output: Array
    inp: Array
    layer: int
    accumulate: bool = False

    @property
    def reads(self):
        return (self.grad, self.output, self.inp)


@dataclass(frozen=True)
class SumRows(Op):
    """out = Σ over the rows of inp (a bias's gradient); ``accumulate``: out +=."""

    inp: Array
    accumulate: bool = False

    @property
    def reads(self):
        return (self.inp,)


@dataclass(frozen=True)
class SkipBackward(Op):
    """out (∂L/∂O^{k-1}) = grad (∂L/∂O^k): what the skip of layer k sends back, unchanged;
    ``accumulate``: out +=."""

    grad: Array
    layer: int
    accumulate: bool = False

    @property
    def reads(self):
        return (self.grad,)


@dataclass(frozen=True)
class SumRowsProduct(Op):
    """out = Σ over the rows of left ⊙ right (γ's gradient: Σ_rows ∂L/∂Z̃ ⊙ X̂)."""

    left: Array
    right: Array
    accumulate: bool = False

    @property
    def reads(self):
        return (self.left, self.right)


@dataclass(frozen=True)
class BatchNormBackward(Op):
    """out (δ^k = ∂L/∂Z^k) from grad (∂L/∂Z̃^k) through the batch-norm Jacobian, the derived
    γ/√(σ² + ε) (G - mean(G) - X̂ ⊙ mean(G ⊙ X̂)) (:func:`~backprop.derive.batchnorm.derivation`):
    every row's δ reads the whole batch."""

    grad: Array
    xhat: Array
    gamma: Array
    var: Array
    layer: int
    accumulate: bool = False

    @property
    def reads(self):
        return (self.grad, self.xhat, self.gamma, self.var)


@dataclass(frozen=True)
class Update(Op):
    """out (a parameter) -= η · grad."""

    grad: Array

    @property
    def reads(self):
        return (self.out, self.grad)


@dataclass(frozen=True)
class Graph:
    """A network's forward ops and the backward ops derived from them (with the updates
    placed for an in-place step).  ``backward(updates=False)`` leaves the updates out."""

    spec: Spec
    forward: tuple[Op, ...]
    _backward: tuple[Op, ...] = field(repr=False)

    def backward(self, updates: bool = False) -> tuple[Op, ...]:
        return self._backward if updates else tuple(op for op in self._backward if not isinstance(op, Update))

    @property
    def depth(self) -> int:
        return self.spec.depth

    def params(self) -> list[Array]:
        """W^1, b^1, W^2, ... in the order of the params dict."""
        return params_of(self.forward)


def params_of(forward) -> list[Array]:
    """The parameters the forward ops read, in the order of the params dict."""
    return [p for op in forward for p in _params_of(op)]


def _params_of(op: Op) -> list[Array]:
    if isinstance(op, MatMul):
        return [op.right]
    if isinstance(op, AddBias):
        return [op.bias]
    if isinstance(op, BatchNorm):
        return [op.gamma, op.beta]
    return []


def fused_output(spec: Spec) -> bool:
    """Whether δ^L is one element-wise expression (the derivation fuses the loss with an
    element-wise output activation, and softmax with cce); else it goes through ∂L/∂Ŷ."""
    return ACTIVATIONS[spec.activations[-1]].elementwise or LOSSES[spec.loss].one_hot


def forward_ops(spec: Spec) -> list[Op]:
    """Z^k = O^{k-1} W^k (+ b^k), O^k = g_k(Z^k) for every layer (g_k(Z̃^k) after a batch
    norm), then the loss."""
    ops: list[Op] = []
    for k in range(1, spec.depth + 1):
        z = Array("Z", k)
        ops.append(MatMul(z, O(k - 1), Array("W", k)))
        if spec.bias:
            ops.append(AddBias(z, Array("b", k)))
        if k in spec.batch_norm_layers:
            ops.append(BatchNorm(Array("Zn", k), z, Array("gamma", k), Array("beta", k), k))
            z = Array("Zn", k)
        if k in spec.residual_layers:
            ops += [Activate(Array("A", k), z, k), AddSkip(O(k), Array("A", k), O(k - 1), k)]
            continue
        ops.append(Activate(O(k), z, k))
    L = spec.depth
    ops.append(Loss(Array("L"), Array("Y"), O(L), Array("Z", L)))
    return ops


class _Backward:
    """Reverse-mode over the forward ops: each rule adds the ops giving its inputs' gradients."""

    def __init__(self, spec: Spec, forward: list[Op]):
        self.spec, self.forward = spec, forward
        self.ops: list[Op] = []
        self.written: set[Array] = set()
        self.done: set[Op] = set()
        #: gradients that are another array's, unchanged (∂L/∂A^k is ∂L/∂O^k past a skip)
        self.same: dict[Array, Array] = {}

    def gradient(self, x: Array) -> Array:
        """The array holding x's gradient: grad(x), or the one it equals."""
        return self.same.get(grad(x), grad(x))

    def needs(self, x: Array) -> bool:
        """Whether the gradient of x is wanted (not for the inputs X)."""
        return x.kind != "X"

    def first(self, x: Array) -> bool:
        """True for the first contribution to x's gradient (assign); later ones accumulate."""
        g = grad(x)
        fresh = g not in self.written
        self.written.add(g)
        return fresh

    def run(self) -> list[Op]:
        for op in reversed(self.forward):
            if op not in self.done:
                BACKWARD_RULES[type(op)](self, op)
        return self.ops


def _loss_backward(b: _Backward, op: Loss) -> None:
    if fused_output(b.spec):
        activate = next(o for o in b.forward if isinstance(o, Activate) and o.out == op.output)
        b.done.add(activate)  # δ^L in one piece: the activation's backward is in it
        b.first(activate.inp)
        b.ops.append(LossBackward(grad(activate.inp), op.target, op.output, op.logits, fused=True))
    else:
        b.first(op.output)
        b.ops.append(LossBackward(grad(op.output), op.target, op.output, op.logits, fused=False))


def _activate_backward(b: _Backward, op: Activate) -> None:
    fresh = b.first(op.inp)
    b.ops.append(ActivationBackward(grad(op.inp), b.gradient(op.out), op.out, op.inp, op.layer, not fresh))


def _add_skip_backward(b: _Backward, op: AddSkip) -> None:
    """O^k = A^k + O^{k-1}: ∂L/∂A^k is ∂L/∂O^k (no op), and ∂L/∂O^{k-1} receives it too."""
    b.same[grad(op.inp)] = b.gradient(op.out)
    if b.needs(op.skip):
        fresh = b.first(op.skip)
        b.ops.append(SkipBackward(grad(op.skip), b.gradient(op.out), op.layer, not fresh))


def _add_bias_backward(b: _Backward, op: AddBias) -> None:
    fresh = b.first(op.bias)
    b.ops.append(SumRows(grad(op.bias), grad(op.out), not fresh))


def _matmul_backward(b: _Backward, op: MatMul) -> None:
    dz = grad(op.out)
    fresh = b.first(op.right)
    b.ops.append(MatMul(grad(op.right), op.left, dz, transpose="left", accumulate=not fresh))
    if b.needs(op.left):
        fresh = b.first(op.left)
        b.ops.append(MatMul(grad(op.left), dz, op.right, transpose="right", accumulate=not fresh))


def _batch_norm_backward(b: _Backward, op: BatchNorm) -> None:
    """∂L/∂γ = Σ_rows G ⊙ X̂, ∂L/∂β = Σ_rows G, then δ^k through the batch-norm Jacobian."""
    g = grad(op.out)
    b.ops.append(SumRowsProduct(grad(op.gamma), g, op.xhat, not b.first(op.gamma)))
    b.ops.append(SumRows(grad(op.beta), g, not b.first(op.beta)))
    fresh = b.first(op.inp)
    b.ops.append(BatchNormBackward(grad(op.inp), g, op.xhat, op.gamma, op.var, op.layer, not fresh))


#: The backward rule of each forward op kind: one entry per kind.
BACKWARD_RULES: dict[type, Callable[[_Backward, Op], None]] = {
    Loss: _loss_backward,
    Activate: _activate_backward,
    AddBias: _add_bias_backward,
    MatMul: _matmul_backward,
    BatchNorm: _batch_norm_backward,
    AddSkip: _add_skip_backward,
}


def _with_updates(backward: list[Op], params: list[Array]) -> list[Op]:
    """Each parameter's Update right after the last op that reads it or writes its gradient
    (so an in-place step never changes W^k before δ^k W^kᵀ has used it)."""
    last = {}
    for i, op in enumerate(backward):
        for p in params:
            if p in op.reads or op.out == grad(p):
                last[p] = i
    out: list[Op] = []
    for i, op in enumerate(backward):
        out.append(op)
        out.extend(Update(p, grad(p)) for p in params if last.get(p) == i)
    return out


def build(spec: Spec) -> Graph:
    """The graph of ``spec``: forward ops from the spec, backward ops derived from them."""
    forward = forward_ops(spec)
    backward = _with_updates(_Backward(spec, forward).run(), params_of(forward))
    return Graph(spec, tuple(forward), tuple(backward))
