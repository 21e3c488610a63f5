"""One gradient-descent update, shown number by number the way the notes do.

Prints the forward value of every node (z and O), the loss, every gradient as its chain
of factors (symbolic, then with the numbers filled in, then the product) and every updated
parameter, w_new = w_old - η ∂L/∂w.  The numbers come from the generated NumPy trainer (the
one `backprop generate` writes); the chain-rule values are evaluated independently from the
symbolic derivation, and a disagreement is reported on stderr.

--x and --y may repeat (one --y per --x): a batch step.  Each row's chain is shown, then the
mean of the rows' gradients (the loss of a batch is the mean over its rows) and the update
with that mean, exactly what the trainer's sgd_step does with those rows.

--y takes the target values, or for a classifier a class: with loss cce a class name of the
--params model file (or its index 0..n-1) becomes the one-hot target; with bce, 0/1 or one of
the model's two labels.

Parameters start as the notes' (every weight 1, every bias 0) unless --init or --params
says otherwise.  --params reads a model file (`backprop train --params-out`): with no network
flags its own network is used, and its standardisation is applied to the raw --x rows.
Plain {"W1": [[...]], "b1": [...], ...} files (W{k}[i-1][j-1] = w^k_ij, or the "params" of
a previous `step --json`) still load, for the network the flags name.

With --format latex the same step is align* blocks (rows broken to fit an A4 page);
--standalone makes it a complete article that compiles with pdflatex.

examples:
  backprop step --layers 2-2-1 --activations linear --loss se --x 80,8 --y 5 --init ones --lr 0.1
  backprop step --x 80,8 --x 60,9 --y 5 --y 6 --init ones          # a batch of two rows
  backprop step --params iris.json --x 5.1,3.5,1.4,0.2 --y setosa   # a model file, a class label
  backprop step --x 80,8 --y 5 --format latex --standalone > step.tex
  backprop step --spec net.toml --params p.json --x 0.05,0.10 --y 0.01,0.99 --lr 0.5 --json
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import sympy

from backprop.codegen import load_trainer
from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive import Spec, derive
from backprop.derive import notation as nt
from backprop.derive.budget import MAX_TERMS, approx, check_per_parameter, formula_terms
from backprop.derive.report import chain_text, loss_line
from backprop.derive.teaching import A4_WIDTH, block_rows, chain_rows, standalone
from backprop.train.model import Model, load_model

from ..common import add_spec_arguments, nonnegative_int, print_json, spec_from_args

NAME = "step"
HELP = "one gradient-descent update on one row or a few, every number shown"
ORDER = 35

SCHEMES = ("ones", "zeros", "glorot", "he")
FORMATS = ("text", "latex", "json")
#: The notes' learning rate for a hand-worked step (train's default is 0.01: see --lr's help).
DEFAULT_LR = 0.1
#: Relative tolerance between the trainer's gradient and the chain rule's.
AGREE_RTOL = 1e-6
#: Most --x rows in one step: every row's chain is printed.
MAX_ROWS = 100
#: The flags that name a network; with none of them, a model file's own network is used.
NETWORK_FLAGS = ("spec", "layers", "activations", "loss", "no_bias")


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--x", required=True, action="append", metavar="V,V,...",
                        help="an input row, e.g. 80,8 (one starting with a minus: --x=-1,2); repeat for a "
                        "batch, one --y per --x")
    parser.add_argument("--y", required=True, action="append", metavar="V,...|CLASS",
                        help="its target(s), e.g. 5; for cce a class (a model file's name, e.g. setosa, "
                        "or an index 0..n-1) is its one-hot vector; for bce 0/1 or one of the model's two labels")
    parser.add_argument("--lr", type=float, default=None, metavar="η",
                        help=f"learning rate (default {DEFAULT_LR}, the notes' hand-worked step; "
                        "backprop train defaults to 0.01, a safer rate for the many updates of a "
                        "whole training run)")
    parser.add_argument("--params", metavar="FILE",
                        help="starting parameters: a model file from 'backprop train --params-out' (its "
                        "network and standardisation are used) or JSON {\"W1\": [[...]], \"b1\": [...], ...}")
    parser.add_argument("--init", choices=SCHEMES, help="starting parameters by scheme (default ones: w = 1, b = 0)")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="seed for --init glorot/he")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default text); latex: align* blocks")
    parser.add_argument("--json", action="store_const", const="json", dest="format",
                        help="machine-readable output, same as --format json (a number that "
                        "overflowed to inf or NaN is null, and its place is listed in \"non_finite\")")
    parser.add_argument("--standalone", action="store_true",
                        help="with --format latex, a complete A4 article (compiles with pdflatex)")


# -- input ----------------------------------------------------------------------------------
@dataclass
class Row:
    """One --x/--y pair: as typed, as the network sees it (standardised or not), the class named."""

    typed: list[float]
    x: list[float]
    y: list[float]
    label: str | None = None  # "class setosa, one-hot", "class 1, one-hot", "class malignant"; None: values


@dataclass
class Problem:
    """What one step works on: the network, its rows, the learning rate, the standardisation."""

    spec: Spec
    rows: list[Row]
    lr: float
    lr_default: bool = False
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def batch(self) -> bool:
        return len(self.rows) > 1

    def eta(self) -> str:
        """η as the header states it: 0.1 (default) when --lr was not given."""
        return fmt(self.lr) + (" (default)" if self.lr_default else "")


def parse_row(flag: str, text: str, expected: int, what: str) -> list[float]:
    """'80,8' -> [80.0, 8.0], with exactly ``expected`` finite numbers."""
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise UserError(f"{flag}: {part.strip()!r} is not a number; write e.g. {flag} 80,8") from None
        if not math.isfinite(value):
            raise UserError(f"{flag}: {part.strip()} is not a finite number")
        values.append(value)
    if len(values) != expected:
        raise UserError(f"{flag} has {len(values)} value(s) but the network has {expected} {what}")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def class_table(spec: Spec, classes: list[str] | None) -> dict[str, int]:
    """The --y spellings that name a class, and the class's index (its output for cce, its
    0/1 for bce): the model's class names; for cce also the index 0..n-1 where no name reads
    as a number (so "--y 1" is never ambiguous); for bce also 0 and 1.  Empty for regression."""
    n = spec.n_outputs
    if spec.loss == "cce" and n > 1:  # one output: a single number is the full target
        indices = {} if classes and any(_is_number(c) for c in classes) else {str(i): i for i in range(n)}
        return {**indices, **{c: i for i, c in enumerate(classes or [])}}  # a name wins
    if spec.loss == "bce" and n == 1:
        return {"0": 0, "1": 1, **{c: i for i, c in enumerate(classes or [])}}
    return {}


def check_classes(spec: Spec, classes: list[str] | None, source: str) -> list[str] | None:
    """The model's class names, if they fit its outputs (cce: one per output, bce: two)."""
    if not classes or spec.loss not in ("cce", "bce"):
        return None
    expected = spec.n_outputs if spec.loss == "cce" else 2
    if len(classes) != expected:
        raise UserError(f"params file {source} names {len(classes)} classes for a {spec.loss} network "
                        f"with {spec.n_outputs} output(s); expected {expected}")
    return classes


def _spellings(table: dict[str, int], classes: list[str] | None) -> str:
    """'setosa, versicolor, virginica, 0..2' for an error message (a long list shortened)."""
    names = list(classes or [])
    rest = [key for key in table if key not in names]
    return ", ".join((names if len(names) <= 12 else names[:10] + ["…"])
                     + ([f"{rest[0]}..{rest[-1]}"] if len(rest) > 2 else rest))


def parse_target(text: str, spec: Spec, table: dict[str, int], classes: list[str] | None) -> tuple[list[float], str | None]:
    """--y as (target vector, how the class was named): a class of ``table`` or the values."""
    key = text.strip()
    if key in table:
        i = table[key]
        name = f"class {classes[i] if classes else i}"
        if spec.loss == "bce":  # the 0/1 target; named when the model's labels say more
            return [float(i)], (name if classes and classes != ["0", "1"] else None)
        return np.eye(spec.n_outputs)[i].tolist(), f"{name}, one-hot"
    try:
        return parse_row("--y", text, spec.n_outputs, "outputs"), None
    except UserError:
        if not table:
            raise
        n = spec.n_outputs
        raise UserError(f"--y {key!r} is neither a class ({_spellings(table, classes)}) nor {n} target "
                        f"value{'s' if n > 1 else ''}; give one of those classes or {n} number{'s' if n > 1 else ''}"
                        ) from None


def network_given(args) -> bool:
    return any(getattr(args, flag, None) for flag in NETWORK_FLAGS)


def load_start(args) -> tuple[Spec, Model | None]:
    """The network and the model file (None without --params): the flags' network, or with
    no network flags the model file's own (a plain params file then means the notes' 2-2-1)."""
    if args.params and not network_given(args):
        model = load_model(args.params, default=spec_from_args(args))  # plain file: notes' net
        check_size(model.spec)
        return model.spec, model
    spec = spec_from_args(args)
    check_size(spec)  # before reading a row of 100 000 inputs or a params file that size
    return spec, (load_model(args.params, spec) if args.params else None)


def check_size(spec: Spec, rows: int = 1) -> None:
    """Refuse a network (or a batch) whose printed chains would not fit, before any work."""
    check_per_parameter(spec, hint="step shows every parameter's chain; for a network this "
                        "size use 'backprop generate' and the trainer's sgd_step")
    terms = formula_terms(spec) * rows
    if rows > MAX_ROWS or terms > MAX_TERMS:
        raise UserError(f"{rows} rows of the {spec.describe()} would print about {approx(terms)} terms "
                        f"(at most {MAX_ROWS} rows and {MAX_TERMS:,} terms); give fewer --x rows, "
                        "or train on them with 'backprop train'")


def read_problem(args, spec: Spec, model: Model | None) -> Problem:
    """The rows (standardised with the model's mean/std), their targets and η from the flags."""
    if len(args.x) != len(args.y):
        raise UserError(f"--x is given {len(args.x)} time(s) and --y {len(args.y)}; give one --y per --x row")
    check_size(spec, len(args.x))
    if args.lr is not None and not math.isfinite(args.lr):
        raise UserError("--lr must be a finite number")
    classes = check_classes(spec, model.classes, args.params) if model is not None else None
    table = class_table(spec, classes)
    rows = []
    for x_text, y_text in zip(args.x, args.y):
        typed = parse_row("--x", x_text, spec.n_inputs, "inputs")
        y, label = parse_target(y_text, spec, table, classes)
        x = model.scale(np.array([typed]))[0].tolist() if model is not None else typed
        rows.append(Row(typed, x, y, label))
    lr = DEFAULT_LR if args.lr is None else args.lr
    scaled = model is not None and model.standardised
    return Problem(spec, rows, lr, args.lr is None, model.mean if scaled else None, model.std if scaled else None)


# -- the numbers ------------------------------------------------------------------------------
def symbol_values(spec: Spec, x, y, params, nodes) -> dict[sympy.Symbol, float]:
    """Numbers for every symbol of the notes' notation: x, y, w, b, z, O (ŷ)."""
    L = spec.depth
    values = {nt.feature(j): x[j - 1] for j in range(1, spec.n_inputs + 1)}
    values.update({nt.target(j): y[j - 1] for j in range(1, spec.n_outputs + 1)})
    for k in range(1, L + 1):
        W = params[f"W{k}"]
        for i in range(1, spec.layers[k - 1] + 1):
            for j in range(1, spec.layers[k] + 1):
                values[nt.weight(k, i, j)] = float(W[i - 1, j - 1])
        for j in range(1, spec.layers[k] + 1):
            values[nt.bias(k, j)] = float(params[f"b{k}"][j - 1]) if spec.bias else 0.0
            values[nt.preactivation(k, j)] = float(nodes[f"Z{k}"][0, j - 1])
            values[nt.output(k, j, L)] = float(nodes[f"O{k}"][0, j - 1])
    return values


def _number(expr: sympy.Expr, values: dict) -> float:
    value = sympy.sympify(expr, strict=True).xreplace(values).doit()
    return float(value) if value.is_extended_real else float("nan")  # -y/ŷ at ŷ = 0: undefined


def _as_sympy(values: dict) -> dict:
    return {s: sympy.Float(v) for s, v in values.items()}


def fmt(value: float) -> str:
    """Numbers as people write them: 88, -3008.6, 0.0591458."""
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def factor(value: float) -> str:
    """fmt() for a number substituted after × or -: (-0.0226) in parentheses when negative."""
    text = fmt(value)
    return f"({text})" if text.startswith("-") else text


def chain_values(gradient, values) -> list[list[float]]:
    """The numeric value of every factor of every chain path."""
    exact = _as_sympy(values)
    return [[_number(f.value, exact) for f in path] for path in gradient.chain]


def batch_step(spec: Spec, X, Y, lr: float, params: dict[str, np.ndarray]) -> dict:
    """One gradient-descent step on the rows X, Y: each row's nodes, loss and gradients, the
    batch's (the mean over rows) loss and gradients, and the parameters after sgd_step."""
    trainer = load_trainer(spec)
    params = {name: np.array(value, dtype=trainer.DTYPE) for name, value in params.items()}
    X, Y = np.array(X, dtype=trainer.DTYPE), np.array(Y, dtype=trainer.DTYPE)
    rows = []
    for n in range(X.shape[0]):
        x, y = X[n:n + 1], Y[n:n + 1]
        nodes = trainer.nodes(params, x)
        loss, grads = trainer.loss_and_gradients(params, x, y)
        rows.append({"nodes": nodes, "loss": loss, "grads": grads, "output": nodes[f"O{spec.depth}"][0]})
    loss, grads = trainer.loss_and_gradients(params, X, Y)
    updated = {name: value.copy() for name, value in params.items()}
    trainer.sgd_step(updated, X, Y, lr)
    return {"trainer": trainer, "params": params, "rows": rows, "loss": loss, "grads": grads,
            "updated": updated, "loss_after": trainer.loss(updated, X, Y)}


def step(spec: Spec, x, y, lr: float, params: dict[str, np.ndarray]) -> dict:
    """One row's update: :func:`batch_step` of one row, with its nodes and output on top."""
    result = batch_step(spec, [x], [y], lr, params)
    return {**result, "nodes": result["rows"][0]["nodes"], "output": result["rows"][0]["output"]}


def row_values(problem: Problem, result: dict) -> list[dict]:
    """symbol_values of every row."""
    return [symbol_values(problem.spec, row.x, row.y, result["params"], r["nodes"])
            for row, r in zip(problem.rows, result["rows"])]


# -- output -------------------------------------------------------------------------------------
def _non_finite(value, where: str) -> list[str]:
    """Dotted places ("loss", "grads.W1", "rows.0.grads.W1") of values that overflowed."""
    if isinstance(value, dict):
        return [p for key, part in value.items() for p in _non_finite(part, f"{where}.{key}" if where else key)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [p for n, part in enumerate(value) for p in _non_finite(part, f"{where}.{n}")]
    if value is None or isinstance(value, str) or isinstance(value, bool):
        return []
    return [] if np.isfinite(np.asarray(value, dtype=float)).all() else [where]


def as_json(result: dict, problem: Problem | None = None) -> dict:
    """The step as strict JSON: "loss", "grads" (the mean over the rows for a batch), "params"
    (after the update), "loss_after", "lr", "rows" (each row's x as the network saw it, y,
    loss, output, nodes, grads) and, for one row, its "output" and "nodes" at the top.  A value
    that overflowed (inf, NaN) is null, and the places holding one are listed under
    "non_finite" (present only then), e.g. ["loss", "grads.W1"]."""
    rows = [{"loss": float(r["loss"]), "output": r["output"].tolist(),
             "nodes": {name: value[0].tolist() for name, value in r["nodes"].items()},
             "grads": {name: value.tolist() for name, value in r["grads"].items()}}
            for r in result["rows"]]
    if problem is not None:
        for out, row in zip(rows, problem.rows):
            out.update({"x": row.x, "y": row.y} | ({"x_raw": row.typed} if problem.mean is not None else {})
                       | ({"class": row.label} if row.label else {}))
    out = {"loss": float(result["loss"])}
    if len(rows) == 1:
        out.update(output=rows[0]["output"], nodes=rows[0]["nodes"])
    out.update({
        "grads": {name: value.tolist() for name, value in result["grads"].items()},
        "params": {name: value.tolist() for name, value in result["updated"].items()},
        "loss_after": float(result["loss_after"]),
        "rows": rows,
    })
    if problem is not None:
        out["lr"] = problem.lr
        if problem.mean is not None:
            out["standardise"] = {"mean": problem.mean.tolist(), "std": problem.std.tolist()}
    where = _non_finite(out, "")
    safe = files.json_safe(out)
    if where:
        safe["non_finite"] = where
    return safe


def _frac(p, num, den) -> str:
    return f"∂{p.text(num)}/∂{p.text(den)}"


def _row_heading(problem: Problem, p, n: int) -> list[str]:
    """'Row: x_i1 = 80, x_i2 = 8; y = 5', and the standardisation of a model file if any."""
    row = problem.rows[n]
    name = f"Row {n + 1} of {len(problem.rows)}" if problem.batch else "Row"
    raw = " (raw)" if problem.mean is not None else ""
    label = f" ({row.label})" if row.label else ""
    lines = [f"{name}: " + ", ".join(f"{p.text(nt.feature(j))} = {fmt(v)}" for j, v in enumerate(row.typed, 1))
             + raw + "; " + ", ".join(f"{p.text(nt.target(j))} = {fmt(v)}" for j, v in enumerate(row.y, 1)) + label]
    if problem.mean is not None:
        lines.append("x standardised with the model's mean/std, x = (x_raw - mean)/std:")
        lines += [f"  {p.text(nt.feature(j))} = ({fmt(v)} - {factor(m)})/{factor(s)} = {fmt(x)}"
                  for j, (v, m, s, x) in enumerate(zip(row.typed, problem.mean, problem.std, row.x), 1)]
    return lines


def _row_text(problem: Problem, derivation, n: int, r: dict, values: dict) -> tuple[list[str], list[str]]:
    """One row's heading, forward pass, loss and gradient chains; (lines, disagreements)."""
    spec, p, L = problem.spec, derivation.printer, problem.spec.depth
    lines = _row_heading(problem, p, n) + ["", "Forward pass (z = Σ w·O + b, O = g(z))"]
    for k in range(1, L + 1):
        for j in range(1, spec.layers[k] + 1):
            z_name, o_sym = p.text(nt.preactivation(k, j)), nt.output(k, j, L)
            o_name = p.text(o_sym) if k < L else f"{p.text(o_sym)} = O_{k}{j}"
            lines.append(f"  layer {k}: {z_name} = {fmt(values[nt.preactivation(k, j)]):<14} "
                         f"{o_name} = {fmt(values[o_sym])}")
    lines += ["", f"Loss  L = {p.text(derivation.net.loss)} = {fmt(r['loss'])}", "",
              "Gradients (chain rule, output layer first)"]
    where = f" (row {n + 1})" if problem.batch else ""
    problems = []
    for g in derivation.gradients:
        name, index = g.key
        number = float(r["grads"][name][index])
        paths, numbers = g.chain, chain_values(g, values)
        by_chain = sum(math.prod(path) for path in numbers)
        if not math.isclose(by_chain, number, rel_tol=AGREE_RTOL, abs_tol=1e-9 * (1 + abs(number))):
            problems.append(f"∂L/∂{g.name}{where}: trainer {number!r}, chain rule {by_chain!r}")
        head = f"  ∂L/∂{g.name} = "
        pad = " " * len(head)
        lines.append(head + " + ".join(" · ".join(_frac(p, f.numerator, f.denominator) for f in path)
                                       for path in paths))
        lines.append(pad[:-2] + "= " + " + ".join(" · ".join(f"[{p.text(f.value)}]" for f in path)
                                                  for path in paths))
        lines.append(pad[:-2] + "= " + " + ".join(" · ".join(f"[{fmt(v)}]" for v in path)
                                                  for path in numbers))
        lines.append(pad[:-2] + f"= {fmt(number)}")
    return lines, problems


def _mean_text(values: list[float]) -> str:
    """'(30096 + (-1234))/2': the rows' values summed, a negative one in parentheses."""
    return "(" + " + ".join([fmt(values[0])] + [factor(v) for v in values[1:]]) + f")/{len(values)}"


def as_text(problem: Problem, derivation, result: dict, values: list[dict]) -> tuple[list[str], list[str]]:
    """(lines to print, disagreements between the trainer and the chain rule)."""
    spec, n = problem.spec, len(problem.rows)
    what = (f"One batch gradient-descent step on {n} rows" if problem.batch else "One SGD update")
    lines, problems = [f"{what} of the {spec.describe()}, η = {problem.eta()}"], []
    for m, (r, v) in enumerate(zip(result["rows"], values)):
        row_lines, row_problems = _row_text(problem, derivation, m, r, v)
        lines += [""] + row_lines
        problems += row_problems
    if problem.batch:
        lines += ["", f"Mean over the {n} rows (the batch's loss is the mean of the rows' losses, "
                  "so its gradient is the mean of theirs)",
                  f"  L = {_mean_text([float(r['loss']) for r in result['rows']])} = {fmt(result['loss'])}"]
        for g in derivation.gradients:
            name, index = g.key
            each = [float(r["grads"][name][index]) for r in result["rows"]]
            mean = float(result["grads"][name][index])
            if not math.isclose(sum(each) / n, mean, rel_tol=AGREE_RTOL, abs_tol=1e-9 * (1 + abs(mean))):
                problems.append(f"∂L/∂{g.name}: batch {mean!r}, mean of the rows {sum(each) / n!r}")
            lines.append(f"  ∂L/∂{g.name} = {_mean_text(each)} = {fmt(mean)}")
    lines += ["", f"Update  w_new = w_old - η ∂L/∂w  (η = {fmt(problem.lr)})"]
    for g in derivation.gradients:
        name, index = g.key
        old, grad = float(result["params"][name][index]), float(result["grads"][name][index])
        new = float(result["updated"][name][index])
        lines.append(f"  {g.name} = {fmt(old)} - {factor(problem.lr)} × {factor(grad)} = {fmt(new)}")
    where = "Mean loss on these rows" if problem.batch else "Loss on this row"
    lines += ["", f"{where} after the update: {fmt(result['loss_after'])} (before: {fmt(result['loss'])})"]
    return lines, problems


def tex_number(value: float) -> str:
    """fmt() in LaTeX: 88, -3008.6, 1.2 \\times 10^{4}, \\infty."""
    if math.isnan(value):
        return r"\text{NaN}"
    if math.isinf(value):
        return r"\infty" if value > 0 else r"-\infty"
    mantissa, _, exponent = fmt(value).partition("e")
    return mantissa if not exponent else rf"{mantissa} \times 10^{{{int(exponent)}}}"


def tex_factor(value: float) -> str:
    """tex_number() after \\cdot or -: (-0.0226) in parentheses when negative."""
    text = tex_number(value)
    return f"({text})" if text.startswith("-") else text


def _pairs(equations: list[tuple[str, str]]) -> list[str]:
    """Two short equations per align* row, ``a &= 1,\\quad b = 2 \\\\`` (a second column pair
    would be pushed right by the long rows below)."""
    return [r",\quad ".join(f"{lhs} {'&' if n % 2 == 0 else ''}= {rhs}" for n, (lhs, rhs)
                            in enumerate(equations[m:m + 2])) + r" \\" for m in range(0, len(equations), 2)]


def _widest(p) -> str:
    return rf"\frac{{\partial L}}{{\partial {p.latex(nt.weight(1, 1, 1))}}}"  # the left column


def _row_latex(problem: Problem, derivation, n: int, r: dict, values: dict) -> list[str]:
    """One row as align* rows: the row, its standardisation, the forward pass, L, every δ,
    every gradient as its chain (names, factors, numbers, product)."""
    spec, p = problem.spec, derivation.printer
    L, exact, row = spec.depth, _as_sympy(values), problem.rows[n]
    pairs = [(p.latex(nt.feature(j)), tex_number(v)) for j, v in enumerate(row.typed, 1)]
    pairs += [(p.latex(nt.target(j)), tex_number(v)) for j, v in enumerate(row.y, 1)]
    label = f" ({' '.join(row.label.split())})" if row.label else ""  # a comment stays one line
    rows = [f"% the row{' (raw)' if problem.mean is not None else ''}{label}"] + _pairs(pairs)
    if problem.mean is not None:
        rows += ["% x standardised with the model's mean/std: x = (x_raw - mean)/std"]
        rows += _pairs([(p.latex(nt.feature(j)), rf"\frac{{{tex_number(v)} - {tex_factor(m)}}}{{{tex_number(s)}}}"
                         rf" = {tex_number(x)}")
                        for j, (v, m, s, x) in enumerate(zip(row.typed, problem.mean, problem.std, row.x), 1)])
    rows += ["% forward pass: z = sum of w O + b, O = g(z)"]
    rows += _pairs([(p.latex(s), tex_number(values[s])) for k in range(1, L + 1)
                    for j in range(1, spec.layers[k] + 1)
                    for s in (nt.preactivation(k, j), nt.output(k, j, L))])
    rows += block_rows([("L", f"{loss_line(derivation, tex=True)} = {tex_number(float(r['loss']))}")],
                       A4_WIDTH, _widest(p))
    rows += ["% deltas, output layer first"]
    rows += _pairs([(p.latex(s), tex_number(_number(derivation.resolved_delta(*nt.parse(s).indices), exact)))
                    for s in derivation.deltas])
    rows += ["% gradients: the chain rule, its factors, their values, the product"]
    for g in derivation.gradients:
        name, index = g.key
        names, _, symbolic = chain_text(g, tex=True).partition(" = ")
        numbers = " + ".join(r" \cdot ".join(rf"\left[{tex_number(v)}\right]" for v in path)
                             for path in chain_values(g, values))
        lhs = rf"\frac{{\partial L}}{{\partial {p.latex(g.parameter)}}}"
        rows += chain_rows(lhs, [names, symbolic, numbers, tex_number(float(r["grads"][name][index]))],
                           A4_WIDTH)
    return rows


def _tex_mean(values: list[float]) -> str:
    r"""\frac{1}{2}\left(30096 + (-1234)\right)."""
    terms = " + ".join([tex_number(values[0])] + [tex_factor(v) for v in values[1:]])
    return rf"\frac{{1}}{{{len(values)}}}\left({terms}\right)"


def _update_latex(problem: Problem, derivation, result: dict) -> list[str]:
    """The batch's mean (for several rows) and every update, as align* rows."""
    p, n = derivation.printer, len(problem.rows)
    rows = []
    if problem.batch:
        rows += [f"% the mean over the {n} rows: the batch's loss and gradients"]
        means = [("L", f"{_tex_mean([float(r['loss']) for r in result['rows']])} = {tex_number(float(result['loss']))}")]
        for g in derivation.gradients:
            name, index = g.key
            each = [float(r["grads"][name][index]) for r in result["rows"]]
            means.append((rf"\frac{{\partial L}}{{\partial {p.latex(g.parameter)}}}",
                          f"{_tex_mean(each)} = {tex_number(float(result['grads'][name][index]))}"))
        rows += block_rows(means, A4_WIDTH, _widest(p))
    rows += [rf"% update: w \leftarrow w - \eta \, \partial L / \partial w, \eta = {fmt(problem.lr)}"]
    updates = []
    for g in derivation.gradients:
        name, index = g.key
        old, grad = float(result["params"][name][index]), float(result["grads"][name][index])
        updates.append((p.latex(g.parameter), rf"{tex_number(old)} - {tex_factor(problem.lr)} \cdot {tex_factor(grad)}"
                        rf" = {tex_number(float(result['updated'][name][index]))}"))
    updates.append((r"L_{\text{after}}", tex_number(float(result["loss_after"]))))
    return rows + block_rows(updates, A4_WIDTH, _widest(p))


def _align(rows: list[str]) -> list[str]:
    """align* around rows (comments kept), the last row without its line break."""
    rows = list(rows)
    last = max(i for i, row in enumerate(rows) if not row.startswith("%"))
    rows[last] = rows[last].removesuffix(r" \\")
    return [r"\begin{align*}", *rows, r"\end{align*}"]


def as_latex(problem: Problem, derivation, result: dict, values: list[dict]) -> list[str]:
    """The step as LaTeX: one align* block for one row; for a batch one per row, then one for
    the mean and the update, each headed by a bold line."""
    spec, n = problem.spec, len(problem.rows)
    what = f"one batch gradient-descent step on {n} rows" if problem.batch else "one SGD update"
    head = rf"% backprop step: {what} of the {spec.describe()}, \eta = {problem.eta()}"
    if not problem.batch:
        return [head, *_align(_row_latex(problem, derivation, 0, result["rows"][0], values[0])
                              + _update_latex(problem, derivation, result))]
    out = [head]
    for m, (r, v) in enumerate(zip(result["rows"], values)):
        out += ["", rf"\noindent\textbf{{Row {m + 1} of {n}}}", *_align(_row_latex(problem, derivation, m, r, v))]
    out += ["", rf"\noindent\textbf{{The mean over the {n} rows, and the update}}",
            *_align(_update_latex(problem, derivation, result))]
    return out


def run(args) -> int:
    if args.standalone and args.format != "latex":
        raise UserError("--standalone makes a LaTeX document; add --format latex")
    if args.params and args.init:
        raise UserError("give either --params FILE or --init SCHEME, not both")
    spec, model = load_start(args)
    problem = read_problem(args, spec, model)
    params = model.params if model is not None else \
        load_trainer(spec).init_params(seed=args.seed, scheme=args.init or "ones")
    result = batch_step(spec, [row.x for row in problem.rows], [row.y for row in problem.rows], problem.lr, params)
    derivation = derive(spec)
    for warning in derivation.warnings:
        print(f"backprop step: warning: {warning}", file=sys.stderr)
    values = row_values(problem, result)
    lines, problems = as_text(problem, derivation, result, values)
    for problem_line in problems:
        print(f"backprop step: warning: the trainer and the chain rule disagree: {problem_line}", file=sys.stderr)
    if args.format == "json":
        print_json(as_json(result, problem))  # overflow: NumPy's warning line, null + "non_finite" here
    elif args.format == "latex":
        tex = "\n".join(as_latex(problem, derivation, result, values)) + "\n"
        title = f"One {'batch gradient-descent step' if problem.batch else 'SGD update'} of the {spec.describe()}"
        sys.stdout.write("".join(standalone([tex], title)) if args.standalone else tex)
    else:
        print("\n".join(lines))
    return 0
