"""Up-front size estimates, so a network too big for per-parameter formulas is refused with
the numbers instead of thrashing.  The vectorised form costs O(layers) and is never refused."""
from __future__ import annotations

import math
from functools import lru_cache

from backprop.core.errors import UserError

from .activations import ACTIVATIONS, z
from .spec import Spec

#: Most printed terms we agree to build for the per-parameter forms (about 100 MB of text).
MAX_TERMS = 2_000_000


def _edges(spec: Spec, m: int) -> int:
    """Edges from a node of layer m-1 into layer m: one per node, plus a residual layer's skip."""
    return spec.layers[m] + (m in spec.residual_layers)


def paths_to_loss(spec: Spec, k: int) -> int:
    """Paths from a node of layer k to the loss: the product of the widths after it, each
    residual layer's counted one more (its skip is a path of its own)."""
    return math.prod(_edges(spec, m) for m in range(k + 1, spec.depth + 1))


def formula_terms(spec: Spec) -> int:
    """Approximate number of terms in all per-parameter formulas in the notes' vocabulary
    (an exact int however large; the paths after each layer are one running product)."""
    total, paths = 0, 1
    counts = spec.parameter_counts()
    for k in range(spec.depth, 0, -1):  # paths = product of the widths (+ skips) after layer k
        w, b = counts[k - 1]
        total += (w + b) * paths * (spec.depth - k + 1)
        paths *= _edges(spec, k)
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


def _node_terms(spec: Spec, expanded: bool) -> list[int]:
    """Printed terms of one O_kj, k = 0..depth: 1 in the notes' vocabulary; with every O
    replaced by its definition, n_{k-1} terms w·O of the layer below plus the bias (and the
    skip's O_{k-1,j} on a residual layer)."""
    sizes = [1]
    for k in range(1, spec.depth + 1):
        skip = sizes[-1] if k in spec.residual_layers else 0
        sizes.append(spec.layers[k - 1] * (sizes[-1] + 1) + spec.bias + skip if expanded else 1)
    return sizes


@lru_cache(maxsize=None)
def _identity(name: str) -> bool:
    """g(z) = z (linear): its g' is 1, so a formula spells no derivative for it."""
    act = ACTIVATIONS[name]
    return act.sym is not None and act.sym(z) == z


def _spelled(spec: Spec, k: int, expanded: bool) -> int:
    """Terms of one layer-k parameter's resolved gradient: the loss factor, one product of
    weights and activation derivatives per path to the loss, the node's own derivative and
    the input the parameter multiplies (the derivatives spelled through O, about 2 O each; 4
    on a residual layer, through O_kj - O_{k-1,j})."""
    size = _node_terms(spec, expanded)
    L = spec.depth
    slope = [0] + [0 if _identity(a) else 2 * (1 + (k in spec.residual_layers))
                   for k, a in enumerate(spec.activations, start=1)]
    loss = (1 + size[L]) * (1 + slope[L])
    path = sum(slope[m] * size[m] + 1 for m in range(k + 1, L)) + (k < L)  # + w^L
    own = slope[k] * size[k] if k < L else 0
    return loss + paths_to_loss(spec, k) * path + own + size[k - 1]


def expanded_terms(spec: Spec, k: int) -> int:
    """Approximate terms of one layer-k parameter's formula in inputs and parameters only
    (arithmetic on the widths: the form itself is never built to be measured)."""
    return _spelled(spec, k, expanded=True)


def form_terms(spec: Spec, k: int, form: str) -> int:
    """Approximate printed terms of one form of one layer-k parameter: the memoised form and
    the chain are a few symbols (the chain falls back to δ when the formula is large)."""
    if form == "formula":
        return _spelled(spec, k, expanded=False)
    if form == "expanded":
        return _spelled(spec, k, expanded=True)
    return 2


#: A form of one parameter is printed by default up to this many terms (about 4 kB of text).
MAX_SHOWN_TERMS = 500
#: A form asked for by name is printed up to this many terms per parameter (about 2 MB).
MAX_ASKED_TERMS = 200_000
#: derive names each parameter on its own line(s): past this many, use the matrix form.
MAX_PARAMETERS = 1_000_000
#: Bytes of text per parameter in the default output, for the refusal's estimate.
BYTES_PER_PARAMETER = 200


def check_parameter_count(spec: Spec, hint: str) -> None:
    """Refuse (UserError) per-parameter output for more than MAX_PARAMETERS parameters: the
    output streams in constant memory, but its length grows with the count."""
    n = spec.n_parameters
    if n > MAX_PARAMETERS:
        size = n * BYTES_PER_PARAMETER
        raise UserError(
            f"per-parameter output for {_widths(spec)} ({_count(n)} parameters) would need about "
            f"{approx(size)} bytes (~{approx(size / 1e9)} GB of text; at most {MAX_PARAMETERS:,} "
            f"parameters); {hint}")


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
