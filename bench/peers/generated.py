"""The generated trainer: ``backprop.codegen.load_trainer(spec, dtype, backend)``.

Backends (issue 16): ``make_numba`` and ``make_jax`` time the same ``train()`` call on the
numba and JAX engines; each is a row of its own.  The JAX backend gets X and Y as device
arrays (put there once, untimed, as the JAX peer cuts its batches), which its train() uses
without copying; NumPy rows would cost one host-to-device copy per call.

Two rows: ``train`` (the public API, one call with epochs=1, shuffle off) and ``sgd_step``
(a Python loop over the same batches calling the generated step), which shows what the
``train`` wrapper adds.  Loading (derivation + rendering + import) happens before timing.
"""
from __future__ import annotations

import numpy as np

from backprop.codegen import load_trainer
from backprop.derive import make_spec

from .base import Runner


def spec_of(cfg):
    return make_spec(cfg.layers, list(cfg.activations), cfg.loss)


class Generated(Runner):
    name = "generated train()"

    def __init__(self, cfg, params0, X, Y, dtype, mode="train", backend="numpy"):
        self.cfg, self.X, self.Y, self.mode, self.backend = cfg, X, Y, mode, backend
        self.mod = load_trainer(spec_of(cfg), dtype=dtype, backend=backend)
        if backend == "jax":  # on the device once, before timing, as the JAX peer's batches are
            import jax        # (after the module's import: a float64 trainer turns on x64)
            self.X, self.Y = jax.device_put(X), jax.device_put(Y)
        self.params0 = {k: np.array(v, dtype=dtype) for k, v in params0.items()}
        self.slices = [slice(i, min(i + cfg.batch, cfg.rows)) for i in range(0, cfg.rows, cfg.batch)]
        self.reset()

    def reset(self):
        self.p = {k: v.copy() for k, v in self.params0.items()}

    def epoch(self):
        cfg = self.cfg
        if self.mode == "train":
            self.mod.train(self.p, self.X, self.Y, 1, cfg.lr, batch_size=cfg.batch, shuffle=False)
        else:
            step, p, X, Y, lr = self.mod.sgd_step, self.p, self.X, self.Y, cfg.lr
            for s in self.slices:
                step(p, X[s], Y[s], lr)

    def warmup(self):
        if self.mode != "train":
            return Runner.warmup(self)        # first two slices and the last one
        if self.backend == "jax":             # jit compiles per shape: warm up on the timed one
            return self.epoch()
        X, Y, rows = self.X, self.Y, min(self.cfg.rows, 2 * self.cfg.batch + 1)
        self.X, self.Y = X[:rows], Y[:rows]
        try:
            self.epoch()
        finally:
            self.X, self.Y = X, Y

    def params(self):
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.p.items()}


def make(cfg, params0, X, Y, dtype):
    return Generated(cfg, params0, X, Y, dtype, mode="train")


def make_steps(cfg, params0, X, Y, dtype):
    return Generated(cfg, params0, X, Y, dtype, mode="steps")


def _engine(backend, module):
    """A backend's row, or the 'not installed' message the harness reports for a missing engine."""
    import importlib.util

    def make_backend(cfg, params0, X, Y, dtype):
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"No module named '{module}'", name=module)
        return Generated(cfg, params0, X, Y, dtype, mode="train", backend=backend)
    return make_backend


make_numba = _engine("numba", "numba")
make_jax = _engine("jax", "jax")
