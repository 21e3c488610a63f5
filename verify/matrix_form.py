r"""Vectorised (matrix) claims for one row, checked entry by entry.

Names (k a layer number, 0 for the inputs; braces optional):

* ``X`` (or ``x``, ``O^0``) the input row; ``O^k`` layer k's outputs (``O^L`` = ``\hat{Y}``);
  ``Y`` the targets; ``W^k`` the n_{k-1} × n_k weights (w^k_ij in row i, column j);
  ``b^k`` the biases; ``Z^k`` the weighted sums; ``\delta^k`` = ∂L/∂Z^k;
* ``\frac{\partial L}{\partial W^k}``, ``\frac{\partial L}{\partial b^k}``,
  ``\frac{\partial L}{\partial Z^k}``, ``\frac{\partial L}{\partial \hat{Y}}``: the true values;
* ``^\top`` / ``^T`` (also inside the superscript: ``W^{2\top}``, ``O^{1T}``) transposes;
  juxtaposition or ``\cdot`` is the matrix product, ``\odot`` the element-wise product
  (binding looser than the matrix product), ``+``/``-`` with a number broadcast
  (``1 - O^1``); ``\sigma(M)``, ``\tanh(M)`` element-wise; ``g'(Z^k)``/``g_k'(Z^k)`` is layer
  k's activation derivative; ``\sigma'(M)`` = σ(M)(1 - σ(M)).

Vectors are rows, as ``backprop derive --vectorised`` prints them (Z^k = O^{k-1} W^k + b^k,
δ^k = (δ^{k+1} W^{k+1 ⊤}) ⊙ g_k'(Z^k), ∂L/∂W^k = O^{k-1 ⊤} δ^k); after ``% vectors: column``
they are columns, as the notes write σ(W^T x + b).  A product whose shapes do not match is an
``error`` naming both shapes; a value that differs is ``wrong`` with the entry and a point.
"""
from __future__ import annotations

import re

import sympy

from backprop.derive import notation as nt
from backprop.derive.activations import derivative_at

from .latex_input import InputError, Text, check_balanced, clean_layout, split_relations

_HINT = re.compile(r"W\s*\^|\\delta\s*\^|\\odot|\\top|(?<![A-Za-z\\])[OZb]\s*\^\s*\{?\s*\(?\s*\d|\\hat\s*\{\s*Y\s*\}")


def looks_like_matrix_form(source: str) -> bool:
    return bool(_HINT.search(source))


_TOK = re.compile(r"""
    (?P<frac>\\frac\s*\{\s*\\partial\s*L\s*\}\s*\{\s*\\partial\s*(?P<fwrt>[^{}]*(?:\{[^{}]*\}[^{}]*)*)\})
  | (?P<func>\\sigma\s*'|\\sigma\s*\^\s*\{?\s*\\prime\s*\}?|\\sigma|\\tanh|g\s*(?:_\s*\{?\s*\d+\s*\}?)?\s*')
  | (?P<name>\\hat\s*\{\s*Y\s*\}|\\delta|[WObZXxY])
  | (?P<sup>\^\s*(?:\{[^{}]*\}|\\top|\\prime|[0-9A-Za-z]))
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>\\odot|\\cdot|\\times|[-+()])
  | (?P<ws>\s+)
""", re.VERBOSE)


class _Parser:
    def __init__(self, checker, text: Text, column_vectors: bool):
        self.c = checker
        self.net = checker.net
        self.spec = checker.spec
        self.col = column_vectors
        self.t = text
        self.toks = []
        pos = 0
        s = text.s
        while pos < len(s):
            m = _TOK.match(s, pos)
            if not m:
                raise InputError(f"'{s[pos:pos + 8]}' at column {text.col(pos) + 1} is not part of the matrix "
                                 r"syntax (W^k, O^k, X, b^k, Z^k, \delta^k, \odot, ^\top)", text.col(pos))
            if not m.group("ws"):
                self.toks.append((m.lastgroup if m.lastgroup != "fwrt" else "frac", m.group(), text.col(pos)))
            pos = m.end()
        self.i = 0

    # -- values --------------------------------------------------------------------------
    def vec(self, entries) -> sympy.Matrix:
        row = sympy.Matrix([list(entries)])
        return row.T if self.col else row

    def layer_arg(self, sup: str | None, what: str, col: int) -> tuple[int, bool]:
        """'^{2\\top}' -> (2, True)."""
        if sup is None:
            raise InputError(f"{what} at column {col + 1} needs a layer: {what}^1, {what}^2, ...", col)
        body = sup.lstrip("^").strip().strip("{}").strip()
        t = bool(re.search(r"\\top|T$", body))
        body = re.sub(r"\\top|T$", "", body).strip().strip("()").strip()
        if not body.isdigit():
            raise InputError(f"{what}^{{{body}}} at column {col + 1}: the layer must be a number", col)
        k = int(body)
        if not 0 <= k <= self.spec.depth:
            raise InputError(f"{what}^{k} at column {col + 1}: the {'-'.join(map(str, self.spec.layers))} network "
                             f"has layers 0..{self.spec.depth}", col)
        return k, t

    def named(self, name: str, k: int | None, col: int) -> sympy.Matrix:
        L = self.spec.layers
        if name in ("X", "x"):
            return self.vec(self.net.inputs)
        if name == "Y":
            return self.vec(self.net.targets)
        if name.startswith(r"\hat"):
            return self.vec(self.net.predictions)
        if name == "O":
            return self.vec(self.net.outputs(k))
        if k == 0:
            raise InputError(f"{name}^0 at column {col + 1}: layer 0 is the input and has no {name}", col)
        if name == "W":
            return sympy.Matrix(L[k - 1], L[k], lambda i, j: nt.weight(k, i + 1, j + 1))
        if name == "b":
            return self.vec([nt.bias(k, j) for j in range(1, L[k] + 1)])
        if name == "Z":
            return self.vec([self.net.z(k, j) for j in range(1, L[k] + 1)])
        if name == r"\delta":
            return self.vec([self.c.d.resolved_delta(k, j) for j in range(1, L[k] + 1)])
        raise InputError(f"{name} at column {col + 1} is not a matrix name", col)

    def derivative(self, wrt: str, col: int) -> sympy.Matrix:
        m = re.fullmatch(r"\s*([WbZO])\s*(\^.*)?\s*|\s*\\hat\s*\{\s*Y\s*\}\s*", wrt)
        if not m:
            raise InputError(rf"\frac{{\partial L}}{{\partial {wrt}}} at column {col + 1}: expected W^k, b^k, Z^k, "
                             r"O^L or \hat{Y}", col)
        L = self.spec.layers
        if m.group(1) is None:
            return self.vec(self.c.d.dL_dyhat)
        k, _ = self.layer_arg(m.group(2), m.group(1), col)
        if m.group(1) == "W":
            return sympy.Matrix(L[k - 1], L[k], lambda i, j: self.c.d.gradient(nt.weight(k, i + 1, j + 1)).formula)
        if m.group(1) == "b":
            return self.vec([self.c.d.gradient(nt.bias(k, j)).formula for j in range(1, L[k] + 1)])
        if m.group(1) == "Z":
            return self.vec([self.c.d.resolved_delta(k, j) for j in range(1, L[k] + 1)])
        return self.vec([self.c.d.resolved_dO(k, j) if k < self.spec.depth else self.c.d.dL_dyhat[j - 1]
                         for j in range(1, L[k] + 1)])

    # -- grammar: sum := had (+|- had)* ; had := prod (⊙ prod)* ; prod := post (·? post)* -------
    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None, self.t.col(len(self.t.s)))

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def parse(self):
        value = self.sum()
        kind, text, col = self.peek()
        if kind is not None:
            raise InputError(f"unparsable matrix expression at column {col + 1} (near '{text}')", col)
        return value

    def sum(self):
        value = self.had()
        while self.peek()[1] in ("+", "-"):
            _, op, col = self.take()
            rhs = self.had()
            value = self.combine(value, rhs if op == "+" else _neg(rhs), col, "add")
        return value

    def had(self):
        value = self.prod()
        while self.peek()[1] == r"\odot":
            _, _, col = self.take()
            value = self.combine(value, self.prod(), col, "hadamard")
        return value

    def prod(self):
        value = self.post()
        while True:
            kind, text, col = self.peek()
            if text in (r"\cdot", r"\times"):
                self.take()
            elif kind not in ("name", "num", "func", "frac") and text != "(":
                return value
            value = self.combine(value, self.post(), col, "product")

    def post(self):
        kind, text, col = self.take()
        if text == "-":
            return _neg(self.post())
        if kind is None:
            raise InputError(f"unparsable matrix expression: it ends too early (column {col + 1})", col)
        if text == "(":
            value = self.sum()
            if self.take()[1] != ")":
                raise InputError(f"unparsable matrix expression: '(' at column {col + 1} is never closed", col)
        elif kind == "num":
            value = sympy.Rational(text)
        elif kind == "frac":
            value = self.derivative(re.match(r"\\frac\s*\{\s*\\partial\s*L\s*\}\s*\{\s*\\partial\s*(.*)\}\s*$",
                                             text).group(1), col)
        elif kind == "func":
            value = self.function(text, col)
        elif kind == "name":
            name = re.sub(r"\s+", "", text)
            sup = self.take()[1] if self.peek()[0] == "sup" else None
            needs_layer = name in ("W", "b", "Z", r"\delta", "O")
            if needs_layer:
                k, t = self.layer_arg(sup, name, col)
                value = self.named(name, k, col)
                value = value.T if t else value
            else:
                value = self.named(name, None, col)
                if sup is not None:
                    if re.search(r"\\top|T", sup):
                        value = value.T
                    else:
                        raise InputError(f"{name}{sup} at column {col + 1}: only a transpose is allowed here", col)
        else:
            raise InputError(f"unexpected '{text}' at column {col + 1}", col)
        while self.peek()[0] == "sup":
            _, sup, scol = self.take()
            if re.search(r"\\top|T", sup):
                value = value.T
            else:
                raise InputError(f"'{sup}' at column {scol + 1}: only a transpose (^\\top) applies to a matrix", scol)
        return value

    def function(self, text: str, col: int):
        if self.take()[1] != "(":
            raise InputError(f"{text} at column {col + 1} needs a parenthesised argument", col)
        start = self.i
        arg = self.sum()
        if self.take()[1] != ")":
            raise InputError(f"unparsable matrix expression: '(' after {text} is never closed", col)
        name = re.sub(r"\s+", "", text)
        if name == r"\sigma":
            return _map(arg, lambda u: 1 / (1 + sympy.exp(-u)))
        if name == r"\tanh":
            return _map(arg, sympy.tanh)
        if name.startswith(r"\sigma"):
            return _map(arg, lambda u: 1 / (1 + sympy.exp(-u)) * (1 - 1 / (1 + sympy.exp(-u))))
        # g'(Z^k) or g_k'(...): the layer's activation derivative
        m = re.search(r"_\{?(\d+)", name)
        k = int(m.group(1)) if m else None
        if k is None:
            kind, arg_text, _ = self.toks[start]
            sup = self.toks[start + 1][1] if start + 1 < len(self.toks) else ""
            if re.sub(r"\s+", "", arg_text) == "Z" and re.search(r"\d+", sup or ""):
                k = int(re.search(r"\d+", sup).group())
        if k is None or not 1 <= k <= self.spec.depth:
            raise InputError(f"g' at column {col + 1}: write g_k'(...) or g'(Z^k) so the layer is known", col)
        act = self.net.activation(k)
        if not act.elementwise:
            raise InputError(f"g' of layer {k} ({act.name}) is a Jacobian, not element-wise", col)
        return _map(arg, lambda u: derivative_at(act.name, act.sym(u), u))

    def combine(self, a, b, col: int, how: str):
        sa, sb = _shape(a), _shape(b)
        if how == "product":
            if sa is None or sb is None:
                return a * b
            if sa[1] != sb[0]:
                if sa == (1, 1) or sb == (1, 1):
                    return (a[0, 0] * b) if sa == (1, 1) else (a * b[0, 0])
                raise InputError(f"cannot multiply a {sa[0]}×{sa[1]} by a {sb[0]}×{sb[1]} matrix at column "
                                 f"{col + 1}: the inner sizes differ (a transpose missing or in the wrong place?)", col)
            return a * b
        if sa is None and sb is None:
            return a + b if how == "add" else a * b
        if sa is None or sb is None:  # number and matrix: broadcast
            m, s = (b, a) if sa is None else (a, b)
            return m.applyfunc(lambda e: e + s) if how == "add" else m * s
        if sa != sb:
            raise InputError(f"cannot {'add' if how == 'add' else 'multiply element-wise'} a {sa[0]}×{sa[1]} and a "
                             f"{sb[0]}×{sb[1]} matrix at column {col + 1}", col)
        return a + b if how == "add" else a.multiply_elementwise(b)


def _shape(v):
    return v.shape if isinstance(v, sympy.MatrixBase) else None


def _neg(v):
    return -v


def _map(v, f):
    return v.applyfunc(f) if isinstance(v, sympy.MatrixBase) else f(v)


def check(checker, eq, base: dict):
    from .checker import Verdict, _Wrong

    column = bool(eq.vectors == "column")
    t = clean_layout(Text.of(eq.source))
    check_balanced(t)
    parts = split_relations(t)
    if len(parts) < 2:
        raise InputError("not an equation: no '='")
    values = [_Parser(checker, seg, column).parse() for _, seg in parts]
    head = values[0]
    method = ""
    for n, (value, (_, seg)) in enumerate(zip(values[1:], parts[1:]), start=2):
        if _shape(value) != _shape(head):
            raise InputError(f"segment {n} is {_show_shape(value)}, the left side {_show_shape(head)}")
        pairs = list(zip(value, head)) if _shape(head) else [(value, head)]
        for idx, (claim, truth) in enumerate(pairs):
            cx, method = checker.compare(claim, truth, f"{eq.source}#{idx}")
            if cx is not None:
                r, c = divmod(idx, head.shape[1]) if _shape(head) else (0, 0)
                expected = _expected(checker, parts[0][1].s, column)
                raise _Wrong(expected_latex=expected or checker.latex(head),
                             counterexample=cx, method="numeric",
                             message=f"segment {n} differs in entry ({r + 1}, {c + 1}): it is "
                                     f"{checker.printer.text(claim)}, the truth {checker.printer.text(truth)}")
    return Verdict(**base, verdict="correct", method=f"{method}, every entry",
                   message=f"{_show_shape(head)}, {'column' if column else 'row'} vectors")


def _show_shape(v) -> str:
    return f"{v.shape[0]}×{v.shape[1]}" if _shape(v) else "a number"


def _expected(checker, lhs: str, column: bool) -> str | None:
    """The matching line of `backprop derive --vectorised` (row vectors) for the left side."""
    if column:
        return None
    from backprop.derive import vectorise

    key = re.sub(r"\s+|[{}]", "", lhs)
    for left, right in vectorise(checker.d).equations("latex"):
        if re.sub(r"\s+|[{}]", "", left) == key:
            return f"{left} = {right}"
    return None
