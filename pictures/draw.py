"""The network diagram the notes draw by hand: nodes O_kj in columns, edges w^k_ij between them.

Layer 0 holds the inputs x_1..x_n; node j of layer k is O_kj; the edge from node i of layer
k-1 to node j of layer k is the weight w^k_ij (the notes' convention, as in
:mod:`backprop.derive.notation`).  Given parameters, edges are coloured by sign and drawn
thicker for larger |w|; given one data row as well (:func:`backprop.train.row.compute`),
every node shows its value O_kj (from the generated trainer's ``nodes``) and every edge its
∂L/∂w (from its ``gradients``): one ``step`` of backprop, written on the picture.

No two texts overlap.  Every label is measured with matplotlib's renderer and put at the
first free spot of a list (edge labels along their own edge, node labels around their node,
never on a circle); when the labels of one kind do not all fit, that kind moves to a table
beside the diagram, the edges then carrying short numbers the table's rows start with (or,
when even those do not fit, the table names each edge w^k_ij, which says which two nodes
it joins).  Numbers are plain decimals with three significant digits (:func:`number`).
Up to :data:`MAX_NODES` nodes; bigger networks are refused with a message.

A residual layer k (O_kj = g(z_kj) + O_{k-1,j}) has a skip edge from O_{k-1,j} to O_kj beside
the weight w^k_jj it would hide: a dashed arc above that straight edge, labelled "skip" where
the label fits (the skip's weight is 1, no number to show) and explained in the heading; the
labels keep clear of the arcs as of the edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.train.row import Values

from . import plots

MAX_NODES = 40
DPI = 100
#: The diagram is at least this wide (inches; 1000 px at DPI) ...
MIN_WIDTH = 10.0
#: ... and its layers at least this far apart, until the diagram would pass MAX_WIDTH.
LAYER_GAP = 2.8
MAX_WIDTH = 28.0
#: Vertical distance between nodes of a column (inches): the most, the least, and the
#: height a tall column is squeezed into between the two.
NODE_GAP = (1.2, 0.55)
COLUMN_HEIGHT = 10.0
#: Empty pixels kept around every label, so that their white boxes do not touch either.
PAD = 3.0
#: Positions along an edge (0 = its source, 1 = its end) tried for its label, in order.
ALONG = (0.5, 0.4, 0.6, 0.3, 0.7, 0.45, 0.55, 0.35, 0.65, 0.25, 0.75, 0.2, 0.8, 0.15, 0.85)
#: Where a node's label may go, in order: (dx, dy) in node radii, and its alignment.
AROUND = (
    (0, -1.4, "center", "top"), (1.4, 0, "left", "center"), (-1.4, 0, "right", "center"),
    (0, 1.4, "center", "bottom"), (1.2, -1.2, "left", "top"), (-1.2, -1.2, "right", "top"),
    (1.2, 1.2, "left", "bottom"), (-1.2, 1.2, "right", "bottom"),
)
POSITIVE, NEGATIVE, PLAIN = "#0072B2", "#D55E00", "#888888"
LABEL_FONT = 8
TABLE_FONT = 8
#: Labels are first kept clear of other edges (so a label never sits on a crossing) when
#: there are at most this many edges; denser diagrams skip that try.
CLEAR_OF_EDGES = 60
TABLE_ROWS = 40  # at most this many rows per table column, however tall the diagram
TABLE_COLUMNS = 4  # the table grows taller than the diagram before it takes more columns
#: A skip edge's arc: its colour, how far its middle bows above the chord joining the two nodes'
#: upper shoulders (a fraction of the node gap: below the crossing of the diagonals between two
#: rows, clear of the straight edge's own label), and its label.
SKIP_COLOUR, SKIP_BOW, SKIP_LABEL = "#009E73", 0.15, "skip"


def check_size(spec) -> None:
    n = sum(spec.layers)
    if n > MAX_NODES:
        raise UserError(f"the {'-'.join(map(str, spec.layers))} network has {n} nodes; a diagram "
                        f"stays readable up to {MAX_NODES}: draw a smaller network with the same "
                        "shape (e.g. fewer nodes per layer)")


def number(value: float, digits: int = 3) -> str:
    """A plain decimal with ``digits`` significant digits, never e-notation: 0.0123, −12.5,
    29241 (integer digits are all kept).  Below 1e-9 in size it reads ≈0."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) < 1e-9:
        return "≈0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text.replace("-", "−")


SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(*idx: int) -> str:
    """Subscript digits, comma-separated once one index has two digits (w¹₂,₁₀)."""
    sep = "" if all(i < 10 for i in idx) else ","
    return sep.join(map(str, idx)).translate(SUBSCRIPT)


def weight_name(k: int, i: int, j: int) -> str:
    """w^k_ij in Unicode super- and subscripts: plain text, so no mathtext parse (25 ms
    each, which hundreds of table rows would add up to seconds)."""
    return f"w{str(k).translate(SUPERSCRIPT)}{_sub(i, j)}"


def node_name(k: int, j: int) -> str:
    return f"x{_sub(j)}" if k == 0 else f"O{_sub(k, j)}"


def bias_name(k: int, j: int) -> str:
    return f"b{_sub(k, j)}"


@dataclass
class Geometry:
    """Where everything goes, in inches (the diagram's data units are inches)."""

    layer_gap: float
    node_gap: float
    radius: float
    xlim: tuple
    ylim: tuple
    pos: list  # pos[k][j] = (x, y) of node j+1 of layer k


def geometry(widths) -> Geometry:
    """Node positions: columns ``layer_gap`` apart, each centred; room around for labels."""
    tallest, gaps = max(widths), len(widths) - 1
    node_gap = min(NODE_GAP[0], max(NODE_GAP[1], COLUMN_HEIGHT / tallest))
    radius = min(0.24, 0.36 * node_gap)
    layer_gap = max(LAYER_GAP, (MIN_WIDTH - 3.1) / gaps)
    if gaps * layer_gap > MAX_WIDTH:
        layer_gap = max(1.4, MAX_WIDTH / gaps)
    pos = [[(layer_gap * k, node_gap * ((w - 1) / 2 - j)) for j in range(w)]
           for k, w in enumerate(widths)]
    half = node_gap * (tallest - 1) / 2
    return Geometry(layer_gap, node_gap, radius, (-1.2, gaps * layer_gap + 1.9),
                    (-half - 0.9, half + 0.75), pos)


class Placer:
    """Boxes taken so far (display pixels); a label goes to the first candidate that is free."""

    def __init__(self, fig, ax):
        self.renderer = fig.canvas.get_renderer()
        self.ax = ax
        self.taken = np.empty((0, 4))
        self.frame = ax.get_window_extent(self.renderer)
        self.lines = None  # (x, y, edge) samples of the edges a label must not cover, or None

    def box(self, artist) -> np.ndarray:
        e = artist.get_window_extent(self.renderer)
        return np.array([e.x0 - PAD, e.y0 - PAD, e.x1 + PAD, e.y1 + PAD])

    def take(self, box) -> None:
        self.taken = np.vstack([self.taken, box])

    def free(self, box) -> bool:
        f = self.frame
        if box[0] < f.x0 or box[1] < f.y0 or box[2] > f.x1 or box[3] > f.y1:
            return False
        t = self.taken
        return not np.any((t[:, 0] < box[2]) & (box[0] < t[:, 2]) &
                          (t[:, 1] < box[3]) & (box[1] < t[:, 3]))

    def along(self, artist, points, own: int) -> bool:
        """Centre ``artist`` (the label of edge ``own``) on the first free point (data
        coordinates); with :attr:`lines` set, free also means no other edge under it."""
        artist.set_position(points[0])
        first = self.box(artist)
        origin = self.ax.transData.transform(points[0])
        for p in points:
            dx, dy = self.ax.transData.transform(p) - origin
            box = first + [dx, dy, dx, dy]
            if self.free(box) and not self._covers_an_edge(box, own):
                artist.set_position(p)
                self.take(box)
                return True
        return False

    def _covers_an_edge(self, box, own: int) -> bool:
        if self.lines is None:
            return False
        x, y, n = self.lines.T
        return bool(np.any((n != own) & (x > box[0]) & (x < box[2]) & (y > box[1]) & (y < box[3])))

    def around(self, artist, centre, radius, over_edges: bool = False) -> bool:
        """Put ``artist`` beside the node at ``centre`` at the first free spot of AROUND clear
        of the edges (:attr:`lines`); failing that, with ``over_edges``, the first free one."""
        for clear in (True, False) if over_edges else (True,):
            for dx, dy, ha, va in AROUND:
                artist.set_position((centre[0] + dx * radius, centre[1] + dy * radius))
                artist.set_ha(ha)
                artist.set_va(va)
                box = self.box(artist)
                if self.free(box) and not (clear and self._covers_an_edge(box, -1)):
                    self.take(box)
                    return True
        return False


def _edges(spec):
    """(k, i, j) of every edge, 1-based as in w^k_ij, layer by layer."""
    return [(k, i, j) for k in range(1, len(spec.layers))
            for i in range(1, spec.layers[k - 1] + 1) for j in range(1, spec.layers[k] + 1)]


def _skip_arcs(spec, g: Geometry) -> list[np.ndarray]:
    """Points (data coordinates, rows (x, y)) along each skip edge O_{k-1,j} -> O_kj of the
    residual layers: a quadratic Bézier from the source's upper right shoulder to the end's
    upper left one, its middle SKIP_BOW node gaps above their chord."""
    shoulder = g.radius * math.sqrt(0.5)
    u = np.linspace(0.0, 1.0, 41)[:, None]
    out = []
    for k in spec.residual_layers:
        for j in range(spec.layers[k]):
            (x0, y0), (x1, y1) = g.pos[k - 1][j], g.pos[k][j]
            a, b = np.array([x0 + shoulder, y0 + shoulder]), np.array([x1 - shoulder, y1 + shoulder])
            control = (a + b) / 2 + [0.0, 2 * SKIP_BOW * g.node_gap]  # the curve's middle: half-way to it
            out.append((1 - u) ** 2 * a + 2 * u * (1 - u) * control + u ** 2 * b)
    return out


def _skip_labels(ax, placer, arcs, ends) -> bool:
    """Label every skip arc SKIP_LABEL at the first free point along it (clear of the other
    edges and arcs if it can be); if one does not fit, none is written (the heading says what
    the dashed arcs are).  Returns whether they were written."""
    saved, texts = placer.taken.copy(), []
    samples = _samples(ax, ends, arcs)
    for n, arc in enumerate(arcs):
        t = ax.text(0, 0, SKIP_LABEL, fontsize=LABEL_FONT, ha="center", va="center", zorder=3,
                    color=SKIP_COLOUR, parse_math=False,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
        texts.append(t)
        points = [tuple(arc[round(a * (len(arc) - 1))]) for a in ALONG]
        placed = False
        for lines in (samples, None):
            placer.lines = lines
            if placer.along(t, points, own=len(ends) + n):
                placed = True
                break
        placer.lines = None
        if not placed:
            placer.taken = saved
            for text in texts:
                text.remove()
            return False
    return True


def _edge_cells(values: Values, k: int, i: int, j: int) -> list[str]:
    """[name, weight, ∂L/∂w] of one edge, "" where not known."""
    w = number(values.params[f"W{k}"][i - 1, j - 1]) if values.params is not None else ""
    g = number(values.grads[f"W{k}"][i - 1, j - 1]) if values.grads is not None else ""
    return [weight_name(k, i, j), w, g]


#: A batch-normalised node's numbers: (label, params key, gradient key or None) in the order shown;
#: μ and σ² are the running statistics the trainer keeps for eval mode (a one-row pass uses them).
BATCH_NORM_CELLS = (("γ", "gamma{}", "gamma{}"), ("β", "beta{}", "beta{}"),
                    ("μ", "running_mean{}", None), ("σ²", "running_var{}", None))


def _batch_norm_cells(values: Values, k: int, j: int) -> list[tuple[str, list[str]]]:
    """(label line, table row) for γ_kj, β_kj (with ∂L/∂γ, ∂L/∂β) and the running μ_kj, σ²_kj
    of a batch-normalised node; a number the params do not hold is left out."""
    out = []
    for stem, key, grad_key in BATCH_NORM_CELLS:
        held = values.params.get(key.format(k))
        if held is None:
            continue
        name, value = f"{stem}{_sub(k, j)}", number(held[j - 1])
        grad = values.grads.get(grad_key.format(k)) if grad_key and values.grads is not None else None
        g = number(grad[j - 1]) if grad is not None else ""
        out.append((f"{name} = {value}" + (f", ∂L/∂{stem} = {g}" if g else ""), [name, value, g]))
    return out


def _node_rows(spec, values: Values) -> list[tuple[tuple[int, int], list[str], list[list[str]]]]:
    """Per node with something to say: ((k, j), its label's lines, its table rows).

    The label holds the node's name from the model file, its value, its bias with ∂L/∂b and,
    at the output, the target y; the table rows are [name, value, gradient]."""
    out = []
    last = len(spec.layers) - 1
    for k, width in enumerate(spec.layers):
        for j in range(1, width + 1):
            lines, rows = [], []
            name = None
            if k == 0 and values.features:
                name = values.features[j - 1]
            if k == last and values.classes and len(values.classes) == width:
                name = values.classes[j - 1]
            if name:
                lines.append(name)
            value = None
            if k == 0 and values.x is not None:
                value = number(values.x[j - 1])
                if values.raw_x is not None:
                    value = f"{number(values.raw_x[j - 1])} → {value}"
            elif k and values.nodes is not None:
                value = number(values.nodes[f"O{k}"][j - 1])
            if value is not None:
                lines.append(f"= {value}")
            if value is not None or name:
                rows.append([node_name(k, j) + (f" ({name})" if name else ""), value or "", ""])
            if k and spec.bias and values.params is None:
                lines.append(bias_name(k, j))  # the diagram of names names the biases too
            elif k and spec.bias:
                b = number(values.params[f"b{k}"][j - 1])
                db = number(values.grads[f"b{k}"][j - 1]) if values.grads is not None else ""
                lines.append(f"{bias_name(k, j)} = {b}" + (f", ∂L/∂b = {db}" if db else ""))
                rows.append([bias_name(k, j), b, db])
            if k in spec.batch_norm_layers and values.params is not None:
                for line, row in _batch_norm_cells(values, k, j):
                    lines.append(line)
                    rows.append(row)
            if k == last and values.y is not None:
                y = number(values.y[j - 1])
                lines.append(f"y = {y}")
                rows.append([f"y{_sub(j)}", y, ""])
            if lines:
                out.append(((k, j), lines, rows))
    return out


def figure(spec, values: Values, title: str = ""):
    """The diagram as a matplotlib Figure (texts placed, none overlapping); :func:`draw` writes it."""
    check_size(spec)
    Figure, Canvas = plots.require_matplotlib()
    from matplotlib.patches import Circle
    g = geometry(spec.layers)
    dw, dh = g.xlim[1] - g.xlim[0], g.ylim[1] - g.ylim[0]
    fig = Figure(figsize=(dw + 0.4, dh + 1.0), dpi=DPI)
    Canvas(fig)
    ax = fig.add_axes((0.2 / (dw + 0.4), 0.2 / (dh + 1.0), dw / (dw + 0.4), dh / (dh + 1.0)))
    ax.set_axis_off()
    ax.set_xlim(*g.xlim)
    ax.set_ylim(*g.ylim)
    placer = Placer(fig, ax)
    last = len(spec.layers) - 1
    W = values.params
    wmax = max((float(np.abs(W[key]).max()) for key in W if key.startswith("W")), default=0) if W else 0
    wmax = wmax or 1.0
    r = g.radius

    for k, i, j in _edges(spec):
        (x0, y0), (x1, y1) = g.pos[k - 1][i - 1], g.pos[k][j - 1]
        colour, lw = PLAIN, 1.0
        if W is not None:
            w = float(W[f"W{k}"][i - 1, j - 1])
            colour, lw = (POSITIVE if w >= 0 else NEGATIVE), 0.6 + 2.6 * abs(w) / wmax
        ax.plot([x0 + r, x1 - r], [y0, y1], color=colour, lw=lw, alpha=0.7, zorder=1)
    arcs = _skip_arcs(spec, g)
    for arc in arcs:
        ax.plot(arc[:, 0], arc[:, 1], color=SKIP_COLOUR, lw=1.6, ls=(0, (5, 3)), zorder=2)

    font = 11 if r >= 0.2 else 8
    top = max(column[0][1] for column in g.pos)
    for k, column in enumerate(g.pos):
        face = "#E8F1FA" if k == 0 else ("#FCEBDD" if k == last else "#EAF6EF")
        for j, (x, y) in enumerate(column, start=1):
            ax.add_patch(Circle((x, y), r, facecolor=face, edgecolor="#333333", lw=1.2, zorder=4))
            ax.text(x, y, node_name(k, j), ha="center", va="center", fontsize=font, zorder=5,
                    parse_math=False)
            cx, cy = ax.transData.transform((x, y))
            ex = r * DPI + PAD
            placer.take(np.array([cx - ex, cy - ex, cx + ex, cy + ex]))
        label = "inputs" if k == 0 else f"layer {k}: {spec.activations[k - 1]}"
        head = ax.text(column[0][0], top + r + 0.3, label, ha="center",
                       va="bottom", fontsize=9, color="#444444", parse_math=False)
        placer.take(placer.box(head))

    ends = [((x0 + r, y0), (x1 - r, y1)) for k, i, j in _edges(spec)
            for (x0, y0), (x1, y1) in [(g.pos[k - 1][i - 1], g.pos[k][j - 1])]]
    node_rows = _node_rows(spec, values)
    table_rows = _node_labels(ax, placer, node_rows, g, ends, arcs)
    if W is None:
        table_rows = []  # names alone: nothing a table would add
    edge_rows = _edge_label_rows(ax, placer, spec, values, ends, arcs)
    labelled = _skip_labels(ax, placer, arcs, ends)
    heading = title or spec.describe()
    if values.raw_x is not None:
        heading += ("\n--x standardised with the model file's mean and std: "
                    "the network sees (x − mean) / std")
    if values.loss is not None:
        heading += f"\nloss L = {number(values.loss)} ({spec.loss})"
    if W is not None:
        heading += "\nedges: blue w ≥ 0, orange w < 0, thicker for larger |w|"
        if values.grads is not None and not edge_rows:
            heading += "; each edge's second line is ∂L/∂w"
    if edge_rows is None:
        heading += (f"\n{len(_edges(spec))} edges, too many to name: w^k_ij joins node i of "
                    "layer k−1 to node j of layer k")
    if arcs:
        heading += (f"\ndashed green arcs{' (' + SKIP_LABEL + ')' if labelled else ''}: skip edges of the residual "
                    f"layer{'s' if len(spec.residual_layers) > 1 else ''} {', '.join(map(str, spec.residual_layers))}, "
                    "O_kj = g(z_kj) + O_{k−1,j} (weight 1)")
    rows = [[key, *cells] for key, cells in (edge_rows or [])] + [["", *row] for row in table_rows]
    header = ["#", "name", "value", "∂L/∂·"]
    used = [c for c in range(len(header)) if any(row[c] for row in rows)]
    header = [header[c] for c in used]
    rows = [[row[c] for c in used] for row in rows]
    _layout(fig, ax, (dw, dh), heading, header, rows)
    return fig


def _node_labels(ax, placer, node_rows, g: Geometry, ends, arcs=()) -> list[list[str]]:
    """Write each node's label beside it, clear of the edges (on a small diagram, over them
    if need be); when they do not all fit, none is written and their table rows are returned.
    Node labels go first: they are fewer than edge labels and say more."""
    texts = [ax.text(0, 0, "\n".join(lines), fontsize=LABEL_FONT, zorder=6, linespacing=1.3,
                     parse_math=False, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                                 alpha=0.9))
             for _, lines, _ in node_rows]
    saved = placer.taken.copy()
    placer.lines = _samples(ax, ends, arcs)
    over = len(ends) <= CLEAR_OF_EDGES
    if all(placer.around(t, g.pos[k][j - 1], g.radius, over)
           for ((k, j), _, _), t in zip(node_rows, texts)):
        placer.lines = None
        return []
    placer.taken, placer.lines = saved, None
    for t in texts:
        t.remove()
    return [row for _, _, rows in node_rows for row in rows]


def _edge_label_rows(ax, placer, spec, values: Values, ends, arcs=()):
    """Label the edges, trying in turn: full labels clear of other edges, full labels anywhere
    on their edge, then (with values to tabulate) numbers keying the table's rows.

    Returns [] when the full labels are on the diagram; else the table's rows as (key, cells),
    the key "" when even the numbers do not fit; None when there are no values and the
    names do not fit (nothing to tabulate)."""
    edges = _edges(spec)
    texts, saved = [], placer.taken.copy()

    def attempt(labels, clear_of_edges=False) -> bool:
        placer.taken = saved.copy()
        for t in texts:
            t.remove()
        texts.clear()
        placer.lines = _samples(ax, ends, arcs) if clear_of_edges else None
        for n, ((a, b), label) in enumerate(zip(ends, labels)):
            t = ax.text(0, 0, label, fontsize=LABEL_FONT, ha="center", va="center", zorder=3,
                        linespacing=1.3, parse_math=False,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
            texts.append(t)
            points = [(a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])) for u in ALONG]
            if not placer.along(t, points, own=n):
                return False
        return True

    full = []
    for k, i, j in edges:
        name, w, grad = _edge_cells(values, k, i, j)
        full.append(name + (f" = {w}" if w else "") + (f"\n∂L/∂w = {grad}" if grad else ""))
    if (len(edges) <= CLEAR_OF_EDGES and attempt(full, clear_of_edges=True)) or attempt(full):
        return []
    keyed = values.params is not None and attempt([str(n) for n in range(1, len(edges) + 1)])
    if not keyed:
        attempt([])
    if values.params is None:
        return None
    return [(str(n) if keyed else "", _edge_cells(values, *e)) for n, e in enumerate(edges, start=1)]


def _samples(ax, ends, arcs=()) -> np.ndarray:
    """Points every few pixels along every edge, in display pixels, with the edge's index:
    rows (x, y, index); the skip arcs' points follow, indexed len(ends) + their number."""
    rows = []
    for n, (a, b) in enumerate(ends):
        (xa, ya), (xb, yb) = ax.transData.transform([a, b])
        count = max(2, int(math.hypot(xb - xa, yb - ya) / 3))
        u = np.linspace(0, 1, count)
        rows.append(np.column_stack([xa + u * (xb - xa), ya + u * (yb - ya), np.full(count, n)]))
    for n, arc in enumerate(arcs, start=len(ends)):
        points = ax.transData.transform(arc)
        step = max(2, int(np.hypot(*np.diff(points, axis=0).T).sum() / 3))
        u = np.linspace(0, len(points) - 1, step)
        rows.append(np.column_stack([np.interp(u, np.arange(len(points)), points[:, 0]),
                                     np.interp(u, np.arange(len(points)), points[:, 1]), np.full(step, n)]))
    return np.vstack(rows)


def _layout(fig, ax, size, heading, header, rows) -> None:
    """Size the figure: the heading on top, the diagram below it, the table (if any) to its
    right.  The diagram keeps its size in inches, so its placed labels keep their spacing."""
    dw, dh = size
    renderer = fig.canvas.get_renderer()
    head = fig.text(0.5, 1.0, heading, ha="center", va="top", fontsize=9, parse_math=False)
    hb = head.get_window_extent(renderer)
    head_h, head_w = hb.height / DPI + 0.3, hb.width / DPI + 0.4
    tw = th = 0.0
    tab = None
    if rows:
        tab = fig.add_axes((0, 0, 0.1, 0.1))
        tab.set_axis_off()
        tw, th = _table(tab, renderer, header, rows, dh)
    width = max(0.2 + dw + (0.3 + tw if tab else 0) + 0.2, head_w)
    body = max(dh, th)
    height = 0.2 + body + head_h
    fig.set_size_inches(width, height)
    left = (width - (dw + (0.3 + tw if tab else 0))) / 2
    ax.set_position((left / width, (0.2 + body - dh) / height, dw / width, dh / height))
    if tab is not None:
        tab.set_position(((left + dw + 0.3) / width, (0.2 + body - th) / height,
                          tw / width, th / height))
    head.set_position((0.5, 1 - 0.15 / height))


def _table(tab, renderer, header, rows, height_in) -> tuple[float, float]:
    """Write ``rows`` under ``header`` in columns as tall as the diagram (taller, up to
    TABLE_ROWS rows, rather than more than TABLE_COLUMNS columns), each cell its own
    measured text; returns the table's (width, height) in inches.  The axes' data units are
    pixels, so positions are exact."""
    def cell(text, bold=False):
        return tab.text(0, 0, text, fontsize=TABLE_FONT, ha="left", va="baseline",
                        parse_math=False, fontweight="bold" if bold else "normal")

    heads, body = [cell(h, True) for h in header], [[cell(c) for c in row] for row in rows]
    extents = [[c.get_window_extent(renderer) for c in line] for line in [heads, *body]]
    row_h = max(e.height for line in extents for e in line) + 4  # rows' baselines: no two texts meet
    fit = int(height_in * DPI / row_h) - 1  # rows in the diagram's height
    per = min(TABLE_ROWS, max(fit, math.ceil(len(rows) / TABLE_COLUMNS)))
    widths = [max(line[c].width for line in extents) + 12 for c in range(len(header))]
    starts = [sum(widths[:c]) for c in range(len(header))]
    chunk_w = sum(widths) + 18
    chunks = math.ceil(len(rows) / per)
    total_w, total_h = chunks * chunk_w, (min(per, len(rows)) + 1) * row_h + 4
    for chunk in range(chunks):
        for c, text in enumerate(heads if chunk == 0 else [cell(h, True) for h in header]):
            text.set_position((chunk * chunk_w + starts[c], total_h - row_h + 4))
    for n, line in enumerate(body):
        chunk, at = divmod(n, per)
        for c, text in enumerate(line):
            text.set_position((chunk * chunk_w + starts[c], total_h - (at + 2) * row_h + 4))
    tab.set_xlim(0, total_w)
    tab.set_ylim(0, total_h)
    return total_w / DPI, total_h / DPI


def draw(spec, values: Values, path, fmt: str = "png", force: bool = False, title: str = ""):
    """Draw the network and write it to ``path`` (png, svg or pdf), atomically."""
    fig = figure(spec, values, title)
    return files.write(path, files.figure_bytes(fig, fmt), force=force)
