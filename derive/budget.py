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
    """Approximate number of terms in all per-parameter formulas in the notes' vocabulary."""
    total = 0
    for k, (w, b) in enumerate(spec.parameter_counts(), start=1):
        total += (w + b) * paths_to_loss(spec, k) * (spec.depth - k + 1)
    return total


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
            f"per-parameter formulas for {'-'.join(map(str, spec.layers))} "
            f"({spec.n_parameters:,} parameters) would need about {terms:.2g} terms "
            f"(~{terms * 60 / 1e9:.2g} GB of text); {hint}"
        )
