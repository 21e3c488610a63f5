"""Printers for the notes' notation: SymPy's str and LaTeX printers, subclassed.

Two things differ from SymPy's defaults, both display-only (the expression is unchanged):

* symbols are spelled as the notes spell them (``w^2_11`` / ``w^{2}_{11}``, ``x_i1``, ``ŷ``);
* products are ordered the way backprop is read, from the loss down to the inputs
  (``-2(y - ŷ) w^2_11 x_i1``): numbers, loss terms, then each layer's factors from the
  output layer to the first, inputs last; a sum whose first term reads negative has its sign
  pulled out, so SymPy's ``2(ŷ - y)`` prints as the notes' ``-2(y - ŷ)``.
"""
from __future__ import annotations

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from . import notation as nt


def _layer_rank(expr: sympy.Expr, depth: int) -> float:
    """Where a factor sits on the way from the loss (high) to the inputs (0)."""
    ranks = []
    for s in expr.free_symbols:
        name = nt.parse(s)
        if name is None:
            ranks.append(depth + 2)
        elif name.kind == "y":
            ranks.append(depth + 1.5)
        elif name.kind in ("yhat",):
            ranks.append(depth + 1)
        elif name.kind in ("O", "z", "delta", "dO"):
            ranks.append(name.indices[0])
        elif name.kind == "b":  # a bias reads last in its sum: w x + w x + b
            ranks.append(name.indices[0] - 0.5)
        elif name.kind == "w":
            ranks.append(name.indices[0] - 0.25)
        else:  # x
            ranks.append(0)
    return max(ranks, default=depth + 3)


def _natural(expr: sympy.Expr):
    """Order by the symbols' integer indices (y_2 before y_10), then SymPy's own key."""
    names = sorted((n.kind, n.indices) for n in map(nt.parse, expr.free_symbols) if n)
    return names, sympy.default_sort_key(expr)


def _term_key(term: sympy.Expr, depth: int):
    """Inside a sum: targets first, then constants, then the rest from the loss down."""
    if any((nt.parse(s) or nt.Name("", ())).kind == "y" for s in term.free_symbols):
        return (0, 0.0, _natural(term))
    if term.is_number:
        return (1, 0.0, ([], sympy.default_sort_key(term)))
    return (2, -_layer_rank(term, depth), _natural(term))


def _pretty_add(expr: sympy.Add, depth: int) -> tuple[int, sympy.Expr]:
    """(sign, sum) ordered for reading: 2ŷ-2y -> (-1, y-ŷ) as the notes write the loss
    term; otherwise a positive term leads, so 1 - O stays 1 - O."""
    terms = sorted(expr.args, key=lambda t: _term_key(t, depth))
    if _term_key(terms[0], depth)[0] == 0 or all(t.could_extract_minus_sign() for t in terms):
        if terms[0].could_extract_minus_sign():
            return -1, sympy.Add(*[-t for t in terms], evaluate=False)
    elif terms[0].is_number and terms[0] < 0 and not any(t.could_extract_minus_sign() for t in terms[1:]):
        return -1, sympy.Add(*[-t for t in terms], evaluate=False)  # ŷ - 1 -> -(1 - ŷ)
    elif terms[0].could_extract_minus_sign():
        first = next(t for t in terms if not t.could_extract_minus_sign())
        terms.remove(first)
        terms.insert(0, first)
    return 1, sympy.Add(*terms, evaluate=False)


def display_form(expr: sympy.Expr, depth: int) -> sympy.Expr:
    """An unevaluated copy of ``expr`` ordered for reading; print it with order='none'."""
    if isinstance(expr, sympy.Symbol) or expr.is_number:
        return expr
    if isinstance(expr, sympy.Add):
        # the numeric content only (2ŷ - 2y -> 2(ŷ - y)): factor_terms here, at every
        # level of a deep formula, made printing 5-4-3-2-1 take minutes
        content, expr = expr.as_content_primitive()
        if not isinstance(expr, sympy.Add):
            return display_form(sympy.Mul(content, expr), depth)
        sign, pretty = _pretty_add(expr, depth)
        inner = sympy.Add(*[display_form(t, depth) for t in pretty.args], evaluate=False)
        coeff = content * sign
        return inner if coeff == 1 else sympy.Mul(coeff, inner, evaluate=False)
    if isinstance(expr, sympy.Mul):
        sign, coeff, factors = 1, sympy.S.One, []
        for f in expr.args:
            if f.is_number:
                coeff *= f
                continue
            if isinstance(f, sympy.Add):
                c, f = f.as_content_primitive()
                coeff *= c
                if isinstance(f, sympy.Add):
                    s, f = _pretty_add(f, depth)
                    sign *= s
            factors.append(f)
        coeff *= sign
        factors.sort(key=lambda f: (-_layer_rank(f, depth), not isinstance(f, sympy.Symbol),
                                    _natural(f)))
        parts = [display_form(f, depth) for f in factors]
        if coeff != 1:
            parts.insert(0, coeff)
        return sympy.Mul(*parts, evaluate=False) if len(parts) > 1 else parts[0]
    if expr.args:
        args = [display_form(a, depth) for a in expr.args]
        try:
            return expr.func(*args, evaluate=False)
        except TypeError:  # ExprCondPair and other nodes without an evaluate flag
            return expr.func(*args)
    return expr


class _NotationMixin:
    """Symbol spelling shared by the text and LaTeX printers."""

    _single_output = False
    _spell = staticmethod(nt.text_name)

    def _print_Symbol(self, expr, **kwargs):
        name = nt.parse(expr)
        if name is None:
            return super()._print_Symbol(expr, **kwargs)
        return self._spell(name, self._single_output)


class NotationStr(_NotationMixin, StrPrinter):
    """Plain text: -2*(y - ŷ)*w^2_11*x_i1."""


class NotationLatex(_NotationMixin, LatexPrinter):
    """LaTeX: - 2 \\left(y - \\hat{y}\\right) w^{2}_{11} x_{i1}."""

    _spell = staticmethod(nt.latex_name)


class NotationPrinter:
    """Prints expressions of one network in its notation (text, LaTeX)."""

    def __init__(self, derivation=None, *, depth: int | None = None, single_output: bool | None = None):
        if derivation is not None:
            depth = derivation.net.depth
            single_output = derivation.net.single_output
        self.depth = depth or 1
        self._str = NotationStr({"order": "none"})
        self._str._single_output = bool(single_output)
        self._latex = NotationLatex({"order": "none", "mul_symbol": None})
        self._latex._single_output = bool(single_output)

    def text(self, expr) -> str:
        """Readable text: ``-2(y - ŷ) w^2_11 x_i1``."""
        out = self._str.doprint(display_form(sympy.sympify(expr, strict=True), self.depth))
        return out.replace("**", "^").replace("*", " ")

    def latex(self, expr) -> str:
        return self._latex.doprint(display_form(sympy.sympify(expr, strict=True), self.depth))
