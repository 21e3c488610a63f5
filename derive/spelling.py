"""How each SymPy function is spelled in the notes' notation: ONE table entry per class.

:data:`RULES` maps a SymPy class name to its text and LaTeX spelling; the printers in
:mod:`backprop.derive.printing` look every node up here before SymPy's own printer sees it,
and refuse (:class:`NotationError`) a function, relation or logical node with no entry, so a
SymPy spelling (``Heaviside(O_11, 0)``, ``Max(0, …)``, ``Piecewise((…), (…))``) can never
reach a user.  Adding a function is one entry.  A spelling receives the printer ``p`` (text or
LaTeX) and the node, and recurses with ``p._print`` (never ``str``), as SymPy's printers do.

The spellings, text | LaTeX:

* ``Heaviside(x, 0)`` (relu', H(0) = 0): ``1[x > 0]`` | ``\\mathbb{1}[x > 0]``;
  ``Heaviside(x, 1)`` (step): ``1[x ≥ 0]``; ``Heaviside(x)`` (H(0) = ½, SymPy's default,
  the hinge's derivative): ``H(x)`` (the standard step function; at x = 0 it is ½);
* ``Max``/``Min``: ``max(0, 1 - y ŷ)`` | ``\\max\\left(0, 1 - y \\hat{y}\\right)``;
* ``Piecewise``: ``{1 if O_11 > 0; 1/100 otherwise}`` | ``\\begin{cases}…\\end{cases}``;
* ``log``, ``exp``, ``tanh``, ``sin``, ``cos``, ``Abs``, ``sign``, ``π``: ``log(1 - ŷ)``, ``exp(-z)`` | ``e^{-z}``,
  ``|x|``, ``sign(x)``;
* relations ``>``, ``≥``, ``<``, ``≤``, ``=``, ``≠`` and the logic ``∧``, ``∨``, ``¬``
  (conditions of expanded piecewise forms; ``ITE(a, b, c)`` as cases: b if a, c otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy
from sympy.printing.precedence import PRECEDENCE


class NotationError(TypeError):
    """A SymPy class with no notation rule reached a printer: a bug (add a rule to RULES)."""


Spell = Callable[[object, sympy.Basic], str]


@dataclass(frozen=True)
class Rule:
    """How one SymPy class is written: ``text(p, expr)`` and ``latex(p, expr)``."""

    text: Spell
    latex: Spell


def _args(p, expr) -> str:
    return ", ".join(p._print(a) for a in _numbers_first(expr.args))


def _numbers_first(args):
    """max(0, z) as the notes write it, not Max(z, 0)."""
    return sorted(args, key=lambda a: not a.is_number)


def _call(name: str) -> Rule:
    """name(arg, ...) in text, \\name\\left(arg, ...\\right) in LaTeX."""
    return Rule(lambda p, e: f"{name}({_args(p, e)})",
                lambda p, e: rf"\{name}\left({_args(p, e)}\right)")


def _operator(name: str) -> Rule:
    """name(arg) in text, \\operatorname{name}\\left(arg\\right) in LaTeX."""
    return Rule(lambda p, e: f"{name}({_args(p, e)})",
                lambda p, e: rf"\operatorname{{{name}}}\left({_args(p, e)}\right)")


#: Heaviside's value at 0 -> the relation of its indicator (None: SymPy's ½, written H(x)).
_STEP_RELATION = {sympy.S.Zero: sympy.StrictGreaterThan, sympy.S.One: sympy.GreaterThan}


def _heaviside(tex: bool) -> Spell:
    def spell(p, expr) -> str:
        x, h0 = (expr.args + (sympy.S.Half,))[:2]
        relation = _STEP_RELATION.get(h0)
        if relation is None:
            return rf"H\left({p._print(x)}\right)" if tex else f"H({p._print(x)})"
        cond = p._print(relation(x, 0, evaluate=False))
        return rf"\mathbb{{1}}[{cond}]" if tex else f"1[{cond}]"
    return spell


def _piecewise_text(p, expr) -> str:
    pieces = []
    for value, cond in expr.args:
        when = "otherwise" if cond is sympy.true else f"if {p._print(cond)}"
        pieces.append(f"{p._print(value)} {when}")
    return "{" + "; ".join(pieces) + "}"


def _piecewise_latex(p, expr) -> str:
    rows = []
    for value, cond in expr.args:
        when = r"\text{otherwise}" if cond is sympy.true else rf"\text{{if }} {p._print(cond)}"
        rows.append(f"{p._print(value)} & {when}")
    return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


def _ite_cases(expr) -> sympy.Piecewise:
    """ITE(a, b, c) (a condition SymPy builds when a piecewise O sits inside another's
    condition) as the cases it means: b if a, c otherwise."""
    a, b, c = expr.args
    return sympy.Piecewise((b, a), (c, True), evaluate=False)


def _relation(text_op: str, latex_op: str) -> Rule:
    def spell(op):
        def inner(p, expr) -> str:
            prec = PRECEDENCE["Relational"]
            lhs = p.parenthesize(expr.lhs, prec, strict=True)
            rhs = p.parenthesize(expr.rhs, prec, strict=True)
            return f"{lhs} {op} {rhs}"
        return inner
    return Rule(spell(text_op), spell(latex_op))


def _logic(text_op: str, latex_op: str) -> Rule:
    def spell(op):
        def inner(p, expr) -> str:
            return f" {op} ".join(p.parenthesize(a, PRECEDENCE["Relational"]) for a in expr.args)
        return inner
    return Rule(spell(text_op), spell(latex_op))


def _paren(p, expr) -> str:
    return p.parenthesize(expr, PRECEDENCE["Not"])


#: SymPy class name -> its spelling.  One entry per class; a class missing here is refused.
RULES: dict[str, Rule] = {
    "Heaviside": Rule(_heaviside(False), _heaviside(True)),
    "Max": _call("max"),
    "Min": _call("min"),
    "Piecewise": Rule(_piecewise_text, _piecewise_latex),
    "log": _call("log"),
    "exp": Rule(lambda p, e: f"exp({_args(p, e)})", lambda p, e: f"e^{{{_args(p, e)}}}"),
    "tanh": _call("tanh"),
    "sin": _call("sin"),
    "cos": _call("cos"),
    # what a reader may bring from a claim (\lfloor, \sinh, \arctan ...): verify prints claims back
    "tan": _call("tan"),
    "sinh": _call("sinh"),
    "cosh": _call("cosh"),
    "asin": Rule(lambda p, e: f"arcsin({_args(p, e)})", lambda p, e: rf"\arcsin\left({_args(p, e)}\right)"),
    "acos": Rule(lambda p, e: f"arccos({_args(p, e)})", lambda p, e: rf"\arccos\left({_args(p, e)}\right)"),
    "atan": Rule(lambda p, e: f"arctan({_args(p, e)})", lambda p, e: rf"\arctan\left({_args(p, e)}\right)"),
    "floor": Rule(lambda p, e: f"⌊{_args(p, e)}⌋", lambda p, e: rf"\left\lfloor {_args(p, e)} \right\rfloor"),
    "ceiling": Rule(lambda p, e: f"⌈{_args(p, e)}⌉", lambda p, e: rf"\left\lceil {_args(p, e)} \right\rceil"),
    "Pi": Rule(lambda p, e: "π", lambda p, e: r"\pi"),
    "Abs": Rule(lambda p, e: f"|{_args(p, e)}|", lambda p, e: rf"\left|{_args(p, e)}\right|"),
    "sign": _operator("sign"),
    "StrictGreaterThan": _relation(">", ">"),
    "GreaterThan": _relation("≥", r"\geq"),
    "StrictLessThan": _relation("<", "<"),
    "LessThan": _relation("≤", r"\leq"),
    "Equality": _relation("=", "="),
    "Unequality": _relation("≠", r"\neq"),
    "And": _logic("∧", r"\wedge"),
    "Or": _logic("∨", r"\vee"),
    "Not": Rule(lambda p, e: f"¬{_paren(p, e.args[0])}", lambda p, e: rf"\neg {_paren(p, e.args[0])}"),
    "ITE": Rule(lambda p, e: _piecewise_text(p, _ite_cases(e)), lambda p, e: _piecewise_latex(p, _ite_cases(e))),
    "Exp1": Rule(lambda p, e: "e", lambda p, e: "e"),
    "BooleanTrue": Rule(lambda p, e: "true", lambda p, e: r"\text{true}"),
    "BooleanFalse": Rule(lambda p, e: "false", lambda p, e: r"\text{false}"),
}

#: Nodes SymPy's printers already spell as the notes do: symbols, numbers, +, ·, powers.
CORE: tuple[type, ...] = (sympy.Symbol, sympy.Integer, sympy.Rational, sympy.Float, sympy.Add,
                          sympy.Mul, sympy.Pow)


def rule_for(expr: sympy.Basic) -> Rule | None:
    """The rule that spells ``expr``, None for a core node; NotationError for anything else."""
    rule = RULES.get(type(expr).__name__)
    if rule is not None or isinstance(expr, CORE):
        return rule
    raise NotationError(f"no notation rule for the SymPy class {type(expr).__name__} ({expr}): "
                        f"add one entry to backprop.derive.spelling.RULES")
