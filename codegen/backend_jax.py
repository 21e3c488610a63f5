"""The jax backend: the derived gradients printed in ``jax.numpy``, jitted and functional.

The template ``trainer_jax.py.j2`` extends ``trainer.py.j2``; what it needs beyond the NumPy
context comes from :func:`context`: the maths (activations, loss, the plain forward and
backward blocks) printed again by :class:`~backprop.codegen.printer.JaxTrainerPrinter`
(``jnp.tanh``), the loss without ``float()`` (it is traced under ``jax.jit``), the learnt
parameter names and the import block.  The gradients are the derivation's, never
``jax.grad`` (the tests compare the two).

Batch normalisation is refused (its batch statistics and running-statistics updates are
written in place; a functional version is future work): ``--backend numpy`` trains it.
"""
from __future__ import annotations

import textwrap
from dataclasses import replace

from backprop.core.errors import UserError
from backprop.derive import Spec

from . import naming
from .printer import JaxTrainerPrinter
from .render import WIDTH, _assign, _q, printed_maths, wrap_code

#: What the generated module's docstring adds under its title (float64 needs JAX's x64 mode).
_NOTE = {
    "float64": ("On JAX: importing this module sets jax.config.update(\"jax_enable_x64\", True) "
                "(JAX computes in float32 otherwise), for the whole process."),
    "float32": ("On JAX, in float32 (JAX's x64 mode is left as it is; float64 parameters need "
                "jax.config.update(\"jax_enable_x64\", True) before any array exists)."),
}


def _unfloat(result: str) -> str:
    """The loss function's ``float(expr)`` as ``expr``: a traced scalar cannot be a float."""
    if not (result.startswith("float(") and result.endswith(")")):
        raise ValueError(f"the loss result {result!r} is not float(...)")
    return result[len("float("):-1]


def _wrap(text: str, width: int = WIDTH) -> list[str]:
    """A docstring paragraph over lines of at most ``width`` characters."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def context(spec: Spec, dtype: str, base: dict) -> dict:
    """What ``trainer_jax.py.j2`` adds to (or replaces in) the NumPy trainer's context."""
    if spec.batch_norm_layers:
        raise UserError("the jax backend does not support batch_norm yet; use --backend numpy")
    maths = printed_maths(spec, JaxTrainerPrinter)
    loss_fn = maths["loss_function"]
    x64 = dtype == "float64"
    imports = ["import numpy as np", "", "import jax", *maths["imports"], "from jax import lax"]
    if x64:
        imports += ["", 'jax.config.update("jax_enable_x64", True)  # float64 arrays on JAX']
    nodes = [n for k in range(1, spec.depth + 1)
             for n in (naming.Z(k), *((naming.A(k),) if k in spec.residual_layers else ()),
                       naming.O(k))]
    shown = ", ".join(nodes[:4]) + (", ..." if len(nodes) > 4 else "")
    return {
        "jax_nodes_doc": f"({shown})",
        "jax_nodes_return": wrap_code(f"return ({', '.join(nodes)})"),
        "jax_nodes_unpack": _assign(nodes, "_forward(params, X)"),
        "title": base["title"] + [""] + _wrap(_NOTE[dtype]),
        "imports": imports,
        "functions": maths["functions"],
        "loss_function": replace(loss_fn, result=_unfloat(loss_fn.result)),
        "forward_blocks": maths["forward_blocks"],
        "backward_blocks": maths["backward_blocks"],
        "learnt": "(" + ", ".join(_q(name) for name in spec.shapes()) + ",)",
    }
