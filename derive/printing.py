"""Printers for the notes' notation: SymPy's str and LaTeX printers, subclassed.

Two things differ from SymPy's defaults, both display-only (the expression is unchanged):

* symbols are spelled as the notes spell them (``w^2_11`` / ``w^{2}_{11}``, ``x_i1``, ``ŷ``);
* products are ordered the way backprop is read, from the loss down to the inputs
  (``-2(y - ŷ) w^2_11 x_i1``): numbers, loss terms, then each layer's factors from the
  output layer to the first, inputs last; a sum whose first term reads negative has its sign
  pulled out, so SymPy's ``2(ŷ - y)`` prints as the notes' ``-2(y - ŷ)``.
"""
from __future__ import annotations

import copy
from functools import lru_cache

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from . import notation as nt
from .activations import TableConstant
from .spelling import NotationError, rule_for


#: Where a symbol of each kind sits, from its Name and the depth: the loss terms above the
#: output layer, a layer's own nodes at k, its weights just below, its bias below them (a
#: bias reads last in its sum: w x + w x + b), inputs at 0.
_KIND_RANK = {
    "y": lambda name, depth: depth + 1.5,
    "yhat": lambda name, depth: depth + 1,
    "O": lambda name, depth: name.indices[0],
    "z": lambda name, depth: name.indices[0],
    "delta": lambda name, depth: name.indices[0],
    "dO": lambda name, depth: name.indices[0],
    "b": lambda name, depth: name.indices[0] - 0.5,
    "w": lambda name, depth: name.indices[0] - 0.25,
    "x": lambda name, depth: 0,
}


def _symbol_rank(name: nt.Name | None, depth: int) -> float:
    """The rank of one symbol (another symbol than the notes' reads before the loss)."""
    return depth + 2 if name is None else _KIND_RANK[name.kind](name, depth)


@lru_cache(maxsize=65536)
def _layer_rank(expr: sympy.Expr, depth: int) -> float:
    """Where a factor sits on the way from the loss (high) to the inputs (0)."""
    return max((_symbol_rank(nt.parse(s), depth) for s in expr.free_symbols), default=depth + 3)


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


def _pretty_add(expr: sympy.Add, depth: int, factor: bool = False) -> tuple[int, sympy.Expr]:
    """(sign, sum) ordered for reading, as the notes write it.

    * a positive constant leads: ``1 - ŷ``, ``1 - y ŷ`` (SymPy's ``-(y ŷ - 1)``);
    * ``factor`` (the sum multiplies something): a negative constant with positive terms
      flips, ``y - 1`` -> ``-(1 - y)``, so the sign joins the product's coefficient
      (bce: ``-(y log(ŷ) + (1 - y) log(1 - ŷ))``);
    * targets lead: ``2ŷ - 2y`` -> ``(-1, y - ŷ)``, the notes' loss term;
    * otherwise a positive term leads, so ``-a + b`` reads ``b - a``."""
    terms = sorted(expr.args, key=lambda t: _term_key(t, depth))
    numbers = [t for t in terms if t.is_number]
    rest = [t for t in terms if not t.is_number]
    if len(numbers) == 1 and rest:
        c = numbers[0]
        if c > 0:
            return 1, sympy.Add(c, *rest, evaluate=False)
        if (factor or _term_key(rest[0], depth)[0] != 0) and not any(
                t.could_extract_minus_sign() for t in rest):
            return -1, sympy.Add(-c, *[-t for t in rest], evaluate=False)  # ŷ - 1 -> -(1 - ŷ)
    if _term_key(terms[0], depth)[0] == 0 or all(t.could_extract_minus_sign() for t in terms):
        if terms[0].could_extract_minus_sign():
            return -1, sympy.Add(*[-t for t in terms], evaluate=False)
    elif terms[0].could_extract_minus_sign():
        first = next(t for t in terms if not t.could_extract_minus_sign())
        terms.remove(first)
        terms.insert(0, first)
    return 1, sympy.Add(*terms, evaluate=False)


def _reads_negative(term: sympy.Expr) -> bool:
    """A displayed product that prints with a leading minus (-2 (y - ŷ) w)."""
    return isinstance(term, sympy.Mul) and term.args[0].is_number and term.args[0] < 0


def _negated(term: sympy.Mul) -> sympy.Expr:
    coeff, *rest = term.args
    parts = rest if coeff == -1 else [-coeff, *rest]
    return sympy.Mul(*parts, evaluate=False) if len(parts) > 1 else parts[0]


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
        parts = [display_form(t, depth) for t in pretty.args]
        if len(parts) > 1 and all(map(_reads_negative, parts)):  # -(a) w - (b) w -> -((a) w + (b) w)
            sign, parts = -sign, [_negated(p) for p in parts]
        inner = sympy.Add(*parts, evaluate=False)
        coeff = content * sign
        return inner if coeff == 1 else sympy.Mul(coeff, inner, evaluate=False)
    if isinstance(expr, sympy.Mul):
        sign, coeff, factors = 1, sympy.S.One, []
        for f in expr.args:
            if f.is_number:
                coeff *= f
                continue
            if isinstance(f, sympy.Pow) and isinstance(f.base, sympy.Add) and f.exp.is_Integer:
                s, base = _pretty_add(f.base, depth, factor=True)  # 1/(ŷ - 1) -> -1/(1 - ŷ)
                sign *= s if int(f.exp) % 2 else 1
                f = sympy.Pow(base, f.exp, evaluate=False)
            if isinstance(f, sympy.Add):
                c, f = f.as_content_primitive()
                coeff *= c
                if isinstance(f, sympy.Add):
                    s, f = _pretty_add(f, depth, factor=True)
                    sign *= s
            factors.append(f)
        coeff *= sign
        factors.sort(key=lambda f: (-_layer_rank(f, depth), not isinstance(f, sympy.Symbol),
                                    _natural(f)))
        parts = []
        for f in factors:  # a factor that came back as -(…) gives its sign to the product
            shown = display_form(f, depth)
            if _reads_negative(shown):
                coeff, shown = -coeff, _negated(shown)
            parts.append(shown)
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


@lru_cache(maxsize=None)
def _spelled(name: nt.Name, single_output: bool, tex: bool) -> str:
    """One symbol's spelling, remembered (the printers spell it the same way, at ~50× the cost)."""
    return (nt.latex_name if tex else nt.text_name)(name, single_output)


def _names(term) -> list[nt.Name] | None:
    """The notes' names of a symbol or of a product of symbols; None for anything else."""
    factors = term.args if isinstance(term, sympy.Mul) else (term,)
    names = [nt.parse(f) if isinstance(f, sympy.Symbol) else None for f in factors]
    return None if None in names else names


def _plain(expr, depth: int, single_output: bool, tex: bool) -> str | None:
    """A symbol, a product of symbols or a sum of such products (the memoised forms, the δ
    table's ∂L/∂O sums) spelled directly, in :func:`display_form`'s order; None for anything
    else.  Distinct products of distinct symbols never tie on their names, so SymPy's sort
    key (the last tie-break there) is never reached and is left out here."""
    terms = expr.args if isinstance(expr, sympy.Add) else (expr,)
    keyed = []
    for term in terms:
        names = _names(term)
        if names is None:
            return None
        ranks = [_symbol_rank(n, depth) for n in names]
        order = sorted(zip(ranks, names), key=lambda rn: (-rn[0], rn[1].kind, rn[1].indices))
        text = " ".join(_spelled(n, single_output, tex) for _, n in order)
        natural = sorted((n.kind, n.indices) for n in names)
        keyed.append(((0, 0.0, natural) if any(n.kind == "y" for n in names)
                      else (2, -max(ranks), natural), text))
    keyed.sort(key=lambda kt: kt[0])
    return " + ".join(text for _, text in keyed)


def _decimal(r: sympy.Rational) -> str | None:
    """An exact rational as its decimal (26829/200000 -> 0.134145); None where it never ends."""
    q, twos, fives = int(r.q), 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return None
    places = max(twos, fives)
    digits = str(abs(int(r.p)) * 10 ** places // int(r.q)).rjust(places + 1, "0")
    text = digits if not places else f"{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")
    return "-" + text if r < 0 else text


def _constants(p, expr: sympy.Expr) -> str | None:
    """A table constant (selu's λ, α; gelu's 0.044715, 0.5), or a number that is a product with
    such constants, as the notes write it: decimals multiplied out exactly (3 · 0.044715 ->
    0.134145), named ones by name in the table's order (λ α), both before other numbers
    (0.5 √2/√π); None for anything else (SymPy's printer then puts them after √2)."""
    if isinstance(expr, TableConstant):
        return expr.tex if p._tex else expr.text
    if not any(isinstance(f, TableConstant) for f in expr.args):
        return None
    value, decimals, named, others = sympy.S.One, False, [], []
    for f in expr.args:
        if isinstance(f, TableConstant) and f.reads:
            named.append(f)
        elif isinstance(f, TableConstant):
            value, decimals = value * sympy.Rational(f.decimal), True
        elif f.is_Rational:
            value *= f
        elif f.is_number:
            others.append(f)
        else:
            return None
    lead = _decimal(value) if decimals else (str(value) if value.is_Integer else None)
    if lead is None:
        return None
    if lead in ("1", "-1") and (named or others):
        lead = lead[:-1]
    words = [f.tex if p._tex else f.text for f in sorted(named, key=lambda f: f.rank)]
    if others:
        words.append(p._print(sympy.Mul(*others)))
    return (lead + " ".join(words)) if lead in ("", "-") else " ".join([lead, *words])


class _NotationMixin:
    """Symbol spelling and the strict rule lookup shared by the text and LaTeX printers.

    ``_elementwise``: every symbol is a matrix (the vectorised form's Y, Ŷ, O^k, Z^k), so a
    product of symbols is written with ⊙ and a square as ``O^1 ⊙ O^1``, never ``O^1^2``."""

    _single_output = False
    _elementwise = False
    _tex = False
    _spell = staticmethod(nt.text_name)
    _odot = " ⊙ "

    def _print(self, expr, **kwargs):
        if isinstance(expr, (TableConstant, sympy.Mul)) and (spelled := _constants(self, expr)):
            return spelled
        if isinstance(expr, sympy.Basic):
            rule = rule_for(expr)  # NotationError: a class with no spelling never leaks
            if rule is not None:
                out = (rule.latex if self._tex else rule.text)(self, expr)
                power = kwargs.get("exp")  # LatexPrinter writes f(x)**2 by passing exp="2" to f
                if power is None:
                    return out
                return f"{out}^{{{power}}}" if out.endswith(r"\right)") else rf"\left({out}\right)^{{{power}}}"
        return super()._print(expr, **kwargs)

    def _print_Symbol(self, expr, **kwargs):
        name = nt.parse(expr)
        if name is None:
            return super()._print_Symbol(expr, **kwargs)
        return self._spell(name, self._single_output)

    def parenthesize(self, item, level, strict=False):
        # a product of rationals and table constants is one number (0.134145, λ α): no brackets
        if isinstance(item, sympy.Mul) and item.is_Rational is False and all(
                f.is_Rational or isinstance(f, TableConstant) for f in item.args):
            spelled = _constants(self, item)
            if spelled and not spelled.startswith("-"):
                return spelled
        return super().parenthesize(item, level, strict)

    # -- the vectorised form: element-wise products of matrices ------------------------------
    def _factor(self, f) -> str:
        return self.parenthesize(f, PRECEDENCE["Mul"], strict=False)

    def _hadamard(self, factors) -> str:
        return self._odot.join(self._factor(f) for f in factors)

    def _print_Mul(self, expr, **kwargs):
        if not self._elementwise or expr.is_number:  # √2/√π (gelu): a number, no ⊙ to write
            return super()._print_Mul(expr, **kwargs)
        coeff, num, den = sympy.S.One, [], []
        # LatexPrinter hands a lone 1/x (Pow with exponent -1) to _print_Mul: it is one factor,
        # not the pair (x, -1) its args are (read as a product, it printed -x)
        for f in (expr.args if isinstance(expr, sympy.Mul) else (expr,)):
            if f.is_number:
                coeff *= f
            elif isinstance(f, sympy.Pow) and f.exp.is_number and f.exp < 0:
                den.append(f.base if f.exp == -1 else sympy.Pow(f.base, -f.exp, evaluate=False))
            else:
                num.append(f)
        sign = "-" if coeff < 0 else ""
        coeff = abs(coeff)
        alone = self._tex and den and sympy.fraction(abs(coeff))[0] == 1  # a lone factor of \\frac: no brackets
        top = (self._print(num[0]) if alone and len(num) == 1 else self._hadamard(num)) if num else None
        if den:
            bottom = self._print(den[0]) if alone and len(den) == 1 else self._hadamard(den)
            c_num, c_den = sympy.fraction(coeff)
            top_text = " ".join(t for t in ((self._print(c_num) if c_num != 1 or not top else ""),
                                            top or "") if t)
            bottom = " ".join(t for t in ((self._print(c_den) if c_den != 1 else ""), bottom) if t)
            return sign + self._fraction(top_text, bottom, len(num) > 1, len(den) > 1 or c_den != 1)
        lead = "" if coeff == 1 else self._print(coeff) + " "
        return sign + lead + (top or "")

    def _print_Pow(self, expr, **kwargs):
        if not self._elementwise or expr.is_number or expr.exp.is_number and expr.exp < 0:
            return super()._print_Pow(expr, **kwargs)
        if expr.exp.is_Integer and 2 <= expr.exp <= 3:
            return self._hadamard([expr.base] * int(expr.exp))  # O^1 ⊙ O^1, never O^1^2
        raise NotationError(f"no element-wise spelling of the power {expr}")


class NotationStr(_NotationMixin, StrPrinter):
    """Plain text: -2*(y - ŷ)*w^2_11*x_i1."""

    def _fraction(self, top: str, bottom: str, group_top: bool, group_bottom: bool) -> str:
        top = f"({top})" if group_top else top
        return f"{top} / ({bottom})" if group_bottom else f"{top} / {bottom}"


class NotationLatex(_NotationMixin, LatexPrinter):
    """LaTeX: - 2 \\left(y - \\hat{y}\\right) w^{2}_{11} x_{i1}."""

    _spell = staticmethod(nt.latex_name)
    _tex = True
    _odot = r" \odot "

    def _fraction(self, top: str, bottom: str, group_top: bool, group_bottom: bool) -> str:
        return rf"\frac{{{top}}}{{{bottom}}}"


class NotationPrinter:
    """Prints expressions of one network in its notation (text, LaTeX).

    Strict: a SymPy class with no entry in :data:`backprop.derive.spelling.RULES` raises
    :class:`~backprop.derive.spelling.NotationError` instead of printing SymPy's spelling."""

    def __init__(self, derivation=None, *, depth: int | None = None, single_output: bool | None = None):
        if derivation is not None:
            depth = derivation.net.depth
            single_output = derivation.net.single_output
        self.depth = depth or 1
        self._printers = {}
        #: (tex, a product's factors but its lowest-ranked symbol) -> that product's print
        #: without the symbol (:meth:`_peeled`); None where the symbol did not print last.
        self._prefixes: dict[tuple, str | None] = {}
        for tex, elementwise in ((False, False), (False, True), (True, False), (True, True)):
            printer = (NotationLatex({"order": "none", "mul_symbol": None}) if tex
                       else NotationStr({"order": "none"}))
            printer._single_output = bool(single_output)
            printer._elementwise = elementwise
            self._printers[tex, elementwise] = printer

    def _display(self, expr) -> sympy.Expr:
        return display_form(sympy.sympify(expr, strict=True), self.depth)

    def text(self, expr, elementwise: bool = False) -> str:
        """Readable text: ``-2(y - ŷ) w^2_11 x_i1``; ``elementwise``: symbols are matrices
        multiplied with ⊙ (the vectorised form)."""
        return self._fast(expr, False) if not elementwise else self._general(expr, False, True)

    def latex(self, expr, elementwise: bool = False) -> str:
        """LaTeX: ``- 2 \\left(y - \\hat{y}\\right) w^{2}_{11} x_{i1}``."""
        return self._fast(expr, True) if not elementwise else self._general(expr, True, True)

    def slotted(self, expr, tex: bool, slots: dict[nt.Name, str]) -> str:
        """What :meth:`text` or :meth:`latex` prints, the symbols named in ``slots`` spelled
        as their stand-ins (report.py prints a layer's δ rows once and fills in each node)."""
        base = self._printers[tex, False]
        printer, spell = copy.copy(base), base._spell
        printer._spell = lambda name, single: slots.get(name) or spell(name, single)
        # LaTeX asks the symbol itself (NotesSymbol._latex), which honours symbol_names
        printer._settings = {**base._settings, "symbol_names": {n.symbol: s for n, s in slots.items()}}
        out = printer.doprint(self._display(expr))
        return out if tex else out.replace("**", "^").replace("*", " ")

    def _general(self, expr, tex: bool, elementwise: bool = False) -> str:
        """Through :func:`display_form` and the strict SymPy printers."""
        out = self._printers[tex, elementwise].doprint(self._display(expr))
        return out if tex else out.replace("**", "^").replace("*", " ")

    def _fast(self, expr, tex: bool) -> str:
        """Byte for byte what :meth:`_general` prints, cheaper where the shape allows:
        symbols, products and sums of products of symbols (:func:`_plain`), and a product
        ending in a parameter's local input (:meth:`_peeled`); the rest by the general path."""
        if isinstance(expr, sympy.Symbol) and (name := nt.parse(expr)) is not None:
            return _spelled(name, self._printers[tex, False]._single_output, tex)
        if isinstance(expr, (sympy.Mul, sympy.Add)):
            out = _plain(expr, self.depth, self._printers[tex, False]._single_output, tex)
            if out is not None:
                return out
        if isinstance(expr, sympy.Mul):
            return self._peeled(expr, tex)
        return self._general(expr, tex)

    def _peeled(self, expr: sympy.Mul, tex: bool) -> str:
        """A product whose lowest-ranked factor is one symbol (δ_kj's value times O_{k-1,i}
        or x_i1), printed as :meth:`peel`'s prefix and the symbol; else by the general path."""
        peeled = self.peel(expr, tex)
        if peeled is None:
            return self._general(expr, tex)
        low, prefix = peeled
        return prefix + " " + _spelled(nt.parse(low), self._printers[tex, False]._single_output, tex)

    def peel(self, expr, tex: bool) -> tuple[sympy.Symbol, str] | None:
        """(s, the print before s) for a product whose lowest-ranked factor is one symbol s
        printed last, else None: display_form sorts s last and no other factor depends on it,
        so the same product with any symbol of s's rank in its place prints as that prefix, a
        space and the symbol's spelling.  The prefix is printed once per rest of the product,
        with the first such s seen, and kept when that print ends in s's spelling (no fraction
        moved s elsewhere); report.py's JSON templates rely on it too."""
        if not isinstance(expr, sympy.Mul):
            return None
        ranked = sorted(((_layer_rank(a, self.depth), i) for i, a in enumerate(expr.args)))
        low = expr.args[ranked[0][1]]
        name = nt.parse(low) if isinstance(low, sympy.Symbol) else None
        if name is None or ranked[0][0] >= ranked[1][0]:
            return None
        rest = (tex, expr.args[:ranked[0][1]] + expr.args[ranked[0][1] + 1:])
        if rest not in self._prefixes:
            spelled = " " + _spelled(name, self._printers[tex, False]._single_output, tex)
            out = self._general(expr, tex)
            self._prefixes[rest] = out[:-len(spelled)] if out.endswith(spelled) else None
        prefix = self._prefixes[rest]
        return None if prefix is None else (low, prefix)
