"""Activation functions: ONE table entry each, everything else is derived from it.

An entry gives the symbolic form g(z), the inverse z(a) that lets SymPy write g' through
the node's own output a = g(z) (the notes' O(1-O) for sigmoid, 1-O² for tanh), and a
numerically stable symbolic form built from nodes NumPy evaluates safely (``logaddexp``)
where the textbook form overflows.  Derivatives are never typed in: :func:`derivative`
differentiates ``sym`` and substitutes ``inverse``.  Softmax is the one vector-valued entry;
its Jacobian through the outputs, O_j(δ_jm - O_m), is used by the derivation and checked
against SymPy's differentiation in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy
from sympy.codegen.numpy_nodes import logaddexp

#: The pre-activation z and the output a of one node, the variables of every table entry.
z = sympy.Symbol("z", real=True)
a = sympy.Symbol("a", real=True)

LEAKY_SLOPE = sympy.Rational(1, 100)


@dataclass(frozen=True)
class Activation:
    """One row of the activation table."""

    name: str
    sym: Callable[[sympy.Expr], sympy.Expr] | None
    inverse: Callable[[sympy.Expr], sympy.Expr] | None = None
    stable: Callable[[sympy.Expr], sympy.Expr] | None = None
    elementwise: bool = True
    doc: str = ""

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


ACTIVATIONS: dict[str, Activation] = {
    a_.name: a_
    for a_ in [
        Activation("linear", lambda t: t, inverse=lambda o: o, doc="identity, g(z) = z"),
        Activation(
            "sigmoid",
            lambda t: 1 / (1 + sympy.exp(-t)),
            inverse=lambda o: sympy.log(o / (1 - o)),
            stable=lambda t: sympy.exp(-logaddexp(0, -t)),
            doc="logistic σ(z) = 1/(1+e^-z)",
        ),
        Activation("tanh", sympy.tanh, inverse=sympy.atanh, doc="hyperbolic tangent"),
        Activation(
            "relu",
            lambda t: sympy.Max(0, t),
            inverse=lambda o: o,  # g' is 0/1 by the sign, and sign(O) = sign(z) where O > 0
            doc="max(0, z)",
        ),
        Activation(
            "leaky_relu",
            lambda t: sympy.Piecewise((t, t > 0), (LEAKY_SLOPE * t, True)),
            inverse=lambda o: sympy.Piecewise((o, o > 0), (o / LEAKY_SLOPE, True)),
            doc="z for z > 0, z/100 otherwise",
        ),
        Activation(
            "softplus",
            lambda t: sympy.log(1 + sympy.exp(t)),
            inverse=lambda o: sympy.log(sympy.exp(o) - 1),
            stable=lambda t: logaddexp(0, t),
            doc="log(1 + e^z), a smooth relu",
        ),
        Activation(
            "step",
            lambda t: sympy.Heaviside(t, 1),
            doc="1 for z >= 0 else 0 (the perceptron's): no gradient flows through it",
        ),
        Activation("softmax", None, elementwise=False, doc="e^z_j / Σ_m e^z_m over the layer"),
    ]
}


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """Derivatives of kinks and jumps: Heaviside(0) = 0 (as PyTorch), DiracDelta = 0 a.e."""
    expr = expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
    return expr.replace(
        lambda e: isinstance(e, sympy.Heaviside) and e.args[1] == sympy.S.Half,
        lambda e: sympy.Heaviside(e.args[0], 0),
    )


@lru_cache(maxsize=None)
def derivative(name: str) -> tuple[sympy.Expr, sympy.Symbol]:
    """g'(z) derived by SymPy, as (expression, variable): in the output ``a`` where the
    entry has an inverse, in ``z`` otherwise."""
    act = ACTIVATIONS[name]
    if not act.elementwise:
        raise ValueError(f"{name} is not element-wise; the derivation uses its Jacobian")
    d = _tidy(sympy.diff(act.sym(z), z))
    if act.inverse is None or d.is_number:
        return d, z
    through_output = simplest(d.subs(z, act.inverse(a)))
    return _tidy(sympy.piecewise_fold(through_output)), a


def simplest(expr: sympy.Expr) -> sympy.Expr:
    """The shortest (by operation count) of SymPy's exact rewrites that untangle g'(z(a)):
    together∘powdenest (σ: a(1-a)), expand (softplus: 1 - e^-a), cancel∘factor.  Not
    ``sympy.simplify``: its first call loads sympy.physics (~0.1 s of every ``backprop``
    run); a test checks that every table entry gets what simplify gives."""
    candidates = [expr, sympy.together(sympy.powdenest(expr)), sympy.expand(expr),
                  sympy.factor(sympy.cancel(expr))]
    return min(candidates, key=sympy.count_ops)


def derivative_at(name: str, out: sympy.Expr, pre: sympy.Expr) -> sympy.Expr:
    """g' of one node written with its own output ``out`` (or pre-activation ``pre``)."""
    expr, var = derivative(name)
    return expr.xreplace({var: out if var is a else pre})


def passes_no_gradient(name: str) -> bool:
    """True for activations whose derivative is zero almost everywhere (step)."""
    act = ACTIVATIONS[name]
    return act.elementwise and derivative(name)[0] == 0


def softmax_jacobian(outputs: list[sympy.Expr], m: int, j: int) -> sympy.Expr:
    """∂O_m/∂z_j of a softmax layer through its outputs: O_m(δ_mj - O_j)."""
    return outputs[m] * (sympy.KroneckerDelta(m, j) - outputs[j])


def _softmax_numpy(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax with the row maximum subtracted, so e^z never overflows."""
    with np.errstate(over="ignore"):  # -1e308 - 1e308 is -inf, and e^-inf is the exact 0
        E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)


@lru_cache(maxsize=None)
def numpy_forward(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """g as a NumPy function of a (rows × nodes) array, from the stable symbolic form."""
    act = ACTIVATIONS[name]
    if not act.elementwise:
        return _softmax_numpy
    form = (act.stable or act.sym)(z)
    fn = sympy.lambdify(z, form, modules="numpy")
    return lambda Z: np.broadcast_to(fn(Z), np.shape(Z)).astype(np.result_type(Z, np.float32))


@lru_cache(maxsize=None)
def numpy_derivative(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """g' as a NumPy function of (outputs A, pre-activations Z), from :func:`derivative`."""
    expr, var = derivative(name)
    fn = sympy.lambdify(var, expr, modules="numpy")
    return lambda A, Z: np.broadcast_to(fn(A if var is a else Z), np.shape(A)).astype(
        np.result_type(A, np.float32)
    )
