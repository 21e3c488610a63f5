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

from . import forms, naming, scalar
from .forms import a, d, n_rows, y, yhat, z
from .printer import BackpropPrinter

TEMPLATES = Path(__file__).parent / "templates"

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
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
            return [], f"{self.printer._module_format('numpy.full_like')}({like}, {value})"
        self.printer._settings["heaviside_mask"] = mask
        try:
            return self.printer.statements(renamed)
        finally:
            self.printer._settings["heaviside_mask"] = False

    def np(self, name: str) -> str:
        """A NumPy function's printed name (``np.matmul``), recorded in the imports."""
        return self.printer._module_format(f"numpy.{name}")


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


def _backward_blocks(w: _Writer, spec: Spec, pieces: list[forms.LayerPieces],
                     out: forms.OutputPieces) -> list[Block]:
    L = spec.depth
    blocks = []
    out_names = {y: naming.Y, yhat: naming.O(L), z: naming.Z(L), n_rows: naming.N_ROWS}
    last = pieces[-1]
    if out.delta is not None:
        lines, text = w.expression(out.delta, out_names, naming.Z(L))
        blocks.append(Block(
            f"{naming.delta(L)} = dL/d{naming.Z(L)}: output layer ({last.activation}, loss {spec.loss}), "
            "over n_rows for the mean",
            lines + [f"{naming.delta(L)} = {text}"]))
    else:
        lines, text = w.expression(out.dL_dO, out_names, naming.O(L))
        blocks.append(Block(f"{naming.dO(L)} = dL/d{naming.O(L)}: loss {spec.loss}, over n_rows for the mean",
                            lines + [f"{naming.dO(L)} = {text}"]))
        blocks.append(Block(f"{naming.delta(L)} = dL/d{naming.Z(L)}: through the {last.activation} Jacobian",
                            [f"{naming.delta(L)} = {naming.backward(last.activation)}({naming.O(L)}, {naming.dO(L)})"]))
    for p in reversed(pieces):
        k = p.k
        blocks.append(Block(f"dL/d{naming.W(k)}: layer {k} weights",
                            [f"{naming.dW(k)} = {naming.O(k - 1)}.T @ {naming.delta(k)}"]))
        if spec.bias:
            blocks.append(Block(f"dL/d{naming.b(k)}: layer {k} biases",
                                [f"{naming.db(k)} = {naming.delta(k)}.sum(axis=0)"]))
        if k == 1:
            break  # no gradient for the inputs
        below = pieces[k - 2]
        j = k - 1
        blocks.append(Block(f"{naming.dO(j)} = dL/d{naming.O(j)}: what layer {k} sends back",
                            [f"{naming.dO(j)} = {naming.delta(k)} @ {naming.W(k)}.T"]))
        if below.rowwise is not None:
            rhs = f"{naming.backward(below.activation)}({naming.O(j)}, {naming.dO(j)})"
            how = f"through the {below.activation} Jacobian"
        elif below.derivative is None:
            rhs, how = naming.dO(j), f"{below.activation}, g' = 1"
        else:
            arg = naming.O(j) if below.var == a else naming.Z(j)
            rhs = f"{naming.dO(j)} * {naming.derivative(below.activation)}({arg})"
            how = f"{below.activation}, times g'({arg})"
        blocks.append(Block(f"{naming.delta(j)} = dL/d{naming.Z(j)}: layer {j}, {how}",
                            [f"{naming.delta(j)} = {rhs}"]))
    return blocks


def _buffer(name: str) -> str:
    """The preallocated array of a node in the step's buffers: B["Z1"]."""
    return f"{naming.BUFFERS}[{_q(name)}]"


def _step_forward_blocks(w: _Writer, spec: Spec, pieces: list[forms.LayerPieces]) -> list[Block]:
    """The forward pass of sgd_step: each product written into its preallocated Z, the bias
    added in place; the activation as in _forward."""
    L = spec.depth
    blocks = []
    for p in pieces:
        k = p.k
        where = " (output)" if k == L else ""
        act = naming.Z(k) if p.identity else f"{naming.activation(p.activation)}({naming.Z(k)})"
        lines = [f"{naming.Z(k)} = {w.np('matmul')}({naming.O(k - 1)}, {naming.W(k)}, out={_buffer(naming.Z(k))})"]
        if spec.bias:
            lines.append(f"{naming.Z(k)} += {naming.b(k)}")
        lines.append(f"{naming.O(k)} = {act}")
        blocks.append(Block(f"layer {k}{where}: {p.activation}", lines))
    return blocks


def _step_backward_blocks(w: _Writer, spec: Spec, pieces: list[forms.LayerPieces],
                          out: forms.OutputPieces) -> list[Block]:
    """The backward pass of sgd_step with the update fused in: each product written into a
    preallocated buffer, g' applied in place, and layer k's weights updated as soon as they
    have sent dO back (no gradient dict, no temporary the size of a weight matrix)."""
    blocks = _backward_blocks(w, spec, pieces, out)[:2 if out.delta is None else 1]
    for p in reversed(pieces):
        k = p.k
        blocks.append(Block(f"dL/d{naming.W(k)}: layer {k} weights, into its buffer", [
            f"{naming.dW(k)} = {w.np('matmul')}({naming.O(k - 1)}.T, {naming.delta(k)}, out={_buffer(naming.dW(k))})"]))
        if spec.bias:
            blocks.append(Block(f"dL/d{naming.b(k)}: layer {k} biases",
                                [f"{naming.db(k)} = {naming.delta(k)}.sum(axis=0)"]))
        j = k - 1
        if k > 1:  # no gradient for the inputs
            blocks.append(Block(f"{naming.dO(j)} = dL/d{naming.O(j)}: what layer {k} sends back (before {naming.W(k)} changes)",
                                [f"{naming.dO(j)} = {w.np('matmul')}({naming.delta(k)}, {naming.W(k)}.T, out={_buffer(naming.dO(j))})"]))
        update = [f"{naming.dW(k)} *= {naming.LR}", f"{naming.W(k)} -= {naming.dW(k)}"]
        if spec.bias:
            update.append(f"{naming.b(k)} -= {naming.LR} * {naming.db(k)}")
        params = f"{naming.W(k)}, {naming.b(k)}" if spec.bias else naming.W(k)
        blocks.append(Block(f"{params} <- {params} - lr * gradient, in place", update))
        if k == 1:
            break
        below = pieces[k - 2]
        if below.rowwise is not None:
            rhs = [f"{naming.delta(j)} = {naming.backward(below.activation)}({naming.O(j)}, {naming.dO(j)})"]
            how = f"through the {below.activation} Jacobian"
        elif below.derivative is None:
            rhs, how = [f"{naming.delta(j)} = {naming.dO(j)}"], f"{below.activation}, g' = 1"
        else:
            arg = naming.O(j) if below.var == a else naming.Z(j)
            rhs = [f"{naming.dO(j)} *= {naming.derivative(below.activation)}({arg})",
                   f"{naming.delta(j)} = {naming.dO(j)}"]
            how = f"{below.activation}, {naming.dO(j)} times g'({arg}) in place"
        blocks.append(Block(f"{naming.delta(j)} = dL/d{naming.Z(j)}: layer {j}, {how}", rhs))
    return blocks


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
    backward = _backward_blocks(w, spec, pieces, out)
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
        "forward_blocks": _forward_blocks(spec, pieces),
        "node_tuple": ", ".join(node_names),
        "nodes_dict": _pairs([f"{_q(n)}: {n}" for n in node_names]),
        "loss_function": loss_fn,
        "loss_args": f"{naming.Y}, {naming.Z(L)}, {naming.O(L)}",
        "backward_blocks": backward,
        "grads_dict": _pairs([f"{_q(n)}: d{n}" for n in param_names]),
        "step_unpack": [f"{naming.W(k)}, {naming.b(k)} = params[{_q(naming.W(k))}], params[{_q(naming.b(k))}]"
                        if spec.bias else f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in layers],
        "step_forward_blocks": _step_forward_blocks(w, spec, pieces),
        "step_backward_blocks": _step_backward_blocks(w, spec, pieces, out),
        "scalar": scalar.scalar_step(spec) if scalar.wanted(spec) else None,
        "scalar_max_weights": scalar.MAX_WEIGHTS,
    }


def render(template: str, context: dict) -> str:
    """Render one template of :data:`ENVIRONMENT` (a missing variable raises)."""
    return ENVIRONMENT.get_template(template).render(**context)
