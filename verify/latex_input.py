r"""Reading hand-written LaTeX: files into equations, equations into SymPy, names kept as names.

SymPy's LaTeX parser (ANTLR backend, ``strict=True``) does the arithmetic; this module does
everything it cannot: the notes' indexed names, derivative fractions and layout.

The pre-pass, per equation
--------------------------
0. **Other spellings** become the notes' own (per segment, :meth:`Reader.prepare`): the
   chosen notation profile's names (:mod:`backprop.verify.notations`: Nielsen's a^l_j,
   w^l_{jk}, C; Ng's a^{[l]}_j, dW, dz, J; Bishop's a_j, z_j, w_{ji}, t_k, E_n; Mazur's
   net_{h1}, out_{o1}, w_5, E_{total}); in every profile ``w^{(2)}_{11}``/``w^{[2]}_{11}``,
   ``\frac{dL}{dw}``, ``\partial L/\partial w``, ``\|y - \hat{y}\|^2``, sums over nodes
   (``\sum_{j=1}^{2}``, ``\sum_k`` with the range read from the names in the body) written
   out term by term, ``\mathbb{1}[z>0]``/``H(z)`` as steps, and a segment ``\delta_{kj}``
   as ∂L/∂z_kj.  ``\sigma'(u)`` is the sigmoid's derivative AT u; ``g'(u)``, ``f'(u)``,
   ``h'(u)`` the derivative of the activation of u's layer (from the spec) at u.  Files:
   ``align``/``aligned`` rows split at ``\\``, a row starting ``&=`` continuing the chain
   above, ``A = B,\quad C = D`` two equations (:func:`block_rows`).
1. **Layout** is dropped: ``\boxed{X}`` → X, ``\underbrace{X}_{...}`` → X, ``\left( \right)``,
   ``\therefore``, ``\textcircled{1}``/①, ``\quad``, ``\space``, ``&``, ``\\``, aligned
   environments, a trailing ``,`` or ``.``, a trailing ``\text{...}`` remark (the verdict
   notes it).  ``1.76e2``, ``1e-3`` are numbers (1.76·10², not 1.76·e·2).  Unicode ``ŷ ∂ · × σ γ θ ω`` become LaTeX.  A
   ``\begin{cases} A & \text{for} C \\ B & \text{otherwise} \end{cases}`` block (as SymPy
   prints leaky relu's derivative) becomes a Piecewise.
2. **Relations** split the equation at top level: ``=``, ``\rightarrow``/``\to`` (the
   notes' "→ result"), ``\approx`` (a rounded number), ``\leftarrow`` (an update rule).
3. **Derivative fractions** ``\frac{\partial A}{\partial B}``, ``\frac{\partial (E)}{\partial B}``
   and ``\frac{\partial}{\partial B}(E)`` become one alias each (SymPy would read ∂ as a
   symbol); E is parsed on its own.  A denominator without ``\partial`` is accepted with a
   warning.
4. **Indexed names** become aliases ``\mathit{zz..}`` (letters only) so the parser sees one
   symbol: ``w^2_{11}``, ``w_{11}^2`` and ``w^{2}_{11}`` are all w^2_11 (a later ``^`` on a
   weight is a power: ``{w^{2}_{11}}^{2}``); ``b_{21}``; ``O_{11}``/``o_{11}`` (O of the
   last layer is ŷ); ``x_{i1}``/``x_1``; ``y``/``y_j``; ``\hat{y}``/``\hat{y}_j``; ``z_{kj}``;
   ``\delta_{kj}``; ``L``.  A name that is not in the network (``w^i_{11}``, ``w^2_{12}`` in a
   2-2-1 net, ``\gamma``, ``\theta_{11}``, ``\omega^1_{12}``) is collected with the nearest
   names it may have meant; the equation then gets an ``error`` verdict.
5. SymPy parses each segment; the aliases are mapped back with ``xreplace``.  A parse error
   is reported with its column in the ORIGINAL text.  Whatever the parser would read as
   something else is refused with a message: ``\sum_i`` without limits, ``in_j``,
   ``g'(...)``, ``\triangle_i``, ``\text{...}`` outside the delta-rule syntax
   (:mod:`backprop.verify.delta_rule`), and any symbol the network does not have.

User text is never given to ``eval``, ``exec``, ``sympify`` or ``parse_expr``.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.latex import parse_latex
from sympy.parsing.latex.errors import LaTeXParsingError

from backprop.derive import UserError, make_spec
from backprop.derive import notation as nt
from backprop.derive.activations import (ACTIVATIONS, by_spelling, derivative_at, latex_commands,
                                         reader_constants)
from backprop.derive.network import Network
from backprop.derive.spec import Spec

from .notations import DEFAULT, NOTATIONS


class InputError(Exception):
    """One equation cannot be checked: the message says where (column in the original)."""

    def __init__(self, message: str, column: int | None = None, suggestions=()):
        super().__init__(message)
        self.message = message
        self.column = column
        self.suggestions = list(suggestions)


#: What bad input raises on its way through the reader and the checker (the reader's own
#: error, a directive's, SymPy's parser's, an input too large or deep for the machine): the
#: exceptions a caller may turn into "cannot read this"; any other is a bug and propagates.
BAD_INPUT = (InputError, UserError, LaTeXParsingError, RecursionError, MemoryError)


# ---------------------------------------------------------------------------------------------
# Text with a map back to the original columns
# ---------------------------------------------------------------------------------------------
@dataclass
class Text:
    """A string and, for every character, the column it came from in the original."""

    s: str
    origin: list[int]

    @classmethod
    def of(cls, s: str, start: int = 0) -> "Text":
        return cls(s, list(range(start, start + len(s) + 1)))

    def col(self, i: int) -> int:
        return self.origin[min(max(i, 0), len(self.s))]

    def slice(self, a: int, b: int) -> "Text":
        return Text(self.s[a:b], self.origin[a:b] + [self.col(b)])

    def edit(self, edits: list[tuple[int, int, str]]) -> "Text":
        """Apply non-overlapping (start, end, replacement) edits; new characters point at
        the start of the text they replace."""
        out, origin, pos = [], [], 0
        for a, b, rep in sorted(edits):
            out.append(self.s[pos:a])
            origin.extend(self.origin[pos:a])
            out.append(rep)
            origin.extend([self.col(a)] * len(rep))
            pos = b
        out.append(self.s[pos:])
        origin.extend(self.origin[pos:len(self.s)])
        origin.append(self.col(len(self.s)))
        return Text("".join(out), origin)

    def sub(self, pattern: str, repl) -> "Text":
        edits = []
        for m in re.finditer(pattern, self.s):
            edits.append((m.start(), m.end(), repl(m) if callable(repl) else repl))
        return self.edit(edits) if edits else self

    def strip(self) -> "Text":
        a = len(self.s) - len(self.s.lstrip())
        b = len(self.s.rstrip())
        return self.slice(a, b)


def group_end(s: str, i: int) -> int:
    """Index just after the group opened at s[i] ('{' or '('), or -1 when it never closes."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    opener, closer = s[i], pairs[s[i]]
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c == "\\" and j + 1 < len(s) and s[j + 1] in "{}":
            j += 2
            continue
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1


def check_balanced(t: Text) -> None:
    """Unbalanced braces or parentheses, reported at the column of the culprit."""
    stack = []
    closers = {"}": "{", ")": "(", "]": "["}
    s = t.s
    for i, c in enumerate(s):
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            continue
        if i > 0 and s[i - 1] == "\\" and c in "{}":
            continue
        if c in "{([":
            stack.append((c, i))
        elif c in closers:
            if not stack or stack[-1][0] != closers[c]:
                raise InputError(f"unparsable LaTeX: unmatched '{c}' at column {t.col(i) + 1}", t.col(i))
            stack.pop()
    if stack:
        c, i = stack[-1]
        raise InputError(f"unparsable LaTeX: '{c}' at column {t.col(i) + 1} is never closed", t.col(i))


# ---------------------------------------------------------------------------------------------
# Step 1: layout
# ---------------------------------------------------------------------------------------------
UNICODE = {
    "ŷ": r"\hat{y}", "∂": r"\partial ", "·": r"\cdot ", "×": r"\times ", "σ": r"\sigma ",
    "γ": r"\gamma ", "θ": r"\theta ", "ω": r"\omega ", "Δ": r"\Delta ", "δ": r"\delta ",
    "α": r"\alpha ", "η": r"\eta ", "−": "-", "²": "^2", "∴": " ", "→": r"\rightarrow ",
    "←": r"\leftarrow ", "≈": r"\approx ", "Σ": r"\sum ", "⊙": r"\odot ",
    **{chr(0x2460 + n): " " for n in range(20)},  # ① ② ...
}


def _unwrap(t: Text, command: str, drop_subscript: bool = False) -> Text:
    r"""``\command{X}`` → X (and, for \underbrace, its ``_{...}`` label dropped)."""
    while True:
        m = re.search(re.escape(command) + r"\s*\{", t.s)
        if not m:
            return t
        open_i = m.end() - 1
        close = group_end(t.s, open_i)
        if close < 0:
            raise InputError(f"unparsable LaTeX: {command}{{ at column {t.col(m.start()) + 1} is never closed",
                             t.col(m.start()))
        edits = [(m.start(), open_i + 1, " "), (close - 1, close, " ")]
        if drop_subscript:
            rest = re.match(r"\s*_\s*", t.s[close:])
            if rest:
                k = close + rest.end()
                if k < len(t.s) and t.s[k] == "{":
                    end = group_end(t.s, k)
                    if end > 0:
                        edits.append((close, end, " "))
                elif k < len(t.s):
                    edits.append((close, k + 1, " "))
        t = t.edit(edits)


def _cases(m: re.Match) -> str:
    r"""``\begin{cases} A & \text{for} C \\ B & \text{otherwise} \end{cases}`` ->
    ``\piecewise{A}{C}{B}{}`` (value, condition pairs; an empty condition is 'otherwise')."""
    groups = []
    for row in re.split(r"\\\\", m.group(1)):
        if not row.strip():
            continue
        value, _, cond = row.partition("&")
        cond = re.sub(r"\\text\s*\{\s*(?:for|if|when)\s*\}|\\text\s*\{\s*otherwise\s*\}|\\[,;:! ]", " ", cond)
        groups += [value.strip(), cond.strip()]
    return r"\piecewise" + "".join("{" + g + "}" for g in groups)


def clean_layout(t: Text) -> Text:
    t = t.sub("|".join(map(re.escape, UNICODE)), lambda m: UNICODE[m.group()])
    t = t.sub(r"\\begin\s*\{cases\}(.*?)\\end\s*\{cases\}", _cases)
    t = t.sub(r"\\textcircled\s*\{[^{}]*\}", " ")
    t = t.sub(r"\\(?:begin|end)\s*\{(?:aligned|align\*?|equation\*?|split|gathered)\}", " ")
    t = _unwrap(t, r"\boxed")
    t = _unwrap(t, r"\underbrace", drop_subscript=True)
    t = _unwrap(t, r"\displaystyle")
    t = t.sub(r"\\left\s*\.|\\right\s*\.", " ")
    t = t.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])", " ")
    t = t.sub(r"\\(?:therefore|quad|qquad|space|displaystyle)(?![a-zA-Z])|\\[,;!: ]|&|\\\\|~", " ")
    t = t.strip()
    while t.s and t.s[-1] in ",.;":
        t = t.slice(0, len(t.s) - 1).strip()
    t = drop_remarks(t)[0]
    return scientific_numbers(t)


# ---------------------------------------------------------------------------------------------
# Step 0: other books' notation and spellings, rewritten into the notes' own
# ---------------------------------------------------------------------------------------------
_SCI = re.compile(r"(?<![A-Za-z0-9_^.\\{])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![A-Za-z0-9])")
_REMARK = re.compile(r"(?P<sep>(?:\s|,|\\quad|\\qquad|\\[,;:! ])*)\\text\s*\{(?P<words>[^{}]*)\}[\s.,;]*$")


def scientific_numbers(t: Text) -> Text:
    r"""``1.76e2`` → ``(1.76 \cdot 10^{2})``: a number, not 1.76·e·2 (nor ``1e400`` Euler's e)."""
    return t.sub(_SCI.pattern, lambda m: rf"({m.group(1)} \cdot 10^{{{m.group(2)}}})")


def drop_remarks(t: Text) -> tuple[Text, list[str]]:
    r"""A trailing ``\text{...}`` remark (``= 0 \quad \text{by the chain rule}``) is dropped;
    the remarks are returned so a verdict can say so."""
    dropped = []
    while True:
        m = _REMARK.search(t.s)
        if not m or not t.s[:m.start()].strip() or not (
                re.search(r"quad|,", m.group("sep")) or len(m.group("words").strip()) >= 3):
            return t, dropped  # \text{O} right after a term is a factor, not a remark
        dropped.insert(0, re.search(r"\\text\s*\{([^{}]*)\}", m.group()).group(1).strip())
        t = t.slice(0, m.start()).strip()


def remarks_of(source: str) -> list[str]:
    """The remarks :func:`drop_remarks` drops from one equation's source."""
    return drop_remarks(Text.of(source))[1]


def _layer(content: str) -> str:
    """'(2)', '[2]', '{[2]}', '2' -> '2' (the layer as written, brackets off)."""
    return re.sub(r"^[\s{(\[]+|[\s})\]]+$", "", content)


def _index_tokens(content: str) -> list[str]:
    """'11' -> ['1', '1']; '1,10' -> ['1', '10']; 'kj' -> ['k', 'j']."""
    content = content.replace(" ", "")
    return content.split(",") if "," in content else list(content)


def _join(tokens: list[str]) -> str:
    return ",".join(tokens) if any(len(t) > 1 for t in tokens) else "".join(tokens)


class NotationPass:
    """Rewrites one segment written in a :class:`~backprop.verify.notations.Notation` into
    the notes' names (w^k_{ij}, O_{kj}, z_{kj}, \\delta_{kj}, b_{kj}, x_{ij}, y, \\hat{y}, L)."""

    def __init__(self, spec: Spec, notation):
        self.spec, self.n = spec, notation
        self.depth = spec.depth
        self.single = spec.n_outputs == 1
        first = 1 if notation.key == "nielsen" else 0  # Nielsen's layer 1 is the input layer
        self.first = first

    # -- pieces --------------------------------------------------------------------------
    def _k(self, written: str) -> int | None:
        lay = _layer(written)
        return int(lay) - self.first if lay.isdigit() else None

    def _node(self, k: int, j: str, kind: str) -> str:
        if kind == "O" and k == 0:
            return f"x_{{i{j}}}"
        if kind == "O":
            return f"O_{{{k}{j}}}"
        return {"z": f"z_{{{k}{j}}}", "delta": rf"\delta_{{{k}{j}}}", "b": f"b_{{{k}{j}}}"}[kind]

    def _split(self, scripts):
        sup = next((c for k, c, _ in scripts[:2] if k == "^"), None)
        sub = next((c for k, c, _ in scripts[:2] if k == "_"), None)
        used = len([1 for k, _, _ in scripts[:2] if k in "^_"]) if sup is not None and sub is not None else \
            (1 if scripts and scripts[0][0] == "_" else 0)
        return sup, sub, used

    def node(self, kind: str, scripts):
        """O/z/δ/b of one node from (layer, node) scripts, as the profile places them.  A
        superscript is the layer when it comes first or is bracketed (a^l_j, a_j^{(l)}); after
        the node index a plain one is a power (O_{11}^{2})."""
        sup, sub, used = self._split(scripts)
        if sup is not None and sub is not None and scripts[0][0] == "_" and not re.match(r"\s*[(\[]", sup):
            sup, used = None, 1
        if sup is not None and sub is not None and self.n.layer == "subscript" and not re.match(r"\s*[(\[]", sup):
            return None  # the notes' O^k_j is not theirs: the reader names it
        if sup is not None and sub is not None:
            k = self._k(sup)
            if k is None:
                return None
            return self._node(k, _layer(sub).replace(" ", ""), kind), used
        if sub is None:
            return None
        if self.n.layer == "node":
            m = re.fullmatch(r"\s*([hoi])\s*_?\{?\s*(\d+)\s*\}?\s*", sub)
            if not m:
                return None
            k = {"h": 1, "o": self.depth, "i": 0}[m.group(1)]
            if m.group(1) == "h" and self.depth != 2:
                raise InputError("Mazur's h1, h2 name the one hidden layer of a network with one hidden "
                                 f"layer; this one has {self.depth - 1}: write O_{{kj}}")
            return self._node(k, m.group(2), kind), 1
        if self.n.layer == "subscript":
            return None  # the notes' own O_{kj}: read as it is
        if self.n.layer == "paren" and self.depth == 2 and kind != "b":
            return self._node(1, sub.replace(" ", ""), kind), 1  # Bishop's a_j, z_j: the hidden layer
        return None

    def weight(self, scripts):
        sup, sub, used = self._split(scripts)
        if sub is None:
            return None
        if sup is None:
            if self.n.named_weights:
                m = re.fullmatch(r"\s*(\d+)\s*", sub)
                if not m:
                    return None
                w = int(m.group(1))
                if self.spec.layers != (2, 2, 2) and list(self.spec.layers) != [2, 2, 2]:
                    raise InputError(f"Mazur's w_{w} names a weight of his 2-2-2 network; this one is "
                                     f"{'-'.join(map(str, self.spec.layers))}: write w^{{k}}_{{ij}}")
                if not 1 <= w <= len(self.n.named_weights):
                    raise InputError(f"Mazur's weights are w_1 ... w_8; w_{w} is not one of them")
                k, i, j = self.n.named_weights[w - 1]
                return f"w^{{{k}}}_{{{i}{j}}}", 1
            if self.n.layer == "paren" and self.depth == 2:
                sup = "1"  # Bishop's w_{ji} without a layer: the first layer, as a_j = Σ_i w_ji x_i
            else:
                return None
        k = self._k(sup)
        tok = _index_tokens(sub)
        if k is None or len(tok) != 2:
            return None
        if self.n.weight_order == "to-from":
            tok = tok[::-1]
        if tok[0] == "0":  # Bishop's w_{j0}: the bias
            return f"b_{{{k}{tok[1]}}}", used
        return f"w^{{{k}}}_{{{_join(tok)}}}", used

    def target(self, scripts, hat: bool):
        stem = r"\hat{y}" if hat else "y"
        if scripts and scripts[0][0] == "_":
            idx = scripts[0][1].replace(" ", "")
            m = re.fullmatch(r"o_?\{?(\d+)\}?", idx)
            idx = m.group(1) if m else idx
            return (stem if self.single and idx == "1" else f"{stem}_{{{idx}}}"), 1
        return stem, 0

    # -- the pass ------------------------------------------------------------------------
    def handlers(self) -> dict:
        n = self.n
        table = {}
        for stem in n.loss:
            table[stem] = lambda sc, stem=stem: ("L", 0)
        for stem in n.output:
            table[stem] = lambda sc: self.node("O", sc)
        for stem in n.preactivation:
            table[stem] = lambda sc: self.node("z", sc)
        table[r"\delta"] = lambda sc: self.node("delta", sc)
        table["b"] = lambda sc: self.bias(sc)
        table["w"] = table["W"] = self.weight
        if n.key == "bishop":
            table["t"] = lambda sc: self.target(sc, False)
            table["y"] = lambda sc: self.target(sc, True)
        if n.key == "mazur":
            table["target"] = lambda sc: self.target(sc, False)
            table["i"] = lambda sc: (f"x_{{i{sc[0][1].strip()}}}", 1) if sc and sc[0][0] == "_" \
                and sc[0][1].strip().isdigit() else None
        if n.gradient_prefix:
            for stem, kind in (("dW", "w"), ("dw", "w"), ("db", "b"), ("dZ", "z"), ("dz", "z"), ("dA", "O"),
                               ("da", "O")):
                table[stem] = lambda sc, kind=kind: self.gradient(kind, sc)
        return table

    def bias(self, scripts):
        sup, sub, used = self._split(scripts)
        if sup is None and self.n.named_biases and sub is not None and sub.strip().isdigit():
            raise InputError(self.n.named_biases)
        return self.node("b", scripts) if sup is not None else None

    def gradient(self, kind: str, scripts):
        """Ng's dW^{[l]}_{jk}, db, dz, da: ∂L/∂(that name)."""
        inner = self.weight(scripts) if kind == "w" else self.node(kind, scripts)
        if inner is None:
            return None
        name, used = inner
        if kind == "z":
            return name.replace("z_", r"\delta_", 1), used
        return rf"\frac{{\partial L}}{{\partial {name}}}", used

    def stems_in(self, text: str) -> set[str]:
        """The profile's stems that occur in ``text`` as names."""
        found = set()
        for stem in self.handlers():
            if re.search(r"(?<![A-Za-z\\])" + re.escape(stem) + (r"(?![A-Za-z])" if stem[-1].isalpha() else ""),
                         text):
                found.add(stem)
        if self.n.named_weights and re.search(r"(?<![A-Za-z\\])w\s*_\s*\{?\s*\d\s*\}?(?!\s*\^)", text):
            found.add("w_n")
        return found

    def rewrite(self, t: Text) -> Text:
        table = self.handlers()
        pattern = re.compile("|".join(re.escape(s) for s in sorted(table, key=len, reverse=True)))
        s, edits, i = t.s, [], 0
        while i < len(s):
            m = pattern.match(s, i)
            stem_ok = m and not (i > 0 and (s[i - 1].isalpha() or s[i - 1] == "\\")) and \
                not (m.group()[-1].isalpha() and m.end() < len(s) and s[m.end()].isalpha())
            if not stem_ok:
                i += 1
                continue
            scripts = scripts_after(s, m.end(), most=2)
            out = table[m.group()](scripts)
            if out is None:
                i = m.end()
                continue
            rep, used = out
            end = scripts[used - 1][2] if used else m.end()
            if re.sub(r"[\s{}]", "", rep) != re.sub(r"[\s{}]", "", s[i:end]):
                edits.append((i, end, " " + rep + " "))  # the notes' own spelling is left as typed
            i = end
        return t.edit(edits) if edits else t


def _name_end(s: str, i: int) -> int:
    """End of the name (stem and scripts) starting at s[i], or i when there is none."""
    m = re.compile(r"\\(?:hat|widehat|mathcal|mathit|mathrm)\s*\{[^{}]*\}|\\[a-zA-Z]+|[A-Za-z]+").match(s, i)
    if not m:
        return i
    scripts = scripts_after(s, m.end())
    return scripts[-1][2] if scripts else m.end()


def derivative_spellings(t: Text) -> Text:
    r"""``\frac{dL}{dw}``, ``\frac{d L}{d w}`` and ``\partial L/\partial w`` →
    ``\frac{\partial L}{\partial w}``."""
    t = t.sub(r"\\frac\s*\{\s*(?:\\mathrm\s*\{d\}|d)(?=\s*[A-Za-z\\(}])(?P<num>[^{}]*(?:\{[^{}]*\}[^{}]*)*)\}\s*"
              r"\{\s*(?:\\mathrm\s*\{d\}|d)(?=\s*[A-Za-z\\])(?P<den>[^{}]*(?:\{[^{}]*\}[^{}]*)*)\}",
              lambda m: rf"\frac{{\partial {m.group('num').strip()}}}{{\partial {m.group('den').strip()}}}")
    s, edits, i = t.s, [], 0
    for m in re.finditer(r"\\partial\s*", s):
        if m.start() < i or (m.start() > 0 and s[:m.start()].rstrip().endswith("{")):
            continue
        a_end = _name_end(s, m.end())
        rest = re.match(r"\s*/\s*\\partial\s*", s[a_end:])
        if a_end == m.end() or not rest:
            continue
        b_start = a_end + rest.end()
        b_end = _name_end(s, b_start)
        if b_end == b_start:
            continue
        edits.append((m.start(), b_end, rf"\frac{{\partial {s[m.end():a_end]}}}{{\partial {s[b_start:b_end]}}}"))
        i = b_end
    return t.edit(edits) if edits else t


#: The activations whose derivative a claim may write by name (\tanh', \operatorname{ReLU}',
#: any spelling :func:`by_spelling` reads: LReLU, SiLU), as the parser's placeholders
#: \Psi_{i}: index i into this tuple (σ' has its own, \Xi).  Every element-wise entry of the
#: table; softmax's derivative is a Jacobian, not one factor.
NAMED_PRIMES = tuple(name for name, act in ACTIVATIONS.items() if act.elementwise)
_PRIME = r"(?:'|\^\s*\{?\s*\\prime\s*\}?)"
_LAYER_PRIME = re.compile(
    r"(?<![A-Za-z\\])(?:[gfh]|\\phi|\\varphi)\s*(?:"
    r"\^\s*\{\s*[\[(]?\s*(?P<k1>\d+)\s*[\])]?\s*(?:\\prime|')\s*\}"          # g^{[2]\prime}, g^{(2)'}
    r"|\^\s*\{\s*[\[(]?\s*(?P<k2>\d+)\s*[\])]?\s*\}\s*(?:\{\}\s*)?" + _PRIME +  # g^{[2]}', g^{[2]}{}'
    r"|_\s*(?:\{\s*(?P<k3>\d+)\s*\}|(?P<k4>\d))\s*" + _PRIME +                  # g_2', g_{2}^{\prime}
    r")(?=\s*\()")
_NAMED_PRIME = re.compile(
    r"\\(?:(?P<cmd>tanh)|(?:operatorname|mathrm|text|textrm|mathit)\s*\{\s*(?P<word>[A-Za-z_\\]+)\s*\})\s*"
    + _PRIME + r"(?=\s*\()")
_PLACEHOLDERS = re.compile(r"\\(?:Xi|Upsilon|Psi)(?![a-zA-Z])")


#: Letters the parser leaves as symbols that are numbers: e (Euler's) and \pi.
_CONSTANTS = {"e": sympy.E, "pi": sympy.pi}


def prime_spellings(t: Text) -> Text:
    r"""Layer-labelled and named derivatives into the parser's placeholders:
    ``g^{[2]\prime}(u)``, ``g_2'(u)`` → ``\Upsilon_{2}(u)`` (layer 2's g', checked against the
    layer of u); ``\tanh'(u)``, ``\operatorname{ReLU}'(u)`` → ``\Psi_{i}(u)`` (that activation's
    derivative at u).  A placeholder typed by the user is refused first."""
    typed = _PLACEHOLDERS.search(t.s)
    if typed:
        raise InputError(f"{typed.group()} at column {t.col(typed.start()) + 1} is not in the network",
                         t.col(typed.start()))

    def layer(m):
        k = next(g for g in (m.group("k1"), m.group("k2"), m.group("k3"), m.group("k4")) if g)
        return rf"\Upsilon_{{{int(k)}}} "

    def named(m):
        word = (m.group("cmd") or m.group("word")).replace("\\", "").lower()
        name = by_spelling(word)
        if name is None:
            raise InputError(f"{word}' at column {t.col(m.start()) + 1} is not an activation this tool knows: "
                             f"write one of {', '.join(NAMED_PRIMES)} or g'(z_{{kj}})", t.col(m.start()))
        if name not in NAMED_PRIMES:
            raise InputError(f"{word}' at column {t.col(m.start()) + 1} is a Jacobian, not one factor: write "
                             r"\frac{\partial O_{kj}}{\partial z_{km}} out", t.col(m.start()))
        return rf"\Psi_{{{NAMED_PRIMES.index(name)}}} "

    return t.sub(_NAMED_PRIME.pattern, named).sub(_LAYER_PRIME.pattern, layer)


def indicators(t: Text) -> Text:
    r"""``\mathbb{1}[z>0]``, ``\mathbb{1}_{z>0}``, ``\mathbb{1}\{z>0\}`` → a 1/0 piecewise;
    ``H(z)`` → ``\theta(z)`` (the step function, as SymPy prints Heaviside)."""
    s, edits = t.s, []
    for m in re.finditer(r"\\(?:mathbb|mathbf|mathds)\s*\{\s*1\s*\}\s*(_\s*\{|\[|\\\{)", s):
        opener = m.group(1)
        if opener == r"\{":
            close = s.find(r"\}", m.end())
            body, end = (s[m.end():close], close + 2) if close > 0 else (None, -1)
        else:
            o = m.end() - 1
            end = group_end(s, o)
            body = s[o + 1:end - 1] if end > 0 else None
        if body is None:
            raise InputError(rf"unparsable LaTeX: the indicator at column {t.col(m.start()) + 1} is never closed",
                             t.col(m.start()))
        edits.append((m.start(), end, rf"\piecewise{{1}}{{{body}}}{{0}}{{}}"))
    t = t.edit(edits) if edits else t
    return t.sub(r"(?<![A-Za-z\\])H\s*(?=\()", r"\theta")


def norms(t: Text, single_output: bool) -> Text:
    r"""``\|E\|^2`` and ``\lVert E \rVert^2``: (E)^2 for one output, Σ_j (E_j)^2 otherwise."""
    pat = r"(?:\\\||\\lVert|\\Vert)(?P<e>.*?)(?:\\\||\\rVert|\\Vert)(?P<p>\s*\^\s*(?:\{\s*2\s*\}|2))?"

    def one(m):
        e = m.group("e")
        if single_output:
            return f"({e}){m.group('p') or ''}"
        if not m.group("p"):
            raise InputError(r"a norm \|...\| of the outputs is read squared only: write \|y - \hat{y}\|^2")
        e = re.sub(r"\\hat\s*\{\s*y\s*\}(?!\s*_)", r"\\hat{y}_{q}", e)
        e = re.sub(r"(?<![A-Za-z\\{])y(?![A-Za-z_}])", "y_{q}", e)
        return rf"\sum_{{q=1}}^{{n_out}}({e})^{{2}}"
    return t.sub(pat, one)


def _sum_body_end(s: str, i: int) -> int:
    """End of a sum's body: the next + or - (or relation, or a closing bracket) at its level."""
    depth, j = 0, i
    while j < len(s) and s[j] == " ":
        j += 1
    start = j
    while j < len(s):
        c = s[j]
        if c in "{([":
            depth += 1
        elif c in "})]":
            if depth == 0:
                return j
            depth -= 1
        elif depth == 0 and c in "+-" and j > start:
            return j
        j += 1
    return j


def _substitute(body: str, letter: str, value: int) -> str:
    """The sum's index letter replaced by ``value`` inside every sub- and superscript."""
    def group(m):
        content = m.group(2)
        braced = content.startswith("{")
        inner = content[1:-1] if braced else content
        if not re.search(rf"(?<![\\A-Za-z]){letter}(?![A-Za-z])", inner):
            return m.group()
        if "," not in inner and value >= 10 and len(inner.replace(" ", "")) > 1:
            inner = ",".join(inner.replace(" ", ""))
        inner = re.sub(rf"(?<![\\A-Za-z]){letter}(?![A-Za-z])", str(value), inner)
        return f"{m.group(1)}{{{inner}}}"
    return re.sub(r"([_^])\s*(\{[^{}]*\}|[A-Za-z0-9])", group, body)


def sums(t: Text, spec: Spec, free: str = "jkm") -> Text:
    r"""``\sum_{j=1}^{2} w^2_{1j} ...`` and ``\sum_k ...`` (the range from the names in the body)
    written out term by term, so each term names real nodes."""
    L = list(spec.layers)
    for _ in range(20):  # nested sums: innermost last
        s = t.s
        m = re.search(r"\\sum\s*_\s*(?:\{\s*([A-Za-z])\s*(?:=\s*(\d+)\s*)?\}|([A-Za-z]))"
                      r"(?:\s*\^\s*(?:\{\s*([^{}]*?)\s*\}|(\d)))?", s)
        if not m:
            return t
        letter = m.group(1) or m.group(3)
        lo = int(m.group(2)) if m.group(2) else 1
        end = _sum_body_end(s, m.end())
        body = s[m.end():end]
        hi_text = m.group(4) or m.group(5)
        hi = None
        if hi_text == "n_out":
            hi = L[-1]
        elif hi_text and hi_text.isdigit():
            hi = int(hi_text)
            if hi > max(L):
                raise InputError(rf"\sum over {letter} at column {t.col(m.start()) + 1} runs to {hi}, but no layer of the "
                                 f"{'-'.join(map(str, L))} network has more than {max(L)} nodes", t.col(m.start()))
        elif hi_text in ("n", "m", "N"):
            return t  # a sum over the batch's rows: the matrix reader's (Ng's \sum_{i=1}^{m} dZ)
        elif hi_text:
            raise InputError(rf"\sum at column {t.col(m.start()) + 1} runs to '{hi_text}': give the number of nodes "
                             rf"(\sum_{{{letter}=1}}^{{2}})", t.col(m.start()))
        elif not re.search(rf"[_^]\s*\{{[^{{}}]*(?<![\\A-Za-z]){letter}(?![A-Za-z])|[_^]\s*{letter}(?![A-Za-z])",
                           body):
            return t  # not over a node index (the delta rule's \sum_i, SymPy's own sums)
        if hi is None and letter not in free:
            return t  # left to the reader, which asks for limits
        if hi is None:
            hi = _range_of(body, letter, L)
        if hi is None:
            raise InputError(rf"\sum over {letter} at column {t.col(m.start()) + 1}: cannot tell which layer "
                             f"{letter} runs over; give the limits (\\sum_{{{letter}=1}}^{{2}})", t.col(m.start()))
        terms = [_substitute(body, letter, v) for v in range(lo, hi + 1)]
        t = t.edit([(m.start(), end, "(" + " + ".join(f"({x})" for x in terms) + ")")])
    return t


def _range_of(body: str, letter: str, L: list[int]) -> int | None:
    """How far a sum's index runs, from a name in the body (notes' names)."""
    ix = rf"(?:{letter}|\d)"
    m = re.search(rf"w\s*\^\s*\{{?\s*(\d+)\s*\}}?\s*_\s*\{{\s*({ix})\s*,?\s*({ix})\s*\}}", body)
    if m and letter in (m.group(2), m.group(3)):
        k = int(m.group(1))
        if 1 <= k < len(L):
            return L[k - 1] if m.group(2) == letter else L[k]
    m = re.search(rf"(?:\\delta|z|O|b)\s*_\s*\{{\s*(\d)\s*{letter}\s*\}}", body)
    if m and 1 <= int(m.group(1)) < len(L):
        return L[int(m.group(1))]
    if re.search(rf"(?:y|\\hat\s*\{{\s*y\s*\}})\s*_\s*\{{?\s*{letter}", body):
        return L[-1]
    if re.search(rf"x\s*_\s*\{{\s*i?\s*{letter}\s*\}}", body):
        return L[0]
    return None


def delta_head(t: Text) -> Text:
    r"""A segment that is exactly ``\delta_{kj}`` is the definition δ_kj = ∂L/∂z_kj."""
    m = re.fullmatch(r"\s*\\delta\s*_\s*\{\s*(\d)\s*(\d)\s*\}\s*", t.s)
    if m:
        return t.edit([(0, len(t.s), rf"\frac{{\partial L}}{{\partial z_{{{m.group(1)}{m.group(2)}}}}}")])
    return t


# ---------------------------------------------------------------------------------------------
# Step 2: relations
# ---------------------------------------------------------------------------------------------
RELATIONS = {"=": "=", r"\rightarrow": "=", r"\to": "=", r"\Rightarrow": "=", r"\approx": "≈",
             r"\leftarrow": "←", r"\gets": "←"}
_REL = re.compile(r"\\rightarrow(?![a-zA-Z])|\\Rightarrow(?![a-zA-Z])|\\to(?![a-zA-Z])|"
                  r"\\approx(?![a-zA-Z])|\\leftarrow(?![a-zA-Z])|\\gets(?![a-zA-Z])|=")


def split_relations(t: Text) -> list[tuple[str, Text]]:
    """[(relation, segment)] with relation '' for the first segment."""
    depth, cuts, i, s = 0, [], 0, t.s
    while i < len(s):
        c = s[i]
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif depth == 0:
            m = _REL.match(s, i)
            if m:
                cuts.append((m.start(), m.end(), RELATIONS[m.group()]))
                i = m.end()
                continue
        i += 1
    out, pos, rel = [], 0, ""
    for a, b, r in cuts:
        out.append((rel, t.slice(pos, a).strip()))
        pos, rel = b, r
    out.append((rel, t.slice(pos, len(s)).strip()))
    for k, (r, seg) in enumerate(out):
        if not seg.s:
            col = seg.col(0)
            raise InputError(f"unparsable LaTeX: nothing {'before' if k == 0 else 'after'} the "
                             f"relation at column {col + 1}", col)
    return out


# ---------------------------------------------------------------------------------------------
# Step 3-4: names and derivative fractions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loss:
    """The loss L as a name in an equation."""

    def __repr__(self):
        return "L"


LOSS = Loss()


@dataclass
class Derivative:
    r"""∂num/∂den as written: ``num`` is a network name (a symbol or LOSS) or, for
    \frac{\partial (E)}{\partial B}, ``expr`` holds E (parsed) and ``num`` is None."""

    num: object
    den: sympy.Symbol
    expr: sympy.Expr | None = None
    text: str = ""
    column: int = 0
    warning: str = ""


@dataclass
class Unknown:
    """A name that is not in the network, with the names it may have meant."""

    text: str
    column: int
    suggestions: list[str] = field(default_factory=list)
    why: str = ""


# stem tokens: (regex, stem id)
_STEM = re.compile(
    r"\\(?:hat|widehat)\s*\{\s*y\s*\}|\\hat\s+y(?![a-zA-Z])|\\(?:gamma|theta|omega|delta|Delta|triangle|"
    r"epsilon|varepsilon|phi|psi|mu|nu|lambda|beta|alpha|eta|rho|tau|xi|pi|Omega|Theta)(?![a-zA-Z])|"
    r"\\[a-zA-Z]+|[A-Za-z]"
)
_NAMED_STEMS = {"w": "w", "W": "W", "b": "b", "O": "O", "o": "O", "x": "x", "y": "y", "z": "z",
                "L": "L", r"\delta": "delta"}
#: Letters that look like a network name: what the notes wrote for what they meant.
LOOKALIKE = {r"\gamma": "y", r"\theta": "O", r"\omega": "w", r"\Omega": "w", r"\Theta": "O", "W": "w",
             r"\alpha": "a"}
_GREEK_STEMS = {r"\gamma", r"\theta", r"\omega", r"\delta", r"\Omega", r"\Theta"}


def _script(s: str, i: int) -> tuple[str, int] | None:
    """The group after a ^ or _ at s[i-1]: ('11', end) for {11}, 2 for a bare digit."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] == "{":
        end = group_end(s, i)
        if end < 0:
            return None
        return s[i + 1:end - 1].strip(), end
    m = re.match(r"\\[a-zA-Z]+|.", s[i:])
    return m.group(), i + m.end()


def scripts_after(s: str, j: int, most: int | None = None) -> list[tuple[str, str, int]]:
    """The ^ and _ groups right after a stem ending at s[j]: [(kind, content, end)]."""
    scripts: list[tuple[str, str, int]] = []
    while most is None or len(scripts) < most:
        k = j
        while k < len(s) and s[k] == " ":
            k += 1
        if k >= len(s) or s[k] not in "^_":
            break
        sc = _script(s, k + 1)
        if sc is None:
            break
        scripts.append((s[k], sc[0], sc[1]))
        j = sc[1]
    return scripts


def _indices(content: str) -> tuple[int, ...] | None:
    """'11' -> (1, 1); '1,10' -> (1, 10); anything with letters -> None."""
    content = content.replace(" ", "")
    if "," in content:
        parts = content.split(",")
        return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None
    return tuple(int(c) for c in content) if content.isdigit() else None


@dataclass
class NameSpace:
    """What names mean in one network: symbols, and all spellings for suggestions."""

    spec: Spec

    def __post_init__(self):
        self.depth = self.spec.depth
        self.single = self.spec.n_outputs == 1
        names: dict[str, sympy.Symbol] = {}
        L = self.spec.layers
        for k in range(1, self.depth + 1):
            for j in range(1, L[k] + 1):
                for i in range(1, L[k - 1] + 1):
                    names[f"w^{k}_{i}{j}" if max(i, j) < 10 else f"w^{k}_{i},{j}"] = nt.weight(k, i, j)
                if self.spec.bias:
                    names[f"b_{k}{j}"] = nt.bias(k, j)
                if k < self.depth:
                    names[f"O_{k}{j}"] = nt.output(k, j)
        for j in range(1, L[0] + 1):
            names[f"x_i{j}"] = nt.feature(j)
        for j in range(1, L[-1] + 1):
            names["y" if self.single else f"y_{j}"] = nt.target(j)
            names["ŷ" if self.single else f"ŷ_{j}"] = nt.prediction(j)
            names[f"O_{self.depth}{j}"] = nt.prediction(j)
        self.names = names

    def suggest_weight(self, layer: str, ij: str) -> list[str]:
        """Weights matching the most of (layer, i, j) as written; letters match anything."""
        want = [layer.strip(), *(list(ij.replace(",", "").replace(" ", "")) + ["", ""])[:2]]
        scored = []
        for n, sym in self.names.items():
            name = nt.parse(sym)
            if name.kind != "w" or not n.startswith("w"):
                continue
            have = [str(v) for v in name.indices]
            score = sum(1 for a, b in zip(want, have) if a == b)
            wild = sum(1 for a in want if not a.isdigit())
            scored.append((-(score + wild), -score, n))
        scored.sort()
        best = scored[0][0] if scored else 0
        return [n for sc, _, n in scored if sc == best][:4] or [n for *_, n in scored[:3]]

    def suggest(self, stem: str, idx_text: str, written: str) -> list[str]:
        """Nearest names: the lookalike letter with the same indices first, then difflib."""
        out: list[str] = []
        base = LOOKALIKE.get(stem, stem.lstrip("\\"))
        digits = re.sub(r"[^0-9]", "", idx_text)
        if base == "y":
            out += [n for n in self.names if n.startswith("y")]
        for n in self.names:
            n_digits = re.sub(r"[^0-9]", "", n.split("^")[-1] if base != "w" else n)
            if n[0] == base and digits and (n_digits.endswith(digits) or digits.endswith(n_digits[-2:])):
                out.append(n)
        if not digits:
            out += [n for n in self.names if n.startswith(base)][:4]
        plain = re.sub(r"[{}\\ ]", "", written).replace("omega", "w").replace("theta", "O").replace("gamma", "y")
        out += difflib.get_close_matches(plain, list(self.names), n=4, cutoff=0.5)
        seen: list[str] = []
        for n in out:
            if n not in seen:
                seen.append(n)
        return seen[:4]

    def exists(self, sym: sympy.Symbol) -> bool:
        return sym in self.names.values()


class Aliases:
    """alias symbol name (letters only) -> what it stands for."""

    def __init__(self):
        self.table: dict[str, object] = {}

    def new(self, obj) -> str:
        name = alias_name(len(self.table), "zzq")
        self.table[name] = obj
        return name


#: Alias letters: no d (the lexer reads "dx" as a differential) and no e (Euler's number).
_ALIAS_LETTERS = "abcfghjkmnpqrstuvwxyz"


def alias_name(n: int, prefix: str) -> str:
    """A letters-only name SymPy's LaTeX lexer reads as one symbol inside \\mathit{}."""
    letters = ""
    while True:
        letters = _ALIAS_LETTERS[n % len(_ALIAS_LETTERS)] + letters
        n //= len(_ALIAS_LETTERS)
        if n == 0:
            return prefix + letters


class Reader:
    """Turns one equation's LaTeX into SymPy segments for one network."""

    def __init__(self, spec: Spec, notation=None):
        self.spec = spec
        self.ns = NameSpace(spec)
        self.notation = notation or NOTATIONS[DEFAULT]
        self._net = None

    @property
    def net(self):
        if self._net is None:
            self._net = Network(self.spec)
        return self._net

    def prepare(self, t: Text) -> Text:
        """Step 0 on one segment: derivative spellings, the profile's names, norms, sums,
        indicators and a δ definition head, all into the notes' own LaTeX."""
        t = prime_spellings(derivative_spellings(t))
        t = NotationPass(self.spec, self.notation).rewrite(t)
        t = norms(t, self.ns.single)
        t = sums(t, self.spec, self.notation.sum_indices)
        t = indicators(t)
        return delta_head(t)

    # -- names ---------------------------------------------------------------------------
    def _name(self, stem_tok: str, scripts: list[tuple[str, str]], written: str, col: int):
        """A network symbol, LOSS, or Unknown; plus how many scripts it used."""
        stem = "yhat" if stem_tok.startswith(r"\hat") or stem_tok.startswith(r"\widehat") else \
            _NAMED_STEMS.get(stem_tok, stem_tok)
        subs = [c for k, c in scripts if k == "_"]
        used = 0
        L = self.spec.layers
        sym = None
        idx_text = ""
        if stem == "w":
            # layer from the first ^, ij from the first _, in either order
            first_two = scripts[:2]
            kinds = sorted(k for k, _ in first_two)
            if kinds == ["^", "_"]:
                used = 2
                layer = next(c for k, c in first_two if k == "^")
                ij = next(c for k, c in first_two if k == "_")
                idx_text = ij + layer
                k_ = _indices(layer)
                ij_ = _indices(ij)
                if k_ and len(k_) == 1 and ij_ and len(ij_) == 2:
                    sym = nt.weight(k_[0], *ij_)
                if sym is None or not self.ns.exists(sym):
                    return Unknown(written, col, self.ns.suggest_weight(layer, ij), ""), used
            else:
                used = len([1 for k, _ in scripts[:1] if k == "_"])
                return Unknown(written, col, self.ns.suggest_weight("", subs[0] if subs else ""),
                               "a weight needs a layer and two indices: w^{k}_{ij}"), used
        elif stem in ("b", "O", "z", "delta"):
            if scripts and scripts[0][0] == "_":
                used = 1
                idx = _indices(scripts[0][1])
                idx_text = scripts[0][1]
                if idx and len(idx) == 2:
                    k, j = idx
                    if stem == "b":
                        sym = nt.bias(k, j)
                    elif stem == "O":
                        sym = nt.output(k, j, self.spec.depth) if 1 <= k <= self.spec.depth else None
                    elif stem == "z":
                        sym = nt.preactivation(k, j) if 1 <= k <= self.spec.depth and j <= L[k] else None
                        if sym is not None:
                            return sym, used
                    else:
                        sym = nt.delta(k, j) if 1 <= k <= self.spec.depth and j <= L[k] else None
                        if sym is not None:
                            return sym, used
        elif stem == "x":
            if scripts and scripts[0][0] == "_":
                used = 1
                content = scripts[0][1].replace(" ", "")
                idx_text = content
                m = re.fullmatch(r"(?:[a-z]|[0-9],?)?([0-9]+)", content)
                if m and (len(content) > 1 or content.isdigit()):
                    j = int(m.group(1)) if not content.isdigit() or len(content) == 1 else int(content[-1])
                    sym = nt.feature(j)
        elif stem in ("y", "yhat"):
            maker = nt.target if stem == "y" else nt.prediction
            if scripts and scripts[0][0] == "_":
                used = 1
                idx = _indices(scripts[0][1])
                idx_text = scripts[0][1]
                if idx and len(idx) == 1:
                    sym = maker(idx[0])
            elif self.ns.single:
                sym = maker(1)
            else:
                return Unknown(written, col, self.ns.suggest(stem[0] if stem == "y" else "ŷ", "", written),
                               f"the network has {L[-1]} outputs: write {stem}_1 ... with an index"), 0
        elif stem == "L":
            if scripts and scripts[0][0] == "_":
                return Unknown(written, col, ["L"], "the loss is L, without an index"), 1
            return LOSS, 0
        else:  # gamma, theta, omega, ... : not a network name
            used = 1 if scripts and scripts[0][0] == "_" else 0
            if stem in (r"\omega", r"\Omega", "W") and sorted(k for k, _ in scripts[:2]) == ["^", "_"]:
                layer = next(c for k, c in scripts[:2] if k == "^")
                ij = next(c for k, c in scripts[:2] if k == "_")
                return Unknown(written, col, self.ns.suggest_weight(layer, ij), ""), 2
            return Unknown(written, col, self.ns.suggest(stem, "".join(c for _, c in scripts[:used]), written),
                           ""), used
        if sym is None or not self.ns.exists(sym):
            return Unknown(written, col, self.ns.suggest(stem if stem != "yhat" else "ŷ", idx_text, written),
                           ""), used
        return sym, used

    def _scan_name(self, s: str, i: int):
        """At s[i] a stem token: (token, scripts [(kind, content, end)], end)."""
        m = _STEM.match(s, i)
        tok = re.sub(r"\s+", "", m.group())
        tok = r"\hat" if tok.startswith(r"\hat") or tok.startswith(r"\widehat") else tok
        return tok, scripts_after(s, m.end()), m.end()

    def replace_names(self, t: Text, aliases: Aliases, unknowns: list[Unknown], mode: str = "") -> Text:
        """Every network name -> \\mathit{alias}; derivative fractions too (recursively)."""
        s = t.s
        edits = []
        i = 0
        while i < len(s):
            if s.startswith(r"\piecewise", i):
                end, alias = self._piecewise(t, i, aliases, unknowns)
                edits.append((i, end, rf" \mathit{{{alias}}} "))
                i = end
                continue
            if s.startswith(r"\frac", i) and re.match(r"\\frac\s*\{\s*\\partial", s[i:]):
                end, alias = self._derivative(t, i, aliases, unknowns)
                edits.append((i, end, rf" \mathit{{{alias}}} "))
                i = end
                continue
            m = _STEM.match(s, i)
            if not m:
                i += 1
                continue
            tok = re.sub(r"\s+", "", m.group())
            if tok.startswith("\\") and not tok.startswith(r"\hat") and not tok.startswith(r"\widehat"):
                if tok in (r"\text", r"\mathrm", r"\operatorname", r"\mathbf", r"\textbf", r"\mathbb"):
                    raise InputError(f"{tok}{{...}} at column {t.col(i) + 1} cannot be checked: write the "
                                     "quantity as a formula", t.col(i))
                if tok == r"\sum":
                    nxt = re.match(r"\\sum\s*_\s*(\{[^{}]*\}|[a-zA-Z])", s[i:])
                    if not nxt or "=" not in nxt.group(1):
                        raise InputError(
                            rf"\sum at column {t.col(i) + 1} has no limits: write the sum out term by term "
                            r"(or \sum_{i=1}^{2}); only the delta-rule syntax reads \sum_i", t.col(i))
                if tok in (r"\triangle", r"\Delta"):
                    raise InputError(
                        f"{tok} at column {t.col(i) + 1} belongs to the delta rule: write the update as "
                        r"W_{j,i} \leftarrow W_{j,i} + \alpha a_j \Delta_i (see backprop verify --help)", t.col(i))
                if tok == r"\theta" and re.match(r"\\theta\s*\(", s[i:]):
                    i = m.end()
                    continue  # θ(u): the step function, as SymPy prints Heaviside
                if tok not in _GREEK_STEMS:
                    i = m.end()
                    continue
            if not tok.startswith("\\") and tok not in _NAMED_STEMS and tok not in ("W",):
                # a plain letter outside the vocabulary: in_j, g'(..), Err_i, or a stray symbol
                word = re.match(r"[A-Za-z]+", s[i:]).group()
                if word in ("in", "Err") and re.match(r"[A-Za-z]+\s*_", s[i:]):
                    raise InputError(f"{word}_... at column {t.col(i) + 1} belongs to the delta rule "
                                     "(see backprop verify --help); it has no meaning in a derivative", t.col(i))
                gm = re.match(r"g\s*(?:'|\^\s*\{?\s*(?:\\prime|1)\s*\}?)\s*\((\s*in\s*_)?", s[i:])
                if gm and re.match(r"g\s*\^\s*\{?\s*1", s[i:]):
                    raise InputError(f"g^1(...) at column {t.col(i) + 1} does not say which activation: write "
                                     r"g'(z_{kj}) or the derivative out (O_{11}(1 - O_{11}), 1)", t.col(i))
                if gm and not gm.group(1):
                    open_ = i + gm.end() - 1
                    close = group_end(s, open_)
                    if close > 0 and "_" not in s[open_:close] and "^" not in s[open_:close]:
                        raise InputError(f"g'({s[open_ + 1:close - 1].strip()}) at column {t.col(i) + 1} does not say "
                                         "which node, so not which activation: write g'(z_{kj}) (the layer's "
                                         "activation comes from the spec)", t.col(i))
                if gm and gm.group(1):
                    where = " (g'(in_j) belongs to the delta rule, see backprop verify --help)" if gm.group(1) else ""
                    raise InputError(f"g'(...) at column {t.col(i) + 1} does not say which activation{where}: "
                                     r"write it out (\sigma(z)(1-\sigma(z)), O_{11}(1 - O_{11}), 1)", t.col(i))
                i += 1
                continue
            tok_, scripts, stem_end = self._scan_name(s, i)
            col = t.col(i)
            sc = [(k, c) for k, c, _ in scripts]
            probe_end = scripts[-1][2] if scripts else stem_end
            obj, used = self._name(tok_, sc, s[i:probe_end].strip(), col)
            end = scripts[used - 1][2] if used else stem_end
            if isinstance(obj, Unknown):
                obj.text = s[i:end].strip()
                unknowns.append(obj)
            alias = aliases.new(obj)
            edits.append((i, end, rf" \mathit{{{alias}}}"))
            i = end
        return t.edit(edits)

    def _piecewise(self, t: Text, i: int, aliases: Aliases, unknowns: list[Unknown]) -> tuple[int, str]:
        """\\piecewise{value}{condition}... (from a cases block) -> one alias for a Piecewise."""
        s, k = t.s, i + len(r"\piecewise")
        groups = []
        while k < len(s) and s[k] == "{":
            end = group_end(s, k)
            groups.append(t.slice(k + 1, end - 1).strip())
            k = end
        pairs = []
        for value, cond in zip(groups[::2], groups[1::2]):
            v = self.parse_segment(value, aliases, unknowns, inner=True)
            c = self.parse_segment(cond, aliases, unknowns, relation_ok=True, inner=True) if cond.s else sympy.true
            pairs.append((v, c))
        if not pairs or unknowns:
            return k, aliases.new(sympy.S.Zero)
        if pairs[-1][1] is not sympy.true:
            pairs.append((sympy.nan, sympy.true))
        return k, aliases.new(sympy.Piecewise(*pairs))

    def _derivative(self, t: Text, i: int, aliases: Aliases, unknowns: list[Unknown]) -> tuple[int, str]:
        s = t.s
        open_num = s.index("{", i)
        end_num = group_end(s, open_num)
        m = re.match(r"\s*\{", s[end_num:])
        if end_num < 0 or not m:
            raise InputError(f"unparsable LaTeX: \\frac at column {t.col(i) + 1} needs two groups", t.col(i))
        open_den = end_num + m.end() - 1
        end_den = group_end(s, open_den)
        if end_den < 0:
            raise InputError(f"unparsable LaTeX: '{{' at column {t.col(open_den) + 1} is never closed",
                             t.col(open_den))
        num = t.slice(open_num + 1, end_num - 1).strip()
        den = t.slice(open_den + 1, end_den - 1).strip()
        num = num.slice(len(re.match(r"\\partial\s*", num.s).group()), len(num.s)).strip()
        warning = ""
        dm = re.match(r"\\partial\s*", den.s)
        if dm:
            den = den.slice(dm.end(), len(den.s)).strip()
        else:
            warning = (rf"the denominator of \frac at column {t.col(i) + 1} has no \partial: "
                       rf"\frac{{\partial ...}}{{\partial {den.s}}} is meant")
        end = end_den
        # the denominator: one name
        den_unknowns: list[Unknown] = []
        den_sym = self._single_name(den, aliases, den_unknowns)
        unknowns.extend(den_unknowns)
        if den_sym is None and not den_unknowns:
            raise InputError(f"the derivative at column {t.col(i) + 1} is with respect to '{den.s}': "
                             "expected one name (w^{2}_{11}, b_{21}, O_{11}, \\hat{y})", t.col(i))
        if not num.s:  # operator form \frac{\partial}{\partial B} (E)
            rest = re.match(r"\s*", s[end_den:])
            k = end_den + rest.end()
            if k >= len(s) or s[k] != "(":
                raise InputError(rf"\frac{{\partial}}{{\partial {den.s}}} at column {t.col(i) + 1} must be "
                                 "followed by a parenthesised expression", t.col(i))
            close = group_end(s, k)
            if close < 0:
                raise InputError(f"unparsable LaTeX: '(' at column {t.col(k) + 1} is never closed", t.col(k))
            inner = t.slice(k + 1, close - 1)
            end = close
            expr = self.parse_segment(inner, aliases, unknowns, inner=True)
            obj = Derivative(None, den_sym, expr, s[i:end], t.col(i), warning)
            return end, aliases.new(obj)
        num_unknowns: list[Unknown] = []
        single = self._single_name(num, aliases, num_unknowns)
        if single is not None or num_unknowns and len(num_unknowns) == 1 and self._is_one_name(num):
            unknowns.extend(num_unknowns)
            obj = Derivative(single, den_sym, None, s[i:end], t.col(i), warning)
            return end, aliases.new(obj)
        expr = self.parse_segment(num, aliases, unknowns, inner=True)
        obj = Derivative(None, den_sym, expr, s[i:end], t.col(i), warning)
        return end, aliases.new(obj)

    def _is_one_name(self, t: Text) -> bool:
        m = _STEM.match(t.s, 0)
        if not m:
            return False
        tok, scripts, stem_end = self._scan_name(t.s, 0)
        end = scripts[-1][2] if scripts else stem_end
        return not t.s[end:].strip()

    def _single_name(self, t: Text, aliases: Aliases, unknowns: list[Unknown]):
        """The network symbol (or LOSS) when ``t`` is exactly one name, else None."""
        if not self._is_one_name(t):
            return None
        tok, scripts, stem_end = self._scan_name(t.s, 0)
        sc = [(k, c) for k, c, _ in scripts]
        obj, used = self._name(tok, sc, t.s.strip(), t.col(0))
        if used != len(scripts) and not isinstance(obj, Unknown):
            return None
        if isinstance(obj, Unknown):
            unknowns.append(obj)
            return None
        return obj

    # -- parsing ---------------------------------------------------------------------------
    def parse_segment(self, t: Text, aliases: Aliases, unknowns: list[Unknown],
                      relation_ok: bool = False, inner: bool = False) -> sympy.Expr:
        """One side of a relation as SymPy, aliases mapped back (Derivative and LOSS stay as
        alias symbols; see :func:`alias_objects`).  ``inner``: a part of a segment already
        prepared (:meth:`prepare` runs once per segment)."""
        if not inner:
            t = self.prepare(t)

        ph = re.search(r"\(\s*\\cdot\s*\)", t.s)
        if ph:
            raise InputError(f"(\\cdot) at column {t.col(ph.start()) + 1} is a placeholder, not a value: write the "
                             r"argument, e.g. \sigma(w^1_{11} x_{i1} + w^1_{21} x_{i2} + b_{11})", t.col(ph.start()))
        replaced = self.replace_names(t, aliases, unknowns)
        if unknowns:
            return sympy.S.Zero  # the caller reports them; nothing to parse
        # (a placeholder the user typed was refused by prime_spellings, in prepare)
        # primes: σ'(u) is Ξ(u), g'(u)/f'(u)/h'(u) Υ(u) for the parser (single-letter names
        # are read as functions); _finish gives them their meaning
        text_t = replaced.sub(r"\\sigma\s*(?:'|\^\s*\{?\s*\\prime\s*\}?)", r"\Xi ")
        text_t = text_t.sub(r"(?<![A-Za-z\\])(?:[gfh]|\\phi|\\varphi)\s*(?:'|\^\s*\{?\s*\\prime\s*\}?)(?=\s*\()",
                            r"\Upsilon ")
        text = text_t.s
        try:
            expr = parse_latex(text, strict=True, backend="antlr")
        except LaTeXParsingError as exc:
            msg = str(exc).splitlines()
            caret = msg[-1].find("^") if msg and "^" in msg[-1] else None
            if caret is None or caret < 0:
                caret = _guess_column(text)
            col = text_t.col(caret) if caret is not None and caret >= 0 else t.col(0)
            first = msg[0] if msg else "syntax error"
            raise InputError(f"unparsable LaTeX at column {col + 1} (near '{_near(t, col)}'): {first}", col) \
                from None
        except RecursionError:
            raise InputError(f"unparsable LaTeX at column {t.col(0) + 1}: too many terms or signs in a "
                             "row for the parser; split the equation", t.col(0)) from None
        except Exception as exc:  # the ANTLR runtime raises other types on odd input
            raise InputError(f"unparsable LaTeX at column {t.col(0) + 1}: {type(exc).__name__}: {exc}",
                             t.col(0)) from None
        if isinstance(expr, sympy.core.relational.Relational) and not relation_ok:
            raise InputError(f"unparsable LaTeX at column {t.col(0) + 1}: a relation inside a term", t.col(0))
        return self._finish(expr, t, aliases)

    def _activation_prime(self, arg, aliases: Aliases, t: Text, name: str | None = None,
                          layer: int | None = None) -> sympy.Expr:
        """g'(u), f'(u), h'(u): the derivative of the activation of the layer u belongs to
        (u names a node's z or output), evaluated AT u (so g'(O_{11}) is not g'(z_{11}))."""
        if name is not None:  # σ': the sigmoid's, whatever the layer
            return self._prime_at(name, arg, aliases)
        layers = set()
        for sym in arg.free_symbols:
            obj = aliases.table.get(sym.name)
            name = nt.parse(obj) if isinstance(obj, sympy.Symbol) else None
            if name is not None and name.kind in ("z", "O", "delta"):
                layers.add(name.indices[0])
            elif name is not None and name.kind == "yhat":
                layers.add(self.spec.depth)
        if len(layers) != 1:
            raise InputError(f"g'(...) in '{t.s.strip()}' does not say which layer's activation: write "
                             r"g'(z_{kj}) with the node's pre-activation", t.col(0))
        at = layers.pop()
        if layer is not None and layer != at:
            raise InputError(f"layer {layer}'s g' is applied to a quantity of layer {at} in '{t.s.strip()}': "
                             f"write g^{{[{at}]\\prime}}(...) or g'(...) with the node's pre-activation", t.col(0))
        act = self.net.activation(at)
        if not act.elementwise:
            raise InputError(f"g' of a {act.name} layer is a Jacobian, not one factor: write "
                             r"\frac{\partial O_{kj}}{\partial z_{km}} out", t.col(0))
        return self._prime_at(act.name, arg, aliases)

    def _prime_at(self, name: str, arg, aliases: Aliases) -> sympy.Expr:
        """Activation ``name``'s derivative at ``arg``; at a node's own z_kj whose layer has
        that activation, written with its output (σ'(z_11) = O_11(1 - O_11)), as derive prints."""
        obj = aliases.table.get(arg.name) if isinstance(arg, sympy.Symbol) else None
        node = nt.parse(obj) if isinstance(obj, sympy.Symbol) else None
        if node is not None and node.kind == "z" and self.net.activation(node.indices[0]).name == name \
                and not self.net.skips(node.indices[0]):  # a residual node's O is not g(z): g' stays at z
            k, j = node.indices
            out = sympy.Symbol(aliases.new(nt.output(k, j, self.spec.depth)))  # mapped back with the rest
            return derivative_at(name, out, arg)
        return derivative_at(name, ACTIVATIONS[name].sym(arg), arg)

    def _finish(self, expr, t: Text, aliases: Aliases) -> sympy.Expr:
        """Map aliases back, give functions their meaning, refuse stray symbols."""
        rep = {}
        for f in expr.atoms(AppliedUndef):
            name = f.func.__name__
            args = f.args
            if name == "sigma" and len(args) == 1:
                rep[f] = 1 / (1 + sympy.exp(-args[0]))
            elif name == "Xi" and len(args) == 1:
                rep[f] = self._activation_prime(args[0], aliases, t, latex_commands()[r"\sigma"])
            elif name in ("max", "Max") and len(args) >= 2:
                rep[f] = sympy.Max(*args)
            elif name == "Upsilon" and len(args) == 1:
                rep[f] = self._activation_prime(args[0], aliases, t)
            elif (lm := re.fullmatch(r"Upsilon_\{(\d+)\}", name)) and len(args) == 1:
                rep[f] = self._activation_prime(args[0], aliases, t, layer=int(lm.group(1)))
            elif (pm := re.fullmatch(r"Psi_\{(\d+)\}", name)) and len(args) == 1:
                rep[f] = self._activation_prime(args[0], aliases, t, NAMED_PRIMES[int(pm.group(1))])
            elif name == "theta" and len(args) in (1, 2):
                rep[f] = sympy.Heaviside(*args)
            else:
                raise InputError(f"function {name}(...) in '{t.s}' is not defined: write the activation out "
                                 r"(\sigma(z), \tanh(z), O_{11}(1 - O_{11}))", t.col(0))
        expr = expr.xreplace(rep) if rep else expr
        for f in list(expr.atoms(sympy.Function)):
            if type(f).__name__ in ("Max", "Min", "max", "min") and not isinstance(f, (sympy.Max, sympy.Min)):
                expr = expr.xreplace({f: sympy.Max(*f.args)})
        constants = {**_CONSTANTS, **reader_constants(self.spec.activations)}  # selu's \lambda, \alpha
        for sym in sorted(expr.free_symbols, key=str):
            if sym.name in aliases.table or sym.name in constants:
                continue
            pos = _find_letter(t.s, sym.name)
            col = t.col(pos) if pos is not None else t.col(0)
            hint = {"n": " (the learning rate is \\eta)", "partial": " (use \\frac{\\partial A}{\\partial B})",
                    "sigma": r" (\sigma needs an argument: \sigma(z))"}.get(sym.name, "")
            raise InputError(f"symbol '{sym.name}' at column {col + 1} is not in the "
                             f"{'-'.join(map(str, self.spec.layers))} network{hint}", col,
                             difflib.get_close_matches(sym.name, list(NameSpace(self.spec).names), n=3, cutoff=0.3))
        mapping = {}
        for sym in expr.free_symbols:
            if sym.name in constants:
                mapping[sym] = constants[sym.name]
            else:
                obj = aliases.table[sym.name]
                if isinstance(obj, sympy.Symbol) and nt.parse(obj) and nt.parse(obj).kind == "z":
                    k, j = nt.parse(obj).indices
                    mapping[sym] = Network(self.spec).z(k, j)
                elif isinstance(obj, sympy.Basic):
                    mapping[sym] = obj  # a network symbol, or a Piecewise built from parsed parts
                # LOSS and Derivative aliases stay: the checker gives them values
        return expr.xreplace(mapping)


def _guess_column(text: str) -> int | None:
    """Where a position-less parse error ('Invalid LaTeX') most likely is: an operator
    right after another, or one at either end."""
    m = re.search(r"[-+*/^_=]\s*([+*/^_=])", text)
    if m:
        return m.start(1)
    m = re.search(r"(\\cdot|\\times|[-+*/^_])\s*$", text)
    if m:
        return m.start(1)
    m = re.match(r"\s*([*/^_+=]|\\cdot|\\times)", text)
    return m.start(1) if m else None


def _near(t: Text, col: int) -> str:
    """A few characters of the original around a column (for error messages)."""
    for i, c in enumerate(t.origin):
        if c >= col:
            return t.s[max(0, i - 6):i + 6].strip() or t.s[:12]
    return t.s[-12:]


def _find_letter(s: str, name: str) -> int | None:
    m = re.search(r"(?<![\\A-Za-z])" + re.escape(name) + r"(?![A-Za-z])", s)
    return m.start() if m else None


# ---------------------------------------------------------------------------------------------
# Files: equations and directives
# ---------------------------------------------------------------------------------------------
@dataclass
class Equation:
    """One equation of an input: its text, where it is, and the directives in force."""

    index: int
    source: str
    line: int
    column: int = 0
    where: str = ""
    at: dict | None = None  # numeric context from '% at:'
    count: str | None = None  # '% count:' argument for this equation
    mode: str = ""  # 'delta' for the delta-rule syntax
    spec_text: str | None = None  # the '% spec:' in force
    vectors: str = "row"  # '% vectors: column' for the notes' σ(W^T x + b)


@dataclass
class Document:
    equations: list[Equation]
    spec_directive: str | None = None


_DIRECTIVE = re.compile(r"^\s*%\s*(spec|at|count|where|mode|vectors)\s*:\s*(.*?)\s*$")


def split_document(text: str) -> Document:
    """Equations of a file: ``$$...$$`` blocks, ``$...$`` inline maths, or one per line.
    Lines starting with % are comments, except the directives (see the package docstring)."""
    eqs: list[Equation] = []
    spec_directive = None
    spec_text: list = [None]
    vectors: list = ["row"]
    at: dict | None = None
    pending: dict = {}
    block: list[str] | None = None
    block_line = 0

    def add(src: str, line: int, col: int = 0):
        src = src.strip()
        if not src:
            return
        eqs.append(Equation(len(eqs) + 1, src, line, col, where=pending.pop("where", ""), at=at,
                            count=pending.pop("count", None), mode=pending.pop("mode", ""),
                            spec_text=spec_text[0], vectors=vectors[0]))

    env: list | None = None  # lines of an align/aligned/equation environment outside $$

    def add_rows(lines: list[str], first_line: int):
        for src, line in block_rows(lines, first_line):
            add(src, line)

    for n, raw in enumerate(text.splitlines(), start=1):
        m = _DIRECTIVE.match(raw)
        if env is not None:
            env.append(re.sub(r"(?<!\\)%.*$", "", raw))
            if _ENV_END.search(raw):
                add_rows(env, env_line)
                env = None
            continue
        if m and block is None:
            key, val = m.groups()
            if key == "spec":
                spec_directive = spec_directive or val
                spec_text[0] = val
                at = None
            elif key == "vectors":
                vectors[0] = "column" if val.strip().startswith("col") else "row"
            elif key == "at":
                at = None if val in ("", "off", "none") else {"text": val, "line": n}
            else:
                pending[key] = val
            continue
        line = re.sub(r"(?<!\\)%.*$", "", raw)
        if block is not None:
            if "$$" in line:
                head, _, tail = line.partition("$$")
                block.append(head)
                add_rows(block, block_line)
                block = None
                line = tail
            else:
                block.append(line)
                continue
        if not line.strip():
            continue
        if block is None and "$" not in line and _ENV_BEGIN.search(line):
            env, env_line = [line], n
            if _ENV_END.search(line):
                add_rows(env, env_line)
                env = None
            continue
        if "$$" in line:
            parts = line.split("$$")
            # parts alternate outside/inside; an odd count of $$ leaves a block open
            for k, part in enumerate(parts):
                if k % 2 == 1:
                    if k == len(parts) - 1:
                        block, block_line = [part], n
                    else:
                        add_rows([part], n)
            continue
        if "$" in line.replace(r"\$", ""):
            for mm in re.finditer(r"(?<!\\)\$(.+?)(?<!\\)\$", line):
                add(mm.group(1), n, mm.start(1))
            continue
        add(line, n)
    if block is not None:
        raise InputError(f"a $$ block opened on line {block_line} is never closed")
    if env is not None:
        raise InputError(f"the environment opened on line {env_line} is never closed (no \\end{{...}})")
    return Document(eqs, spec_directive)


_ENV_BEGIN = re.compile(r"\\begin\s*\{(?:align|aligned|alignat|gather|gathered|equation|split|eqnarray)\*?\}")
_ENV_END = re.compile(r"\\end\s*\{(?:align|aligned|alignat|gather|gathered|equation|split|eqnarray)\*?\}")
_CONTINUES = re.compile(r"^\s*&?\s*(?:=|\\approx(?![a-zA-Z])|\\to(?![a-zA-Z])|\\rightarrow(?![a-zA-Z]))")
#: ``&\quad + ...``: the rest of the row above (derive's LaTeX breaks long right-hand sides so);
#: the \quad is dropped so that it does not read as ``A = B,\quad C = D``.
_CONTINUES_TERM = re.compile(r"^\s*&\s*\\q?quad(?![a-zA-Z])")
#: ``&\quad + A = B`` or ``&\quad \cdot A = B``: a chain broken mid-sum (or mid-product) whose
#: row also holds the next relation is still the row above's continuation.
_LEADS_WITH_OPERATOR = re.compile(r"\s*(?:[+\-]|\\cdot(?![a-zA-Z])|=)")


def block_rows(lines: list[str], first_line: int) -> list[tuple[str, int]]:
    r"""The equations of a block: rows split at ``\\``, a row that starts with a relation
    (``&= ...``) continuing the previous row's chain, one starting ``&\quad`` with no relation
    continuing the previous row's right-hand side, and ``A = B,\quad C = D`` two
    equations.  Returns (source, line) pairs."""
    rows: list[list] = []
    in_cases = 0
    for offset, line in enumerate(lines):
        body = _ENV_END.sub(" ", _ENV_BEGIN.sub(" ", line))
        pieces, pos = [], 0  # split at \\ except inside cases / matrices
        for m in re.finditer(r"\\begin\s*\{(?:cases|[pbvBV]?matrix|array)\}|\\end\s*\{(?:cases|[pbvBV]?matrix|array)\}|"
                             r"\\\\(?:\[[^\]]*\])?", body):
            if m.group().startswith(r"\begin"):
                in_cases += 1
            elif m.group().startswith(r"\end"):
                in_cases = max(in_cases - 1, 0)
            elif not in_cases:
                pieces.append(body[pos:m.start()])
                pos = m.end()
        pieces.append(body[pos:])
        for piece in pieces:
            if not piece.strip():
                continue
            if rows and _CONTINUES.match(piece):
                rows[-1][0] += " " + piece
            elif rows and (more := _CONTINUES_TERM.match(piece)) and (
                    not _REL.search(piece) or _LEADS_WITH_OPERATOR.match(piece, more.end())):
                rows[-1][0] += " " + piece[more.end():]  # a long right-hand side, broken
            elif rows and not rows[-1][2]:
                rows[-1][0] += " " + piece  # the same row, broken over lines
            else:
                rows.append([piece, first_line + offset, False])
        if rows and not in_cases and re.search(r"\\\\\s*(?:\[[^\]]*\])?\s*$", body):
            rows[-1][2] = True  # the row ended with \\
        elif rows and len(lines) == 1:
            rows[-1][2] = True
    if len(lines) > 1:
        for r in rows:
            r[2] = True
    out = []
    for src, line, _ in rows:
        for part in _split_quad(src):
            out.append((part, line))
    return out


def _split_quad(src: str) -> list[str]:
    r"""``A = B,\quad C = D`` -> two equations (both sides hold a relation)."""
    parts = re.split(r",?\s*\\q?quad(?![a-zA-Z])\s*(?=[^=]*=)", src)
    if len(parts) > 1 and all("=" in p for p in parts):
        return parts
    return [src]


def parse_spec_directive(text: str) -> Spec:
    """'layers=2-2-1 activations=linear loss=se [bias=false]' -> Spec."""
    fields = dict(re.findall(r"(\w+)\s*=\s*([^\s]+)", text))
    unknown = set(fields) - {"layers", "activations", "loss", "bias"}
    if unknown or "layers" not in fields:
        raise UserError(f"'% spec: {text}' should read '% spec: layers=2-2-1 activations=linear loss=se'")
    bias = fields.get("bias", "true").lower() not in ("false", "no", "0", "off")
    return make_spec(fields["layers"], fields.get("activations", "linear"), fields.get("loss", "se"), bias=bias)
