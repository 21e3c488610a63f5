r"""Notation profiles: how each textbook names the network, one table entry per book.

``backprop verify --notation NAME`` reads equations written in that book's symbols and maps
them onto the notes' own (w^k_{ij}, b_{kj}, O_{kj}, z_{kj}, \delta_{kj}, x_{ij}, y, \hat{y},
L) before checking; :mod:`backprop.verify.latex_input` does the rewriting from these
fields, so a new book is one new :class:`Notation` in :data:`NOTATIONS`.

Fields
------
``loss``           LaTeX spellings of the loss (``C``; ``J``, ``\mathcal{L}``; ``E_{total}``).
``output``         stems of a node's activation (output): O; a (Nielsen a^l_j); a, A (Ng
                   a^{[l]}_j); z (Bishop z_j); ``out`` (Mazur out_{h1}).
``preactivation``  stems of a node's weighted input: z; z, Z; a (Bishop a_j); ``net``.
``layer``          where a node's layer goes: ``subscript`` (the notes' O_{kj}),
                   ``superscript`` (a^l_j), ``bracket`` (a^{[l]}_j), ``paren`` (a^{(l)}_j),
                   ``node`` (Mazur's h1, o1: hidden and output node names).
``weight_order``   ``from-to``: w^k_{ij} from node i of layer k-1 to node j of layer k (the
                   notes); ``to-from``: w^l_{jk}, j in layer l, k in layer l-1 (Nielsen, Ng,
                   Bishop's w_{ji}).
``batch``          the symbol of the batch size in a mean (n, m, N).
``gradient_prefix`` Ng's ``dW^{[l]}_{jk}``, ``dz^{[l]}_j``: ``d`` + a name is ∂L/∂(name).
``named_weights``  Mazur's w_1..w_8 of a 2-2-2 network as (layer, from, to) in his order.
``sum_indices``    letters a sum may run over without limits (``\sum_k``): the range comes
                   from the names in its body (the notes' i is the row, so \sum_i needs limits).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notation:
    """One book's symbols for the network (see the module docstring for each field)."""

    key: str
    title: str
    loss: tuple[str, ...]
    output: tuple[str, ...]
    preactivation: tuple[str, ...]
    layer: str
    weight_order: str
    batch: str
    delta: tuple[str, ...] = (r"\delta",)
    gradient_prefix: str = ""
    named_weights: tuple[tuple[int, int, int], ...] = ()
    named_biases: str = ""
    sum_indices: str = "jkm"

    @property
    def flag(self) -> str:
        return f"--notation {self.key}"


#: Mazur's 2-2-2 example: w1: i1→h1, w2: i2→h1, w3: i1→h2, w4: i2→h2, w5: h1→o1, w6: h2→o1,
#: w7: h1→o2, w8: h2→o2 as (layer, from node, to node) = the notes' w^layer_{from,to}.
MAZUR_WEIGHTS = ((1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 2, 2), (2, 1, 1), (2, 2, 1), (2, 1, 2), (2, 2, 2))

NOTATIONS: dict[str, Notation] = {n.key: n for n in [
    Notation("notes", "the notes' notation", loss=("L", r"\mathcal{L}"), output=("O",),
             preactivation=("z",), layer="subscript", weight_order="from-to", batch="n"),
    Notation("nielsen", "Nielsen's notation", loss=("C",), output=("a",), preactivation=("z",),
             layer="superscript", weight_order="to-from", batch="n"),
    Notation("ng", "Ng's notation", loss=("J", r"\mathcal{L}", "L"), output=("a", "A"),
             preactivation=("z", "Z"), layer="bracket", weight_order="to-from", batch="m",
             gradient_prefix="d"),
    Notation("bishop", "Bishop's notation", loss=("E_n", "E"), output=("z",), preactivation=("a",),
             layer="paren", weight_order="to-from", batch="N", sum_indices="ijk"),
    Notation("mazur", "Mazur's notation", loss=("E_{total}", "E_{\\text{total}}", "E"), output=("out",),
             preactivation=("net",), layer="node", weight_order="from-to", batch="n",
             named_weights=MAZUR_WEIGHTS,
             named_biases="Mazur's b_1, b_2 are one bias shared by every node of a layer; this "
                          "network has one bias per node: write b_{kj} (b_{11}, b_{21}, ...)"),
]}

DEFAULT = "notes"


def get(key: str) -> Notation:
    """The profile named ``key`` (ValueError naming the choices otherwise)."""
    try:
        return NOTATIONS[key]
    except KeyError:
        raise ValueError(f"unknown notation '{key}': choose one of {', '.join(NOTATIONS)}") from None
