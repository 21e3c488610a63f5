"""Optimisers: ONE table entry each, the settings a spec's ``[optimizer]`` table may give, its
state arrays and its update rule as SymPy expressions.

An entry names its hyper-parameters with their defaults (PyTorch's, so a run can be checked
against ``torch.optim``), the state it keeps per parameter (arrays shaped like the parameter,
zero before the first step) and its update rule: assignments in order, in scalar stand-ins
(``g`` the gradient, ``w`` the parameter, ``m``/``v``/``s`` the state, ``t`` the step count
from 1, ``lr`` and the hyper-parameters named as the table's keys).  Nothing here is NumPy:
the code printers print the rule element-wise (as :mod:`backprop.codegen.forms`' pieces) and
:func:`trace` evaluates it for ``backprop step``'s numbers.

Weight decay λ is PyTorch's: for sgd, momentum, nesterov, rmsprop and adam an L2 term added to
the gradient before the rule (g ← g + λw, the gradient of (λ/2)‖w‖² in the loss); for adam with
``decoupled = true`` (AdamW) the parameter shrinks first, w ← w(1 − ηλ), and the rule sees the
plain gradient (:data:`DECAY`).  With λ = 0 no decay statement is made.

:func:`settings` checks a spec's ``[optimizer]`` table against the entry and returns it as
sorted (key, value) pairs, the form a frozen Spec stores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy

from backprop.core.errors import UserError

# -- the scalar stand-ins -----------------------------------------------------------------------
w = sympy.Symbol("w", real=True)  # one entry of a parameter array (W^k or b^k)
g = sympy.Symbol("g", real=True)  # ∂L/∂w for that entry
t = sympy.Symbol("t", positive=True, integer=True)  # the step count, 1 at the first update
m = sympy.Symbol("m", real=True)  # first moment (adam)
v = sympy.Symbol("v", real=True)  # velocity (momentum, nesterov) or second moment (adam)
s = sympy.Symbol("s", nonnegative=True)  # mean square of the gradient (rmsprop)
m_hat = sympy.Symbol("m_hat", real=True)  # bias-corrected first moment (adam)
v_hat = sympy.Symbol("v_hat", nonnegative=True)  # bias-corrected second moment (adam)
lr = sympy.Symbol("lr", positive=True)
momentum = sympy.Symbol("momentum", nonnegative=True)
alpha = sympy.Symbol("alpha", nonnegative=True)
beta1 = sympy.Symbol("beta1", nonnegative=True)
beta2 = sympy.Symbol("beta2", nonnegative=True)
eps = sympy.Symbol("eps", nonnegative=True)
weight_decay = sympy.Symbol("weight_decay", nonnegative=True)

#: Every stand-in by name (the state arrays of an entry are named by these).
SYMBOLS: dict[str, sympy.Symbol] = {x.name: x for x in (w, g, t, m, v, s, m_hat, v_hat, lr, momentum,
                                                         alpha, beta1, beta2, eps, weight_decay)}

#: How the stand-ins read in the notes' style: (text, LaTeX).
DISPLAY: dict[str, tuple[str, str]] = {
    "w": ("w", "w"), "g": ("g", "g"), "t": ("t", "t"), "m": ("m", "m"), "v": ("v", "v"),
    "s": ("s", "s"), "m_hat": ("m̂", r"\hat{m}"), "v_hat": ("v̂", r"\hat{v}"), "lr": ("η", r"\eta"),
    "momentum": ("μ", r"\mu"), "alpha": ("α", r"\alpha"), "beta1": ("β₁", r"\beta_1"),
    "beta2": ("β₂", r"\beta_2"), "eps": ("ε", r"\epsilon"), "weight_decay": ("λ", r"\lambda"),
}

#: An assignment of the rule: (target stand-in, its new value).
Assign = tuple[sympy.Symbol, sympy.Expr]

#: Weight decay by kind, as PyTorch applies it: L2 on the gradient (torch.optim.SGD, RMSprop,
#: Adam: ``grad.add(param, alpha=weight_decay)``) or decoupled (AdamW: ``param.mul_(1 - lr *
#: weight_decay)`` before the rule).
DECAY: dict[str, tuple[Assign, ...]] = {
    "l2": ((g, g + weight_decay * w),),
    "decoupled": ((w, w * (1 - lr * weight_decay)),),
}


@dataclass(frozen=True)
class Optimizer:
    """One row of the optimiser table: hyper-parameters with defaults, state, update rule."""

    name: str
    defaults: dict = field(default_factory=dict)
    doc: str = ""
    state: tuple[str, ...] = ()  # per-parameter arrays, zero before the first step
    rule: tuple[Assign, ...] = ()  # the update in order; the last assigns w
    torch: str = ""  # the torch.optim call it matches, for the docs and the tests

    def __repr__(self) -> str:
        return f"Optimizer({self.name!r})"

    def role(self, symbol: sympy.Symbol) -> str:
        """What an assignment's target is: "parameter", "gradient", "state" or "intermediate"."""
        if symbol == w:
            return "parameter"
        if symbol == g:
            return "gradient"
        return "state" if symbol.name in self.state else "intermediate"

    def update(self, settings: dict) -> tuple[Assign, ...]:
        """The assignments of one step with these settings: the weight decay's (if λ ≠ 0),
        then the rule."""
        return DECAY.get(decay_kind(settings), ()) + self.rule


_DECAY = {"weight_decay": 0.0}
_mhat_rule = (m_hat, m / (1 - beta1 ** t))
_vhat_rule = (v_hat, v / (1 - beta2 ** t))

OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in [
        Optimizer("sgd", {"lr": 0.01, **_DECAY}, "w ← w − η g",
                  rule=((w, w - lr * g),), torch="SGD(lr, weight_decay)"),
        Optimizer("momentum", {"lr": 0.01, "momentum": 0.9, **_DECAY},
                  "v ← μ v + g, w ← w − η v (PyTorch's SGD with momentum)", state=("v",),
                  rule=((v, momentum * v + g), (w, w - lr * v)),
                  torch="SGD(lr, momentum, weight_decay)"),
        Optimizer("nesterov", {"lr": 0.01, "momentum": 0.9, **_DECAY},
                  "v ← μ v + g, w ← w − η (g + μ v) (PyTorch's SGD with nesterov=True)", state=("v",),
                  rule=((v, momentum * v + g), (w, w - lr * (g + momentum * v))),
                  torch="SGD(lr, momentum, nesterov=True, weight_decay)"),
        Optimizer("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, **_DECAY},
                  "s ← α s + (1−α) g², w ← w − η g / (√s + ε)", state=("s",),
                  rule=((s, alpha * s + (1 - alpha) * g ** 2), (w, w - lr * g / (sympy.sqrt(s) + eps))),
                  torch="RMSprop(lr, alpha, eps, weight_decay)"),
        Optimizer("adam", {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, **_DECAY,
                           "decoupled": False},
                  "m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), "
                  "w ← w − η m̂/(√v̂ + ε); decoupled = true is AdamW", state=("m", "v"),
                  rule=((m, beta1 * m + (1 - beta1) * g), (v, beta2 * v + (1 - beta2) * g ** 2),
                        _mhat_rule, _vhat_rule, (w, w - lr * m_hat / (sympy.sqrt(v_hat) + eps))),
                  torch="Adam(lr, betas=(beta1, beta2), eps, weight_decay); AdamW when decoupled"),
    ]
}

#: Allowed ranges of the hyper-parameters: key -> (low, high, high included, why).  A β of 1
#: would divide by 1 − βᵗ = 0 in the bias correction; η = 0 never moves.
RANGES: dict[str, tuple[float, float, bool, str]] = {
    "lr": (0.0, math.inf, False, "a positive number such as 0.01"),
    "momentum": (0.0, 1.0, False, "a number in [0, 1) such as 0.9"),
    "alpha": (0.0, 1.0, True, "a number in [0, 1] such as 0.99"),
    "beta1": (0.0, 1.0, False, "a number in [0, 1) such as 0.9"),
    "beta2": (0.0, 1.0, False, "a number in [0, 1) such as 0.999"),
    "eps": (0.0, math.inf, False, "a number >= 0 such as 1e-8"),
    "weight_decay": (0.0, math.inf, False, "a number >= 0 such as 0.01 (0: none)"),
}
#: Keys whose lower end is excluded (η = 0 never moves the parameters).
POSITIVE = {"lr"}


def decay_kind(settings: dict) -> str | None:
    """"l2", "decoupled" (AdamW) or None (λ = 0): which :data:`DECAY` form a step applies."""
    if not settings.get("weight_decay"):
        return None
    return "decoupled" if settings.get("decoupled") else "l2"


def entry(settings) -> Optimizer:
    """The table entry of a spec's optimizer (sorted pairs or a dict; empty is sgd)."""
    return OPTIMIZERS[dict(settings).get("name", "sgd")]


def full(settings) -> dict:
    """A spec's optimizer pairs (``()`` for plain SGD) as a dict with every key filled in."""
    table = dict(settings)
    return {"name": table.get("name", "sgd"), **entry(table).defaults, **table}


def _check_value(source: str, key: str, value) -> float:
    """One hyper-parameter as a float in its :data:`RANGES` range, or a one-line error."""
    low, high, high_in, hint = RANGES.get(key, (0.0, math.inf, False, "a number >= 0"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{source}: optimizer {key} must be {hint}, got {value!r}")
    low_ok = value > low if key in POSITIVE else value >= low
    high_ok = value <= high if high_in else value < high
    if not (low_ok and high_ok):
        raise UserError(f"{source}: optimizer {key} must be {hint}, got {value!r}")
    return float(value)


def settings(table: dict, source: str = "spec") -> tuple[tuple[str, object], ...]:
    """A spec's ``[optimizer]`` table, checked and completed with the entry's defaults, as
    sorted (key, value) pairs; ``{}`` is plain SGD."""
    if not isinstance(table, dict):
        raise UserError(f"{source}: [optimizer] must be a table such as name = \"adam\", lr = 0.001")
    name = table.get("name", "sgd")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise UserError(f"{source}: unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    entry_ = OPTIMIZERS[name]
    unknown = sorted(set(table) - set(entry_.defaults) - {"name"})
    if unknown:
        raise UserError(f"{source}: {name} takes {', '.join(entry_.defaults)}, not {', '.join(unknown)}")
    out = {"name": name, **entry_.defaults}
    for key, value in table.items():
        if key == "name":
            continue
        default = entry_.defaults[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{source}: optimizer {key} must be true or false, got {value!r}")
            out[key] = value
        else:
            out[key] = _check_value(source, key, value)
    if name == "nesterov" and out["momentum"] == 0:
        raise UserError(f"{source}: nesterov needs a momentum > 0 (0 is plain sgd); "
                        "set momentum = 0.9 or name = \"sgd\"")
    return tuple(sorted(out.items()))


# -- evaluating the rule --------------------------------------------------------------------------
def trace(settings, w_value, g_value, state: dict, step: int) -> list[tuple[str, object]]:
    """Every assignment of one step evaluated from the table's expressions, in order:
    [("g", ...), ("m", ...), ("v", ...), ("m_hat", ...), ("v_hat", ...), ("w", ...)].

    ``w_value``, ``g_value`` and the ``state`` values (by state name) are numbers or NumPy
    arrays of one parameter (element-wise); ``step`` is t of this step (1 for the first).
    Nothing is updated in place.  ``backprop step`` shows these numbers beside the trainer's.
    """
    table = full(settings)
    opt = OPTIMIZERS[table["name"]]
    known = {SYMBOLS[k]: val for k, val in table.items() if k in SYMBOLS}
    values = {w: w_value, g: g_value, t: step, **known,
              **{SYMBOLS[name]: state[name] for name in opt.state}}
    out = []
    for target, expr in opt.update(table):
        args = sorted(expr.free_symbols, key=lambda x: x.name)
        fn = sympy.lambdify(args, expr, modules="numpy")
        values[target] = fn(*(values[a] for a in args))
        out.append((target.name, values[target]))
    return out
