"""The NumPy printer of the generated trainers: SymPy's ``NumPyPrinter``, subclassed.

Dispatch is SymPy's: ``_print_<ClassName>`` for each node type, found along the MRO.  What
differs from ``NumPyPrinter``:

* ``numpy.exp`` is spelled ``np.exp`` (the trainer does ``import numpy as np``); every name
  printed is still recorded in ``module_imports``, and :meth:`BackpropPrinter.imports`
  builds the import block from it, refusing anything but NumPy (trainers stand alone);
* ``strict`` is on: a node without a print method stops generation instead of emitting
  half-printed code;
* readable array forms: ``Heaviside`` -> ``np.heaviside`` (with the ``heaviside_mask``
  setting, a whole expression ``Heaviside(x, 0)`` / ``Heaviside(x, 1)`` prints as the boolean
  mask ``np.greater(x, 0)`` / ``np.greater_equal(x, 0)``: the same 0/1 values, for a
  derivative the trainer multiplies in place, ``dO1 *= relu_derivative(O1)``), ``Abs`` -> ``np.abs``, ``Max``/``Min`` ->
  ``np.maximum``/``np.minimum``, a ``Piecewise`` -> nested ``np.where``, relations infix
  (``Z > 0``), and the row-wise nodes of :mod:`~backprop.codegen.forms` as methods
  (``(d*O).sum(axis=1, keepdims=True)``);
* :meth:`BackpropPrinter.statements` runs common-subexpression elimination first and names
  the temporaries ``_t0``, ``_t1``, ...

Common mistake (as in SymPy's own printers): inside a print method, recurse with
``self._print``, never ``str()``.
"""
from __future__ import annotations

import sympy
from sympy.printing.numpy import JaxPrinter, NumPyPrinter
from sympy.printing.precedence import precedence

from . import naming


class BackpropPrinter(NumPyPrinter):
    """Prints one element-wise expression of a trainer as NumPy code."""

    printmethod = "_backprop_numpy"
    language = "Python with NumPy (backprop trainer)"
    _alias = "np"
    _default_settings = {**NumPyPrinter._default_settings, "heaviside_mask": False}

    def __init__(self, settings=None):
        super().__init__({"strict": True, "fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        # SymPy's own printers name NumPy functions "numpy.f" (this class) or "<_module>.f"
        # (a backend subclass: jax.numpy): both are spelled through the alias, "np.f"/"jnp.f"
        if fqn.startswith("numpy.") and self._module != "numpy":
            fqn = f"{self._module}.{fqn[len('numpy.'):]}"
        text = super()._module_format(fqn, register)
        if text.startswith(self._module + ".") and len(text) > len(self._module) + 1:
            return f"{self._alias}.{text[len(self._module) + 1:]}"
        return text

    def _np(self, name: str) -> str:
        """The array module's function ``name`` as printed (``np.exp``; ``jnp.exp`` for JAX)."""
        return self._module_format(f"{self._module}.{name}")

    # -- array-friendly spellings ----------------------------------------------------------
    def _print_Heaviside(self, expr):
        x, h0 = (expr.args + (sympy.S.Half,))[:2]
        masks = {sympy.S.Zero: "greater", sympy.S.One: "greater_equal"}
        if self._settings["heaviside_mask"] and self._print_level == 1 and h0 in masks:
            # the whole expression: a bool mask (only ever multiplied, never negated or added)
            return f"{self._np(masks[h0])}({self._print(x)}, 0)"
        return f"{self._np('heaviside')}({self._print(x)}, {self._print(h0)})"

    def _print_Abs(self, expr):
        return f"{self._np('abs')}({self._print(expr.args[0])})"

    def _nested(self, func: str, args) -> str:
        first, *rest = args
        if not rest:
            return self._print(first)
        return f"{self._np(func)}({self._print(first)}, {self._nested(func, rest)})"

    def _print_Max(self, expr):
        return self._nested("maximum", sorted(expr.args, key=lambda e: not e.is_number))

    def _print_Min(self, expr):
        return self._nested("minimum", sorted(expr.args, key=lambda e: not e.is_number))

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond is not sympy.true:
            raise ValueError(f"Piecewise without a default branch cannot be printed: {expr}")
        text = self._print(last)
        for value, condition in reversed(pieces):
            text = f"{self._np('where')}({self._print(condition)}, {self._print(value)}, {text})"
        if all(value.is_number for value, _ in expr.args) and expr.free_symbols:
            # only constants in the branches: keep the dtype of the array the conditions read
            like = self._print(min(expr.free_symbols, key=str))
            text = f"{text}.astype({like}.dtype)"
        return text

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:  # 1/(e + 1), not NumPyPrinter's (e + 1)**(-1.0)
            return f"1/{self.parenthesize(expr.base, precedence(expr), strict=True)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_Relational(self, expr):
        prec = precedence(expr)
        lhs = self.parenthesize(expr.lhs, prec, strict=True)
        rhs = self.parenthesize(expr.rhs, prec, strict=True)
        return f"{lhs} {expr.rel_op} {rhs}"

    def _receiver(self, arg) -> str:
        """An expression a method is called on: parenthesised unless a name or a call."""
        text = self._print(arg)
        return text if isinstance(arg, (sympy.Symbol, sympy.Function)) else f"({text})"

    def _print_RowSum(self, expr):
        return f"{self._receiver(expr.args[0])}.sum(axis=1, keepdims=True)"

    def _print_RowMax(self, expr):
        return f"{self._receiver(expr.args[0])}.max(axis=1, keepdims=True)"

    def _print_FloatMax(self, expr):
        return f"{self._np('finfo')}({self._receiver(expr.args[0])}.dtype).max"

    # -- whole statements ------------------------------------------------------------------
    def statements(self, expr: sympy.Expr) -> tuple[list[str], str]:
        """(``_t0 = ...`` lines, the final expression text) after common-subexpression
        elimination; the lines are empty when nothing repeats."""
        temps = (sympy.Symbol(naming.temporary(i)) for i in range(10_000))
        replacements, (reduced,) = sympy.cse([expr], symbols=temps, order="none")
        lines = [f"{name} = {self.doprint(value)}" for name, value in replacements]
        return lines, self.doprint(reduced)

    def imports(self) -> list[str]:
        """The import line of the array module (``import numpy as np``): a trainer imports
        nothing else, and a name printed from any other module stops generation."""
        modules = sorted(self.module_imports)
        foreign = [m for m in modules if m != self._module]
        if foreign:
            raise ValueError(f"a trainer may import only {self._module}, but the printer used {foreign}")
        return [f"import {self._module} as {self._alias}"]


class JaxTrainerPrinter(BackpropPrinter, JaxPrinter):
    """The same trainer printing on JAX's NumPy: SymPy's ``JaxPrinter`` supplies the module
    (``jax.numpy``) and its known functions, this class only the alias, so every name it
    prints (``jnp.tanh``) and the import line (``import jax.numpy as jnp``) agree."""

    printmethod = "_backprop_jax"
    language = "Python with JAX (backprop trainer)"
    _alias = "jnp"


def print_numpy(expr: sympy.Expr, names: dict[sympy.Symbol, str] | None = None) -> str:
    """One expression as NumPy code, with ``names`` renaming its symbols (tests, one-offs)."""
    renamed = expr.xreplace({s: sympy.Symbol(n) for s, n in (names or {}).items()})
    return BackpropPrinter().doprint(renamed)
