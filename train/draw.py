"""The network diagram the notes draw by hand: nodes O_kj in columns, edges w^k_ij between them.

Layer 0 holds the inputs x_1..x_n; node j of layer k is O_kj; the edge from node i of layer
k-1 to node j of layer k is the weight w^k_ij (the notes' convention, as in
:mod:`backprop.derive.notation`).  Given parameters, edges are coloured by sign and drawn
thicker for larger |w|; given one data row as well, every node shows its value O_kj (from
the generated trainer's ``nodes``) and every edge its ∂L/∂w (from its ``gradients``): one
``step`` of backprop, written on the picture.

Readable up to :data:`MAX_NODES` nodes; bigger networks are refused with a message.  Edge
labels are written while there are at most :data:`MAX_LABELLED_EDGES` edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop.derive.errors import UserError

from . import files, plots

MAX_NODES = 40
#: Horizontal distance between layers, in units of the vertical distance between nodes.
SPACING = 2.4
MAX_LABELLED_EDGES = 40
FORMATS = files.IMAGE_FORMATS


@dataclass
class Values:
    """What one forward and backward pass put on the diagram (any part may be missing)."""

    params: dict | None = None
    x: np.ndarray | None = None  # (n_inputs,)
    nodes: dict | None = None  # {"O1": (n1,), ...} for the one row
    grads: dict | None = None  # {"W1": (n0, n1), ...}
    loss: float | None = None
    y: np.ndarray | None = None


def check_size(spec) -> None:
    n = sum(spec.layers)
    if n > MAX_NODES:
        raise UserError(f"the {'-'.join(map(str, spec.layers))} network has {n} nodes; a diagram "
                        f"stays readable up to {MAX_NODES}: draw a smaller network with the same "
                        "shape (e.g. fewer nodes per layer)")


def compute(trainer, params: dict, x: np.ndarray | None, y: np.ndarray | None) -> Values:
    """Node values and gradients for one row, from the generated trainer."""
    v = Values(params=params)
    if x is None:
        return v
    X = x.reshape(1, -1)
    v.x = x
    nodes = trainer.nodes(params, X)
    v.nodes = {k: np.asarray(val)[0] for k, val in nodes.items()}
    if y is not None:
        Y = y.reshape(1, -1)
        v.y = y
        v.grads = trainer.gradients(params, X, Y)
        v.loss = float(trainer.loss(params, X, Y))
    return v


def _fmt(value: float) -> str:
    return f"{value:.3g}".replace("-", "−")


def layout(widths) -> list[list[tuple[float, float]]]:
    """(x, y) of every node, layer by layer, each column centred vertically."""
    tallest = max(widths)
    pos = []
    for k, w in enumerate(widths):
        top = (tallest - 1) / 2 + (w - 1) / 2
        pos.append([(SPACING * k, top - j - (tallest - 1) / 2) for j in range(w)])
    return pos


def draw(spec, values: Values, path, fmt: str = "png", force: bool = False, title: str = ""):
    """Draw the network and write it to ``path`` (png, svg or pdf), atomically."""
    check_size(spec)
    last = len(spec.layers) - 1
    tallest = max(spec.layers)
    xlim = (-0.7, SPACING * last + 1.0)
    ylim = (-(tallest - 1) / 2 - 0.85, (tallest - 1) / 2 + 0.75)
    scale = min(1.1, 13 / (xlim[1] - xlim[0]), 11 / (ylim[1] - ylim[0]))
    fig, axes = plots.new_figure(scale * (xlim[1] - xlim[0]), scale * (ylim[1] - ylim[0]) + 0.7)
    ax = axes[0][0]
    ax.set_axis_off()
    pos = layout(spec.layers)
    n_edges = sum(a * b for a, b in zip(spec.layers, spec.layers[1:]))
    label_edges = n_edges <= MAX_LABELLED_EDGES
    W = values.params
    wmax = max((float(np.abs(W[k]).max()) for k in W if k.startswith("W")), default=1.0) if W else 1.0
    wmax = wmax or 1.0
    radius = 0.2

    for k in range(1, len(spec.layers)):
        for i, (x0, y0) in enumerate(pos[k - 1]):
            for j, (x1, y1) in enumerate(pos[k]):
                colour, lw = "#888888", 1.0
                if W is not None:
                    w = float(W[f"W{k}"][i, j])
                    colour = "#0072B2" if w >= 0 else "#D55E00"
                    lw = 0.6 + 2.6 * abs(w) / wmax
                ax.plot([x0 + radius, x1 - radius], [y0, y1], color=colour, lw=lw, alpha=0.7,
                        zorder=1)
                if label_edges:
                    # straight edges labelled mid-way, falling ones near their source,
                    # rising ones near their end: crossing edges keep their labels apart
                    t = 0.5 if i == j else (0.3 if j > i else 0.6)
                    lx, ly = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                    text = f"$w^{{{k}}}_{{{i + 1}{j + 1}}}$"
                    if W is not None:
                        text += f"={_fmt(W[f'W{k}'][i, j])}"
                    if values.grads is not None:
                        text += f"\n∂L/∂w={_fmt(values.grads[f'W{k}'][i, j])}"
                    ax.text(lx, ly, text, fontsize=7, ha="center", va="center", zorder=3,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))

    for k, column in enumerate(pos):
        for j, (x, y) in enumerate(column):
            inputs = k == 0
            face = "#E8F1FA" if inputs else ("#FCEBDD" if k == last else "#EAF6EF")
            ax.add_patch(_circle(fig, (x, y), radius, face))
            name = f"$x_{{{j + 1}}}$" if inputs else f"$O_{{{k}{j + 1}}}$"
            ax.text(x, y, name, ha="center", va="center", fontsize=10, zorder=5)
            below = []
            if inputs and values.x is not None:
                below.append(f"= {_fmt(values.x[j])}")
            if not inputs and values.nodes is not None:
                below.append(f"= {_fmt(values.nodes[f'O{k}'][j])}")
            if not inputs and spec.bias:
                b = f"$b_{{{k}{j + 1}}}$"
                if W is not None:
                    b += f"={_fmt(W[f'b{k}'][j])}"
                if values.grads is not None:
                    b += f", ∂L/∂b={_fmt(values.grads[f'b{k}'][j])}"
                below.append(b)
            if below:
                ax.text(x, y - radius - 0.06, "\n".join(below), ha="center", va="top",
                        fontsize=7, zorder=5)
        label = "inputs" if k == 0 else f"layer {k}: {spec.activations[k - 1]}"
        ax.text(column[0][0], (tallest - 1) / 2 + radius + 0.25, label, ha="center", fontsize=9,
                color="#444444")
    if values.y is not None:
        for j, (x, y) in enumerate(pos[-1]):
            ax.text(x + radius + 0.08, y, f"y={_fmt(values.y[j])}", ha="left", va="center",
                    fontsize=8)
    heading = title or spec.describe()
    if values.loss is not None:
        heading += f"\nloss L = {_fmt(values.loss)} ({spec.loss})"
    if not label_edges:
        heading += f"\n({n_edges} edges: labels left out; blue w ≥ 0, orange w < 0)"
    ax.set_title(heading, fontsize=9)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    return files.write(path, files.figure_bytes(fig, fmt), force=force)


def _circle(fig, centre, radius, face):
    from matplotlib.patches import Circle
    return Circle(centre, radius, facecolor=face, edgecolor="#333333", lw=1.2, zorder=4)
