"""From a Spec to trainer source: build the template context, then render it with Jinja2.

The split follows Brian 2: **code renders the maths, templates hold the skeleton.**
:func:`trainer_context` turns the derivation into finished statements — every element-wise
expression printed by :class:`~backprop.codegen.printer.BackpropPrinter`, every name from
:mod:`~backprop.codegen.naming` — and the templates in ``codegen/templates/`` only place
them: no arithmetic and no maths in a template, only names, loops and blocks.  There is one
Jinja2 :data:`ENVIRONMENT`: ``StrictUndefined`` (a missing variable is an error, never an
empty string), ``trim_blocks`` and ``lstrip_blocks`` (control tags leave no stray lines),
``keep_trailing_newline``.  ``trainer.py.j2`` extends ``base.py.j2`` and fills its blocks.

No user text reaches the generated source unchecked: activation and loss names are table
keys (validated identifiers), widths are ints, the command line and docstrings go through
:func:`comment_text` / :func:`docstring_text`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jinja2
import sympy

from backprop.derive import Spec, vectorise
from backprop.derive.graph import (ActivationBackward, Activate, AddBias, Array, Loss, LossBackward,
                                  MatMul, SumRows, Update)

from . import forms, naming, scalar
from .forms import a, d, n_rows, y, yhat, z
from .printer import BackpropPrinter

TEMPLATES = Path(__file__).parent / "templates"

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader([str(TEMPLATES), str(TEMPLATES.parents[1] / "core")]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)

DTYPES = ("float64", "float32")

#: What the network's outputs mean, by loss: the generated KIND and its comment (predict,
#: predict_proba and accuracy branch on KIND; a label column is one-hot or 0/1 by it).
KINDS = {
    "cce": ("classes", "one class per row: the arg max of the outputs (targets one-hot)"),
    "bce": ("binary", "0 or 1 per output: ŷ ≥ ½ (targets 0 or 1)"),
}
REGRESSION = ("values", "regression: the outputs are the predictions")


def backprop_version() -> str:
    try:
        return metadata.version("backprop")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def comment_text(text: str) -> str:
    """``text`` safe inside a ``#`` comment: one printable line, else its ascii() form."""
    return text if text.isprintable() else ascii(text)


def docstring_text(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring (no quotes run, no backslash)."""
    if '"""' in text or "\\" in text or not all(ch.isprintable() for ch in text):
        raise ValueError(f"cannot place {text!r} in a generated docstring")
    return text


@dataclass
class Function:
    """A generated one-concept function: ``def name(arg): '''doc'''; lines; return result``."""

    name: str
    args: str
    doc: str
    lines: list[str]
    result: str


@dataclass
class Block:
    """A commented group of statements inside a generated function body."""

    comment: str
    lines: list[str] = field(default_factory=list)


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(naming.identifier(name))


class _Writer:
    """Prints expressions for one trainer with one printer (so imports accumulate)."""

    def __init__(self):
        self.printer = BackpropPrinter()

    def expression(self, expr: sympy.Expr, names: dict[sympy.Symbol, str], like: str,
                   mask: bool = False) -> tuple[list[str], str]:
        """(temporaries, text) of ``expr`` with its stand-ins renamed; an expression free of
        array symbols (step's g' = 0) is broadcast to the shape and dtype of array ``like``.
        ``mask``: a whole Heaviside prints as a bool mask (a derivative only multiplied)."""
        renamed = expr.xreplace({s: _sym(n) for s, n in names.items()})
        arrays = renamed.free_symbols - {n_rows}
        if not arrays:
            value = self.printer.doprint(renamed.xreplace({n_rows: 1}))
            return [], f"{self.printer._np('full_like')}({like}, {value})"
        self.printer._settings["heaviside_mask"] = mask
        try:
            return self.printer.statements(renamed)
        finally:
            self.printer._settings["heaviside_mask"] = False

    def np(self, name: str) -> str:
        """A NumPy function's printed name (``np.matmul``), recorded in the imports."""
        return self.printer._np(name)


def _activation_functions(w: _Writer, pieces: list[forms.LayerPieces]) -> list[Function]:
    """One forward and one derivative (or backward) function per activation used."""
    out, seen = [], set()
    for p in pieces:
        if p.activation in seen or p.identity:
            continue
        seen.add(p.activation)
        doc = docstring_text(p.doc)
        if p.rowwise is not None:
            lines, result = w.expression(p.rowwise.forward, {z: "Z"}, "Z")
            out.append(Function(naming.activation(p.activation), "Z",
                                f"{p.activation}: {doc}, row maximum subtracted first (no overflow).",
                                lines, result))
            lines, result = w.expression(p.rowwise.backward, {a: "O", d: "dO"}, "O")
            out.append(Function(naming.backward(p.activation), "O, dO",
                                f"dL/dZ from dL/dO through the {p.activation} Jacobian, written with the outputs O.",
                                lines, result))
            continue
        lines, result = w.expression(p.forward, {z: "Z"}, "Z")
        out.append(Function(naming.activation(p.activation), "Z", f"{p.activation}: {doc}.", lines, result))
        if p.derivative is not None:
            arg = "O" if p.var == a else "Z"
            through = "its output O" if arg == "O" else "its input Z"
            lines, result = w.expression(p.derivative, {a: "O", z: "Z"}, arg, mask=True)
            kind = " (a bool mask: 1 where True)" if isinstance(p.derivative, sympy.Heaviside) else ""
            out.append(Function(naming.derivative(p.activation), arg,
                                f"{p.activation}'(z), written with {through}{kind}.", lines, result))
    return out


def _forward_blocks(spec: Spec, pieces: list[forms.LayerPieces]) -> list[Block]:
    L = spec.depth
    blocks = []
    for p in pieces:
        k = p.k
        where = " (output)" if k == L else ""
        bias = f" + {naming.b(k)}" if spec.bias else ""
        act = naming.Z(k) if p.identity else f"{naming.activation(p.activation)}({naming.Z(k)})"
        blocks.append(Block(f"layer {k}{where}: {p.activation}", [
            f"{naming.Z(k)} = {naming.O(k - 1)} @ {naming.W(k)}{bias}",
            f"{naming.O(k)} = {act}",
        ]))
    return blocks


def _loss_function(w: _Writer, spec: Spec, out: forms.OutputPieces) -> Function:
    L = spec.depth
    names = {y: naming.Y, yhat: naming.O(L), z: naming.Z(L)}
    lines, term = w.expression(out.loss_term, names, naming.O(L))
    how = (f"from the logits {naming.Z(L)} (finite at any |z|)" if out.on_logits
           else "summed over outputs" if not vectorise(spec).output.mean_over_outputs
           else "averaged over outputs")
    doc = f"Loss {spec.loss} ({docstring_text(forms.loss_doc(spec))}) {how}, mean over rows."
    return Function("_batch_loss", f"{naming.Y}, {naming.Z(L)}, {naming.O(L)}", doc, lines,
                    f"float(({term}).sum() / len({naming.Y}))")


def _array(x: Array) -> str:
    """A graph array's name in the generated code: X, Z2, O2, W2, b2, delta2, dO1, dW2, db2."""
    return {"X": lambda k: naming.X, "Y": lambda k: naming.Y, "Z": naming.Z, "O": naming.O,
            "W": naming.W, "b": naming.b, "delta": naming.delta, "dO": naming.dO,
            "dW": naming.dW, "db": naming.db}[x.kind](x.layer)


def _buffer(name: str) -> str:
    """The preallocated array of a node in the step's buffers: B["Z1"]."""
    return f"{naming.BUFFERS}[{_q(name)}]"


class _NumpyStatements:
    """Prints a graph's ops as NumPy statements, grouped in commented blocks.

    ``buffered`` is the fused ``sgd_step`` printing: every product written into its
    preallocated buffer (``np.matmul(..., out=B[...])``), biases added and g' applied in
    place, and each parameter updated in place where the graph's Update op stands (right
    after δ^k W^kᵀ has used W^k): no gradient dict, no temporary the size of a weight
    matrix.  Plain printing writes one expression per array and leaves the updates out."""

    def __init__(self, w: _Writer, spec: Spec, pieces: list[forms.LayerPieces],
                 out: forms.OutputPieces, buffered: bool = False):
        self.w, self.spec, self.pieces, self.out, self.buffered = w, spec, pieces, out, buffered
        self.L = spec.depth
        self.blocks: list[Block] = []
        self.pending: list[str] = []  # the forward statements of the layer being printed
        self.sum: dict[Array, str] = {}  # plain printing: Z^k's right side before its activation

    def forward(self, ops) -> list[Block]:
        for op in ops:
            _FORWARD[type(op)](self, op)
        return self.blocks

    def backward(self, ops) -> list[Block]:
        for op in ops:
            _BACKWARD[type(op)](self, op)
        return self.blocks

    def matmul(self, left: str, right: str, out: str) -> str:
        if self.buffered:
            return f"{self.w.np('matmul')}({left}, {right}, out={_buffer(out)})"
        return f"{left} @ {right}"

    # -- forward ---------------------------------------------------------------------------
    def fw_matmul(self, op: MatMul) -> None:
        z = _array(op.out)
        rhs = self.matmul(_array(op.left), _array(op.right), z)
        if self.buffered:
            self.pending.append(f"{z} = {rhs}")
        else:
            self.sum[op.out] = rhs

    def fw_add_bias(self, op: AddBias) -> None:
        if self.buffered:
            self.pending.append(f"{_array(op.out)} += {_array(op.bias)}")
        else:
            self.sum[op.out] += f" + {_array(op.bias)}"

    def fw_activate(self, op: Activate) -> None:
        p = self.pieces[op.layer - 1]
        z = _array(op.inp)
        if not self.buffered:
            self.pending.append(f"{z} = {self.sum.pop(op.inp)}")
        act = z if p.identity else f"{naming.activation(p.activation)}({z})"
        where = " (output)" if op.layer == self.L else ""
        self.blocks.append(Block(f"layer {op.layer}{where}: {p.activation}",
                                 self.pending + [f"{_array(op.out)} = {act}"]))
        self.pending = []

    # -- backward --------------------------------------------------------------------------
    def bw_loss(self, op: LossBackward) -> None:
        L, spec, last = self.L, self.spec, self.pieces[-1]
        names = {y: naming.Y, yhat: naming.O(L), z: naming.Z(L), n_rows: naming.N_ROWS}
        if op.fused:
            lines, text = self.w.expression(self.out.delta, names, naming.Z(L))
            self.blocks.append(Block(
                f"{naming.delta(L)} = dL/d{naming.Z(L)}: output layer ({last.activation}, loss {spec.loss}), "
                "over n_rows for the mean", lines + [f"{naming.delta(L)} = {text}"]))
        else:
            lines, text = self.w.expression(self.out.dL_dO, names, naming.O(L))
            self.blocks.append(Block(f"{naming.dO(L)} = dL/d{naming.O(L)}: loss {spec.loss}, over n_rows for the mean",
                                     lines + [f"{naming.dO(L)} = {text}"]))

    def bw_matmul(self, op: MatMul) -> None:
        k, target = op.out.layer, _array(op.out)
        if op.transpose == "left":  # dW^k = O^{k-1}ᵀ δ^k
            rhs = self.matmul(f"{_array(op.left)}.T", _array(op.right), target)
            comment = f"dL/d{naming.W(k)}: layer {k} weights" + (", into its buffer" if self.buffered else "")
        else:  # dO^{k-1} = δ^k W^kᵀ: what layer k sends back
            rhs = self.matmul(_array(op.left), f"{_array(op.right)}.T", target)
            sender = op.right.layer
            comment = (f"{target} = dL/d{naming.O(k)}: what layer {sender} sends back"
                       + (f" (before {naming.W(sender)} changes)" if self.buffered else ""))
        if op.accumulate:
            rhs = rhs.replace(f", out={_buffer(target)}", "")
        self.blocks.append(Block(comment, [f"{target} {'+=' if op.accumulate else '='} {rhs}"]))

    def bw_sum_rows(self, op: SumRows) -> None:
        k = op.out.layer
        self.blocks.append(Block(f"dL/d{naming.b(k)}: layer {k} biases",
                                 [f"{_array(op.out)} {'+=' if op.accumulate else '='} {_array(op.inp)}.sum(axis=0)"]))

    def bw_activation(self, op: ActivationBackward) -> None:
        k = op.layer
        p = self.pieces[k - 1]
        d_o, o, zk, delta = _array(op.grad), _array(op.output), _array(op.inp), _array(op.out)
        assign = "+=" if op.accumulate else "="
        if p.rowwise is not None:
            lines = [f"{delta} {assign} {naming.backward(p.activation)}({o}, {d_o})"]
            how = f"through the {p.activation} Jacobian"
        elif p.derivative is None:
            lines, how = [f"{delta} {assign} {d_o}"], f"{p.activation}, g' = 1"
        else:
            arg = o if p.var == a else zk
            g = f"{naming.derivative(p.activation)}({arg})"
            if self.buffered and not op.accumulate:
                lines = [f"{d_o} *= {g}", f"{delta} = {d_o}"]
                how = f"{p.activation}, {d_o} times g'({arg}) in place"
            else:
                lines = [f"{delta} {assign} {d_o} * {g}"]
                how = f"{p.activation}, times g'({arg})"
        if k == self.L:
            comment = f"{delta} = dL/d{zk}: through the {p.activation} Jacobian"
        else:
            comment = f"{delta} = dL/d{zk}: layer {k}, {how}"
        self.blocks.append(Block(comment, lines))

    def bw_update(self, op: Update) -> None:
        param, g = _array(op.out), _array(op.grad)
        if op.out.kind == "W":
            lines = [f"{g} *= {naming.LR}", f"{param} -= {g}"]
        else:
            lines = [f"{param} -= {naming.LR} * {g}"]
        self.blocks.append(Block(f"{param} <- {param} - lr * dL/d{param}, in place", lines))


#: Which method prints each op kind: one entry per kind (a new op is one method and one entry).
_FORWARD = {MatMul: _NumpyStatements.fw_matmul, AddBias: _NumpyStatements.fw_add_bias,
            Activate: _NumpyStatements.fw_activate, Loss: lambda self, op: None}
_BACKWARD = {LossBackward: _NumpyStatements.bw_loss, MatMul: _NumpyStatements.bw_matmul,
             SumRows: _NumpyStatements.bw_sum_rows, ActivationBackward: _NumpyStatements.bw_activation,
             Update: _NumpyStatements.bw_update}


def _q(name: str) -> str:
    """A validated identifier as a double-quoted string literal: "W1"."""
    return f'"{naming.identifier(name)}"'


def _pairs(names: list[str]) -> str:
    """'"W1": dW1, "b1": db1' style dict bodies."""
    return ", ".join(names)


def trainer_context(spec: Spec, dtype: str = "float64", command: str | None = None) -> dict:
    """Everything the templates place, as finished strings and lists of strings."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    for name in spec.activations:
        naming.identifier(name)
    naming.identifier(spec.loss)
    L = spec.depth
    pieces = forms.layer_pieces(spec)
    out = forms.output_pieces(spec)
    w = _Writer()
    functions = _activation_functions(w, pieces)
    loss_fn = _loss_function(w, spec, out)
    graph = vectorise(spec).graph
    backward = _NumpyStatements(w, spec, pieces, out).backward(graph.backward())
    layers = range(1, L + 1)
    param_names = [n for k in layers for n in ([naming.W(k), naming.b(k)] if spec.bias else [naming.W(k)])]
    node_names = [n for k in layers for n in (naming.Z(k), naming.O(k))]
    if command is None:
        command = "backprop.codegen.render_trainer()"
    equations = [docstring_text(line) for line in vectorise(spec).text().splitlines()]
    return {
        "backprop_version": backprop_version(),
        "sympy_version": sympy.__version__,
        "command": comment_text(command),
        "digest": spec.digest(),
        "spec_lines": spec.to_toml().splitlines(),
        "title": docstring_text(spec.describe()),
        "equations": equations,
        "imports": w.printer.imports(),
        "layers": repr(tuple(spec.layers)),
        "activations": "(" + ", ".join(_q(a) for a in spec.activations) + ("," if spec.depth == 1 else "") + ")",
        "loss": _q(spec.loss),
        "loss_name": spec.loss,
        "bias": repr(bool(spec.bias)),
        "kind": KINDS.get(spec.loss, REGRESSION)[0],
        "kind_doc": KINDS.get(spec.loss, REGRESSION)[1],
        "dtype": dtype,
        "first_weights": naming.W(1),
        "output": naming.O(L),
        "functions": functions,
        "param_unpack": [f"{naming.W(k)}, {naming.b(k)} = params[{_q(naming.W(k))}], params[{_q(naming.b(k))}]"
                         if spec.bias else f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in layers],
        "backward_unpack": [f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in range(2, L + 1)],
        "forward_blocks": _NumpyStatements(w, spec, pieces, out).forward(graph.forward),
        "node_tuple": ", ".join(node_names),
        "nodes_dict": _pairs([f"{_q(n)}: {n}" for n in node_names]),
        "loss_function": loss_fn,
        "loss_args": f"{naming.Y}, {naming.Z(L)}, {naming.O(L)}",
        "backward_blocks": backward,
        "grads_dict": _pairs([f"{_q(n)}: d{n}" for n in param_names]),
        "step_unpack": [f"{naming.W(k)}, {naming.b(k)} = params[{_q(naming.W(k))}], params[{_q(naming.b(k))}]"
                        if spec.bias else f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in layers],
        "step_forward_blocks": _NumpyStatements(w, spec, pieces, out, buffered=True).forward(graph.forward),
        "step_backward_blocks": _NumpyStatements(w, spec, pieces, out, buffered=True).backward(
            graph.backward(updates=True)),
        "scalar": scalar.scalar_step(spec) if scalar.wanted(spec) else None,
        "scalar_max_weights": scalar.MAX_WEIGHTS,
    }


def render(template: str, context: dict) -> str:
    """Render one template of :data:`ENVIRONMENT` (a missing variable raises)."""
    return ENVIRONMENT.get_template(template).render(**context)
