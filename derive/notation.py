"""The notes' notation as SymPy symbols: one constructor per kind of name, and the way back.

Layers are numbered from 1 (layer 0 is the input). ``w^k_ij`` is the weight that ends in
layer k, from node i of layer k-1 to node j of layer k; ``b_kj``, ``z_kj`` and ``O_kj`` are
node j's bias, weighted sum and output in layer k; ``x_ij`` is feature j of row i; ``y`` and
``ŷ`` are the target and the output (``ŷ_j`` is ``O_Lj``, written ŷ as the notes do).

Every symbol is named ``<kind>_<index>_<index>...`` (``w_2_1_1``), so a name alone says what
it is; :func:`parse` reads it back and the printers in :mod:`backprop.derive.printing` spell
it in the notes' style (``w^2_11``, ``w^{2}_{11}``).  Memo symbols ``delta_k_j`` (∂L/∂z_kj)
and ``dO_k_j`` (∂L/∂O_kj) name the quantities backprop computes once and reuses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sympy

#: kind -> (text stem, LaTeX stem, number of indices)
KINDS = {
    "w": ("w", "w", 3),
    "b": ("b", "b", 2),
    "z": ("z", "z", 2),
    "O": ("O", "O", 2),
    "x": ("x", "x", 1),
    "y": ("y", "y", 1),
    "yhat": ("ŷ", r"\hat{y}", 1),
    "delta": ("δ", r"\delta", 2),
    "dO": ("∂L/∂O", r"\frac{\partial L}{\partial O}", 2),
}


@dataclass(frozen=True)
class Name:
    """A parsed symbol name: its kind and integer indices (``w``, (2, 1, 1))."""

    kind: str
    indices: tuple[int, ...]

    @property
    def symbol(self) -> sympy.Symbol:
        return _symbol(self.kind, self.indices)


class NotesSymbol(sympy.Symbol):
    """A symbol of the notes that SymPy's own LaTeX and pretty printers spell as the notes do
    (Jupyter shows ``w^{2}_{11}``, ``x_{i1}``, ``\\hat{y}_{1}``, not ``w_{2 1 1}``).

    Display only: ``str()`` and ``.name`` stay ``w_2_1_1`` (identifiers, sort keys, code
    generation read them).  A plain ``Symbol("w_2_1_1", real=True)`` is a different symbol
    (SymPy compares types), so every symbol of the notes is made here, by :func:`_symbol`.
    Outside a network SymPy's printers cannot know there is one output, so ŷ keeps its index
    (``\\hat{y}_{1}``); the network's own printer asks ``single_output`` and writes ``\\hat{y}``.
    """

    def _spelling(self, printer, spell) -> str:
        name = parse(self)
        if name is None:  # a NotesSymbol made by hand with another name
            return self.name
        return spell(name, bool(getattr(printer, "_single_output", False)))

    def _latex(self, printer) -> str:
        chosen = printer._settings.get("symbol_names") or {}
        if self in chosen:  # latex(expr, symbol_names=...) still names symbols its own way
            return chosen[self]
        return self._spelling(printer, latex_name)

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._spelling(printer, text_name))


@lru_cache(maxsize=None)
def _symbol(kind: str, indices: tuple[int, ...]) -> sympy.Symbol:
    return NotesSymbol("_".join([kind, *map(str, indices)]), real=True)


def weight(k: int, i: int, j: int) -> sympy.Symbol:
    """w^k_ij: the weight into node j of layer k from node i of layer k-1."""
    return _symbol("w", (k, i, j))


def bias(k: int, j: int) -> sympy.Symbol:
    """b_kj: the bias of node j in layer k."""
    return _symbol("b", (k, j))


def preactivation(k: int, j: int) -> sympy.Symbol:
    """z_kj: the weighted sum into node j of layer k."""
    return _symbol("z", (k, j))


def output(k: int, j: int, depth: int | None = None) -> sympy.Symbol:
    """O_kj: the output of node j of layer k (x_j for k = 0, ŷ_j for k = depth)."""
    if k == 0:
        return feature(j)
    if depth is not None and k == depth:
        return prediction(j)
    return _symbol("O", (k, j))


def feature(j: int) -> sympy.Symbol:
    """x_ij: feature j of the current row i."""
    return _symbol("x", (j,))


def target(j: int) -> sympy.Symbol:
    """y_j: the target of output j."""
    return _symbol("y", (j,))


def prediction(j: int) -> sympy.Symbol:
    """ŷ_j: the network's output j (the notes' O_Lj)."""
    return _symbol("yhat", (j,))


def delta(k: int, j: int) -> sympy.Symbol:
    """δ_kj = ∂L/∂z_kj, memoised once per node."""
    return _symbol("delta", (k, j))


def grad_output(k: int, j: int) -> sympy.Symbol:
    """∂L/∂O_kj, memoised once per node."""
    return _symbol("dO", (k, j))


def parse(symbol: sympy.Symbol | str) -> Name | None:
    """The :class:`Name` of one of our symbols, or None for any other symbol."""
    text = symbol if isinstance(symbol, str) else symbol.name
    return _parse(text)


@lru_cache(maxsize=65536)
def _parse(text: str) -> Name | None:
    kind, _, rest = text.partition("_")
    if kind not in KINDS or not rest:
        return None
    parts = rest.split("_")
    if len(parts) != KINDS[kind][2] or not all(p.isdigit() for p in parts):
        return None
    return Name(kind, tuple(int(p) for p in parts))


def _joined(indices: tuple[int, ...]) -> str:
    """Subscripts run together (11) unless an index has two digits (1,10)."""
    return ("," if max(indices) > 9 else "").join(map(str, indices))


def text_name(name: Name, single_output: bool = False) -> str:
    """Plain-text spelling: w^2_11, b_21, O_11, x_i1, ŷ, y_2, δ_21."""
    stem = KINDS[name.kind][0]
    idx = name.indices
    if name.kind == "w":
        return f"w^{idx[0]}_{_joined(idx[1:])}"
    if name.kind == "x":
        return f"x_i{idx[0]}"
    if name.kind in ("y", "yhat"):
        return stem if single_output else f"{stem}_{idx[0]}"
    if name.kind == "dO":
        return f"∂L/∂O_{_joined(idx)}"
    return f"{stem}_{_joined(idx)}"


def latex_name(name: Name, single_output: bool = False) -> str:
    """LaTeX spelling: w^{2}_{11}, b_{21}, O_{11}, x_{i1}, \\hat{y}, \\delta_{21}."""
    stem = KINDS[name.kind][1]
    idx = name.indices
    if name.kind == "w":
        return f"w^{{{idx[0]}}}_{{{_joined(idx[1:])}}}"
    if name.kind == "x":
        return f"x_{{i{idx[0]}}}"
    if name.kind in ("y", "yhat"):
        return stem if single_output else f"{stem}_{{{idx[0]}}}"
    if name.kind == "dO":
        return rf"\frac{{\partial L}}{{\partial O_{{{_joined(idx)}}}}}"
    return f"{stem}_{{{_joined(idx)}}}"


#: A printed name once braces and spaces are gone: stem, optional ^layer, optional _indices.
_PRINTED = re.compile(r"(?P<stem>[wbOzxyŷδ])(?:\^(?P<sup>\d+))?(?:_(?P<sub>i?\d+(?:,\d+)*))?")
#: Printed stem -> (kind, takes ^k, number of subscript indices).
_STEMS = {"w": ("w", True, 2), "b": ("b", False, 2), "O": ("O", False, 2), "z": ("z", False, 2),
          "δ": ("delta", False, 2), "x": ("x", False, 1), "y": ("y", False, 1), "ŷ": ("yhat", False, 1)}


def from_printed(text: str, single_output: bool = False) -> Name | None:
    """The :class:`Name` behind any spelling the tool prints: text (``w^2_11``, ``w^2_1,10``,
    ``b_21``, ``x_i1``, ``y``/``y_2``, ``ŷ``), LaTeX (``w^{2}_{11}``, ``\\hat{y}_{1}``) or a
    symbol name (``w_2_1_1``).  A bare ``y``/``ŷ`` is output 1 of a single-output network
    only; anything else is None."""
    name = parse(text)
    if name is not None:
        return name
    t = re.sub(r"[\s{}]", "", text).replace(r"\haty", "ŷ").replace(r"\delta", "δ")
    m = _PRINTED.fullmatch(t)
    if m is None:
        return None
    kind, takes_layer, n = _STEMS[m["stem"]]
    sub = m["sub"] or ""
    if takes_layer != (m["sup"] is not None) or sub.startswith("i") != (kind == "x"):
        return None
    sub = sub.removeprefix("i")
    if not sub:
        return Name(kind, (1,)) if kind in ("y", "yhat") and single_output else None
    parts = sub.split(",") if "," in sub or n == 1 else list(sub)
    if len(parts) != n:
        return None
    return Name(kind, tuple(int(p) for p in ([m["sup"]] if takes_layer else []) + parts))
