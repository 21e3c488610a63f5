"""The symbolic network: a Spec turned into the notes' forward definitions.

For every node, ``z_kj = Σ_i w^k_ij O_{k-1,i} + b_kj`` and ``O_kj = g_k(z_kj)`` (softmax:
``e^{z_kj} / Σ_m e^{z_km}``; a residual layer adds the skip, ``O_kj = g_k(z_kj) + O_{k-1,j}``),
written with the previous layer's output *symbols*, so each
definition has O(width) size however deep the network is.  :meth:`Network.expand` substitutes
them into an expression, giving it in inputs and parameters only (memoised per node).
"""
from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import sympy

from backprop.core.errors import UserError, UserTypeError

from . import notation as nt
from .activations import ACTIVATIONS, a, derivative, numpy_forward, z
from .losses import LOSSES, PREDICTION, TARGET
from .spec import Spec

#: Activations whose output has the sign of z (0 where z <= 0 for relu): O_kj > 0 iff z_kj > 0.
SIGN_KEEPING = frozenset(name for name, act in ACTIVATIONS.items() if act.keeps_sign)


#: The stand-in for z_kj in an activation's table entry, filled in by :func:`_with_sum`.
_Z = sympy.Symbol("z", real=True)


def _plain_sum(expr: sympy.Expr) -> bool:
    """A sum of symbols and products of symbols and rationals (a weighted sum, negated or not)."""
    return isinstance(expr, sympy.Add) and all(
        t.is_Symbol or t.is_Mul and all(f.is_Symbol or f.is_Rational for f in t.args) for t in expr.args)


def _with_sum(expr: sympy.Expr, z: sympy.Expr) -> sympy.Expr:
    """``expr`` with the stand-in z replaced by the weighted sum ``z``, rebuilt bottom-up as
    SymPy would build it, except ``exp`` of a plain sum: its evaluation tries exp of each of
    the 51 terms of a 50-wide layer (~20 ms a node) and can change none of them."""
    if expr == _Z:
        return z
    if not expr.args or _Z not in expr.free_symbols:
        return expr
    args = [_with_sum(a, z) for a in expr.args]
    if isinstance(expr, sympy.exp) and _plain_sum(args[0]):
        return sympy.exp(args[0], evaluate=False)
    return expr.func(*args)


@lru_cache(maxsize=4096)
def slope_through(name: str, out: sympy.Expr, pre: sympy.Expr, residual: bool) -> sympy.Expr:
    """g' of one node through ``out`` = g(z) (or in ``pre``), remembered: every chain through
    the node multiplies the same factor.  ``residual``: a sign test on g(z) reads the sign of
    z instead (a sign-keeping g), so relu's g' is 1[z_kj > 0], not 1[O_kj - O_{k-1,j} > 0]."""
    expr, var = derivative(name)
    if residual and var is a and ACTIVATIONS[name].keeps_sign:
        expr = expr.replace(_is_sign_of_a, lambda e: e.func(z, *e.args[1:]))
    return expr.xreplace({a: out, z: pre} if var is a else {z: pre})


def _is_sign_of_a(e) -> bool:
    """``a > 0`` or ``Heaviside(a, ·)``: a test of the sign of the output a."""
    if isinstance(e, sympy.Heaviside):
        return e.args[0] == a
    return isinstance(e, sympy.core.relational.Relational) and e.lhs == a and e.rhs == 0


class Network:
    """The symbols and forward definitions of a Spec, in the notes' notation."""

    def __init__(self, spec: Spec):
        if not isinstance(spec, Spec):
            raise UserTypeError(f"Network() takes a Spec, got {type(spec).__name__}")
        #: the batch-normalised layers: derived over the batch (batchnorm.py), never per row
        self.batch_norm = frozenset(spec.batch_norm_layers)
        self.spec = spec
        #: the layers k with a skip connection: O_kj = g(z_kj) + O_{k-1,j}
        self.residual = frozenset(spec.residual_layers)
        self.depth = spec.depth
        self.single_output = spec.n_outputs == 1

    def __repr__(self) -> str:
        return f"Network({self.spec.describe()})"

    def per_row(self) -> None:
        """Refuses the per-row (per-parameter) forms of a batch-normalised network: its rows
        couple through the batch's mean and variance, so no formula of one row is its gradient."""
        if self.batch_norm:
            layers = ",".join(map(str, sorted(self.batch_norm)))
            raise UserError(f"batch normalisation (layer {layers}) couples the rows of a batch, so it has no "
                            "per-parameter formula of one row; use --vectorised for its derived matrix form")

    # -- symbols -----------------------------------------------------------------------
    def O(self, k: int, j: int) -> sympy.Symbol:
        """Output of node j in layer k (x_j for k = 0, ŷ_j for the output layer); 1-based."""
        return nt.output(k, j, self.depth)

    def outputs(self, k: int) -> list[sympy.Symbol]:
        return [self.O(k, j) for j in range(1, self.spec.layers[k] + 1)]

    @property
    def inputs(self) -> list[sympy.Symbol]:
        return self.outputs(0)

    @property
    def targets(self) -> list[sympy.Symbol]:
        return [nt.target(j) for j in range(1, self.spec.n_outputs + 1)]

    @property
    def predictions(self) -> list[sympy.Symbol]:
        return self.outputs(self.depth)

    def stand_ins(self, j: int) -> dict[sympy.Symbol, sympy.Symbol]:
        """Output j's target and prediction for the loss table's generic stand-ins."""
        return {TARGET: nt.target(j), PREDICTION: self.O(self.depth, j)}

    def parameters(self, k: int | None = None) -> list[sympy.Symbol]:
        """Parameters in backprop order (output layer first), node by node: weights into
        node j, then its bias (the order the notes derive them in)."""
        self.per_row()
        layers = [k] if k is not None else range(self.depth, 0, -1)
        out = []
        for layer in layers:
            for j in range(1, self.spec.layers[layer] + 1):
                out.extend(nt.weight(layer, i, j) for i in range(1, self.spec.layers[layer - 1] + 1))
                if self.spec.bias:
                    out.append(nt.bias(layer, j))
        return out

    # -- forward definitions -----------------------------------------------------------
    def z(self, k: int, j: int) -> sympy.Expr:
        """z_kj = Σ_i w^k_ij O_{k-1,i} + b_kj."""
        self.per_row()
        terms = [nt.weight(k, i, j) * self.O(k - 1, i) for i in range(1, self.spec.layers[k - 1] + 1)]
        if self.spec.bias:
            terms.append(nt.bias(k, j))
        return sympy.Add(*terms)

    def activation(self, k: int):
        return ACTIVATIONS[self.spec.activations[k - 1]]

    def skips(self, k: int) -> bool:
        """Whether layer k is residual: O_kj = g(z_kj) + O_{k-1,j}."""
        return k in self.residual

    def definition(self, k: int, j: int) -> sympy.Expr:
        """O_kj as a function of the previous layer's outputs (textbook form), plus
        O_{k-1,j} on a residual layer."""
        act = self.activation(k)
        if act.elementwise:
            out = _with_sum(act.sym(_Z), self.z(k, j))
        else:
            exps = [sympy.exp(self.z(k, m)) for m in range(1, self.spec.layers[k] + 1)]
            out = exps[j - 1] / sympy.Add(*exps)
        return out + self.O(k - 1, j) if self.skips(k) else out

    def activated(self, k: int, j: int) -> sympy.Expr:
        """g(z_kj) in the notes' vocabulary: the output O_kj, or O_kj - O_{k-1,j} on a
        residual layer (the skip added O_{k-1,j}; g' through the output reads this)."""
        return self.O(k, j) - self.O(k - 1, j) if self.skips(k) else self.O(k, j)

    def slope(self, k: int, j: int) -> sympy.Expr:
        """g'(z_kj) of one node in the notes' vocabulary: through its output g(z_kj)
        (σ: O(1 - O); on a residual layer (O_kj - O_{k-1,j})(1 - O_kj + O_{k-1,j})), or in
        z_kj where the table has no inverse.  A residual layer's sign test (relu) reads
        z_kj > 0, not O_kj - O_{k-1,j} > 0."""
        return slope_through(self.activation(k).name, self.activated(k, j), nt.preactivation(k, j),
                      self.skips(k))

    @cached_property
    def loss(self) -> sympy.Expr:
        """L of one row in y and ŷ."""
        return LOSSES[self.spec.loss].row(self.targets, self.predictions)

    # -- substitution into inputs and parameters -----------------------------------------
    @cached_property
    def _expanded_outputs(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every O_kj and ŷ_j (and z_kj, which g' in z reads: gelu, swish) in x, w, b only;
        built layer by layer, each node once."""
        table: dict[sympy.Symbol, sympy.Expr] = {}
        for k in range(1, self.depth + 1):
            zs = {nt.preactivation(k, j): self.z(k, j).xreplace(table)
                  for j in range(1, self.spec.layers[k] + 1)}
            for j in range(1, self.spec.layers[k] + 1):
                table[self.O(k, j)] = self.definition(k, j).xreplace(table)
            table.update(zs)
        return table

    def expand(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every node output replaced by its definition in x, w and b.  A
        relation ``O_kj > 0`` of a sign-keeping layer (relu, leaky relu: g' is read off the
        output's sign) becomes ``z_kj > 0``, not a relation between piecewise expressions."""
        if self._keeps_signs and expr.has(sympy.core.relational.Relational):
            expr = expr.replace(self._is_sign_test, self._sign_of_z)
        return expr.xreplace(self._expanded_outputs)

    @cached_property
    def _keeps_signs(self) -> bool:
        """Some layer reads g' off its output's sign (else no sign test to rewrite: skip the walk)."""
        return any(name in SIGN_KEEPING for name in self.spec.activations)

    def _is_sign_test(self, e) -> bool:
        if not isinstance(e, sympy.core.relational.Relational) or e.rhs != 0:
            return False
        name = nt.parse(e.lhs) if isinstance(e.lhs, sympy.Symbol) else None
        return name is not None and name.kind in ("O", "yhat") and \
            self.activation(self._layer_of(name)).name in SIGN_KEEPING

    def _layer_of(self, name) -> int:
        return self.depth if name.kind == "yhat" else name.indices[0]

    def _sign_of_z(self, e):
        name = nt.parse(e.lhs)
        k = self._layer_of(name)
        j = name.indices[-1]
        return e.func(self.z(k, j).xreplace(self._expanded_outputs), 0)

    @cached_property
    def loss_expanded(self) -> sympy.Expr:
        """L in x, y, w and b: the fully nested loss (for checks, never for deriving)."""
        return self.expand(self.loss)

    # -- numbers -----------------------------------------------------------------------
    def forward_values(self, values: dict[sympy.Symbol, float]) -> dict[sympy.Symbol, float]:
        """Numeric O_kj (and z_kj) for one row, with the stable NumPy forms of the table."""
        self.per_row()
        out = dict(values)
        prev = np.array([values[s] for s in self.inputs], dtype=float)
        for k in range(1, self.depth + 1):
            W = np.array([[values[nt.weight(k, i, j)] for j in range(1, self.spec.layers[k] + 1)]
                          for i in range(1, self.spec.layers[k - 1] + 1)], dtype=float)
            b = np.array([values[nt.bias(k, j)] if self.spec.bias else 0.0
                          for j in range(1, self.spec.layers[k] + 1)])
            with np.errstate(over="ignore", invalid="ignore"):  # inf/nan at a user's 1e308 point: the caller sees them
                Z = prev @ W + b
                prev = numpy_forward(self.activation(k).name)(Z[None, :])[0] + (prev if self.skips(k) else 0.0)
            for j in range(1, self.spec.layers[k] + 1):
                out[nt.preactivation(k, j)] = float(Z[j - 1])
                out[self.O(k, j)] = float(prev[j - 1])
        return out
