r"""LaTeX for teaching: a derivation laid out to fit an A4 page or a 4:3 slide.

Nothing here derives or spells a formula: the maths comes from :mod:`report` (chain, deltas,
loss) and the derivation's printer; this module only *lays it out*.

* :func:`rendered_width` estimates how wide a piece of LaTeX maths renders, in units of
  5 pt (10 pt maths; calibrated against pdflatex's box widths): a digit 1, a lower-case
  letter 1.3, a capital 1.5, a sub/superscript 0.75 of its level (stacked scripts
  ``w^{2}_{11}`` count the wider), ``+``/``-`` 2.4 and ``=`` 2.7 with their spacing,
  ``\cdot`` 1.4, ``\frac{a}{b}`` the wider of a and b plus 0.5, a ``\left(``/``\right)``
  delimiter 0.8 (``\left.`` 0), ``\text{...}`` 0.9 a character, ``\quad`` 2, spaces and
  braces 0.  An A4 article's 345 pt are about 69 units, a 4:3 slide's about 55.
* :func:`aligned_rows` breaks ``lhs = rhs`` into ``align*`` rows no wider than a budget
  (a row's width counts the left-hand side, because continuation rows are indented to it).
  Breaks are only at the top level of the printed LaTeX: before ``=``, ``+``/``-``,
  ``\cdot``, or between two factors; never inside braces (``\frac``, scripts), plain
  brackets or environments.  A ``\left( ... \right)`` group too wide for a row is broken
  inside, closing the row with ``\right.`` and opening the next with ``\left.`` (as many as
  are open), so every row is balanced.  The break that keeps the most at the top level is
  chosen among those that fill at least half the row.  An atom with nowhere to break (a
  huge ``\frac``) keeps a row of its own and overflows: :func:`document` then prints a
  one-line note instead of the form.
* :func:`document` writes a complete article (A4) or beamer (4:3) document: forward pass
  first, then the memoised deltas, then each gradient in the chosen forms.  A form too large
  per parameter is a one-line ``\text{...}`` note, never printed huge.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from . import notation as nt
from .report import FORMS, Forms, delta_lines, form_text, loss_line, omitted

#: Maths per row of an A4 article, in rendered_width units: its 345 pt are 69, less the
#: estimate's error (up to 5 % low against pdflatex on long rows of weights).
A4_WIDTH = 65
#: Maths per row of a 4:3 beamer slide: ~307 pt of 11 pt maths are ~55 units, less a margin.
SLIDE_WIDTH = 45
#: Height of one beamer frame's body in rows of 16.6 pt (measured: ~216 pt below the title); a
#: row with a fraction counts 1.6, a block's display skips 0.7 and a heading 0.5 more.
SLIDE_HEIGHT = 12.5
_SKIPS, _HEADING = 0.7, 0.5
#: style -> (row width, document class line).
STYLES = {
    "standalone": (A4_WIDTH, r"\documentclass[a4paper]{article}"),
    "beamer": (SLIDE_WIDTH, r"\documentclass[aspectratio=43]{beamer}"),
}

# -- the width estimate ---------------------------------------------------------------------
_TOKEN = re.compile(r"\\[a-zA-Z]+|\\.|\s+|.", re.S)
_SCRIPT = 0.75
#: binary operators and relations, with the space TeX puts around them
_BINARY = {"+": 2.4, "-": 2.4, "=": 2.7, "<": 2.7, ">": 2.7, r"\cdot": 1.4, r"\times": 2.4,
           r"\odot": 2.4, r"\leftarrow": 3.7, r"\to": 3.7, r"\rightarrow": 3.7, r"\leq": 2.7,
           r"\geq": 2.7, r"\approx": 2.7, r"\neq": 2.7, r"\gets": 3.7}
_SPACING = {r"\quad": 2.0, r"\qquad": 4.0, r"\,": 0.3, r"\;": 0.5, r"\:": 0.4, r"\!": 0.0,
            "\\ ": 0.5, "~": 0.5}
_TEXT_ARG = {r"\text", r"\mathrm", r"\operatorname", r"\textrm", r"\textit", r"\mathit"}
_ACCENT = {r"\hat", r"\bar", r"\tilde", r"\vec", r"\dot", r"\mathbb", r"\mathbf", r"\boldsymbol",
           r"\mathcal", r"\widehat", r"\overline"}
_FUNCTIONS = {r"\log", r"\ln", r"\exp", r"\max", r"\min", r"\tanh", r"\sinh", r"\cosh", r"\sin",
              r"\cos", r"\sgn"}
_BIG = {r"\sum", r"\prod", r"\int"}
_ZERO = {r"\displaystyle", r"\limits", r"\nolimits", "&", "\\\\", "{", "}"}


def _tokens(tex: str) -> list[str]:
    return _TOKEN.findall(tex)


def rendered_width(tex: str) -> float:
    """Estimated rendered width of LaTeX maths in 10 pt characters (see the module doc)."""
    return _sequence(_tokens(tex), 0, 1.0, top=True)[0]


def _sequence(toks: list[str], i: int, scale: float, top: bool = False) -> tuple[float, int]:
    """Width of tokens from i up to the closing brace (or the end); returns (width, next i)."""
    total = 0.0
    while i < len(toks):
        t = toks[i]
        if t.isspace():
            i += 1
            continue
        if t == "}" and not top:
            return total, i + 1
        if t in "^_":
            w, i = _argument(toks, i + 1, scale * _SCRIPT)
            if i < len(toks) and toks[i] in "^_" and toks[i] != t:
                w2, i = _argument(toks, i + 1, scale * _SCRIPT)
                w = max(w, w2)
            total += w + 0.3 * scale  # \scriptspace and the italic correction
            continue
        w, i = _atom(toks, i, scale)
        total += w
    return total, i


def _argument(toks: list[str], i: int, scale: float) -> tuple[float, int]:
    """One macro argument: a {group} or a single token."""
    while i < len(toks) and toks[i].isspace():
        i += 1
    if i >= len(toks):
        return 0.0, i
    if toks[i] == "{":
        return _sequence(toks, i + 1, scale)
    return _atom(toks, i, scale)


def _raw(toks: list[str], i: int) -> tuple[str, int]:
    """The source text of one argument (for \\text{...})."""
    while i < len(toks) and toks[i].isspace():
        i += 1
    if i < len(toks) and toks[i] == "{":
        depth, j = 1, i + 1
        while j < len(toks) and depth:
            depth += {"{": 1, "}": -1}.get(toks[j], 0)
            j += 1
        return "".join(toks[i + 1:j - 1]), j
    return (toks[i], i + 1) if i < len(toks) else ("", i)


def _atom(toks: list[str], i: int, scale: float) -> tuple[float, int]:
    t = toks[i]
    if t == "{":
        return _sequence(toks, i + 1, scale)
    if t in (r"\left", r"\right"):
        i += 1
        while i < len(toks) and toks[i].isspace():
            i += 1
        return (0.0 if i >= len(toks) or toks[i] == "." else 0.8 * scale), i + 1
    if t == r"\frac":
        a, i = _argument(toks, i + 1, scale)
        b, i = _argument(toks, i, scale)
        return max(a, b) + 0.5 * scale, i  # \nulldelimiterspace either side
    if t in _TEXT_ARG:
        text, i = _raw(toks, i + 1)
        return 0.9 * scale * len(text), i
    if t in _ACCENT:
        return _argument(toks, i + 1, scale)
    if t in (r"\begin", r"\end"):
        return 0.0, _raw(toks, i + 1)[1]
    if t in _SPACING:
        return _SPACING[t] * scale, i + 1
    if t in _BINARY:
        return _BINARY[t] * scale, i + 1
    if t in _FUNCTIONS:
        return (len(t) - 1) * scale, i + 1
    if t in _BIG:
        return 1.5 * scale, i + 1
    if t in _ZERO:
        return 0.0, i + 1
    if t in (",", ";", ".", "!"):
        return 0.5 * scale, i + 1
    if t == r"\partial":
        return 1.2 * scale, i + 1
    return scale * (1.5 if t.isupper() else 1.3 if t.isalpha() else 1.1 if t[0] == "\\" else 1.0), i + 1


def row_width(lhs: str, row: str) -> float:
    """Width of one align* row as typeset: the left-hand side (continuation rows are
    indented to it) plus the row's maths after ``&``."""
    body = row.rstrip().removesuffix("\\\\")
    _, _, right = body.partition("&")
    return rendered_width(lhs) + rendered_width(right)


# -- breaking -------------------------------------------------------------------------------
_RANK = {"=": 0, "+": 1, "-": 1, r"\cdot": 2, r"\times": 2, r"\odot": 2}
_FACTOR = 3
_OPEN, _CLOSE = "([", ")]"


def _breaks(tex: str) -> list[tuple[int, int, int, int]]:
    """Top-level break opportunities: (start, end) of the space, depth (open \\left groups),
    rank (0 relation, 1 sum, 2 product, 3 juxtaposed factors)."""
    out = []
    brace = paren = env = lefts = 0
    prev_operand = after_big = False
    delim = None  # "open"/"close" while the delimiter after \left/\right is due
    space = None
    for m in _TOKEN.finditer(tex):
        t = m.group()
        if t.isspace():
            space = m
            continue
        if delim:
            prev_operand, delim, space = delim == "close", None, None
            continue
        if space is not None and brace == paren == env == 0 and prev_operand:
            if after_big:
                after_big = False
            elif t not in (r"\right", ",", "^", "_") and t not in _CLOSE:
                out.append((space.start(), space.end(), lefts, _RANK.get(t, _FACTOR)))
        space = None
        if t == "{":
            brace += 1
        elif t == "}":
            brace = max(brace - 1, 0)
        elif t == r"\left":
            lefts, delim = lefts + 1, "open"
        elif t == r"\right":
            lefts, delim = max(lefts - 1, 0), "close"
        elif t == r"\begin":
            env += 1
        elif t == r"\end":
            env = max(env - 1, 0)
        elif t in _OPEN:
            paren += 1
        elif t in _CLOSE:
            paren = max(paren - 1, 0)
        elif t in _BIG:
            after_big = True
        prev_operand = t == "}" or t not in _BINARY and t not in ("{", r"\begin")
    return out


def _pieces(tex: str, first: float, rest: float) -> list[str]:
    """``tex`` cut into rows of at most ``first`` (then ``rest``) width where it can be."""
    cuts = _breaks(tex)
    bounds = [(0, 0, 0, 0)] + cuts + [(len(tex), len(tex), 0, 0)]
    widths = [rendered_width(tex[bounds[n][1]:bounds[n + 1][0]]) for n in range(len(bounds) - 1)]
    rows, start = [], 0  # segment index the current row starts at
    while start < len(widths):
        limit = first if not rows else rest
        run, fit = 0.0, start - 1
        for n in range(start, len(widths)):
            if run + widths[n] > limit:
                break
            run += widths[n]
            fit = n
        if fit == len(widths) - 1:
            end = fit
        elif fit < start:
            end = start  # one atom wider than the row: it overflows alone
        else:
            end = _best_cut(bounds, widths, start, fit, limit)
        rows.append((start, end))
        start = end + 1
    out = []
    for a, b in rows:
        text = tex[bounds[a][1]:bounds[b + 1][0]]
        opened, closed = bounds[a][2], bounds[b + 1][2]  # the sentinels have depth 0
        out.append(r"\left. " * opened + text + r" \right." * closed)
    return out


def _best_cut(bounds, widths, start: int, fit: int, limit: float) -> int:
    """The last segment of a row: the shallowest, strongest break that fills half the row."""
    run, best = 0.0, None
    for n in range(start, fit + 1):
        run += widths[n]
        if run >= limit / 2:
            depth, rank = bounds[n + 1][2], bounds[n + 1][3]
            key = (depth, rank, -n)
            if best is None or key < best[0]:
                best = (key, n)
    return fit if best is None else best[1]


def aligned_rows(lhs: str, rhs: str, width: int = 60) -> list[str]:
    r"""align* rows for ``lhs = rhs``: ``lhs &= part \\``, then ``&\quad part \\`` ...

    The right-hand side is broken at its top level (see the module doc) so that no row is
    wider than ``width`` as measured by :func:`row_width` (the left-hand side included); a
    single unbreakable atom wider than that keeps a row of its own.  Joining the rows and
    dropping ``&``, ``\\``, ``\quad`` and the ``\right.``/``\left.`` pairs gives back
    ``lhs = rhs``.
    """
    return _rows(lhs, rhs, width, first=f"{lhs} &= ")


def _rows(lhs: str, rhs: str, width: float, first: str) -> list[str]:
    room = max(width - rendered_width(lhs) - rendered_width("="), width / 3)
    parts = _pieces(rhs.strip(), room, room)
    return [first + parts[0] + r" \\"] + [rf"&\quad {p} \\" for p in parts[1:]]


def block_rows(equations: Sequence[tuple[str, str]], width: float, lhs_column: str = "") -> list[str]:
    """aligned_rows for several ``(lhs, rhs)`` sharing one align*: its left column is as wide
    as the widest left-hand side (or ``lhs_column``), so every row's budget counts that."""
    column = max([rendered_width(lhs) for lhs, _ in equations] + [rendered_width(lhs_column)])
    return [row for lhs, rhs in equations
            for row in aligned_rows(lhs, rhs, width - column + rendered_width(lhs))]


def chain_rows(lhs: str, sides: Sequence[str], width: float, show_lhs: bool = True) -> list[str]:
    r"""align* rows for ``lhs = side = side ...``: each side starts an ``&=`` row and is
    broken like :func:`aligned_rows` (``show_lhs=False`` continues a chain begun above)."""
    rows: list[str] = []
    for side in sides:
        rows += _rows(lhs, side, width, first=f"{lhs} &= " if show_lhs and not rows else "&= ")
    return rows


def _fits(lhs: str, rows: Sequence[str], width: float) -> bool:
    return all(row_width(lhs, r) <= width for r in rows)


# -- one gradient --------------------------------------------------------------------------
def _forms(forms) -> Forms:
    """A report.Forms from a sequence of names (kept in the given order), or as given."""
    if isinstance(forms, Forms):
        return forms
    names = tuple(forms)
    unknown = [f for f in names if f not in FORMS]
    if unknown:
        raise ValueError(f"unknown form(s) {', '.join(unknown)}; choose among {', '.join(FORMS)}")
    return Forms(names, frozenset())


def _note_row(lhs: str, shown: str, note: str, width: float) -> str:
    r"""``&\quad \text{note}``; the part before ';' when the whole note is too wide."""
    for words in (note, note.split(";")[0], note.split(":")[0] + ": not printed"):
        row = f"{shown}&\\quad \\text{{{text(words)}}} \\\\"
        if row_width(lhs, row) <= width:
            break
    return row


def gradient_rows(g, forms, width: float) -> list[str]:
    r"""align* rows of one gradient: ``\frac{\partial L}{\partial P} &= ...`` then ``&= ...``
    for each further form; the chain takes two (the factors' names, then their values).  A
    form too large for this parameter (report.omitted) or too wide to typeset is one
    ``\text{...}`` row instead."""
    forms = _forms(forms)
    lhs = rf"\frac{{\partial L}}{{\partial {g.derivation.printer.latex(g.parameter)}}}"
    rows: list[str] = []
    for form in forms.shown:
        note = omitted(g, form, forms)
        if note is None:
            printed = form_text(g, form, tex=True)
            sides = printed.partition(" = ")[::2] if form == "chain" else (printed,)
            block = chain_rows(lhs, sides, width, show_lhs=not rows)
            if _fits(lhs, block, width):
                rows += block
                continue
            widest = max(row_width(lhs, r) for r in block)
            note = f"{form} form: {widest:.0f} characters wide, too wide to typeset; see --format text"
        rows.append(_note_row(lhs, "" if rows else f"{lhs} ", note, width))
    return rows


# -- the document -----------------------------------------------------------------------------
_TEXT_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                 "δ": r"$\delta$", "ŷ": r"$\hat{y}$", "∂": r"$\partial$", "Σ": r"$\Sigma$",
                 "η": r"$\eta$", "⊙": r"$\odot$", "·": r"$\cdot$", "−": "-", "→": r"$\to$",
                 "²": r"$^2$", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "…": "...",
                 "σ": r"$\sigma$", "≈": r"$\approx$"}


def text(s: str) -> str:
    """Plain text made safe for LaTeX: specials escaped, the notes' symbols as maths,
    anything else outside ASCII as '?'."""
    return "".join(_TEXT_ESCAPES.get(c, c if c.isascii() else "?") for c in s)


def _align(rows: Sequence[str]) -> str:
    rows = list(rows)
    rows[-1] = rows[-1].rstrip().removesuffix("\\\\").rstrip()
    return "\\begin{align*}\n" + "\n".join(rows) + "\n\\end{align*}\n"


def _layer_forward(d, k: int) -> list[tuple[str, str]]:
    """z_kj = Σ_i w^k_ij O_{k-1,i} + b_kj and O_kj = g(z_kj) for every node of layer k (and
    L = ... after the output layer), as (lhs, rhs)."""
    p, net = d.printer, d.net
    act = net.activation(k)
    width_k = d.spec.layers[k]
    zs = {nt.preactivation(k, m): net.z(k, m) for m in range(1, width_k + 1)}
    equations = []
    for j in range(1, width_k + 1):
        z = nt.preactivation(k, j)
        g = act.sym(z) if act.elementwise else net.definition(k, j).xreplace(
            {e: z_ for z_, e in zs.items()})
        if act.elementwise and net.skips(k):  # a residual layer: O_kj = g(z_kj) + O_{k-1,j}
            g = g + net.O(k - 1, j)
        equations += [(p.latex(z), p.latex(zs[z])), (p.latex(net.O(k, j)), p.latex(g))]
    if k == net.depth:
        equations.append(("L", loss_line(d, tex=True)))
    return equations


def _deltas(d) -> dict[int, list[tuple[str, str]]]:
    r"""The memo table by layer, as (lhs, rhs): δ_kj = ..., and ∂L/∂O_kj = Σ_m w δ for
    hidden ones (report prints the two on one line, joined by ``,\quad``)."""
    out: dict[int, list[tuple[str, str]]] = {}
    for sym, (lhs, rhs) in zip(d.deltas, delta_lines(d, tex=True)):
        equations = out.setdefault(nt.parse(sym).indices[0], [])
        first, _, second = rhs.partition(r",\quad ")
        equations.append((lhs, first))
        if second:
            equations.append(tuple(second.partition(" = ")[::2]))
    return out


def _height(rows: Sequence[str]) -> float:
    return sum(1.6 if r"\frac" in r else 1.0 for r in rows)


def preamble(style: str, title: str) -> Iterator[str]:
    """The document's opening lines, up to \\begin{document}."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose among {', '.join(STYLES)}")
    yield f"% {text(title)} (written by backprop; regenerate rather than edit)\n"
    yield STYLES[style][1] + "\n"
    yield "\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
    if style == "standalone":
        yield "\\allowdisplaybreaks\n"
    yield "\\begin{document}\n"


def document(d, gradients: Iterable, forms: Sequence[str], style: str) -> Iterator[str]:
    """Yield LaTeX chunks of a complete document.

    Parameters
    ----------
    d : Derivation
    gradients : iterable of Gradient
        The gradients to show (a subset is fine), in the order given.
    forms : sequence of str
        Among ``chain``, ``memoised``, ``formula``, ``expanded``.
    style : {"standalone", "beamer"}
        An A4 article (forward pass, deltas, gradients) or 4:3 slides with one frame per
        layer, output layer first (the layer's forward pass, its deltas, its gradients),
        split into "(continued)" frames when too tall.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose among {', '.join(STYLES)}")
    forms = _forms(forms)
    width = STYLES[style][0]
    title = f"Backpropagation in the {d.spec.describe()}"
    yield from preamble(style, title)
    if style == "standalone":
        yield from _article(d, gradients, forms, width, title)
    else:
        yield from _slides(d, gradients, forms, width)
    yield "\\end{document}\n"


def _article(d, gradients, forms, width, title) -> Iterator[str]:
    yield f"\\section*{{{text(title)}}}\n"
    yield "One row; over a batch, the mean over rows.\n\n"
    for w in d.warnings:
        yield f"\\noindent Warning: {text(w)}\n\n"
    yield "\\subsection*{Forward pass}\n"
    yield _align(block_rows([e for k in range(1, d.net.depth + 1) for e in _layer_forward(d, k)], width))
    yield "\\subsection*{Deltas, output layer first}\n"
    deltas = _deltas(d)
    yield _align(block_rows([e for k in sorted(deltas, reverse=True) for e in deltas[k]], width))
    yield "\\subsection*{Gradients}\n"
    for g in gradients:
        yield _align(gradient_rows(g, forms, width))


def _slides(d, gradients, forms, width) -> Iterator[str]:
    by_layer: dict[int, list] = {}
    for g in gradients:
        by_layer.setdefault(g.layer, []).append(g)
    deltas = _deltas(d)
    for k in range(d.net.depth, 0, -1):
        blocks = [("Forward pass", block_rows(_layer_forward(d, k), width)),
                  ("Deltas", block_rows(deltas.get(k, []), width))]
        blocks += [(None, gradient_rows(g, forms, width)) for g in by_layer.get(k, [])]
        yield from _frames(f"Layer {k} of {d.net.depth}", blocks)


def _frames(title: str, blocks: list[tuple[str | None, list[str]]]) -> Iterator[str]:
    """Frames holding the blocks in order, a new "(continued)" frame whenever one is full."""
    pieces = []  # (heading, rows) cut so that each fits one frame
    for heading, rows in blocks:
        chunk: list[str] = []
        for row in rows:
            if chunk and _height(chunk) + _height([row]) + _SKIPS + _HEADING > SLIDE_HEIGHT:
                pieces.append((heading, chunk))
                heading, chunk = None, []
            chunk.append(row)
        if chunk:
            pieces.append((heading, chunk))
    frame: list[str] = []
    used, count = 0.0, 0
    for heading, rows in pieces:
        need = _height(rows) + _SKIPS + (_HEADING if heading else 0)
        if frame and used + need > SLIDE_HEIGHT:
            yield _frame(title, count, frame)
            frame, used, count = [], 0.0, count + 1
        if heading:
            frame.append(f"\\textbf{{{heading}}}\n")
        frame.append(_align(rows))
        used += need
    if frame:
        yield _frame(title, count, frame)


def _frame(title: str, count: int, body: list[str]) -> str:
    name = title if count == 0 else f"{title} (continued)"
    return f"\\begin{{frame}}[t]{{{name}}}\n" + "".join(body) + "\\end{frame}\n"


def standalone(body: Iterable[str], title: str) -> Iterator[str]:
    """An A4 article around ready-made LaTeX chunks (``backprop step --standalone``)."""
    yield from preamble("standalone", title)
    yield f"\\section*{{{text(title)}}}\n"
    yield from body
    yield "\\end{document}\n"


__all__ = ["A4_WIDTH", "SLIDE_HEIGHT", "SLIDE_WIDTH", "aligned_rows", "block_rows", "chain_rows", "document",
           "gradient_rows", "preamble", "rendered_width", "row_width", "standalone", "text"]
