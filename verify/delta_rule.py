r"""The delta rule of the third note, checked against the network's true gradients.

Syntax (Russell & Norvig's, which the note follows), one rule per line::

    W_{j,i} \leftarrow W_{j,i} + \alpha \times a_j \times \Delta_i     % output-layer update
    \Delta_i = Err_i \times g'(in_i)                                    % output-layer delta
    \Delta_j = g'(in_j) \sum_i W_{j,i} \Delta_i                         % hidden-layer delta
    W_{k,j} \leftarrow W_{k,j} + \alpha \times a_k \times \Delta_j     % hidden-layer update

* index letters name layers: ``i`` runs over the output layer L, ``j`` over layer L-1,
  ``k`` over layer L-2 (the inputs in a 2-layer network);
* ``W_{p,q}`` is the weight FROM node p TO node q (our w^k_pq); written with the higher
  layer's letter first (``W_{i,j}``) it is read index for index as w^L_ij, and the verdict
  says the indices are reversed;
* ``a_p`` = O (x for the inputs), ``in_p`` = the weighted sum z, ``g'(in_p)`` = the layer's
  activation derivative, ``Err_p`` = y_p - ŷ_p, ``\Delta_p`` (or ``\triangle_p``) = -∂L/∂in_p,
  ``\alpha`` the learning rate (0.1 in counterexamples);
* ``\sum_p`` (no limits) sums the factors that mention p over p's layer;
* ``X`` between spaces and ``\space`` are read as × (the note types them so).

An update ``W ← W + R`` is right when R = -α ∂L/∂W for every node assignment; a definition
``\Delta_p = R`` when R = -∂L/∂in_p.  With the note's loss ½Σ(y - ŷ)² (``loss=half_se``) the
four rules above are correct; with (y - ŷ)² the output delta is off by 2.  Anything else
(``\alpha_j`` for a_j, ``g^1`` for g') is an ``error`` naming what was probably meant.
"""
from __future__ import annotations

import itertools
import re

import sympy
from sympy.parsing.latex import parse_latex
from sympy.parsing.latex.errors import LaTeXParsingError

from backprop.derive import notation as nt

from .latex_input import InputError, alias_name, Text, check_balanced, clean_layout, split_relations
from .verdict import Verdict

ROLES = {"i": 0, "j": 1, "k": 2}  # layers below the output layer
ALPHA = sympy.Rational(1, 10)
_DELTA_HINT = re.compile(r"\\leftarrow|\\gets|\\triangle|\\Delta|Err_|←")


def looks_like_delta_rule(source: str) -> bool:
    return bool(_DELTA_HINT.search(source))


_TOKEN = re.compile(
    r"W\s*_\s*\{\s*(?P<W1>[a-z])\s*,?\s*(?P<W2>[a-z])\s*\}"
    r"|\\alpha\s*_\s*\{?\s*(?P<alpha_sub>[a-z])\s*\}?"
    r"|(?P<alpha>\\alpha)(?![a-zA-Z])"
    r"|(?:\\Delta|\\triangle)\s*_\s*\{?\s*(?P<D>[a-z])\s*\}?"
    r"|Err\s*_\s*\{?\s*(?P<E>[a-z])\s*\}?"
    r"|g\s*\^\s*\{?\s*1\s*\}?\s*\(\s*in\s*_\s*\{?\s*(?P<g1>[a-z])\s*\}?\s*\)"
    r"|g\s*(?:'|\^\s*\{?\s*\\prime\s*\}?)\s*\(\s*in\s*_\s*\{?\s*(?P<gp>[a-z])\s*\}?\s*\)"
    r"|g\s*\(\s*in\s*_\s*\{?\s*(?P<g>[a-z])\s*\}?\s*\)"
    r"|\\sum\s*_\s*\{?\s*(?P<S>[a-z])\s*\}?"
    r"|in\s*_\s*\{?\s*(?P<IN>[a-z])\s*\}?"
    r"|(?<![A-Za-z\\])a\s*_\s*\{?\s*(?P<A>[a-z])\s*\}?"
)


class _Rule:
    """One delta-rule equation with its aliases."""

    def __init__(self, checker, source: str):
        self.c = checker
        self.net = checker.net
        self.spec = checker.spec
        self.depth = self.spec.depth
        self.tokens: dict[str, tuple] = {}
        self.reversed: list[str] = []
        t = clean_layout(Text.of(source))
        t = t.sub(r"(?<=\s)X(?=\s)", r"\times")
        check_balanced(t)
        self.parts = split_relations(t)

    # -- tokens ---------------------------------------------------------------------------
    def alias(self, t: Text) -> str:
        out, pos = [], 0
        for m in _TOKEN.finditer(t.s):
            g = {k: v for k, v in m.groupdict().items() if v}
            col = t.col(m.start()) + 1
            if "alpha_sub" in g:
                raise InputError(rf"\alpha_{g['alpha_sub']} at column {col} is not defined: the activation of "
                                 f"node {g['alpha_sub']} is a_{g['alpha_sub']} (α is the learning rate)",
                                 col - 1, [f"a_{g['alpha_sub']}"])
            if "g1" in g:
                raise InputError(f"g^1(in_{g['g1']}) at column {col} reads as g to the power 1: the "
                                 f"derivative is g'(in_{g['g1']})", col - 1, [f"g'(in_{g['g1']})"])
            key = next(iter(g))
            tok = {"W1": ("W", g.get("W1"), g.get("W2")), "alpha": ("alpha",), "D": ("D", g.get("D")),
                   "E": ("Err", g.get("E")), "gp": ("gp", g.get("gp")), "g": ("g", g.get("g")),
                   "S": ("sum", g.get("S")), "IN": ("in", g.get("IN")), "A": ("a", g.get("A"))}[key]
            for letter in tok[1:]:
                if letter not in ROLES:
                    raise InputError(f"index {letter} at column {col}: the delta rule uses i (output layer), "
                                     "j (the layer below) and k (the one below that)", col - 1)
                if self.depth - ROLES[letter] < 0:
                    raise InputError(f"index {letter} at column {col} needs a layer the "
                                     f"{'-'.join(map(str, self.spec.layers))} network does not have", col - 1)
            name = alias_name(len(self.tokens), "zzw")
            self.tokens[name] = tok
            out.append(t.s[pos:m.start()])
            out.append(rf" \mathit{{{name}}} ")
            pos = m.end()
        out.append(t.s[pos:])
        return "".join(out)

    def parse(self, t: Text) -> sympy.Expr:
        text = self.alias(t)
        try:
            expr = parse_latex(text, strict=True, backend="antlr")
        except LaTeXParsingError as exc:
            raise InputError(f"unparsable LaTeX at column {t.col(0) + 1} ('{t.s}'): "
                             f"{str(exc).splitlines()[0]}", t.col(0)) from None
        stray = [s.name for s in expr.free_symbols if s.name not in self.tokens]
        if stray:
            raise InputError(f"symbol '{stray[0]}' in '{t.s}' is not part of the delta rule "
                             r"(W_{j,i}, a_j, \alpha, \Delta_i, Err_i, g'(in_i), in_i, \sum_i)", t.col(0))
        return expr

    # -- values ---------------------------------------------------------------------------
    def layer(self, letter: str) -> int:
        return self.depth - ROLES[letter]

    def letters(self, expr: sympy.Expr) -> set[str]:
        out = set()
        for s in expr.free_symbols:
            tok = self.tokens.get(s.name)
            if tok:
                out.update(tok[1:])
        return out

    def weight(self, p: str, q: str, env: dict) -> sympy.Symbol:
        lp, lq = self.layer(p), self.layer(q)
        if lq == lp + 1:
            sym = nt.weight(lq, env[p], env[q])
        elif lp == lq + 1:  # written with the higher layer first: read index for index
            note = (f"W_{{{p},{q}}} runs from node {p} (layer {lp}) to node {q} (layer {lq}), against the "
                    f"network: its indices are reversed, the weight from {q} to {p} is W_{{{q},{p}}}")
            if note not in self.reversed:
                self.reversed.append(note)
            sym = nt.weight(lp, env[p], env[q])
        else:
            raise InputError(f"W_{{{p},{q}}} joins layers {lp} and {lq}, which are not adjacent")
        if sym not in self.net.parameters():
            raise _Skip()
        return sym

    def value(self, tok: tuple, env: dict) -> sympy.Expr:
        kind = tok[0]
        if kind == "alpha":
            return ALPHA
        if kind == "W":
            return self.weight(tok[1], tok[2], env)
        p = tok[1]
        k, n = self.layer(p), env[p]
        if kind == "a" or kind == "g":
            return self.net.O(k, n)
        if kind == "in":
            return self.net.z(k, n)
        if kind == "gp":
            act = self.net.activation(k)
            if not act.elementwise:
                raise InputError("g'(in) of a softmax layer is a Jacobian, not a number")
            return self.net.slope(k, n).xreplace(
                {nt.preactivation(k, n): self.net.z(k, n)})
        if kind == "Err":
            if k != self.depth:
                raise InputError(f"Err_{p}: the error is defined for output nodes (index i) only")
            return nt.target(n) - nt.prediction(n)
        if kind == "D":
            if k < 1:
                raise InputError(f"\\Delta_{p}: layer {k} is the input layer, it has no delta")
            return -self.c.d.resolved_delta(k, n)
        raise InputError(f"{kind} cannot stand alone here")

    def concrete(self, expr: sympy.Expr, env: dict) -> sympy.Expr:
        """The expression for one assignment of node numbers to letters; sums expanded."""
        if isinstance(expr, sympy.Symbol):
            tok = self.tokens[expr.name]
            if tok[0] == "sum":
                raise InputError(f"\\sum_{tok[1]} has nothing to sum")
            return self.value(tok, env)
        if not expr.args:
            return expr
        if isinstance(expr, sympy.Mul):
            sums = [a for a in expr.args if isinstance(a, sympy.Symbol) and self.tokens.get(a.name, ("",))[0] == "sum"]
            if sums:
                letter = self.tokens[sums[0].name][1]
                rest = [a for a in expr.args if a is not sums[0]]
                inside = [a for a in rest if letter in self.letters(a)]
                outside = [a for a in rest if letter not in self.letters(a)]
                width = self.spec.layers[self.layer(letter)]
                total = 0
                for v in range(1, width + 1):
                    try:
                        total += self.concrete(sympy.Mul(*inside), {**env, letter: v})
                    except _Skip:
                        continue
                return sympy.Mul(*[self.concrete(a, env) for a in outside]) * total
        return expr.func(*[self.concrete(a, env) for a in expr.args])


class _Skip(Exception):
    """This assignment names a weight the network does not have."""


def check(checker, eq, base: dict):
    rule = _Rule(checker, eq.source)
    parts = rule.parts
    if len(parts) != 2:
        raise InputError("a delta rule is 'W_{j,i} \\leftarrow ...' or '\\Delta_i = ...' (one relation)")
    (_, lhs_t), (rel, rhs_t) = parts
    lhs, rhs = rule.parse(lhs_t), rule.parse(rhs_t)
    if not isinstance(lhs, sympy.Symbol):
        raise InputError(r"the left side of a delta rule is one W_{p,q} or \Delta_p")
    head = rule.tokens[lhs.name]
    if rel == "←" and head[0] != "W":
        raise InputError(r"only a weight W_{p,q} is updated with \leftarrow")
    if rel != "←" and head[0] != "D":
        raise InputError(r"a delta-rule definition has \Delta_p on the left; updates use \leftarrow")
    letters = sorted(rule.letters(lhs))
    ranges = [range(1, rule.spec.layers[rule.layer(p)] + 1) for p in letters]
    checked = 0
    for combo in itertools.product(*ranges):
        env = dict(zip(letters, combo))
        try:
            if head[0] == "W":
                w = rule.weight(head[1], head[2], env)
                claim = rule.concrete(rhs, env) - w
                truth = -ALPHA * checker.d.gradient(w).formula
            else:
                claim = rule.concrete(rhs, env)
                truth = rule.value(head, env)
        except _Skip:
            continue
        checked += 1
        cx, method = checker.compare(claim, truth, eq.source + repr(env))
        if cx is not None:
            cx["point"] = {**{f"index {p}": v for p, v in env.items()}, "alpha": 0.1, **cx["point"]}
            expected = _swap(eq.source) if rule.reversed else None
            why = "; ".join(rule.reversed) or (
                f"for {', '.join(f'{p}={v}' for p, v in env.items())} the right side is not "
                + ("-α ∂L/∂W" if head[0] == "W" else "-∂L/∂in") + f" under loss {rule.spec.loss}")
            return Verdict(**base, verdict="wrong", expected_latex=expected or checker.latex(truth),
                           counterexample=cx, message=why, method="numeric")
    if not checked:
        raise InputError("no node assignment of this rule names a weight of the network")
    return Verdict(**base, verdict="correct", method=f"{method}, {checked} node assignment(s)",
                   message=f"holds for every node assignment under loss {rule.spec.loss}")


def _swap(source: str) -> str:
    """W_{i,j} -> W_{j,i} (and X, \\space, g^1, \\alpha_j tidied the way the rule meant)."""
    return re.sub(r"W\s*_\s*\{\s*([a-z])\s*,?\s*([a-z])\s*\}", r"W_{\2,\1}", source)
