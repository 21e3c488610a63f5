"""What every benchmark process shares: the configurations, the seeded data, the batches.

Each implementation runs in its own process, so nothing here may depend on anything but
NumPy: a worker rebuilds the same data from the same seed (same NumPy, same venv) instead of
reading a large file, and reads the initial weights from the ``.npz`` the harness wrote.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

DATA_SEED = 20261124
INIT_SEED = 7


@dataclass(frozen=True)
class Config:
    """One benchmark network: widths, activations (one per non-input layer), loss, data size."""

    name: str
    layers: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    rows: int
    batch: int
    lr: float
    #: epochs timed back to back inside one worker turn (tiny epochs last microseconds)
    inner: int = 1
    #: interleaved rounds (one worker turn per implementation per round)
    repeats: int = 5
    note: str = ""

    @property
    def weights(self) -> int:
        return sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:]))

    @property
    def flops_floor(self) -> float:
        """6 × weights × rows: forward, weight-gradient and input-gradient products."""
        return 6.0 * self.weights * self.rows

    @property
    def label(self) -> str:
        return f"{self.name} {'-'.join(map(str, self.layers))} ({','.join(self.activations)}; {self.loss})"

    def with_hidden(self, hidden: str) -> "Config":
        """The same config with every hidden activation replaced (medium/large: --hidden)."""
        acts = tuple(hidden for _ in self.activations[:-1]) + (self.activations[-1],)
        return replace(self, activations=acts)


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in [
        Config("tiny", (2, 2, 1), ("linear", "linear"), "se", rows=3, batch=1, lr=0.01,
               inner=2000, repeats=5, note="the notes' 2-2-1: pure per-call overhead"),
        Config("tiny_sgd", (2, 2, 1), ("linear", "linear"), "se", rows=10000, batch=1, lr=0.001,
               inner=3, repeats=5, note="the notes' 2-2-1, SGD over 10 000 rows: the cost of one step"),
        Config("sgd20k", (8, 16, 1), ("tanh", "linear"), "se", rows=20000, batch=1, lr=0.001,
               inner=1, repeats=5, note="compare-gd's example: a 20 000-row SGD epoch"),
        Config("small", (8, 16, 16, 1), ("tanh", "tanh", "linear"), "se", rows=1000, batch=32,
               lr=0.01, inner=20, repeats=5),
        Config("medium", (784, 256, 128, 10), ("relu", "relu", "softmax"), "cce", rows=10000,
               batch=128, lr=0.05, inner=1, repeats=3),
        Config("large", (784, 1024, 1024, 10), ("relu", "relu", "softmax"), "cce", rows=20000,
               batch=256, lr=0.05, inner=1, repeats=2),
    ]
}


def make_data(cfg: Config, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """Seeded inputs X (rows × n0) and targets Y (rows × nL), built in float64, then cast.

    Regression (``se``): Y is a smooth function of X (a random tanh teacher) plus noise.
    Classification (``cce``): one-hot labels, the argmax of a random linear teacher plus
    Gumbel noise, so that every class occurs.
    """
    rng = np.random.default_rng(DATA_SEED + cfg.layers[0] * 1000 + cfg.rows)
    n_in, n_out = cfg.layers[0], cfg.layers[-1]
    X = rng.standard_normal((cfg.rows, n_in))
    if cfg.loss == "cce":
        R = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        labels = np.argmax(X @ R + rng.gumbel(size=(cfg.rows, n_out)), axis=1)
        Y = np.eye(n_out)[labels]
    else:
        R = rng.standard_normal((n_in, 4)) / np.sqrt(n_in)
        V = rng.standard_normal((4, n_out))
        Y = np.tanh(X @ R) @ V + 0.1 * rng.standard_normal((cfg.rows, n_out))
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(Y, dtype=dtype)


def batches(rows: int, batch: int):
    """Slices of consecutive rows, in order, the last one possibly shorter (sklearn's gen_batches)."""
    return [slice(i, min(i + batch, rows)) for i in range(0, rows, batch)]


def fallback_init(cfg: Config, seed: int = INIT_SEED) -> dict[str, np.ndarray]:
    """Glorot-uniform weights and zero biases; used only while backprop.codegen is missing."""
    rng = np.random.default_rng(seed)
    params = {}
    for k, (n0, n1) in enumerate(zip(cfg.layers[:-1], cfg.layers[1:]), start=1):
        limit = np.sqrt(6.0 / (n0 + n1))
        params[f"W{k}"] = rng.uniform(-limit, limit, size=(n0, n1))
        params[f"b{k}"] = np.zeros(n1)
    return params


def depth(params: dict) -> int:
    return sum(1 for k in params if k.startswith("W"))
