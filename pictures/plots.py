"""Plots of training runs, of the GD variants compared and of per-layer gradient norms (PNG,
SVG or PDF by the file's suffix); matplotlib is an optional extra, imported only when a plot
is asked for.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas, never through
pyplot, so no window opens, no global state is touched and no display is needed.  The image
bytes go through :func:`backprop.core.files.write` (temporary file + rename).  Without
matplotlib every entry point raises one :class:`UserError` saying how to install it.
"""
from __future__ import annotations

import math

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.train.progress import plural

INSTALL_HINT = "plots need matplotlib: pip install 'backprop[plot]'"

#: One colour per GD variant / layer, colour-blind safe (Okabe–Ito).
STYLES = ["-", "--", ":", "-."]
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def require_matplotlib():
    """The Figure class, or a UserError naming the extra to install."""
    try:
        # the Agg canvas directly: no pyplot, no backend switch, no display needed
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return Figure, FigureCanvasAgg


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    Figure, Canvas = require_matplotlib()
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    Canvas(fig)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def save(fig, path, force: bool = False):
    """Write the figure in the format its suffix names (.png, .svg, .pdf; others refused)."""
    return files.write(path, files.figure_bytes(fig, files.image_format(path)), force=force)


def _log_scale_if_wide(ax, values) -> None:
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if finite and len(finite) == len(values) and max(finite) / min(finite) > 20:
        ax.set_yscale("log")


def plot_training(hist, path, title: str = "", force: bool = False, confusion: dict | None = None):
    """Loss per epoch, and (when traced) weights per epoch as the notes suggest for spotting
    vanishing gradients: a weight whose line stays flat is not learning.  ``confusion``
    ({"matrix", "classes", "title"}) adds a classifier's confusion matrix as the last panel."""
    panels = 1 + bool(hist.weights) + bool(hist.grad_norms) + bool(confusion)
    fig, axes = new_figure({1: 6.4, 2: 11, 3: 15, 4: 19}[panels], 4.2, 1, panels)
    ax = axes[0][0]
    epochs = range(len(hist.losses))
    marker = "o" if len(hist.losses) <= 30 else None
    ax.plot(epochs, hist.losses, color=COLOURS[0], lw=1.8, marker=marker, ms=3)
    _log_scale_if_wide(ax, hist.losses)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"loss per epoch ({hist.gd}, {plural(hist.updates_per_epoch, 'update')}/epoch)")
    ax.grid(alpha=0.3)
    if hist.weights:
        ax2 = axes[0][1]
        columns = list(zip(*hist.weights))
        per_weight_legend = len(columns) <= 8
        seen_layers = set()
        for name, values in zip(hist.weight_names, columns):
            k, ij = name[2:].split("_")
            nth = sum(1 for other in hist.weight_names[: hist.weight_names.index(name)]
                      if other.startswith(f"w^{k}_"))
            if per_weight_legend:
                label = f"$w^{{{k}}}_{{{ij}}}$"
            else:
                label = None if k in seen_layers else f"layer {k}"
                seen_layers.add(k)
            ax2.plot(epochs, values, lw=1.3, color=COLOURS[(int(k) - 1) % len(COLOURS)],
                     ls=STYLES[nth % len(STYLES)], marker=marker, ms=3, alpha=0.9, label=label)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("weight value")
        ax2.set_title("weights per epoch (colour = layer; flat = not learning)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7, ncol=2, loc="best")
    if hist.grad_norms:
        ax3 = axes[0][1 + bool(hist.weights)]
        for k, values in enumerate(zip(*hist.grad_norms), start=1):
            ax3.plot(epochs, [max(v, 1e-30) for v in values], lw=1.4, marker=marker, ms=3,
                     color=COLOURS[(k - 1) % len(COLOURS)], label=f"layer {k}")
        ax3.set_yscale("log")
        ax3.set_xlabel("epoch")
        ax3.set_ylabel(r"$\Vert\partial L/\partial W^k\Vert$")
        ax3.set_title("gradient norm per layer")
        ax3.grid(alpha=0.3, which="both")
        ax3.legend(fontsize=7)
    if confusion:
        draw_confusion(axes[0][panels - 1], confusion["matrix"], confusion["classes"],
                       confusion.get("title", "confusion matrix"))
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)  # titles hold file names: "$" is text
    return save(fig, path, force)


def draw_confusion(ax, matrix, classes, title: str) -> None:
    """Counts as a heat map, rows the true class and columns the predicted one, every count
    written in its cell (dark text on light cells, light on dark)."""
    cm = np.asarray(matrix)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=30 if max(map(len, classes)) > 6 else 0,
                  ha="right" if max(map(len, classes)) > 6 else "center")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    half = cm.max() / 2
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > half else "black", fontsize=9)


def plot_compare(runs: dict, path, title: str = "", force: bool = False):
    """Loss against epochs and against wall time, one line per GD variant (or per optimiser:
    runs keyed by optimiser name, each labelled with its η)."""
    fig, axes = new_figure(11, 4.2, 1, 2)
    by_epoch, by_time = axes[0]
    values = []
    for n, (name, hist) in enumerate(runs.items()):
        colour = COLOURS[n % len(COLOURS)]
        label = f"{name} ({plural(hist.updates_per_epoch, 'update')}/epoch)"
        if hist.optimizer is not None and name == hist.optimizer["name"]:  # one run per optimiser
            label = f"{name} (η = {hist.optimizer['lr']:g})"
        marker = "o" if len(hist.losses) <= 30 else None
        by_epoch.plot(range(len(hist.losses)), hist.losses, color=colour, lw=1.6, label=label,
                      marker=marker, ms=3)
        by_time.plot([0.0] + list(hist.seconds), hist.losses, color=colour, lw=1.6, label=name,
                     marker=marker, ms=3)
        values += hist.losses
    for ax in (by_epoch, by_time):
        _log_scale_if_wide(ax, values)
        ax.set_ylabel("loss over all rows")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    by_epoch.set_xlabel("epoch")
    by_epoch.set_title("loss vs epochs")
    by_time.set_xlabel("training time (s)")
    by_time.set_title("loss vs wall time")
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)  # titles hold file names: "$" is text
    return save(fig, path, force)


def plot_vanishing(runs: list, path, title: str = "", force: bool = False):
    """One panel per (activation, initialisation): ‖∂L/∂W^k‖ per epoch, one line per layer.

    Panels form an activation × initialisation grid when the runs fill one (else rows of up
    to three); only as many axes as runs are made, so no panel is empty.  The layers' legend
    sits outside the panels, on the right, where it covers no data.
    """
    acts = list(dict.fromkeys(getattr(r, "label", r.activation) for r in runs))
    inits = list(dict.fromkeys(r.init for r in runs))
    full_grid = len(runs) == len(acts) * len(inits) and 1 < len(inits) <= 4
    cols = len(inits) if full_grid else min(len(runs), 3)
    rows = math.ceil(len(runs) / cols)
    Figure, Canvas = require_matplotlib()
    fig = Figure(figsize=(4.2 * cols + 1.3, 3.4 * rows + (0.5 if title else 0)), dpi=100,
                 layout="constrained")
    Canvas(fig)
    grid = fig.add_gridspec(rows, cols)
    first = None  # the runs that did not diverge share one y scale; a diverged one has its own
    for n, run in enumerate(runs):
        diverged = run.history.diverged_at
        ax = fig.add_subplot(grid[n // cols, n % cols], sharey=None if diverged else first)
        if not diverged:
            first = first or ax
        norms = list(zip(*run.history.grad_norms))
        for k, values in enumerate(norms, start=1):
            shown = [max(v, 1e-30) for v in values]
            ax.plot(range(len(shown)), shown, color=COLOURS[(k - 1) % len(COLOURS)], lw=1.5,
                    label=f"layer {k}")
        ax.set_yscale("log")
        collapsed = ", collapsed to the mean" if getattr(run, "collapsed", False) else ""
        if diverged:
            collapsed = f", diverged at epoch {diverged} (own scale)"
        ax.set_title(f"{getattr(run, 'label', run.activation)}, {run.init} init\nlayer 1 / layer {len(norms)}: "
                     f"{run.ratio:.2g}{collapsed}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
        if n % cols == 0:
            ax.set_ylabel(r"$\Vert\partial L/\partial W^k\Vert$")
    handles, labels = (first or fig.axes[0]).get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)  # titles hold file names: "$" is text
    return save(fig, path, force)
