"""An unrolled scalar SGD step, generated from the network: a prototype of suggestion 7.

For a network with a few dozen weights, this is what a generated scalar code path could look
like: one Python statement per node and per weight, every weight a local float, no NumPy
call and no inner loop but the one over the batch's rows.  ``source(cfg)`` prints the step
(readable, the names follow ``W1_i_j`` = weight from node i of layer 0 to node j of layer
1); the Runner compiles it with ``exec``.  Element-wise activations and the ``se`` loss
only.  Returns the batch loss before the update, as the generated ``sgd_step`` does.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Runner

ACT = {
    "linear": ("{z}", "1.0"),
    "tanh": ("tanh({z})", "(1.0 - {o} * {o})"),
    "sigmoid": ("0.5 * (1.0 + tanh(0.5 * {z}))", "({o} * (1.0 - {o}))"),
    "relu": ("({z} if {z} > 0.0 else 0.0)", "(1.0 if {o} > 0.0 else 0.0)"),
}


def names(layers):
    """Parameter names in a fixed order: W1_i_j row by row, then b1_j, then layer 2, ..."""
    out = []
    for k in range(1, len(layers)):
        out += [f"W{k}_{i}_{j}" for i in range(layers[k - 1]) for j in range(layers[k])]
        out += [f"b{k}_{j}" for j in range(layers[k])]
    return out


def source(cfg) -> str:
    """The text of ``step(p, rows, targets, lr)`` for ``cfg`` (p: flat list, updated in place)."""
    L, layers, acts = len(cfg.activations), cfg.layers, cfg.activations
    ps = names(layers)
    xs = [f"x{i}" for i in range(layers[0])]
    ys = [f"y{j}" for j in range(layers[-1])]
    lines = ["def step(p, rows, targets, lr):", f"    ({', '.join(ps)},) = p"]
    lines += [f"    g_{n} = 0.0" for n in ps]
    lines += ["    loss = 0.0", "    scale = 2.0 / len(rows)",
              f"    for ({', '.join(xs)},), ({', '.join(ys)},) in zip(rows, targets):"]
    prev = xs
    for k in range(1, L + 1):
        f, _ = ACT[acts[k - 1]]
        cur = []
        for j in range(layers[k]):
            terms = " + ".join(f"{prev[i]} * W{k}_{i}_{j}" for i in range(layers[k - 1]))
            lines.append(f"        z{k}_{j} = b{k}_{j} + {terms}")
            lines.append(f"        o{k}_{j} = {f.format(z=f'z{k}_{j}')}")
            cur.append(f"o{k}_{j}")
        prev = cur
    _, dg = ACT[acts[-1]]
    for j in range(layers[-1]):
        lines.append(f"        r{j} = o{L}_{j} - y{j}")
        lines.append(f"        loss += r{j} * r{j}")
        lines.append(f"        d{L}_{j} = scale * r{j} * {dg.format(o=f'o{L}_{j}')}")
    for k in range(L, 0, -1):
        inputs = xs if k == 1 else [f"o{k - 1}_{i}" for i in range(layers[k - 1])]
        for j in range(layers[k]):
            lines.append(f"        g_b{k}_{j} += d{k}_{j}")
            for i in range(layers[k - 1]):
                lines.append(f"        g_W{k}_{i}_{j} += {inputs[i]} * d{k}_{j}")
        if k > 1:                                   # no input gradient for layer 1
            _, dg = ACT[acts[k - 2]]
            for i in range(layers[k - 1]):
                s = " + ".join(f"W{k}_{i}_{j} * d{k}_{j}" for j in range(layers[k]))
                lines.append(f"        d{k - 1}_{i} = ({s}) * {dg.format(o=f'o{k - 1}_{i}')}")
    lines.append(f"    p[:] = ({', '.join(f'{n} - lr * g_{n}' for n in ps)},)")
    lines.append("    return loss / len(rows)")
    return "\n".join(lines) + "\n"


class ScalarUnrolled(Runner):
    name = "scalar unrolled"

    def __init__(self, cfg, params0, X, Y, dtype):
        if cfg.loss != "se" or any(a not in ACT for a in cfg.activations):
            raise ValueError("unrolled scalar peer: se loss and element-wise activations only")
        self.cfg, self.L = cfg, len(cfg.activations)
        scope = {"tanh": math.tanh}
        exec(compile(source(cfg), f"<unrolled {cfg.name}>", "exec"), scope)
        self.step = scope["step"]
        self.params0 = params0
        self.batches = [(X[i:i + cfg.batch].tolist(), Y[i:i + cfg.batch].tolist())
                        for i in range(0, cfg.rows, cfg.batch)]
        self.reset()

    def reset(self):
        flat = []
        for k in range(1, self.L + 1):
            flat += self.params0[f"W{k}"].ravel().tolist() + self.params0[f"b{k}"].tolist()
        self.p = flat

    def epoch(self):
        step, p, lr = self.step, self.p, self.cfg.lr
        for rows, targets in self.batches:
            step(p, rows, targets, lr)

    def warmup(self):
        self.epoch()

    def params(self):
        out, pos, layers = {}, 0, self.cfg.layers
        for k in range(1, self.L + 1):
            n0, n1 = layers[k - 1], layers[k]
            out[f"W{k}"] = np.array(self.p[pos:pos + n0 * n1], dtype=np.float64).reshape(n0, n1)
            pos += n0 * n1
            out[f"b{k}"] = np.array(self.p[pos:pos + n1], dtype=np.float64)
            pos += n1
        return out


def make(cfg, params0, X, Y, dtype):
    return ScalarUnrolled(cfg, params0, X, Y, dtype)
