"""Batch vs stochastic vs mini-batch gradient descent, measured from the same initial weights.

The notes claim "batch GD is faster than stochastic" (it updates once per epoch, vectorised)
and "stochastic GD converges faster" (it updates n times per epoch).  Both are claims about
different clocks: the first about time per epoch, the second about epochs.  :func:`verdicts`
checks each against the measurement and against the other clock, so a student sees which
way each claim holds on their data and machine.

:func:`compare_optimizers` is the same measurement across optimisers (sgd, momentum, adam, ...:
derive/optimizers.py) with one GD variant: the same network, data and initial weights, one
loss curve each (:func:`optimizer_table` for the table).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import runner
from .progress import seconds

VARIANTS = ("batch", "sgd", "minibatch")


@dataclass
class Row:
    """One line of the comparison table."""

    variant: str
    batch_size: int
    updates_per_epoch: int
    ms_per_epoch: float
    us_per_update: float
    final_loss: float
    epochs_to_target: int | None
    seconds_to_target: float | None
    diverged_at: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compare(trainer, params0: dict, X: np.ndarray, Y: np.ndarray, *, epochs: int, lr: float,
            batch_size: int | None = None, seed: int | None = None, progress_factory=None) -> dict:
    """{variant: History}: each variant trained from a copy of ``params0`` with the same data."""
    runs = {}
    for gd in VARIANTS:
        bar = progress_factory(gd) if progress_factory else None
        runs[gd] = runner.fit(trainer, runner.copy_params(params0), X, Y, epochs=epochs, lr=lr,
                              gd=gd, batch_size=batch_size, seed=seed, progress=bar,
                              on_diverge="stop")
    return runs


def target_loss(runs: dict) -> float:
    """L*: the worst final loss among the variants that stayed finite (every one reached it)."""
    finals = [h.losses[-1] for h in runs.values() if h.diverged_at is None]
    return max(finals) if finals else float("nan")


def table(runs: dict) -> list[Row]:
    target = target_loss(runs)
    rows = []
    for gd, h in runs.items():
        reached = h.epoch_reaching(target) if h.diverged_at is None else None
        rows.append(Row(
            variant=gd,
            batch_size=h.batch_size or h.n_rows,
            updates_per_epoch=h.updates_per_epoch,
            ms_per_epoch=h.time_per_epoch * 1e3,
            us_per_update=h.time_per_epoch / h.updates_per_epoch * 1e6,
            final_loss=h.losses[-1],
            epochs_to_target=reached,
            seconds_to_target=(h.seconds[reached - 1] if reached else 0.0) if reached is not None else None,
            diverged_at=h.diverged_at,
        ))
    return rows


#: Two wall-clock times closer than this factor are called a tie: timer noise on a busy
#: machine is easily 20 %, so a smaller gap says nothing about the method.
TIE = 1.25


def _judge(a: float | None, b: float | None) -> str:
    """TRUE if a < b clearly, FALSE if b < a clearly, TIE within the noise factor."""
    if a is None:
        return "FALSE"
    if b is None:
        return "TRUE"
    if max(a, b) <= TIE * min(a, b):
        return "TIE"
    return "TRUE" if a < b else "FALSE"


def verdicts(rows: list[Row], target: float) -> list[str]:
    """The notes' two claims, each judged on the clock it speaks of and on the other one.

    Epoch counts are exact; wall-clock comparisons within a factor :data:`TIE` are ties."""
    by = {r.variant: r for r in rows}
    b, s = by["batch"], by["sgd"]
    out = []
    ratio = (s.ms_per_epoch / b.ms_per_epoch) if b.ms_per_epoch > 0 else float("inf")
    out.append(
        f'"batch GD is faster": per epoch {_judge(b.ms_per_epoch, s.ms_per_epoch)} here — batch '
        f"{_fmt_s(b.ms_per_epoch / 1e3)}/epoch vs SGD {_fmt_s(s.ms_per_epoch / 1e3)}/epoch "
        f"(SGD/batch = {ratio:.3g}): one vectorised update against {s.updates_per_epoch} small ones.")
    if s.diverged_at is not None or b.diverged_at is not None:
        which = "SGD" if s.diverged_at is not None else "batch GD"
        out.append(f'"SGD converges faster": not measurable — {which} diverged at this learning '
                   "rate; lower --lr.")
        return out
    se, be = s.epochs_to_target, b.epochs_to_target
    ss, bs = s.seconds_to_target, b.seconds_to_target
    in_epochs = se is not None and (be is None or se < be)
    out.append(
        f'"SGD converges faster": in epochs {"TRUE" if in_epochs else "FALSE"}, in wall time '
        f"{_judge(ss, bs)} here — to reach loss {target:.4g} (the worst final "
        f"loss, which all three reached) SGD took {_fmt_epochs(se)} ({_fmt_s(ss)}), batch "
        f"{_fmt_epochs(be)} ({_fmt_s(bs)}).")
    m = by.get("minibatch")
    if m is not None and m.diverged_at is None and m.seconds_to_target is not None:
        times = {r.variant: r.seconds_to_target for r in rows if r.seconds_to_target is not None}
        best = min(times.values())
        fastest = [v for v, t in times.items() if t <= TIE * best]
        out.append(
            f"the middle ground: mini-batch (batch size {m.batch_size}) reached it in "
            f"{_fmt_epochs(m.epochs_to_target)} ({_fmt_s(m.seconds_to_target)}); fastest in wall "
            f"time here: {'all three' if len(fastest) == 3 else ' and '.join(fastest)}"
            + (" (within timing noise)" if len(fastest) > 1 else "") + ".")
    return out


def _fmt_epochs(e) -> str:
    return "—" if e is None else f"{e} epoch{'s' if e != 1 else ''}"


def _fmt_s(t) -> str:
    return seconds(t)


def format_table(rows: list[Row], target: float) -> str:
    """A fixed-width table, also valid Markdown."""
    head = ["variant", "batch size", "updates/epoch", "time/epoch", "time/update",
            "final loss", f"epochs to L*={target:.3g}", "time to L*"]
    body = []
    for r in rows:
        body.append([
            r.variant, str(r.batch_size), str(r.updates_per_epoch), _fmt_s(r.ms_per_epoch / 1e3),
            _fmt_s(r.us_per_update / 1e6),
            f"{r.final_loss:.4g}" if r.diverged_at is None else f"diverged (epoch {r.diverged_at})",
            "—" if r.epochs_to_target is None else str(r.epochs_to_target),
            _fmt_s(r.seconds_to_target),
        ])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(b) for b in body)])


def synthetic(n_rows: int, n_inputs: int, n_outputs: int, seed: int | None = 0):
    """A regression set: X ~ N(0, 1), Y = X·V + 0.1·noise (a fixed random V), as float64."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_inputs))
    V = rng.standard_normal((n_inputs, n_outputs)) / np.sqrt(n_inputs)
    Y = X @ V + 0.1 * rng.standard_normal((n_rows, n_outputs))
    return X, Y


# --------------------------------------------------------------------------- optimisers


def compare_optimizers(trainer, params0: dict, X: np.ndarray, Y: np.ndarray, *, optimizers: list[dict],
                       epochs: int, gd: str = "batch", batch_size: int | None = None,
                       seed: int | None = None, progress_factory=None) -> dict:
    """{optimizer name: History}: each optimiser (settings from ``runner.optimizer_for``)
    trained from a copy of ``params0`` on the same rows with the same GD variant."""
    runs = {}
    for opt in optimizers:
        bar = progress_factory(opt["name"]) if progress_factory else None
        runs[opt["name"]] = runner.fit(trainer, runner.copy_params(params0), X, Y, epochs=epochs,
                                       lr=opt["lr"], gd=gd, batch_size=batch_size, seed=seed,
                                       progress=bar, on_diverge="stop", optimizer=opt)
    return runs


@dataclass
class OptimizerRow:
    """One line of the optimiser table."""

    optimizer: str
    lr: float
    final_loss: float
    epochs_to_target: int | None
    ms_per_epoch: float
    diverged_at: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def optimizer_table(runs: dict) -> list[OptimizerRow]:
    """Per optimiser: η, final loss, epochs to L* (the worst finite final loss), time/epoch."""
    target = target_loss(runs)
    return [OptimizerRow(name, h.optimizer["lr"], h.losses[-1],
                         h.epoch_reaching(target) if h.diverged_at is None else None,
                         h.time_per_epoch * 1e3, h.diverged_at) for name, h in runs.items()]


def format_optimizer_table(rows: list[OptimizerRow], target: float) -> str:
    """A fixed-width table, also valid Markdown."""
    head = ["optimizer", "η", "final loss", f"epochs to L*={target:.3g}", "time/epoch"]
    body = [[r.optimizer, f"{r.lr:g}",
             f"{r.final_loss:.4g}" if r.diverged_at is None else f"diverged (epoch {r.diverged_at})",
             "—" if r.epochs_to_target is None else str(r.epochs_to_target), _fmt_s(r.ms_per_epoch / 1e3)]
            for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(b) for b in body)])
