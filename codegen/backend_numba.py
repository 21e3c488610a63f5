"""The numba backend: the plain-SGD epoch and sgd_step compiled with ``@njit(cache=True)``."""
from __future__ import annotations

from backprop.core.errors import UserError
from backprop.derive import Spec


def context(spec: Spec, dtype: str, base: dict) -> dict:
    """What trainer_numba.py.j2 adds to the NumPy trainer's context."""
    if spec.batch_norm_layers:
        raise UserError("the numba backend does not support batch_norm yet; use --backend numpy or jax")
    return {}
