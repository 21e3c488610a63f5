"""Up-front size estimates, so a network too big for per-parameter formulas is refused with
the numbers instead of thrashing.  The vectorised form costs O(layers) and is never refused."""
from __future__ import annotations

import math

from .errors import UserError
from .spec import Spec

#: Most printed terms we agree to build for the per-parameter forms (about 100 MB of text).
MAX_TERMS = 2_000_000
#: Above this many terms per parameter, the fully expanded form is left out of the report.
MAX_EXPANDED_TERMS = 400


def paths_to_loss(spec: Spec, k: int) -> int:
    """Paths from a node of layer k to the loss: the product of the widths after it."""
    return math.prod(spec.layers[k + 1:])


def formula_terms(spec: Spec) -> int:
    """Approximate number of terms in all per-parameter formulas in the notes' vocabulary
    (an exact int however large; the paths after each layer are one running product)."""
    total, paths = 0, 1
    counts = spec.parameter_counts()
    for k in range(spec.depth, 0, -1):  # paths = product of the widths after layer k
        w, b = counts[k - 1]
        total += (w + b) * paths * (spec.depth - k + 1)
        paths *= spec.layers[k]
    return total


def _widths(spec: Spec) -> str:
    """2-2-1, or 2-1000-1000-…-1 (122 layers) when the list is long."""
    if len(spec.layers) <= 8:
        return "-".join(map(str, spec.layers))
    return "-".join(map(str, spec.layers[:3])) + f"-…-{spec.layers[-1]} ({len(spec.layers)} layers)"


def _count(n: int) -> str:
    """1,234,567 exactly, or about 10^N when the digits would fill the line."""
    return f"{n:,}" if n < 10**15 else approx(n)


def approx(n: int | float) -> str:
    """A count for a message, about two digits: 2.4e+06, or 10^357 past what a float holds."""
    if n < 1e300:
        return f"{n:.2g}"
    return f"10^{math.floor(math.log10(n))}"


def expanded_terms(spec: Spec, k: int) -> int:
    """Approximate terms of one layer-k parameter's formula in inputs and parameters only."""
    below = math.prod(spec.layers[:k]) if k > 1 else 1
    return paths_to_loss(spec, k) * (spec.depth - k + 1) * below * max(1, spec.depth)


#: What to do instead, for the commands that refuse.
VECTORISED_HINT = "use --vectorised for the matrix form, which works at any width"


def check_per_parameter(spec: Spec, hint: str = VECTORISED_HINT) -> None:
    """Refuse (UserError) a per-parameter derivation that would not fit, with the estimate
    and ``hint`` (each command names its own way out)."""
    terms = formula_terms(spec)
    if terms > MAX_TERMS:
        raise UserError(
            f"per-parameter formulas for {_widths(spec)} "
            f"({_count(spec.n_parameters)} parameters) would need about {approx(terms)} terms "
            f"(~{approx(terms * 60 / 1e9 if terms < 1e300 else terms * 60 // 10**9)} GB of text; at most {MAX_TERMS:,} terms); {hint}"
        )
