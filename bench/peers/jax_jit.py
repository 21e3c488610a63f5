"""JAX: ``jax.jit`` of the whole update step (forward, ``jax.grad``, SGD), weights donated.

float64 needs ``jax_enable_x64`` (set before any array exists).  The batches are cut into
device arrays once, before timing, as a JAX user would feed them; the step is compiled during
warm-up (both batch shapes: the last batch may be shorter).  ``sync`` blocks on the weights so
the timed epoch includes all dispatched work.
"""
from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from .base import Runner  # noqa: E402

ACT = {"linear": lambda z: z, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}


class JaxJit(Runner):
    name = "JAX jit"

    def __init__(self, cfg, params0, X, Y, dtype):
        self.cfg = cfg
        self.L = len(cfg.activations)
        self.params0 = {k: np.array(v, dtype=dtype) for k, v in params0.items()}
        sl = [slice(i, min(i + cfg.batch, cfg.rows)) for i in range(0, cfg.rows, cfg.batch)]
        self.batches = [(jnp.asarray(X[s]), jnp.asarray(Y[s])) for s in sl]
        acts, loss_name, lr = cfg.activations, cfg.loss, cfg.lr

        def loss(p, x, y):
            a = x
            for k in range(len(acts)):
                z = a @ p[f"W{k + 1}"] + p[f"b{k + 1}"]
                a = z if acts[k] == "softmax" else ACT[acts[k]](z)
            if loss_name == "cce":                      # a holds the logits
                return -(y * jax.nn.log_softmax(a, axis=1)).sum(axis=1).mean()
            return ((y - a) ** 2).sum(axis=1).mean()

        def step(p, x, y):
            g = jax.grad(loss)(p, x, y)
            return jax.tree_util.tree_map(lambda w, d: w - lr * d, p, g)

        self.step = jax.jit(step, donate_argnums=0)
        self.reset()

    def reset(self):
        self.p = {k: jnp.asarray(v) for k, v in self.params0.items()}

    def epoch(self):
        p, step = self.p, self.step
        for x, y in self.batches:
            p = step(p, x, y)
        self.p = p

    def warmup(self):
        full = self.batches
        self.batches = full[:2] + full[-1:]
        try:
            self.epoch()
            self.sync()
        finally:
            self.batches = full

    def sync(self):
        jax.block_until_ready(self.p)

    def params(self):
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.p.items()}


def make(cfg, params0, X, Y, dtype):
    return JaxJit(cfg, params0, X, Y, dtype)
