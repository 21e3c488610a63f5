r"""Known slips in hand-derived gradients: one table entry per slip (id, label, explanation).

A ``wrong`` verdict names the slip that, applied to the true derivation, reproduces the
claim (see :func:`label`).  The ids are shared with the labelled corpus and the matrix-form
checker, so they never change; a new slip is one new entry in :data:`SLIPS`.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import sympy

from backprop.derive import notation as nt
from backprop.derive.activations import ACTIVATIONS, a as _a, derivative, z as _z
from backprop.derive.losses import LOSSES, is_canonical_pair, names_where


@dataclass(frozen=True)
class Slip:
    """One known slip: ``id`` (stable), ``label`` (a few words), ``explanation`` (why it is wrong)."""

    id: str
    label: str
    explanation: str

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "explanation": self.explanation}


_ROWS = (
    ("missing_gprime", "missing g' factor",
     "the chain passes through an activation: every node on the path contributes its "
     "derivative g'(z) (for sigmoid O(1 - O), for tanh 1 - O^2), and the claim leaves one out"),
    ("gprime_at_output", "g' evaluated at the output instead of the pre-activation",
     "g'(z) is the activation's derivative at the pre-activation z; writing σ'(O) = "
     "σ(O)(1 - σ(O)) applies σ twice (O(1 - O) is already σ'(z))"),
    ("wrong_layer_weight", "a weight of the wrong layer",
     "the factor ∂z/∂O of a node is the weight of the layer that node feeds (w^{k+1}), not "
     "the weight of the layer being differentiated (or another layer)"),
    ("transposed_indices", "transposed weight indices",
     "w^k_{ij} goes from node i of layer k-1 to node j of layer k; the claim uses w^k_{ji}"),
    ("missing_skip", "forgot the skip path",
     "a residual layer adds its input to its output (O_k = g(z_k) + O_{k-1}), so O_{k-1} also "
     "reaches the loss around the layer, through the skip, with the factor 1 (∂O_k/∂O_{k-1} = "
     "g'(z_k) w + 1): the gradient sums the paths through the skip too, and the claim leaves them out"),
    ("missing_path", "a missing path of the sum",
     "the parameter reaches the loss along several paths (through every node of the next "
     "layer, or every output); the gradient is the sum over all of them and the claim drops some"),
    ("missing_transpose", "missing transpose",
     "in matrix form the backward pass multiplies by the transposed weight matrix (δ W^T or "
     "W^T δ, by layout); the claim multiplies by W itself"),
    ("extra_transpose", "extra transpose",
     "the claim transposes a matrix that the matrix-form chain rule uses as it is"),
    ("hadamard_vs_matmul", "element-wise product confused with a matrix product",
     "g'(Z) multiplies the back-propagated error element by element (⊙), while the weights "
     "multiply it as a matrix product; the claim swaps the two"),
    ("missing_mean", "missing 1/n",
     "the loss is a mean over the n rows, so every gradient carries the factor 1/n"),
    ("extra_mean", "extra 1/n",
     "the loss is a sum (or one row), not a mean, so the gradient has no factor 1/n"),
    ("sign_error", "sign error",
     "∂L/∂ŷ of (y - ŷ)^2 is -2(y - ŷ): the inner derivative of y - ŷ is -1, and the claim "
     "has the opposite sign"),
    ("factor_two", "factor 2 vs 1/2 (loss convention)",
     "the derivative of (y - ŷ)^2 carries a 2, that of ½(y - ŷ)^2 does not: the claim uses the "
     "other loss convention"),
    ("extra_gprime_fused", "extra g' with sigmoid+bce or softmax+cce",
     "with a sigmoid output and binary cross-entropy (or softmax and categorical cross-entropy) "
     "∂L/∂z at the output is already ŷ - y; multiplying by g'(z) again counts it twice"),
    ("bias_extra_input", "bias gradient with an extra input factor",
     "∂z/∂b = 1: the bias gradient is the weight's gradient without the input (x or the "
     "previous layer's O) that the weight multiplies"),
    ("bias_not_summed", "bias gradient not summed over rows",
     "in matrix form the bias is shared by every row, so its gradient sums the per-row errors "
     "(a row vector), not the n-row matrix of them"),
    ("bn_batch_means_forgotten", "batch-mean terms forgotten",
     "batch normalisation divides by the batch's σ and subtracts its μ, and both depend on every "
     "row: ∂L/∂Z = γ/σ ⊙ (G - mean_rows(G) - X̂ ⊙ mean_rows(G ⊙ X̂)), and the claim keeps only "
     "γ/σ ⊙ G, as if μ and σ were constants"),
    ("bn_batch_mean_term_missing", "one batch-mean term forgotten",
     "∂L/∂Z of a batch-normalised layer subtracts two batch means, mean_rows(G) (through μ) and "
     "X̂ ⊙ mean_rows(G ⊙ X̂) (through σ²); the claim leaves one of them out"),
)

#: id -> Slip, in the order above (the order slips are tried in when labelling a claim).
SLIPS: dict[str, Slip] = {row[0]: Slip(*row) for row in _ROWS}


def get(slip_id: str) -> dict:
    """The Verdict's ``misconception`` field for one slip id."""
    return SLIPS[slip_id].as_dict()


# -- applying the slips to a derived gradient ------------------------------------------------
# A slip's ``apply`` takes a :class:`Truth` (one parameter's derivation, as path products)
# and returns candidates (wrong formula, where the slip is): the claims that slip produces.
# The matrix-form slips (transposes, ⊙ vs product, 1/n over rows, bias sums) have no scalar
# reading; their ids label matrix-form verdicts (:mod:`backprop.verify.matrix_form`).

#: Points a candidate must match the claim at (continuous random values, seeded by the claim;
#: enough that a relu node is alive at some of them).
N_POINTS = 8
REL_TOL = 1e-9


class Truth:
    """∂L/∂P of one parameter as a sum over paths to the outputs, with every factor a hook
    a slip can replace: δ of the output (``dout``), g' of a hidden node (``gp``), the weight
    on an edge (``weight``), and the input the parameter multiplies (``local``).  A path
    crossing a residual layer by its skip has the factor 1 there: no weight, and no g' of
    the node it reaches (``skips``: per path, which of its edges are skips)."""

    def __init__(self, derivation, parameter: sympy.Symbol, points: "_Points | None" = None):
        """Symbolic candidates, or (with ``points``) their values there as NumPy arrays:
        the same path sums with every factor evaluated once (fast enough to try them all)."""
        self.points = points
        self._values: dict = {}
        self.d = derivation
        self.net = derivation.net
        self.spec = derivation.spec
        self.g = derivation.gradient(parameter)
        self.parameter = parameter
        self.k, self.i, self.j = self.g.layer, self.g.source, self.g.node
        self.formula = self.g.formula
        depth = self.net.depth
        self.elementwise = all(self.net.activation(l).elementwise for l in range(self.k, depth))
        walks = list(self._paths()) if self.elementwise else []
        self.paths = [nodes for nodes, _ in walks]
        self.skips = [skips for _, skips in walks]
        #: None: a slip is applied on every path; n: on path n only (see :func:`_one_path`)
        self.focus: int | None = None

    def _paths(self) -> Iterator[tuple[tuple[int, ...], tuple[bool, ...]]]:
        """Node indices (m_k = j, m_{k+1}, ..., m_L) of every path to an output, with which
        of its edges are a residual layer's skip (m_{l+1} = m_l, around layer l+1)."""
        layers = self.spec.layers
        out = [((self.j,), ())]
        for l in range(self.k + 1, self.net.depth + 1):
            out = [(p + (m,), s + (False,)) for p, s in out for m in range(1, layers[l] + 1)] + \
                  ([(p + (p[-1],), s + (True,)) for p, s in out] if self.net.skips(l) else [])
        return iter(out)

    def val(self, expr):
        """expr itself (symbolic) or its values at the points (numeric, memoised)."""
        if self.points is None:
            return expr
        if expr not in self._values:
            got = self.points.values(sympy.sympify(expr, strict=True))
            self._values[expr] = np.full(len(self.points.full), np.nan) if got is None else np.array(got)
        return self._values[expr]

    @property
    def F(self):
        """The true gradient (symbolic or its values)."""
        return self.val(self.formula)

    # the hooks, as the derivation has them
    def dout(self, m: int) -> sympy.Expr:
        return self.d.resolved_delta(self.net.depth, m)

    def gp(self, l: int, m: int) -> sympy.Expr:
        return self.net.slope(l, m)

    def weight(self, l: int, a: int, b: int) -> sympy.Expr:
        return nt.weight(l, a, b)

    def local(self) -> sympy.Expr:
        return self.g.local

    def build(self, dout=None, gp=None, weight=None, local=None, keep=None) -> sympy.Expr:
        """Σ over paths of δ_L · Π (g' w) · local, with any hook replaced (``keep`` filters paths)."""
        slipped = (dout or self.dout, gp or self.gp, weight or self.weight)
        val = self.val
        total = sympy.S.Zero
        for n, path in enumerate(self.paths):
            if keep is not None and not keep(n):
                continue
            # with a focus, the slip is on that one path; the others are written right
            dout, gp, weight = slipped if self.focus in (None, n) else (self.dout, self.gp, self.weight)
            term = val(dout(path[-1]))
            through_z = True  # the parameter's node is reached through its z
            for pos, l in enumerate(range(self.k, self.net.depth)):
                if through_z:
                    term = term * val(gp(l, path[pos]))
                through_z = not self.skips[n][pos]
                if through_z:
                    term = term * val(weight(l + 1, path[pos], path[pos + 1]))
            total = total + term
        return total * val(self.local() if local is None else local)

    def tex(self, expr) -> str:
        return self.d.printer.latex(expr)

    def frac(self, num, den) -> str:
        return rf"\frac{{\partial {num if isinstance(num, str) else self.tex(num)}}}{{\partial {self.tex(den)}}}"

    def nodes(self, l: int) -> list[int]:
        """The nodes of layer l the paths go through."""
        return sorted({p[l - self.k] for p in self.paths})

    def weight_ok(self, l: int, a: int, b: int) -> bool:
        layers = self.spec.layers
        return 1 <= l <= self.net.depth and 1 <= a <= layers[l - 1] and 1 <= b <= layers[l]


Candidate = tuple  # (sympy.Expr, str): the wrong formula, and where the slip is (plain text)


def _gp_z_form(name: str) -> sympy.Expr | None:
    """g' written in the pre-activation z (σ(z)(1-σ(z)), 1 - tanh²z), or None where it is
    the same written in the output (linear, relu) or constant."""
    d_out, var = derivative(name)
    if var is not _a or d_out.is_number:
        return None
    act = ACTIVATIONS[name]
    d_z = sympy.diff(act.sym(_z), _z)
    return d_z if d_z.has(_z) else None


def _hidden_layers(t: Truth) -> range:
    return range(t.k, t.net.depth)


def _missing_gprime(t: Truth) -> list[Candidate]:
    out = []
    if not t.paths:
        return out
    for l in _hidden_layers(t):
        if l == t.k:
            node = t.net.O(l, t.j)
            where = (f"the factor {t.frac(node, t.parameter)} should be {t.tex(t.gp(l, t.j) * t.local())}, "
                     f"the claim has {t.tex(t.local())}: g' of {t.tex(node)} is missing")
        else:
            where = "g' of " + ", ".join(f"{t.tex(t.net.O(l, m))} ({t.tex(t.gp(l, m))})" for m in t.nodes(l)) + \
                f" is missing from the chain (layer {l})"
        out.append((t.build(gp=lambda l2, m, l=l: sympy.S.One if l2 == l else t.gp(l2, m)), where))
    L = t.net.depth
    if t.net.activation(L).elementwise:
        out.append((t.build(dout=lambda m: t.d.dL_dyhat[m - 1]),
                    "g' of the output, " + ", ".join(t.tex(t.gp(L, m)) for m in t.nodes(L)) +
                    ", is missing from ∂L/∂z = ∂L/∂ŷ · ∂ŷ/∂z"))
    return out


def _gprime_at_output(t: Truth) -> list[Candidate]:
    out = []
    if not t.paths:
        return out
    for l in _hidden_layers(t):
        form = _gp_z_form(t.net.activation(l).name)
        if form is not None:
            out.append((t.build(gp=lambda l2, m, l=l, f=form: f.xreplace({_z: t.net.O(l2, m)}) if l2 == l
                                else t.gp(l2, m)),
                        f"g' of layer {l} is evaluated at the output O_{l}j instead of z_{l}j"))
    L = t.net.depth
    act = t.net.activation(L)
    form = _gp_z_form(act.name) if act.elementwise else None
    if form is not None:
        out.append((t.build(dout=lambda m: t.d.dL_dyhat[m - 1] * form.xreplace({_z: t.net.O(L, m)})),
                    "g' of the output layer is evaluated at ŷ instead of z"))
    return out


def _extra_gprime_fused(t: Truth) -> list[Candidate]:
    L = t.net.depth
    act, loss = t.net.activation(L).name, t.spec.loss
    if not t.paths or not is_canonical_pair(act, loss):
        return []
    yh = t.net.O
    return [(t.build(dout=lambda m: t.dout(m) * yh(L, m) * (1 - yh(L, m))),
             f"δ of the output is already ŷ - y with {act} and {loss}; the claim multiplies it by g' again")]


def _wrong_layer_weight(t: Truth) -> list[Candidate]:
    out = []
    if not t.paths:
        return out
    for l in range(t.k + 1, t.net.depth + 1):
        for other in range(1, t.net.depth + 1):
            if other == l:
                continue

            def w(l2, a, b, l=l, other=other):
                if l2 == l and t.weight_ok(other, a, b):
                    return nt.weight(other, a, b)
                return t.weight(l2, a, b)
            out.append((t.build(weight=w), f"the weights of layer {l} on the path are written as w^{other}"))
    return out


def _transposed_indices(t: Truth) -> list[Candidate]:
    out = []
    if t.paths:
        for l in range(t.k + 1, t.net.depth + 1):
            def w(l2, a, b, l=l):
                return nt.weight(l2, b, a) if l2 == l and t.weight_ok(l2, b, a) else t.weight(l2, a, b)
            out.append((t.build(weight=w), f"the weights of layer {l} on the path have their indices "
                                           "swapped (w_ji for w_ij)"))
    if t.i is not None and t.i != t.j and t.weight_ok(t.k, t.j, t.i):
        other = t.d.gradient(nt.weight(t.k, t.j, t.i))
        out.append((t.val(other.formula), f"the claim is ∂L/∂w^{t.k}_{t.j}{t.i}: the indices of w^{t.k}_{t.i}{t.j} "
                                   "are swapped"))
        if t.j <= t.spec.layers[t.k - 1]:
            out.append((t.build(local=t.net.O(t.k - 1, t.j)),
                        f"∂z_{t.k}{t.j}/∂w^{t.k}_{t.i}{t.j} is the input of node {t.i}, not of node {t.j}"))
    return out


def _missing_skip(t: Truth) -> list[Candidate]:
    """Every path through a skip left out (the claim differentiates the layers as if plain)."""
    skipped = [n for n, skips in enumerate(t.skips) if any(skips)]
    if not skipped:
        return []
    layers = sorted({l for skips in t.skips for l, s in zip(range(t.k + 1, t.net.depth + 1), skips) if s})
    paths = "the path" if len(skipped) == 1 else f"the {len(skipped)} paths"
    return [(t.build(keep=lambda n: n not in skipped),
             f"{paths} around layer {', '.join(map(str, layers))} through its skip (the 1 of "
             f"∂O_k/∂O_(k-1) = g' w + 1) {'is' if len(skipped) == 1 else 'are'} missing from the sum")]


def _missing_path(t: Truth) -> list[Candidate]:
    n = len(t.paths)
    if n < 2:
        return []
    out = [(t.build(keep=lambda m, drop=drop: m != drop), f"the path through output/node sequence "
            f"{t.paths[drop]} is missing from the sum over {n} paths") for drop in range(n)]
    out += [(t.build(keep=lambda m, only=only: m == only), f"only the path {t.paths[only]} of the {n} paths "
             "is kept") for only in range(n)]
    return out


def _dl_dyhat(t: Truth, scale) -> str:
    """'the factor ∂L/∂ŷ should be A, the claim has scale·A' (one output), else in words."""
    if t.spec.n_outputs == 1:
        yhat, right = t.net.O(t.net.depth, 1), t.d.dL_dyhat[0]
        return f"the factor {t.frac('L', yhat)} should be {t.tex(right)}, the claim has {t.tex(scale * right)}"
    return f"∂L/∂ŷ is multiplied by {t.tex(scale)}"


#: Losses with the ½ convention question: (y - ŷ)² or ½(y - ŷ)² (the table's squared terms).
_SQUARED = names_where(squared=True)


def _sign_error(t: Truth) -> list[Candidate]:
    return [(-t.F, _dl_dyhat(t, -1) + ": the sign is wrong")]


def _factor_two(t: Truth) -> list[Candidate]:
    if t.spec.loss not in _SQUARED:
        return []
    return [(2 * t.F, _dl_dyhat(t, 2) + ": a factor 2 the loss convention does not give"),
            (t.F / 2, _dl_dyhat(t, sympy.S.Half) + ": the factor 2 of the loss is missing")]


def _mean(t: Truth, missing: bool) -> list[Candidate]:
    n = t.spec.n_outputs
    if n < 2:
        return []
    averaged = getattr(t.d.loss, "mean_over_outputs", False)
    if missing and averaged:
        return [(t.F * n, f"the loss averages over the {n} outputs: the factor 1/{n} is missing")]
    if not missing and not averaged:
        return [(t.F / n, f"the loss sums over the {n} outputs: there is no factor 1/{n}")]
    return []


def _bias_extra_input(t: Truth) -> list[Candidate]:
    if t.i is not None:
        return []
    z = nt.preactivation(t.k, t.j)
    return [(t.F * t.val(t.net.O(t.k - 1, i)), f"the factor {t.frac(z, t.parameter)} is 1, the claim has "
             f"{t.tex(t.net.O(t.k - 1, i))} (the input a weight multiplies, not the bias)")
            for i in range(1, t.spec.layers[t.k - 1] + 1)]


def _matrix_only(t: Truth) -> list[Candidate]:
    return []


#: id -> function applying that slip to one parameter's Truth.
APPLY: dict[str, Callable[[Truth], list[Candidate]]] = {
    "missing_gprime": _missing_gprime,
    "gprime_at_output": _gprime_at_output,
    "extra_gprime_fused": _extra_gprime_fused,
    "wrong_layer_weight": _wrong_layer_weight,
    "transposed_indices": _transposed_indices,
    "missing_skip": _missing_skip,
    "missing_path": _missing_path,
    "bias_extra_input": _bias_extra_input,
    "sign_error": _sign_error,
    # with two outputs, x2 and /2 are also a mean over outputs: a loss that averages (mse)
    # blames its mean first, a loss that sums (se, half_se) the 2 vs ½ convention first
    "missing_mean": lambda t: _mean(t, True),
    "factor_two": _factor_two,
    "extra_mean": lambda t: _mean(t, False),
    "missing_transpose": _matrix_only,
    "extra_transpose": _matrix_only,
    "hadamard_vs_matmul": _matrix_only,
    "bias_not_summed": _matrix_only,
    "bn_batch_means_forgotten": _matrix_only,
    "bn_batch_mean_term_missing": _matrix_only,
}
assert set(APPLY) == set(SLIPS)

#: Slips a student also makes on one path of a sum only (one g' left out, one weight of the
#: wrong layer): tried path by path after every slip on all paths, up to this many paths.
PER_PATH = ("missing_gprime", "gprime_at_output", "wrong_layer_weight", "transposed_indices")
MAX_PER_PATH = 8


def _applied(t: Truth) -> Iterator[tuple[str, object, str]]:
    """(slip id, candidate, where): every slip on all paths, then the PER_PATH ones on one."""
    for slip_id, apply in APPLY.items():
        for expr, where in apply(t):
            yield slip_id, expr, where
    if 2 <= len(t.paths) <= MAX_PER_PATH:
        for slip_id in PER_PATH:
            for n, path in enumerate(t.paths):
                t.focus = n
                try:
                    found = APPLY[slip_id](t)
                finally:
                    t.focus = None
                nodes = " → ".join(str(m) for m in path)
                for expr, where in found:
                    yield slip_id, expr, f"{where}, on the path through nodes {nodes} only"


def candidates(derivation, parameter, points: "_Points | None" = None) -> Iterator[tuple[str, object, str]]:
    """(slip id, wrong formula, where) for every slip applied to ∂L/∂parameter (with
    ``points``: the formula's values there instead of the formula)."""
    yield from _applied(Truth(derivation, parameter, points))


class _Points:
    """A few seeded random points (continuous values: no kink, no integer coincidence) with
    the forward pass done, and float values of expressions at them."""

    def __init__(self, net, loss_name: str, seed: str, n: int = N_POINTS):
        rng = random.Random(zlib.crc32(seed.encode()))
        self.net = net
        self.full = []
        for _ in range(n):
            pt = {s: rng.uniform(-1.5, 1.5) for s in net.inputs + net.parameters()}
            ys = net.targets
            targets = LOSSES[loss_name].targets  # the loss table's target domain
            if targets.kind == "one_hot":
                hot = rng.randrange(len(ys))
                pt.update({s: float(i == hot) for i, s in enumerate(ys)})
            elif targets.labels:
                pt.update({s: float(rng.choice(targets.labels)) for s in ys})
            else:
                pt.update({s: rng.uniform(-2, 2) for s in ys})
            full = net.forward_values(pt)
            full.update(pt)
            self.full.append(full)

    def values(self, expr: sympy.Expr) -> list[float] | None:
        """expr at every point (one vectorised NumPy call), or None where it is undefined."""
        syms = sorted(expr.free_symbols, key=str)
        if any(sym not in self.full[0] for sym in syms):
            return None
        try:
            if expr.is_Symbol or expr.is_number:  # most factors: no code to generate
                got = [float(f[expr]) if expr.is_Symbol else complex(expr).real for f in self.full]
                return got if all(math.isfinite(v) for v in got) else None
            fn = sympy.lambdify(syms, expr, modules="numpy")
            with np.errstate(all="ignore"):
                got = np.broadcast_to(np.asarray(fn(*[np.array([f[sym] for f in self.full]) for sym in syms]),
                                                 dtype=float), (len(self.full),))
        except (TypeError, ValueError, NameError, ZeroDivisionError, OverflowError):
            return None
        return [float(v) for v in got] if np.all(np.isfinite(got)) else None


def _same(a, b) -> bool:
    return a is not None and b is not None and all(
        math.isfinite(x) and math.isfinite(y) and abs(x - y) <= REL_TOL * max(1.0, abs(x), abs(y))
        for x, y in zip(a, b))


def label(derivation, parameter, claim: sympy.Expr, seed: str = "") -> tuple[Slip, str] | None:
    """The first slip (table order) that, applied to ∂L/∂parameter, gives ``claim`` (equal at
    N_POINTS random points, and different from the truth), with where it is; None when no
    known slip reproduces it."""
    pts = _Points(derivation.net, derivation.spec.loss, seed or str(claim))
    got = pts.values(claim)
    if got is None:
        return None
    t = Truth(derivation, parameter, pts)
    truth = list(t.F)
    if _same(got, truth):
        return None
    for slip_id, vals, where in _applied(t):
        vals = list(np.broadcast_to(vals, (len(pts.full),)))
        if _same(vals, got) and not _same(vals, truth):
            return SLIPS[slip_id], where
    return None
