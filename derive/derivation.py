"""Reverse-mode derivation with memoisation: "backprop = chain rule + memoisation".

One δ_kj = ∂L/∂z_kj per node, computed once from the nodes after it:

* output layer: ``δ_Lj`` from ∂L/∂ŷ (SymPy differentiates the loss) and the output
  activation's derivative through its output (or the softmax Jacobian);
* hidden layers: ``∂L/∂O_kj = Σ_m w^{k+1}_jm δ_{k+1,m}`` and ``δ_kj = ∂L/∂O_kj · g'(O_kj)``.

Every parameter then reuses them: ``∂L/∂w^k_ij = δ_kj O_{k-1,i}`` and ``∂L/∂b_kj = δ_kj``.
The fully nested loss is never differentiated per parameter (that explodes); the memo
definitions have O(width) size each, so building all of them is O(parameters).

Each :class:`Gradient` knows four forms: ``memoised`` (δ and O symbols), ``formula`` (the
notes' vocabulary y, ŷ, O, x, w, b), ``expanded`` (inputs and parameters only) and ``chain``
(the factorisation the notes write by hand, each factor with its value).  The resolved forms
are computed lazily and memoised per node, so asking for one parameter costs one product.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import sympy
from sympy.core.mul import _mulsort

from . import notation as nt
from .activations import derivative_at, passes_no_gradient, softmax_jacobian
from .budget import MAX_SHOWN_TERMS, form_terms
from .losses import LOSSES, PREDICTION, TARGET
from .errors import UserTypeError
from .network import Network
from .spec import Spec

#: Above this many chain paths per parameter, the chain form shows the memoised
#: two-factor chain (δ · ∂z/∂w) instead of spelling out every path.
MAX_CHAIN_PATHS = 16
#: The L of ∂L/∂…, the numerator of every chain's first factor.
_LOSS = sympy.Symbol("L")


@dataclass(frozen=True)
class Factor:
    """One factor ∂num/∂den of a chain, with its value in the notes' vocabulary."""

    numerator: sympy.Expr
    denominator: sympy.Expr
    value: sympy.Expr


@dataclass
class Gradient:
    """∂L/∂P for one parameter P, in every form the tool prints."""

    derivation: "Derivation" = field(repr=False)
    parameter: sympy.Symbol
    layer: int
    source: int | None  # i of w^k_ij (None for a bias)
    node: int  # j

    def __repr__(self) -> str:
        return f"Gradient(∂L/∂{self.name} = {self.derivation.printer.text(self.formula)})"

    @property
    def name(self) -> str:
        """The parameter in the notes' notation: w^2_11, b_21."""
        return nt.text_name(nt.parse(self.parameter))

    @property
    def key(self) -> tuple[str, tuple[int, ...]]:
        """Where it lives in a params dict: ("W2", (0, 0)) for w^2_11, ("b2", (0,)) for b_21."""
        if self.source is None:
            return f"b{self.layer}", (self.node - 1,)
        return f"W{self.layer}", (self.source - 1, self.node - 1)

    @property
    def local(self) -> sympy.Expr:
        """∂z_kj/∂P: the input the parameter multiplies (1 for a bias)."""
        d = self.derivation
        return sympy.S.One if self.source is None else d.net.O(self.layer - 1, self.source)

    @property
    def memoised(self) -> sympy.Expr:
        """δ_kj · O_{k-1,i}: what backprop actually computes."""
        delta = nt.delta(self.layer, self.node)
        if self.source is None:
            return delta
        return _product(delta, self.local)

    @cached_property
    def formula(self) -> sympy.Expr:
        """In the notes' vocabulary (y, ŷ, O_kj, x_ij, w), e.g. -2(y-ŷ) w^2_11 x_i1."""
        return self.derivation.resolved_delta(self.layer, self.node) * self.local

    @cached_property
    def expanded(self) -> sympy.Expr:
        """In inputs, targets and parameters only (every O replaced by its definition)."""
        return self.derivation.net.expand(self.formula)

    @cached_property
    def chain(self) -> list[list[Factor]]:
        """The chain rule as the notes write it: a sum over paths of products of factors."""
        return self.derivation.chain(self)

    def latex(self, form: str = "formula") -> str:
        """``\\frac{\\partial L}{\\partial w^{2}_{11}} = ...`` for one form."""
        p = self.derivation.printer
        return rf"\frac{{\partial L}}{{\partial {p.latex(self.parameter)}}} = {p.latex(getattr(self, form))}"

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    @cached_property
    def numpy(self) -> Callable[..., float]:
        """The formula as a NumPy function of a values dict {symbol: number} for one row
        (x, y, w, b); node outputs are filled in by a forward pass."""
        fn = sympy.lambdify(sorted(self.formula.free_symbols, key=str), self.formula, "numpy")
        args = sorted(self.formula.free_symbols, key=str)
        net = self.derivation.net

        def evaluate(values: dict) -> float:
            full = net.forward_values(values)
            return float(fn(*[full[s] for s in args]))

        return evaluate


class Derivation:
    """All gradients of a network: the memoised δ table and one Gradient per parameter."""

    def __init__(self, spec_or_network: Spec | Network):
        if not isinstance(spec_or_network, (Spec, Network)):
            raise UserTypeError(f"derive() takes a Spec, e.g. derive(make_spec('2-2-1', 'linear', 'se')), "
                                f"got {type(spec_or_network).__name__}")
        self.net = spec_or_network if isinstance(spec_or_network, Network) else Network(spec_or_network)
        self.spec = self.net.spec
        self.loss = LOSSES[self.spec.loss]
        self.warnings: list[str] = []
        self._resolved_delta: dict[tuple[int, int], sympy.Expr] = {}
        self._resolved_dO: dict[tuple[int, int], sympy.Expr] = {}
        for k, name in enumerate(self.spec.activations, start=1):
            if passes_no_gradient(name):
                self.warnings.append(
                    f"layer {k} uses {name}, whose derivative is 0 almost everywhere: no gradient "
                    f"flows through it, so every parameter in layers 1..{k} gets gradient 0"
                )

    def __repr__(self) -> str:
        return f"Derivation({self.spec.describe()})"

    def _repr_latex_(self) -> str:
        """Jupyter shows the gradients as rendered maths (the first 50 of a large network)."""
        rows = [g.latex().replace(" = ", " &= ", 1) for _, g in zip(range(50), self.gradients())]
        more = self.spec.n_parameters - len(rows)
        tail = rf" \\ \text{{... and {more} more}}" if more > 0 else ""
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + tail + r"\end{aligned}$$"

    @cached_property
    def printer(self):
        from .printing import NotationPrinter

        return NotationPrinter(self)

    # -- the memo table ----------------------------------------------------------------
    @cached_property
    def dL_dyhat(self) -> "PerOutput":
        """∂L/∂ŷ_j (index j-1), derived by SymPy from the loss table's per-output term: one
        differentiation for the whole layer, each output's entry a substitution made when asked."""
        generic = self.loss.d_per_output(self.spec.n_outputs)
        return PerOutput(generic, self.net.stand_ins, self.spec.n_outputs)

    def grad_output_definition(self, k: int, j: int) -> sympy.Expr:
        """∂L/∂O_kj: from the loss for the output layer, else Σ_m w^{k+1}_jm δ_{k+1,m}."""
        if k == self.net.depth:
            return self.dL_dyhat[j - 1]
        return sympy.Add(*[
            nt.weight(k + 1, j, m) * nt.delta(k + 1, m) for m in range(1, self.spec.layers[k + 1] + 1)
        ])

    def delta_definition(self, k: int, j: int) -> sympy.Expr:
        """δ_kj in terms of ∂L/∂O of its own layer (memo symbols) and the layer's outputs."""
        act = self.net.activation(k)
        width = self.spec.layers[k]
        if k == self.net.depth:
            return self._output_delta(j)
        if act.elementwise:
            return nt.grad_output(k, j) * derivative_at(act.name, self.net.O(k, j), nt.preactivation(k, j))
        outs = self.net.outputs(k)
        return sympy.Add(*[nt.grad_output(k, m) * softmax_jacobian(outs, m - 1, j - 1)
                           for m in range(1, width + 1)])

    def _output_delta(self, j: int) -> sympy.Expr:
        """δ_Lj = Σ_m ∂L/∂ŷ_m ∂ŷ_m/∂z_Lj, simplified: sigmoid + bce and softmax + cce
        reduce to ŷ - y here (the latter using Σ y = 1), by SymPy, not by a lookup."""
        L = self.net.depth
        act = self.net.activation(L)
        if act.elementwise:
            expr = self.dL_dyhat[j - 1] * derivative_at(act.name, self.net.O(L, j), nt.preactivation(L, j))
        elif self.loss.one_hot and (coupled := self._one_hot_softmax_delta) is not None:
            return coupled.xreplace(self.net.stand_ins(j))
        else:
            outs = self.net.predictions
            expr = sympy.Add(*[self.dL_dyhat[m] * softmax_jacobian(outs, m, j - 1)
                               for m in range(len(outs))])
        expr = _shortest(expr)
        if self.loss.one_hot and not act.elementwise:
            collected = sympy.collect(sympy.expand(expr), outs[j - 1])
            expr = collected.subs(sympy.Add(*self.net.targets), 1)
        return expr

    @cached_property
    def _one_hot_softmax_delta(self) -> sympy.Expr | None:
        """Softmax + a one-hot loss, in the stand-ins, width-free: δ_j = Σ_m g_m ŷ_m(δ_mj - ŷ_j)
        = ŷ_j g_j - ŷ_j Σ_m ŷ_m g_m with g = ∂ℓ/∂ŷ.  SymPy cancels ŷ_m g_m; when that is c·y_m
        (cce: -y_m), Σ_m ŷ_m g_m = c Σ_m y_m = c because the targets sum to one.  None when
        the loss's term has no such form (the caller then sums over the outputs)."""
        g = self.loss.d_per_output(self.spec.n_outputs)
        share = sympy.cancel(PREDICTION * g)
        c = sympy.diff(share, TARGET)
        if c.free_symbols or sympy.expand(share - c * TARGET) != 0:
            return None
        expr = _shortest(PREDICTION * g - PREDICTION * c)
        return sympy.collect(sympy.expand(expr), PREDICTION)

    @cached_property
    def deltas(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The memo table {δ_kj: definition}, output layer first."""
        return {
            nt.delta(k, j): self.delta_definition(k, j)
            for k in range(self.net.depth, 0, -1)
            for j in range(1, self.spec.layers[k] + 1)
        }

    def resolved_dO(self, k: int, j: int) -> sympy.Expr:
        """∂L/∂O_kj with every memo symbol replaced (notes' vocabulary); memoised."""
        key = (k, j)
        if key not in self._resolved_dO:
            expr = self.grad_output_definition(k, j)
            if k < self.net.depth:
                expr = expr.xreplace({nt.delta(k + 1, m): self.resolved_delta(k + 1, m)
                                      for m in range(1, self.spec.layers[k + 1] + 1)})
                # once per node: the loss factor shared by every path comes out front,
                # -(y - ŷ)(w^3_11 w^2_11 + ...), as a hand derivation writes it
                expr = sympy.factor_terms(expr)
            self._resolved_dO[key] = expr
        return self._resolved_dO[key]

    def resolved_delta(self, k: int, j: int) -> sympy.Expr:
        """δ_kj in the notes' vocabulary (y, ŷ, O, x, w); memoised per node."""
        key = (k, j)
        if key not in self._resolved_delta:
            expr = self.delta_definition(k, j)
            if k < self.net.depth:
                expr = expr.xreplace({nt.grad_output(k, m): self.resolved_dO(k, m)
                                      for m in range(1, self.spec.layers[k] + 1)})
            self._resolved_delta[key] = expr
        return self._resolved_delta[key]

    # -- per-parameter gradients ---------------------------------------------------------
    def gradient(self, parameter: sympy.Symbol | str) -> Gradient:
        """The Gradient of one parameter, by symbol or by name ("w^2_11", "w_2_1_1", "b_21")."""
        name = nt.parse(parameter) if isinstance(parameter, sympy.Symbol) else _parse_any(parameter)
        if name is None or name.kind not in ("w", "b") or not self._exists(name):
            raise KeyError(f"{parameter} is not a parameter of the {self.spec.describe()}")
        if name.kind == "w":
            k, i, j = name.indices
            return Gradient(self, name.symbol, k, i, j)
        k, j = name.indices
        return Gradient(self, name.symbol, k, None, j)

    def _exists(self, name: nt.Name) -> bool:
        layers = self.spec.layers
        if name.kind == "w":
            k, i, j = name.indices
            return 1 <= k <= self.net.depth and 1 <= i <= layers[k - 1] and 1 <= j <= layers[k]
        k, j = name.indices
        return self.spec.bias and 1 <= k <= self.net.depth and 1 <= j <= layers[k]

    def gradients(self):
        """Every Gradient, in backprop order (output layer first, as the notes derive them):
        node by node, the weights into node j, then its bias."""
        layers = self.spec.layers
        for k in range(self.net.depth, 0, -1):
            for j in range(1, layers[k] + 1):
                for i in range(1, layers[k - 1] + 1):
                    yield Gradient(self, nt.weight(k, i, j), k, i, j)
                if self.spec.bias:
                    yield Gradient(self, nt.bias(k, j), k, None, j)

    def __iter__(self):
        return self.gradients()

    def __len__(self) -> int:
        return self.spec.n_parameters

    # -- the chain factorisation -------------------------------------------------------------
    def chain_paths(self, k: int) -> int:
        """How many paths lead from a parameter of layer k to the loss."""
        start = 1 if self.net.activation(k).elementwise else self.spec.layers[k]
        return start * math.prod(self.spec.layers[k + 1:])

    def _node_factor(self, k: int, m: int, prev: sympy.Expr) -> sympy.Expr:
        """∂O_{k,m}/∂prev where prev is O_{k-1,j}: g'(O_km) w^k_jm, or through softmax."""
        act = self.net.activation(k)
        src = nt.parse(prev).indices[-1] if nt.parse(prev) else None
        if act.elementwise:
            return derivative_at(act.name, self.net.O(k, m), nt.preactivation(k, m)) * nt.weight(k, src, m)
        outs = self.net.outputs(k)
        return sympy.Add(*[softmax_jacobian(outs, m - 1, n - 1) * nt.weight(k, src, n)
                           for n in range(1, self.spec.layers[k] + 1)])

    def chain(self, g: Gradient) -> list[list[Factor]]:
        """Paths from the parameter to L, each a list of factors, the notes' way:
        ∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11.  Wide networks get the memoised chain instead:
        ∂L/∂z_kj · ∂z_kj/∂P, with δ_kj = ∂L/∂z_kj taken from the memo table (resolved
        when that is short, else the memo symbol δ_kj itself, defined in the δ table)."""
        k, j, L = g.layer, g.node, self.net.depth
        if self.chain_paths(k) > MAX_CHAIN_PATHS:
            z = nt.preactivation(k, j)
            short = form_terms(self.spec, k, "formula") <= MAX_SHOWN_TERMS
            delta = self.resolved_delta(k, j) if short else nt.delta(k, j)
            return [[Factor(_LOSS, z, delta), Factor(z, g.parameter, g.local)]]
        act = self.net.activation(k)
        if act.elementwise:
            first = [(j, derivative_at(act.name, self.net.O(k, j), nt.preactivation(k, j)) * g.local)]
        else:
            outs = self.net.outputs(k)
            first = [(m, softmax_jacobian(outs, m - 1, j - 1) * g.local)
                     for m in range(1, self.spec.layers[k] + 1)]
        paths = [[(k, m, Factor(self.net.O(k, m), g.parameter, value))] for m, value in first]
        for layer in range(k + 1, L + 1):
            longer = []
            for path in paths:
                prev = self.net.O(layer - 1, path[-1][1])
                for m in range(1, self.spec.layers[layer] + 1):
                    factor = Factor(self.net.O(layer, m), prev, self._node_factor(layer, m, prev))
                    longer.append(path + [(layer, m, factor)])
            paths = longer
        out = []
        for path in paths:
            last = path[-1][1]
            top = Factor(_LOSS, self.net.O(L, last), self.dL_dyhat[last - 1])
            out.append([top] + [f for _, _, f in reversed(path)])
        return out


class PerOutput(Sequence):
    """∂L/∂ŷ_j for j = 1..n as a read-only sequence: one generic expression, each entry the
    substitution of output j's target and prediction, made on access (O(1) per entry)."""

    def __init__(self, generic: sympy.Expr, stand_ins: Callable[[int], dict], n: int):
        self.generic, self._stand_ins, self._n = generic, stand_ins, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = operator.index(index)
        if not -self._n <= i < self._n:
            raise IndexError(f"output {i} of {self._n}")
        return self.generic.xreplace(self._stand_ins(i % self._n + 1))

    def __repr__(self) -> str:
        return f"PerOutput({self.generic}, n={self._n})"


def _product(a: sympy.Symbol, b: sympy.Symbol) -> sympy.Mul:
    """a·b of two symbols, built in SymPy's canonical order without re-running Mul's
    flattening (equal to ``a * b``, ~3× cheaper: it is paid once per parameter)."""
    args = [a, b]
    _mulsort(args)
    return sympy.Mul._from_args(tuple(args), is_commutative=True)


def _shortest(expr: sympy.Expr) -> sympy.Expr:
    """The shorter of two cheap normal forms: common factors pulled out, or the rational
    function cancelled (which turns sigmoid + bce into ŷ - y)."""
    candidates = [sympy.factor_terms(expr), sympy.factor_terms(sympy.cancel(expr))]
    return min(candidates, key=sympy.count_ops)


def _parse_any(text: str) -> nt.Name | None:
    """A parameter from either spelling: 'w_2_1_1' or the notes' 'w^2_11' / 'b_21'."""
    name = nt.parse(text)
    if name:
        return name
    text = text.replace("{", "").replace("}", "").replace(" ", "")
    if text.startswith("w^") and "_" in text:
        k, _, idx = text[2:].partition("_")
        parts = idx.split(",") if "," in idx else list(idx)
        if k.isdigit() and len(parts) == 2 and all(p.isdigit() for p in parts):
            return nt.Name("w", (int(k), int(parts[0]), int(parts[1])))
    if text.startswith("b_"):
        idx = text[2:]
        parts = idx.split(",") if "," in idx else list(idx)
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return nt.Name("b", (int(parts[0]), int(parts[1])))
    return None


def derive(spec: Spec) -> Derivation:
    """Derive every ∂L/∂w and ∂L/∂b of ``spec`` (lazily: forms are built when asked for)."""
    return Derivation(spec)


def numeric_gradients(derivation: Derivation, values: dict) -> dict[sympy.Symbol, float]:
    """Every gradient of one row, by evaluating the memo table numerically (O(parameters))."""
    net = derivation.net
    full = net.forward_values(values)
    memo: dict[sympy.Symbol, float] = dict(full)
    for k in range(net.depth, 0, -1):
        width = derivation.spec.layers[k]
        if k < net.depth:
            for j in range(1, width + 1):
                memo[nt.grad_output(k, j)] = float(derivation.grad_output_definition(k, j).xreplace(memo))
        for j in range(1, width + 1):
            memo[nt.delta(k, j)] = float(derivation.delta_definition(k, j).xreplace(memo))
    return {g.parameter: float(g.memoised.xreplace(memo)) for g in derivation.gradients()}


__all__ = ["Derivation", "Factor", "Gradient", "derive", "numeric_gradients"]
