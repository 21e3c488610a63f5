"""The vanishing gradient problem, measured: ‖∂L/∂W^k‖ per layer over the first epochs.

Each run trains one deep network (the given widths, the same hidden activation in every
hidden layer, a linear output, loss se) on one synthetic regression set with the generated
trainer, full-batch, and records the gradient norm of every layer after every epoch.  With
sigmoid or tanh the norms shrink layer by layer towards the input (σ' ≤ ¼ at every layer);
with ReLU and He initialisation they stay of one size.  That is the notes' list of remedies
made visible: ReLU, better initialisation, fewer layers.

The summary number of a run is :attr:`Run.ratio`, ‖∂L/∂W^1‖ / ‖∂L/∂W^L‖ (first layer over
last) at the initial weights, before any update: later the output layer settles on the mean
and its own gradient shrinks too, so later ratios mix two effects.  The plot
(:func:`backprop.pictures.plots.plot_vanishing`) shows them all.

A run whose net ends up predicting the targets' mean for every row (:attr:`Run.collapsed`:
predictions' std under 5 % of the targets', loss within 5 % of the mean's) gets a note: the
sigmoid net's loss stops falling there, and without the note its flat line looks like success.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backprop.core.errors import UserError
from backprop.derive.spec import make_spec, parse_layers

from . import runner

#: Hidden activations compared by default; ReLU is always added as the reference.
DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "relu")
DEFAULT_INITS = ("glorot", "he")
#: A run has collapsed to the mean when its predictions' std is below this fraction of the
#: targets' (for every output) ...
COLLAPSED_STD = 0.05
#: ... and its final loss is within this factor of the loss of always predicting the mean.
COLLAPSED_LOSS = 1.05


@dataclass
class Run:
    """One (activation, initialisation) training run and its per-layer gradient norms."""

    activation: str
    init: str
    spec: object
    history: runner.History
    #: After training: std of each output's predictions and of its targets, and the loss of
    #: always predicting the targets' mean (sum over outputs of their variance, loss se).
    pred_std: list[float] = field(default_factory=list)
    target_std: list[float] = field(default_factory=list)
    mean_loss: float | None = None
    #: The notes' remedy applied to every hidden layer it fits: none, residual, batch_norm.
    remedy: str = "none"

    def __repr__(self) -> str:
        return f"Run({self.label}, {self.init}, ratio {self.ratio:.3g})"

    @property
    def label(self) -> str:
        """The hidden activation, and the remedy when there is one: "sigmoid + residual"."""
        return self.activation if self.remedy == "none" else f"{self.activation} + {self.remedy}"

    @property
    def ratio(self) -> float:
        """‖∂L/∂W^1‖ / ‖∂L/∂W^L‖ at the initial weights."""
        first = self.history.grad_norms[0]
        if first[-1] > 0:
            return first[0] / first[-1]
        return float("inf") if first[0] > 0 else float("nan")  # 0/0: no gradient anywhere

    def row(self) -> dict:
        norms = np.asarray(self.history.grad_norms)
        return {"activation": self.activation, "remedy": self.remedy, "init": self.init,
                "first_epoch": norms[0].tolist(), "last_epoch": norms[-1].tolist(),
                "ratio_first_to_last_layer": self.ratio if np.isfinite(self.ratio) else None,
                "loss_initial": self.history.losses[0], "loss_final": self.history.losses[-1],
                "loss_of_the_mean": self.mean_loss, "prediction_std": self.pred_std,
                "target_std": self.target_std, "collapsed_to_mean": self.collapsed}

    @property
    def collapsed(self) -> bool:
        """The net predicts (nearly) the same value for every row, the targets' mean: its
        predictions' spread is tiny next to the targets' and its loss is the mean's loss."""
        if self.mean_loss is None or self.history.diverged_at or not self.pred_std:
            return False
        flat = all(p < COLLAPSED_STD * t for p, t in zip(self.pred_std, self.target_std))
        return flat and self.history.losses[-1] <= COLLAPSED_LOSS * self.mean_loss


def dataset(n_inputs: int, n_outputs: int, rows: int = 256, seed: int = 0):
    """X ~ N(0, 1); Y = sin(X·V) for a fixed random V: smooth, nonlinear, unit scale."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, n_inputs))
    V = rng.standard_normal((n_inputs, n_outputs))
    return X, np.sin(X @ V)


#: The notes' remedies for vanishing gradients that change the network, by name: the spec
#: keywords that apply one to every hidden layer it fits (a skip needs equal widths).
REMEDIES = {
    "none": lambda widths: {},
    "residual": lambda widths: {"residual": tuple(widths[k] == widths[k - 1]
                                                  for k in range(1, len(widths) - 1))},
    "batch_norm": lambda widths: {"batch_norm": (True,) * (len(widths) - 2)},
}


def remedy_spec(widths, activation: str, remedy: str):
    """The deep network of a run: ``activation`` in every hidden layer, a linear output,
    loss se, and the remedy on every hidden layer it fits."""
    if remedy not in REMEDIES:
        raise UserError(f"unknown remedy {remedy!r} in --compare; choose {', '.join(r for r in REMEDIES if r != 'none')}")
    extra = REMEDIES[remedy](widths)
    if remedy == "residual" and not any(extra["residual"]):
        raise UserError(f"no hidden layer of {'-'.join(map(str, widths))} has the width of the layer "
                        "before it, so none can add a skip; try --layers 2-8-8-8-8-8-1")
    return make_spec(widths, [activation] * (len(widths) - 2) + ["linear"], "se", **extra)


def run_all(layers: str, activations, inits, *, epochs: int = 20, lr: float = 0.1,
            seed: int | None = 0, rows: int = 256, dtype: str = "float64",
            remedies=("none",)) -> list[Run]:
    """Every (activation, remedy, init) on the same data, each from its own seeded weights:
    a remedy's runs start from the same weights as the plain network's (γ = 1, β = 0)."""
    widths = parse_layers(layers) if isinstance(layers, str) else tuple(layers)
    if len(widths) < 3:
        raise UserError(f"vanishing gradients need hidden layers; {'-'.join(map(str, widths))} has "
                        "none, try --layers 2-8-8-8-8-8-1")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise UserError(f"the seed must be a whole number >= 0, got {seed!r}")
    for init in inits:
        if init not in runner.INIT_SCHEMES:
            raise UserError(f"unknown initialisation {init!r}; choose {', '.join(runner.INIT_SCHEMES)}")
    for remedy in remedies:  # an unknown remedy, or a skip that fits nowhere: before any training
        remedy_spec(widths, "linear", remedy)
    X, Y = dataset(widths[0], widths[-1], rows, seed or 0)
    X, Y = X.astype(dtype), Y.astype(dtype)
    runs = []
    for act in activations:
        for remedy in remedies:
            spec = remedy_spec(widths, act, remedy)
            trainer = runner.load_trainer(spec, dtype=dtype)
            for init in inits:
                params = runner.init_params(trainer, init, seed=seed)
                hist = runner.fit(trainer, params, X, Y, epochs=epochs, lr=lr, gd="batch", seed=seed,
                                  track_grads=True, on_diverge="stop")
                runs.append(Run(act, init, spec, hist, *spread(trainer, params, X, Y), remedy=remedy))
    return runs


def spread(trainer, params: dict, X: np.ndarray, Y: np.ndarray):
    """(std of each output's predictions, std of each target, loss se of predicting the mean).
    A batch-normalised net is read as it trained, on the batch's statistics."""
    bn = {"training": True} if getattr(trainer, "BATCH_NORM", None) else {}
    with np.errstate(all="ignore"):
        P = np.asarray(trainer.forward(params, X, **bn), dtype=float)
    target = Y.std(axis=0)
    return P.std(axis=0).tolist(), target.tolist(), float((target ** 2).sum())


def format_table(runs: list[Run]) -> str:
    """Markdown table: one row per run, ‖∂L/∂W^k‖ of every layer before the first update."""
    depth = len(runs[0].history.grad_norms[0])
    head = ["network", "init"] + [f"‖∂L/∂W^{k}‖" for k in range(1, depth + 1)] + \
           ["layer 1 / layer L", "loss start → end"]
    body = []
    for r in runs:
        norms = r.history.grad_norms[0]
        end = "diverged" if r.history.diverged_at else f"{r.history.losses[-1]:.3g}"
        body.append([r.label, r.init] + [f"{v:.2e}" for v in norms] +
                    [f"{r.ratio:.2g}", f"{r.history.losses[0]:.3g} → {end}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(b) for b in body)])


def collapse_note(run: Run) -> str | None:
    """A line when the run learned nothing but the targets' mean, else None."""
    if not run.collapsed:
        return None
    return (f"{run.label}, {run.init} init: collapsed to the mean — after {run.history.epochs} "
            f"epochs its predictions hardly vary (std {_num(max(run.pred_std))} against the targets' "
            f"{_num(min(run.target_std))}) and its loss {run.history.losses[-1]:.4g} ≈ "
            f"{run.mean_loss:.4g}, the loss of always predicting the targets' mean: "
            "it has learned the mean and nothing from x")


def _num(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def verdict(run: Run) -> str:
    """One line: does this run vanish (first layer ≥ 10× smaller than the last)?"""
    r = run.ratio
    top = max(run.history.grad_norms[0])
    if top < 1e-6:
        return (f"{run.label}, {run.init} init: every layer's gradient is tiny (at most {top:.1e}): "
                "weights this small pass no signal — vanishing everywhere")
    if r == 0:  # e.g. step: its derivative is 0, so nothing reaches layer 1
        return (f"{run.label}, {run.init} init: layer 1 gets no gradient at all (the last layer gets "
                f"{run.history.grad_norms[0][-1]:.1e}) — vanishing completely")
    if r < 0.1:
        return (f"{run.label}, {run.init} init: layer 1 gets {1 / r:.3g}× less gradient than the "
                "last layer — vanishing")
    return f"{run.label}, {run.init} init: layer 1 / last layer = {r:.2g} — gradients reach the input"
