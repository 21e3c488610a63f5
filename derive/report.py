"""A derivation as a report: plain text, LaTeX, one JSON document or JSON lines, streamed.

Everything is printed through :class:`~backprop.derive.printing.NotationPrinter`; nothing
here builds a formula, it only lays out what :mod:`derivation` and :mod:`vectorised` made.
Each ``*_stream`` function yields the report in chunks, one per gradient, as the gradients
are derived, so output starts at once and memory stays flat in the number of parameters.
Every form of every parameter is printed when its own estimated size fits
(:func:`~backprop.derive.budget.form_terms`) and replaced by one line when it does not.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from json.encoder import encode_basestring

import sympy

from backprop.core.errors import UserError

from . import notation as nt
from .budget import (MAX_ASKED_TERMS, MAX_SHOWN_TERMS, VECTORISED_HINT, approx,
                     check_parameter_count, form_terms)
from .derivation import Derivation, Gradient
from .losses import PREDICTION, TARGET
from .printing import _spelled
from .vectorised import VectorisedForm

FORMS = ("chain", "memoised", "formula", "expanded")
#: Up to this many outputs L is printed term by term; past it, as Σ_j of the loss table's
#: per-output term (printing a 100 000-term sum cost minutes and said nothing more).
MAX_SPELLED_OUTPUTS = 10
#: Forms shown when --forms is not given, by format: LaTeX leaves the expanded form to be
#: asked for (a page of nested sums reads worse than the formula, and verify does not yet
#: read SymPy's ``\tanh^{2}{(...)}`` back).
DEFAULT_FORMS = {"latex": ("chain", "memoised", "formula")}


@dataclass(frozen=True)
class Forms:
    """Which forms to print (in :data:`FORMS` order) and which were asked for by name: those
    are printed past the default size, up to a hard cap."""

    shown: tuple[str, ...] = FORMS
    asked: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str | None, default: tuple[str, ...] = FORMS) -> "Forms":
        """``"chain,formula"`` -> those two, asked for; None -> ``default``, by the size rule."""
        if text is None:
            return cls(default)
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in FORMS]
        if unknown or not names:
            raise UserError(f"unknown form {(unknown or [text])[0]!r} in --forms; "
                            f"forms: {', '.join(FORMS)} (comma-separated, e.g. --forms chain,formula)")
        return cls(tuple(f for f in FORMS if f in names), frozenset(names))


def omitted(g: Gradient, form: str, forms: Forms) -> str | None:
    """None when ``form`` of ``g`` is printed; else the one line that stands in for it,
    decided from this parameter's own estimated size (the form is never built to measure)."""
    if form == "memoised":
        return None
    terms = form_terms(g.derivation.spec, g.layer, form)
    if terms <= MAX_SHOWN_TERMS or (form in forms.asked and terms <= MAX_ASKED_TERMS):
        return None
    if form in forms.asked:
        return (f"{form} form: about {approx(terms)} terms, over the {MAX_ASKED_TERMS:,}-term limit "
                f"per parameter even when asked for; not printed ({VECTORISED_HINT})")
    return f"{form} form: about {approx(terms)} terms, not printed; ask for it with --forms {form}"


@lru_cache(maxsize=8192)
def _show(printer, expr, tex: bool) -> str:
    """One expression printed, remembered: chain factors and symbols recur across parameters."""
    return printer.latex(expr) if tex else printer.text(expr)


def loss_line(d: Derivation, tex: bool = False) -> str:
    """The right-hand side of ``L = ...`` for one row, in text or LaTeX."""
    p = d.printer
    n = d.spec.n_outputs
    if n <= MAX_SPELLED_OUTPUTS:
        return p.latex(d.net.loss) if tex else p.text(d.net.loss)
    term = d.loss.per_output(n).xreplace({
        TARGET: sympy.Symbol("y_j", real=True),
        PREDICTION: sympy.Symbol("yhat_j" if tex else "ŷ_j", real=True)})
    if tex:
        return rf"\sum_{{j=1}}^{{{n}}} {p.latex(term)}"
    return f"Σ_{{j=1..{n}}} {p.text(term)}"


#: show(expr, tex) -> its print: :func:`_show` with the printer bound, or a node template's.
Show = Callable[[sympy.Expr, bool], str]


def _shower(g: Gradient) -> Show:
    return partial(_show, g.derivation.printer)


def _frac(num, den, show: Show, tex: bool) -> str:
    if tex:
        return rf"\frac{{\partial {show(num, True)}}}{{\partial {show(den, True)}}}"
    return f"∂{show(num, False)}/∂{show(den, False)}"


#: A residual layer's skip factor (∂O_kj/∂O_{k-1,j} along the skip alone): its 1, marked; verify
#: reads the LaTeX as 1 (an underbrace's label is layout), never as the total ∂O_kj/∂O_{k-1,j}.
SKIP_FACTOR = {False: "1 (skip)", True: r"\underbrace{1}_{\text{skip}}"}


def factor_name(f, show: Show, tex: bool) -> str:
    """One chain factor's name: ∂num/∂den, or a skip's marked 1."""
    return SKIP_FACTOR[tex] if f.skip else _frac(f.numerator, f.denominator, show, tex)


def chain_text(g: Gradient, tex: bool = False, show: Show | None = None) -> str:
    """∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11 = [-2(y - ŷ)] · [w^2_11] · [x_i1]."""
    show = show or _shower(g)
    dot = r" \cdot " if tex else " · "
    paths = g.chain
    names = (" + " if len(paths) > 1 else "").join(dot.join(factor_name(f, show, tex)
                                                            for f in path) for path in paths)
    lb, rb = (r"\left[", r"\right]") if tex else ("[", "]")
    values = " + ".join(dot.join(f"{lb}{show(f.value, tex)}{rb}" for f in path) for path in paths)
    return f"{names} = {values}"


def memoised_text(g: Gradient, tex: bool = False, show: Show | None = None) -> str:
    """δ_kj O_{k-1,i} (δ_kj for a bias): the memoised product, its two symbols printed by the
    notation printer in its reading order (memo symbol, then the layer below); the tests
    check it equals printing the product whole, which costs ~20× more per parameter."""
    show = show or _shower(g)
    parts = [nt.delta(g.layer, g.node)] + ([] if g.source is None else [g.local])
    return " ".join(show(s, tex) for s in parts)


def form_text(g: Gradient, form: str, tex: bool = False) -> str:
    """One form of one gradient, printed."""
    return _form_text(g, form, tex, _shower(g))


def _form_text(g: Gradient, form: str, tex: bool, show: Show) -> str:
    if form == "chain":
        return chain_text(g, tex, show)
    if form == "memoised":
        return memoised_text(g, tex, show)
    p = g.derivation.printer
    expr = getattr(g, form)
    return p.latex(expr) if tex else p.text(expr)


def gradient_dict(g: Gradient, forms: Forms = Forms()) -> dict:
    """One gradient as JSON: its name and place, then each form's text and LaTeX, or
    ``{"omitted": why, "terms": estimate}`` for a form too large to print."""
    return _gradient_dict(g, forms, _shower(g), form_text, g.name, list(g.key[1]))


def _gradient_dict(g: Gradient, forms: Forms, show: Show, text, name, index) -> dict:
    """gradient_dict, printed by ``show`` and ``text(g, form, tex)``, named ``name`` at ``index``."""
    out = {"parameter": name, "latex": show(g.parameter, True), "matrix": g.key[0],
           "index": index, "layer": g.layer}
    for form in forms.shown:
        note = omitted(g, form, forms)
        if note:
            out[form] = {"omitted": note, "terms": form_terms(g.derivation.spec, g.layer, form)}
            continue
        out[form] = {"text": text(g, form, False), "latex": text(g, form, True)}
        if form == "chain":
            out[form]["paths"] = [[{"of": show(f.numerator, False), "wrt": show(f.denominator, False),
                                    "value": show(f.value, False), "value_latex": show(f.value, True)}
                                   | ({"skip": True} if f.skip else {})
                                   for f in path] for path in g.chain]
    return out


#: Stand-ins for what differs between the weights of one node: the name, the parameter in
#: text and LaTeX, its input in text and LaTeX, the index.  Private-use characters: no
#: spelling holds one and json.dumps leaves them as they are.
_SLOTS = ("\ue000", "\ue001", "\ue002", "\ue003", "\ue004", "\ue005")
_SLOT_SPLIT = re.compile(f"([{''.join(_SLOTS)}])")
#: Forms a node template can hold: the others print g's own products, whose order may
#: depend on the input's name.
_TEMPLATED = frozenset({"chain", "memoised"})


class _NoTemplate(Exception):
    """The node's JSON depends on its weights' names other than through their spellings."""


class _NodeTemplate:
    """The JSON of every weight into one node, printed once from its first weight with the
    weight's and its input's spellings as slots, then filled per weight (~40× cheaper than
    printing each).  The chain of w^k_ij differs from w^k_1j's only in its last factor,
    ∂·/∂w^k_ij = its input (or a product peeled to end in its input, see
    :meth:`NotationPrinter.peel`); anything else raises :class:`_NoTemplate`.  The first
    weight filled after the template's own is also printed the general way and compared: the
    node falls back to the general path unless the two are byte for byte equal."""

    def __init__(self, g0: Gradient, forms: Forms, dump: Callable[[dict], str]):
        if g0.source is None or any(f not in _TEMPLATED and not omitted(g0, f, forms) for f in forms.shown):
            raise _NoTemplate
        p = g0.derivation.printer
        slots = {g0.parameter: (_SLOTS[1], _SLOTS[2]), g0.local: (_SLOTS[3], _SLOTS[4])}

        def show(expr, tex: bool) -> str:
            if expr in slots:
                return slots[expr][tex]
            if not (expr.free_symbols & slots.keys()):
                return _show(p, expr, tex)
            peeled = p.peel(expr, tex)
            if peeled is None or peeled[0] != g0.local or g0.parameter in expr.free_symbols:
                raise _NoTemplate
            return f"{peeled[1]} {slots[g0.local][tex]}"

        self.source = g0.source
        self.key, self.forms, self.dump, self.unchecked = (g0.layer, g0.node), forms, dump, 1
        text = dump(_gradient_dict(g0, forms, show, partial(_form_text, show=show), _SLOTS[0], _SLOTS[5]))
        self.parts = _SLOT_SPLIT.split(text.replace(f'"{_SLOTS[5]}"', _SLOTS[5]))
        if len(self.parts) < 3:
            raise _NoTemplate
        #: (where in parts, which of fill's spellings) for every slot
        self.slots = [(i, _SLOTS.index(slot)) for i, slot in enumerate(self.parts) if i % 2]

    def fill(self, g: Gradient) -> str | None:
        """g's JSON, or None when the check on the node's first filled weights failed."""
        if self.parts is None:
            return None
        single = g.derivation.net.single_output
        # a weight's spelling never depends on single_output, and each is used once: spelled
        # here directly; the node's local symbol (shared by its weights) is remembered
        weight, local = nt.Name("w", (g.layer, g.source, g.node)), g.local.name
        text = nt.text_name(weight)
        spell = (text, text, nt.latex_name(weight).replace("\\", "\\\\"),
                 _escaped(local, single, False), _escaped(local, single, True),
                 f"[{g.source - 1}, {g.node - 1}]")
        parts = self.parts[:]
        for i, slot in self.slots:
            parts[i] = spell[slot]
        out = "".join(parts)
        if self.unchecked and g.source != self.source:
            self.unchecked = 0
            if out != self.dump(gradient_dict(g, self.forms)):
                self.parts = None
                return None
        return out


@lru_cache(maxsize=1024)
def _escaped(symbol_name: str, single_output: bool, tex: bool) -> str:
    """A symbol's spelling (what the printer prints for it alone) escaped for a JSON string;
    remembered for the inputs a layer's nodes share (a weight's is used once)."""
    return encode_basestring(_spelled(nt.parse(symbol_name), single_output, tex))[1:-1]


def _gradient_json(gradients: Iterable[Gradient], forms: Forms, extra: dict) -> Iterator[str]:
    """``extra`` and each gradient's dict as one line of JSON, the weights of a node filled
    from one :class:`_NodeTemplate` (byte for byte what dumping :func:`gradient_dict` gives)."""
    def dump(obj: dict) -> str:
        return _dump({**extra, **obj})

    key, template = None, None
    for g in gradients:
        out = None
        if g.source is not None:
            if key != (g.layer, g.node):
                key = (g.layer, g.node)
                try:
                    template = _NodeTemplate(g, forms, dump)
                except _NoTemplate:
                    template = None
            out = template.fill(g) if template is not None else None
        yield out if out is not None else dump(gradient_dict(g, forms))


def delta_lines(d: Derivation, tex: bool = False) -> Iterator[tuple[str, str]]:
    """(δ_kj, its memo definition), output layer first; hidden ones with ∂L/∂O_kj."""
    for row in _delta_rows(d, (tex,)):
        yield row[0]


def _delta_rows(d: Derivation, styles: tuple[bool, ...]) -> Iterator[list[tuple[str, str]]]:
    """Each δ row in every style asked for (text False, LaTeX True), each definition built once;
    a hidden layer's rows filled from its first node's (:class:`_LayerRows`) where they can be."""
    layer = None
    for sym in d.deltas:
        k, j = nt.parse(sym).indices
        if layer is None or layer.k != k:
            layer = _LayerRows(d, k, styles)
        yield layer.row(j)


def _delta_row(d: Derivation, k: int, j: int, styles: tuple[bool, ...], show=None) -> list[tuple[str, str]]:
    """One δ row printed by ``show(expr, tex)`` (the printer's text and latex by default)."""
    p = d.printer
    show = show or (lambda expr, tex: p.latex(expr) if tex else p.text(expr))
    sym = nt.delta(k, j)
    grad = d.grad_output_definition(k, j) if k < d.net.depth else None
    row = []
    for tex in styles:
        rhs = show(d.deltas[sym], tex)
        if grad is not None:
            rhs += (r",\quad " if tex else ",   ") + f"{show(nt.grad_output(k, j), tex)} = {show(grad, tex)}"
        row.append((show(sym, tex), rhs))
    return row


#: Kinds of symbol that belong to one node of a layer (O_kj, z_kj, ∂L/∂O_kj, δ_kj).
_NODE_KINDS = frozenset({"O", "z", "dO", "delta"})


class _LayerRows:
    """The δ rows of one hidden layer of element-wise nodes, printed once from node 1 with its
    symbols (O_k1, z_k1, ∂L/∂O_k1, δ_k1 and the weights w^{k+1}_1m out of it) as slots, then
    filled per node with node j's spellings: ~100× cheaper than building and printing each
    ∂L/∂O_kj sum.  Node 2 is also derived and printed the general way and compared; the
    layer is printed the general way unless the two are byte for byte equal, and so is any
    layer where node 1's row holds another node's symbol (softmax) or the output layer."""

    def __init__(self, d: Derivation, k: int, styles: tuple[bool, ...]):
        self.d, self.k, self.styles, self.parts = d, k, styles, None
        if k == d.net.depth or d.spec.layers[k] < 3 or not d.net.activation(k).elementwise:
            return
        names = [nt.parse(s) for s in d.deltas[nt.delta(k, 1)].free_symbols
                 | d.grad_output_definition(k, 1).free_symbols | {nt.delta(k, 1), nt.grad_output(k, 1)}]
        if None in names or any(self._moved(n, 1) is None and n.indices[0] == k for n in names):
            return
        slots = {n: chr(0xE100 + i) for i, n in enumerate(n for n in names if self._moved(n, 1))}
        p = d.printer
        text = "\ue0ff".join("\ue0fe".join(pair) for pair in _delta_row(
            d, k, 1, styles, lambda expr, tex: p.slotted(expr, tex, slots)))
        self.slots, self.parts = slots, re.split(f"([{''.join(slots.values())}])", text)
        if self.row(2) != _delta_row(d, k, 2, styles):
            self.parts = None

    def _moved(self, name: nt.Name, j: int) -> nt.Name | None:
        """Node 1's symbol as node j's: O_k1 -> O_kj, w^{k+1}_1m -> w^{k+1}_jm; None for a
        symbol that is not node 1's own."""
        k, idx = self.k, name.indices
        if name.kind in _NODE_KINDS and idx == (k, 1):
            return nt.Name(name.kind, (k, j))
        if name.kind == "w" and idx[:2] == (k + 1, 1):
            return nt.Name("w", (k + 1, j, idx[2]))
        if name.kind == "dO" and idx == (k + 1, 1) and self.d.net.skips(k + 1):  # the skip's ∂L/∂O_{k+1,1}
            return nt.Name("dO", (k + 1, j))
        return _skip_source(self.d.net, k, name, j)

    def row(self, j: int) -> list[tuple[str, str]]:
        if self.parts is None:
            return _delta_row(self.d, self.k, j, self.styles)
        single = self.d.net.single_output
        fills = []
        for tex in self.styles:
            spell = {slot: _spelled(self._moved(n, j), single, tex) for n, slot in self.slots.items()}
            fills.append(spell)
        pieces = []
        style = 0
        for i, part in enumerate(self.parts):
            pieces.append(fills[style][part] if i % 2 else part)
            style += part.count("\ue0ff") if not i % 2 else 0
        return [tuple(pair.split("\ue0fe")) for pair in "".join(pieces).split("\ue0ff")]


def _skip_source(net, k: int, name: nt.Name, j: int) -> nt.Name | None:
    """On a residual layer k, node 1's skip source O_{k-1,1} (x_i1 for k = 1) as node j's."""
    if not net.skips(k):
        return None
    if name.kind == "O" and name.indices == (k - 1, 1):
        return nt.Name("O", (k - 1, j))
    if name.kind == "x" and k == 1 and name.indices == (1,):
        return nt.Name("x", (j,))
    return None


def forward_lines(d: Derivation) -> Iterator[tuple[str, str]]:
    """(O_kj, its definition) in text for every node, layer by layer.  A layer of element-wise
    nodes is printed once from node 1 with node 1's own symbols as slots and filled per node,
    checked on node 2 against the general path (building and printing 50 definitions
    σ(Σ of 50 terms) one by one was ~1.3 s before 50-50-1's first gradient)."""
    p, net = d.printer, d.net
    for k in range(1, net.depth + 1):
        fill = _forward_template(d, k)
        for j in range(1, d.spec.layers[k] + 1):
            yield fill(j) if fill is not None else (p.text(net.O(k, j)), p.text(net.definition(k, j)))


def _forward_template(d: Derivation, k: int):
    """``j -> (lhs, rhs)`` filling layer k's node-1 line, or None where the layer is printed
    node by node (narrow layers, softmax, a line that holds another node's symbols)."""
    net, p = d.net, d.printer
    if d.spec.layers[k] < 3 or not net.activation(k).elementwise:
        return None

    def moved(name: nt.Name, j: int) -> nt.Name | None:
        """Node 1's own symbol as node j's: w^k_i1 -> w^k_ij, b_k1 -> b_kj, O_k1 -> O_kj."""
        idx = name.indices
        if name.kind == "w" and idx[0] == k and idx[2] == 1:
            return nt.Name("w", (k, idx[1], j))
        if name.kind in ("b", "O") and idx == (k, 1):
            return nt.Name(name.kind, (k, j))
        if name.kind == "yhat" and idx == (1,) and k == net.depth:
            return nt.Name("yhat", (j,))
        return _skip_source(net, k, name, j)

    lhs, rhs = net.O(k, 1), net.definition(k, 1)
    names = [nt.parse(s) for s in rhs.free_symbols | {lhs}]
    if None in names:
        return None
    own = [n for n in names if moved(n, 1) is not None]
    slots = {n: chr(0xE100 + i) for i, n in enumerate(own)}
    by_slot = {v: n for n, v in slots.items()}
    parts = re.split(f"([{''.join(slots.values())}])",
                     f"{p.slotted(lhs, False, slots)}\ue0ff{p.slotted(rhs, False, slots)}")
    single = net.single_output

    def fill(j: int) -> tuple[str, str]:
        text = "".join(_spelled(moved(by_slot[part], j), single, False) if i % 2 else part
                       for i, part in enumerate(parts))
        return tuple(text.split("\ue0ff"))

    if fill(2) != (p.text(net.O(k, 2)), p.text(net.definition(k, 2))):
        return None
    return fill


def _header(d: Derivation, vectorised: VectorisedForm | None, forms: Forms, count: int | None) -> dict:
    spec = d.spec
    out = {
        "spec": {"layers": list(spec.layers), "activations": list(spec.activations),
                 "loss": spec.loss, "bias": spec.bias},
        "n_parameters": spec.n_parameters,
        "loss": {"text": loss_line(d), "latex": loss_line(d, tex=True)},
        "warnings": list(d.warnings),
        "assumptions": list(d.assumptions),
    }
    if count is not None:
        out["forms"] = list(forms.shown)
        out["n_gradients"] = count
    if vectorised is not None:
        out["vectorised"] = [{"lhs": l, "rhs": r, "latex": f"{lt} = {rt}"}
                             for (l, r), (lt, rt) in zip(vectorised.equations("text"),
                                                          vectorised.equations("latex"))]
    return out


def _deltas(d: Derivation) -> Iterator[dict]:
    for (a, b), (c, e) in _delta_rows(d, (False, True)):
        yield {"text": f"{a} = {b}", "latex": f"{c} = {e}"}


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def json_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """One JSON document, built incrementally: the header (spec, loss, δ table) indented,
    then one gradient object per line inside ``"gradients": [...]``, then the tail."""
    head = _header(d, vectorised, forms, count if gradients is not None else None)
    if gradients is None:
        yield json.dumps(head, indent=2, ensure_ascii=False) + "\n"
        return
    head["deltas"] = list(_deltas(d))
    yield json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ',\n  "gradients": ['
    sep = "\n    "
    for line in _gradient_json(gradients, forms, {}):
        yield sep + line
        sep = ",\n    "
    yield "\n  ]\n}\n"


def jsonl_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                 vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """JSON lines: a header object, one object per δ and per gradient, then an end object
    (so a reader can tell a complete stream from an interrupted one)."""
    yield _dump({"type": "header", **_header(d, vectorised, forms,
                                              count if gradients is not None else None)}) + "\n"
    if gradients is None:
        return
    for delta in _deltas(d):
        yield _dump({"type": "delta", **delta}) + "\n"
    n = 0
    for line in _gradient_json(gradients, forms, {"type": "gradient"}):
        n += 1
        yield line + "\n"
    yield _dump({"type": "end", "n_gradients": n}) + "\n"


def gradient_text(g: Gradient, forms: Forms = Forms()) -> str:
    """∂L/∂w^1_11 and one line per form (or the line saying why a form is not printed)."""
    lines = [f"∂L/∂{g.name}"]
    for form in forms.shown:
        note = omitted(g, form, forms)
        lines.append(f"  {form:<9} {f'[{note}]' if note else form_text(g, form)}")
    return "\n".join(lines) + "\n"


def text_stream(d: Derivation, gradients: Iterable[Gradient] | None, forms: Forms = Forms(),
                vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """The plain-text report: header, forward pass, δ table, then one block per gradient."""
    p = d.printer
    spec = d.spec
    head = [f"{spec.describe()}: {spec.n_parameters} parameters",
            f"L = {loss_line(d)}   (one row; over a batch, the mean over rows)",
            *[f"assuming {a}" for a in d.assumptions], ""]
    head += [f"warning: {w}" for w in d.warnings]
    yield "\n".join(head) + "\n"
    if gradients is not None:
        lines = ["Forward pass", *(f"  {lhs} = {rhs}" for lhs, rhs in forward_lines(d))]
        lines += ["", "Memoised deltas δ_kj = ∂L/∂z_kj, each computed once from the layer after it"]
        yield "\n".join(lines) + "\n"
        yield "".join(f"  {lhs} = {rhs}\n" for lhs, rhs in delta_lines(d))
        order = "" if count not in (None, spec.n_parameters) else ", in backprop order"
        yield f"\nGradients{order}\n"
        for g in gradients:
            yield gradient_text(g, forms)
    if vectorised is not None:
        yield "\n" if gradients is not None else ""
        yield "Vectorised form (n rows; ⊙ element-wise)\n"
        yield "".join(f"  {lhs} = {rhs}\n" for lhs, rhs in vectorised.equations("text"))


def _aligned(lhs: str, rhs: str) -> list[str]:
    """align* rows for ``lhs &= rhs`` without their line breaks: broken across lines by
    :func:`backprop.derive.teaching.aligned_rows` where that module exists, else one row."""
    try:
        from .teaching import aligned_rows
    except ImportError:
        return [f"{lhs} &= {rhs}".lstrip()]
    return [row.rstrip().removesuffix(r"\\").rstrip() for row in aligned_rows(lhs, rhs)]


class _Rows:
    """align* rows joined by ``\\\\`` with none after the last (a trailing break adds an empty
    line); comments wait with the row before them, since a comment would swallow its break."""

    def __init__(self):
        self._pending: list[str] = []

    def add(self, row: str) -> str:
        out = self.flush(r" \\")
        self._pending = [row]
        return out

    def comment(self, text: str) -> None:
        self._pending.append(f"% {text}")

    def flush(self, end: str = "") -> str:
        if not self._pending:
            return ""
        row, *comments = self._pending
        self._pending = []
        return row + end + "\n" + "".join(c + "\n" for c in comments)


def latex_stream(d: Derivation, gradients: Iterable[Gradient] | None,
                 forms: Forms = Forms(DEFAULT_FORMS["latex"]),
                 vectorised: VectorisedForm | None = None, count: int | None = None) -> Iterator[str]:
    """One align* environment: L, the δ table, then each gradient's forms as ``&=`` rows (a
    form too large to print becomes a ``%`` comment saying so)."""
    p = d.printer
    rows = _Rows()
    yield f"% backprop derive: {d.spec.describe()}\n" + "\\begin{align*}\n"
    yield "".join(rows.add(r) for r in _aligned("L", loss_line(d, tex=True)))
    if gradients is not None:
        yield "".join(rows.add(f"{lhs} &= {rhs}") for lhs, rhs in delta_lines(d, tex=True))
        for g in gradients:
            lhs = rf"\frac{{\partial L}}{{\partial {_show(p, g.parameter, True)}}}"
            out = []
            for form in forms.shown:
                note = omitted(g, form, forms)
                if note:
                    rows.comment(f"{g.name}: {note}")
                    continue
                out += [rows.add(r) for r in _aligned(lhs, form_text(g, form, tex=True))]
                lhs = ""
            yield "".join(out)
    if vectorised is not None:
        yield "".join(rows.add(f"{lhs} &= {rhs}") for lhs, rhs in vectorised.equations("latex"))
    yield rows.flush() + "\\end{align*}\n"


#: --format -> the stream that writes it.
STREAMS = {"text": text_stream, "latex": latex_stream, "json": json_stream, "jsonl": jsonl_stream}


def _whole(stream, d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    if per_parameter:
        check_parameter_count(d.spec, VECTORISED_HINT)
    forms = Forms(DEFAULT_FORMS.get(stream.__name__.removesuffix("_stream"), FORMS))
    return "".join(stream(d, d.gradients if per_parameter else None, forms, vectorised,
                          d.spec.n_parameters))


def as_text(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    """The whole text report as one string (the CLI streams it instead)."""
    return _whole(text_stream, d, vectorised, per_parameter)


def as_latex(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> str:
    """The whole LaTeX report as one string (the CLI streams it instead)."""
    return _whole(latex_stream, d, vectorised, per_parameter)


def as_dict(d: Derivation, vectorised: VectorisedForm | None, per_parameter: bool) -> dict:
    """The JSON report as a dict (for library callers; the CLI streams it)."""
    return json.loads(_whole(json_stream, d, vectorised, per_parameter))
