"""Advice on a spec: pairings that make no sense, and assumptions the derivation relies on.

Two tables, one entry a rule.  A :class:`Rule` looks at a :class:`~backprop.derive.spec.Spec`
only (no SymPy): when it applies, it says in one line what is wrong and how to mend it.  An
:class:`Assumption` names what a derived formula takes for granted (softmax + cce reduces
to ŷ - y only for targets that sum to 1); its formula is passed in, printed from the
derivation, never typed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .activations import ACTIVATIONS
from .losses import LOSSES
from .spec import Spec

#: Output activations whose range is bounded: (lowest, highest) value of ŷ.
BOUNDED = {"sigmoid": ("0", "1"), "tanh": ("-1", "1"), "softmax": ("0", "1")}


def _output(spec: Spec) -> str:
    return spec.activations[-1]


def _perceptron(spec: Spec) -> bool:
    """A single-layer perceptron: inputs straight into one step layer."""
    return spec.depth == 1 and spec.activations == ("step",)


@dataclass(frozen=True)
class Rule:
    """One pairing that makes no sense: when it applies, and the one line that says so."""

    name: str
    applies: Callable[[Spec], bool]
    says: Callable[[Spec], str]


RULES: tuple[Rule, ...] = (
    Rule("bce-without-sigmoid",
         lambda s: s.loss == "bce" and _output(s) != "sigmoid",
         lambda s: f"bce scores each output as a probability from a sigmoid, but the output layer "
                   f"is {_output(s)}: use sigmoid on the output layer (or softmax with cce for one "
                   f"class out of several)"),
    Rule("cce-without-softmax",
         lambda s: s.loss == "cce" and _output(s) != "softmax",
         lambda s: f"cce expects outputs that sum to 1 from a softmax, but the output layer is "
                   f"{_output(s)}: use softmax on the output layer (or sigmoid with bce for "
                   f"yes/no outputs)"),
    Rule("hinge-on-bounded-output",
         lambda s: s.loss == "hinge" and _output(s) in BOUNDED,
         lambda s: f"hinge wants an unbounded score, but {_output(s)} keeps ŷ inside "
                   f"({', '.join(BOUNDED[_output(s)])}), so the margin y·ŷ ≥ 1 is never reached: "
                   f"use a linear output layer with targets -1/+1"),
    Rule("step-outside-perceptron",
         lambda s: "step" in s.activations and not _perceptron(s),
         lambda s: f"step belongs to a single-layer perceptron (e.g. --layers {s.layers[0]}-1 "
                   f"--activations step); in a {'-'.join(map(str, s.layers))} network with "
                   f"{','.join(s.activations)} use sigmoid, step's smooth version, to train by "
                   f"gradient descent"),
)


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
    """One line per rule of :data:`RULES` that ``spec`` breaks, in table order."""
    return [rule.says(spec) for rule in RULES if rule.applies(spec)]


def assumptions(spec: Spec, output_delta: str) -> list[str]:
    """One line per entry of :data:`ASSUMPTIONS` that the derivation of ``spec`` uses."""
    return [a.says(spec, output_delta) for a in ASSUMPTIONS if a.applies(spec)]
