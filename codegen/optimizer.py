"""The optimiser section of a generated trainer, printed from backprop's optimiser table.

Each entry of :data:`backprop.derive.optimizers.OPTIMIZERS` becomes one function
``_<name>_update(w, g, <state...>, t, <hyper-parameters...>)`` that updates one parameter
array ``w`` (and its state arrays) in place from its gradient ``g``: the entry's assignments
printed element-wise by the trainer's SymPy printer, the weight decay's (:data:`DECAY`) behind
``if weight_decay`` (and ``decoupled`` for an entry that has it).  Nothing is typed here: a new
table entry is a new function.  The template (``base.py.j2``) places the functions and the
tables below, and ``optimizer_state``/``optimizer_step``/``train`` call them.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from backprop.derive import Spec
from backprop.derive.optimizers import DECAY, OPTIMIZERS, Optimizer, full, g, t, w

from .printer import BackpropPrinter


@dataclass(frozen=True)
class UpdateFunction:
    """One printed update function: name, argument list, docstring, body lines."""

    name: str
    args: str
    doc: str
    lines: tuple[str, ...]


def _assignment(entry: Optimizer, target: sympy.Symbol, expr: sympy.Expr, printer) -> str:
    """``w[...] = ...`` for an array updated in place (the parameter, a state array),
    ``g = ...`` / ``m_hat = ...`` for a new local array (the caller's gradient is never written)."""
    text = printer.doprint(expr)
    role = entry.role(target)
    return f"{target.name}[...] = {text}" if role in ("parameter", "state") else f"{target.name} = {text}"


def _decay_lines(entry: Optimizer, printer) -> list[str]:
    """The weight decay's statements under the settings that turn them on."""
    l2 = [_assignment(entry, target, expr, printer) for target, expr in DECAY["l2"]]
    if "decoupled" not in entry.defaults:
        return ["if weight_decay:  # L2: λ w added to the gradient", *("    " + s for s in l2)]
    decoupled = [_assignment(entry, target, expr, printer) for target, expr in DECAY["decoupled"]]
    return ["if weight_decay and decoupled:  # decoupled (AdamW): w shrinks before the rule",
            *("    " + s for s in decoupled),
            "elif weight_decay:  # L2: λ w added to the gradient",
            *("    " + s for s in l2)]


def update_function(entry: Optimizer) -> UpdateFunction:
    """``entry``'s update as a printed function of one parameter array."""
    printer = BackpropPrinter()
    hyper = list(entry.defaults)
    args = ", ".join([w.name, g.name, *entry.state, t.name, *hyper])
    lines = _decay_lines(entry, printer)
    lines += [_assignment(entry, target, expr, printer) for target, expr in entry.rule]
    return UpdateFunction(f"_{entry.name}_update", args, f"{entry.name}: {entry.doc}.", tuple(lines))


def optimizer_context(spec: Spec) -> dict:
    """What the template's optimiser section needs: the printed functions, each entry's state
    names and defaults, and the spec's own optimiser (every key filled in)."""
    return {
        "optimizer_functions": [update_function(e) for e in OPTIMIZERS.values()],
        "optimizer_table": {name: {"state": e.state, "defaults": dict(e.defaults),
                                   "function": f"_{name}_update"} for name, e in OPTIMIZERS.items()},
        "optimizer": full(spec.optimizer),
    }
