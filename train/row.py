"""One data row through a generated trainer: every node's value O_kj, every ∂L/∂w and ∂L/∂b,
and the loss; the numbers :mod:`backprop.pictures.draw` writes on the notes' diagram."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Values:
    """What one forward and backward pass gives for one row (any part may be missing)."""

    params: dict | None = None
    x: np.ndarray | None = None  # (n_inputs,): the row as the network sees it
    nodes: dict | None = None  # {"O1": (n1,), ...} for the one row
    grads: dict | None = None  # {"W1": (n0, n1), ...}
    loss: float | None = None
    y: np.ndarray | None = None
    raw_x: np.ndarray | None = None  # the row as given, when x is its standardisation
    features: list | None = None  # input names, from a model file
    classes: list | None = None  # output names, from a model file


def compute(trainer, params: dict, x: np.ndarray | None, y: np.ndarray | None, model=None) -> Values:
    """Node values and gradients for one row, from the generated trainer.

    With a ``model`` (:class:`~backprop.train.model.Model`) that was trained on standardised
    features, ``x`` is the raw row and the network gets ``model.scale(x)``, as in training.
    """
    v = Values(params=params)
    if model is not None:
        v.features, v.classes = model.features, model.classes
    if x is None:
        return v
    if model is not None and model.standardised:
        v.raw_x, x = x, model.scale(x)
    X = x.reshape(1, -1)
    v.x = x
    nodes = trainer.nodes(params, X)
    v.nodes = {k: np.asarray(val)[0] for k, val in nodes.items()}
    if y is not None:
        Y = y.reshape(1, -1)
        v.y = y
        v.grads = trainer.gradients(params, X, Y)
        v.loss = float(trainer.loss(params, X, Y))
    return v
