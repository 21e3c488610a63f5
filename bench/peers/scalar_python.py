"""Plain-Python scalar loops (floats in nested lists, no NumPy in the step): the tiny target.

For a 2-2-1 network one NumPy call costs more than the whole arithmetic of a step, so the
question is whether the generated NumPy step beats the obvious loop a person writes by hand.
Supports element-wise activations and the ``se`` loss; weights are lists of rows (w[i][j]
from input i to node j), converted from and to NumPy outside the timed epoch.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Runner

ACT = {
    "linear": (lambda z: z, lambda a: 1.0),
    "tanh": (math.tanh, lambda a: 1.0 - a * a),
    "sigmoid": (lambda z: 1.0 / (1.0 + math.exp(-z)), lambda a: a * (1.0 - a)),
    "relu": (lambda z: z if z > 0.0 else 0.0, lambda a: 1.0 if a > 0.0 else 0.0),
}


def sgd_step(W, B, rows, targets, lr, acts):
    """One SGD step on the mean over ``rows`` of Σ (y - ŷ)²; W, B updated in place."""
    L = len(W)
    gW = [[[0.0] * len(Wk[0]) for _ in Wk] for Wk in W]
    gB = [[0.0] * len(Bk) for Bk in B]
    scale = 2.0 / len(rows)
    for x, y in zip(rows, targets):
        A = [x]
        for k in range(L):
            Wk, Bk, g = W[k], B[k], ACT[acts[k]][0]
            a_in = A[-1]
            A.append([g(Bk[j] + sum(a_in[i] * Wk[i][j] for i in range(len(a_in)))) for j in range(len(Bk))])
        dg = ACT[acts[-1]][1]
        D = [scale * (A[-1][j] - y[j]) * dg(A[-1][j]) for j in range(len(y))]
        for k in range(L - 1, -1, -1):
            a_in, Wk = A[k], W[k]
            for i in range(len(a_in)):
                row = gW[k][i]
                for j in range(len(D)):
                    row[j] += a_in[i] * D[j]
            for j in range(len(D)):
                gB[k][j] += D[j]
            if k > 0:
                dg = ACT[acts[k - 1]][1]
                D = [sum(Wk[i][j] * D[j] for j in range(len(D))) * dg(a_in[i]) for i in range(len(a_in))]
    for k in range(L):
        for i, row in enumerate(W[k]):
            g = gW[k][i]
            for j in range(len(row)):
                row[j] -= lr * g[j]
        for j in range(len(B[k])):
            B[k][j] -= lr * gB[k][j]


class ScalarPython(Runner):
    name = "scalar Python"

    def __init__(self, cfg, params0, X, Y, dtype):
        if cfg.loss != "se" or "softmax" in cfg.activations:
            raise ValueError("scalar Python peer: se loss and element-wise activations only")
        self.cfg = cfg
        self.L = len(cfg.activations)
        self.params0 = params0
        self.batches = [(X[i:i + cfg.batch].tolist(), Y[i:i + cfg.batch].tolist())
                        for i in range(0, cfg.rows, cfg.batch)]
        self.reset()

    def reset(self):
        self.W = [self.params0[f"W{k}"].tolist() for k in range(1, self.L + 1)]
        self.B = [self.params0[f"b{k}"].tolist() for k in range(1, self.L + 1)]

    def epoch(self):
        W, B, lr, acts = self.W, self.B, self.cfg.lr, self.cfg.activations
        for rows, targets in self.batches:
            sgd_step(W, B, rows, targets, lr, acts)

    def warmup(self):
        self.epoch()

    def params(self):
        out = {}
        for k in range(self.L):
            out[f"W{k + 1}"] = np.array(self.W[k], dtype=np.float64)
            out[f"b{k + 1}"] = np.array(self.B[k], dtype=np.float64)
        return out


def make(cfg, params0, X, Y, dtype):
    return ScalarPython(cfg, params0, X, Y, dtype)
