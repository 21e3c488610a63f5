"""Optimisers: ONE table entry each, the settings a spec's ``[optimizer]`` table may give.

An entry names its hyper-parameters with their defaults (PyTorch's, so a run can be checked
against ``torch.optim``).  :func:`settings` checks a spec's ``[optimizer]`` table against the
entry and returns it as sorted (key, value) pairs, the form a frozen Spec stores.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backprop.core.errors import UserError


@dataclass(frozen=True)
class Optimizer:
    """One row of the optimiser table: its hyper-parameters and their defaults."""

    name: str
    defaults: dict = field(default_factory=dict)
    doc: str = ""

    def __repr__(self) -> str:
        return f"Optimizer({self.name!r})"


_DECAY = {"weight_decay": 0.0}

OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in [
        Optimizer("sgd", {"lr": 0.01, **_DECAY}, "w ← w − η g"),
        Optimizer("momentum", {"lr": 0.01, "momentum": 0.9, **_DECAY},
                  "v ← μ v + g, w ← w − η v (PyTorch's SGD with momentum)"),
        Optimizer("nesterov", {"lr": 0.01, "momentum": 0.9, **_DECAY},
                  "v ← μ v + g, w ← w − η (g + μ v) (PyTorch's SGD with nesterov=True)"),
        Optimizer("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, **_DECAY},
                  "s ← α s + (1−α) g², w ← w − η g / (√s + ε)"),
        Optimizer("adam", {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, **_DECAY,
                           "decoupled": False},
                  "m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², w ← w − η m̂/(√v̂ + ε); "
                  "decoupled = true is AdamW"),
    ]
}


def settings(table: dict, source: str = "spec") -> tuple[tuple[str, object], ...]:
    """A spec's ``[optimizer]`` table, checked and completed with the entry's defaults, as
    sorted (key, value) pairs; ``{}`` is plain SGD."""
    if not isinstance(table, dict):
        raise UserError(f"{source}: [optimizer] must be a table such as name = \"adam\", lr = 0.001")
    name = table.get("name", "sgd")
    if name not in OPTIMIZERS:
        raise UserError(f"{source}: unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    entry = OPTIMIZERS[name]
    unknown = sorted(set(table) - set(entry.defaults) - {"name"})
    if unknown:
        raise UserError(f"{source}: {name} takes {', '.join(entry.defaults)}, not {', '.join(unknown)}")
    out = {"name": name, **entry.defaults}
    for key, value in table.items():
        if key == "name":
            continue
        default = entry.defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{source}: optimizer {key} must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value \
                or value < 0 or value in (float("inf"),):
            raise UserError(f"{source}: optimizer {key} must be a finite number >= 0, got {value!r}")
        out[key] = float(value) if not isinstance(default, bool) else value
    return tuple(sorted(out.items()))
