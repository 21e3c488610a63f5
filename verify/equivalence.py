r"""Is a claim the same function as the truth?  Decided so that a wrong claim cannot pass.

A claim and the truth (both SymPy expressions in the network's names) are compared in three
stages, each bounded in work:

1. **Symbolic.**  With the forward definitions substituted, ``claim - truth`` is expanded and
   cancelled, but only after :func:`expansion_terms` estimates the work (``(a+b+…)^{40}``
   would be millions of terms): past :data:`TERM_BUDGET` the stage is skipped and the method
   says so.  A difference that reduces to 0 proves the claim; a nonzero constant refutes it.
2. **Random points.**  Continuous random values at several scales (binary fractions with 24
   bits: never small integers or two-decimal numbers, so a term such as
   ``\lfloor 100x + 0.5\rfloor - 100x`` cannot hide), evaluated exactly in rationals where the
   network is rational (linear, relu, leaky relu, step) and otherwise to :data:`DPS` digits
   from exact inputs (SymPy's adaptive evalf: cancellation costs precision, never the answer).
   A point where one side is finite and the other is not (∞, NaN, complex) is a difference.
3. **Kinks.**  Every place where the claim or the truth is not smooth (the arguments of
   Heaviside, Max/Min, Abs, sign, and Piecewise conditions) is found, each kink surface is hit
   exactly (solved for one variable it is linear in) and both sides are compared just off it
   and farther into each region it bounds.  *On* a kink of the truth any value between its
   one-sided limits is a valid (sub)gradient; the claim's choice is accepted and reported.

The outcome is a :class:`Outcome`: a counterexample (the point, the claimed and the actual
value) or the method that showed agreement, plus a note for the verdict.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from math import comb

import sympy

from backprop.derive import notation as nt
from backprop.derive.losses import PREDICTION, TARGET

#: Digits for non-rational evaluation, and the relative tolerance between two such values.
DPS = 40
REL_TOL = sympy.Rational(1, 10 ** 25)
#: Random points: how many, and the scales they are drawn at (cycled).
N_POINTS = 12
SCALES = (sympy.Rational(1, 4), sympy.S.One, sympy.Integer(3))
#: Most terms the symbolic stage may expand to, and the largest expression it starts on.
TERM_BUDGET = 4000
OPS_BUDGET = 3000
#: Kink surfaces examined (per comparison), base points per surface, offsets off a kink.
MAX_KINKS = 12
KINK_BASES = 2
OFFSETS = (sympy.Rational(1, 10 ** 6), sympy.Rational(1, 10), sympy.Rational(1, 2))
ONE_SIDED = sympy.Rational(1, 10 ** 30)


@dataclass
class Outcome:
    """A counterexample dict (``point``, ``claimed``, ``actual``) or None, and how it was shown."""

    counterexample: dict | None
    method: str
    note: str = ""


def expansion_work(expr: sympy.Expr) -> int:
    """Upper estimate of the work of ``sympy.expand(expr)``: the terms it produces at the top,
    plus those it produces inside every distinct function's arguments (expand goes into
    them: gelu's tanh(c(z + 0.044715 z³)) of a weighted sum expands a cube of the sum)."""
    inner = sum(expansion_terms(arg) for f in expr.atoms(sympy.Function) for arg in f.args)
    return expansion_terms(expr) + inner


def size(expr: sympy.Expr, limit: int) -> int:
    """The number of nodes of ``expr``, counted up to ``limit`` (then ``limit + 1``): a bound
    that costs at most ``limit`` steps, where ``sympy.count_ops`` walks the whole tree
    (seconds on a chain rule through gelu)."""
    n = 0
    for _ in sympy.preorder_traversal(expr):
        n += 1
        if n > limit:
            break
    return n


def expansion_terms(expr: sympy.Expr) -> int:
    """Upper estimate of the number of terms ``sympy.expand(expr)`` would produce."""
    if expr.is_Add:
        return sum(expansion_terms(a) for a in expr.args)
    if expr.is_Mul:
        n = 1
        for a in expr.args:
            n *= expansion_terms(a)
            if n > 10 ** 12:
                return n
        return n
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 1:
        m = expansion_terms(expr.base)
        e = int(expr.exp)
        if m == 1:
            return 1
        return comb(m + e - 1, e) if e < 10 ** 4 else 10 ** 12
    return 1


# -- numbers ------------------------------------------------------------------------------
def exact(v) -> sympy.Expr:
    """A number as an exact SymPy number: '1e200' and 80 are exact; floats by their decimal."""
    if isinstance(v, sympy.Basic):
        return sympy.Rational(str(v)) if isinstance(v, sympy.Float) else v
    if isinstance(v, float):
        return sympy.Rational(repr(v))
    return sympy.Rational(v)


def rationalise(expr: sympy.Expr) -> sympy.Expr:
    """Decimal numbers written in a claim as the exact rationals they spell (1.000000001)."""
    floats = expr.atoms(sympy.Float)
    return expr.xreplace({f: sympy.Rational(str(f)) for f in floats}) if floats else expr


def numeric(v: sympy.Expr) -> sympy.Expr:
    """An evaluated value: exact when rational, else DPS digits (complex or NaN as they are)."""
    if v.is_Rational or v in (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return v
    try:
        return v.evalf(DPS)
    except (TypeError, ValueError, ArithmeticError, RecursionError):
        return sympy.nan


def is_finite_real(v: sympy.Expr) -> bool:
    if v.is_Rational:
        return True
    if isinstance(v, sympy.Float):
        return bool(v.is_finite)
    return False


def gap(c: sympy.Expr, a: sympy.Expr) -> float:
    """How far apart two values are, relative to the second (inf: one is not a finite real)."""
    if not (is_finite_real(c) and is_finite_real(a)):
        return math.inf
    return float(abs(c - a) / max(abs(a), sympy.Float(1e-300)))


def agree(c: sympy.Expr, a: sympy.Expr) -> bool | None:
    """True / False for two finite real values; None when neither is (both undefined)."""
    fc, fa = is_finite_real(c), is_finite_real(a)
    if not fc and not fa:
        return None
    if fc != fa:
        return False
    if c.is_Rational and a.is_Rational:
        return bool(c == a)
    return bool(abs(c - a) <= REL_TOL * max(1, abs(a), abs(c)))


def show(v: sympy.Expr, digits: int = 12) -> float | str:
    """A value for a report: exact where a float holds it (so a point can be re-evaluated),
    else ``digits`` significant digits (a string past what a float holds)."""
    if not is_finite_real(v):
        return "not a real number" if v not in (sympy.oo, -sympy.oo) else str(v)
    try:
        f = float(v)
    except (OverflowError, TypeError):
        f = math.inf
    if not math.isfinite(f):
        return str(sympy.Float(v, 8))
    if v.is_Rational and sympy.Rational(f) == v:
        return int(f) if f == int(f) and abs(f) < 1e15 else f
    if digits > 15:
        return str(sympy.Float(v, digits))
    return float(f"{f:.{digits}g}")


_T = sympy.Symbol("t", real=True)


def _apply(f: sympy.Expr, zv: sympy.Expr) -> sympy.Expr:
    """f(t) at a finite number t = zv; Max/Min compared directly (SymPy's own is ~1 ms each)."""
    if isinstance(f, (sympy.Max, sympy.Min)):
        vals = [_apply(a, zv) for a in f.args]
        if all(is_finite_real(v) for v in vals):
            return max(vals) if isinstance(f, sympy.Max) else min(vals)
    return numeric(f.xreplace({_T: zv}))


# -- the network at one point ---------------------------------------------------------------
class Evaluator:
    """Forward values (z and O of every node) at exact points, and expressions evaluated there."""

    def __init__(self, net):
        self.net = net
        self.spec = net.spec
        self._shapes: dict = {}

    def forward(self, point: dict) -> dict:
        """point (x, w, b, y as exact numbers) -> every symbol's value, nodes included."""
        values = dict(point)
        for k in range(1, self.net.depth + 1):
            width = self.spec.layers[k]
            zs = [numeric(self.net.z(k, j).xreplace(values)) for j in range(1, width + 1)]
            for j, zv in enumerate(zs, start=1):
                values[nt.preactivation(k, j)] = zv
            act = self.net.activation(k)
            if act.elementwise:
                f = self._shape(act)
                outs = [_apply(f, zv) if is_finite_real(zv) else sympy.nan for zv in zs]
            else:
                top = max(zs, key=lambda v: v if is_finite_real(v) else 0)
                exps = [sympy.exp(zv - top) for zv in zs]
                total = sympy.Add(*exps)
                outs = [numeric(e / total) for e in exps]
            if self.net.skips(k):  # a residual layer: O_kj = g(z_kj) + O_{k-1,j}
                outs = [numeric(ov + values[self.net.O(k - 1, j)]) for j, ov in enumerate(outs, start=1)]
            for j, ov in enumerate(outs, start=1):
                values[self.net.O(k, j)] = ov
        return values

    def _shape(self, act) -> sympy.Expr:
        """The activation as a formula in :data:`_T` (built once: Max(0, z) per number is slow)."""
        if act.name not in self._shapes:
            self._shapes[act.name] = act.sym(_T)
        return self._shapes[act.name]

    def value(self, expr: sympy.Expr, values: dict) -> sympy.Expr:
        missing = [s for s in expr.free_symbols if s not in values]
        if missing:
            raise KeyError(missing[0])
        try:
            return numeric(expr.xreplace({s: values[s] for s in expr.free_symbols}))
        except (TypeError, ValueError, ArithmeticError, RecursionError):
            return sympy.nan


# -- kinks ---------------------------------------------------------------------------------
def kink_functions(expr: sympy.Expr) -> list[sympy.Expr]:
    """g with a kink or jump of ``expr`` on g = 0: Heaviside/Abs/sign arguments, Max/Min
    pairwise differences, Piecewise conditions (lhs - rhs)."""
    found: list[sympy.Expr] = []
    for f in sympy.preorder_traversal(expr):
        if isinstance(f, (sympy.Heaviside, sympy.Abs, sympy.sign)):
            found.append(f.args[0])
        elif isinstance(f, (sympy.Max, sympy.Min)):
            args = list(f.args)
            found += [args[i] - args[j] for i in range(len(args)) for j in range(i + 1, len(args))]
        elif isinstance(f, sympy.Piecewise):
            for _, cond in f.args:
                for rel in (cond.atoms(sympy.core.relational.Relational) if cond not in (True, False) else ()):
                    found.append(rel.lhs - rel.rhs)
    out: list[sympy.Expr] = []
    for g in found:
        if g.free_symbols and g not in out and -g not in out:
            out.append(g)
    return out


def _variable_order(sym: sympy.Symbol) -> tuple:
    """Biases first (a kink z = 0 is linear in its bias), then inputs, then weights."""
    name = nt.parse(sym)
    rank = {"b": 0, "x": 1, "w": 2}.get(name.kind if name else "", 3)
    return (rank, str(sym))


# -- the comparison ------------------------------------------------------------------------
class Equivalence:
    """Compares claims with truths for one network (see the module docstring)."""

    def __init__(self, net, loss, printer):
        self.net = net
        self.spec = net.spec
        self.loss = loss
        self.printer = printer
        self.eval = Evaluator(net)

    # points ----------------------------------------------------------------------------
    def points(self, seed_text: str, n: int = N_POINTS) -> list[dict]:
        """Seeded random points over x, w, b (continuous, at several scales) and y (by loss)."""
        rng = random.Random(zlib.crc32(seed_text.encode()))
        syms = self.net.inputs + self.net.parameters()
        ys = self.net.targets
        out = []
        for k in range(n):
            scale = SCALES[k % len(SCALES)]
            pt = {s: self._draw(rng, scale) for s in syms}
            if self.loss.one_hot:
                hot = rng.randrange(len(ys))
                pt.update({s: sympy.Integer(int(i == hot)) for i, s in enumerate(ys)})
            elif self.loss.targets.labels:  # 0/1 (bce), ±1 (hinge): the loss table's labels
                pt.update({s: sympy.Integer(rng.choice(self.loss.targets.labels)) for s in ys})
            else:
                pt.update({s: self._draw(rng, scale) for s in ys})
            out.append(pt)
        return out

    @staticmethod
    def _draw(rng: random.Random, scale) -> sympy.Rational:
        v = 0
        while v == 0:
            v = rng.randint(-(1 << 24), 1 << 24)
        return sympy.Rational(v, 1 << 24) * scale

    def counterexample(self, point: dict, c, a) -> dict:
        """The point (exact values) and both sides, with digits enough to see them differ."""
        for digits in (12, 20, 30, DPS):
            if show(c, digits) != show(a, digits):
                break
        return {"point": {self.printer.text(s): show(v) for s, v in point.items()},
                "claimed": show(c, digits), "actual": show(a, digits)}

    # stages ----------------------------------------------------------------------------
    def symbolic(self, diff: sympy.Expr) -> tuple[bool | None, str]:
        """(True proven equal | False proven different | None undecided, why undecided)."""
        if diff == 0:
            return True, ""
        if size(diff, OPS_BUDGET) > OPS_BUDGET:
            return None, "expression too large"
        e = self.net.expand(diff)
        if e.has(sympy.Piecewise, sympy.Heaviside, sympy.Max, sympy.Min, sympy.Abs, sympy.sign,
                 sympy.floor, sympy.ceiling):
            return None, "piecewise"
        if size(e, OPS_BUDGET) > OPS_BUDGET or expansion_work(e) > TERM_BUDGET:
            return None, "expression too large"
        try:
            x = sympy.expand(e, power_exp=False)  # e^{a+b} kept whole: split, it multiplies out the sums it sits in
            if x == 0:
                return True, ""
            if x.is_number and x.is_zero is False:
                return False, ""
            fraction = any(p.exp.is_negative for p in x.atoms(sympy.Pow))  # else cancel cannot help
            if fraction and expansion_terms(x) <= TERM_BUDGET // 4 and size(x, OPS_BUDGET // 4) <= OPS_BUDGET // 4:
                if sympy.cancel(sympy.together(x)) == 0:
                    return True, ""
        except (RecursionError, MemoryError, TypeError, ValueError, ArithmeticError, NotImplementedError):
            return None, "symbolic step failed"
        return None, ""

    def compare(self, claim: sympy.Expr, truth: sympy.Expr, seed: str) -> Outcome:
        claim = rationalise(claim)
        pts = self.points(seed)
        checked, worst = 0, None
        for pt in pts:  # numbers first: a wrong claim stops here, before any symbolic work
            c, a = self._sides(claim, truth, pt)
            res = self._judge(pt, c, a)
            if res is None:
                continue
            checked += 1
            if res is not True:  # show the point where the sides differ most, not the first
                score = gap(c, a)
                if worst is None or score > worst[0]:
                    worst = (score, res)
        if worst is not None:
            return Outcome(worst[1], "numeric")
        proven, why = self.symbolic(claim - truth)
        if proven is False:  # a constant too small for the tolerance (10^-30 at 40 digits)
            full = self.eval.forward(pts[0])
            cx = self.counterexample(pts[0], self.eval.value(claim, full), self.eval.value(truth, full))
            return Outcome(cx, "symbolic (the sides differ by a nonzero constant)")
        kinks, note = self._kinks(claim, truth, pts)
        if isinstance(kinks, dict):
            return Outcome(kinks, "numeric (at a kink)")
        if checked == 0 and kinks == 0:
            return Outcome(None, "undefined")
        if proven is True:
            return Outcome(None, f"symbolic and numeric ({checked} random points)", note)
        method = f"numeric ({checked} random points"
        if kinks:
            method += f", {kinks} points at and around kinks"
        method += ")"
        if why == "expression too large":
            method += "; symbolic check skipped: expression too large"
        return Outcome(None, method, note)

    def _sides(self, claim, truth, pt) -> tuple:
        """The claim's and the truth's values at ``pt``."""
        full = self.eval.forward(pt)
        return self.eval.value(claim, full), self.eval.value(truth, full)

    def _at(self, claim, truth, pt):
        """True agree, None undefined on both sides, else a counterexample dict."""
        return self._judge(pt, *self._sides(claim, truth, pt))

    def _judge(self, pt, c, a):
        """:meth:`_at` for values already computed."""
        ok = agree(c, a)
        if ok is None or ok:
            return ok
        return self.counterexample(pt, c, a)

    def _kinks(self, claim, truth, pts) -> tuple:
        """(points checked, note) or (counterexample, '') from every kink surface."""
        cl, tr = self.net.expand(claim), self.net.expand(truth)
        truth_kinks = kink_functions(tr)
        surfaces = (truth_kinks + [g for g in kink_functions(cl) if g not in truth_kinks])[:MAX_KINKS]
        checked, notes = 0, []
        for g in surfaces:
            for base in pts[:KINK_BASES]:
                hit = self._onto(g, base)
                if hit is None:
                    continue
                v, root = hit
                for d in OFFSETS:
                    for side in (-1, 1):
                        pt = {**base, v: root + side * d}
                        res = self._at(claim, truth, pt)
                        if res is None:
                            continue
                        checked += 1
                        if res is not True:
                            return res, ""
                on = {**base, v: root}
                res = self._on_kink(claim, truth, on, v, g in truth_kinks)
                if isinstance(res, dict):
                    return res, ""
                if res:
                    notes.append(res)
                checked += 1
        return checked, notes[0] if notes else ""

    def _onto(self, g, base):
        """(variable, value) putting ``base`` exactly on g = 0, solving for a variable g is
        linear in there; None when there is none."""
        full = self.eval.forward(base)
        for v in sorted(g.free_symbols, key=_variable_order):
            if v not in base:
                continue
            rest = {s: full[s] for s in g.free_symbols if s != v and s in full}
            gv = g.xreplace(rest)
            # Linear in v iff its derivative is free of v; the coefficients are then numbers.
            # (sympy.Poly here built composite domains over 40-digit floats and exp(): minutes.)
            slope = gv.diff(v)
            if v in slope.free_symbols:
                continue
            c1, c0 = numeric(slope), numeric(gv.xreplace({v: sympy.S.Zero}))
            if not (is_finite_real(c1) and is_finite_real(c0)) or c1 == 0:
                continue
            root = -c0 / c1
            if isinstance(root, sympy.Float):
                root = sympy.Rational(root)
            return v, root
        return None

    def _on_kink(self, claim, truth, on: dict, v, of_truth: bool):
        """On a kink: the claim must lie between the truth's one-sided limits.  A note for the
        verdict, '' when the truth is smooth there, or a counterexample dict."""
        full = self.eval.forward(on)
        c = self.eval.value(claim, full)
        sides = [self.eval.value(truth, self.eval.forward({**on, v: on[v] + s * ONE_SIDED})) for s in (-1, 1)]
        sides.append(self.eval.value(truth, full))
        finite = [s for s in sides if is_finite_real(s)]
        if not finite:
            return ""
        lo, hi = min(finite), max(finite)
        slack = REL_TOL * max(1, abs(lo), abs(hi)) + 10 * ONE_SIDED * max(1, abs(hi - lo))
        inside = is_finite_real(c) and bool(lo - slack <= c) and bool(c <= hi + slack)
        if not inside:
            cx = self.counterexample(on, c, sides[-1])
            cx["kink"] = self.kink_name(full)
            cx["subgradients"] = [show(lo), show(hi)]
            return cx
        if hi - lo <= slack or not of_truth:
            return ""
        return (f"at the kink {self.kink_name(full)} the claim takes {show(c)}; any value between "
                f"{show(lo)} and {show(hi)} is a valid subgradient there")

    def kink_name(self, full: dict) -> str:
        """The kink a point sits on, in the notes' notation (z_11 = 0, y ŷ = 1)."""
        names = [f"{self.printer.text(nt.preactivation(k, j))} = 0"
                 for k in range(1, self.net.depth + 1) for j in range(1, self.spec.layers[k] + 1)
                 if full.get(nt.preactivation(k, j)) == 0]
        kink = self.loss.kink  # hinge: y ŷ = 1
        if kink is not None:
            for y, p in zip(self.net.targets, self.net.predictions):
                if full.get(y) is None or full.get(p) is None:
                    continue
                values = {TARGET: full[y], PREDICTION: full[p]}
                if agree(kink.at.lhs.xreplace(values), kink.at.rhs.xreplace(values)):
                    names.append(self.printer.text(kink.at.lhs.xreplace({TARGET: y, PREDICTION: p}))
                                 + f" = {self.printer.text(kink.at.rhs)}")
        return ", ".join(names) or "where the formula switches pieces"
