r"""Vectorised (matrix) claims, checked entry by entry for a batch of rows.

Names (k a layer; the layer goes in ``^k``, ``^{(k)}`` or Ng's ``^{[k]}``; braces optional):

* ``X`` (``O^0``, ``A^{[0]}``) the inputs; ``O^k`` / ``A^{[k]}`` layer k's outputs (``O^L`` =
  ``A^{[L]}`` = ``\hat{Y}``); ``Y`` the targets; ``Z^k`` the weighted sums; ``b^k`` the
  biases; ``W^k`` the weights;
* ``\delta^k`` = ``\frac{\partial L}{\partial Z^k}``; ``\frac{\partial L}{\partial W^k}``,
  ``\frac{\partial L}{\partial b^k}``, ``\frac{\partial L}{\partial \hat{Y}}`` (``J``, ``C``,
  ``E``, ``\mathcal{L}`` for L);  Ng's ``dW^{[k]}``, ``db^{[k]}``, ``dZ^{[k]}``, ``dA^{[k]}``;
* transposes ``^\top``, ``^T``, ``^{\mathsf{T}}``, ``^\intercal`` (also inside the layer
  superscript: ``W^{2\top}``, ``A^{[1]T}``); juxtaposition, ``\cdot`` or ``\times`` the
  matrix product; ``\odot``, ``\circ`` or Ng's ``*`` the element-wise product (binding looser
  than the matrix product); ``\sum`` (``\sum_{\text{rows}}``, ``\sum_{i=1}^{m}``, Ng's
  np.sum over examples) sums over the examples; ``\frac{1}{n}`` (``m``, ``N``) the batch mean;
  ``\sigma(M)``, ``\tanh(M)``, ``\mathrm{relu}(M)`` (any activation of the table, softmax
  row-wise), ``g'(Z^k)``, ``g_k'(M)``, ``g^{[k]\prime}(M)``, ``\sigma'(M)`` element-wise;
* a bracket whose contents use only X, Y, \hat{Y}, O^k, Z^k, A^{[k]} and numbers is an
  element-wise formula read by the scalar reader one entry at a time, so everything
  ``backprop derive --vectorised --format latex`` prints (fractions, powers, e^, log,
  \theta, cases) reads back; there juxtaposition is the element-wise product.

Layout.  Vectors are rows, as ``backprop derive --vectorised`` prints them (Z^k = O^{k-1} W^k
+ b^k, W^k is n_{k-1} × n_k); after ``% vectors: column`` or with ``--notation ng`` they are
columns (one column per example).  Ng's bracketed ``W^{[k]}`` (and every W under
``--notation ng``) is n_k × n_{k-1}, so Z^{[k]} = W^{[k]} A^{[k-1]} + b^{[k]}; ``W^k`` and
``W^{(k)}`` otherwise keep the notes' n_{k-1} × n_k (Goodfellow's σ(W^T x + b)).

One row or a batch.  An equation that mentions the batch (``\frac{1}{n}``, a ``\sum``, or
Ng's ``dW``/``db``/``dZ``/``dA``) is about n rows: L (J) is the batch mean (1/n) Σ_rows of the
per-row loss, so δ^k = ∂L/∂Z^k carries 1/n and ∂L/∂W^k, ∂L/∂b^k sum over the rows.  Ng's
``dZ^{[k]}`` and ``dA^{[k]}`` are the per-example derivatives stacked (no 1/m), and
``dW^{[k]}`` = ∂J/∂W^{[k]}, ``db^{[k]}`` = ∂J/∂b^{[k]} (with the 1/m), as in his course.  It
is checked for every n: a value is an n-row matrix known by its generic row, a sum over the
rows known by its summand, or a constant, and two sums agree for every batch exactly when
their summands agree for one row.  An equation with none of these is about one row (n = 1).

A product whose shapes cannot multiply is an ``error`` naming both shapes, unless reading it
the other way (⊙ for a product, a transpose added or dropped) makes the equation true: then
it is ``wrong`` with that slip.  A value that differs is ``wrong`` with the entry, a point,
and the slip (missing/extra 1/n, sign, missing g') that reproduces it where one does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import sympy

from backprop.derive import notation as nt
from backprop.derive import vectorise
from backprop.derive.activations import ACTIVATIONS, by_spelling, derivative_at, latex_commands

from . import misconceptions
from .latex_input import InputError, Text, check_balanced, clean_layout, split_relations
from .verdict import Verdict, Wrong

#: The batch size: symbolic while reading, then checked at two sizes.
N = sympy.Symbol("n", positive=True, integer=True)
BATCH_SIZES = (3, 7)

_SUP = r"\^\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|\\[A-Za-z]+|[0-9A-Za-z])"
_LAYER_SUP = r"\^\s*\{?\s*[\[(]?\s*\d"
_HINT = re.compile(
    r"(?<![A-Za-z\\])(?:W|Z|A|O|b|\\delta)\s*" + _LAYER_SUP + r"(?:[^_]*?\}\s*|\s*)(?!\s*_)"
    r"|\\odot|\\top|\\intercal|\\mathsf\s*\{\s*T\s*\}|\\hat\s*\{\s*Y\s*\}|(?<![A-Za-z\\])d[WZAb]\s*\^"
    r"|\\text\s*\{\s*rows\s*\}|(?<![A-Za-z\\])X\s*\^\s*\{?\s*(?:T|\\top)")


def looks_like_matrix_form(source: str) -> bool:
    """Matrix names (W^2, O^1, A^{[1]}, dW^{[2]}, \\hat{Y}, \\delta^2 without a node index) or
    matrix operators (\\odot, a transpose) in the equation."""
    return bool(_HINT.search(source))


# -- values -------------------------------------------------------------------------------
@dataclass(frozen=True)
class V:
    """A matrix value.  ``kind``: 'const' (W, b, numbers: ``m`` is the matrix or a scalar),
    'batch' (one row per example along ``axis``; ``m`` is the generic slice), 'tot' (a sum over
    the examples; ``m`` is the summand).  ``pure``: built from element-wise names only;
    ``marked``: a transpose was written on it."""

    m: object
    kind: str = "const"
    axis: int = 0
    pure: bool = False
    marked: bool = False

    @property
    def is_scalar(self) -> bool:
        return self.kind == "const" and (not isinstance(self.m, sympy.MatrixBase) or self.m.shape == (1, 1))

    def scalar(self):
        return self.m[0, 0] if isinstance(self.m, sympy.MatrixBase) else self.m


def _shape(v: V, batch: bool = True) -> str:
    """'n×3' (a batch of n rows; '1×3' for one row), '3×n', '2×3', 'a number'."""
    if not isinstance(v.m, sympy.MatrixBase):
        return "a number"
    r, c = v.m.shape
    n = "n" if batch else "1"
    if v.kind == "batch":
        return f"{n}×{c}" if v.axis == 0 else f"{r}×{n}"
    return f"{r}×{c}"


class _Shapes(Exception):
    """Internal: shapes that cannot combine (turned into an InputError or, read the other way, a slip)."""

    def __init__(self, message: str, col: int):
        super().__init__(message)
        self.message, self.col = message, col


_ROWDATA = {"x", "y", "yhat", "O", "z", "delta", "dO"}


def _row_free(m) -> bool:
    syms = m.free_symbols if hasattr(m, "free_symbols") else set()
    return not any((nt.parse(s) is not None and nt.parse(s).kind in _ROWDATA) for s in syms if s != N)


def _map(v: V, f) -> V:
    m = v.m.applyfunc(f) if isinstance(v.m, sympy.MatrixBase) else f(v.m)
    return replace(v, m=m, marked=False)


# -- the parser ----------------------------------------------------------------------------
_TRANSPOSE = re.compile(r"\\top|\\intercal|\\mathsf\s*\{\s*T\s*\}|\\mathrm\s*\{\s*T\s*\}|\\textsf\s*\{\s*T\s*\}|\\tau")
_IMPURE = re.compile(r"W|\\delta|\\partial|\\top|\\sum|\\odot|\\circ|\*|\\mathrm|\\operatorname|(?<![A-Za-z\\])d[A-Za-z]"
                     r"|(?<![A-Za-z\\])[bgn]|(?<![A-Za-z\\])[mN](?![A-Za-z])|\\sigma|\\prime|'|\\tanh"
                     r"|(?<![A-Za-z\\])[A-Z]\s*\^\s*\{?\s*[^{}\[(\d]")
#: ⊙ inside an element-wise formula (``1 - O^{1} \odot O^{1}``, as derive --vectorised prints it).
_HADAMARD = re.compile(r"\\odot|\\circ")
_PURE_NAME = re.compile(r"\\(?:wide)?hat\s*\{\s*Y\s*\}|(?<![A-Za-z\\])(?P<stem>[XYOZA])(?![A-Za-z])"
                        r"(?:\s*\^\s*(?P<sup>\{[^{}]*\}|\d))?")
_NAME = re.compile(r"(?P<d>d)?(?P<stem>\\(?:wide)?hat\s*\{\s*Y\s*\}|\\delta|[WbZAOXYx])(?![A-Za-z])")
_FUNC = re.compile(r"\\sigma\s*(?:'|\^\s*\{?\s*\\prime\s*\}?)?|\\tanh|\\(?:mathrm|operatorname|text)\s*\{\s*(?P<fn>[A-Za-z_\\]+)\s*\}"
                   r"|g\s*(?:_\s*\{?\s*\d+\s*\}?\s*|\^\s*\{\s*[\[(]?\s*\d+\s*[\])]?\s*(?:\\prime|')\s*\}\s*)?(?:'|\^\s*\{?\s*\\prime\s*\}?)?"
                   r"(?:\s*\^\s*\{\s*[\[(]?\s*\d+\s*[\])]?\s*\})?")
_FRAC_D = re.compile(r"\\frac\s*\{\s*(?:\\partial|d)\s*(?:L|J|C|E|\\mathcal\s*\{\s*L\s*\})\s*\}\s*"
                     r"\{\s*(?:\\partial|d)\s*(?P<wrt>(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")
_SUM = re.compile(r"\\sum\s*(?:_\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]))?\s*(?:\^\s*(?:\{[^{}]*\}|[A-Za-z0-9]))?")


def _close(s: str, i: int) -> int:
    """Index just past the bracket matching s[i] ('(' or '{' or '['), or -1."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    depth = 0
    for j in range(i, len(s)):
        c = s[j]
        if c in pairs:
            depth += 1
        elif c in ")}]":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


class _Parser:
    """Reads one segment into a :class:`V` (see the module docstring for the grammar)."""

    def __init__(self, checker, column: bool, ng: bool, lenient: str = "", batch: bool = True):
        self.c = checker
        self.batch = batch
        self.net = checker.net
        self.spec = checker.spec
        self.col = column
        self.ng = ng
        self.lenient = lenient  # '' strict; 'swap' reads a failed product as ⊙ (and back) or transposed
        self.slips: list[str] = []

    # -- leaves ------------------------------------------------------------------------------
    def vec(self, entries, kind="batch") -> V:
        row = sympy.Matrix([list(entries)])
        return V(row.T if self.col else row, kind, 1 if self.col else 0)

    def layer(self, sup: str | None, what: str, col: int) -> tuple[int, bool, bool]:
        r"""'^{[2]\top}' -> (2, transposed, bracketed)."""
        if sup is None:
            raise InputError(f"{what} at column {col + 1} needs a layer: {what}^1, {what}^{{[1]}}, ...", col)
        body = sup.lstrip("^").strip()
        if body.startswith("{"):
            body = body[1:-1]
        t = bool(_TRANSPOSE.search(body) or re.search(r"T\s*$", body))
        body = _TRANSPOSE.sub("", body)
        body = re.sub(r"T\s*$", "", body).strip()
        bracket = body.startswith("[")
        body = body.strip("[]() ")
        if not body.isdigit():
            raise InputError(f"{what}^{{{body}}} at column {col + 1}: the layer must be a number", col)
        k = int(body)
        if not 0 <= k <= self.spec.depth:
            raise InputError(f"{what}^{k} at column {col + 1}: the {'-'.join(map(str, self.spec.layers))} network "
                             f"has layers 0..{self.spec.depth}", col)
        return k, t, bracket

    def weights(self, k: int, bracket: bool, entry) -> sympy.Matrix:
        L = self.spec.layers
        if bracket or self.ng:  # Ng: n_k × n_{k-1}
            return sympy.Matrix(L[k], L[k - 1], lambda j, i: entry(nt.weight(k, i + 1, j + 1)))
        return sympy.Matrix(L[k - 1], L[k], lambda i, j: entry(nt.weight(k, i + 1, j + 1)))

    def named(self, d: bool, stem: str, k: int | None, bracket: bool, col: int) -> V:
        L, depth, dv = self.spec.layers, self.spec.depth, self.c.d
        if stem in ("X", "x") or (stem in ("O", "A") and k == 0):
            if d:
                raise InputError(f"d{stem} at column {col + 1}: the inputs have no gradient", col)
            return self.vec(self.net.inputs)
        if stem == "Y":
            return self.vec(self.net.targets)
        if stem.startswith("\\") and "hat" in stem:
            return self.vec(self.net.predictions) if not d else self.vec(dv.dL_dyhat)
        if k == 0:
            raise InputError(f"{stem}^0 at column {col + 1}: layer 0 is the input and has no {stem}", col)
        if d:  # Ng: dZ, dA per example; dW, db of the batch mean J
            return self.gradient({"A": "O"}.get(stem, stem), k, bracket, col, per_example=stem in ("Z", "A", "O"))
        if stem in ("O", "A"):
            return self.vec(self.net.outputs(k))
        if stem == "W":
            return V(self.weights(k, bracket, lambda s: s))
        if stem == "b":
            return self.vec([nt.bias(k, j) for j in range(1, L[k] + 1)], kind="const")
        if stem == "Z":
            return self.vec([self.net.z(k, j) for j in range(1, L[k] + 1)])
        if stem == r"\delta":
            return self.gradient("Z", k, bracket, col, per_example=False)
        raise InputError(f"{stem} at column {col + 1} is not a matrix name", col)

    def gradient(self, stem: str, k: int, bracket: bool, col: int, per_example: bool) -> V:
        """∂L/∂(stem^k): L the batch mean (1/n carried), or per example (Ng's dZ, dA)."""
        L, dv = self.spec.layers, self.c.d
        scale = 1 if per_example else 1 / N
        if stem == "W":
            return V(self.weights(k, bracket, lambda s: dv.gradient(s).formula * scale), "tot")
        if stem == "b":
            if not self.spec.bias:
                raise InputError(f"b^{k} at column {col + 1}: the network has no biases", col)
            v = self.vec([dv.gradient(nt.bias(k, j)).formula * scale for j in range(1, L[k] + 1)])
            return replace(v, kind="tot")
        if stem == "Z":
            return self.vec([dv.resolved_delta(k, j) * scale for j in range(1, L[k] + 1)])
        if stem in ("O", "A"):
            if k == self.spec.depth:
                return self.vec([e * scale for e in dv.dL_dyhat])
            return self.vec([dv.resolved_dO(k, j) * scale for j in range(1, L[k] + 1)])
        raise InputError(f"∂L/∂{stem} at column {col + 1}: expected W, b, Z, A/O or \\hat{{Y}}", col)

    # -- segments ----------------------------------------------------------------------------
    def parse(self, s: str, off: int = 0) -> V:
        if not s.strip():
            raise InputError(f"an empty expression at column {off + 1}", off)
        if not _IMPURE.search(s):
            return self.pure(s, off)
        entrywise = _HADAMARD.sub(lambda m: " " * len(m.group()), s)  # same columns
        if not _IMPURE.search(entrywise):  # ⊙ between element-wise names: the entry-wise product
            return self.pure(entrywise, off)
        toks = self.tokens(s, off)
        self._toks, self._i = toks, 0
        saved = (self._toks, self._i)
        value = self.sum_()
        if self._i < len(self._toks):
            kind, text, col = self._toks[self._i]
            raise InputError(f"unparsable matrix expression at column {col + 1} (near '{text}')", col)
        self._toks, self._i = saved
        return value

    def pure(self, s: str, off: int) -> V:
        """An element-wise formula: the scalar reader, one entry at a time."""
        names = list(_PURE_NAME.finditer(s))
        widths = set()
        parsed = []
        for m in names:
            stem = m.group("stem") or "hat"
            k = None
            if stem in "OZA":
                if m.group("sup") is None:
                    raise InputError(f"{stem} at column {off + m.start() + 1} needs a layer: {stem}^1, ...",
                                     off + m.start())
                k, _, _ = self.layer(m.group("sup"), stem, off + m.start())
                if stem == "Z" and k == 0:
                    raise InputError(f"Z^0 at column {off + m.start() + 1}: layer 0 has no Z", off + m.start())
            width = {"X": self.spec.layers[0], "Y": self.spec.n_outputs, "hat": self.spec.n_outputs}.get(stem)
            if width is None:
                width = self.spec.layers[k]
            widths.add(width)
            parsed.append((m.start(), m.end(), stem, k))
        if len(widths) > 1:
            raise InputError(f"'{s.strip()}' at column {off + 1} combines element by element matrices of "
                             f"different widths ({', '.join(map(str, sorted(widths)))})", off)
        width = widths.pop() if widths else 1
        entries = []
        for j in range(1, width + 1):
            out, last = [], 0
            for a, b, stem, k in parsed:
                out.append(s[last:a])
                out.append(" " + self.entry_name(stem, k, j) + " ")
                last = b
            out.append(s[last:])
            entries.append(self.scalar(" ".join(["("] + out + [")"]), off))
        if not names:
            return V(entries[0], pure=True)
        v = self.vec(entries)
        return replace(v, pure=True)

    def entry_name(self, stem: str, k: int | None, j: int) -> str:
        if stem == "X" or (stem in "OA" and k == 0):
            return f"x_{{i{j}}}"
        if stem == "Y":
            return f"y_{{{j}}}"
        if stem == "hat" or (stem in "OA" and k == self.spec.depth):
            return rf"\hat{{y}}_{{{j}}}"
        sep = "," if k > 9 or j > 9 else ""
        return f"{'z' if stem == 'Z' else 'O'}_{{{k}{sep}{j}}}"

    def scalar(self, text: str, off: int) -> sympy.Expr:
        try:
            _, exprs, aliases, _ = self.c.parse("L = " + text)
        except InputError as exc:
            raise InputError(f"in the element-wise formula at column {off + 1}: {exc.message}", off) from None
        return self.c.resolve(exprs[1], aliases)

    # -- tokens ------------------------------------------------------------------------------
    def tokens(self, s: str, off: int) -> list:
        toks, i = [], 0
        while i < len(s):
            c = s[i]
            if c.isspace():
                i += 1
                continue
            col = off + i
            rest = s[i:]
            if c in "({[":
                end = _close(s, i)
                if end < 0:
                    raise InputError(f"unparsable matrix expression: '{c}' at column {col + 1} is never closed", col)
                toks.append(("group", (s[i + 1:end - 1], off + i + 1), col))
                i = end
                continue
            m = _FRAC_D.match(rest)
            if m:
                toks.append(("frac", m.group("wrt"), col))
                i += m.end()
                continue
            if rest.startswith(r"\frac"):
                j = i + len(r"\frac")
                while j < len(s) and s[j].isspace():
                    j += 1
                a_end = _close(s, j) if j < len(s) and s[j] == "{" else -1
                k = a_end
                while 0 < k < len(s) and s[k].isspace():
                    k += 1
                b_end = _close(s, k) if 0 < k < len(s) and s[k] == "{" else -1
                if a_end < 0 or b_end < 0:
                    raise InputError(rf"unparsable matrix expression: \frac at column {col + 1} needs two {{...}}", col)
                toks.append(("ratio", ((s[j + 1:a_end - 1], off + j + 1), (s[k + 1:b_end - 1], off + k + 1)), col))
                i = b_end
                continue
            m = _SUM.match(rest)
            if m:
                toks.append(("sum", m.group(), col))
                i += m.end()
                continue
            m = re.match(r"\\odot|\\circ|\*|\\cdot|\\times|[-+]", rest)
            if m:
                toks.append(("op", m.group(), col))
                i += m.end()
                continue
            m = re.match(_SUP, rest)
            if m:
                toks.append(("sup", m.group(), col))
                i += m.end()
                continue
            m = re.match(r"\d+(?:\.\d+)?", rest)
            if m:
                toks.append(("num", m.group(), col))
                i += m.end()
                continue
            m = _FUNC.match(rest)
            if m and (not rest.startswith("g") or re.match(r"g\s*[_'^]", rest)):
                toks.append(("func", m.group(), col))
                i += m.end()
                continue
            m = re.match(r"(?<![A-Za-z])[nmN](?![A-Za-z])", rest)
            if m and (i == 0 or not s[i - 1].isalpha()):
                toks.append(("n", m.group(), col))
                i += 1
                continue
            m = _NAME.match(rest)
            if m and (i == 0 or not (s[i - 1].isalpha() or s[i - 1] == "\\")):
                toks.append(("name", (bool(m.group("d")), re.sub(r"\s+", "", m.group("stem"))), col))
                i += m.end()
                continue
            raise InputError(f"'{rest[:8]}' at column {col + 1} is not part of the matrix syntax (W^k, A^{{[k]}}, "
                             r"X, b^k, Z^k, \delta^k, dW^{[k]}, \odot, *, ^\top, \sum, \frac{1}{n})", col)
        return toks

    def peek(self):
        return self._toks[self._i] if self._i < len(self._toks) else (None, None, None)

    def take(self):
        tok = self.peek()
        self._i += 1
        return tok

    # -- grammar: sum := had (+|- had)* ; had := prod (⊙ prod)* ; prod := post (·? post)* ------
    def sum_(self) -> V:
        value = self.had()
        while self.peek()[1] in ("+", "-"):
            _, op, col = self.take()
            rhs = self.had()
            value = self.add(value, rhs if op == "+" else _map(rhs, lambda e: -e), col)
        return value

    def had(self) -> V:
        value = self.prod()
        while self.peek()[1] in (r"\odot", r"\circ", "*"):
            _, _, col = self.take()
            value = self.hadamard(value, self.prod(), col)
        return value

    def prod(self) -> V:
        value = self.post()
        while True:
            kind, text, col = self.peek()
            if text in (r"\cdot", r"\times"):
                self.take()
            elif kind not in ("name", "num", "func", "frac", "group", "ratio", "sum", "n"):
                return value
            value = self.mul(value, self.post(), col)

    def post(self) -> V:
        kind, text, col = self.take()
        if kind is None:
            raise InputError("unparsable matrix expression: it ends too early")
        if text == "-":
            return _map(self.post(), lambda e: -e)
        if kind == "sum":
            return self.sum_rows(self.prod(), col)
        if kind == "group":
            inner, ioff = text
            toks, i = self._toks, self._i
            value = self.parse(inner, ioff)
            self._toks, self._i = toks, i
        elif kind == "num":
            value = V(sympy.Rational(text))
        elif kind == "n":
            value = V(N)
        elif kind == "ratio":
            toks, i = self._toks, self._i
            top, bottom = self.parse(*text[0]), self.parse(*text[1])
            self._toks, self._i = toks, i
            if not bottom.is_scalar:
                raise InputError(rf"\frac at column {col + 1} divides by a {_shape(bottom, self.batch)} matrix", col)
            value = _map(top, lambda e: e / bottom.scalar())
        elif kind == "frac":
            value = self.derivative(text, col)
        elif kind == "func":
            value = self.function(text, col)
        elif kind == "name":
            d, stem = text
            sup = self.take()[1] if self.peek()[0] == "sup" else None
            if stem in ("W", "b", "Z", r"\delta", "O", "A"):
                k, t, bracket = self.layer(sup, ("d" if d else "") + stem, col)
                value = self.named(d, stem, k, bracket, col)
                if t:
                    value = self.transpose(value, marked=True)
            else:
                value = self.named(d, stem, None, False, col)
                if sup is not None:
                    if _TRANSPOSE.search(sup) or re.search(r"T\s*\}?$", sup):
                        value = self.transpose(value, marked=True)
                    else:
                        raise InputError(f"{stem}{sup} at column {col + 1}: only a transpose is allowed here", col)
        else:
            raise InputError(f"unexpected '{text}' at column {col + 1}", col)
        while self.peek()[0] == "sup":
            _, sup, scol = self.take()
            if _TRANSPOSE.search(sup) or re.fullmatch(r"\^\s*\{?\s*T\s*\}?", sup):
                value = self.transpose(value, marked=True)
            elif value.pure and re.fullmatch(r"\^\s*\{?\s*\d+\s*\}?", sup):
                p = int(re.search(r"\d+", sup).group())
                value = _map(value, lambda e: e ** p)
            else:
                raise InputError(f"'{sup}' at column {scol + 1}: only a transpose (^\\top) applies to a matrix", scol)
        return value

    def derivative(self, wrt: str, col: int) -> V:
        m = re.fullmatch(r"\s*(?P<stem>[WbZOA]|\\delta)\s*(?P<sup>\^.*)?\s*|\s*\\(?:wide)?hat\s*\{\s*Y\s*\}\s*", wrt)
        if not m:
            raise InputError(rf"\frac{{\partial L}}{{\partial {wrt}}} at column {col + 1}: expected W^k, b^k, "
                             r"Z^k, A^k, O^L or \hat{Y}", col)
        if m.group("stem") is None:
            return self.vec([e / N for e in self.c.d.dL_dyhat])
        k, t, bracket = self.layer(m.group("sup"), m.group("stem"), col)
        if k == 0:
            raise InputError(f"∂L/∂{m.group('stem')}^0 at column {col + 1}: layer 0 is the input", col)
        v = self.gradient(m.group("stem"), k, bracket, col, per_example=False)
        return self.transpose(v) if t else v

    def function(self, text: str, col: int) -> V:
        kind, arg, _ = self.take()
        if kind != "group":
            raise InputError(f"{text} at column {col + 1} needs a parenthesised argument", col)
        toks, i = self._toks, self._i
        inner, ioff = arg
        value = self.parse(inner, ioff)
        self._toks, self._i = toks, i
        if value.kind == "tot":
            raise InputError(f"{text} at column {col + 1} of a sum over the rows is not part of backprop", col)
        name = re.sub(r"\s+", "", text)
        fn = re.match(r"\\(?:mathrm|operatorname|text)\{(.*)\}", name)
        commands = latex_commands()  # the table's \sigma, \tanh
        if name in commands or fn:
            act_name = commands.get(name) or by_spelling(fn.group(1)) or fn.group(1)
            act = ACTIVATIONS.get(act_name)
            if act is not None and not act.elementwise:
                return self.softmax(value, col)
            if act is None:
                raise InputError(f"{text} at column {col + 1}: not an activation ({', '.join(ACTIVATIONS)})", col)
            return replace(_map(value, act.sym), pure=value.pure)
        primed = next((a for cmd, a in commands.items() if name.startswith(cmd)), None)
        if primed is not None:  # \sigma'(u): that activation's derivative at u
            act = ACTIVATIONS[primed]
            return replace(_map(value, lambda u: derivative_at(act.name, act.sym(u), u)), pure=value.pure)
        # g'(Z^k), g_k'(...), g^{[k]\prime}(...): layer k's activation derivative
        m = re.search(r"\d+", name)
        k = int(m.group()) if m else None
        if k is None:
            lay = re.match(r"\s*(?:Z|A|O)\s*\^\s*\{?\s*[\[(]?\s*(\d+)", inner)
            k = int(lay.group(1)) if lay else None
        if k is None or not 1 <= k <= self.spec.depth:
            raise InputError(f"g' at column {col + 1}: write g_k'(...), g^{{[k]\\prime}}(...) or g'(Z^k) so the "
                             "layer is known", col)
        act = self.net.activation(k)
        if not act.elementwise:
            raise InputError(f"g' of layer {k} ({act.name}) is a Jacobian, not element-wise", col)
        return replace(_map(value, lambda u: derivative_at(act.name, act.sym(u), u)), pure=value.pure)

    def softmax(self, value: V, col: int) -> V:
        if value.kind != "batch":
            raise InputError(f"softmax at column {col + 1} applies to the rows of a batch", col)
        es = [sympy.exp(e) for e in value.m]
        total = sympy.Add(*es)
        return replace(value, m=value.m.applyfunc(lambda e: sympy.exp(e) / total), marked=False)

    # -- algebra -------------------------------------------------------------------------------
    def transpose(self, v: V, marked: bool = False) -> V:
        if not isinstance(v.m, sympy.MatrixBase):
            return v
        return replace(v, m=v.m.T, axis=1 - v.axis if v.kind == "batch" else v.axis, marked=marked)

    def fixed(self, v: V) -> V:
        """A sum over the rows of something row-free is n times a constant."""
        if v.kind == "tot" and _row_free(v.m):
            return V(v.m * N)
        return v

    def mul(self, a: V, b: V, col: int) -> V:
        if a.is_scalar or b.is_scalar:
            s, o = (a, b) if a.is_scalar else (b, a)
            return replace(_map(o, lambda e: e * s.scalar()), pure=a.pure and b.pure, marked=False)
        a, b = self.fixed(a), self.fixed(b)
        try:
            return self._matmul(a, b, col)
        except _Shapes as exc:
            if a.pure and b.pure and a.kind == b.kind == "batch" and a.axis == b.axis and a.m.shape == b.m.shape:
                return replace(a, m=a.m.multiply_elementwise(b.m), pure=True, marked=False)
            if self.lenient:
                return self.other_way(a, b, col, exc, "product")
            raise InputError(exc.message, exc.col) from None

    def _matmul(self, a: V, b: V, col: int) -> V:
        ka, kb = a.kind, b.kind
        ra = a.m.shape
        rb = b.m.shape

        def fail():
            raise _Shapes(f"cannot multiply a {_shape(a, self.batch)} by a {_shape(b, self.batch)} matrix at column {col + 1}: the inner "
                          "sizes differ (a transpose missing or in the wrong place, or \\odot meant?)", col)
        if ka == "batch" and kb == "batch":
            if a.axis == 1 and b.axis == 0:  # contracts over the examples
                return V(a.m * b.m, "tot")
            fail()
        if ka == "batch":
            if a.axis == 1 or ra[1] != rb[0]:
                fail()
            if kb == "tot":
                raise InputError(f"at column {col + 1}: a batch times a sum over the rows mixes rows", col)
            return V(a.m * b.m, "batch", 0)
        if kb == "batch":
            if b.axis == 0 or ra[1] != rb[0]:
                fail()
            if ka == "tot":
                raise InputError(f"at column {col + 1}: a sum over the rows times a batch mixes rows", col)
            return V(a.m * b.m, "batch", 1)
        if ra[1] != rb[0]:
            fail()
        if ka == "tot" and kb == "tot":
            raise InputError(f"at column {col + 1}: a product of two sums over the rows is not part of backprop", col)
        return V(a.m * b.m, "tot" if "tot" in (ka, kb) else "const")

    def other_way(self, a: V, b: V, col: int, exc: _Shapes, how: str) -> V:
        """Lenient reading of a failed product or ⊙ (for naming the slip): the other product, or
        an operand transposed."""
        tries = []
        if how == "product":
            tries.append(("hadamard_vs_matmul", lambda: self._hadamard(a, b, col)))
        else:
            tries.append(("hadamard_vs_matmul", lambda: self._matmul(a, b, col)))
        for which, v in (("b", b), ("a", a)):
            slip = "extra_transpose" if v.marked else "missing_transpose"
            tv = self.transpose(v)
            pair = (a, tv) if which == "b" else (tv, b)
            tries.append((slip, (lambda p=pair: self._matmul(*p, col)) if how == "product"
                          else (lambda p=pair: self._hadamard(*p, col))))
        for slip, attempt in tries:
            try:
                value = attempt()
            except (_Shapes, InputError):
                continue
            self.slips.append(slip)
            return value
        raise InputError(exc.message, exc.col)

    def hadamard(self, a: V, b: V, col: int) -> V:
        try:
            return self._hadamard(a, b, col)
        except _Shapes as exc:
            if self.lenient:
                return self.other_way(a, b, col, exc, "hadamard")
            raise InputError(exc.message, exc.col) from None

    def _hadamard(self, a: V, b: V, col: int) -> V:
        if a.is_scalar or b.is_scalar:
            s, o = (a, b) if a.is_scalar else (b, a)
            return replace(_map(o, lambda e: e * s.scalar()), pure=False)
        a, b = self.fixed(a), self.fixed(b)
        if "tot" in (a.kind, b.kind):
            raise InputError(f"at column {col + 1}: an element-wise product with a sum over the rows is not part "
                             "of backprop", col)
        m = self._broadcast(a, b, col, "multiply element-wise")
        return V(m[0].multiply_elementwise(m[1]), m[2], m[3])

    def _broadcast(self, a: V, b: V, col: int, what: str):
        """(slice a, slice b, kind, axis) of two values of one shape (a constant row/column
        broadcast over a batch)."""
        if a.kind == b.kind == "batch":
            if a.axis != b.axis or a.m.shape != b.m.shape:
                raise _Shapes(f"cannot {what} a {_shape(a, self.batch)} and a {_shape(b, self.batch)} matrix at column {col + 1}", col)
            return a.m, b.m, "batch", a.axis
        if a.kind == "batch" or b.kind == "batch":
            bat, con = (a, b) if a.kind == "batch" else (b, a)
            if con.m.shape != bat.m.shape:
                raise _Shapes(f"cannot {what} a {_shape(a, self.batch)} and a {_shape(b, self.batch)} matrix at column {col + 1}", col)
            return (bat.m, con.m, "batch", bat.axis) if a is bat else (con.m, bat.m, "batch", bat.axis)
        if a.m.shape != b.m.shape:
            raise _Shapes(f"cannot {what} a {_shape(a, self.batch)} and a {_shape(b, self.batch)} matrix at column {col + 1}", col)
        return a.m, b.m, a.kind, 0

    def add(self, a: V, b: V, col: int) -> V:
        pure = a.pure and b.pure
        if a.is_scalar and b.is_scalar:
            return V(a.scalar() + b.scalar(), pure=pure)
        if a.is_scalar or b.is_scalar:  # a number broadcast over a matrix (1 - O^1)
            s, o = (a, b) if a.is_scalar else (b, a)
            if o.kind == "tot":
                return replace(o, m=o.m.applyfunc(lambda e: e + s.scalar() / N), pure=False)
            return replace(o, m=o.m.applyfunc(lambda e: e + s.scalar()), pure=pure, marked=False)
        if {a.kind, b.kind} == {"tot", "const"}:
            a, b = [replace(v, m=v.m / N, kind="tot") if v.kind == "const" else v for v in (a, b)]
        if (a.kind == "tot") != (b.kind == "tot"):
            raise InputError(f"cannot add a {_shape(a, self.batch)} and a {_shape(b, self.batch)} matrix at column {col + 1} (one is "
                             "summed over the rows)", col)
        try:
            ma, mb, kind, axis = self._broadcast(a, b, col, "add")
        except _Shapes as exc:
            raise InputError(exc.message, exc.col) from None
        return V(ma + mb, kind, axis, pure)

    def sum_rows(self, v: V, col: int) -> V:
        if v.kind != "batch":
            raise InputError(f"the sum at column {col + 1} is over the rows of a batch, but it sums a "
                             f"{_shape(v, self.batch)} {'sum' if v.kind == 'tot' else 'constant'}", col)
        return V(v.m, "tot")


# -- checking --------------------------------------------------------------------------------
_BATCH = re.compile(r"\\frac\s*\{\s*1\s*\}\s*\{\s*[nmN]\s*\}|\\sum|(?<![A-Za-z\\])d[WZAb]\s*\^|/\s*[nmN](?![A-Za-z])")


def _normalise(s: str) -> str:
    r"""Transposes as \top, \left/\right and other layout gone (columns may shift: reported
    columns are of this text)."""
    return _TRANSPOSE.sub(r"\\top", s)


def _notation_key(checker) -> str:
    return getattr(getattr(getattr(checker, "reader", None), "notation", None), "key", "") or ""


def _setup(checker, eq):
    ng = _notation_key(checker) == "ng"
    column = bool(eq.vectors == "column") or ng
    t = clean_layout(Text.of(eq.source))
    check_balanced(t)
    parts = split_relations(t)
    if len(parts) < 2:
        raise InputError("not an equation: no '='")
    batch = bool(_BATCH.search(eq.source))
    return ng, column, parts, batch


def _read(checker, parts, column, ng, lenient="", batch=True):
    p = _Parser(checker, column, ng, lenient, batch)
    values = [p.parse(_normalise(seg.s), seg.col(0)) for _, seg in parts]
    return values, p.slips


def _as_pair(head: V, value: V, batch: bool):
    """Comparable (truth, claim) matrices, or None when their shapes differ."""
    h, v = head, value
    if not batch:  # one row: a batch, its sum and a constant are all the one row
        hm, vm = (_map(x, lambda e: sympy.sympify(e, strict=True).xreplace({N: 1})).m for x in (h, v))
        if isinstance(hm, sympy.MatrixBase) != isinstance(vm, sympy.MatrixBase):
            return None
        if isinstance(hm, sympy.MatrixBase) and hm.shape != vm.shape:
            return None
        return hm, vm
    if h.kind == "const" and v.kind == "tot":
        h = replace(h, m=h.m / N, kind="tot")
    if v.kind == "const" and h.kind == "tot":
        v = replace(v, m=v.m / N, kind="tot")
    if h.kind != v.kind or (h.kind == "batch" and h.axis != v.axis):
        return None
    if isinstance(h.m, sympy.MatrixBase) != isinstance(v.m, sympy.MatrixBase):
        return None
    if isinstance(h.m, sympy.MatrixBase) and h.m.shape != v.m.shape:
        return None
    return h.m, v.m


def _entries(m) -> list:
    return list(m) if isinstance(m, sympy.MatrixBase) else [m]


def _differs(checker, claim_m, truth_m, seed: str):
    """(entry index, counterexample, claimed entry, true entry) of the first entry that
    differs (at each batch size), or None and the method that showed agreement."""
    method = ""
    for idx, (claim, truth) in enumerate(zip(_entries(claim_m), _entries(truth_m))):
        sizes = BATCH_SIZES if (N in getattr(claim, "free_symbols", ()) or
                                N in getattr(truth, "free_symbols", ())) else BATCH_SIZES[:1]
        for n in sizes:
            c = sympy.sympify(claim, strict=True).xreplace({N: n})
            t = sympy.sympify(truth, strict=True).xreplace({N: n})
            cx, method = checker.compare(c, t, f"{seed}#{idx}#{n}")
            if cx is not None:
                if len(sizes) > 1 or N in getattr(claim, "free_symbols", ()):
                    cx = {**cx, "point": {"n": n, **cx.get("point", {})}}
                return (idx, cx, c, t), method
    return None, method


def _slip_for(checker, claim_m, truth_m, seed: str, head_text: str, k: int | None) -> str | None:
    """The matrix slip that, applied to the truth, gives the claim (None when none does)."""
    candidates = [("missing_mean", lambda t: t * N), ("extra_mean", lambda t: t / N), ("sign_error", lambda t: -t)]
    for slip, f in candidates:
        moved = truth_m.applyfunc(f) if isinstance(truth_m, sympy.MatrixBase) else f(truth_m)
        if _differs(checker, claim_m, moved, seed + slip)[0] is None:
            return slip
    if k is not None and re.search(r"\\delta|dZ|Z\s*\^|W\s*\^|b\s*\^", head_text):
        act = checker.net.activation(k)
        if act.elementwise and isinstance(truth_m, sympy.MatrixBase):
            gp = [checker.net.slope(k, j)
                  for j in range(1, checker.spec.layers[k] + 1)]
            if all(g != 0 for g in gp):
                moved = truth_m.copy()
                width = len(gp)
                for idx in range(len(moved)):
                    r, c = divmod(idx, moved.shape[1])
                    j = (c if moved.shape[1] == width and not (moved.shape[0] == width and moved.shape[1] != width)
                         else r)
                    moved[idx] = moved[idx] / gp[j]
                if _differs(checker, claim_m, moved, seed + "g")[0] is None:
                    return "missing_gprime"
    return None


def _head_layer(text: str) -> int | None:
    m = re.search(r"(?:W|b|Z|\\delta)\s*\^\s*\{?\s*[\[(]?\s*(\d+)", text)
    return int(m.group(1)) if m else None


def _wrong(checker, **kw):
    slip = kw.pop("slip", None)
    if slip:
        kw["misconception"] = misconceptions.get(slip)
    return Wrong(**kw)


def check(checker, eq, base: dict):
    """A matrix-form claim, read with one generic row standing for the batch (a batch-normalised
    net's claims go to :mod:`batch_norm_form` instead: its rows couple)."""
    ng, column, parts, batch = _setup(checker, eq)
    try:
        values, _ = _read(checker, parts, column, ng, batch=batch)
    except InputError:
        # read the other way (⊙ for a product, a transpose added or dropped): a named slip?
        try:
            values, slips = _read(checker, parts, column, ng, lenient="swap", batch=batch)
        except InputError:
            values, slips = None, []
        strict_error = _read_error(checker, parts, column, ng, batch)
        if values is None or not slips or _mismatch(checker, eq, parts, values, batch, column) is not None:
            raise strict_error from None
        raise _wrong(checker, expected_latex=_expected(checker, parts[0][1].s, column),
                     counterexample={"point": {}, "claimed": strict_error.message, "actual": "the shapes of the truth"},
                     method="shapes", slip=slips[0],
                     message=f"{strict_error.message}; read with {misconceptions.get(slips[0])['label']} undone, "
                             "the equation holds") from None
    bad = _mismatch(checker, eq, parts, values, batch, column)
    if bad is not None:
        raise bad
    method = ""
    for value in values[1:]:
        pair = _as_pair(values[0], value, batch)
        method = _differs(checker, pair[1], pair[0], eq.source)[1] or method
    rows = "a batch of n rows (L the mean over them)" if batch else "one row"
    return Verdict(**base, verdict="correct", method=f"{method}, every entry",
                   message=f"{_shape(values[0], batch)}, "
                           f"{'column' if column else 'row'} vectors, {rows}")


def _read_error(checker, parts, column, ng, batch) -> InputError:
    try:
        _read(checker, parts, column, ng, batch=batch)
    except InputError as exc:
        return exc
    return InputError("cannot read the equation")


def _mismatch(checker, eq, parts, values, batch, column):
    """The wrong verdict (as an exception) for the first segment that differs, or None."""
    head = values[0]
    k = _head_layer(parts[0][1].s)
    for n, value in enumerate(values[1:], start=2):
        pair = _as_pair(head, value, batch)
        expected = _expected(checker, parts[0][1].s, column)
        if pair is None:
            summed = replace(value, kind="tot") if value.kind == "batch" else None
            if summed is not None and head.kind in ("tot", "const"):
                sp = _as_pair(head, summed, batch)
                if sp is not None and _differs(checker, sp[1], sp[0], eq.source + "#sum")[0] is None:
                    return _wrong(checker, expected_latex=expected, method="shapes", slip="bias_not_summed",
                                  counterexample={"point": {}, "claimed": f"a {_shape(value, batch)} matrix",
                                                  "actual": f"a {_shape(head, batch)} matrix"},
                                  message=f"segment {n} is {_shape(value, batch)} (one entry per example), the left side "
                                          f"{_shape(head, batch)}: sum over the rows")
            if isinstance(value.m, sympy.MatrixBase) and isinstance(head.m, sympy.MatrixBase):
                flipped = _as_pair(head, replace(value, m=value.m.T, axis=1 - value.axis), batch)
                if flipped is not None and _differs(checker, flipped[1], flipped[0], eq.source + "#T")[0] is None:
                    marks = len(re.findall(r"\\top", _normalise(parts[n - 1][1].s)))
                    want = len(re.findall(r"\\top", expected or "")) if expected else None
                    slip = "extra_transpose" if want is not None and marks > want else "missing_transpose"
                    return _wrong(checker, expected_latex=expected, method="shapes", slip=slip,
                                  counterexample={"point": {}, "claimed": f"a {_shape(value, batch)} matrix",
                                                  "actual": f"a {_shape(head, batch)} matrix"},
                                  message=f"segment {n} is {_shape(value, batch)}, the left side {_shape(head, batch)}: "
                                          "it is the transpose of the truth")
            return InputError(f"segment {n} is {_shape(value, batch)}, the left side {_shape(head, batch)}")
        truth_m, claim_m = pair
        found, _ = _differs(checker, claim_m, truth_m, eq.source)
        if found is not None:
            idx, cx, c, t = found
            cols = truth_m.shape[1] if isinstance(truth_m, sympy.MatrixBase) else 1
            r, cc = divmod(idx, cols)
            slip = _slip_for(checker, claim_m, truth_m, eq.source, parts[0][1].s, k)
            return _wrong(checker, expected_latex=expected or checker.latex(t), counterexample=cx,
                          method="numeric", slip=slip,
                          message=f"segment {n} differs in entry ({r + 1}, {cc + 1}): it is "
                                  f"{checker.printer.text(c)}, the truth {checker.printer.text(t)}"
                                  + (f" ({misconceptions.get(slip)['label']})" if slip else ""))
    return None


def _expected(checker, lhs: str, column: bool) -> str | None:
    """The matching line of `backprop derive --vectorised` (row vectors) for the left side."""
    if column:
        return None
    key = re.sub(r"\s+|[{}]", "", lhs)
    for left, right in vectorise(checker.d).equations("latex"):
        if re.sub(r"\s+|[{}]", "", left) == key:
            return f"{left} = {right}"
    return None
