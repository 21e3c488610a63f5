"""scikit-learn ``MLPRegressor`` (se) / ``MLPClassifier`` (softmax + cce): one ``partial_fit`` = one epoch.

Settings: solver 'sgd', momentum 0, alpha 0 (no L2), learning_rate 'constant', shuffle off,
our batch size.  sklearn has one activation for all hidden layers ('identity', 'logistic',
'tanh', 'relu'); the output is identity for the regressor and softmax for a multiclass
classifier, whose loss (log-loss, mean over rows) is our cce.

Loss scale: sklearn's squared loss is ½·mean over rows (and outputs) of (y - ŷ)², half of our
``se`` for one output, so its gradient is half ours: the regressor gets ``learning_rate_init
= 2·lr`` and then takes exactly our steps.  The classifier's lr is ours unchanged.

Initial weights: a first ``partial_fit`` (untimed) builds the estimator's state; ``reset``
then copies our initial weights *into* ``coefs_``/``intercepts_`` in place, because sklearn's
optimizer holds references to those very arrays.  Each timed epoch includes sklearn's own
input validation and its per-batch loss evaluation: that is what a user pays.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .base import Runner

SK_ACT = {"linear": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


class SklearnMLP(Runner):
    name = "scikit-learn"

    def __init__(self, cfg, params0, X, Y, dtype):
        hidden = set(cfg.activations[:-1])
        if len(hidden) != 1:
            raise ValueError(f"sklearn needs one hidden activation, got {cfg.activations}")
        common = dict(
            hidden_layer_sizes=cfg.layers[1:-1], activation=SK_ACT[hidden.pop()], solver="sgd",
            alpha=0.0, batch_size=cfg.batch, learning_rate="constant", momentum=0.0,
            nesterovs_momentum=False, shuffle=False, max_iter=1, tol=0.0, random_state=0,
        )
        if cfg.loss == "cce":
            assert cfg.activations[-1] == "softmax"
            self.est = MLPClassifier(learning_rate_init=cfg.lr, **common)
            self.y = np.argmax(Y, axis=1)
            self.fit_kw = {"classes": np.arange(cfg.layers[-1])}
        elif cfg.loss == "se":
            assert cfg.activations[-1] == "linear"
            self.est = MLPRegressor(learning_rate_init=2.0 * cfg.lr, **common)   # ½-mean loss
            self.y = Y.ravel() if Y.shape[1] == 1 else Y
            self.fit_kw = {}
        else:
            raise ValueError(cfg.loss)
        self.X = X
        self.L = len(cfg.activations)
        self.params0 = {k: np.array(v, dtype=dtype) for k, v in params0.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.est.partial_fit(X[: cfg.batch], self.y[: cfg.batch], **self.fit_kw)
        self.fit_kw = {}
        for c in self.est.coefs_:
            assert c.dtype == np.dtype(dtype), (c.dtype, dtype)
        self.reset()

    def reset(self):
        for k in range(self.L):
            self.est.coefs_[k][...] = self.params0[f"W{k + 1}"]
            self.est.intercepts_[k][...] = self.params0[f"b{k + 1}"]

    def epoch(self):
        self.est.partial_fit(self.X, self.y)

    def warmup(self):
        X, y, rows = self.X, self.y, min(len(self.X), 2 * self.est.batch_size + 1)
        self.X, self.y = X[:rows], y[:rows]
        try:
            self.epoch()
        finally:
            self.X, self.y = X, y

    def params(self):
        out = {}
        for k in range(self.L):
            out[f"W{k + 1}"] = self.est.coefs_[k].astype(np.float64)
            out[f"b{k + 1}"] = self.est.intercepts_[k].astype(np.float64)
        return out


def make(cfg, params0, X, Y, dtype):
    return SklearnMLP(cfg, params0, X, Y, dtype)
