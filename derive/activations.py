"""Activation functions: ONE table entry each, everything else is derived from it.

An entry gives the symbolic form g(z), the inverse z(a) that lets SymPy write g' through
the node's own output a = g(z) (the notes' O(1-O) for sigmoid, 1-O² for tanh), and a
numerically stable symbolic form built from nodes NumPy evaluates safely (``logaddexp``,
``expm1``) where the textbook form overflows.  Derivatives are never typed in:
:func:`derivative` differentiates ``sym`` and substitutes ``inverse`` (or, for a piecewise g
whose single inverse would nest Piecewise in Piecewise, ``grad_from_output``: one inverse per
branch, :func:`by_branch`); entries with no inverse (gelu, swish) keep g' in z.  An entry with
a kink states g' there (``kink``, PyTorch's choice), and :func:`derivative` refuses an entry
whose derived g' disagrees with it, so a rewrite cannot move the kink value unnoticed.  Softmax is the one vector-valued entry;
its Jacobian through the outputs, O_j(δ_jm - O_m), is used by the derivation and checked
against SymPy's differentiation in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy
from mpmath.libmp import libmpf as mlib
from sympy.core.singleton import Singleton
from sympy.codegen.cfunctions import expm1
from sympy.codegen.numpy_nodes import logaddexp

#: The pre-activation z and the output a of one node, the variables of every table entry.
z = sympy.Symbol("z", real=True)
a = sympy.Symbol("a", real=True)

LEAKY_SLOPE = sympy.Rational(1, 100)


class TableConstant(sympy.NumberSymbol):
    """An exact constant of the table, kept as one named number (selu's λ and α, gelu's
    0.044715): SymPy's arithmetic cancels it exactly (λα · a/(λα) is a, not 1.0·a, so the
    derivation and a reader's g' agree to any precision), the notation printers spell it as
    the notes do (``text``, ``tex``), the code printers as a float literal (float32 arrays
    stay float32), and evaluation uses ``decimal`` exactly, at any precision.  ``reads`` is
    the LaTeX command (without the backslash) a claim writes it with, None for a decimal."""

    __slots__ = ()
    is_real = True
    is_positive = True
    decimal: str = ""
    text: str = ""
    tex: str = ""
    reads: str | None = None
    #: Where it sorts in a product (λ before α: the notes' λα), among the table's constants.
    rank: int = 0

    @classmethod
    def class_key(cls):
        return 2, 0, f"TableConstant{cls.rank}"

    def _as_mpf_val(self, prec):
        return mlib.from_str(self.decimal, prec, mlib.round_nearest)

    def approximation_interval(self, number_cls):
        exact = sympy.Rational(self.decimal)
        if issubclass(number_cls, sympy.Integer):
            return sympy.floor(exact), sympy.ceiling(exact)
        if issubclass(number_cls, sympy.Rational):
            return exact, exact
        return None

    def _sympystr(self, printer) -> str:
        return self.text

    def _latex(self, printer) -> str:
        return self.tex

    def _mpmathcode(self, printer) -> str:
        return f"{printer._module_format('mpmath.mpf')}('{self.decimal}')"


class SeluScale(TableConstant, metaclass=Singleton):
    """selu's λ (torch.nn.SELU's scale)."""

    decimal, text, tex, reads = "1.0507009873554804934193349852946", "λ", r"\lambda", "lambda"


class SeluAlpha(TableConstant, metaclass=Singleton):
    """selu's α (torch.nn.SELU's alpha)."""

    decimal, text, tex, reads = "1.6732632423543772848170429916717", "α", r"\alpha", "alpha"
    rank = 1


class GeluCubic(TableConstant, metaclass=Singleton):
    """The 0.044715 of gelu's tanh approximation, printed as that decimal: a named number,
    not the Rational 8943/200000, so the printers do not pull 1/200000 out of z + 0.044715z³."""

    decimal, text, tex = "0.044715", "0.044715", "0.044715"
    rank = 2


class GeluHalf(TableConstant, metaclass=Singleton):
    """gelu's leading 0.5, printed as that decimal: a Rational ½ would be pulled out of g' and
    printed after the node's input (``(…) x_i1/2``), which the per-node templates cannot reuse."""

    decimal, text, tex = "0.5", "0.5", "0.5"
    rank = 3


#: elu's α (PyTorch's default) and selu's α and λ (torch.nn.SELU's constants).
ELU_ALPHA = sympy.Integer(1)
SELU_ALPHA = SeluAlpha()
SELU_SCALE = SeluScale()
#: gelu's tanh approximation (torch.nn.functional.gelu(approximate="tanh")): √(2/π), 0.044715.
GELU_C = sympy.sqrt(2 / sympy.pi)
GELU_K = GeluCubic()
GELU_HALF = GeluHalf()


@dataclass(frozen=True)
class Kink:
    """Where g is not differentiable and the value of g' the table takes there (PyTorch's)."""

    at: sympy.Expr
    grad: sympy.Expr
    why: str = "as PyTorch"


def by_branch(g: Callable[[sympy.Expr], sympy.Expr], *inverses: Callable[[sympy.Expr], sympy.Expr]):
    """``grad_from_output`` for an increasing piecewise g with one inverse per branch (elu,
    selu): each branch of the derived g'(z) written with that branch's inverse, and each
    condition z > c read as a > g(c) (g increasing), so g' reads off the output without a
    Piecewise nested in the Piecewise of a single inverse."""

    def condition(cond):
        if cond is sympy.true:
            return cond
        if not isinstance(cond, sympy.core.relational.Relational) or cond.lhs != z or z in cond.rhs.free_symbols:
            raise ValueError(f"by_branch reads conditions z > c only, got {cond}")
        return cond.func(a, g(cond.rhs))

    def through_output(d: sympy.Expr) -> sympy.Expr:
        if not isinstance(d, sympy.Piecewise) or len(d.args) != len(inverses):
            raise ValueError(f"by_branch needs a Piecewise of {len(inverses)} branches, got {d}")
        return sympy.Piecewise(*[(simplest(value.subs(z, inverse(a))), condition(cond))
                                 for (value, cond), inverse in zip(d.args, inverses)])

    return through_output


@dataclass(frozen=True)
class Activation:
    """One row of the activation table.

    ``sym`` is the textbook g(z); ``inverse`` z(a) writes g' through the output; for a
    piecewise g, ``grad_from_output`` does it branch by branch instead (:func:`by_branch`);
    ``stable`` is g in nodes NumPy evaluates without overflow; ``kink`` states g' where g
    has a corner; ``keeps_sign`` says a > 0 exactly when z > 0 (so ``a > 0`` in g' reads as
    ``z > 0``); ``flat_beyond`` is a |z| past which g' (in z) is constant to float64, so the
    NumPy g' reads z clipped there and never forms e^1000 or z³ of 1e308; ``latex`` is the
    command a reader writes g with (σ: ``\\sigma``; others ``\\mathrm{name}``) and
    ``aliases`` other names readers use (lrelu, silu); ``constants`` the named numbers in g
    (selu's λ, α), which a claim about a network with this activation may write."""

    name: str
    sym: Callable[[sympy.Expr], sympy.Expr] | None
    inverse: Callable[[sympy.Expr], sympy.Expr] | None = None
    stable: Callable[[sympy.Expr], sympy.Expr] | None = None
    elementwise: bool = True
    doc: str = ""
    grad_from_output: Callable[[sympy.Expr], sympy.Expr] | None = None
    kink: Kink | None = None
    keeps_sign: bool = False
    flat_beyond: float | None = None
    latex: str | None = None
    aliases: tuple[str, ...] = ()
    constants: tuple[TableConstant, ...] = ()

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def _sigma(t: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-t))


def _sigma_stable(t: sympy.Expr) -> sympy.Expr:
    """σ(t) = e^(-log(1 + e^-t)): never forms e^1000."""
    return sympy.exp(-logaddexp(0, -t))


def _elu_like(alpha: sympy.Expr, scale: sympy.Expr):
    """(textbook, stable) forms of λ·elu_α: λz above 0, λα(e^z - 1) at or below; the stable one
    as λ(max(z, 0) + α·expm1(min(z, 0))), which never forms e^z of a large z."""
    def sym(t):
        return sympy.Piecewise((scale * t, t > 0), (scale * alpha * (sympy.exp(t) - 1), True))

    def stable(t):
        return scale * (sympy.Max(t, 0) + alpha * expm1(sympy.Min(t, 0)))

    return sym, stable


def _gelu(t: sympy.Expr, inner: sympy.Expr | None = None) -> sympy.Expr:
    """0.5 z (1 + tanh(√(2/π)(u + 0.044715 u³))) with u = z, or ``inner`` (the clipped z)."""
    u = t if inner is None else inner
    return t * (1 + sympy.tanh(GELU_C * (u + GELU_K * u**3))) * GELU_HALF


_elu_sym, _elu_stable = _elu_like(ELU_ALPHA, sympy.Integer(1))
_selu_sym, _selu_stable = _elu_like(SELU_ALPHA, SELU_SCALE)

#: tanh(x) is 1.0 in float64 from x ≈ 19.1, which gelu's inner term passes at |z| = 10.
_GELU_FLAT = 10


_AT_ZERO = sympy.Integer(0)

ACTIVATIONS: dict[str, Activation] = {
    a_.name: a_
    for a_ in [
        Activation("linear", lambda t: t, inverse=lambda o: o, doc="identity, g(z) = z"),
        Activation(
            "sigmoid",
            _sigma,
            inverse=lambda o: sympy.log(o / (1 - o)),
            stable=_sigma_stable,
            latex=r"\sigma",
            aliases=("logistic",),
            doc="logistic σ(z) = 1/(1+e^-z)",
        ),
        Activation("tanh", sympy.tanh, inverse=sympy.atanh, latex=r"\tanh", doc="hyperbolic tangent"),
        Activation(
            "relu",
            lambda t: sympy.Max(0, t),
            inverse=lambda o: o,  # g' is 0/1 by the sign, and sign(O) = sign(z) where O > 0
            kink=Kink(_AT_ZERO, sympy.Integer(0)),
            keeps_sign=True,
            doc="max(0, z)",
        ),
        Activation(
            "leaky_relu",
            lambda t: sympy.Piecewise((t, t > 0), (LEAKY_SLOPE * t, True)),
            inverse=lambda o: sympy.Piecewise((o, o > 0), (o / LEAKY_SLOPE, True)),
            kink=Kink(_AT_ZERO, LEAKY_SLOPE),
            keeps_sign=True,
            aliases=("leakyrelu", "lrelu"),
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
            kink=Kink(_AT_ZERO, sympy.Integer(0), "a jump: no gradient flows anywhere"),
            doc="1 for z >= 0 else 0 (the perceptron's): no gradient flows through it",
        ),
        Activation("softmax", None, elementwise=False, doc="e^z_j / Σ_m e^z_m over the layer"),
        Activation(
            "elu",
            _elu_sym,
            stable=_elu_stable,
            grad_from_output=by_branch(_elu_sym, lambda o: o, lambda o: sympy.log(o / ELU_ALPHA + 1)),
            kink=Kink(_AT_ZERO, ELU_ALPHA, "the left branch's α·e^0, as PyTorch (1 = both sides)"),
            keeps_sign=True,
            doc="z for z > 0, e^z - 1 otherwise (α = 1)",
        ),
        Activation(
            "selu",
            _selu_sym,
            stable=_selu_stable,
            grad_from_output=by_branch(_selu_sym, lambda o: o / SELU_SCALE,
                                       lambda o: sympy.log(o / (SELU_SCALE * SELU_ALPHA) + 1)),
            kink=Kink(_AT_ZERO, SELU_SCALE * SELU_ALPHA, "the left branch's λα·e^0, as PyTorch"),
            keeps_sign=True,
            constants=(SELU_SCALE, SELU_ALPHA),
            doc="λz for z > 0, λα(e^z - 1) otherwise (λ ≈ 1.0507, α ≈ 1.6733, PyTorch's)",
        ),
        Activation(
            "gelu",
            _gelu,
            stable=lambda t: _gelu(t, sympy.Max(-_GELU_FLAT, sympy.Min(t, _GELU_FLAT))),
            flat_beyond=_GELU_FLAT,
            doc="½z(1 + tanh(√(2/π)(z + 0.044715z³))), PyTorch's tanh approximation",
        ),
        Activation(
            "swish",
            lambda t: t * _sigma(t),
            stable=lambda t: t * _sigma_stable(t),
            flat_beyond=40,  # σ(±40) is 0/1 to float64; e^80 stays inside float32 too
            aliases=("silu",),
            doc="z·σ(z) (PyTorch's silu)",
        ),
    ]
}


def by_spelling(word: str) -> str | None:
    """The table key a reader's word names (``ReLU``, ``leaky_relu``, ``lrelu``, ``SiLU``), or
    None: case, ``\\_`` and ``_`` do not matter."""
    key = word.replace("\\_", "_").replace("_", "").lower()
    for name, act in ACTIVATIONS.items():
        if key in {name.replace("_", ""), *(alias.replace("_", "") for alias in act.aliases)}:
            return name
    return None


def reader_constants(names) -> dict[str, TableConstant]:
    """{LaTeX command without its backslash: constant} a claim may use in a network with the
    activations ``names`` (selu: ``\\lambda`` and ``\\alpha``, as the derivation prints them)."""
    return {c.reads: c for name in names for c in ACTIVATIONS[name].constants if c.reads}


def latex_commands() -> dict[str, str]:
    """{LaTeX command: table key} for the entries readers write as a command (``\\sigma``)."""
    return {act.latex: name for name, act in ACTIVATIONS.items() if act.latex}


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
    entry has an inverse (or ``grad_from_output``), in ``z`` otherwise.  Refuses an entry
    whose g' at its kink is not the table's stated value."""
    act = ACTIVATIONS[name]
    if not act.elementwise:
        raise ValueError(f"{name} is not element-wise; the derivation uses its Jacobian")
    d = _tidy(sympy.diff(act.sym(z), z))
    if d.is_number:
        out = d, z
    elif act.grad_from_output is not None:
        out = _tidy(act.grad_from_output(d)), a
    elif act.inverse is not None:
        out = _tidy(sympy.piecewise_fold(simplest(d.subs(z, act.inverse(a))))), a
    else:
        out = d, z
    _check_kink(act, *out)
    return out


def _check_kink(act: Activation, expr: sympy.Expr, var: sympy.Symbol) -> None:
    """The derived g' at the kink (at z, or at a = g(z)) must be the table's stated value."""
    if act.kink is None:
        return
    at = act.kink.at if var is z else act.sym(act.kink.at)
    got = expr.xreplace({var: at})
    if got != act.kink.grad:
        raise ValueError(f"{act.name}: derived g' at its kink z = {act.kink.at} is {got}, "
                         f"but the table states {act.kink.grad}")


def grad_at_kink(name: str) -> sympy.Expr | None:
    """The table's g' at the entry's kink (None for a smooth g)."""
    kink = ACTIVATIONS[name].kink
    return None if kink is None else kink.grad


@lru_cache(maxsize=None)
def stable_derivative(name: str) -> tuple[sympy.Expr, sympy.Symbol]:
    """:func:`derivative` as NumPy evaluates it: a g' in z reads z clipped to ±``flat_beyond``
    (the same float64 value; no e^1000 or (1e308)³ on the way)."""
    expr, var = derivative(name)
    limit = ACTIVATIONS[name].flat_beyond
    if limit is None or var is not z:
        return expr, var
    return expr.xreplace({z: sympy.Max(-limit, sympy.Min(z, limit))}), var


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
    """g' as a NumPy function of (outputs A, pre-activations Z), from :func:`stable_derivative`."""
    expr, var = stable_derivative(name)
    fn = sympy.lambdify(var, expr, modules="numpy")
    return lambda A, Z: np.broadcast_to(fn(A if var is a else Z), np.shape(A)).astype(
        np.result_type(A, np.float32)
    )
