"""The scalar fast path of a small trainer: one SGD step on ONE row, in Python floats.

Why: for a network with a few dozen weights, each NumPy call (2–4 µs of overhead) costs
more than the whole step's arithmetic; the fused NumPy ``sgd_step`` of the 2-2-1 network
took ~18 µs, against ~9 µs for a plain scalar loop (bench/README.md).  For such networks
the trainer also gets ``_sgd_step_scalar``: every weight unpacked into a local float, one
statement per node (z, O, δ, ∂L/∂O) and per weight update, the results written back into
the parameter arrays at the end.  ``sgd_step`` takes it for a batch of one row in float64
only (float32 would round differently from NumPy's float32 arithmetic).

Nothing is retyped: every activation, derivative, output δ and loss term is the SymPy
expression of :mod:`~backprop.codegen.forms` (the same one the NumPy path prints), with the
row-wise nodes (``RowSum``, ``RowMax``) expanded over the layer's nodes and printed by
:class:`ScalarPrinter`, a ``PythonCodePrinter`` whose functions are NumPy's applied to one
Python float and turned straight back into one (``float(np.tanh(z1_1))``, ~0.2 µs: the
trainers import nothing but numpy and the CLI's standard modules, so no ``math``).  The only structure
written here is what the NumPy path writes as ``@``: z = b + Σ x·w and ∂L/∂O = Σ w·δ.

Stability is the stable forms' (sigmoid via tanh, softmax with the maximum subtracted,
log1p(exp(-|z|))); where Python floats still raise (a ``**`` overflow, a division by zero) or
the loss or a new parameter is not finite (checked once, on their sum), the step raises
*before anything is written back* and ``sgd_step`` runs the NumPy step instead, so such
values, and the warnings or ``np.errstate`` errors that go with them, are NumPy's.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import sympy
from sympy.printing.pycode import PythonCodePrinter, _known_functions_math, _print_known_func

from backprop.derive import Spec, vectorise
from backprop.derive.graph import (ActivationBackward, Activate, AddBias, AddSkip, Array, Loss, LossBackward,
                                  MatMul, SkipBackward, SumRows, Update)

from . import forms, naming
from .forms import a, d, n_rows, y, yhat, z

#: At most this many weights (biases not counted) get a scalar path.  Measured (one thread,
#: float64, one row, sgd_step scalar vs the NumPy _step, 2026-11-25 00:19 UTC): 2-2-1 linear
#: (6 weights) 3.4 vs 17.6 µs, 2-2-1 sigmoid 4.3 vs 23.7, 3-4-3 tanh/softmax (24) 10.2 vs
#: 32.5, 4-8-3 relu/softmax (56) 14.1 vs 33.4, 4-8-8-2 tanh (112) 23.0 vs 29.5, 8-8-8-1 tanh
#: (136) 24.9 vs 29.9, 8-16-16-1 (400) 65.2 vs 28.7: the scalar step costs ~3 + 0.15 µs per
#: weight, the NumPy one ~30 µs, so the crossover is near 150-200 weights.  The function grows
#: by ~3 lines per weight, so the path stops well before that, at 64 weights (still >= 2x
#: faster there), and big trainers stay short.  See bench/README.md.
MAX_WEIGHTS = 64


def weight_count(spec: Spec) -> int:
    return sum(n0 * n1 for n0, n1 in zip(spec.layers[:-1], spec.layers[1:]))


def wanted(spec: Spec) -> bool:
    """Whether ``spec``'s trainer gets a scalar path (small networks only; never with batch
    norm, whose rows couple: one row has no batch statistics to normalise by)."""
    return weight_count(spec) <= MAX_WEIGHTS and not spec.batch_norm_layers


class ScalarPrinter(PythonCodePrinter):
    """Prints one scalar expression for Python floats (functions: ``float(np.f(x))``)."""

    printmethod = "_backprop_scalar"
    language = "Python floats (backprop scalar step)"

    def __init__(self, settings=None):
        super().__init__({"strict": True, "fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        # NumPy's function on a Python float, not math's: the trainers import numpy and the
        # standard library's argparse, csv, json, os, sys, tempfile only (tests enforce it)
        if fqn.startswith("math."):
            fqn = "numpy." + fqn[len("math."):]
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    def _print_known_func(self, expr):
        return f"float({_print_known_func(self, expr)})"  # back to a Python float at once

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp.is_Integer and 2 <= int(exp) <= 4:  # x*x: inf on overflow, never OverflowError
            factor = self.parenthesize(base, 1000)
            return "*".join([factor] * int(exp))
        return super()._print_Pow(expr, rational)

    def _minmax(self, func: str, expr) -> str:
        # numbers as float literals: max(0, z) would return the int 0
        args = [f"{float(arg)!r}" if arg.is_number else self._print(arg) for arg in expr.args]
        return f"{func}({', '.join(args)})"

    def _print_Max(self, expr):
        return self._minmax("max", expr)

    def _print_Min(self, expr):
        return self._minmax("min", expr)

    def _print_Heaviside(self, expr):
        x, h0 = (expr.args + (sympy.S.Half,))[:2]
        x = self._print(x)
        return f"(1.0 if {x} > 0 else ({self._print(sympy.Float(h0))} if {x} == 0 else 0.0))" \
            if h0 not in (sympy.S.Zero, sympy.S.One) else \
            f"(1.0 if {x} {'>' if h0 == 0 else '>='} 0 else 0.0)"

    def _print_logaddexp(self, expr):
        p, q = (self._print(arg) for arg in expr.args)
        return (f"(max({p}, {q}) + float({self._module_format('numpy.log1p')}"
                f"({self._module_format('numpy.exp')}(-abs({p} - {q})))))")

    def _print_log1p(self, expr):
        return f"float({self._module_format('numpy.log1p')}({self._print(expr.args[0])}))"

    def _print_FloatMax(self, expr):
        return repr(sys.float_info.max)  # a literal: the trainer need not import sys

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"


# PythonCodePrinter binds _print_tanh, _print_exp, ... to its _print_known_func directly:
# rebind them to the override above, so each call is wrapped in float().
for _name in _known_functions_math:
    setattr(ScalarPrinter, f"_print_{_name}", ScalarPrinter._print_known_func)


@dataclass
class ScalarStep:
    """What the template places: the function's body lines (and the weight count)."""

    lines: list[str]
    weights: int


def _s(name: str) -> sympy.Symbol:
    return sympy.Symbol(naming.identifier(name), real=True)


def _expand(expr: sympy.Expr, nodes: list[dict]) -> sympy.Expr:
    """Row-wise nodes summed / maximised over a layer's nodes (one substitution each)."""
    expr = expr.replace(forms.RowMax, lambda arg: sympy.Max(*[arg.xreplace(s) for s in nodes]))
    return expr.replace(forms.RowSum, lambda arg: sympy.Add(*[arg.xreplace(s) for s in nodes]))


class _Body:
    """Collects ``name = expr`` statements, with common subexpressions as ``_s0, _s1, ...``."""

    def __init__(self):
        self.printer = ScalarPrinter()
        self.lines: list[str] = []
        self.count = 0

    def comment(self, text: str):
        self.lines.append(f"# {text}")

    def line(self, text: str):
        self.lines.append(text)

    def assign(self, targets: list[str], exprs: list[sympy.Expr]):
        temps = (sympy.Symbol(f"_s{i}") for i in range(self.count, self.count + 100_000))
        replacements, reduced = sympy.cse(list(exprs), symbols=temps, order="none")
        self.count += len(replacements)
        for name, value in replacements:
            self.lines.append(f"{name} = {self.printer.doprint(value)}")
        for target, value in zip(targets, reduced):
            self.lines.append(f"{target} = {self.printer.doprint(value)}")


class _ScalarStatements:
    """Prints a graph's ops (updates included) for one row in Python floats: each array's
    elements are locals named as the notes number them (``z2_1``, ``o1_2``, ``delta2_1``,
    ``dO1_2``, weights ``w2_11``), a matrix product is written out as its sums, and each
    parameter's Update subtracts η times the gradient element the product or row sum left
    (the same ops, in the same order, as the NumPy step)."""

    def __init__(self, spec: Spec, body: _Body):
        self.spec, self.body, self.layers, self.L = spec, body, spec.layers, spec.depth
        self.pieces = forms.layer_pieces(spec)
        self.out = forms.output_pieces(spec)
        self.terms: dict[Array, list[str]] = {}  # Z^k's elements before the activation
        self.grads: dict[Array, list[list[str]] | list[str]] = {}  # dW, db elements for Update
        self.names: dict[Array, list[str]] = {Array("X"): naming.inputs(spec.layers[0])}

    def width(self, x: Array) -> int:
        return self.layers[0 if x.kind == "X" else x.layer]

    def elements(self, x: Array) -> list[str]:
        """The locals holding an array's elements (a vector per row: one row here)."""
        if x not in self.names:
            self.names[x] = [naming.element(x.kind, x.layer, j) for j in range(self.width(x))]
        return self.names[x]

    def w(self, k: int, i: int, j: int) -> str:
        return _weight(self.layers, k, i, j)

    def out_nodes(self) -> list[dict]:
        L = self.L
        return [{y: _s(naming.target(j)), yhat: _s(self.elements(Array("O", L))[j]),
                 z: _s(self.elements(Array("Z", L))[j]), n_rows: 1} for j in range(self.layers[L])]

    # -- forward ---------------------------------------------------------------------------
    def fw_matmul(self, op: MatMul) -> None:
        k, prev = op.out.layer, self.elements(op.left)
        self.terms[op.out] = [" + ".join(f"{prev[i]}*{self.w(k, i, j)}" for i in range(len(prev)))
                              for j in range(self.width(op.out))]

    def fw_add_bias(self, op: AddBias) -> None:
        k = op.out.layer
        self.terms[op.out] = [f"{naming.element('b', k, j)} + {t}" for j, t in enumerate(self.terms[op.out])]

    def fw_activate(self, op: Activate) -> None:
        p, k = self.pieces[op.layer - 1], op.layer
        bias = f" + b_{k}j" if self.spec.bias else ""
        skip = f" + {_node(k - 1, 'j')}" if op.out.kind == "A" else ""  # residual: the skip follows
        self.body.comment(f"layer {k}: z_{k}j = Σ_i {_node(k - 1, 'i')} w^{k}_ij{bias}, "
                          f"O_{k}j = {p.activation}(z_{k}j){skip}")
        zs = self.elements(op.inp)
        for name, terms in zip(zs, self.terms.pop(op.inp)):
            self.body.line(f"{name} = {terms}")
        if p.identity:
            self.names[op.out] = zs
            return
        nodes = [{z: _s(name)} for name in zs]
        if p.rowwise is not None:
            exprs = [_expand(p.rowwise.forward, nodes).xreplace(s) for s in nodes]
        else:
            exprs = [p.forward.xreplace(s) for s in nodes]
        self.body.assign(self.elements(op.out), exprs)

    def fw_add_skip(self, op: AddSkip) -> None:
        """O_kj = a_kj + O_{k-1,j}: a residual layer's skip (a_kj = g(z_kj) kept for g')."""
        for name, act, prev in zip(self.elements(op.out), self.elements(op.inp), self.elements(op.skip)):
            self.body.line(f"{name} = {act} + {prev}")

    def fw_loss(self, op: Loss) -> None:
        nodes = self.out_nodes()
        self.body.comment(f"the loss ({self.spec.loss}) before the update")
        self.body.assign(["loss_before"], [sum(_expand(self.out.loss_term, nodes).xreplace(s) for s in nodes)])

    # -- backward --------------------------------------------------------------------------
    def bw_loss(self, op: LossBackward) -> None:
        nodes, L = self.out_nodes(), self.L
        if op.fused:
            self.body.comment(f"δ_{L}j = ∂L/∂z_{L}j: the output layer")
            self.body.assign(self.elements(op.out), [self.out.delta.xreplace(s) for s in nodes])
        else:
            self.body.comment(f"∂L/∂ŷ_j, then δ_{L}j through the {self.pieces[-1].activation} Jacobian")
            self.body.assign(self.elements(op.out), [self.out.dL_dO.xreplace(s) for s in nodes])

    def bw_matmul(self, op: MatMul) -> None:
        if op.transpose == "left":  # dW^k: o_i δ_j, spent by its Update
            prev, delta = self.elements(op.left), self.elements(op.right)
            self.grads[op.out] = [[f"{o}*{d_}" for d_ in delta] for o in prev]
            return
        k = op.right.layer  # dO^{k-1} = Σ_j w_ij δ_j, before W^k changes
        delta = self.elements(op.left)
        self.body.comment(f"∂L/∂{_node(k - 1, 'i')} = Σ_j w^{k}_ij δ_{k}j: what layer {k} sends back "
                          f"(before its weights change)")
        for i, name in enumerate(self.elements(op.out)):
            terms = " + ".join(f"{self.w(k, i, j)}*{delta[j]}" for j in range(len(delta)))
            self.body.line(f"{name} {'+=' if op.accumulate else '='} {terms}")

    def bw_skip(self, op: SkipBackward) -> None:
        k = op.layer
        self.body.comment(f"∂L/∂{_node(k - 1, 'j')} {'+' if op.accumulate else ''}= ∂L/∂O_{k}j: "
                          f"what layer {k}'s skip sends back, unchanged")
        for target, source in zip(self.elements(op.out), self.elements(op.grad)):
            self.body.line(f"{target} {'+=' if op.accumulate else '='} {source}")

    def bw_sum_rows(self, op: SumRows) -> None:
        self.grads[op.out] = self.elements(op.inp)  # one row: the sum is δ itself

    def bw_activation(self, op: ActivationBackward) -> None:
        k, p = op.layer, self.pieces[op.layer - 1]
        d_o, outs = self.elements(op.grad), self.elements(op.output)
        if k < self.L:
            self.body.comment(f"δ_{k}j = ∂L/∂z_{k}j: layer {k}, {p.activation}")
        if p.rowwise is not None:
            back = [{a: _s(o), d: _s(g)} for o, g in zip(outs, d_o)]
            self.body.assign(self.elements(op.out), [_expand(p.rowwise.backward, back).xreplace(s) for s in back])
        elif p.derivative is None:
            self.names[op.out] = d_o
        else:
            var = outs if p.var == a else self.elements(op.inp)
            self.body.assign(self.elements(op.out),
                             [_s(g) * p.derivative.xreplace({p.var: _s(v)}) for g, v in zip(d_o, var)])

    def bw_update(self, op: Update) -> None:
        k, g = op.out.layer, self.grads.pop(op.grad)
        if op.out.kind == "W":
            self.body.comment(f"w^{k}_ij <- w^{k}_ij - η {_node(k - 1, 'i')} δ_{k}j")
            for i, row in enumerate(g):
                for j, value in enumerate(row):
                    self.body.line(f"{self.w(k, i, j)} -= lr*({value})")
        else:
            self.body.comment(f"b_{k}j <- b_{k}j - η δ_{k}j")
            for j, value in enumerate(g):
                self.body.line(f"{naming.element('b', k, j)} -= lr*{value}")


#: Which method prints each op kind: one entry per kind.
_FORWARD = {MatMul: _ScalarStatements.fw_matmul, AddBias: _ScalarStatements.fw_add_bias,
            Activate: _ScalarStatements.fw_activate, Loss: _ScalarStatements.fw_loss,
            AddSkip: _ScalarStatements.fw_add_skip}
_BACKWARD = {LossBackward: _ScalarStatements.bw_loss, MatMul: _ScalarStatements.bw_matmul,
             SumRows: _ScalarStatements.bw_sum_rows, ActivationBackward: _ScalarStatements.bw_activation,
             Update: _ScalarStatements.bw_update, SkipBackward: _ScalarStatements.bw_skip}


def _node(k: int, index: str) -> str:
    """Node ``index`` of layer k as the notes write it in a comment: O_1i; layer 0 is x_i."""
    return f"x_{index}" if k == 0 else f"O_{k}{index}"


def _weight(layers, k: int, i: int, j: int) -> str:
    """The local of w^k_{i+1,j+1}: the weight from node i of layer k-1 to node j."""
    return naming.weight(k, i, j, layers[k - 1], layers[k])


@dataclass
class RowStatements:
    """One row's SGD step as statements on locals: ``lines`` (z, O, the loss as
    ``loss_before``, δ, ∂L/∂O and each parameter's update), and every parameter's locals by
    array and index: ``params[("W1", (0, 1))] == "w1_12"``, ``params[("b1", (1,))] == "b1_2"``;
    inputs ``x_1, ...`` and targets ``y_1, ...`` are read before them."""

    lines: list[str]
    params: dict[tuple[str, tuple[int, ...]], str]
    inputs: list[str]
    targets: list[str]
    printer: ScalarPrinter


def row_statements(spec: Spec, printer: ScalarPrinter | None = None) -> RowStatements:
    """The graph's ops (updates included) printed for one row on local floats: the body that
    ``_sgd_step_scalar`` runs once, and the numba backend's register-resident SGD epoch runs
    per row (``printer``: how functions are spelled; default ScalarPrinter's float(np.f(x)))."""
    L, layers = spec.depth, spec.layers
    body = _Body()
    if printer is not None:
        body.printer = printer
    graph = vectorise(spec).graph
    statements = _ScalarStatements(spec, body)
    for op in graph.forward:
        _FORWARD[type(op)](statements, op)
    for op in graph.backward(updates=True):
        _BACKWARD[type(op)](statements, op)
    params = {}
    for k in range(1, L + 1):
        for i in range(layers[k - 1]):
            for j in range(layers[k]):
                params[(naming.W(k), (i, j))] = _weight(layers, k, i, j)
        if spec.bias:
            for j in range(layers[k]):
                params[(naming.b(k), (j,))] = naming.element("b", k, j)
    return RowStatements(body.lines, params, naming.inputs(layers[0]),
                         [naming.target(j) for j in range(layers[-1])], body.printer)


def scalar_step(spec: Spec) -> ScalarStep:
    """The body of ``_sgd_step_scalar(params, x, y, lr)`` (x, y: lists of floats)."""
    L, layers = spec.depth, spec.layers
    body = _Body()

    def matrix(k):  # [[w1_11, w1_12], [w1_21, w1_22]]: layer k's weights as locals, by row i
        rows = ", ".join("[" + ", ".join(_weight(layers, k, i, j) for j in range(layers[k])) + "]"
                         for i in range(layers[k - 1]))
        return f"[{rows}]"

    def vector(k):  # [b1_1, b1_2]: layer k's biases as locals
        return f"[{', '.join(naming.element('b', k, j) for j in range(layers[k]))}]"

    body.comment("every parameter as a local float: w1_12 is w^1_12, b1_2 is b_12")
    for k in range(1, L + 1):
        body.line(f"{matrix(k)} = {naming.W(k)}.tolist()")
        if spec.bias:
            body.line(f"{vector(k)} = {naming.b(k)}.tolist()")
    row = row_statements(spec)
    body.line(f"[{', '.join(row.inputs)}] = x")
    body.line(f"[{', '.join(row.targets)}] = y")
    body.lines += row.lines
    names = list(row.params.values())
    body.comment("an inf or nan anywhere: nothing written back, sgd_step runs the NumPy step instead")
    body.line(f"_check = loss_before + {' + '.join(names)}")
    body.line("if _check - _check != 0.0:")
    body.line('    raise FloatingPointError("not finite")')
    body.comment("written back only now: an exception above leaves params untouched")
    for k in range(1, L + 1):
        body.line(f"{naming.W(k)}[...] = {matrix(k)}")
        if spec.bias:
            body.line(f"{naming.b(k)}[...] = {vector(k)}")
    modules = set(row.printer.module_imports)
    if modules - {"numpy"}:
        raise ValueError(f"the scalar step may use only numpy, but the printer used {sorted(modules)}")
    return ScalarStep(body.lines, weight_count(spec))
