"""The generated trainer's jax backend: ``load_trainer(spec, dtype, backend="jax")``.

Two rows, as for the NumPy trainer (``peers.generated``): ``train`` (the public API, one call
with epochs=1, shuffle off: the rows and parameters go to JAX's device and back in each call)
and ``epoch`` (the module's jitted ``_epoch`` on device arrays made once, before timing, as
the JAX peer keeps its batches: the engine alone).  Warm-up runs a whole epoch, since XLA
compiles for the exact shapes (rows and batch size).  ``sync`` blocks on the parameters.
"""
from __future__ import annotations

import numpy as np

from backprop.codegen import load_trainer

from .base import Runner
from .generated import spec_of


class JaxBackend(Runner):
    name = "generated jax train()"

    def __init__(self, cfg, params0, X, Y, dtype, mode="train"):
        self.cfg, self.X, self.Y, self.mode = cfg, X, Y, mode
        self.mod = load_trainer(spec_of(cfg), dtype=dtype, backend="jax")
        self.params0 = {k: np.array(v, dtype=dtype) for k, v in params0.items()}
        if mode == "epoch":
            import jax.numpy as jnp
            self.Xd, self.Yd = jnp.asarray(X), jnp.asarray(Y)
            self.name = "generated jax _epoch"
        self.reset()

    def reset(self):
        self.p = {k: v.copy() for k, v in self.params0.items()}
        if self.mode == "epoch":
            self.P = self.mod._on_device(self.p)

    def epoch(self):
        cfg = self.cfg
        if self.mode == "train":
            self.mod.train(self.p, self.X, self.Y, 1, cfg.lr, batch_size=cfg.batch, shuffle=False)
        else:
            self.P, _ = self.mod._epoch(self.P, self.Xd, self.Yd, None, cfg.lr, size=cfg.batch)

    def warmup(self):
        self.epoch()  # the full shapes: what the timed epochs run
        self.sync()

    def sync(self):
        if self.mode == "epoch":
            import jax
            jax.block_until_ready(self.P)

    def params(self):
        if self.mode == "epoch":
            return {k: np.asarray(v, dtype=np.float64) for k, v in self.P.items()}
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.p.items()}


def make(cfg, params0, X, Y, dtype):
    return JaxBackend(cfg, params0, X, Y, dtype, mode="train")


def make_epoch(cfg, params0, X, Y, dtype):
    return JaxBackend(cfg, params0, X, Y, dtype, mode="epoch")
