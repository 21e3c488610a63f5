"""PyTorch eager on the CPU: autograd for the gradients, an in-place update under no_grad.

Weights are leaf tensors with ``requires_grad``; each batch is a view of the full tensor.
``F.cross_entropy`` on the logits is softmax + cce (mean over rows); ``se`` is written out as
the mean over rows of Σ (y - ŷ)².

Threads: ``--threads N`` (env BENCH_THREADS) sets them; otherwise one intra-op thread for
networks under 100 000 weights (tiny, small), PyTorch's default (one per core) above.  On the
small nets PyTorch's grain size keeps every op serial anyway, and its second OpenMP thread
only adds barrier waits: on this loaded 2-core machine the small epoch took 24 ms with one
thread and 68-270 ms with two.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from .base import Runner

ACT = {"linear": lambda z: z, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


class TorchEager(Runner):
    name = "PyTorch eager"

    def __init__(self, cfg, params0, X, Y, dtype):
        self.cfg = cfg
        if os.environ.get("BENCH_THREADS"):
            torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
        elif cfg.weights < 100_000:
            torch.set_num_threads(1)
        self.tdtype = getattr(torch, dtype)
        self.L = len(cfg.activations)
        self.params0 = {k: torch.from_numpy(np.array(v, dtype=dtype)) for k, v in params0.items()}
        self.X = torch.from_numpy(X)
        self.Y = torch.from_numpy(Y)
        if cfg.loss == "cce":
            self.labels = torch.from_numpy(np.argmax(Y, axis=1))
        self.slices = [slice(i, min(i + cfg.batch, cfg.rows)) for i in range(0, cfg.rows, cfg.batch)]
        self.reset()

    def reset(self):
        p0 = self.params0
        self.p = [
            t for k in range(1, self.L + 1)
            for t in (p0[f"W{k}"].clone().requires_grad_(), p0[f"b{k}"].clone().requires_grad_())
        ]

    def _loss(self, X, Y, s):
        A = X
        acts = self.cfg.activations
        for k in range(self.L):
            Z = torch.addmm(self.p[2 * k + 1], A, self.p[2 * k])
            A = Z if acts[k] == "softmax" else ACT[acts[k]](Z)
        if self.cfg.loss == "cce":
            return F.cross_entropy(A, self.labels[s])   # A holds the logits here
        return ((Y - A) ** 2).sum(dim=1).mean()

    def epoch(self):
        lr, p = self.cfg.lr, self.p
        for s in self.slices:
            loss = self._loss(self.X[s], self.Y[s], s)
            grads = torch.autograd.grad(loss, p)
            with torch.no_grad():
                for t, g in zip(p, grads):
                    t.sub_(g, alpha=lr)

    def params(self):
        out = {}
        for k in range(1, self.L + 1):
            out[f"W{k}"] = self.p[2 * k - 2].detach().numpy().astype(np.float64)
            out[f"b{k}"] = self.p[2 * k - 1].detach().numpy().astype(np.float64)
        return out


def make(cfg, params0, X, Y, dtype):
    return TorchEager(cfg, params0, X, Y, dtype)
