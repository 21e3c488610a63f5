"""Tuned NumPy: what the codegen templates could emit, to price the suggestions in README.

Same maths and order as ``hand_numpy``; differences are only in memory traffic:
- buffers preallocated once per batch size (Z/O per layer, deltas, weight-gradient scratch),
  products written with ``np.matmul(..., out=)``;
- activations applied in place (``np.maximum(Z, 0, out=Z)``, ``np.tanh(Z, out=Z)``, softmax
  in place), so O is Z's buffer;
- g'(O) fused into the back-propagated delta in place, relu through a preallocated bool mask
  (``np.greater(O, 0, out=mask)``), never ``np.heaviside``;
- no first-layer input gradient;
- the weight update as one GEMM with beta = 1 through SciPy's BLAS when SciPy is importable
  (``W.T ← -lr·δᵀ·O + W.T``, all Fortran views of C arrays, so nothing is copied), else
  ``matmul(out=scratch)`` then ``W -= lr·scratch`` in place;
- every array in the parameters' dtype (float32 stays float32).
The batch loss is still computed each step (the generated API returns it), from the output.
"""
from __future__ import annotations

import numpy as np

from .base import Runner

try:
    from scipy.linalg import blas as _blas
except ImportError:  # pragma: no cover
    _blas = None


def _act_inplace(name, Z):
    if name == "linear":
        return
    if name == "relu":
        np.maximum(Z, 0, out=Z)
    elif name == "tanh":
        np.tanh(Z, out=Z)
    elif name == "sigmoid":                     # σ(z) = ½(1 + tanh(z/2)), stable for any z
        Z *= 0.5
        np.tanh(Z, out=Z)
        Z += 1
        Z *= 0.5
    elif name == "softmax":
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)
    else:
        raise ValueError(name)


class _Buffers:
    def __init__(self, layers, n, dtype):
        self.O = [np.empty((n, w), dtype) for w in layers[1:]]         # Z then O, in place
        self.D = [np.empty((n, w), dtype) for w in layers[1:]]         # δ per layer
        self.mask = [np.empty((n, w), bool) for w in layers[1:]]
        self.tmp = [np.empty((n, w), dtype) for w in layers[1:]]
        self.G = [np.empty((a, b), dtype) for a, b in zip(layers[:-1], layers[1:])]


class TunedNumpy(Runner):
    name = "tuned NumPy"

    def __init__(self, cfg, params0, X, Y, dtype, use_blas=True):
        self.cfg, self.X, self.Y = cfg, X, Y
        self.dtype = np.dtype(dtype)
        self.params0 = {k: np.array(v, dtype=dtype) for k, v in params0.items()}
        self.slices = [slice(i, min(i + cfg.batch, cfg.rows)) for i in range(0, cfg.rows, cfg.batch)]
        self.gemm = None
        if use_blas and _blas is not None:
            self.gemm = _blas.dgemm if self.dtype == np.float64 else _blas.sgemm
        self.bufs: dict[int, _Buffers] = {}
        self.reset()

    def reset(self):
        self.p = {k: v.copy() for k, v in self.params0.items()}
        L = len(self.cfg.activations)
        self.W = [self.p[f"W{k}"] for k in range(1, L + 1)]
        self.b = [self.p[f"b{k}"] for k in range(1, L + 1)]

    def step(self, X, Y, lr):
        cfg, W, b = self.cfg, self.W, self.b
        n = X.shape[0]
        B = self.bufs.get(n)
        if B is None:
            B = self.bufs[n] = _Buffers(cfg.layers, n, self.dtype)
        acts, L = cfg.activations, len(W)
        A = X
        for k in range(L):
            Z = B.O[k]
            np.matmul(A, W[k], out=Z)
            Z += b[k]
            _act_inplace(acts[k], Z)
            A = Z
        out, D = B.O[-1], B.D[-1]
        np.subtract(out, Y, out=D)
        if cfg.loss == "cce":
            loss = -float(np.log(np.maximum(out[Y > 0], np.finfo(self.dtype).tiny)) @ Y[Y > 0]) / n
            D *= 1.0 / n
        else:
            loss = float(np.einsum("ij,ij->", D, D)) / n
            D *= 2.0 / n
            if acts[-1] != "linear":
                self._scale_by_derivative(acts[-1], out, D, B.tmp[-1], B.mask[-1])
        for k in range(L - 1, -1, -1):
            D = B.D[k]
            A_in = X if k == 0 else B.O[k - 1]
            if k > 0:                                       # no input gradient for layer 1
                Dp = B.D[k - 1]
                np.matmul(D, W[k].T, out=Dp)
                self._scale_by_derivative(acts[k - 1], B.O[k - 1], Dp, B.tmp[k - 1], B.mask[k - 1])
            b[k] -= lr * D.sum(axis=0)
            if self.gemm is not None:
                # W.T (Fortran view) <- -lr · D.T @ A_in + W.T: one GEMM, beta = 1, in place
                self.gemm(-lr, D.T, A_in.T, beta=1.0, c=W[k].T, trans_b=1, overwrite_c=1)
            else:
                G = B.G[k]
                np.matmul(A_in.T, D, out=G)
                G *= lr
                W[k] -= G
        return loss

    @staticmethod
    def _scale_by_derivative(name, O, D, tmp, mask):
        if name == "linear":
            return
        if name == "relu":
            np.greater(O, 0, out=mask)
            D *= mask
        elif name == "tanh":
            np.multiply(O, O, out=tmp)
            np.subtract(1, tmp, out=tmp)
            D *= tmp
        elif name == "sigmoid":
            np.subtract(1, O, out=tmp)
            tmp *= O
            D *= tmp
        else:
            raise ValueError(name)

    def epoch(self):
        X, Y, lr = self.X, self.Y, self.cfg.lr
        for s in self.slices:
            self.step(X[s], Y[s], lr)

    def params(self):
        return {k: v.astype(np.float64) for k, v in self.p.items()}


def make(cfg, params0, X, Y, dtype):
    return TunedNumpy(cfg, params0, X, Y, dtype, use_blas=True)


def make_no_blas(cfg, params0, X, Y, dtype):
    return TunedNumpy(cfg, params0, X, Y, dtype, use_blas=False)
