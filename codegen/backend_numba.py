"""The numba backend: the NumPy trainer with its plain-SGD epoch and ``sgd_step`` compiled.

Not a copy of the trainer: ``trainer_numba.py.j2`` extends ``trainer.py.j2`` and overrides
the blocks ``step``, ``scalar_step`` and ``sgd_epoch`` only; everything else (the NumPy
maths, the optimisers, predictions, model files, the command line) is the NumPy trainer's.
What it adds is printed here from the same graph of ops (:mod:`backprop.derive.graph`) by
:class:`_LoopStatements`, one method per op kind as ``render._NumpyStatements`` has, into
``@njit(cache=True)`` kernels:

* ``_batch``: one SGD step on one batch, each op a loop nest over the batch's rows and the
  layer's nodes (bias, activation and the output δ fused into the loop that writes Z);
* ``_epoch``: every batch of an epoch in turn, the buffers made once per epoch;
* ``_sgd_rows`` (networks of at most :data:`~backprop.codegen.scalar.MAX_WEIGHTS`
  weights): SGD one row at a time over the whole epoch with every parameter in a local, so
  in a register, from the first row to the last: the one-row statements of
  :func:`~backprop.codegen.scalar.row_statements` (float64: the NumPy trainer's Python-float
  step, the same statements; float32: printed by :class:`NumbaPrinter`, every literal cast so
  every local stays float32) inside one loop.  ~11 ns a 2-2-1 step against ~180 ns for
  ``_epoch``, whose arrays go through memory between steps.

Every scalar expression (g, g', the loss term, the output δ, softmax's row sums) is the
SymPy expression of :mod:`~backprop.codegen.forms`, printed by :class:`NumbaPrinter` (a
``PythonCodePrinter`` on the ``math`` module, which numba compiles), never retyped.

Products: for a network of at most :data:`MAX_LOOP_WEIGHTS` weights they are written as
loops too, so the whole epoch is compiled code; above it each is ``np.dot(A, B, out)``
inside the kernel (numba calls BLAS through SciPy) and only the element-wise parts are loops.

Floats: literals are cast to the module's DTYPE (``np.float32(0.5)`` in a float32 trainer)
and ``lr`` and the row count to the arrays' dtype, so float32 arrays stay float32; max/min
are ``np.maximum``/``np.minimum`` (a nan propagates as in NumPy, where Python's max would
drop it).  A batch whose loss is not finite is not updated by the kernel: the epoch stops
there and the NumPy step (``_numpy_step``) takes that batch and the rest, so inf and nan
values, and NumPy's warnings, are the NumPy trainer's.
"""
from __future__ import annotations

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.pycode import PythonCodePrinter

from backprop.core.errors import UserError
from backprop.derive import Spec, vectorise
from backprop.derive.graph import (ActivationBackward, Activate, AddBias, AddSkip, Array, Loss,
                                  LossBackward, MatMul, SkipBackward, SumRows, Update)

from . import forms, naming, scalar
from .forms import FloatMax, RowMax, RowSum, a, d, n_rows, y, yhat, z
from .render import WIDTH, Function, wrap_code, wrap_comment

#: At most this many weights (biases not counted): every product is a loop in the kernel;
#: above, np.dot (BLAS).  Measured (one thread, float64, one SGD epoch, loops ÷ np.dot, on a
#: loaded 2-core machine): 16-32-4 (640 weights) 0.79 at batch 1, 1.56 at batch 64;
#: 32-64-8 (2560) 1.08 / 1.88; 64-64-10 (4736) 0.96 / 3.7; 128-128-10 (17664) 2.1 / 8.1.
#: Loops win at batch 1 up to a few thousand weights but lose to BLAS at batch 64 from a few
#: hundred, and the batch size is not known here: loops up to 256 weights (8-16-1 has 144).
MAX_LOOP_WEIGHTS = 256

#: The kernels' locals for one element: its pre-activation, output, ∂L/∂O, target, prediction.
ELEMENT = {z: "z", a: "a", d: "d", y: "y", yhat: "yhat", n_rows: naming.N_ROWS}

#: Body indent of a kernel function (the template places the lines under ``def``).
BODY = 4


class NumbaPrinter(PythonCodePrinter):
    """Prints one scalar expression for a numba kernel: ``math`` functions, float literals
    cast to the trainer's dtype (``cast``: ``np.float32`` or None), ``np.maximum`` for Max
    (nan-propagating, as the NumPy trainer's), a Heaviside as a conditional expression with
    the table's value at the kink."""

    printmethod = "_backprop_numba"
    language = "Python for numba (backprop kernel)"

    def __init__(self, cast: str | None = None):
        super().__init__({"strict": True, "fully_qualified_modules": True})
        self.cast = cast

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    # -- numbers: one literal each, in the trainer's dtype -----------------------------------
    def number(self, value) -> str:
        text = repr(float(value))
        return f"{self.cast}({text})" if self.cast else text

    def _print_Float(self, expr):
        return self.number(expr)

    def _print_Integer(self, expr):
        return self.number(expr) if self.cast else str(int(expr))

    def _print_Rational(self, expr):
        return self.number(expr)

    def _print_NumberSymbol(self, expr):
        return self.number(expr.evalf(17))

    _print_TableConstant = _print_NumberSymbol

    def _print_Half(self, expr):
        return self.number(0.5)

    _print_One = _print_Zero = _print_NegativeOne = _print_Integer

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        factor = self.parenthesize(base, precedence(expr), strict=True)
        if exp == -1:
            return f"{self.number(1)}/{factor}"
        if exp.is_Integer and 2 <= int(exp) <= 4:  # x*x: no pow call
            return "*".join([factor] * int(exp))
        if exp == sympy.S.Half:
            return f"{self._module_format('math.sqrt')}({self._print(base)})"
        return f"{factor}**{self.parenthesize(exp, precedence(expr), strict=True)}"

    # -- functions -----------------------------------------------------------------------
    def _nested(self, func: str, args) -> str:
        first, *rest = sorted(args, key=lambda e: not e.is_number)
        if not rest:
            return self._print(first)
        return f"{self._module_format('numpy.' + func)}({self._print(first)}, {self._nested(func, rest)})"

    def _print_Max(self, expr):
        return self._nested("maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested("minimum", expr.args)

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        x, h0 = (expr.args + (sympy.S.Half,))[:2]
        x = self._print(x)
        one, zero = self.number(1), self.number(0)
        if h0 in (sympy.S.Zero, sympy.S.One):  # the table's kink value: 0 (relu), 1 (step)
            return f"({one} if {x} {'>' if h0 == 0 else '>='} 0 else {zero})"
        return f"({one} if {x} > 0 else ({self.number(h0)} if {x} == 0 else {zero}))"

    def _print_logaddexp(self, expr):
        p, q = (self._print(arg) for arg in expr.args)
        return (f"({self._module_format('numpy.maximum')}({p}, {q}) + "
                f"{self._module_format('math.log1p')}({self._module_format('math.exp')}(-abs({p} - {q}))))")

    def _print_log1p(self, expr):
        return f"{self._module_format('math.log1p')}({self._print(expr.args[0])})"

    def _print_expm1(self, expr):
        return f"{self._module_format('math.expm1')}({self._print(expr.args[0])})"

    def _print_FloatMax(self, expr):
        return "FLOAT_MAX"  # the kernel's local: np.finfo(X.dtype).max

    def statements(self, expr: sympy.Expr, temps: str = "_t") -> tuple[list[str], str]:
        """(``_t0 = ...`` lines, the final text) after common-subexpression elimination."""
        names = (sympy.Symbol(f"{temps}{i}") for i in range(10_000))
        replacements, (reduced,) = sympy.cse([expr], symbols=names, order="none")
        return [f"{name} = {self.doprint(value)}" for name, value in replacements], self.doprint(reduced)


def _lift(expr: sympy.Expr, found: list[tuple[sympy.Symbol, sympy.Expr]]) -> sympy.Expr:
    """``expr`` with every RowMax/RowSum (innermost first) replaced by a scalar ``_r0, _r1``,
    appended to ``found`` with its node: the kernel computes each in a loop over the row."""
    if not expr.args or isinstance(expr, FloatMax):
        return expr
    rebuilt = expr.func(*[_lift(arg, found) for arg in expr.args])
    if isinstance(rebuilt, (RowMax, RowSum)):
        for symbol, node in found:
            if node == rebuilt:
                return symbol
        symbol = sympy.Symbol(f"_r{len(found)}")
        found.append((symbol, rebuilt))
        return symbol
    return rebuilt




class _LoopStatements:
    """Prints a graph's ops (updates included) as the loops of the ``_batch`` kernel.

    Arrays keep the NumPy step's names (Z1, O1, dO1, delta1, dW1, db1: buffers the epoch
    makes once); an element's scalars are the locals of :data:`ELEMENT`.  ``loops``: the
    products as loops (small networks), else ``np.dot(A, B, out)``.  Aliases as in the
    NumPy step: O^k is Z^k for a linear layer, δ^k is ∂L/∂O^k multiplied by g' in place."""

    def __init__(self, spec: Spec, printer: NumbaPrinter, loops: bool):
        self.spec, self.p, self.loops = spec, printer, loops
        self.layers, self.L = spec.layers, spec.depth
        self.pieces = forms.layer_pieces(spec)
        self.out = forms.output_pieces(spec)
        self.lines: list[str] = []
        self.alias: dict[Array, Array] = {}
        self.product: dict[Array, tuple[Array, Array]] = {}  # Z^k = left @ right, still to write
        self.bias: dict[Array, Array] = {}
        self.buffers: dict[Array, tuple[str, ...]] = {}  # what the epoch allocates, by shape

    # -- helpers ---------------------------------------------------------------------------
    def name(self, x: Array) -> str:
        while x in self.alias:
            x = self.alias[x]
        return naming.X if x.kind == "X" else naming.Y if x.kind == "Y" else _array_name(x)

    def width(self, x: Array) -> int:
        return self.layers[0 if x.kind in ("X", "Y") else x.layer] if x.kind != "Y" else self.layers[-1]

    def buffer(self, x: Array) -> str:
        """x's name, its buffer recorded: (rows, nodes) per row array, the weights' shape for
        dW, (nodes,) for db."""
        if x not in self.alias and x not in self.buffers:
            k = x.layer
            self.buffers[x] = ((str(self.layers[k - 1]), str(self.layers[k])) if x.kind == "dW"
                               else (str(self.layers[k]),) if x.kind == "db" else ("rows", str(self.layers[k])))
        return self.name(x)

    def at(self, name: str, row: str, col: str) -> str:
        """One element: ``Z1[r, j]``; X and Y are the whole epoch's rows in the loop kernel,
        the batch's start at ``start`` (no slice per batch: a slice costs more than a tiny
        network's step), the batch itself (sliced once) in the BLAS kernel."""
        if self.loops and name in (naming.X, naming.Y):
            row = "start" if row == "0" else f"start + {row}"
        return f"{name}[{row}, {col}]"

    def emit(self, indent: int, statement: str) -> None:
        pad = " " * (BODY * indent)
        for line in wrap_code(statement, WIDTH - BODY - len(pad)):
            self.lines.append(pad + line)

    def comment(self, text: str) -> None:
        self.lines += wrap_comment(text, WIDTH - BODY)

    def expression(self, indent: int, target: str, expr: sympy.Expr, op: str = "=") -> None:
        """``target op expr`` with expr's common subexpressions first (``_t0 = ...``)."""
        temps, text = self.p.statements(expr.xreplace({s: sympy.Symbol(n) for s, n in ELEMENT.items()}))
        for line in temps:
            self.emit(indent, line)
        self.emit(indent, f"{target} {op} {text}")

    def rowwise(self, indent: int, expr: sympy.Expr, loads: dict[str, str], width: int) -> sympy.Expr:
        """Loops computing expr's row sums and maxima for row r (loads: local -> array, read at
        [r, j]); returns expr with each replaced by its scalar."""
        found: list[tuple[sympy.Symbol, sympy.Expr]] = []
        lifted = _lift(expr, found)
        for symbol, node in found:
            lowest = f"{self.p.cast}(-np.inf)" if self.p.cast else "-np.inf"
            start = lowest if isinstance(node, RowMax) else self.p.number(0)
            self.emit(indent, f"{symbol} = {start}")
            self.emit(indent, f"for j in range({width}):")
            self.load(indent + 1, loads, node.args[0])
            reduced = node.args[0].xreplace({s: sympy.Symbol(n) for s, n in ELEMENT.items()})
            temps, text = self.p.statements(reduced, temps="_u")
            for line in temps:
                self.emit(indent + 1, line)
            if isinstance(node, RowMax):
                self.emit(indent + 1, f"{symbol} = {self.p._module_format('numpy.maximum')}({symbol}, {text})")
            else:
                self.emit(indent + 1, f"{symbol} += {text}")
        return lifted

    def load(self, indent: int, loads: dict[str, str], expr: sympy.Expr | None = None) -> None:
        """The element locals expr reads (all of loads when expr is None), from row r, column j."""
        used = None if expr is None else {ELEMENT.get(s, str(s)) for s in expr.free_symbols}
        for local, array in loads.items():
            if used is None or local in used:
                self.emit(indent, f"{local} = {self.at(array, 'r', 'j')}")

    # -- forward ---------------------------------------------------------------------------
    def fw_matmul(self, op: MatMul) -> None:
        if self.loops:
            self.product[op.out] = (op.left, op.right)
        else:
            self.comment(f"{self.name(op.out)} = {self.name(op.left)} @ {self.name(op.right)} (BLAS)")
            self.emit(0, f"np.dot({self.name(op.left)}, {self.name(op.right)}, {self.buffer(op.out)})")

    def fw_add_bias(self, op: AddBias) -> None:
        self.bias[op.out] = op.bias

    def write_z(self, indent: int, zk: Array) -> None:
        """z = Σ_i O^{k-1}_ri w^k_ij (+ b^k_j), stored in Z^k[r, j]: the loop body's start."""
        target = self.buffer(zk)
        if zk in self.product:
            left, right = self.product.pop(zk)
            o, w, fan_in = self.name(left), self.name(right), self.width(left)
            self.emit(indent, f"z = {self.at(o, 'r', '0')} * {w}[0, j]")
            self.emit(indent, f"for i in range(1, {fan_in}):")
            self.emit(indent + 1, f"z += {self.at(o, 'r', 'i')} * {w}[i, j]")
        else:
            self.emit(indent, f"z = {target}[r, j]")
        if zk in self.bias:
            self.emit(indent, f"z += {self.name(self.bias.pop(zk))}[j]")
        self.emit(indent, f"{target}[r, j] = z")

    def fw_activate(self, op: Activate) -> None:
        k, p = op.layer, self.pieces[op.layer - 1]
        n = self.layers[k]
        prev = "x_i" if k == 1 else f"O^{k - 1}_i"
        how = f"Σ_i {prev} w^{k}_ij" if self.loops else f"Z^{k}"
        self.comment(f"layer {k} ({p.activation}): z = {how}{' + b_j' if self.spec.bias else ''}, "
                     f"{self.name(op.out) if not p.identity else 'O'} = {p.activation}(z)")
        self.emit(0, "for r in range(m):")
        if p.identity:
            self.alias[op.out] = op.inp
        if p.rowwise is None:
            self.emit(1, f"for j in range({n}):")
            self.write_z(2, op.inp)
            if not p.identity:
                self.emit(2, f"{self.buffer(op.out)}[r, j] = {_scalar_name(p.activation)}(z)")
            return
        self.emit(1, f"for j in range({n}):")
        self.write_z(2, op.inp)
        zk = self.name(op.inp)
        expr = self.rowwise(1, p.rowwise.forward, {"z": zk}, n)
        self.emit(1, f"for j in range({n}):")
        self.load(2, {"z": zk}, expr)
        self.expression(2, f"{self.buffer(op.out)}[r, j]", expr)

    def fw_add_skip(self, op: AddSkip) -> None:
        k, n = op.layer, self.layers[op.layer]
        self.comment(f"layer {k}'s skip: O^{k} = A^{k} + O^{k - 1}")
        self.emit(0, "for r in range(m):")
        self.emit(1, f"for j in range({n}):")
        self.emit(2, f"{self.buffer(op.out)}[r, j] = {self.name(op.inp)}[r, j] + {self.name(op.skip)}[r, j]")

    def output_loads(self) -> dict[str, str]:
        L = self.L
        return {"z": self.name(Array("Z", L)), "yhat": self.name(Array("O", L)), "y": naming.Y}

    def fw_loss(self, op: Loss) -> None:
        n, loads = self.layers[self.L], self.output_loads()
        self.comment(f"the loss ({self.spec.loss}) before the update: the mean over the rows; "
                     "not finite: return before any update (the NumPy step takes the batch)")
        self.emit(0, "loss = 0.0")
        self.emit(0, "for r in range(m):")
        expr = self.rowwise(1, self.out.loss_term, loads, n)
        self.emit(1, f"for j in range({n}):")
        self.load(2, loads, expr)
        self.expression(2, "loss", expr, "+=")
        self.emit(0, "loss /= m")
        self.emit(0, "if not math.isfinite(loss):")
        self.emit(1, "return loss")

    # -- backward --------------------------------------------------------------------------
    def bw_loss(self, op: LossBackward) -> None:
        n, loads, L = self.layers[self.L], self.output_loads(), self.L
        expr = self.out.delta if op.fused else self.out.dL_dO
        what = f"δ^{L} = ∂L/∂Z^{L}, the output layer" if op.fused else f"∂L/∂Ŷ ({self.spec.loss})"
        self.comment(f"{what} (1/n: the mean over the rows)")
        self.emit(0, "for r in range(m):")
        lifted = self.rowwise(1, expr, loads, n)
        self.emit(1, f"for j in range({n}):")
        self.load(2, loads, lifted)
        self.expression(2, f"{self.buffer(op.out)}[r, j]", lifted)

    def bw_matmul(self, op: MatMul) -> None:
        target = self.buffer(op.out)
        left, right = self.name(op.left), self.name(op.right)
        if op.transpose == "left":  # ∂L/∂W^k = O^{k-1}ᵀ δ^k
            k = op.out.layer
            self.comment(f"∂L/∂W^{k} = {'X' if k == 1 else f'O^{k - 1}'}ᵀ δ^{k}")
            if not self.loops:
                self.emit(0, f"np.dot({left}.T, {right}, {target})")
                return
            self.emit(0, f"for i in range({self.width(op.left)}):")
            self.emit(1, f"for j in range({self.width(op.right)}):")
            self.emit(2, f"g = {self.at(left, '0', 'i')} * {right}[0, j]")
            self.emit(2, "for r in range(1, m):")
            self.emit(3, f"g += {self.at(left, 'r', 'i')} * {right}[r, j]")
            self.emit(2, f"{target}[i, j] = g")
            return
        k = op.right.layer  # ∂L/∂O^{k-1} = δ^k W^kᵀ, before W^k changes
        self.comment(f"∂L/∂O^{k - 1} {'+' if op.accumulate else ''}= δ^{k} W^{k}ᵀ: what layer {k} sends back")
        if not self.loops:
            if op.accumulate:
                self.emit(0, f"{target} += np.dot({left}, {right}.T)")
            else:
                self.emit(0, f"np.dot({left}, {right}.T, {target})")
            return
        self.emit(0, "for r in range(m):")
        self.emit(1, f"for i in range({self.width(op.out)}):")
        self.emit(2, f"g = {left}[r, 0] * {right}[i, 0]")
        self.emit(2, f"for j in range(1, {self.width(op.left)}):")
        self.emit(3, f"g += {left}[r, j] * {right}[i, j]")
        self.emit(2, f"{target}[r, i] {'+=' if op.accumulate else '='} g")

    def bw_sum_rows(self, op: SumRows) -> None:
        target, source = self.buffer(op.out), self.name(op.inp)
        self.comment(f"∂L/∂b^{op.out.layer} = Σ_rows δ^{op.out.layer}")
        self.emit(0, f"for j in range({self.width(op.inp)}):")
        self.emit(1, f"g = {source}[0, j]")
        self.emit(1, "for r in range(1, m):")
        self.emit(2, f"g += {source}[r, j]")
        self.emit(1, f"{target}[j] {'+=' if op.accumulate else '='} g")

    def bw_skip(self, op: SkipBackward) -> None:
        k, n = op.layer, self.layers[op.layer]
        self.comment(f"∂L/∂O^{k - 1} {'+' if op.accumulate else ''}= ∂L/∂O^{k}: layer {k}'s skip")
        self.emit(0, "for r in range(m):")
        self.emit(1, f"for j in range({n}):")
        self.emit(2, f"{self.buffer(op.out)}[r, j] {'+=' if op.accumulate else '='} {self.name(op.grad)}[r, j]")

    def bw_activation(self, op: ActivationBackward) -> None:
        k, p, n = op.layer, self.pieces[op.layer - 1], self.layers[op.layer]
        if not op.accumulate:
            self.alias[op.out] = op.grad  # δ^k: ∂L/∂O^k times g', in place (as the NumPy step)
        if p.rowwise is None and p.derivative is None:
            if op.accumulate:
                raise UserError(f"the numba backend cannot accumulate layer {k}'s δ; use --backend numpy")
            return  # linear: δ^k is ∂L/∂O^k
        target, assign = self.buffer(op.out), "+=" if op.accumulate else "="
        grad = self.name(op.grad)
        self.comment(f"δ^{k} = ∂L/∂Z^{k}: layer {k} ({p.activation})"
                     + ("" if op.accumulate else f", in place in {grad}"))
        self.emit(0, "for r in range(m):")
        if p.rowwise is not None:
            loads = {"a": self.name(op.output), "d": grad}
            lifted = self.rowwise(1, p.rowwise.backward, loads, n)
            self.emit(1, f"for j in range({n}):")
            self.load(2, loads, lifted)
            self.expression(2, f"{target}[r, j]", lifted, assign)
            return
        source = self.name(op.output) if p.var == a else self.name(op.inp)
        self.emit(1, f"for j in range({n}):")
        self.emit(2, f"{target}[r, j] {assign} {grad}[r, j] * "
                     f"{_scalar_name(p.activation, derivative=True)}({source}[r, j])")

    def bw_update(self, op: Update) -> None:
        param, g, k = self.name(op.out), self.name(op.grad), op.out.layer
        self.comment(f"{param} <- {param} - η {g}, in place")
        if op.out.kind == "W":
            self.emit(0, f"for i in range({self.layers[k - 1]}):")
            self.emit(1, f"for j in range({self.layers[k]}):")
            self.emit(2, f"{param}[i, j] -= lr * {g}[i, j]")
        else:
            self.emit(0, f"for j in range({self.layers[k]}):")
            self.emit(1, f"{param}[j] -= lr * {g}[j]")


#: Which method prints each op kind: one entry per kind (batch norm's are not here: refused).
_FORWARD = {MatMul: _LoopStatements.fw_matmul, AddBias: _LoopStatements.fw_add_bias,
            Activate: _LoopStatements.fw_activate, AddSkip: _LoopStatements.fw_add_skip,
            Loss: _LoopStatements.fw_loss}
_BACKWARD = {LossBackward: _LoopStatements.bw_loss, MatMul: _LoopStatements.bw_matmul,
             SumRows: _LoopStatements.bw_sum_rows, ActivationBackward: _LoopStatements.bw_activation,
             Update: _LoopStatements.bw_update, SkipBackward: _LoopStatements.bw_skip}


def _array_name(x: Array) -> str:
    return {"Z": naming.Z, "O": naming.O, "A": naming.A, "W": naming.W, "b": naming.b,
            "delta": naming.delta, "dO": naming.dO, "dW": naming.dW, "db": naming.db}[x.kind](x.layer)


def _scalar_name(activation: str, derivative: bool = False) -> str:
    """The kernel's per-element function: ``_sigmoid_scalar``, ``_sigmoid_derivative_scalar``."""
    return f"_{naming.identifier(activation)}{'_derivative' if derivative else ''}_scalar"


def _scalar_functions(printer: NumbaPrinter, pieces: list[forms.LayerPieces]) -> list[Function]:
    """One njit function of one float per element-wise activation used and its g'."""
    out, seen = [], set()
    for p in pieces:
        if p.activation in seen or p.identity or p.rowwise is not None:
            continue
        seen.add(p.activation)
        lines, text = printer.statements(p.forward.xreplace({z: sympy.Symbol("z")}))
        out.append(Function(_scalar_name(p.activation), "z", f"{p.activation}(z) of one element.",
                            lines, text))
        if p.derivative is not None:
            arg = "a" if p.var == a else "z"
            expr = p.derivative.xreplace({a: sympy.Symbol("a"), z: sympy.Symbol("z")})
            lines, text = printer.statements(expr)  # step's g' = 0: a literal, as full_like's 0
            through = "its output a" if arg == "a" else "its input z"
            out.append(Function(_scalar_name(p.activation, True), arg,
                                f"{p.activation}'(z) of one element, written with {through}.", lines, text))
    return out


def _signature(name: str, args: list[str]) -> list[str]:
    """``def name(a, b, ...):`` over lines of at most WIDTH, continuation under the first."""
    lines, line = [], f"def {name}("
    for i, arg in enumerate(args):
        piece = arg + ("):" if i == len(args) - 1 else ", ")
        if len(line) + len(piece.rstrip()) > WIDTH:
            lines.append(line.rstrip())
            line = " " * (len(name) + 5)
        line += piece
    return lines + [line]


def loops_wanted(spec: Spec) -> bool:
    """Whether ``spec``'s kernel writes its products as loops (else np.dot, BLAS)."""
    return sum(n0 * n1 for n0, n1 in zip(spec.layers[:-1], spec.layers[1:])) <= MAX_LOOP_WEIGHTS


def context(spec: Spec, dtype: str, base: dict) -> dict:
    """What trainer_numba.py.j2 adds to the NumPy trainer's context: the kernels' lines."""
    if spec.batch_norm_layers:
        raise UserError("the numba backend does not support batch_norm yet; use --backend numpy or jax")
    printer = NumbaPrinter(cast="np.float32" if dtype == "float32" else None)
    loops = loops_wanted(spec)
    statements = _LoopStatements(spec, printer, loops)
    graph = vectorise(spec).graph
    for op in graph.forward:
        _FORWARD[type(op)](statements, op)
    for op in graph.backward(updates=True):
        _BACKWARD[type(op)](statements, op)
    params = [n for k in range(1, spec.depth + 1)
              for n in ((naming.W(k), naming.b(k)) if spec.bias else (naming.W(k),))]
    buffers = list(statements.buffers.items())
    names = [_array_name(x) for x, _ in buffers]
    allocate = [f"{_array_name(x)} = np.empty(({', '.join(shape)}{',' if len(shape) == 1 else ''}), X.dtype)"
                for x, shape in buffers]
    modules = set(printer.module_imports) - {"math", "numpy"}
    if modules:
        raise ValueError(f"a numba kernel may use only math and numpy, but the printer used {sorted(modules)}")
    imports = list(base["imports"]) + ["from numba import njit"]
    if "import math" not in imports:
        imports = ["import math"] + imports
    cast = printer.cast or "float"
    values = ", ".join(f'params["{n}"]' for n in params)
    rows = _rows_kernel(spec, params, printer) if scalar.wanted(spec) else None

    def call(size: str) -> list[str]:
        epoch = f"total, done = _epoch(X, Y, {size}, X.dtype.type(lr), {values})"
        if rows is None:
            return wrap_code(epoch)
        return (wrap_code(f"if {size} == 1 and X.dtype == DTYPE:  # SGD: the weights in registers")
                + ["    " + line for line in wrap_code(f"total, done = _sgd_rows(X, Y, DTYPE(lr), {values})",
                                                       WIDTH - 2 * BODY)]
                + ["else:"] + ["    " + line for line in wrap_code(epoch, WIDTH - 2 * BODY)])

    return {
        "imports": imports,
        "scalar": None,  # the compiled step replaces the Python-float one
        "numba_loops": loops,
        "numba_max_loop_weights": MAX_LOOP_WEIGHTS,
        "numba_scalar_functions": _scalar_functions(printer, statements.pieces),
        "numba_step_call": call("X.shape[0]"),
        "numba_epoch_call": call("size"),
        "numba_batch_signature": _signature("_batch", ["X", "Y", "start", "m", "lr"] + params + names),
        "numba_epoch_signature": _signature("_epoch", ["X", "Y", "size", "lr"] + params),
        "numba_batch_call": wrap_code(f"loss = _batch(X, Y, start, m, lr, {', '.join(params + names)})",
                                      WIDTH - 2 * BODY),
        "numba_slices": [] if loops else wrap_code(
            "X, Y = X[start:start + m], Y[start:start + m]") + [
            part for n, (_, shape) in zip(names, buffers) if shape[0] == "rows"
            for part in wrap_code(f"{n} = {n}[:m]")],
        "numba_allocate": [part for line in allocate for part in wrap_code(line, WIDTH - 2 * BODY)],
        "numba_body": statements.lines,
        "numba_cast": cast,
        "numba_rows": rows,
    }


def _rows_kernel(spec: Spec, params: list[str], printer: NumbaPrinter) -> Function:
    """``_sgd_rows(X, Y, lr, W1, b1, ...)``: plain SGD one row at a time over every row, each
    parameter a local from the first row to the last (written back once), the row's step the
    NumPy trainer's one-row statements; stops before updating on a row whose loss is not
    finite.  Returns (Σ loss before each update, the rows done).  float64: the statements the
    NumPy trainer's Python-float step runs; float32: the kernel printer's (``math``, literals
    cast), so every local stays float32 as NumPy's float32 arithmetic does."""
    row = scalar.row_statements(spec, printer if printer.cast else None)
    lines = ["# every parameter as a local for the whole epoch: w1_12 is w^1_12, b1_2 is b_12"]
    lines += [f"{local} = {array}[{', '.join(map(str, index))}]" for (array, index), local in row.params.items()]
    if any("FLOAT_MAX" in line for line in row.lines):
        lines.append("FLOAT_MAX = np.finfo(X.dtype).max")
    lines += ["total = 0.0", "done = X.shape[0]", "for r in range(X.shape[0]):"]
    body = [f"{name} = X[r, {i}]" for i, name in enumerate(row.inputs)]
    body += [f"{name} = Y[r, {j}]" for j, name in enumerate(row.targets)]
    for line in row.lines:
        body.append(line)
        if line.startswith("loss_before = "):
            body += ["if not math.isfinite(loss_before):  # this row and the rest: the NumPy step",
                     "    done = r", "    break"]
    body.append("total += loss_before")
    for line in body:
        if line.startswith("# "):
            lines += ["    " + part for part in wrap_comment(line[2:], WIDTH - 2 * BODY)]
        else:
            lines += ["    " + part for part in wrap_code(line, WIDTH - 2 * BODY)]
    lines.append("# written back once, after the last row done")
    lines += [f"{array}[{', '.join(map(str, index))}] = {local}" for (array, index), local in row.params.items()]
    modules = set(row.printer.module_imports) - {"numpy", "math"}
    if modules:
        raise ValueError(f"the row kernel may use only numpy and math, but the printer used {sorted(modules)}")
    doc = ("Plain SGD one row at a time over every row of (X, Y), each parameter a local (a "
           "register) throughout; stops before the update on a row whose loss is not finite. "
           "Returns (Σ loss before each update, the rows done).")
    return Function("_sgd_rows", ", ".join(["X", "Y", "lr", *params]), doc, lines, "total, done")
