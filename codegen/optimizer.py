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
    """One printed update function: name, argument list, docstring lines (quotes included),
    body lines (each at most 95 characters: the template indents them by four)."""

    name: str
    args: str
    doc: tuple[str, ...]
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
    from .render import docstring_text, wrap_code, wrap_docstring  # render places this module's text

    printer = BackpropPrinter()
    hyper = list(entry.defaults)
    args = ", ".join([w.name, g.name, *entry.state, t.name, *hyper])
    lines = _decay_lines(entry, printer)
    lines += [_assignment(entry, target, expr, printer) for target, expr in entry.rule]
    doc = (f"{entry.name}: {entry.doc}.  Updates one parameter array w and its state in place; "
           f"torch.optim's {entry.torch}.")
    return UpdateFunction(f"_{entry.name}_update", args, tuple(wrap_docstring(docstring_text(doc))),
                          tuple(part for line in lines for part in _indented(line, wrap_code)))


def _indented(line: str, wrap) -> list[str]:
    """One body line wrapped to fit the function's indent plus its own (an ``if`` branch's)."""
    body = line.lstrip(" ")
    pad = line[:len(line) - len(body)]
    return [pad + part for part in wrap(body, 95 - len(pad))]


def _literal(value) -> str:
    """A setting as Python source: a table key or name in double quotes, else its repr."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _mapping(table: dict) -> str:
    """A dict of settings as Python source in double quotes: {"name": "adam", "lr": 0.001}."""
    return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in table.items()) + "}"


def table_lines(width: int = 95) -> list[str]:
    """The OPTIMIZERS dict of the trainer, one entry per line (continued where too long):
    ``"adam": {"state": ("m", "v"), "defaults": {"lr": 0.001, ...}},``."""
    from .render import wrap_code

    lines = []
    for name, e in OPTIMIZERS.items():
        state = "(" + ", ".join(_literal(s) for s in e.state) + ("," if len(e.state) == 1 else "") + ")"
        entry_ = f'"{name}": {{"state": {state}, "defaults": {_mapping(dict(e.defaults))}}},'
        lines += wrap_code(entry_, width)
    return lines


def optimizer_context(spec: Spec) -> dict:
    """What the template's optimiser section needs: the printed functions, the table of
    state names and defaults (finished lines), each entry's function, and the spec's own
    optimiser (every key filled in) as Python source, at most 99 characters a line."""
    from .render import wrap_code

    return {
        "optimizer_functions": [update_function(e) for e in OPTIMIZERS.values()],
        "optimizer_table_lines": table_lines(),
        "optimizer_updates": {name: f"_{name}_update" for name in OPTIMIZERS},
        "optimizer_lines": wrap_code(f"OPTIMIZER = {_mapping(full(spec.optimizer))}", 99),
    }
