"""Loss functions: ONE table entry each.

An entry gives the loss of one row as a sum (or mean) over outputs of a per-output term
``term(y_j, ŷ_j)``; ∂L/∂ŷ_j is derived by SymPy from it.  ``numpy`` evaluates the per-row
loss stably (probabilities clipped away from exactly 0 and 1 only inside the logarithm).
``one_hot`` marks losses whose targets sum to one over the outputs (categorical
cross-entropy): the derivation uses that to reduce softmax + cce to ŷ - y.  Over a batch the
loss is the mean over rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy


@dataclass(frozen=True)
class Loss:
    """One row of the loss table."""

    name: str
    term: Callable[[sympy.Expr, sympy.Expr], sympy.Expr]
    numpy: Callable[[np.ndarray, np.ndarray], np.ndarray]
    mean_over_outputs: bool = False
    one_hot: bool = False
    doc: str = ""

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

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
    return sympy.diff(loss.per_output(n_outputs), PREDICTION)


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
             doc="binary cross-entropy (log-loss)"),
        Loss("cce", lambda y, p: -y * sympy.log(p),
             lambda Y, P: -_xlogy(Y, P).sum(axis=-1), one_hot=True,
             doc="categorical cross-entropy, -Σ y log ŷ"),
        Loss("hinge", lambda y, p: sympy.Max(0, 1 - y * p),
             lambda Y, P: np.maximum(0, 1 - Y * P).sum(axis=-1), doc="max(0, 1 - y·ŷ), y in {-1, +1}"),
    ]
}
