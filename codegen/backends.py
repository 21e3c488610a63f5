"""The engines a trainer can be generated for, one table entry each.

A backend is not a copy of the trainer: it is the same derivation and the same graph of ops,
printed by its own printer into a template that extends ``trainer.py.j2`` and overrides only
the blocks where the engine differs (``numba``: the compiled epoch; ``jax``: the jitted,
functional maths and training).  Everything else (initialisation, optimisers, predictions,
model files, the CSV contract, the command line) is the NumPy trainer's, so a model file
written by one backend is read by every other.

Generating a backend's source needs nothing but backprop; importing the generated module needs
the engine (:func:`require` names the pip extra when it is missing).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

from backprop.core.errors import UserError
from backprop.derive import Spec

from . import backend_jax, backend_numba


@dataclass(frozen=True)
class Backend:
    """One engine: the template that extends trainer.py.j2, what the generated file imports
    beyond NumPy, the pip extra that installs it, and the context its template adds."""

    name: str
    engine: str  # as the module's title names it: "NumPy trainer for ..."
    template: str
    modules: tuple[str, ...]  # imported by the generated file besides numpy
    extra: str | None  # pip install -e '.[extra]'
    summary: str  # one line for --help
    context: Callable[[Spec, str, dict], dict] | None = None  # (spec, dtype, base) -> additions


BACKENDS: dict[str, Backend] = {
    "numpy": Backend("numpy", "NumPy", "trainer.py.j2", (), None,
                     "standalone, imports numpy only (default)"),
    "numba": Backend("numba", "Numba", "trainer_numba.py.j2", ("numba", "scipy"), "numba",
                     "the SGD epoch and sgd_step compiled with @njit (pip extra numba)",
                     context=backend_numba.context),
    "jax": Backend("jax", "JAX", "trainer_jax.py.j2", ("jax",), "jax",
                   "jitted (lax.scan epochs); runs unchanged on CPU, GPU, TPU",
                   context=backend_jax.context),
}

DEFAULT = "numpy"


def backend(name: str) -> Backend:
    """The table entry for ``name``; an unknown name is a one-line error listing the known."""
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def missing(name: str) -> list[str]:
    """The modules ``name``'s generated file imports that this Python cannot find."""
    return [m for m in backend(name).modules if importlib.util.find_spec(m) is None]


def require(name: str) -> Backend:
    """``name``'s entry, once its engine is importable; else a one-line error naming the extra."""
    entry = backend(name)
    absent = missing(name)
    if absent:
        raise UserError(f"the {name} backend needs {', '.join(absent)}, which is not installed: "
                        f"pip install -e '.[{entry.extra}]' (from a clone of backprop)")
    return entry
