"""A network spec: layer widths, one activation per non-input layer, a loss, bias on or off.

Specs come from flags (``--layers 2-2-1 --activations linear --loss se``) or from a TOML
file (``layers = [2, 2, 1]``, ``activations = ["linear", "linear"]``, ``loss = "se"``,
``bias = true``).  Every check lives here, so everything downstream may trust a Spec.
"""
from __future__ import annotations

import hashlib
import numbers
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop.core.errors import UserError, UserTypeError
from backprop.core.userfile import read_text

from .activations import ACTIVATIONS
from .losses import LOSSES
from .optimizers import settings

#: The notes' worked example: 2 inputs (IQ, CGPA), 2 hidden nodes, 1 output, all linear, (y-ŷ)².
NOTES_2_2_1 = dict(layers=(2, 2, 1), activations=("linear", "linear"), loss="se", bias=True)

_TOML_KEYS = {"layers", "activations", "loss", "bias", "residual", "batch_norm", "optimizer"}
#: Largest spec file read (a spec is four short lines; this bounds reading /dev/zero or a mistake).
MAX_SPEC_BYTES = 100_000
#: Most digits in one layer width (10^100 nodes is no network; int() itself stops at 4 300).
MAX_WIDTH_DIGITS = 100


@dataclass(frozen=True)
class Spec:
    """A validated network: ``layers[0]`` inputs, ``activations[k-1]`` for layer k."""

    layers: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    bias: bool = True
    #: per hidden layer k = 1..L-1: O_k = g(z_k) + O_{k-1} (the widths must match)
    residual: tuple[bool, ...] = ()
    #: per hidden layer: z_k normalised over the batch, then scaled by γ_k and shifted by β_k
    batch_norm: tuple[bool, ...] = ()
    #: the [optimizer] table as sorted (key, value) pairs (derive/optimizers.py); () is SGD
    optimizer: tuple[tuple[str, object], ...] = ()

    def __post_init__(self):
        _normalise(self)
        _validate(self)

    def __repr__(self) -> str:
        extra = "".join(f", {key}={getattr(self, key)!r}" for key in ("residual", "batch_norm", "optimizer")
                        if getattr(self, key) != _DEFAULTS[key](self))
        return (f"Spec(layers={self.layers!r}, activations={self.activations!r}, loss={self.loss!r}, "
                f"bias={self.bias!r}{extra})")

    @property
    def residual_layers(self) -> list[int]:
        """The hidden layers k with a skip connection O_k = g(z_k) + O_{k-1}."""
        return [k for k, on in enumerate(self.residual, start=1) if on]

    @property
    def batch_norm_layers(self) -> list[int]:
        """The hidden layers k whose z_k is batch-normalised (γ_kj, β_kj learnt)."""
        return [k for k, on in enumerate(self.batch_norm, start=1) if on]

    @property
    def plain(self) -> bool:
        """A plain chain of dense layers: no skip connection, no batch normalisation."""
        return not (self.residual_layers or self.batch_norm_layers)

    @property
    def depth(self) -> int:
        """Number of non-input layers, L (the output layer is layer L)."""
        return len(self.layers) - 1

    @property
    def n_inputs(self) -> int:
        return self.layers[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1]

    def parameter_counts(self) -> list[tuple[int, int]]:
        """(weights, biases) per layer k = 1..L."""
        return [
            (self.layers[k - 1] * self.layers[k], self.layers[k] if self.bias else 0)
            for k in range(1, len(self.layers))
        ]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """{"W1": (n0, n1), "b1": (n1,), ...}: W{k}[i-1][j-1] is w^k_ij."""
        shapes = {}
        for k in range(1, len(self.layers)):
            shapes[f"W{k}"] = (self.layers[k - 1], self.layers[k])
            if self.bias:
                shapes[f"b{k}"] = (self.layers[k],)
            if k in self.batch_norm_layers:
                shapes[f"gamma{k}"] = (self.layers[k],)
                shapes[f"beta{k}"] = (self.layers[k],)
        return shapes

    @property
    def n_parameters(self) -> int:
        """Weights and biases, and γ, β of the batch-normalised layers."""
        return (sum(w + b for w, b in self.parameter_counts())
                + 2 * sum(self.layers[k] for k in self.batch_norm_layers))

    def to_toml(self) -> str:
        """The spec as TOML text that :func:`load_toml` reads back to an equal Spec."""
        acts = ", ".join(f'"{a}"' for a in self.activations)
        return (
            f"layers = [{', '.join(map(str, self.layers))}]\n"
            f"activations = [{acts}]\n"
            f'loss = "{self.loss}"\n'
            f"bias = {'true' if self.bias else 'false'}\n"
        ) + self._extra_toml()

    def _extra_toml(self) -> str:
        """residual, batch_norm and [optimizer] lines, only where they differ from the default."""
        flags = lambda v: "[" + ", ".join("true" if f else "false" for f in v) + "]"  # noqa: E731
        text = "".join(f"{key} = {flags(getattr(self, key))}\n" for key in ("residual", "batch_norm")
                       if any(getattr(self, key)))
        if self.optimizer:
            value = lambda v: ("true" if v else "false") if isinstance(v, bool) else (  # noqa: E731
                f'"{v}"' if isinstance(v, str) else repr(v))
            text += "[optimizer]\n" + "".join(f"{k} = {value(v)}\n" for k, v in self.optimizer)
        return text

    def digest(self) -> str:
        """A short content hash of the spec, for generated-file headers."""
        return hashlib.sha256(self.to_toml().encode()).hexdigest()[:12]

    def _repr_latex_(self) -> str:
        """Jupyter: the network and its loss for one row in the notes' notation."""
        from .network import Network  # symbols and printing sit downstream of the spec
        from .printing import NotationPrinter

        head = rf"\text{{{self.describe()}: {self.n_parameters:,} parameters}}"
        if self.n_outputs > 10:
            return f"${head}$"
        net = Network(self)
        printer = NotationPrinter(depth=net.depth, single_output=net.single_output)
        return rf"${head} \quad L = {printer.latex(net.loss)}$"

    def describe(self) -> str:
        """One line: 2-2-1, linear,linear, loss se, with bias."""
        extra = "".join(f", {what} on layer{'s' if len(ks) > 1 else ''} {','.join(map(str, ks))}"
                        for what, ks in (("residual", self.residual_layers),
                                         ("batch norm", self.batch_norm_layers)) if ks)
        return (
            f"{'-'.join(map(str, self.layers))} network, activations "
            f"{','.join(self.activations)}, loss {self.loss}, "
            f"{'with' if self.bias else 'no'} bias{extra}"
        )


def _names(table) -> str:
    return ", ".join(sorted(table))


def _whole(value, what: str) -> int:
    """An int from an int or a NumPy integer (not a bool, not a float), else UserTypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise UserTypeError(f"{what} must be whole numbers, got {value!r} ({type(value).__name__})")
    return int(value)


def _flag(value, what: str) -> bool:
    """A bool from a bool or a NumPy bool, else UserTypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise UserTypeError(f"{what} must be true or false, got {value!r} ({type(value).__name__})")
    return bool(value)


def _sequence(value, what: str, example: str) -> tuple:
    """A tuple from a list/tuple/array (not a string, mapping or set), else UserTypeError."""
    if isinstance(value, (str, bytes, dict, set, frozenset)) or not isinstance(value, (Sequence, np.ndarray)):
        raise UserTypeError(f"{what} must be a sequence such as {example}, got {type(value).__name__}")
    return tuple(value.tolist() if isinstance(value, np.ndarray) else value)


def _normalise(spec: Spec) -> None:
    """Store plain, immutable values: tuples of int and str, a bool (a list or a NumPy value
    given to the constructor would otherwise stay mutable or compare oddly afterwards)."""
    layers = tuple(_whole(w, "layer widths") for w in _sequence(spec.layers, "layers", "(2, 2, 1)"))
    acts = _sequence(spec.activations, "activations", '("linear", "linear")')
    for name in acts:
        if not isinstance(name, str):
            raise UserTypeError(f"activation names must be strings, got {name!r} ({type(name).__name__})")
    if not isinstance(spec.loss, str):
        raise UserTypeError(f"loss must be a name such as 'se', got {spec.loss!r} ({type(spec.loss).__name__})")
    for key, value in (("layers", layers), ("activations", tuple(map(str, acts))),
                       ("loss", str(spec.loss)), ("bias", _flag(spec.bias, "bias"))):
        object.__setattr__(spec, key, value)
    hidden = len(layers) - 2
    for key in ("residual", "batch_norm"):
        flags = tuple(_flag(f, key) for f in _sequence(getattr(spec, key), key, "(False, True)"))
        if not flags:
            flags = (False,) * max(hidden, 0)
        if len(flags) != max(hidden, 0):
            raise UserError(f"{key} gives {len(flags)} flag(s) for {max(hidden, 0)} hidden layer(s) of "
                            f"{'-'.join(map(str, layers))}: one true/false per hidden layer")
        object.__setattr__(spec, key, flags)
    table = settings(dict(spec.optimizer)) if spec.optimizer else ()  # a dict or (key, value) pairs
    object.__setattr__(spec, "optimizer", () if table == settings({}) else table)  # SGD's defaults: ()


#: What an unset field normalises to, for the repr.
_DEFAULTS = {"residual": lambda s: (False,) * (s.depth - 1), "batch_norm": lambda s: (False,) * (s.depth - 1),
             "optimizer": lambda s: ()}


def _validate(spec: Spec) -> None:
    if len(spec.layers) < 2:
        raise UserError(
            f"a network needs at least an input and an output layer, got {len(spec.layers)} "
            "width(s); write e.g. --layers 2-2-1"
        )
    for width in spec.layers:
        if width < 1:
            raise UserError(f"layer widths must be positive integers, got {width!r}")
    if len(spec.activations) != spec.depth:
        raise UserError(
            f"{len(spec.activations)} activation(s) given for {spec.depth} non-input layer(s) "
            f"of {'-'.join(map(str, spec.layers))}: give one per layer or one name for all"
        )
    for k, name in enumerate(spec.activations, start=1):
        if name not in ACTIVATIONS:
            raise UserError(f"unknown activation {name!r} for layer {k}; known: {_names(ACTIVATIONS)}")
        if not ACTIVATIONS[name].elementwise and spec.layers[k] < 2:
            raise UserError(
                f"layer {k} uses {name} but has width 1: {name} of one node is constant 1 "
                "and passes no gradient; use sigmoid for one output"
            )
    if spec.loss not in LOSSES:
        raise UserError(f"unknown loss {spec.loss!r}; known: {_names(LOSSES)}")
    for k in spec.residual_layers:
        if spec.layers[k] != spec.layers[k - 1]:
            raise UserError(f"residual on layer {k} adds O_{k - 1} to g(z_{k}), so the widths must match: "
                            f"layer {k} has {spec.layers[k]} nodes, layer {k - 1} has {spec.layers[k - 1]}")


def parse_layers(text: str) -> tuple[int, ...]:
    """'5-4-3-2-1' (or '5,4,3,2,1') -> (5, 4, 3, 2, 1)."""
    parts = text.replace(",", "-").split("-")
    widths = []
    for part in parts:
        part = part.strip()
        if len(part) > MAX_WIDTH_DIGITS and part.isascii() and part.isdigit():
            raise UserError(f"a layer width of {len(part):,} digits is too large: widths have at most "
                            f"{MAX_WIDTH_DIGITS} digits")
        # ASCII digits only: '²'.isdigit() is True but int('²') fails
        if not (part.isascii() and part.isdigit()) or int(part) < 1:
            raise UserError(
                f"layer widths must be positive integers (digits 0-9) separated by '-', got {_short(text)!r}"
            )
        widths.append(int(part))
    return tuple(widths)


def _short(text: str, limit: int = 60) -> str:
    """A user's text cut for an error message."""
    return text if len(text) <= limit else text[:limit] + "…"


def make_spec(layers, activations, loss: str, bias: bool = True, residual=(), batch_norm=(),
              optimizer=None) -> Spec:
    """Build a Spec from loose values: a layers string or sequence, one or many activations.

    Parameters
    ----------
    layers : str or sequence of int
        Widths from the inputs to the outputs: ``"2-2-1"`` or ``(2, 2, 1)``.
    activations : str or sequence of str
        One name per non-input layer (``"relu,sigmoid"`` or ``("relu", "sigmoid")``), or one
        name for every layer; the names are the keys of ``ACTIVATIONS``.
    loss : str
        A key of ``LOSSES``: se, half_se, mse, bce, cce, hinge.
    bias : bool
        Whether every node has a bias b_kj.
    residual, batch_norm : sequence of bool
        One flag per hidden layer: a skip connection O_k = g(z_k) + O_{k-1}; batch
        normalisation of z_k.  Empty: none.
    optimizer : dict, optional
        The ``[optimizer]`` table (``{"name": "adam", "lr": 0.001}``); None is SGD.

    Returns
    -------
    Spec

    Raises
    ------
    UserError
        A width, name or count that makes no network; the message says how to mend it.
    UserTypeError
        A value of the wrong type (also a TypeError).

    Examples
    --------
    >>> make_spec("2-3-1", "tanh,sigmoid", "bce")
    Spec(layers=(2, 3, 1), activations=('tanh', 'sigmoid'), loss='bce', bias=True)
    >>> make_spec([4, 3], "softmax", "cce").n_parameters
    15
    """
    widths = parse_layers(layers) if isinstance(layers, str) else _sequence(layers, "layers", "'2-2-1' or (2, 2, 1)")
    if isinstance(activations, str):
        activations = [a.strip() for a in activations.split(",")]
    activations = _sequence(activations, "activations", "'relu' or ('relu', 'sigmoid')")
    depth = len(widths) - 1
    if len(activations) == 1 and depth > 1:
        activations = activations * depth
    return Spec(layers=widths, activations=activations, loss=loss, bias=bias, residual=residual,
                batch_norm=batch_norm, optimizer=optimizer or ())


def load_toml(path: str | Path) -> Spec:
    """Read a spec file; every problem becomes a UserError naming the file.

    Parameters
    ----------
    path : str or Path
        A TOML file with ``layers = [2, 2, 1]``, ``activations = ["linear", "linear"]`` (or
        one name), ``loss = "se"`` and optionally ``bias = true``.

    Returns
    -------
    Spec

    Raises
    ------
    UserError
        The file is missing, too large, not TOML, or its keys make no network.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.toml"
    >>> _ = path.write_text(make_spec("2-2-1", "relu,linear", "se").to_toml())
    >>> load_toml(path).describe()
    '2-2-1 network, activations relu,linear, loss se, with bias'
    """
    text = read_text(path, "spec file", MAX_SPEC_BYTES,
                     too_big="a spec is four lines (layers, activations, loss, bias)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"spec file {path} is not valid TOML: {exc}") from None
    return spec_from_mapping(data, source=str(path))


def spec_from_mapping(data: dict, source: str = "spec") -> Spec:
    """A Spec from a parsed TOML/JSON mapping, with errors that name the key."""
    unknown = set(data) - _TOML_KEYS
    if unknown:
        raise UserError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(_TOML_KEYS))}"
        )
    for key in ("layers", "activations", "loss"):
        if key not in data:
            raise UserError(f"{source}: missing key {key!r}")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise UserError(f"{source}: 'layers' must be a list of widths such as [2, 2, 1]")
    acts = data["activations"]
    if isinstance(acts, str):
        acts = [acts]
    if not isinstance(acts, list) or not all(isinstance(a, str) for a in acts):
        raise UserError(f"{source}: 'activations' must be a name or a list of names")
    if not isinstance(data["loss"], str):
        raise UserError(f"{source}: 'loss' must be a name such as \"se\"")
    try:
        for key in ("residual", "batch_norm"):
            if not isinstance(data.get(key, []), list):
                raise UserError(f"'{key}' must be a list of true/false, one per hidden layer")
        return make_spec(tuple(layers), acts, data["loss"], data.get("bias", True),
                         residual=tuple(data.get("residual", ())), batch_norm=tuple(data.get("batch_norm", ())),
                         optimizer=settings(data.get("optimizer", {}), source))
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
