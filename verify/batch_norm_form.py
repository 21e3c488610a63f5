r"""Matrix claims about a batch-normalised network, checked on concrete batches.

Batch normalisation couples the rows of a batch (μ, σ² and the batch means of the backward
pass), so a value is not known by one generic row as in :mod:`.matrix_form`.  Here every
claim is evaluated on seeded random batches (two sizes n, random X, Y, W, b, γ, β; 40
significant digits, mpmath) and compared entry by entry with the truth of the same batch:
the forward pass, and a backward pass whose batch-norm step is the derived ∂L/∂z_i of
:func:`backprop.derive.batchnorm.derivation` (evaluated, never typed in).

Names besides :mod:`.matrix_form`'s (row vectors, Z^k = O^{k-1} W^k + b^k; k the layer):
``\mu^k`` the batch mean of Z^k; ``(\sigma^k)^2`` (``\sigma^2_k``, ``\sigma_k^2``) its batch
variance, and ``\sigma^k`` alone the divisor √((σ^k)² + ε); ``\varepsilon`` (``\epsilon``)
PyTorch's 1e-5; ``\hat{X}^k`` the normalised Z^k; ``\tilde{Z}^k`` = γ^k ⊙ X̂^k + β^k, the
activation's input; ``\gamma^k``, ``\beta^k``; ``\frac{\partial L}{\partial P}`` for P any of
W^k, b^k, Z^k (= ``\delta^k``), ``\tilde{Z}^k``, ``\hat{X}^k``, O^k, ``\hat{Y}``, ``\gamma^k``,
``\beta^k``; ``G`` is ∂L/∂Z̃^k of the equation's layer (``backprop derive --vectorised``
writes ``δ^k = ..., G = ∂L/∂Z̃^k``); ``\sum_{\text{rows}}`` (any ``\sum``) sums the rows of
what follows up to the next + or -; ``\mathrm{mean}_{\text{rows}}(M)`` is (1/n) Σ_rows M;
``\frac{A}{B}`` and ``\sqrt{M}`` work entry by entry (a row vector broadcast over the rows).
L is the batch mean of the per-row loss, so δ^k carries 1/n.  ``L = ...`` (one row, in y and
ŷ) is checked against the loss on the rows of the batch.
"""
from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np
import sympy

from backprop.derive import batchnorm
from backprop.derive import notation as nt
from backprop.derive.activations import ACTIVATIONS, by_spelling, derivative_at
from backprop.derive.losses import LOSSES

from . import matrix_form, misconceptions
from .latex_input import LOSS, InputError, Text, check_balanced, clean_layout, split_relations
from .verdict import Verdict, Wrong

#: Significant digits of the evaluation, and the relative difference that counts as a difference.
DPS = 40
TOL = mpmath.mpf(10) ** -25
#: Batch sizes tried (the first two not equal to a layer width, so shapes never coincide).
CANDIDATE_SIZES = (3, 4, 5, 6, 7, 8, 9, 10, 11)
EPS = mpmath.mpf(str(batchnorm.EPS))  # the derivation's ε, exact in mpmath

_U = sympy.Symbol("u", real=True)


def _sizes(spec) -> tuple[int, int]:
    free = [n for n in CANDIDATE_SIZES if n not in spec.layers]
    return tuple(free[:2])


def _obj(rows) -> np.ndarray:
    a = np.empty((len(rows), len(rows[0])), dtype=object)
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            a[r, c] = v
    return a


def _apply(f, a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        out[idx] = f(v)
    return out


@lru_cache(maxsize=None)
def _activation(name: str):
    """(g, g') of one element-wise activation, lambdified for mpmath."""
    act = ACTIVATIONS[name]
    g = sympy.lambdify(_U, act.sym(_U), "mpmath")
    gp = sympy.lambdify(_U, derivative_at(name, act.sym(_U), _U), "mpmath")
    return (lambda v: mpmath.mpf(g(v))), (lambda v: mpmath.mpf(gp(v)))


def _softmax(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    for r in range(a.shape[0]):
        es = [mpmath.exp(v) for v in a[r]]
        total = mpmath.fsum(es)
        for c, e in enumerate(es):
            out[r, c] = e / total
    return out


@lru_cache(maxsize=None)
def _loss_functions(spec):
    """(L of one row, [∂L/∂ŷ_j]) as mpmath functions of (y_1.., ŷ_1..)."""
    ys = [nt.target(j) for j in range(1, spec.n_outputs + 1)]
    yh = [nt.output(spec.depth, j, spec.depth) for j in range(1, spec.n_outputs + 1)]
    row = LOSSES[spec.loss].row(ys, yh)
    f = sympy.lambdify(ys + yh, row, "mpmath")
    d = [sympy.lambdify(ys + yh, sympy.diff(row, v), "mpmath") for v in yh]
    return f, d, ys, yh


@lru_cache(maxsize=None)
def _bn_dz():
    """The derived ∂L/∂z_i of a batch-normalised node (batchnorm.derivation), for mpmath."""
    b = batchnorm
    return sympy.lambdify([b.g_i, b.xhat_i, b.mean_g, b.mean_gx, b.gamma, b.var, b.eps],
                          b.derivation().dz, "mpmath")


def _colmean(a: np.ndarray) -> np.ndarray:
    return _obj([[mpmath.fsum(a[:, c]) / a.shape[0] for c in range(a.shape[1])]])


@dataclass
class Batch:
    """One seeded random batch of n rows and every value of its forward and backward pass."""

    n: int
    seed: int
    values: dict  # (name, layer) -> ndarray


def _targets(spec, rng, n):
    loss = LOSSES[spec.loss]
    kind, labels, w = loss.targets.kind, loss.targets.labels, spec.n_outputs
    rows = []
    for _ in range(n):
        if kind == "one_hot":
            hot = rng.randrange(w)
            rows.append([mpmath.mpf(int(c == hot)) for c in range(w)])
        elif labels is not None:
            rows.append([mpmath.mpf(rng.choice(labels)) for _ in range(w)])
        else:
            rows.append([mpmath.mpf(rng.uniform(-1, 1)) for _ in range(w)])
    return _obj(rows)


def make_batch(spec, n: int, seed: int) -> Batch:
    """The forward and backward pass of a random batch (L the mean of the per-row loss)."""
    rng = random.Random(seed)
    L = spec.layers

    def rand(r, c, lo=-1.0, hi=1.0):
        return _obj([[mpmath.mpf(rng.uniform(lo, hi)) for _ in range(c)] for _ in range(r)])
    v: dict = {}
    with mpmath.workdps(DPS + 10):
        v["O", 0] = rand(n, L[0])
        v["Y", None] = _targets(spec, rng, n)
        bn, res = set(spec.batch_norm_layers), set(spec.residual_layers)
        for k in range(1, spec.depth + 1):
            v["W", k] = rand(L[k - 1], L[k])
            v["b", k] = rand(1, L[k]) if spec.bias else _obj([[mpmath.mpf(0)] * L[k]])
            if k in bn:
                v["gamma", k] = rand(1, L[k], 0.5, 1.5)
                v["beta", k] = rand(1, L[k], -0.5, 0.5)
        for k in range(1, spec.depth + 1):
            Z = v["O", k - 1].dot(v["W", k]) + v["b", k]
            v["Z", k] = Z
            if k in bn:
                mu = _colmean(Z)
                var = _colmean(_apply(lambda e: e ** 2, Z - mu))
                std = _apply(lambda e: mpmath.sqrt(e + EPS), var)
                xhat = (Z - mu) / std
                v["mu", k], v["var", k], v["std", k], v["Xhat", k] = mu, var, std, xhat
                v["Zt", k] = v["gamma", k] * xhat + v["beta", k]
            else:
                v["Zt", k] = Z
            act = ACTIVATIONS[spec.activations[k - 1]]
            O = _softmax(v["Zt", k]) if not act.elementwise else _apply(_activation(act.name)[0], v["Zt", k])
            v["O", k] = O + v["O", k - 1] if k in res else O
        f, d, ys, yh = _loss_functions(spec)
        Y, P = v["Y", None], v["O", spec.depth]
        rows = [list(Y[r]) + list(P[r]) for r in range(n)]
        v["loss", None] = _obj([[mpmath.mpf(f(*row))] for row in rows])
        dO = _obj([[mpmath.mpf(dj(*row)) / n for dj in d] for row in rows])
        for k in range(spec.depth, 0, -1):
            v["dO", k] = dO
            act = ACTIVATIONS[spec.activations[k - 1]]
            if act.elementwise:
                G = dO * _apply(_activation(act.name)[1], v["Zt", k])
            else:  # softmax, row by row: o ⊙ (dO - <dO, o>)
                o = v["O", k] - (v["O", k - 1] if k in res else 0)
                G = _obj([[o[r, c] * (dO[r, c] - mpmath.fsum(dO[r, m] * o[r, m] for m in range(o.shape[1])))
                           for c in range(o.shape[1])] for r in range(n)])
            v["G", k] = G
            if k in bn:
                xhat = v["Xhat", k]
                mg, mgx = _colmean(G), _colmean(G * xhat)
                dz = _bn_dz()
                v["delta", k] = _obj([[mpmath.mpf(dz(G[r, c], xhat[r, c], mg[0, c], mgx[0, c], v["gamma", k][0, c],
                                                     v["var", k][0, c], EPS)) for c in range(G.shape[1])]
                                      for r in range(n)])
                v["dgamma", k] = _colmean(G * xhat) * n
                v["dbeta", k] = _colmean(G) * n
                v["dXhat", k] = G * v["gamma", k]
            else:
                v["delta", k] = G
            v["dW", k] = v["O", k - 1].T.dot(v["delta", k])
            v["db", k] = _colmean(v["delta", k]) * n
            dO = v["delta", k].dot(v["W", k].T)
            if k in res:
                dO = dO + v["dO", k]
    return Batch(n, seed, v)


# -- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class M:
    """A concrete matrix: ``rows``/``cols`` say which of its sizes is the batch's n."""

    a: np.ndarray
    rows: bool = False
    cols: bool = False
    scalar: bool = False
    marked: bool = False  # a transpose was written on it

    def label(self) -> str:
        if self.scalar:
            return "a number"
        r, c = self.a.shape
        return f"{'n' if self.rows else r}×{'n' if self.cols else c}"

    def key(self):
        r, c = self.a.shape
        return ("n" if self.rows else r, "n" if self.cols else c)


def _num(x) -> M:
    return M(_obj([[mpmath.mpf(x)]]), scalar=True)


# -- the reader ----------------------------------------------------------------------------
_LAYER = r"\s*(?:\{\s*[\[(]?\s*(\d+)\s*[\])]?\s*\}|(\d))"
_VAR = re.compile(r"\(\s*\\sigma\s*(?:\^|_)" + _LAYER + r"\s*\)\s*\^\s*\{?\s*2\s*\}?"
                  r"|\\sigma\s*\^\s*\{?\s*2\s*\}?\s*_" + _LAYER + r"|\\sigma\s*_" + _LAYER + r"\s*\^\s*\{?\s*2\s*\}?")
_FRAC_D = re.compile(r"\\frac\s*\{\s*(?:\\partial|d)\s*(?:L|J|C|E|\\mathcal\s*\{\s*L\s*\})\s*\}\s*"
                     r"\{\s*(?:\\partial|d)\s*(?P<wrt>(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")
_SUM = re.compile(r"\\sum\s*(?:_\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]))?\s*(?:\^\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?")
_MEAN = re.compile(r"\\(?:mathrm|operatorname|text)\s*\{\s*mean\s*\}\s*(?:_\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z]))?")
_TRANSPOSE = re.compile(r"\\top|\\intercal|\\mathsf\s*\{\s*T\s*\}|\\mathrm\s*\{\s*T\s*\}")
#: (pattern, name) of the named matrices; the layer follows as ^k or _k.
_NAMES = (
    (r"\\(?:wide)?hat\s*\{\s*X\s*\}", "Xhat"), (r"\\(?:wide)?tilde\s*\{\s*Z\s*\}", "Zt"),
    (r"\\(?:wide)?hat\s*\{\s*Y\s*\}", "Yhat"), (r"\\mu", "mu"), (r"\\gamma", "gamma"), (r"\\beta", "beta"),
    (r"\\sigma(?!\s*(?:'|\^\s*\{?\s*\\prime|\())", "std"), (r"\\delta", "delta"),
    (r"\\(?:var)?epsilon", "eps"), (r"(?<![A-Za-z\\])[WbZAOXYGD](?![A-Za-z])", None),
)
#: The names an element-wise formula may use, and what makes a formula not element-wise.
_PURE_NAME = re.compile(r"\\(?:wide)?hat\s*\{\s*Y\s*\}(?P<h>)|\\(?:wide)?tilde\s*\{\s*Z\s*\}(?P<t>)"
                        r"(?:\s*\^\s*(?P<tsup>\{[^{}]*\}|\d))|(?<![A-Za-z\\])(?P<stem>[XYOZA])(?![A-Za-z])"
                        r"(?:\s*\^\s*(?P<sup>\{[^{}]*\}|\d))?")
_IMPURE = re.compile(r"W|\\delta|\\partial|\\top|\\sum|\\odot|\\circ|\*|\\operatorname|\\mu|\\gamma|\\beta"
                     r"|\\sigma|\\hat|\\tilde|mean|rowsum|(?<![A-Za-z\\])[bgnGD](?![A-Za-z])|(?<![A-Za-z\\])[mN](?![A-Za-z])"
                     r"|\\prime|'|\\epsilon|\\varepsilon")
_BN_WORDS = re.compile(r"\\mu|\\gamma|\\beta|\\sigma\s*[\^_]|\\(?:wide)?hat\s*\{\s*X|\\(?:wide)?tilde|mean|\\varepsilon"
                       r"|(?<![A-Za-z\\])G(?![A-Za-z])")


def _close(s: str, i: int) -> int:
    return matrix_form._close(s, i)


class _Reader:
    """Recursive descent over one segment: sum := had (± had)*; had := prod (⊙ prod)*;
    prod := post (· post)*; Σ and mean take the ⊙-product after them."""

    def __init__(self, checker, batch: Batch, g_layer: int | None, lenient: bool = False, d_layer: int | None = None):
        self.c, self.spec, self.b, self.g_layer, self.d_layer = checker, checker.spec, batch, g_layer, d_layer
        #: lenient: a product or ⊙ whose shapes fail is read the other way, and the slip kept
        self.lenient, self.slips = lenient, []

    def read(self, s: str, off: int) -> M:
        self.s, self.i, self.off = s, 0, off
        try:
            v = self.sum_()
            self.ws()
            if self.i < len(self.s):
                raise self.err(f"unparsable matrix expression near '{self.s[self.i:self.i + 10]}'")
            return v
        except InputError:
            entrywise = re.sub(r"\\odot|\\circ", lambda m: " " * len(m.group()), s)  # same columns
            if _IMPURE.search(_PURE_NAME.sub(" ", entrywise)) or not _PURE_NAME.search(s):
                raise
            return self.pure(entrywise, off)

    def err(self, msg: str, at: int | None = None) -> InputError:
        col = self.off + (self.i if at is None else at)
        return InputError(f"{msg} at column {col + 1}", col)

    def ws(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def rest(self) -> str:
        self.ws()
        return self.s[self.i:]

    def sub(self, text: str, at: int) -> M:
        inner = _Reader(self.c, self.b, self.g_layer, self.lenient, self.d_layer)
        inner.slips = self.slips
        return inner.read(text, self.off + at)

    def pure(self, s: str, off: int) -> M:
        """An element-wise formula (only X, Y, Ŷ, O^k, Z^k, Z̃^k, numbers): read by the scalar
        reader one column at a time (e^, log, cases, 1[...] as derive --vectorised prints them)."""
        names = []
        for m in _PURE_NAME.finditer(s):
            stem, sup = m.group("stem"), m.group("sup")
            if m.group("h") is not None:
                stem = "Yhat"
            elif m.group("t") is not None:
                stem, sup = "Zt", m.group("tsup")
            k = int(re.search(r"\d+", sup).group()) if sup else None
            key = {"X": ("O", 0), "Y": ("Y", None), "Yhat": ("O", self.spec.depth)}.get(stem) or (
                {"O": "O", "A": "O", "Z": "Z", "Zt": "Zt"}[stem], k)
            if key[1] is None and key[0] != "Y":
                raise self.err(f"{stem} needs a layer", m.start())
            names.append((m.start(), m.end(), key))
        arrays = {key: self.value(*key, at=a) for a, _, key in names}
        widths = {v.a.shape[1] for v in arrays.values()}
        if len(widths) != 1:
            raise self.err("an element-wise formula combines matrices of different widths", 0)
        width = widths.pop()
        if ("Z", names and next((k for _, _, (st, k) in names if st == "Zt"), None)) in arrays:
            raise self.err("an element-wise formula with both Z^k and Z̃^k of one layer", 0)
        out = np.empty((self.b.n, width), dtype=object)
        for j in range(width):
            text, last, stand = [], 0, {}
            for a, e, key in names:
                entry = self._entry_name(key, j + 1)
                stand[self._entry_symbol(key, j + 1)] = key
                text += [s[last:a], f" {entry} "]
                last = e
            text.append(s[last:])
            try:
                _, exprs, aliases, _ = self.c.parse("L = (" + "".join(text) + ")")
            except InputError as exc:
                raise InputError(f"in the element-wise formula at column {off + 1}: {exc.message}", off) from None
            expr = exprs[1]
            stand = {sym.name: key for sym, key in stand.items()}
            if not {sym.name for sym in expr.free_symbols} <= set(stand):
                raise InputError(f"the element-wise formula at column {off + 1} uses a name that is not a matrix", off)
            for r in range(self.b.n):
                sub = {sym: sympy.Float(str(arrays[stand[sym.name]].a[r, j]), DPS + 10) for sym in expr.free_symbols}
                val = sympy.sympify(expr.xreplace(sub), strict=True).evalf(DPS + 10)
                if not val.is_real:
                    raise InputError(f"the element-wise formula at column {off + 1} is not a real number on a "
                                     "random batch", off)
                out[r, j] = mpmath.mpf(str(val))
        return M(out, rows=True)

    def _entry_name(self, key, j: int) -> str:
        """The scalar reader's stand-in for column j of a matrix (the notes' name where it is plain)."""
        stem, k = key
        if stem == "Y":
            return f"y_{{{j}}}"
        if k == 0:
            return f"x_{{i{j}}}"
        if k == self.spec.depth and stem == "O":
            return rf"\hat{{y}}_{{{j}}}" if self.spec.n_outputs > 1 else r"\hat{y}"
        sep = "," if k > 9 or j > 9 else ""
        # Z^k, Z̃^k: δ_kj, a plain symbol to the scalar reader (z_kj would be expanded in w, x)
        return f"{'O' if stem == 'O' else chr(92) + 'delta'}_{{{k}{sep}{j}}}"

    def _entry_symbol(self, key, j: int):
        """The symbol the scalar reader makes of :meth:`_entry_name`."""
        stem, k = key
        if stem == "Y":
            return nt.target(j)
        if stem == "O":
            return nt.output(k, j, self.spec.depth)
        return sympy.Symbol(f"delta_{k}_{j}", real=True)

    # grammar
    def sum_(self) -> M:
        v = self.had()
        while True:
            r = self.rest()
            if r[:1] in ("+", "-"):
                at = self.i
                self.i += 1
                rhs = self.had()
                v = self.combine(v, rhs, (lambda a, b: a + b) if r[0] == "+" else (lambda a, b: a - b), "add", at)
            else:
                return v

    def had(self) -> M:
        v = self.prod()
        while True:
            m = re.match(r"\\odot|\\circ|\*", self.rest())
            if not m:
                return v
            at = self.i
            self.i += m.end()
            rhs = self.prod()
            try:
                v = self.combine(v, rhs, lambda a, b: a * b, "multiply element-wise", at)
            except _Shapes:
                if not self.lenient:
                    raise
                v = self.other_way(v, rhs, at, product=False)

    def prod(self) -> M:
        v = self.post()
        while True:
            r = self.rest()
            m = re.match(r"\\cdot|\\times", r)
            if m:
                self.i += m.end()
            elif not r or r[0] in "+-)=,&" or re.match(r"\\odot|\\circ|\*", r):
                return v
            at = self.i
            rhs = self.post()
            try:
                v = self.mul(v, rhs, at)
            except _Shapes:
                if not self.lenient:
                    raise
                v = self.other_way(v, rhs, at, product=True)

    def post(self) -> M:
        r = self.rest()
        at = self.i
        if not r:
            raise self.err("unparsable matrix expression: it ends too early")
        if r[0] == "-":
            self.i += 1
            return self.scale(self.post(), -1)
        m = _VAR.match(r)
        if m:
            self.i += m.end()
            k = int(next(g for g in m.groups() if g))
            return self.postfix(self.value("var", k, at))
        if r[0] in "({[":
            end = _close(self.s, self.i)
            if end < 0:
                raise self.err(f"'{r[0]}' is never closed")
            v = self.sub(self.s[self.i + 1:end - 1], self.i + 1)
            self.i = end
            return self.postfix(v)
        m = _FRAC_D.match(r)
        if m:
            self.i += m.end()
            return self.postfix(self.derivative(m.group("wrt"), at))
        if r.startswith(r"\frac") or r.startswith(r"\sqrt"):
            return self.postfix(self.frac_or_sqrt(r.startswith(r"\sqrt")))
        m = _SUM.match(r)
        if m:
            self.i += m.end()
            return self.rowsum(self.had(), at, mean=False)
        m = re.match(r"\\(?:mathrm|operatorname|text)\s*\{\s*rowsum\s*\}", r)
        if m:  # softmax's Σ over the columns of each row
            self.i += m.end()
            v = self.post()
            if not v.rows:
                raise self.err("rowsum applies to the rows of a batch", at)
            return M(_obj([[mpmath.fsum(v.a[r_])] for r_ in range(v.a.shape[0])]), rows=True)
        m = _MEAN.match(r)
        if m:
            self.i += m.end()
            if not self.rest().startswith(("(", "{")):
                raise self.err("mean_rows needs a parenthesised argument")
            return self.rowsum(self.post(), at, mean=True)
        m = re.match(r"\d+(?:\.\d+)?", r)
        if m:
            self.i += m.end()
            return self.postfix(_num(m.group()))
        m = re.match(r"(?<![A-Za-z])[nmN](?![A-Za-z])", r)
        if m:
            self.i += 1
            return _num(self.b.n)
        fn = self.function(r, at)
        if fn is not None:
            return self.postfix(fn)
        for pat, name in _NAMES:
            m = re.match(pat, r)
            if m:
                self.i += m.end()
                return self.postfix(self.named(name or m.group(), at))
        raise self.err(f"'{r[:8]}' is not part of the batch-norm matrix syntax (X, W^k, b^k, Z^k, \\mu^k, "
                       r"(\sigma^k)^2, \hat{X}^k, \tilde{Z}^k, \gamma^k, \beta^k, \delta^k, G, \odot, \sum_{\text{rows}}, "
                       r"\mathrm{mean}_{\text{rows}})")

    def layer(self, what: str, at: int, need: bool = True) -> int | None:
        m = re.match(r"\s*[\^_]\s*(?:\{\s*[\[(]?\s*(\d+)\s*[\])]?\s*(?P<t>\\top|\\intercal|T)?\s*\}|(\d))", self.s[self.i:])
        if not m:
            if need:
                raise self.err(f"{what} needs a layer: {what}^1, ...", at)
            return None
        self.i += m.end()
        self._t = bool(m.group("t"))
        k = int(m.group(1) or m.group(3))
        if not 0 <= k <= self.spec.depth:
            raise self.err(f"{what}^{k}: the {'-'.join(map(str, self.spec.layers))} network has layers "
                           f"0..{self.spec.depth}", at)
        return k

    def named(self, name: str, at: int) -> M:
        self._t = False
        depth = self.spec.depth
        if name in ("X",):
            v = self.value("O", 0, at)
        elif name == "Y":
            v = self.value("Y", None, at)
        elif name == "Yhat":
            v = self.value("O", depth, at)
        elif name == "eps":
            return _num(EPS)
        elif name == "D":  # softmax's D = δ^{k+1} W^{k+1 T} = ∂L/∂O^k
            if self.d_layer is None:
                raise self.err("D (∂L/∂O^k) needs the equation's layer: write δ^k = ...", at)
            v = self.value("dO", self.d_layer, at)
        elif name == "G":
            if self.g_layer is None:
                raise self.err("G (∂L/∂Z̃^k) needs the equation's layer: write δ^k = ... or ∂L/∂Z̃^k", at)
            v = self.value("G", self.g_layer, at)
        else:
            stem = {"A": "O"}.get(name, name)
            k = self.layer(name, at)
            if k == 0 and stem != "O":
                raise self.err(f"{name}^0: layer 0 is the input and has no {name}", at)
            key = {"Z": "Z", "O": "O", "W": "W", "b": "b", "Xhat": "Xhat", "Zt": "Zt", "mu": "mu",
                   "gamma": "gamma", "beta": "beta", "std": "std", "delta": "delta"}[stem]
            v = self.value(key, k, at)
        if self._t:
            v = self.transpose(v, marked=True)
        return v

    def value(self, key: str, k, at: int = 0) -> M:
        if (key, k) not in self.b.values:
            if key in ("mu", "var", "std", "Xhat", "gamma", "beta", "dgamma", "dbeta", "dXhat"):
                raise self.err(f"layer {k} is not batch-normalised (batch_norm layers: "
                               f"{', '.join(map(str, self.spec.batch_norm_layers))})", at)
            raise self.err(f"no {key}^{k} in the {'-'.join(map(str, self.spec.layers))} network", at)
        a = self.b.values[key, k]
        batch = key in ("O", "Y", "Z", "Zt", "Xhat", "delta", "G", "dO", "dXhat")
        return M(a, rows=batch)

    def derivative(self, wrt: str, at: int) -> M:
        w = wrt.strip()
        table = ((r"W", "dW"), (r"b", "db"), (r"Z", "delta"), (r"\\(?:wide)?tilde\s*\{\s*Z\s*\}", "G"),
                 (r"\\(?:wide)?hat\s*\{\s*X\s*\}", "dXhat"), (r"[OA]", "dO"), (r"\\gamma", "dgamma"),
                 (r"\\beta", "dbeta"))
        if re.fullmatch(r"\\(?:wide)?hat\s*\{\s*Y\s*\}", w):
            return self.value("dO", self.spec.depth, at)
        for pat, key in table:
            m = re.fullmatch(r"(?:" + pat + r")\s*[\^_]\s*\{?\s*[\[(]?\s*(\d+)\s*[\])]?\s*\}?", w)
            if m:
                k = int(m.group(1))
                if not 1 <= k <= self.spec.depth:
                    raise self.err(f"∂L/∂{w}: the network has layers 1..{self.spec.depth}", at)
                return self.value(key, k, at)
        raise self.err(rf"\frac{{\partial L}}{{\partial {wrt}}}: expected W^k, b^k, Z^k, \tilde{{Z}}^k, "
                       r"\hat{X}^k, O^k, \hat{Y}, \gamma^k or \beta^k", at)

    def function(self, r: str, at: int) -> M | None:
        m = re.match(r"\\(?:mathrm|operatorname|text)\s*\{\s*([A-Za-z_\\]+)\s*\}|\\tanh|\\sigma|g", r)
        if not m or (m.group() == "g" and not re.match(r"g\s*(?:_\s*\{?\s*\d+\s*\}?)?\s*(?:'|\^\s*\{?\s*\\prime)", r)):
            return None
        word = (m.group(1) or "").replace("\\", "") or {"\\tanh": "tanh", "\\sigma": "sigmoid"}.get(m.group())
        j = m.end()
        k = None
        gm = re.match(r"g\s*(?:_\s*\{?\s*(\d+)\s*\}?)?", r)
        if m.group() == "g":
            k = int(gm.group(1)) if gm.group(1) else None
            j = gm.end()
        pm = re.match(r"\s*(?:'|\^\s*\{?\s*\\prime\s*\}?)", r[j:])
        primed = bool(pm)
        if pm:
            j += pm.end()
        if not r[j:].lstrip().startswith("("):
            if m.group() in ("\\sigma",):
                return None
            raise self.err(f"{m.group()} needs a parenthesised argument", at)
        self.i += j
        self.ws()
        end = _close(self.s, self.i)
        arg_text = self.s[self.i + 1:end - 1]
        arg = self.sub(arg_text, self.i + 1)
        self.i = end
        if word is None:  # g'(Z̃^k): layer k's activation
            lay = re.search(r"[\^_]\s*\{?\s*[\[(]?\s*(\d+)", arg_text)
            k = k or (int(lay.group(1)) if lay else None)
            if k is None or not 1 <= k <= self.spec.depth:
                raise self.err("g' needs its layer: g_k'(...) or g'(Z̃^k)", at)
            word = self.spec.activations[k - 1]
        name = by_spelling(word) or word
        act = ACTIVATIONS.get(name)
        if act is None:
            raise self.err(f"{word}: not an activation ({', '.join(ACTIVATIONS)})", at)
        if not act.elementwise:
            if primed:
                raise self.err(f"{name}' is a Jacobian, not element-wise", at)
            if not arg.rows:
                raise self.err("softmax applies to the rows of a batch", at)
            return M(_softmax(arg.a), rows=True)
        f = _activation(name)[1 if primed else 0]
        return M(_apply(f, arg.a), arg.rows, arg.cols, arg.scalar)

    def frac_or_sqrt(self, sqrt: bool) -> M:
        at = self.i
        j = self.i + len(r"\sqrt" if sqrt else r"\frac")
        parts = []
        for _ in range(1 if sqrt else 2):
            while j < len(self.s) and self.s[j].isspace():
                j += 1
            if j >= len(self.s) or self.s[j] != "{":
                raise self.err(r"\sqrt needs {...}" if sqrt else r"\frac needs two {...}", at)
            end = _close(self.s, j)
            parts.append(self.sub(self.s[j + 1:end - 1], j + 1))
            j = end
        self.i = j
        if sqrt:
            v = parts[0]
            return M(_apply(mpmath.sqrt, v.a), v.rows, v.cols, v.scalar)
        return self.combine(parts[0], parts[1], lambda a, b: a / b, "divide", at)

    def postfix(self, v: M) -> M:
        while True:
            r = self.rest()
            m = re.match(r"\^\s*(?:\{\s*(?:\\top|\\intercal|\\mathsf\s*\{\s*T\s*\}|T)\s*\}|\\top|\\intercal|T(?![A-Za-z]))", r)
            if m:
                self.i += m.end()
                v = self.transpose(v, marked=True)
                continue
            m = re.match(r"\^\s*(?:\{\s*(\d+)\s*\}|(\d))", r)
            if m:
                self.i += m.end()
                p = int(m.group(1) or m.group(2))
                v = M(_apply(lambda e: e ** p, v.a), v.rows, v.cols, v.scalar)
                continue
            return v

    # algebra
    def transpose(self, v: M, marked: bool = False) -> M:
        return v if v.scalar else M(v.a.T, v.cols, v.rows, marked=marked)

    def other_way(self, a: M, b: M, at: int, product: bool) -> M:
        """A failed product read as ⊙ (a failed ⊙ as a product), else with an operand transposed."""
        had = lambda x, y: self.combine(x, y, lambda p, q: p * q, "multiply element-wise", at)  # noqa: E731
        mul = lambda x, y: self.mul(x, y, at)  # noqa: E731
        same, other = (mul, had) if product else (had, mul)
        tries = [("hadamard_vs_matmul", lambda: other(a, b))]
        for which, v in (("b", b), ("a", a)):
            t = self.transpose(v)
            pair = (a, t) if which == "b" else (t, b)
            tries.append(("extra_transpose" if v.marked else "missing_transpose", lambda p=pair: same(*p)))
        last = None
        for slip, attempt in tries:
            try:
                value = attempt()
            except _Shapes as exc:
                last = exc
                continue
            self.slips.append(slip)
            return value
        raise last

    def scale(self, v: M, s) -> M:
        return M(v.a * s, v.rows, v.cols, v.scalar)

    def combine(self, a: M, b: M, op, what: str, at: int) -> M:
        """Entry by entry, a number or a 1×w row broadcast over the rows of a batch."""
        if a.scalar or b.scalar:
            x = op(a.a[0, 0] if a.scalar else a.a, b.a[0, 0] if b.scalar else b.a)
            o = b if a.scalar else a
            if a.scalar and b.scalar:
                return M(_obj([[x]]), scalar=True)
            return M(x if isinstance(x, np.ndarray) else _obj([[x]]), o.rows, o.cols)
        ka, kb = a.key(), b.key()
        if ka == kb:
            return M(op(a.a, b.a), a.rows, a.cols)
        for x, y in ((a, b), (b, a)):  # a 1×w row (or an n×1 column) against an n×w batch
            if x.key() == (1, y.key()[1]) and y.rows and not x.rows:
                return M(op(a.a, b.a), True, y.cols)
            if x.key() == ("n", 1) and y.rows and not y.cols:
                return M(op(a.a, b.a), True, False)
        raise _Shapes(f"cannot {what} a {a.label()} and a {b.label()} matrix", self.off + at)

    def mul(self, a: M, b: M, at: int) -> M:
        if a.scalar or b.scalar:
            return self.combine(a, b, lambda x, y: x * y, "multiply", at)
        if a.key()[1] != b.key()[0]:
            raise _Shapes(f"cannot multiply a {a.label()} by a {b.label()} matrix: the inner sizes differ "
                          r"(a transpose missing or in the wrong place, or \odot meant?)", self.off + at)
        return M(a.a.dot(b.a), a.rows, b.cols)

    def rowsum(self, v: M, at: int, mean: bool) -> M:
        if not v.rows:
            raise self.err(f"the {'mean' if mean else 'sum'} is over the rows of a batch, but its argument is "
                           f"a {v.label()} matrix", at)
        s = _colmean(v.a) if mean else _colmean(v.a) * v.a.shape[0]
        return M(s, False, v.cols)


class _Shapes(InputError):
    def __init__(self, message: str, col: int):
        super().__init__(f"{message} at column {col + 1}", col)


# -- checking --------------------------------------------------------------------------------
def _g_layer(spec, head: str, source: str) -> int | None:
    """The layer G stands for: the head's, else the one batch-normalised layer the text names."""
    m = re.search(r"[\^_]\s*\{?\s*[\[(]?\s*(\d+)", head)
    if m and int(m.group(1)) in spec.batch_norm_layers:
        return int(m.group(1))
    named = {int(x) for x in re.findall(r"[\^_]\s*\{?\s*[\[(]?\s*(\d+)", source)} & set(spec.batch_norm_layers)
    if len(named) == 1:
        return named.pop()
    if len(spec.batch_norm_layers) == 1:
        return spec.batch_norm_layers[0]
    return None


def _d_layer(spec, head: str, source: str) -> int | None:
    """The layer D (softmax's ∂L/∂O^k) stands for: the head's, else one below the layer D's
    definition names (D = δ^{k+1} W^{k+1 T})."""
    m = re.search(r"[\^_]\s*\{?\s*[\[(]?\s*(\d+)", head)
    if m:
        return int(m.group(1))
    named = [int(x) for x in re.findall(r"[\^_]\s*\{?\s*[\[(]?\s*(\d+)", source)]
    return max(named) - 1 if named and max(named) > 1 else None


def _close_enough(c, t) -> bool:
    return abs(c - t) <= TOL * max(1, abs(t))


def _first_difference(claim: M, truth: M):
    for idx, t in np.ndenumerate(truth.a):
        c = claim.a[idx]
        if not _close_enough(c, t):
            return idx, c, t
    return None


def _seed(source: str, n: int) -> int:
    return zlib.crc32(f"{source}#{n}".encode())


def _batches(checker, source: str):
    return [make_batch(checker.spec, n, _seed(source, n)) for n in _sizes(checker.spec)]


#: A trailing ", G = ..." (or D) at the top level: the name's definition, after the equation.
_WHERE = re.compile(r",\s*((?<![A-Za-z\\])[GD]\s*=[^=]*)$")


def looks_like_batch_norm(source: str) -> bool:
    """μ, σ, γ, β, X̂, Z̃, mean_rows, ε or G in the equation."""
    return bool(_BN_WORDS.search(source))


def check(checker, eq, base: dict) -> Verdict:
    if eq.vectors == "column" or matrix_form._notation_key(checker) == "ng":
        raise InputError("a batch-normalised network's matrix form is read with row vectors (Z^k = O^{k-1} W^k + "
                         "b^k, as backprop derive --vectorised prints it); drop '% vectors: column' / --notation ng")
    t = clean_layout(Text.of(eq.source))
    check_balanced(t)
    where = _WHERE.search(t.s)  # "δ^k = ..., G = ∂L/∂Z̃^k" on one line: G's definition checked too
    clause = split_relations(t.slice(where.start(1), len(t.s))) if where else []
    parts = split_relations(t.slice(0, where.start()) if where else t)
    if len(parts) < 2:
        raise InputError("not an equation: no '='")
    head = parts[0][1].s
    if re.fullmatch(r"\s*(?:L|J|C|E|\\mathcal\s*\{\s*L\s*\})\s*", head):
        return _check_loss(checker, eq, base)
    if not (matrix_form.looks_like_matrix_form(eq.source) or looks_like_batch_norm(eq.source)):
        checker.net.per_row()  # a per-parameter formula of one row: refused, with the reason
    g_layer = _g_layer(checker.spec, head, eq.source)
    d_layer = _d_layer(checker.spec, head, eq.source)
    with mpmath.workdps(DPS + 10):
        for b in _batches(checker, eq.source):
            try:
                values = _read(checker, parts, b, g_layer, _Reader(checker, b, g_layer, d_layer=d_layer))
            except _Shapes as strict:
                raise _read_other_way(checker, eq, parts, b, g_layer, strict, d_layer) from None
            bad = _mismatch(checker, eq, parts, values, b, g_layer)
            if bad is None and clause:
                bad = _mismatch(checker, eq, clause, _read(checker, clause, b, g_layer,
                                                          _Reader(checker, b, g_layer, d_layer=d_layer)), b, g_layer)
            if bad is not None:
                raise bad
    n1, n2 = _sizes(checker.spec)
    return Verdict(**base, verdict="correct", method=f"numeric, every entry, batches of n = {n1} and {n2}",
                   message=f"{values[0].label()}, row vectors, a batch of n rows (L the mean over them, "
                           "batch statistics coupling the rows)")


def _read(checker, parts, b: Batch, g_layer, reader=None) -> list[M]:
    reader = reader or _Reader(checker, b, g_layer)
    return [reader.sub(seg.s, seg.col(0)) if reader.lenient else reader.read(seg.s, seg.col(0)) for _, seg in parts]


def _read_other_way(checker, eq, parts, b: Batch, g_layer, strict: InputError, d_layer=None) -> Exception:
    """Shapes that cannot combine: ``wrong`` with the slip when reading the product the other
    way (⊙ for a product, a transpose added or dropped) makes the equation true, else the error."""
    reader = _Reader(checker, b, g_layer, lenient=True, d_layer=d_layer)
    reader.off = 0
    try:
        values = _read(checker, parts, b, g_layer, reader)
    except InputError:
        return strict
    if not reader.slips or _mismatch(checker, eq, parts, values, b, g_layer) is not None:
        return strict
    slip = reader.slips[0]
    return _wrong(matrix_form._expected(checker, parts[0][1].s, False), slip, "shapes",
                  {"point": {"n": b.n, "seed": b.seed}, "claimed": strict.message, "actual": "the shapes of the truth"},
                  f"{strict.message}; read with {misconceptions.get(slip)['label']} undone, the equation holds")


def _show(v) -> str:
    return mpmath.nstr(v, 15)


def _mismatch(checker, eq, parts, values, b: Batch, g_layer):
    head = values[0]
    expected = matrix_form._expected(checker, parts[0][1].s, False)
    for pos, value in enumerate(values[1:], start=2):
        point = {"n": b.n, "seed": b.seed}
        if value.key() != head.key():
            if value.rows and not head.rows and _colmean(value.a).shape == head.a.shape \
                    and _first_difference(M(_colmean(value.a) * b.n), head) is None:
                slip = "bias_not_summed" if re.search(r"b\s*\^|b\s*_", parts[0][1].s) else None
                raise_it = _wrong(expected, slip, "shapes",
                                  {"point": point, "claimed": f"a {value.label()} matrix", "actual": f"a {head.label()} matrix"},
                                  f"segment {pos} is {value.label()} (one entry per example), the left side "
                                  f"{head.label()}: sum over the rows")
                return raise_it
            if not value.scalar and value.a.T.shape == head.a.shape and \
                    _first_difference(M(value.a.T), head) is None:
                return _wrong(expected, "missing_transpose", "shapes",
                              {"point": point, "claimed": f"a {value.label()} matrix", "actual": f"a {head.label()} matrix"},
                              f"segment {pos} is {value.label()}, the left side {head.label()}: it is the transpose of the truth")
            return InputError(f"segment {pos} is {value.label()}, the left side {head.label()}")
        found = _first_difference(value, head)
        if found is None:
            continue
        idx, c, t = found
        slip = _slip_for(checker, parts[0][1].s, value, head, b, g_layer)
        label = f" ({misconceptions.get(slip)['label']})" if slip else ""
        r, cc = (idx if len(idx) == 2 else (idx[0], 0))
        return _wrong(expected, slip, "numeric",
                      {"point": {**point, "entry": f"({r + 1}, {cc + 1})"}, "claimed": _show(c), "actual": _show(t)},
                      f"segment {pos} differs in entry ({r + 1}, {cc + 1}) on a random batch of n = {b.n} rows{label}")
    return None


def _wrong(expected, slip, method, cx, message) -> Wrong:
    kw = dict(expected_latex=expected, counterexample=cx, method=method, message=message)
    if slip:
        kw["misconception"] = misconceptions.get(slip)
    return Wrong(**kw)


def _slip_for(checker, head: str, claim: M, truth: M, b: Batch, g_layer) -> str | None:
    """The slip that, applied to the truth (or the derivation), gives the claim."""
    n = b.n
    tries = [("sign_error", -truth.a)]
    if re.search(r"\\delta|\\partial|(?<![A-Za-z])G(?![A-Za-z])", head):  # L's 1/n: gradients only
        tries = [("missing_mean", truth.a * n), ("extra_mean", truth.a / n)] + tries
    m = re.match(r"\s*(?:\\delta\s*[\^_]|\\frac\s*\{\s*\\partial\s*L\s*\}\s*\{\s*\\partial\s*Z\s*[\^_])\s*\{?\s*[\[(]?\s*(\d+)",
                 head)
    k = int(m.group(1)) if m else None
    if k in checker.spec.batch_norm_layers:
        v = b.values
        G, xhat, scale = v["G", k], v["Xhat", k], v["gamma", k] / v["std", k]
        mg, mgx = _colmean(G), _colmean(G * xhat)
        tries = [("bn_batch_means_forgotten", scale * G),
                 ("bn_batch_mean_term_missing", scale * (G - mg)),
                 ("bn_batch_mean_term_missing", scale * (G - xhat * mgx))] + tries
    for slip, moved in tries:
        if _first_difference(claim, M(moved)) is None:
            return slip
    return None


def _check_loss(checker, eq, base: dict) -> Verdict:
    """``L = ...`` in y and ŷ: the per-row loss, checked on the rows of random batches."""
    _, exprs, aliases, _ = checker.parse(eq.source)
    if aliases.table.get(getattr(exprs[0], "name", "")) is not LOSS:
        raise InputError("the left side is not the loss L")
    f, _, ys, yh = _loss_functions(checker.spec)
    allowed = set(ys) | set(yh)
    for pos, e in enumerate(exprs[1:], start=2):
        extra = [s for s in e.free_symbols if s not in allowed]
        if extra:
            raise InputError(f"segment {pos} of L uses {checker.printer.text(extra[0])}: with batch norm the loss "
                             "line is checked in y and ŷ only (the rows couple through the batch statistics)")
    with mpmath.workdps(DPS + 10):
        for b in _batches(checker, eq.source):
            Y, P = b.values["Y", None], b.values["O", checker.spec.depth]
            for r in range(b.n):
                row = list(Y[r]) + list(P[r])
                truth = mpmath.mpf(f(*row))
                sub = dict(zip(ys + yh, [sympy.Float(str(x), DPS) for x in row]))
                for pos, e in enumerate(exprs[1:], start=2):
                    c = e.evalf(DPS, subs=sub)
                    if not c.is_real:
                        raise InputError(f"segment {pos} of L is not a real number at row {r + 1} of a random batch")
                    c = mpmath.mpf(str(c))
                    if not _close_enough(c, truth):
                        raise Wrong(expected_latex=checker.latex(checker.net.loss), method="numeric",
                                    counterexample={"point": {**{checker.printer.text(s): _show(x) for s, x in
                                                                  zip(ys + yh, row)}}, "claimed": _show(c),
                                                    "actual": _show(truth)},
                                    message=f"segment {pos} is not the loss of one row")
    return Verdict(**base, verdict="correct", method="numeric, on the rows of random batches",
                   message="the loss of one row (L is its mean over the batch)")
