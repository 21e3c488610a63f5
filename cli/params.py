"""Parameter files for the commands: the model file of :mod:`backprop.train.model`, read and written.

``{"W1": [[...]], "b1": [...], ...}`` with ``W{k}[i-1][j-1] = w^k_ij`` (rows: nodes of layer
k-1, columns: nodes of layer k), alone (older files), inside a report under "params"
(``step --json``, ``train --json``) or inside a model file with its spec and standardisation.
Every matrix is checked against the spec's shapes, and a mismatch names the matrix and the
shape expected.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backprop.derive import Spec
from backprop.train.model import Model, load_model, max_params_bytes  # noqa: F401  (re-exported)


def params_to_json(params: dict) -> dict:
    """{"W1": [[...]], "b1": [...], ...}: plain lists, ready for json.dump."""
    return {k: np.asarray(v).tolist() for k, v in params.items()}


def load_params(path: str | Path, spec: Spec, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Parameters only, from a model file or a plain params file, checked against ``spec``.
    The file is read only up to :func:`max_params_bytes` (a 5 GB file is refused, not loaded)."""
    return load_model(path, spec, dtype).params
