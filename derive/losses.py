"""Loss functions: ONE table entry each.

An entry gives the loss of one row as a sum (or mean) over outputs of a per-output term
``term(y_j, ŷ_j)``; ∂L/∂ŷ_j is derived by SymPy from it.  ``numpy`` evaluates the per-row
loss stably (probabilities clipped away from exactly 0 and 1 only inside the logarithm).
Each entry also owns every per-name decision the rest of the code makes about it: the
target domain (``targets``: real numbers, 0/1, one-hot rows, ±1 labels; one-hot lets the
derivation reduce softmax + cce to ŷ - y), the task (classification or regression), the
metric a trained network is judged by, how class labels are read off the outputs
(:meth:`Loss.decide`), and, for a loss with a corner, ∂L/∂ŷ there (``kink``, checked against
the derived one).  Over a batch the loss is the mean over rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy


@dataclass(frozen=True)
class Targets:
    """A loss's target domain: ``kind`` one of real, binary, one_hot, sign; ``labels`` the
    values a target takes (None: any real number)."""

    kind: str
    labels: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {self.kind!r}; known: {', '.join(TARGET_KINDS)}")


TARGET_KINDS = ("real", "binary", "one_hot", "sign")
REAL = Targets("real")
BINARY = Targets("binary", (0, 1))
ONE_HOT = Targets("one_hot", (0, 1))  # and each row sums to 1
SIGN = Targets("sign", (-1, 1))

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class LossKink:
    """Where a loss has a corner (the equation ``at`` in the stand-ins TARGET, PREDICTION:
    y·ŷ = 1) and the ∂ℓ/∂ŷ the table takes there."""

    at: sympy.Expr
    grad: sympy.Expr
    why: str = ""


@dataclass(frozen=True)
class Loss:
    """One row of the loss table.  ``canonical`` is the output activation it pairs with (its
    canonical link: sigmoid for bce, softmax for cce), for which δ of the output is ŷ - y."""

    name: str
    term: Callable[[sympy.Expr, sympy.Expr], sympy.Expr]
    numpy: Callable[[np.ndarray, np.ndarray], np.ndarray]
    targets: Targets = REAL
    task: str = "regression"
    metric: str = "rmse"
    mean_over_outputs: bool = False
    kink: LossKink | None = None
    canonical: str | None = None
    doc: str = ""

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: unknown task {self.task!r}; known: {', '.join(TASKS)}")

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

    @property
    def one_hot(self) -> bool:
        """Targets are one-hot rows (they sum to one over the outputs)."""
        return self.targets.kind == "one_hot"

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def squared(self) -> bool:
        """The term is a square in ŷ ((y - ŷ)², ½(y - ŷ)²): the ½-convention question applies."""
        term = self.term(TARGET, PREDICTION)
        return bool(term.is_polynomial(PREDICTION)) and sympy.degree(term, PREDICTION) == 2

    def decide(self, P: np.ndarray) -> np.ndarray:
        """Class indices 0..k-1 of a (rows × outputs) array of targets or predictions: the arg
        max of one-hot rows, ŷ ≥ ½ for 0/1 targets, ŷ ≥ 0 for ±1 labels (first output)."""
        if not self.classification:
            raise ValueError(f"{self.name} is not a classification loss")
        P = np.asarray(P)
        if self.one_hot:
            return P.argmax(axis=1)
        threshold = sum(self.targets.labels) / 2  # halfway between the two labels
        return (P[:, 0] >= threshold).astype(int)

    def n_classes(self, n_outputs: int) -> int:
        """Classes a network with ``n_outputs`` outputs tells apart (two from one 0/1 or ±1)."""
        return n_outputs if self.one_hot else 2

    def per_output(self, n_outputs: int) -> sympy.Expr:
        """One output's share of L in the stand-ins TARGET, PREDICTION: ℓ, or ℓ/n for a mean."""
        term = self.term(TARGET, PREDICTION)
        return term / n_outputs if self.mean_over_outputs else term

    def d_per_output(self, n_outputs: int) -> sympy.Expr:
        """∂L/∂ŷ_j in the stand-ins: SymPy differentiates ONE generic term, once; no other
        output's term contains ŷ_j, so substituting (y_j, ŷ_j) for (TARGET, PREDICTION) gives
        ∂L/∂ŷ_j at any width (differentiating the whole sum per output was O(width²))."""
        return _d_per_output(self, n_outputs)

    def row(self, ys, yhats) -> sympy.Expr:
        """L of one row: the per-output terms summed (or averaged)."""
        total = sympy.Add(*[self.term(y, yh) for y, yh in zip(ys, yhats)])
        return total / len(ys) if self.mean_over_outputs else total


#: The generic target and prediction of one output, substituted by (y_j, ŷ_j) per output.
TARGET = sympy.Symbol("y_generic", real=True)
PREDICTION = sympy.Symbol("yhat_generic", real=True)


@lru_cache(maxsize=None)
def _d_per_output(loss: "Loss", n_outputs: int) -> sympy.Expr:
    d = sympy.diff(loss.per_output(n_outputs), PREDICTION)
    if n_outputs == 1:
        _check_kink(loss, d)
    return d


def _check_kink(loss: "Loss", d: sympy.Expr) -> None:
    """The derived ∂ℓ/∂ŷ at the kink, for every label, must be the table's stated value."""
    if loss.kink is None:
        return
    for y in loss.targets.labels or ():
        at = loss.kink.at
        for p in sympy.solve((at.lhs - at.rhs).subs(TARGET, y), PREDICTION):
            got = d.subs({TARGET: y, PREDICTION: p})
            want = loss.kink.grad.subs({TARGET: y, PREDICTION: p})
            if got != want:
                raise ValueError(f"{loss.name}: derived ∂ℓ/∂ŷ at its kink (y = {y}, ŷ = {p}) is "
                                 f"{got}, but the table states {want}")


def _log(P: np.ndarray) -> np.ndarray:
    """log p with p kept inside [tiny, 1]: finite at p = 0, exact elsewhere."""
    return np.log(np.clip(P, np.finfo(P.dtype).tiny, 1.0))


def _xlogy(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """y·log p with 0·log 0 = 0."""
    return np.where(Y == 0, 0.0, Y * _log(P)).astype(P.dtype)


LOSSES: dict[str, Loss] = {
    l_.name: l_
    for l_ in [
        Loss("se", lambda y, p: (y - p) ** 2,
             lambda Y, P: ((Y - P) ** 2).sum(axis=-1), doc="Σ(y-ŷ)², the notes' loss"),
        Loss("half_se", lambda y, p: (y - p) ** 2 / 2,
             lambda Y, P: ((Y - P) ** 2).sum(axis=-1) / 2, doc="½Σ(y-ŷ)², the delta-rule texts'"),
        Loss("mse", lambda y, p: (y - p) ** 2,
             lambda Y, P: ((Y - P) ** 2).mean(axis=-1), mean_over_outputs=True,
             doc="mean over outputs of (y-ŷ)²"),
        Loss("bce", lambda y, p: -(y * sympy.log(p) + (1 - y) * sympy.log(1 - p)),
             lambda Y, P: -(_xlogy(Y, P) + _xlogy(1 - Y, 1 - P)).sum(axis=-1),
             targets=BINARY, task="classification", metric="accuracy", canonical="sigmoid",
             doc="binary cross-entropy (log-loss)"),
        Loss("cce", lambda y, p: -y * sympy.log(p),
             lambda Y, P: -_xlogy(Y, P).sum(axis=-1),
             targets=ONE_HOT, task="classification", metric="accuracy", canonical="softmax",
             doc="categorical cross-entropy, -Σ y log ŷ"),
        Loss("hinge", lambda y, p: sympy.Max(0, 1 - y * p),
             lambda Y, P: np.maximum(0, 1 - Y * P).sum(axis=-1),
             targets=SIGN, task="classification", metric="accuracy",
             kink=LossKink(sympy.Eq(TARGET * PREDICTION, 1, evaluate=False), -TARGET / 2,
                           "H(0) = ½: the middle of the subgradients [-y, 0], as "
                           "torch.maximum(1 - y·ŷ, 0) (torch.clamp gives -y, torch.relu 0)"),
             doc="max(0, 1 - y·ŷ), y in {-1, +1}"),
    ]
}


def is_classification(name: str) -> bool:
    """True for a loss whose targets are class labels (bce, cce, hinge)."""
    return LOSSES[name].classification


def is_canonical_pair(activation: str, loss: str) -> bool:
    """True for the output activation and loss whose δ is ŷ - y (sigmoid + bce, softmax + cce)."""
    return LOSSES[loss].canonical == activation


def names_where(**columns) -> tuple[str, ...]:
    """The losses whose columns have the given values, in table order:
    ``names_where(task="regression")`` -> ("se", "half_se", "mse")."""
    return tuple(n for n, loss in LOSSES.items()
                 if all(getattr(loss, k) == v for k, v in columns.items()))


def metric_value(name: str, Y: np.ndarray, P: np.ndarray) -> float:
    """The loss's metric over a set: accuracy (fraction of rows whose class :meth:`Loss.decide`
    reads right) for classification, root-mean-square error over every output otherwise."""
    loss = LOSSES[name]
    Y, P = np.asarray(Y), np.asarray(P)
    if loss.metric == "accuracy":
        return float((loss.decide(Y) == loss.decide(P)).mean()) if len(Y) else 0.0
    return float(np.sqrt(np.mean((Y - P) ** 2))) if Y.size else 0.0
