"""Reverse-mode derivation with memoisation: "backprop = chain rule + memoisation".

One δ_kj = ∂L/∂z_kj per node, computed once from the nodes after it:

* output layer: ``δ_Lj`` from ∂L/∂ŷ (SymPy differentiates the loss) and the output
  activation's derivative through its output (or the softmax Jacobian);
* hidden layers: ``∂L/∂O_kj = Σ_m w^{k+1}_jm δ_{k+1,m}`` and ``δ_kj = ∂L/∂O_kj · g'(O_kj)``;
  when layer k+1 is residual (``O_{k+1,j} = g(z_{k+1,j}) + O_kj``) the skip adds
  ``∂L/∂O_{k+1,j}`` to ∂L/∂O_kj, and on a residual layer k, g' is written through
  ``g(z_kj) = O_kj - O_{k-1,j}`` (σ' = (O_kj - O_{k-1,j})(1 - O_kj + O_{k-1,j})), since O_kj
  itself is no longer g(z_kj).

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import sympy
from sympy.core.add import _addsort
from sympy.core.mul import _mulsort

from . import advice, notation as nt
from .activations import derivative_at, passes_no_gradient, softmax_jacobian
from .budget import form_terms
from .losses import LOSSES, PREDICTION, TARGET
from backprop.core.errors import UserTypeError
from .network import Network
from .spec import Spec

#: Above this many chain paths per parameter, the chain form shows the memoised
#: two-factor chain (δ · ∂z/∂w) instead of spelling out every path.
MAX_CHAIN_PATHS = 16
#: The forms of a gradient, in the order the tool prints them (``Gradient.latex(form)``).
FORMS = ("chain", "memoised", "formula", "expanded")
#: A repr or notebook cell shows the formula up to this many characters, else the memoised form.
MAX_REPR_CHARS = 200
#: The memoised chain shows δ_kj resolved up to this many terms, else the memo symbol δ_kj.
MAX_CHAIN_VALUE_TERMS = 50
#: The L of ∂L/∂…, the numerator of every chain's first factor.
_LOSS = sympy.Symbol("L")


@dataclass(frozen=True)
class Factor:
    """One factor ∂num/∂den of a chain, with its value in the notes' vocabulary (a skip's
    factor is printed as the skip's 1, not as the total ∂num/∂den, which also has g' w)."""

    numerator: sympy.Expr
    denominator: sympy.Expr
    value: sympy.Expr
    #: the skip of a residual layer: ∂O_kj/∂O_{k-1,j} along the skip alone, which is 1
    skip: bool = False


@dataclass
class Gradient:
    """∂L/∂P for one parameter P, in every form the tool prints.

    Get one from :meth:`Derivation.gradient` (by its printed name) or
    :attr:`Derivation.gradients`; every form is built when first asked for.

    Attributes
    ----------
    parameter : sympy.Symbol
        The parameter P (prints as ``w^2_11`` / ``b_21``; its ``.name`` is ``w_2_1_1``).
    layer, source, node : int
        k, i and j of ``w^k_ij`` (``source`` is None for a bias ``b_kj``).
    memoised, formula, expanded : sympy.Expr
        δ_kj · O_{k-1,i}; the same in y, ŷ, O, x, w; in x, y, w, b only.
    chain : list of list of Factor
        The chain rule as the notes write it, one list of factors per path.

    Examples
    --------
    >>> from backprop.derive import derive, make_spec
    >>> g = derive(make_spec("2-2-1", "linear", "se")).gradient("w^1_11")
    >>> g
    Gradient(∂L/∂w^1_11 = -2 (y - ŷ) w^2_11 x_i1)
    >>> print(g.latex("memoised"))
    \\frac{\\partial L}{\\partial w^{1}_{11}} = \\delta_{11} x_{i1}
    >>> values = {"x_i1": 1, "x_i2": 2, "y": 3, "w^1_11": 0.5, "w^1_21": -1, "w^1_12": 0,
    ...           "w^1_22": 1, "w^2_11": 2, "w^2_21": 1, "b_11": 0, "b_12": 0, "b_21": 0}
    >>> g.numpy(values)  # ŷ = 2·(0.5 - 2) + 1·2 = -1: -2 (3 - (-1)) · 2 · 1
    -16.0
    """

    derivation: "Derivation" = field(repr=False)
    layer: int
    source: int | None  # i of w^k_ij (None for a bias)
    node: int  # j

    @property
    def parameter(self) -> sympy.Symbol:
        """The parameter's symbol, made when asked for: a streamed run of 14 657 gradients
        that prints from the indices never pays SymPy's symbol construction (~0.25 s)."""
        if self.source is None:
            return nt.bias(self.layer, self.node)
        return nt.weight(self.layer, self.source, self.node)

    def __repr__(self) -> str:
        return f"Gradient(∂L/∂{self.name} = {self._shown()})"

    def _shown(self, tex: bool = False) -> str:
        """The formula when it is short enough to read, else the memoised form and why."""
        p = self.derivation.printer
        show = p.latex if tex else p.text
        formula = show(self.formula)
        if len(formula) <= MAX_REPR_CHARS:
            return formula
        why = f"(formula: {len(formula):,} characters)"
        return show(self.memoised) + (rf" \quad \text{{{why}}}" if tex else f"   {why}")

    @property
    def name(self) -> str:
        """The parameter in the notes' notation: w^2_11, b_21."""
        if self.source is None:
            return nt.text_name(nt.Name("b", (self.layer, self.node)))
        return nt.text_name(nt.Name("w", (self.layer, self.source, self.node)))

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
        """One form as LaTeX: ``\\frac{\\partial L}{\\partial w^{2}_{11}} = ...``.

        Parameters
        ----------
        form : {"chain", "memoised", "formula", "expanded"}
            Which form (see the class attributes); "chain" writes the factors, then their values.

        Returns
        -------
        str
            The equation, without ``$`` delimiters.

        Raises
        ------
        ValueError
            For any other form; the message lists the forms.
        """
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}; the forms are {', '.join(FORMS)}")
        p = self.derivation.printer
        lhs = rf"\frac{{\partial L}}{{\partial {p.latex(self.parameter)}}}"
        if form == "chain":
            from .report import chain_text  # the chain's layout lives with the reports

            return f"{lhs} = {chain_text(self, tex=True)}"
        return f"{lhs} = {p.latex(getattr(self, form))}"

    def _repr_latex_(self) -> str:
        """Jupyter: the formula in the notes' notation (the memoised form when it is long)."""
        p = self.derivation.printer
        return rf"$\displaystyle \frac{{\partial L}}{{\partial {p.latex(self.parameter)}}} = {self._shown(tex=True)}$"

    def numpy(self, values: Mapping) -> float:
        """∂L/∂P at one row, evaluated with NumPy; node outputs come from a forward pass.

        Parameters
        ----------
        values : mapping
            Inputs, targets and parameters by the names the tool prints (``"x_i1"``, ``"y"``
            or ``"y_2"``, ``"w^1_11"``, ``"b_21"``), their LaTeX spellings (``"w^{1}_{11}"``)
            or their symbols, to numbers.  Values the gradient does not depend on may be
            left out (or given: a whole network's values serve every gradient).

        Returns
        -------
        float

        Raises
        ------
        ValueError
            A needed value is missing (the message lists every missing name), or a name is not
            an input, target or parameter of the network (ŷ and O are computed, not given).
        """
        given = self.derivation.values_by_symbol(values)
        missing = [s for s in self._needs if s not in given]
        if missing:
            raise ValueError(f"∂L/∂{self.name} needs a value for {self.derivation.names(missing)}")
        args, fn = self._compiled
        full = self.derivation.net.forward_values(dict.fromkeys(self.derivation.givens, 0.0) | given)
        return float(fn(*[full[s] for s in args]))

    @cached_property
    def _compiled(self) -> tuple[list[sympy.Symbol], Callable[..., float]]:
        args = sorted(self.formula.free_symbols, key=str)
        return args, sympy.lambdify(args, self.formula, "numpy")

    @cached_property
    def _needs(self) -> list[sympy.Symbol]:
        """The inputs, targets and parameters the formula depends on, through the node
        outputs in it (each node's definition visited once), in the notes' order."""
        net, seen, todo, leaves = self.derivation.net, set(), list(self.formula.free_symbols), set()
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            name = nt.parse(s)
            if name is None or name.kind in ("x", "y", "w", "b"):
                leaves.add(s)
            elif name.kind in ("O", "yhat"):
                k = net.depth if name.kind == "yhat" else name.indices[0]
                todo.extend(net.definition(k, name.indices[-1]).free_symbols)
            elif name.kind == "z":
                todo.extend(net.z(*name.indices).free_symbols)
        return sorted(leaves, key=_notes_order)


class Derivation:
    """All gradients of a network: the memoised δ table and one Gradient per parameter.

    Built by :func:`derive`; nothing is derived until asked for, so a network of 100 000
    parameters costs nothing up front.

    Attributes
    ----------
    spec : Spec
    net : Network
        The symbols and forward definitions.
    gradients : Gradients
        Every :class:`Gradient`, in backprop order, as a lazy sequence.
    deltas : dict
        The memo table {δ_kj: definition}, output layer first.
    warnings : list of str
        One line per problem with the network (pairings that make no sense, layers that pass
        no gradient); the CLI prints them on stderr.
    assumptions : list of str
        What the derived formulas take for granted (softmax + cce: one-hot targets).

    Examples
    --------
    >>> from backprop.derive import derive, make_spec
    >>> d = derive(make_spec("2-2-1", "sigmoid", "bce"))
    >>> d
    Derivation(2-2-1 network, activations sigmoid,sigmoid, loss bce, with bias: 9 parameters)
    >>> len(d.gradients), d.gradients[0].name, [g.name for g in d.gradients[-3:]]
    (9, 'w^2_11', ['w^1_12', 'w^1_22', 'b_12'])
    >>> print(d.printer.text(d.gradient("b_21").formula))
    -(y - ŷ)
    >>> derive(make_spec("2-3", "softmax", "cce")).assumptions
    ['softmax + cce: δ_1j = ŷ_j - y_j holds for targets that sum to 1 (one-hot)']
    """

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
        self.warnings += advice.warnings(self.spec)

    def __repr__(self) -> str:
        n = self.spec.n_parameters
        notes = f"; {len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}" if self.warnings else ""
        return f"Derivation({self.spec.describe()}: {n:,} parameter{'s' * (n != 1)}{notes})"

    def _repr_latex_(self) -> str:
        """Jupyter shows L and the gradients as rendered maths (the first 50 of a large network)."""
        p = self.printer
        rows = [f"L &= {p.latex(self.net.loss)}"] if self.spec.n_outputs <= 10 else []
        shown = self.gradients[:50]
        rows += [rf"\frac{{\partial L}}{{\partial {p.latex(g.parameter)}}} &= {g._shown(tex=True)}"
                 for g in shown]
        more = len(self.gradients) - len(shown)
        tail = rf" \\ \text{{... and {more:,} more}}" if more > 0 else ""
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + tail + r"\end{aligned}$$"

    @cached_property
    def assumptions(self) -> list[str]:
        """What the derived formulas take for granted, one line each (see :mod:`advice`)."""
        delta = ""
        if self._one_hot_softmax_delta is not None:
            delta = self.printer.text(self._one_hot_softmax_delta.xreplace(
                {TARGET: sympy.Symbol("y_j", real=True), PREDICTION: sympy.Symbol("ŷ_j", real=True)}))
        return (advice.assumptions(self.spec, delta) if delta else []) + self._residual_notation()

    def _residual_notation(self) -> list[str]:
        """One line per residual layer: how g' is written once O_kj is no longer g(z_kj)."""
        p, out = self.printer, []
        for k in sorted(self.net.residual):
            o, prev, zk = self.net.O(k, 1), self.net.O(k - 1, 1), nt.preactivation(k, 1)
            g = self.spec.activations[k - 1]
            out.append(f"{p.text(o)} = {g}({p.text(zk)}) + {p.text(prev)} (layer {k} is residual): g' is "
                       f"written through {g}({p.text(zk)}) = {p.text(self.net.activated(k, 1))}, "
                       f"g'({p.text(zk)}) = {p.text(self.net.slope(k, 1))}")
        return out

    # -- values by the names the tool prints -------------------------------------------
    @cached_property
    def givens(self) -> list[sympy.Symbol]:
        """What a row and the parameters give (x, y, w, b); everything else is computed."""
        return self.net.inputs + self.net.targets + self.net.parameters()

    def values_by_symbol(self, values: Mapping) -> dict[sympy.Symbol, float]:
        """``values`` keyed by printed names, LaTeX spellings or symbols, re-keyed by symbol;
        a name that is no input, target or parameter is a ValueError naming the valid ones."""
        if not isinstance(values, Mapping):
            raise ValueError(f"values must be a dict of names to numbers, e.g. {{'x_i1': 2.0}}, "
                             f"got {type(values).__name__}")
        out = {}
        for key, value in values.items():
            name = _name_of(key, self.net.single_output)
            if name is None or name.kind not in ("x", "y", "w", "b") or not self._given(name):
                computed = name is not None and name.kind in ("O", "yhat", "z", "delta", "dO")
                why = ("is computed by the forward pass, not given" if computed
                       else f"is not an input, target or parameter of the {self.spec.describe()}")
                raise ValueError(f"{key!s} {why}; give values for {self.names(self.givens, summary=True)}")
            out[name.symbol] = value
        return out

    def _given(self, name: nt.Name) -> bool:
        if name.kind in ("x", "y"):
            return 1 <= name.indices[0] <= self.spec.layers[0 if name.kind == "x" else -1]
        return self._exists(name)

    def names(self, symbols: list[sympy.Symbol], summary: bool = False) -> str:
        """Symbols as the tool prints them: all of them (up to 50), or a summary per kind."""
        if summary:
            symbols = sorted(symbols, key=_notes_order)
        spell = [nt.text_name(nt.parse(s), self.net.single_output) for s in symbols]
        if not summary:
            return ", ".join(spell[:50]) + (f" and {len(spell) - 50:,} more" if len(spell) > 50 else "")
        kinds: dict[str, list[str]] = {}
        for s, text in zip(symbols, spell):
            kinds.setdefault(nt.parse(s).kind, []).append(text)
        return ", ".join(", ".join(t) if len(t) <= 3 else f"{t[0]} … {t[-1]} ({len(t):,})"
                         for t in kinds.values())

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
        """∂L/∂O_kj: from the loss for the output layer, else Σ_m w^{k+1}_jm δ_{k+1,m}, plus
        ∂L/∂O_{k+1,j} when layer k+1 is residual (the skip passes O_kj on unchanged)."""
        if k == self.net.depth:
            return self.dL_dyhat[j - 1]
        terms = [_product(nt.weight(k + 1, j, m), nt.delta(k + 1, m)) for m in range(1, self.spec.layers[k + 1] + 1)]
        if self.net.skips(k + 1):
            terms.append(nt.grad_output(k + 1, j))
        return _sum_of_distinct(terms)

    def delta_definition(self, k: int, j: int) -> sympy.Expr:
        """δ_kj in terms of ∂L/∂O of its own layer (memo symbols) and the layer's outputs."""
        act = self.net.activation(k)
        width = self.spec.layers[k]
        if k == self.net.depth:
            return self.output_delta(j)
        if act.elementwise:
            return nt.grad_output(k, j) * self.net.slope(k, j)
        outs = self.activated_outputs(k)
        return sympy.Add(*[nt.grad_output(k, m) * softmax_jacobian(outs, m - 1, j - 1)
                           for m in range(1, width + 1)])

    def activated_outputs(self, k: int) -> list[sympy.Expr]:
        """g(z_k1), g(z_k2), ... of layer k: its outputs, less the skip on a residual layer."""
        return [self.net.activated(k, m) for m in range(1, self.spec.layers[k] + 1)]

    def output_delta(self, j: int) -> sympy.Expr:
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
        self.net.per_row()
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
                memo = {nt.delta(k + 1, m): self.resolved_delta(k + 1, m)
                        for m in range(1, self.spec.layers[k + 1] + 1)}
                if self.net.skips(k + 1):
                    memo[nt.grad_output(k + 1, j)] = self.resolved_dO(k + 1, j)
                expr = expr.xreplace(memo)
                # once per node: the loss factor shared by every path comes out front,
                # -(y - ŷ)(w^3_11 w^2_11 + ...), as a hand derivation writes it
                expr = sympy.factor_terms(expr)
            self._resolved_dO[key] = expr
        return self._resolved_dO[key]

    def resolved_delta(self, k: int, j: int) -> sympy.Expr:
        """δ_kj in the notes' vocabulary (y, ŷ, O, x, w); memoised per node."""
        self.net.per_row()
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
        """The Gradient of one parameter.

        Parameters
        ----------
        parameter : str or sympy.Symbol
            Its printed name (``"w^2_11"``, ``"b_21"``), LaTeX (``"w^{2}_{11}"``), symbol name
            (``"w_2_1_1"``) or symbol.

        Raises
        ------
        KeyError
            When the network has no such parameter.
        """
        self.net.per_row()
        name = _name_of(parameter, self.net.single_output)
        if name is None or name.kind not in ("w", "b") or not self._exists(name):
            raise KeyError(f"{parameter} is not a parameter of the {self.spec.describe()}")
        if name.kind == "w":
            k, i, j = name.indices
            return Gradient(self, k, i, j)
        k, j = name.indices
        return Gradient(self, k, None, j)

    def _exists(self, name: nt.Name) -> bool:
        layers = self.spec.layers
        if name.kind == "w":
            k, i, j = name.indices
            return 1 <= k <= self.net.depth and 1 <= i <= layers[k - 1] and 1 <= j <= layers[k]
        k, j = name.indices
        return self.spec.bias and 1 <= k <= self.net.depth and 1 <= j <= layers[k]

    @cached_property
    def gradients(self) -> "Gradients":
        """Every Gradient, in backprop order (output layer first, as the notes derive them):
        node by node, the weights into node j, then its bias; a lazy sequence, each Gradient
        made when it is indexed or iterated over."""
        self.net.per_row()
        return Gradients(self)

    def _gradients_from(self, start: int) -> Iterator[Gradient]:
        """The gradients from position ``start`` on, made one at a time."""
        layers, per = self.spec.layers, int(self.spec.bias)
        skip = start
        for k in range(self.net.depth, 0, -1):
            block = layers[k] * (layers[k - 1] + per)
            if skip >= block:
                skip -= block
                continue
            j0, i0 = divmod(skip, layers[k - 1] + per)
            skip = 0
            for j in range(j0 + 1, layers[k] + 1):
                for i in range(i0 + 1, layers[k - 1] + 1):
                    yield Gradient(self, k, i, j)
                if per:
                    yield Gradient(self, k, None, j)
                i0 = 0

    def position(self, g: Gradient) -> int:
        """Where ``g`` sits in :attr:`gradients` (backprop order), computed, not searched."""
        layers, per = self.spec.layers, int(self.spec.bias)
        before = sum(layers[m] * (layers[m - 1] + per) for m in range(g.layer + 1, self.net.depth + 1))
        inside = layers[g.layer - 1] if g.source is None else g.source - 1
        return before + (g.node - 1) * (layers[g.layer - 1] + per) + inside

    def __iter__(self):
        return iter(self.gradients)

    def __len__(self) -> int:
        return self.spec.n_parameters

    # -- the chain factorisation -------------------------------------------------------------
    def edges(self, k: int) -> int:
        """How many edges lead from one node of layer k-1 into layer k: one per node (through
        its weight), one per pair of nodes through a residual softmax layer's z's, plus the
        skip of a residual layer."""
        n = self.spec.layers[k]
        if not self.net.skips(k):
            return n
        return (n if self.net.activation(k).elementwise else n * n) + 1

    def chain_paths(self, k: int) -> int:
        """How many paths lead from a parameter of layer k to the loss (a skip is a path of
        its own: O_kj reaches O_{k+1,j} through z_{k+1,j} and around it)."""
        start = 1 if self.net.activation(k).elementwise else self.spec.layers[k]
        return start * math.prod(self.edges(m) for m in range(k + 1, self.net.depth + 1))

    def node_factor(self, k: int, m: int, prev: sympy.Expr) -> sympy.Expr:
        """∂O_{k,m}/∂prev where prev is O_{k-1,j}: g'(z_km) w^k_jm, or through softmax, plus 1
        for the skip of a residual layer when m = j (the total derivative)."""
        src = nt.parse(prev).indices[-1] if nt.parse(prev) else None
        skip = sympy.S.One if self.net.skips(k) and src == m else sympy.S.Zero
        if self.net.activation(k).elementwise:
            return self.net.slope(k, m) * nt.weight(k, src, m) + skip
        outs = self.activated_outputs(k)
        return sympy.Add(*[softmax_jacobian(outs, m - 1, n - 1) * nt.weight(k, src, n)
                           for n in range(1, self.spec.layers[k] + 1)]) + skip

    def _edges_into(self, k: int, p: int) -> list[tuple[int, list[Factor]]]:
        """The edges from O_{k-1,p} into layer k as (node reached, factors, lowest first): one
        factor ∂O_km/∂O_{k-1,p} on a plain layer; on a residual layer the way through z split
        in two, ∂z_kn/∂O_{k-1,p} = w^k_pn and ∂O_km/∂z_kn = g', and the skip, whose factor
        ∂O_kp/∂O_{k-1,p} is 1 (printed as the skip, not as the total ∂O_kp/∂O_{k-1,p})."""
        prev, width = self.net.O(k - 1, p), self.spec.layers[k]
        if not self.net.skips(k):
            return [(m, [Factor(self.net.O(k, m), prev, self.node_factor(k, m, prev))]) for m in range(1, width + 1)]
        out = []
        elementwise = self.net.activation(k).elementwise
        outs = None if elementwise else self.activated_outputs(k)
        for m in range(1, width + 1):
            for n in ([m] if elementwise else range(1, width + 1)):
                zn = nt.preactivation(k, n)
                slope = self.net.slope(k, m) if elementwise else softmax_jacobian(outs, m - 1, n - 1)
                out.append((m, [Factor(zn, prev, nt.weight(k, p, n)), Factor(self.net.O(k, m), zn, slope)]))
        out.append((p, [Factor(self.net.O(k, p), prev, sympy.S.One, skip=True)]))
        return out

    def chain(self, g: Gradient) -> list[list[Factor]]:
        """Paths from the parameter to L, each a list of factors, the notes' way:
        ∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11; a residual layer's skip is a path of its own.
        Wide networks get the memoised chain instead:
        ∂L/∂z_kj · ∂z_kj/∂P, with δ_kj = ∂L/∂z_kj taken from the memo table (resolved
        when that is short, else the memo symbol δ_kj itself, defined in the δ table)."""
        k, j, L = g.layer, g.node, self.net.depth
        if self.chain_paths(k) > MAX_CHAIN_PATHS:
            z = nt.preactivation(k, j)
            short = form_terms(self.spec, k, "formula") <= MAX_CHAIN_VALUE_TERMS
            delta = self.resolved_delta(k, j) if short else nt.delta(k, j)
            return [[Factor(_LOSS, z, delta), Factor(z, g.parameter, g.local)]]
        act = self.net.activation(k)
        if act.elementwise:
            first = [(j, self.net.slope(k, j) * g.local)]
        else:
            outs = self.activated_outputs(k)
            first = [(m, softmax_jacobian(outs, m - 1, j - 1) * g.local)
                     for m in range(1, self.spec.layers[k] + 1)]
        # each path: (the node it has reached, its factors from the parameter up)
        paths = [(m, [Factor(self.net.O(k, m), g.parameter, value)]) for m, value in first]
        for layer in range(k + 1, L + 1):
            paths = [(m, factors + edge) for last, factors in paths
                     for m, edge in self._edges_into(layer, last)]
        return [[Factor(_LOSS, self.net.O(L, last), self.dL_dyhat[last - 1])] + factors[::-1]
                for last, factors in paths]


class Gradients(Sequence):
    """Every :class:`Gradient` of a derivation in backprop order, made on access: len,
    indexing (negative too), slicing (a lazy sub-sequence) and iteration cost O(1) per
    gradient, never the whole network up front.  ``d.gradient("w^1_11")`` finds one by name.
    """

    def __init__(self, derivation: Derivation, positions: range | None = None):
        self.derivation = derivation
        self._positions = range(derivation.spec.n_parameters) if positions is None else positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Gradients(self.derivation, self._positions[index])
        try:
            position = self._positions[operator.index(index)]
        except IndexError:
            raise IndexError(f"gradient {index} of {len(self)}") from None
        return next(self.derivation._gradients_from(position))

    def __iter__(self) -> Iterator[Gradient]:
        r = self._positions
        if r.step == 1:
            for _, g in zip(r, self.derivation._gradients_from(r.start)):
                yield g
        else:
            for position in r:
                yield next(self.derivation._gradients_from(position))

    def __contains__(self, g) -> bool:
        return (isinstance(g, Gradient) and g.derivation is self.derivation
                and self.derivation.position(g) in self._positions)

    def index(self, g, start: int = 0, stop: int | None = None) -> int:
        if g not in self:
            raise ValueError(f"{g!r} is not in {self!r}")
        at = self._positions.index(self.derivation.position(g))
        if not start <= at < (len(self) if stop is None else stop):
            raise ValueError(f"{g!r} is not in {self!r}[{start}:{stop}]")
        return at

    def count(self, g) -> int:
        return int(g in self)

    def __repr__(self) -> str:
        names = [f"∂L/∂{g.name}" for g in self[:3]]
        more = ", …" if len(self) > 3 else ""
        return f"Gradients({len(self):,} of the {self.derivation.spec.describe()}: {', '.join(names)}{more})"


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


def _sum_of_distinct(terms: list[sympy.Expr]) -> sympy.Expr:
    """The sum of distinct products of symbols, in SymPy's canonical order without re-running
    Add's flattening (equal to ``sympy.Add(*terms)``: nothing to collect; ~5× cheaper)."""
    if len(terms) == 1:
        return terms[0]
    _addsort(terms)
    return sympy.Add._from_args(tuple(terms), is_commutative=True)


def _shortest(expr: sympy.Expr) -> sympy.Expr:
    """The shorter of two cheap normal forms: common factors pulled out, or the rational
    function cancelled (which turns sigmoid + bce into ŷ - y)."""
    candidates = [sympy.factor_terms(expr), sympy.factor_terms(sympy.cancel(expr))]
    return min(candidates, key=sympy.count_ops)


def _name_of(key, single_output: bool) -> nt.Name | None:
    """The Name behind a symbol (ours or a plain Symbol of the same name) or any spelling the
    tool prints ('w^2_11', 'w^{2}_{11}', 'x_i1', 'y', 'w_2_1_1'); None for anything else."""
    if isinstance(key, sympy.Symbol):
        return nt.parse(key.name)
    return nt.from_printed(key, single_output) if isinstance(key, str) else None


#: The order names are listed in: inputs, targets, then parameters as the notes number them.
_KIND_ORDER = {"x": 0, "y": 1, "w": 2, "b": 3}


def _notes_order(s: sympy.Symbol):
    name = nt.parse(s)
    return (_KIND_ORDER.get(name.kind, 4), name.indices) if name else (5, (), s.name)


def derive(spec: Spec) -> Derivation:
    """Derive every ∂L/∂w and ∂L/∂b of a network, lazily: each form is built when asked for.

    Parameters
    ----------
    spec : Spec
        The network, from :func:`~backprop.derive.spec.make_spec` or
        :func:`~backprop.derive.spec.load_toml`.

    Returns
    -------
    Derivation
        Its :attr:`~Derivation.gradients`, one :class:`Gradient` per parameter.

    Raises
    ------
    UserTypeError
        When ``spec`` is not a Spec (a TypeError).

    Examples
    --------
    >>> from backprop.derive import derive, make_spec
    >>> d = derive(make_spec("2-2-1", "linear", "se"))
    >>> print(d.printer.text(d.gradient("w^2_11").formula))
    -2 (y - ŷ) O_11
    """
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
    return {g.parameter: float(g.memoised.xreplace(memo)) for g in derivation.gradients}


__all__ = ["FORMS", "Derivation", "Factor", "Gradient", "Gradients", "derive", "numeric_gradients"]
