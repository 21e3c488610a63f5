"""Model files: what ``backprop train --params-out`` writes and every ``--params`` flag reads.

A model file is the trained parameters plus what it takes to use them on a raw row: the
network's spec, the standardisation the features went through (mean, std), the feature and
target names and the class labels, under a format name and version::

    {"format": "backprop-model", "version": 1,
     "spec": {"layers": [4, 8, 3], "activations": ["relu", "softmax"], "loss": "cce", "bias": true},
     "params": {"W1": [[...]], "b1": [...], ...},
     "standardise": {"mean": [...], "std": [...]} or null,
     "features": ["sepal_length", ...], "targets": ["species"], "classes": ["setosa", ...] or null,
     "optimizer_state": {"name": "adam", "t": 120, "m": {"W1": [[...]], ...}, "v": {...}}}

The spec also carries residual, batch_norm and [optimizer] where they are not the defaults.
A batch-normalised layer k's params hold, besides γ and β, the running statistics eval mode
normalises with, ``running_mean{k}`` and ``running_var{k}`` (kept by training, not learnt; a
file without them reads as a fresh network's, mean 0 and variance 1).
``optimizer_state`` (present after a run with an optimiser that keeps state, or any run of
``backprop train``) is the trainer's ``optimizer_state``: the step count and, per state array
of the optimiser, one array per parameter, so ``--resume`` continues the run exactly.

Older files that hold only ``{"W1": ..., "b1": ...}`` (or a report with them under "params")
still load: they carry no spec and no standardisation.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backprop.core.errors import UserError
from backprop.core.userfile import read_text
from backprop.derive.optimizers import OPTIMIZERS
from backprop.derive.spec import Spec, spec_from_mapping

FORMAT = "backprop-model"
VERSION = 1

#: A params file may hold this many bytes per parameter of the spec (a number written with
#: indent=2 takes about 30; ``step --json`` holds nodes and gradients besides), plus ...
BYTES_PER_PARAMETER = 256
#: ... this much for everything else (names, settings, the standardisation).
BYTES_BESIDES = 1_000_000
#: With no spec to size it by, a model file may be at most this large.
MAX_MODEL_BYTES = 1 << 30


@dataclass
class Model:
    """Trained parameters and what is needed to apply them to raw rows."""

    spec: Spec
    params: dict[str, np.ndarray]
    mean: np.ndarray | None = None  # feature shift: the network sees (x - mean) / std
    std: np.ndarray | None = None
    features: list[str] | None = None
    targets: list[str] | None = None
    classes: list[str] | None = None  # label of each output column (cce) or of 0 and 1 (bce)
    extra: dict = field(default_factory=dict)  # anything else the writer kept (settings, metrics)
    #: the optimiser's state after training: {"name", "t", <state name>: {param: array}}; None: fresh
    optimizer_state: dict | None = None

    def __repr__(self) -> str:
        scaled = ", standardised" if self.mean is not None else ""
        labels = f", classes {self.classes}" if self.classes else ""
        return f"Model({self.spec.describe()}{scaled}{labels})"

    @property
    def standardised(self) -> bool:
        return self.mean is not None

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Raw rows as the network saw them in training: (X - mean) / std, or X unchanged."""
        X = np.asarray(X, dtype=float)
        if self.mean is None:
            return X
        if X.shape[-1] != len(self.mean):
            raise UserError(f"the model was trained on {len(self.mean)} features "
                            f"({', '.join(self.features or [])}); got {X.shape[-1]}")
        return (X - self.mean) / self.std

    def to_json(self) -> dict:
        """The model file's content, ready for :func:`json.dump`."""
        return {
            "format": FORMAT, "version": VERSION,
            "spec": spec_json(self.spec),
            "params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "standardise": (None if self.mean is None else
                            {"mean": np.asarray(self.mean).tolist(), "std": np.asarray(self.std).tolist()}),
            "features": self.features, "targets": self.targets, "classes": self.classes,
            **({} if self.optimizer_state is None else {"optimizer_state": state_json(self.optimizer_state)}),
            **self.extra,
        }


def spec_json(s: Spec) -> dict:
    """The spec as a model file stores it: residual, batch_norm and optimizer only where set."""
    out = {"layers": list(s.layers), "activations": list(s.activations), "loss": s.loss, "bias": s.bias}
    if any(s.residual):
        out["residual"] = list(s.residual)
    if any(s.batch_norm):
        out["batch_norm"] = list(s.batch_norm)
    if s.optimizer:
        out["optimizer"] = dict(s.optimizer)
    return out


def state_json(state: dict) -> dict:
    """An optimiser state with its arrays as nested lists (floats written exactly by json); the
    shuffling generator's state is plain JSON already."""
    return {key: ({k: np.asarray(v).tolist() for k, v in value.items()}
                  if isinstance(value, dict) and key != "shuffle" else value)
            for key, value in state.items()}


def same_network(a: Spec, b: Spec) -> bool:
    """Whether two specs are the same network (the optimiser that trains it aside)."""
    return dataclasses.replace(a, optimizer=()) == dataclasses.replace(b, optimizer=())


def max_params_bytes(spec: Spec) -> int:
    """The largest params file read for ``spec``: proportional to its parameter count."""
    return BYTES_BESIDES + BYTES_PER_PARAMETER * spec.n_parameters


def load_model(path: str | Path, spec: Spec | None = None, dtype: str = "float64",
               default: Spec | None = None) -> Model:
    """A model file (or an old plain params file) with every matrix checked against the spec.

    ``spec`` given: the file's own spec, if it has one, must be the same network.  ``spec``
    None: the file's own spec; a plain file (no spec) is read as ``default``'s network, or
    refused when there is no default.
    """
    limit = max_params_bytes(spec) if spec is not None else MAX_MODEL_BYTES
    hint = (f"the params of a {'-'.join(map(str, spec.layers))} network ({spec.n_parameters} numbers) "
            "are far smaller (the limit is 1 MB plus 256 bytes per parameter); is this the right file?"
            if spec is not None else "a model file is at most 1 GB")
    text = read_text(path, "params file", limit, hint)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"params file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"params file {path} must hold an object {{\"W1\": [[...]], \"b1\": [...], ...}}")
    if data.get("format") == FORMAT:
        return _model(path, data, spec, dtype)
    if isinstance(data.get("params"), dict):  # a step/train --json report
        data = data["params"]
    spec = spec if spec is not None else default
    if spec is None:
        raise UserError(f"params file {path} holds parameters only (an older file, or not from "
                        "backprop train); name the network with --spec or --layers/--activations/--loss")
    return Model(spec, check_params(path, data, spec, dtype))


def _model(path, data: dict, spec: Spec | None, dtype: str) -> Model:
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UserError(f"params file {path} is model format version {version!r}; this backprop "
                        f"reads up to version {VERSION}: upgrade backprop")
    if not isinstance(data.get("spec"), dict):
        raise UserError(f"params file {path} has no 'spec' object")
    own = spec_from_mapping(data["spec"], source=f"params file {path}")
    if spec is not None and not same_network(own, spec):
        raise UserError(f"params file {path} is for the {own.describe()}, not the {spec.describe()}; "
                        "drop the network flags to use the file's own")
    spec = own if spec is None else spec  # the caller's spec names the optimiser it trains with
    if not isinstance(data.get("params"), dict):
        raise UserError(f"params file {path} has no 'params' object")
    params = check_params(path, data["params"], spec, dtype)
    mean = std = None
    scaling = data.get("standardise")
    if scaling is not None:
        try:
            mean = np.array(scaling["mean"], dtype=dtype)
            std = np.array(scaling["std"], dtype=dtype)
        except (TypeError, ValueError, KeyError):
            raise UserError(f"params file {path}: 'standardise' must be {{\"mean\": [...], \"std\": [...]}} "
                            "of numbers") from None
        if mean.shape != (spec.n_inputs,) or std.shape != (spec.n_inputs,):
            raise UserError(f"params file {path}: 'standardise' needs {spec.n_inputs} means and stds, "
                            f"one per input; got {mean.size} and {std.size}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise UserError(f"params file {path}: 'standardise' holds a std that is not positive, "
                            "or a value that is not finite")
    names = {}
    for key, size in (("features", spec.n_inputs), ("targets", None), ("classes", None)):
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise UserError(f"params file {path}: {key!r} must be a list of names")
        if value is not None and size is not None and len(value) != size:
            raise UserError(f"params file {path}: {len(value)} {key} named for {size} inputs")
        names[key] = value
    known = {"format", "version", "spec", "params", "standardise", "features", "targets", "classes",
             "optimizer_state"}
    extra = {k: v for k, v in data.items() if k not in known}
    state = check_state(path, data.get("optimizer_state"), spec, dtype)
    return Model(spec, params, mean, std, extra=extra, optimizer_state=state, **names)


def check_state(path, data, spec: Spec, dtype: str = "float64") -> dict | None:
    """A model file's "optimizer_state" checked: a known optimiser's name, a step count t >= 0
    and every state array of that optimiser for every parameter, with the parameter's shape."""
    if data is None:
        return None
    where = f"params file {path}: 'optimizer_state'"
    if not isinstance(data, dict) or data.get("name") not in OPTIMIZERS:
        raise UserError(f"{where} must be an object with the optimizer's \"name\" "
                        f"({', '.join(OPTIMIZERS)}); drop it to start the optimizer afresh")
    name, step = data["name"], data.get("t")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(f"{where} needs the step count \"t\", a whole number >= 0; got {step!r}")
    names = OPTIMIZERS[name].state
    unknown = sorted(set(data) - {"name", "t", "shuffle", *names})
    if unknown:
        raise UserError(f"{where}: {name} keeps {', '.join(names) or 'no arrays'}, not {', '.join(unknown)}")
    state = {"name": name, "t": step}
    if data.get("shuffle") is not None:
        state["shuffle"] = _shuffle_state(where, data["shuffle"])
    for key in names:
        if not isinstance(data.get(key), dict):
            raise UserError(f"{where} has no {key!r} arrays; {name} keeps {', '.join(names)}")
        state[key] = check_params(f"{path} (optimizer state {key!r})", data[key], spec, dtype, running=False)
    return state


def _shuffle_state(where: str, value) -> dict:
    """A saved shuffling generator (NumPy's PCG64 state, as ``bit_generator.state`` gives it)."""
    inner = value.get("state") if isinstance(value, dict) else None
    if not (isinstance(value, dict) and value.get("bit_generator") == "PCG64" and isinstance(inner, dict)
            and all(isinstance(inner.get(k), int) and not isinstance(inner.get(k), bool) and inner[k] >= 0
                    for k in ("state", "inc"))
            and value.get("has_uint32") in (0, 1) and isinstance(value.get("uinteger"), int)):
        raise UserError(f"{where}: \"shuffle\" must be a PCG64 generator state "
                        "(bit_generator, state: {state, inc}, has_uint32, uinteger); drop it to reshuffle afresh")
    return {"bit_generator": "PCG64", "state": {"state": inner["state"], "inc": inner["inc"]},
            "has_uint32": value["has_uint32"], "uinteger": value["uinteger"]}


#: A batch-normalised layer's running statistics: (params key stem, fresh value, what may hold).
RUNNING = (("running_mean", 0.0, "finite"), ("running_var", 1.0, "at least 0"))


def running_shapes(spec: Spec) -> dict[str, tuple[int]]:
    """{"running_mean1": (n1,), "running_var1": (n1,), ...}: what eval mode normalises with."""
    return {f"{stem}{k}": (spec.layers[k],) for k in spec.batch_norm_layers for stem, _, _ in RUNNING}


def _running(path, data: dict, spec: Spec, dtype: str) -> dict[str, np.ndarray]:
    """The running statistics of ``data``, checked (the variances >= 0), fresh where absent."""
    out = {}
    for k in spec.batch_norm_layers:
        for stem, fresh, rule in RUNNING:
            name, shape = f"{stem}{k}", (spec.layers[k],)
            if name not in data:
                out[name] = np.full(shape, fresh, dtype=dtype)
                continue
            try:
                value = np.array(data[name], dtype=dtype)
            except (TypeError, ValueError):
                value = None
            if value is None or value.shape != shape:
                raise UserError(f"params file {path}: {name} must be a list of {shape[0]} numbers "
                                f"(layer {k}'s running {stem[8:]}, one per node)")
            if not np.all(np.isfinite(value)) or (stem == "running_var" and np.any(value < 0)):
                raise UserError(f"params file {path}: {name} holds a value that is not {rule}")
            out[name] = value
    return out


def check_params(path, data: dict, spec: Spec, dtype: str = "float64",
                 running: bool = True) -> dict[str, np.ndarray]:
    """{"W1": array, ...} from a JSON object, each matrix checked against the spec's shapes;
    ``running``: a batch-normalised layer's running statistics too (:func:`running_shapes`)."""
    shapes = spec.shapes()
    unknown = sorted(set(data) - set(shapes) - (set(running_shapes(spec)) if running else set()))
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
    return params | (_running(path, data, spec, dtype) if running else {})
