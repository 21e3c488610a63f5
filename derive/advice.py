"""Advice on a spec: pairings that make no sense, and assumptions the derivation relies on.

Two tables, one entry a rule.  A :class:`Rule` looks at a :class:`~backprop.derive.spec.Spec`
only: when it applies, it says in one line what is wrong and how to mend it.  The rules are
made from the activation and loss tables' columns (canonical output, ±1 targets, no
gradient), one per entry they concern.  An :class:`Assumption` names what a derived formula
takes for granted (softmax + cce reduces to ŷ - y only for targets that sum to 1); its
formula is passed in, printed from the derivation, never typed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from .activations import ACTIVATIONS, passes_no_gradient
from .losses import LOSSES, is_canonical_pair
from .spec import Spec

#: Output activations whose range is bounded: (lowest, highest) value of ŷ.
BOUNDED = {"sigmoid": ("0", "1"), "tanh": ("-1", "1"), "softmax": ("0", "1")}


def _output(spec: Spec) -> str:
    return spec.activations[-1]


@dataclass(frozen=True)
class Rule:
    """One pairing that makes no sense: when it applies, and the one line that says so."""

    name: str
    applies: Callable[[Spec], bool]
    says: Callable[[Spec], str]


#: What a loss with a canonical output asks of the outputs, and what the pairing is for, by
#: whether its targets are one-hot rows (cce) or one 0/1 per output (bce).
_PROBABILITIES = {False: ("scores each output as a probability", "yes/no outputs"),
                  True: ("expects outputs that sum to 1", "one class out of several")}


def _canonical_rule(loss: str) -> Rule:
    """``loss`` on an output other than its canonical one (bce without sigmoid), pointing to
    that output or to the other canonical pairs."""
    own = LOSSES[loss].canonical
    asks = _PROBABILITIES[LOSSES[loss].one_hot][0]
    others = " or ".join(f"{LOSSES[o].canonical} with {o} for {_PROBABILITIES[LOSSES[o].one_hot][1]}"
                         for o in LOSSES if LOSSES[o].canonical and o != loss)
    return Rule(f"{loss}-without-{own}",
                lambda s: s.loss == loss and not is_canonical_pair(_output(s), loss),
                lambda s: f"{loss} {asks} from a {own}, but the output layer is {_output(s)}: use "
                          f"{own} on the output layer (or {others})")


def _margin_rule(loss: str) -> Rule:
    """A loss of ±1 targets scored by the margin y·ŷ (hinge) on an output bounded inside it."""
    labels = "/".join(f"{v:+d}" for v in LOSSES[loss].targets.labels)
    return Rule(f"{loss}-on-bounded-output",
                lambda s: s.loss == loss and _output(s) in BOUNDED,
                lambda s: f"{loss} wants an unbounded score, but {_output(s)} keeps ŷ inside "
                          f"({', '.join(BOUNDED[_output(s)])}), so the margin y·ŷ ≥ 1 is never "
                          f"reached: use a linear output layer with targets {labels}")


def _perceptron_rule(act: str) -> Rule:
    """An activation that passes no gradient (step) anywhere but a single-layer perceptron."""
    perceptron = lambda s: s.depth == 1 and s.activations == (act,)  # inputs straight into it
    return Rule(f"{act}-outside-perceptron",
                lambda s: act in s.activations and not perceptron(s),
                lambda s: f"{act} belongs to a single-layer perceptron (e.g. --layers {s.layers[0]}-1 "
                          f"--activations {act}); in a {'-'.join(map(str, s.layers))} network with "
                          f"{','.join(s.activations)} use sigmoid, {act}'s smooth version, to train by "
                          f"gradient descent")


@lru_cache(maxsize=None)
def rules() -> tuple[Rule, ...]:
    """The rules, one per table entry they concern: each loss off its canonical output, each
    margin loss on a bounded output, each activation that passes no gradient outside a
    perceptron.  Built on first use: which activations pass no gradient is read off their
    derived g' (SymPy, cached for the derivation)."""
    return (*[_canonical_rule(n) for n, loss in LOSSES.items() if loss.canonical],
            *[_margin_rule(n) for n, loss in LOSSES.items() if loss.targets.kind == "sign"],
            *[_perceptron_rule(n) for n in ACTIVATIONS if passes_no_gradient(n)])


def __getattr__(name: str):
    """``RULES``: :func:`rules`, built from the tables when first asked for."""
    if name == "RULES":
        return rules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Assumption:
    """What a derived formula takes for granted: when it is used, and the line stating it
    (given the derived output delta, printed, e.g. ``ŷ_j - y_j``)."""

    name: str
    applies: Callable[[Spec], bool]
    says: Callable[[Spec, str], str]


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("softmax-one-hot-targets",
               lambda s: LOSSES[s.loss].one_hot and not ACTIVATIONS[_output(s)].elementwise,
               lambda s, delta: f"{_output(s)} + {s.loss}: δ_{s.depth}j = {delta} holds for targets "
                                f"that sum to 1 (one-hot)"),
)


def warnings(spec: Spec) -> list[str]:
    """One line per rule of :func:`rules` that ``spec`` breaks, in table order."""
    return [rule.says(spec) for rule in rules() if rule.applies(spec)]


def assumptions(spec: Spec, output_delta: str) -> list[str]:
    """One line per entry of :data:`ASSUMPTIONS` that the derivation of ``spec`` uses."""
    return [a.says(spec, output_delta) for a in ASSUMPTIONS if a.applies(spec)]
