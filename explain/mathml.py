"""LaTeX the project prints, as MathML a browser renders without any network (latex2mathml).

The ``xmlns`` attribute is dropped: inside HTML a ``<math>`` element is MathML by the parser's
rules, and a page with no ``http://`` string at all is easy to check for external references.
"""
from __future__ import annotations

import math
import re

from latex2mathml.converter import convert

from backprop.train.onestep import fmt, tex_number

_XMLNS = re.compile(r'\s+xmlns="[^"]*"')


def mathml(tex: str, block: bool = False) -> str:
    """One formula as a ``<math>`` element (display="block" for a row of its own)."""
    return _XMLNS.sub("", convert(tex, display="block" if block else "inline"))


def number(value: float) -> str:
    """A value as LaTeX, bracketed when negative: ``0.5``, ``\\left(-0.0226\\right)``."""
    text = tex_number(value)
    return rf"\left({text}\right)" if value < 0 or math.isnan(value) else text


def slot(value: float) -> str:
    """A value put in a symbol's place inside a formula: always bracketed, so two substituted
    factors never run together (``(0.15)(0.05)``, not ``0.15 0.05``)."""
    return rf"\left({tex_number(value)}\right)"


__all__ = ["fmt", "mathml", "number", "slot", "tex_number"]
