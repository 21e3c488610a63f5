"""From a Spec to trainer source: build the template context, then render it with Jinja2.

The split follows Brian 2: **code renders the maths, templates hold the skeleton.**
:func:`trainer_context` turns the derivation into finished statements — every element-wise
expression printed by :class:`~backprop.codegen.printer.BackpropPrinter`, every name from
:mod:`~backprop.codegen.naming` — and the templates in ``codegen/templates/`` only place
them: no arithmetic and no maths in a template, only names, loops and blocks.  There is one
Jinja2 :data:`ENVIRONMENT`: ``StrictUndefined`` (a missing variable is an error, never an
empty string), ``trim_blocks`` and ``lstrip_blocks`` (control tags leave no stray lines),
``keep_trailing_newline``.  ``trainer.py.j2`` extends ``base.py.j2`` and fills its blocks.

The context also lays the text out: every printed statement, comment and docstring is
broken to at most :data:`WIDTH` (99) characters where it is placed (:func:`wrap_code` breaks
inside brackets, before an operator or after a comma), and the comments of the maths are the
notes' equations from :func:`~backprop.derive.vectorise`'s notation printer, so the module
docstring, ``loss_and_gradients`` and ``backprop derive --vectorised`` say the same thing.

No user text reaches the generated source unchecked: activation and loss names are table
keys (validated identifiers), widths are ints, the command line and docstrings go through
:func:`comment_text` / :func:`docstring_text`.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jinja2
import sympy

from backprop.core import init_schemes
from backprop.derive import ACTIVATIONS, LOSSES, Spec, batchnorm, vectorise
from backprop.derive import notation as nt
from backprop.derive.printing import NotationPrinter
from backprop.derive.spelling import NotationError
from backprop.derive.graph import (ActivationBackward, Activate, AddBias, AddSkip, Array, BatchNorm,
                                  BatchNormBackward, Loss, LossBackward, MatMul, SkipBackward, SumRows,
                                  SumRowsProduct, Update)

from . import forms, naming, scalar
from .forms import a, d, n_rows, y, yhat, z
from .optimizer import optimizer_context
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


def command_lines(command: str, width: int = 93) -> list[str]:
    """A command line for the header, broken before an option and its values (`` \\``
    continuing it, as a shell reads it) where it would pass ``width`` characters (WIDTH less
    the comment's ``#     ``); continuation lines indented."""
    groups: list[str] = []
    for word in command.split(" "):
        if groups and not word.startswith("-"):
            groups[-1] += " " + word
        else:
            groups.append(word)
    lines = [groups[0]]
    for group in groups[1:]:
        if len(lines[-1]) + 1 + len(group) + 2 > width:
            lines[-1] += " \\"
            lines.append("    " + group)
        else:
            lines[-1] += " " + group
    return lines


def docstring_text(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring (no quotes run, no backslash)."""
    if '"""' in text or "\\" in text or not all(ch.isprintable() for ch in text):
        raise ValueError(f"cannot place {text!r} in a generated docstring")
    return text


#: The longest line a generated file may have, and the indent of a function body in it.
WIDTH = 99
BODY = 4

_OPEN, _CLOSE = "([{", ")]}"
_BINARY = ("+ ", "- ", "* ", "@ ")


def _depths(text: str) -> list[int]:
    """The bracket depth before each character of ``text`` (a printed statement: no strings
    with brackets in them)."""
    depth, out = 0, []
    for ch in text:
        depth -= ch in _CLOSE
        out.append(depth)
        depth += ch in _OPEN
    return out


def _enclosed(statement: str) -> str:
    """``name = a + b`` as ``name = (a + b)`` where the right side has breaks at depth 0 only,
    so it can be split over lines (inside brackets Python continues a line by itself)."""
    depth = _depths(statement)
    for op in (" = ", " += ", " -= ", " *= "):
        at = statement.find(op)
        if at > 0 and depth[at] == 0:
            rhs = statement[at + len(op):]
            inner = _depths(rhs)
            loose = any(inner[i] == 0 and rhs[i + 1:i + 3] in _BINARY for i in range(len(rhs))
                        if rhs[i] == " ")
            return f"{statement[:at + len(op)]}({rhs})" if loose else statement
    return statement


def wrap_code(statement: str, width: int = WIDTH - BODY) -> list[str]:
    """A printed statement as lines of at most ``width`` characters where it can be broken:
    inside brackets, after a comma or before a binary operator, at the shallowest bracket
    depth that fills a line at least half; continuation lines indented four more."""
    if len(statement) <= width:
        return [statement]
    text = _enclosed(statement)
    depth = _depths(text)
    cuts = [i for i in range(1, len(text)) if depth[i] > 0 and text[i] == " " and
            (text[i - 1] == "," or text[i + 1:i + 3] in _BINARY)]
    lines, start, room = [], 0, width
    while len(text) - start > room:
        fits = [i for i in cuts if start < i <= start + room]
        if not fits:
            break
        late = [i for i in fits if i - start >= room // 2] or fits
        best = min(depth[i] for i in late)
        cut = max(i for i in late if depth[i] == best)
        lines.append(text[start:cut].rstrip())
        start, room = cut + 1, width - 4
    lines.append(text[start:])
    return [lines[0]] + ["    " + line for line in lines[1:]]


def wrap_comment(text: str, width: int = WIDTH - BODY) -> list[str]:
    """``# text`` over as many lines as it needs, continuation lines indented by two."""
    return textwrap.wrap(text, width, initial_indent="# ", subsequent_indent="#   ",
                         break_long_words=False, break_on_hyphens=False)


def wrap_docstring(text: str, width: int = WIDTH - BODY) -> list[str]:
    """A function's one-paragraph docstring, quotes included, over lines of ``width``."""
    lines = textwrap.wrap(f'"""{text}"""', width, break_long_words=False, break_on_hyphens=False)
    return lines


@dataclass
class Function:
    """A generated one-concept function: ``def name(arg): '''doc'''; lines; return result``;
    ``comment``: what a stable form replaces (the textbook form), above its body."""

    name: str
    args: str
    doc: str
    lines: list[str]
    result: str
    comment: str = ""

    @property
    def body(self) -> list[str]:
        """The body's lines, docstring first, each at most WIDTH - BODY characters."""
        out = wrap_docstring(self.doc) + (wrap_comment(self.comment) if self.comment else [])
        for line in self.lines + [f"return {self.result}"]:
            out += wrap_code(line)
        return out


@dataclass
class Block:
    """A commented group of statements inside a generated function body."""

    comment: str
    lines: list[str] = field(default_factory=list)

    @property
    def body(self) -> list[str]:
        """The comment and the statements, each line at most WIDTH - BODY characters."""
        return wrap_comment(self.comment) + [part for line in self.lines for part in wrap_code(line)]


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(naming.identifier(name))


class _Writer:
    """Prints expressions for one trainer with one printer (so imports accumulate); a
    backend passes its own printer class (``JaxTrainerPrinter``: ``jnp.exp``)."""

    def __init__(self, printer: type[BackpropPrinter] = BackpropPrinter):
        self.printer = printer()

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


#: Prints the textbook forms in the comments: one element, so z reads z and ŷ reads ŷ.
_NOTATION = NotationPrinter(depth=1, single_output=True)


def _notation(expr: sympy.Expr) -> str | None:
    """``expr`` in the notes' notation, or None where a node has no notation rule (logaddexp,
    expm1, log1p: NumPy's names, no textbook spelling)."""
    try:
        return _NOTATION.text(expr)
    except NotationError:
        return None


#: A stable form longer than this is left to the code under the comment (gelu's clipped z).
_SHORT = 40


def stable_comment(name: str, printed: sympy.Expr) -> str:
    """``sigmoid(z) = 1/(1 + exp(-z)), written as (1 + tanh(z/2))/2 so it never overflows``:
    the table's textbook g (its ``sym``) above the stable form printed in its place; empty
    for an entry without a stable form (its code is the textbook form)."""
    act = ACTIVATIONS[name]
    if act.stable is None:
        return ""
    written = _notation(printed)
    how = (f"written as {written} so that it" if written and len(written) <= _SHORT
           else "written below in a form that")
    return f"{name}(z) = {_notation(act.sym(z))}, {how} never overflows"


def _loss_comment(spec: Spec, out: forms.OutputPieces) -> str:
    """The loss per output as the notes write it; where the code takes it on the logits, says so."""
    term = LOSSES[spec.loss].term(y, yhat).xreplace({y: nt.target(1), yhat: nt.prediction(1)})
    where = (f", written with the logits {naming.Z(spec.depth)} so that it never overflows"
             if out.on_logits else "")
    return f"{spec.loss} per output: {_notation(term)}{where}"


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
        out.append(Function(naming.activation(p.activation), "Z", f"{p.activation}: {doc}.", lines, result,
                            stable_comment(p.activation, p.forward)))
        if p.derivative is not None:
            arg = "O" if p.var == a else "Z"
            through = "its output O" if arg == "O" else "its input Z"
            lines, result = w.expression(p.derivative, {a: "O", z: "Z"}, arg, mask=True)
            kind = " (a bool mask: 1 where True)" if isinstance(p.derivative, sympy.Heaviside) else ""
            out.append(Function(naming.derivative(p.activation), arg,
                                f"{p.activation}'(z), written with {through}{kind}.", lines, result))
    return out


def _loss_function(w: _Writer, spec: Spec, out: forms.OutputPieces) -> Function:
    L = spec.depth
    names = {y: naming.Y, yhat: naming.O(L), z: naming.Z(L)}
    lines, term = w.expression(out.loss_term, names, naming.O(L))
    how = (f"from the logits {naming.Z(L)} (finite at any |z|)" if out.on_logits
           else "summed over outputs" if not vectorise(spec).output.mean_over_outputs
           else "averaged over outputs")
    doc = f"Loss {spec.loss} ({docstring_text(forms.loss_doc(spec))}) {how}, mean over rows."
    return Function("_batch_loss", f"{naming.Y}, {naming.Z(L)}, {naming.O(L)}", doc, lines,
                    f"float(({term}).sum() / len({naming.Y}))", _loss_comment(spec, out))


def _array(x: Array) -> str:
    """A graph array's name in the generated code: X, Z2, O2, W2, b2, delta2, dO1, dW2, db2."""
    if x.kind in naming.BATCH_NORM_STEMS:
        return naming.batch_norm(x.kind, x.layer)
    return {"X": lambda k: naming.X, "Y": lambda k: naming.Y, "Z": naming.Z, "O": naming.O, "A": naming.A,
            "W": naming.W, "b": naming.b, "delta": naming.delta, "dO": naming.dO,
            "dW": naming.dW, "db": naming.db}[x.kind](x.layer)


#: How the notes write each array kind in a comment (layer k): Z^k, δ^k, ∂L/∂W^k, ...
_NOTES = {"X": "X", "Y": "Y", "Z": "Z^{k}", "O": "O^{k}", "A": "g(Z^{k})", "W": "W^{k}", "b": "b^{k}",
          "delta": "δ^{k}", "dO": "∂L/∂O^{k}", "dW": "∂L/∂W^{k}", "db": "∂L/∂b^{k}",
          "mu": "μ^{k}", "var": "(σ^{k})²", "Xhat": "X̂^{k}", "Zn": "Z̃^{k}", "gamma": "γ^{k}",
          "beta": "β^{k}", "dZn": "∂L/∂Z̃^{k}", "dgamma": "∂L/∂γ^{k}", "dbeta": "∂L/∂β^{k}"}

#: Batch norm's constants in the trainer (PyTorch's nn.BatchNorm1d defaults), by the
#: derivation's symbol: ε under the square root, and the running statistics' momentum.
BN_EPS, BN_MOMENTUM = "BN_EPS", "BN_MOMENTUM"

#: The batch means the derived ∂L/∂z_i is written with, as NumPy computes them over the rows
#: of G = ∂L/∂Z̃^k and X̂^k: their definitions, mean(g) = (1/n) Σ_m g_m and mean(g x̂).
_BATCH_MEANS = {batchnorm.mean_g: ("mean_g", "{G}.mean(axis=0)"),
                batchnorm.mean_gx: ("mean_gxhat", "({G} * {Xhat}).mean(axis=0)")}

#: The running statistics' update in the trainer (a helper of the template).
UPDATE_RUNNING = "_update_running"


def _notes(x: Array, L: int) -> str:
    """An array as the notes write it (the output layer's O^L is Ŷ)."""
    if x.layer == L and x.kind in ("O", "dO"):
        return "Ŷ" if x.kind == "O" else "∂L/∂Ŷ"
    return _NOTES[x.kind].format(k=x.layer)


def _buffer(name: str) -> str:
    """The preallocated array of a node in the step's buffers: B["Z1"]."""
    return f"{naming.BUFFERS}[{_q(name)}]"


class _NumpyStatements:
    """Prints a graph's ops as NumPy statements, grouped in commented blocks.

    Plain printing (``forward``, ``loss_and_gradients``) writes one expression per array,
    commented with the notes' equation it computes (from the vectorised form's text, so the
    comment and the module docstring agree), and leaves the updates out.  ``buffered`` is
    the fused ``sgd_step`` printing: every product written into its preallocated buffer
    (``np.matmul(..., out=B[...])``), biases added and g' applied in place, and each
    parameter updated in place where the graph's Update op stands (right after δ^k W^kᵀ
    has used W^k): no gradient dict, no temporary the size of a weight matrix; its comments
    only name what each statement computes (the equations are the plain printing's)."""

    def __init__(self, w: _Writer, spec: Spec, pieces: list[forms.LayerPieces],
                 out: forms.OutputPieces, equations: dict[str, str], buffered: bool = False):
        self.w, self.spec, self.pieces, self.out, self.buffered = w, spec, pieces, out, buffered
        self.L = spec.depth
        self.blocks: list[Block] = []
        self.pending: list[str] = []  # the forward statements of the layer being printed
        self.sum: dict[Array, str] = {}  # plain printing: Z^k's right side before its activation
        self.equations = equations  # the notes' matrix equations by left side, for the comments

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

    def notes(self, x: Array) -> str:
        return _notes(x, self.L)

    def equation(self, x: Array, lhs: str | None = None) -> str:
        """``δ^2 = (1/n) (Ŷ - Y)``: the vectorised form's equation for x; buffered: x's name."""
        name = self.notes(x)
        lhs = name if lhs is None else f"{name} = {lhs}"
        return lhs if self.buffered else f"{lhs} = {self.equations[name]}"

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
        summed = op.inp in self.sum  # Z^k's sum is still to be written (not after a batch norm)
        if summed:
            self.pending.append(f"{z} = {self.sum.pop(op.inp)}")
        act = z if p.identity else f"{naming.activation(p.activation)}({z})"
        where = ", the output layer" if op.layer == self.L else ""
        if op.out.kind == "A":  # a residual layer: its block ends with the skip (fw_add_skip)
            self.pending.append(f"{_array(op.out)} = {act}")
            return
        comment = f"layer {op.layer} ({p.activation}{where})"
        if not self.buffered:
            comment += f": {self.equation(op.inp) + ', ' if op.inp.kind == 'Z' else ''}{self.equation(op.out)}"
        self.blocks.append(Block(comment, self.pending + [f"{_array(op.out)} = {act}"]))
        self.pending = []

    def fw_add_skip(self, op: AddSkip) -> None:
        """O^k = A^k + O^{k-1}: the skip of a residual layer (A^k = g(Z^k) kept for g')."""
        k = op.layer
        comment = f"layer {k} ({self.pieces[k - 1].activation}, residual)"
        if not self.buffered:
            comment += f": {self.equation(Array('Z', k)) + ', ' if k not in self.spec.batch_norm_layers else ''}" \
                       f"{self.equation(op.out)}"
        self.blocks.append(Block(comment, self.pending + [f"{_array(op.out)} = {_array(op.inp)} + {_array(op.skip)}"]))
        self.pending = []

    def fw_batch_norm(self, op: BatchNorm) -> None:
        """Z^k's block, then μ^k, (σ^k)² (the batch's in training, the running ones in eval
        mode), X̂^k and Z̃^k printed from the definitions in :mod:`~backprop.derive.batchnorm`;
        the fused step (always training) updates the running statistics as PyTorch does."""
        k, zk = op.layer, _array(op.inp)
        if not self.buffered:
            self.pending.append(f"{zk} = {self.sum.pop(op.inp)}")
        comment = f"layer {k}: {self.equation(op.inp)}" if not self.buffered else f"layer {k}"
        self.blocks.append(Block(comment, self.pending))
        self.pending = []
        mu, var, xhat, zn = (_array(x) for x in (op.mean, op.var, op.xhat, op.out))
        stats = f"{mu}, {var} = {zk}.mean(axis=0), {zk}.var(axis=0)"
        if self.buffered:
            lines = [stats, _running_update(k)]
        else:
            running = ", ".join(f"params[{_q(naming.running(s, k))}]" for s in ("mean", "var"))
            lines = ["if training:  # the batch's own statistics over the rows",
                     f"    {stats}", "else:  # eval mode: the running statistics kept in params",
                     f"    {mu}, {var} = {running}"]
        z_k = sympy.Symbol("z_k", real=True)
        names = {z_k: zk, batchnorm.mu: mu, batchnorm.var: var, batchnorm.eps: BN_EPS,
                 batchnorm.xhat_i: xhat, batchnorm.gamma: _array(op.gamma), batchnorm.beta: _array(op.beta)}
        for target, expr in ((xhat, (z_k - batchnorm.mu) / batchnorm.std),
                             (zn, batchnorm.gamma * batchnorm.xhat_i + batchnorm.beta)):
            temporaries, text = self.w.expression(expr, names, zk)
            lines += temporaries + [f"{target} = {text}"]
        if self.buffered:
            comment = (f"batch norm, layer {k}: the batch's {self.notes(op.mean)}, {self.notes(op.var)} "
                       f"(the running ones updated), {self.notes(op.xhat)}, {self.notes(op.out)}")
        else:
            comment = (f"batch norm, layer {k}: {self.equation(op.mean)}, {self.equation(op.var)} in "
                       f"training, else the running ones; {self.equation(op.xhat)}, {self.equation(op.out)}")
        self.blocks.append(Block(comment, lines))

    # -- backward --------------------------------------------------------------------------
    def bw_loss(self, op: LossBackward) -> None:
        L, spec, last = self.L, self.spec, self.pieces[-1]
        names = {y: naming.Y, yhat: naming.O(L), z: naming.Z(L), n_rows: naming.N_ROWS}
        if op.fused:
            lines, text = self.w.expression(self.out.delta, names, naming.Z(L))
            how = f"the output layer ({last.activation} with {spec.loss}; 1/n: the mean over rows)"
            self.blocks.append(Block(f"{self.equation(op.out, '∂L/∂' + self.notes(Array('Z', L)))}: {how}",
                                     lines + [f"{_array(op.out)} = {text}"]))
        else:
            lines, text = self.w.expression(self.out.dL_dO, names, naming.O(L))
            self.blocks.append(Block(f"{self.notes(op.out)}: loss {spec.loss} (1/n: the mean over rows)",
                                     lines + [f"{_array(op.out)} = {text}"]))

    def bw_matmul(self, op: MatMul) -> None:
        target = _array(op.out)
        if op.transpose == "left":  # ∂L/∂W^k = O^{k-1}ᵀ δ^k
            rhs = self.matmul(f"{_array(op.left)}.T", _array(op.right), target)
            comment = self.equation(op.out) + (", into its buffer" if self.buffered else "")
        else:  # ∂L/∂O^{k-1} = δ^k W^kᵀ: what layer k sends back
            rhs = self.matmul(_array(op.left), f"{_array(op.right)}.T", target)
            sender = op.right.layer
            comment = (f"{self.notes(op.out)} {'+' if op.accumulate else ''}= {self.notes(op.left)} "
                       f"{self.notes(op.right)}ᵀ: "
                       f"what layer {sender} sends back"
                       + (f" (before {self.notes(op.right)} changes)" if self.buffered else ""))
        if op.accumulate:
            rhs = rhs.replace(f", out={_buffer(target)}", "")
        self.blocks.append(Block(comment, [f"{target} {'+=' if op.accumulate else '='} {rhs}"]))

    def bw_skip(self, op: SkipBackward) -> None:
        """∂L/∂O^{k-1} receives ∂L/∂O^k unchanged through layer k's skip: a copy (its
        buffer in the step), since ∂L/∂O^k is multiplied by g' in place afterwards."""
        target, source = _array(op.out), _array(op.grad)
        comment = (f"{self.notes(op.out)} {'+' if op.accumulate else ''}= {self.notes(op.grad)}: "
                   f"what layer {op.layer}'s skip sends back, unchanged")
        if op.accumulate:
            lines = [f"{target} += {source}"]
        elif self.buffered:
            lines = [f"{target} = {_buffer(target)}", f"{target}[...] = {source}"]
        else:
            lines = [f"{target} = {source}.copy()"]
        self.blocks.append(Block(comment, lines))

    def bw_sum_rows(self, op: SumRows) -> None:
        self.blocks.append(Block(self.equation(op.out),
                                 [f"{_array(op.out)} {'+=' if op.accumulate else '='} {_array(op.inp)}.sum(axis=0)"]))

    def bw_sum_rows_product(self, op: SumRowsProduct) -> None:
        rhs = f"({_array(op.left)} * {_array(op.right)}).sum(axis=0)"
        self.blocks.append(Block(self.equation(op.out), [f"{_array(op.out)} {'+=' if op.accumulate else '='} {rhs}"]))

    def bw_batch_norm(self, op: BatchNormBackward) -> None:
        """δ^k from G = ∂L/∂Z̃^k: the derived ∂L/∂z_i (:func:`batchnorm.derivation`) printed
        with layer k's arrays for one node's symbols, its batch means computed first."""
        k, G, xhat = op.layer, _array(op.grad), _array(op.xhat)
        names = {batchnorm.g_i: G, batchnorm.xhat_i: xhat, batchnorm.gamma: _array(op.gamma),
                 batchnorm.var: _array(op.var), batchnorm.eps: BN_EPS}
        lines = []
        for symbol, (stem, definition) in _BATCH_MEANS.items():
            names[symbol] = f"{stem}{k}"
            lines.append(f"{stem}{k} = {definition.format(G=G, Xhat=xhat)}")
        temporaries, text = self.w.expression(batchnorm.derivation().dz, names, G)
        lines += temporaries + [f"{_array(op.out)} {'+=' if op.accumulate else '='} {text}"]
        comment = (f"{self.equation(op.out)}: layer {k}'s batch norm, derived over the batch "
                   "(every row's δ reads the whole batch)")
        self.blocks.append(Block(comment, lines))

    def bw_activation(self, op: ActivationBackward) -> None:
        k = op.layer
        p = self.pieces[k - 1]
        d_o, o, zk, delta = _array(op.grad), _array(op.output), _array(op.inp), _array(op.out)
        assign = "+=" if op.accumulate else "="
        if p.rowwise is not None:
            lines = [f"{delta} {assign} {naming.backward(p.activation)}({o}, {d_o})"]
            how = f"through the {p.activation} Jacobian"
        elif p.derivative is None:
            lines, how = [f"{delta} {assign} {d_o}"], f"{p.activation}: g' = 1"
        else:
            arg = o if p.var == a else zk
            g = f"{naming.derivative(p.activation)}({arg})"
            if self.buffered and not op.accumulate:
                lines = [f"{d_o} *= {g}", f"{delta} = {d_o}"]
                how = f"{p.activation}: {d_o} times g'({arg}) in place"
            else:
                lines = [f"{delta} {assign} {d_o} * {g}"]
                how = f"{p.activation}: g' written with {op.output.kind if arg == o else 'Z'}^{k}"
        lhs = None if op.out.kind == "dZn" else "∂L/∂" + self.notes(op.inp)  # ∂L/∂Z̃^k names itself
        comment = f"{self.equation(op.out, lhs)}: layer {k}, {how}"
        self.blocks.append(Block(comment, lines))

    def bw_update(self, op: Update) -> None:
        param, g = _array(op.out), _array(op.grad)
        if op.out.kind == "W":
            lines = [f"{g} *= {naming.LR}", f"{param} -= {g}"]
        else:
            lines = [f"{param} -= {naming.LR} * {g}"]
        name = self.notes(op.out)
        self.blocks.append(Block(f"{name} <- {name} - η {self.notes(op.grad)}, in place", lines))


#: Which method prints each op kind: one entry per kind (a new op is one method and one entry).
_FORWARD = {MatMul: _NumpyStatements.fw_matmul, AddBias: _NumpyStatements.fw_add_bias,
            Activate: _NumpyStatements.fw_activate, BatchNorm: _NumpyStatements.fw_batch_norm,
            AddSkip: _NumpyStatements.fw_add_skip,
            Loss: lambda self, op: None}
_BACKWARD = {LossBackward: _NumpyStatements.bw_loss, MatMul: _NumpyStatements.bw_matmul,
             SumRows: _NumpyStatements.bw_sum_rows, ActivationBackward: _NumpyStatements.bw_activation,
             SumRowsProduct: _NumpyStatements.bw_sum_rows_product,
             BatchNormBackward: _NumpyStatements.bw_batch_norm, Update: _NumpyStatements.bw_update,
             SkipBackward: _NumpyStatements.bw_skip}


def _q(name: str) -> str:
    """A validated identifier as a double-quoted string literal: "W1"."""
    return f'"{naming.identifier(name)}"'


def _unpack(names: list[str]) -> str:
    """``gamma1, beta1 = params["gamma1"], params["beta1"]``."""
    return f"{', '.join(names)} = {', '.join(f'params[{_q(n)}]' for n in names)}"


def _running_update(k: int) -> str:
    """The statement that moves layer k's running statistics toward the batch's μ^k, (σ^k)²."""
    mu, var = naming.batch_norm("mu", k), naming.batch_norm("var", k)
    return f"{UPDATE_RUNNING}(params, {int(k)}, {mu}, {var}, {naming.N_ROWS})"


def _batch_norm_nodes(k: int, normed: list[int]) -> tuple[str, ...]:
    """What a batch-normalised layer k computes between Z^k and O^k: μ, σ², X̂, Z̃ (none if plain)."""
    return tuple(naming.batch_norm(kind, k) for kind in ("mu", "var", "Xhat", "Zn")) if k in normed else ()


def _pairs(names: list[str]) -> str:
    """'"W1": dW1, "b1": db1' style dict bodies."""
    return ", ".join(names)


def _assign(targets: list[str], value: str) -> list[str]:
    """``a, b = value`` as lines of at most WIDTH - BODY, the targets bracketed where too long."""
    plain = f"{', '.join(targets)} = {value}"
    return [plain] if len(plain) <= WIDTH - BODY else wrap_code(f"({', '.join(targets)}) = {value}")


def _docstring_lines(text: str, indent: str) -> list[str]:
    """One line of the module docstring (an equation, the title) over lines of WIDTH at most,
    continuation lines indented four more."""
    return textwrap.wrap(docstring_text(text), WIDTH, initial_indent=indent, subsequent_indent=indent + "    ",
                         break_long_words=False, break_on_hyphens=False)


def trainer_context(spec: Spec, dtype: str = "float64", command: str | None = None, cli: bool = True,
                    engine: str = "NumPy", engine_modules: tuple[str, ...] = ()) -> dict:
    """Everything the templates place, as finished strings and lists of strings (each line
    of code, comment and docstring at most WIDTH characters where it is placed); ``cli``:
    include the runtime (model files, the CSV contract and the command line)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    for name in spec.activations:
        naming.identifier(name)
    naming.identifier(spec.loss)
    L = spec.depth
    p = _Printing(spec, BackpropPrinter)
    graph, eqs = p.graph, p.eqs
    layers = range(1, L + 1)
    normed = spec.batch_norm_layers
    param_names = list(spec.shapes())
    node_names = [n for k in layers for n in (naming.Z(k), *_batch_norm_nodes(k, normed),
                                              *((naming.A(k),) if k in spec.residual_layers else ()), naming.O(k))]
    row_names = [n for n in node_names if not n.startswith(("mu", "var"))]  # one value per row
    if command is None:
        command = "backprop.codegen.render_trainer()"
    equations = [line for lhs, rhs in eqs for line in _docstring_lines(f"{lhs} = {rhs}", "    ")]
    unpack = [f"{naming.W(k)}, {naming.b(k)} = params[{_q(naming.W(k))}], params[{_q(naming.b(k))}]"
              if spec.bias else f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in layers]
    unpack += [_unpack([naming.batch_norm("gamma", k), naming.batch_norm("beta", k)]) for k in normed]
    mode = ", training=training" if normed else ""  # nodes() and loss() pass their mode on
    step = scalar.scalar_step(spec) if scalar.wanted(spec) else None
    return {
        "backprop_version": backprop_version(),
        "sympy_version": sympy.__version__,
        # a printable command over lines as a shell reads it; an escaped one (ascii()) whole
        "command": command_lines(command) if comment_text(command) == command else [comment_text(command)],
        "digest": spec.digest(),
        "spec_lines": spec.to_toml().splitlines(),
        "title": textwrap.wrap(f'"""{engine} trainer for the {docstring_text(spec.describe())}.', WIDTH,
                               break_long_words=False, break_on_hyphens=False),
        "equations": equations,
        "cli": cli,
        # what a --no-cli module imports (numba calls BLAS through SciPy but never imports it)
        "engine_imports": " and ".join(["NumPy", *(m for m in engine_modules if m != "scipy")]),
        "layers": repr(tuple(spec.layers)),
        "activations": "(" + ", ".join(_q(a) for a in spec.activations) + ("," if spec.depth == 1 else "") + ")",
        "loss": _q(spec.loss),
        "loss_name": spec.loss,
        "bias": repr(bool(spec.bias)),
        **init_schemes.trainer_context(),  # SCHEMES, the init functions, from the table
        "kind": KINDS.get(spec.loss, REGRESSION)[0],
        "kind_doc": KINDS.get(spec.loss, REGRESSION)[1],
        "dtype": dtype,
        "first_weights": naming.W(1),
        "output": naming.O(L),
        "param_unpack": unpack,
        "backward_unpack": [f"{naming.W(k)} = params[{_q(naming.W(k))}]" for k in range(2, L + 1)]
        + [_unpack([naming.batch_norm("gamma", k)]) for k in normed],
        "forward_return": wrap_code(f"return ({', '.join(node_names)}) if every_node else {naming.O(L)}"),
        "node_unpack": _assign(node_names, f"forward(params, X, every_node=True{mode})"),
        "grads_node_unpack": _assign(node_names, "forward(params, X, every_node=True"
                                     + (", training=True)" if normed else ")")),
        "nodes_return": wrap_code("return {" + _pairs([f"{_q(n)}: {n}" for n in row_names]) + "}"),
        "batch_norm": repr(tuple(normed)) if normed else "",
        "bn_eps": f"{BN_EPS} = {batchnorm.EPS!r}",
        "bn_momentum": f"{BN_MOMENTUM} = {batchnorm.MOMENTUM!r}",
        "mode_arg": ", training=False" if normed else "",
        "running_updates": [_running_update(k) for k in normed],
        "loss_args": f"{naming.Y}, {naming.Z(L)}, {naming.O(L)}",
        "grads_return": wrap_code("return L, {" + _pairs([f"{_q(n)}: d{n}" for n in param_names]) + "}"),
        "step_unpack": unpack,
        "step_forward_blocks": p.statements(buffered=True).forward(graph.forward),
        "step_backward_blocks": p.statements(buffered=True).backward(graph.backward(updates=True)),
        "scalar": step,
        "scalar_lines": [part for line in step.lines for part in wrap_code(line)] if step else [],
        "scalar_max_weights": scalar.MAX_WEIGHTS,
        **optimizer_context(spec),
        **p.maths(),
    }


class _Printing:
    """One trainer's printing: the derivation's pieces, graph and equations, and one writer
    (``printer``: the array module, NumPy's or a backend's) for every statement printed."""

    def __init__(self, spec: Spec, printer: type[BackpropPrinter]):
        self.spec, self.w = spec, _Writer(printer)
        self.pieces, self.out = forms.layer_pieces(spec), forms.output_pieces(spec)
        vform = vectorise(spec)  # one derivation serves the graph, the equations and the comments
        self.graph, self.eqs = vform.graph, vform.equations("text")

    def statements(self, buffered: bool = False) -> _NumpyStatements:
        return _NumpyStatements(self.w, self.spec, self.pieces, self.out, dict(self.eqs), buffered=buffered)

    def maths(self) -> dict:
        """The context entries whose text depends on the printer: the activation functions,
        the loss function, the plain forward and backward blocks and the import lines."""
        return {"functions": _activation_functions(self.w, self.pieces),
                "loss_function": _loss_function(self.w, self.spec, self.out),
                "forward_blocks": self.statements().forward(self.graph.forward),
                "backward_blocks": self.statements().backward(self.graph.backward()),
                "imports": self.w.printer.imports()}


def printed_maths(spec: Spec, printer: type[BackpropPrinter]) -> dict:
    """:func:`trainer_context`'s maths printed by another printer (a backend's, e.g.
    ``JaxTrainerPrinter``): the same derivation and graph, only the array module differs."""
    return _Printing(spec, printer).maths()


def render(template: str, context: dict) -> str:
    """Render one template of :data:`ENVIRONMENT` (a missing variable raises)."""
    return ENVIRONMENT.get_template(template).render(**context)
