"""Hand-written vectorised NumPy: what a careful user writes without a generator.

It is the reference every other row is checked against (final loss) and divided by (time).
Deliberately idiomatic rather than tuned: ``A @ W + b`` products that allocate, derivatives
through the stored outputs (sklearn's habit), the fused softmax/cce output delta ``ŷ - y``,
no input gradient for the first layer, and the dtype of the data kept throughout.
"""
from __future__ import annotations

import numpy as np

from .base import Runner


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    E /= E.sum(axis=1, keepdims=True)
    return E


ACTIVATIONS = {
    "linear": lambda Z: Z,
    "tanh": np.tanh,
    "sigmoid": lambda Z: 0.5 * (1.0 + np.tanh(0.5 * Z)),
    "relu": lambda Z: np.maximum(Z, 0),
    "softmax": _softmax,
}

#: g'(z) written through the output a = g(z); scales the delta in place.
DERIVATIVES = {
    "linear": lambda A, D: D,
    "tanh": lambda A, D: D.__imul__(1 - A * A),
    "sigmoid": lambda A, D: D.__imul__(A * (1 - A)),
    "relu": lambda A, D: D.__imul__(A > 0),
}


def forward(params, X, activations):
    """Every layer's output, input first."""
    A = [X]
    for k, act in enumerate(activations, start=1):
        A.append(ACTIVATIONS[act](A[-1] @ params[f"W{k}"] + params[f"b{k}"]))
    return A


def loss(params, X, Y, activations, loss_name):
    """Mean over rows of the per-row loss (se: Σ(y-ŷ)²; cce: -Σ y log ŷ)."""
    P = forward(params, X, activations)[-1]
    if loss_name == "se":
        return float(((Y - P) ** 2).sum(axis=1).mean())
    if loss_name == "cce":
        P = np.clip(P, np.finfo(P.dtype).tiny, 1.0)
        return float(-(Y * np.log(P)).sum(axis=1).mean())
    raise ValueError(loss_name)


def sgd_step(params, X, Y, lr, activations, loss_name):
    """One in-place SGD step on the batch mean loss."""
    A = forward(params, X, activations)
    n = X.shape[0]
    out = activations[-1]
    if loss_name == "cce" and out == "softmax":
        D = (A[-1] - Y) / n                      # softmax + cce: ∂L/∂z = (ŷ - y)/n
    elif loss_name == "se":
        D = DERIVATIVES[out](A[-1], (2.0 / n) * (A[-1] - Y))
    else:
        raise ValueError(f"{out}/{loss_name}")
    for k in range(len(activations), 0, -1):
        W, b = params[f"W{k}"], params[f"b{k}"]
        gW = A[k - 1].T @ D
        gb = D.sum(axis=0)
        if k > 1:                                # no input gradient for the first layer
            D = DERIVATIVES[activations[k - 2]](A[k - 1], D @ W.T)
        W -= lr * gW
        b -= lr * gb


class HandNumpy(Runner):
    name = "hand NumPy"

    def __init__(self, cfg, params0, X, Y, dtype):
        self.cfg, self.X, self.Y = cfg, X, Y
        self.params0 = {k: v.astype(dtype) for k, v in params0.items()}
        self.slices = [slice(i, min(i + cfg.batch, cfg.rows)) for i in range(0, cfg.rows, cfg.batch)]
        self.reset()

    def reset(self):
        self.p = {k: v.copy() for k, v in self.params0.items()}

    def epoch(self):
        p, X, Y, lr, acts, ln = self.p, self.X, self.Y, self.cfg.lr, self.cfg.activations, self.cfg.loss
        for s in self.slices:
            sgd_step(p, X[s], Y[s], lr, acts, ln)

    def params(self):
        return {k: v.astype(np.float64) for k, v in self.p.items()}


def make(cfg, params0, X, Y, dtype):
    return HandNumpy(cfg, params0, X, Y, dtype)
