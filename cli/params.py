"""Parameter files: the JSON shape every command reads and writes.

``{"W1": [[...]], "b1": [...], ...}`` with ``W{k}[i-1][j-1] = w^k_ij`` (rows: nodes of layer
k-1, columns: nodes of layer k); a report holding them under "params" (``step --json``,
``train --json``) is read too.  Every matrix is checked against the spec's shapes, and a
mismatch names the matrix and the shape expected.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backprop.derive import Spec, UserError
from backprop.derive.userfile import read_text


def params_to_json(params: dict) -> dict:
    """{"W1": [[...]], "b1": [...], ...}: plain lists, ready for json.dump."""
    return {k: np.asarray(v).tolist() for k, v in params.items()}


#: A params file may hold this many bytes per parameter of the spec (a number written with
#: indent=2 takes about 30; ``step --json`` holds nodes and gradients besides), plus ...
BYTES_PER_PARAMETER = 256
#: ... this much for everything else in a report (``train --json``: names, settings).
BYTES_BESIDES = 1_000_000


def max_params_bytes(spec: Spec) -> int:
    """The largest params file read for ``spec``: proportional to its parameter count."""
    return BYTES_BESIDES + BYTES_PER_PARAMETER * spec.n_parameters


def load_params(path: str | Path, spec: Spec, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Parameters from a JSON file, every matrix checked against the spec's shapes.  The file is
    read only up to :func:`max_params_bytes` (a 5 GB file is refused, not loaded)."""
    text = read_text(path, "params file", max_params_bytes(spec),
                     f"the params of a {'-'.join(map(str, spec.layers))} network "
                     f"({spec.n_parameters} numbers) are far smaller (the limit is 1 MB plus 256 "
                     "bytes per parameter); is this the right file?")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"params file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise UserError(f"params file {path} must hold an object {{\"W1\": [[...]], \"b1\": [...], ...}}")
    shapes = spec.shapes()
    unknown = sorted(set(data) - set(shapes))
    if unknown:
        raise UserError(f"params file {path}: {unknown[0]} is not a parameter of the {spec.describe()}; "
                        f"expected {', '.join(shapes)}")
    params = {}
    for name, shape in shapes.items():
        if name not in data:
            raise UserError(f"params file {path} has no {name}; expected {name} with shape {shape}")
        try:
            value = np.array(data[name], dtype=dtype)
        except (TypeError, ValueError):
            raise UserError(f"params file {path}: {name} is not a {'matrix' if len(shape) == 2 else 'list'} "
                            f"of numbers with shape {shape}") from None
        if value.shape != shape:
            where = (f"{shape[0]} nodes of layer {name[1:]} " if len(shape) == 1 else
                     f"{shape[0]} inputs × {shape[1]} nodes of layer {name[1:]}")
            raise UserError(f"params file {path}: {name} has shape {value.shape}; expected {shape} ({where.strip()})")
        if not np.all(np.isfinite(value)):
            raise UserError(f"params file {path}: {name} holds a value that is not finite")
        params[name] = value
    return params
