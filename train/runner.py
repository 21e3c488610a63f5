"""Training runs over the generated trainer: one loop, three gradient-descent variants.

Nothing here computes a gradient.  The trainer comes from
:func:`backprop.codegen.load_trainer`, the same module ``backprop generate`` writes, and
:func:`fit` calls its ``train(params, X, Y, epochs, lr, batch_size, shuffle, seed, callback)``.
The callback, run after every epoch, is where this module watches: the loss over the whole
data set, wall time per epoch (the callback's own time left out), a few weights, per-layer
gradient norms ‖∂L/∂W^k‖ (through the trainer's ``gradients``) and the progress bar.

The variants differ only in the batch size handed to the trainer (:data:`GD_VARIANTS`).
The optimiser (sgd, momentum, nesterov, rmsprop, adam: derive/optimizers.py's table) is the
trainer's too: :func:`optimizer_for` picks its settings, the trainer's ``train(...,
optimizer=, state=)`` applies them, and the state (step count, moments) comes back in
:attr:`History.optimizer_state` for the model file, so a resumed run continues exactly.
"""
from __future__ import annotations

import copy

import math
import time
from dataclasses import dataclass, field

import numpy as np

from backprop.core.errors import UserError
from backprop.core.init_schemes import DEFAULT, SCHEMES, TRAINER
from backprop.derive.optimizers import full
from backprop.derive.optimizers import settings as check_optimizer
from backprop.derive.spec import Spec

#: GD variant -> how it picks the batch size from (--batch-size, number of rows).
GD_VARIANTS = {
    "batch": lambda batch_size, n: None,  # the whole data set, one update per epoch
    "sgd": lambda batch_size, n: 1,  # one row, n updates per epoch
    "minibatch": lambda batch_size, n: min(batch_size or default_batch_size(n), n),  # ceil(n/B)
}


def default_batch_size(n_rows: int) -> int:
    """32 rows, or a quarter of a small table (at least 2), so minibatch differs from sgd and batch."""
    return min(n_rows, max(2, min(32, n_rows // 4)))

#: Every initialisation of the table (backprop.core.init_schemes): the generated trainer's,
#: plus those drawn here (small: N(0, 0.01²), biases 0).
INIT_SCHEMES = tuple(SCHEMES)

#: Gradient norms are measured on at most this many rows (a fixed, evenly spaced subset).
GRAD_ROWS = 4096

#: Weights traced per epoch for the weights-per-epoch plot.
TRACED_WEIGHTS = 24


def load_trainer(spec: Spec, dtype: str = "float64", backend: str = "numpy"):
    """The generated trainer module for ``spec`` (see :mod:`backprop.codegen`): NumPy, or the
    same derivation on numba or JAX (a missing engine is a one-line error naming its extra)."""
    try:
        from backprop.codegen import load_trainer as _load
    except ImportError as exc:  # pragma: no cover - codegen ships with the package
        raise UserError(f"the trainer generator backprop.codegen cannot be imported ({exc}); "
                        "reinstall backprop") from None
    return _load(spec, dtype=dtype, backend=backend)


def batch_size_for(gd: str, batch_size: int | None, n_rows: int) -> int | None:
    """Batch size handed to the trainer (None = full batch)."""
    if gd not in GD_VARIANTS:
        raise UserError(f"unknown --gd {gd!r}; choose {', '.join(GD_VARIANTS)}")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    return GD_VARIANTS[gd](batch_size, n_rows)


def updates_per_epoch(batch_size: int | None, n_rows: int) -> int:
    return 1 if batch_size is None else math.ceil(n_rows / batch_size)


def init_params(trainer, scheme: str = DEFAULT, seed: int | None = None) -> dict:
    """Fresh parameters: the trainer's own scheme, or a table entry it lacks (small) drawn here,
    weights from N(0, std²) over the trainer's zeros (the classic vanishing case)."""
    if scheme not in INIT_SCHEMES:
        raise UserError(f"unknown --init {scheme!r}; choose {', '.join(INIT_SCHEMES)}")
    if scheme in TRAINER:
        return trainer.init_params(seed=seed, scheme=scheme)
    params = trainer.init_params(seed=seed, scheme="zeros")
    rng = np.random.default_rng(seed)
    for key, value in params.items():
        if key.startswith("W"):
            params[key] = (SCHEMES[scheme].std * rng.standard_normal(value.shape)).astype(value.dtype)
    return params


def copy_params(params: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in params.items()}


# --------------------------------------------------------------------------- optimisers


def optimizer_for(spec: Spec, name: str | None = None, lr: float | None = None) -> dict:
    """The optimiser a run trains with, every setting filled in: ``name`` (--optimizer; the
    spec's own settings when it names the spec's optimiser, else that entry's defaults), else
    the spec's [optimizer]; ``lr`` (--lr) in place of its learning rate."""
    own = full(spec.optimizer)
    if name is not None and name != own["name"]:
        own = full(check_optimizer({"name": name}, "--optimizer"))
    if lr is not None:
        own = full(check_optimizer({**own, "lr": lr}, "--lr"))
    return own


def optimizer_state(trainer, params: dict, optimizer: dict, resumed: dict | None = None) -> dict:
    """The state a run starts from: ``resumed`` (a model file's) when it is the same
    optimiser's, else the trainer's fresh one (t = 0, zero moments)."""
    if resumed is not None and resumed.get("name") == optimizer["name"]:
        return {k: (copy.deepcopy(v) if k == "shuffle" else copy_params(v) if isinstance(v, dict) else v)
                for k, v in resumed.items()}  # "shuffle": the generator's state, plain JSON
    return trainer.optimizer_state(params, optimizer)


# --------------------------------------------------------------------------- parameters as JSON


# --------------------------------------------------------------------------- the loop


class Diverged(Exception):
    """Raised from the epoch callback to stop a run whose loss is no longer finite."""


@dataclass
class History:
    """What one run measured, epoch by epoch (index 0 = before the first update)."""

    gd: str
    batch_size: int | None
    n_rows: int
    losses: list[float] = field(default_factory=list)  # loss over all rows, after each epoch
    running: list[float] = field(default_factory=list)  # the trainer's own per-epoch loss
    seconds: list[float] = field(default_factory=list)  # cumulative training time after each epoch
    grad_norms: list[list[float]] = field(default_factory=list)  # [epoch][layer] ‖∂L/∂W^k‖
    weights: list[list[float]] = field(default_factory=list)  # [epoch][traced weight]
    weight_names: list[str] = field(default_factory=list)
    diverged_at: int | None = None  # epoch whose loss stopped being finite (with on_diverge="stop")
    optimizer: dict | None = None  # the optimiser's settings (name, lr, ...)
    optimizer_state: dict | None = None  # its state after the run (for the model file)

    def __repr__(self) -> str:
        return f"History({self.gd}, {self.epochs} epochs, loss {self.losses[0]:.4g} -> {self.losses[-1]:.4g})"

    @property
    def epochs(self) -> int:
        return len(self.losses) - 1

    @property
    def updates_per_epoch(self) -> int:
        return updates_per_epoch(self.batch_size, self.n_rows)

    @property
    def time_per_epoch(self) -> float:
        return self.seconds[-1] / max(self.epochs, 1)

    def to_csv(self) -> str:
        """epoch,loss,seconds[,grad_norm_W1,...] with epoch 0 the state before training."""
        cols = ["epoch", "loss", "seconds"]
        n_layers = len(self.grad_norms[0]) if self.grad_norms else 0
        cols += [f"grad_norm_W{k}" for k in range(1, n_layers + 1)]
        lines = [",".join(cols)]
        for epoch, loss in enumerate(self.losses):
            row = [str(epoch), repr(float(loss)), f"{(self.seconds[epoch - 1] if epoch else 0.0):.6f}"]
            if n_layers:
                row += [repr(float(v)) for v in self.grad_norms[epoch]]
            lines.append(",".join(row))
        return "\n".join(lines) + "\n"

    def epoch_reaching(self, target: float) -> int | None:
        """First epoch whose loss is at or below ``target`` (None if never)."""
        for epoch, value in enumerate(self.losses):
            if value <= target:
                return epoch
        return None


def traced_weights(params: dict, limit: int = TRACED_WEIGHTS) -> list[tuple[str, int, int]]:
    """Which weights the weights-per-epoch plot follows: all, or the first few of every layer."""
    layers = sorted((k for k in params if k.startswith("W")), key=lambda k: int(k[1:]))
    per_layer = max(1, limit // max(len(layers), 1))
    picks = []
    for key in layers:
        rows, cols = params[key].shape
        for flat in range(min(rows * cols, per_layer)):
            picks.append((key, flat // cols, flat % cols))
    return picks


def weight_label(key: str, i: int, j: int) -> str:
    """w^k_ij in the notes' notation (1-based, from node i of layer k-1 to node j of layer k)."""
    return f"w^{key[1:]}_{i + 1}{j + 1}"


def grad_norms(trainer, params: dict, X: np.ndarray, Y: np.ndarray) -> list[float]:
    """‖∂L/∂W^k‖ (Frobenius) for every layer k, from the trainer's own gradients."""
    g = trainer.gradients(params, X, Y)
    return [float(np.linalg.norm(g[f"W{k}"])) for k in range(1, len(trainer.LAYERS))]


def _subset(X: np.ndarray, Y: np.ndarray, limit: int):
    if len(X) <= limit:
        return X, Y
    idx = np.linspace(0, len(X) - 1, limit).astype(int)
    return X[idx], Y[idx]


def fit(trainer, params: dict, X: np.ndarray, Y: np.ndarray, *, epochs: int, lr: float,
        gd: str = "batch", batch_size: int | None = None, seed: int | None = None,
        shuffle: bool = True, progress=None, track_weights: bool = False,
        track_grads: bool = False, on_diverge: str = "raise", optimizer: dict | None = None,
        state: dict | None = None) -> History:
    """Train ``params`` in place with the generated trainer and return what was measured.

    Parameters
    ----------
    trainer : generated trainer module (``load_trainer(spec)``).
    params : {"W1": (n0, n1), "b1": (n1,), ...}, updated in place.
    X : (n_rows, n_inputs) features; Y : (n_rows, n_outputs) targets.
    epochs, lr : passes over the data and learning rate η.
    gd : "batch", "sgd" or "minibatch" (with ``batch_size``).
    progress : a :class:`~backprop.train.progress.Progress`, or None.
    on_diverge : "raise" a UserError when the loss stops being finite, or "stop" and return
        the history so far with ``diverged_at`` set.
    optimizer : settings from :func:`optimizer_for` (None: sgd at ``lr``); its "lr" is ``lr``.
    state : the optimiser state to continue (:func:`optimizer_state`; None: a fresh one),
        updated in place and returned in ``History.optimizer_state``.

    Returns
    -------
    History with the whole-data loss after each epoch (index 0 = before training).

    Raises
    ------
    UserError when the loss stops being finite (learning rate too large, inputs unscaled).
    """
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserError(f"--lr must be a positive number, got {lr}")
    n = len(X)
    bs = batch_size_for(gd, batch_size, n)
    optimizer = full(check_optimizer({**(optimizer or {"name": "sgd"}), "lr": lr}, "--lr"))
    state = state if state is not None else optimizer_state(trainer, params, optimizer)
    hist = History(gd=gd, batch_size=bs, n_rows=n, optimizer=optimizer, optimizer_state=state)
    Xg, Yg = _subset(X, Y, GRAD_ROWS)
    picks = traced_weights(params) if track_weights else []
    hist.weight_names = [weight_label(*p) for p in picks]

    def observe(params, running=None):
        value = float(trainer.loss(params, X, Y))
        hist.losses.append(value)
        if running is not None:
            hist.running.append(float(running))
        if track_weights:
            hist.weights.append([float(params[k][i, j]) for k, i, j in picks])
        if track_grads:
            hist.grad_norms.append(grad_norms(trainer, params, Xg, Yg))
        return value

    observe(params)
    if not math.isfinite(hist.losses[0]):
        raise UserError("the loss is not finite before training starts; scale the inputs "
                        "(--standardise) or check the data")
    if progress is not None:
        progress.update(0, hist.losses[0])  # something on screen before a long first epoch
    clock = {"spent": 0.0, "mark": time.perf_counter()}

    def callback(epoch, loss, params):
        clock["spent"] += time.perf_counter() - clock["mark"]
        hist.seconds.append(clock["spent"])
        value = observe(params, loss)
        if progress is not None:
            progress.update(epoch, value)
        if not math.isfinite(value):
            raise Diverged(epoch)
        clock["mark"] = time.perf_counter()

    try:
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.train(params, X, Y, epochs, optimizer["lr"], batch_size=bs, shuffle=shuffle,
                          seed=seed, callback=callback, optimizer=optimizer, state=state)
    except Diverged as exc:
        hist.diverged_at = exc.args[0]
        if on_diverge == "stop":
            return hist
        raise UserError(f"the loss diverged (became {hist.losses[-1]}) in epoch {exc.args[0]} with "
                        f"--lr {lr:g}; lower --lr, or scale the inputs with --standardise") from None
    finally:
        if progress is not None:
            progress.close()
    return hist
