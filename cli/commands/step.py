"""One stochastic-gradient update on one row, shown number by number the way the notes do.

Prints the forward value of every node (z and O), the loss, every gradient as its chain
of factors (symbolic, then with the numbers filled in, then the product) and every updated
parameter, w_new = w_old - η ∂L/∂w.  The numbers come from the generated NumPy trainer (the
one `backprop generate` writes); the chain-rule values are evaluated independently from the
symbolic derivation, and a disagreement is reported on stderr.

Parameters start as the notes' (every weight 1, every bias 0) unless --init or --params
says otherwise; --params reads JSON {"W1": [[...]], "b1": [...], ...} with W{k}[i-1][j-1] =
w^k_ij (the "params" of a previous `step --json` works too).

With --format latex the same step is one align* block (rows broken to fit an A4 page);
--standalone makes it a complete article that compiles with pdflatex.

examples:
  backprop step --layers 2-2-1 --activations linear --loss se --x 80,8 --y 5 --init ones --lr 0.1
  backprop step --x 80,8 --y 5 --format latex --standalone > step.tex
  backprop step --spec net.toml --params p.json --x 0.05,0.10 --y 0.01,0.99 --lr 0.5 --json
"""
from __future__ import annotations

import math
import sys

import numpy as np
import sympy

from backprop.codegen import load_trainer
from backprop.derive import Spec, UserError, derive
from backprop.derive import notation as nt
from backprop.derive.budget import check_per_parameter
from backprop.derive.report import chain_text, loss_line
from backprop.derive.teaching import A4_WIDTH, block_rows, chain_rows, standalone
from backprop.train import files

from ..common import add_spec_arguments, nonnegative_int, print_json, spec_from_args
from ..params import load_params

NAME = "step"
HELP = "one SGD update on one row, every number shown"
ORDER = 35

SCHEMES = ("ones", "zeros", "glorot", "he")
FORMATS = ("text", "latex", "json")
#: Relative tolerance between the trainer's gradient and the chain rule's.
AGREE_RTOL = 1e-6


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--x", required=True, metavar="V,V,...", help="one input row, e.g. 80,8")
    parser.add_argument("--y", required=True, metavar="V,...", help="its target(s), e.g. 5")
    parser.add_argument("--lr", type=float, default=0.1, metavar="η", help="learning rate (default 0.1, the notes')")
    parser.add_argument("--params", metavar="FILE", help="starting parameters, JSON {\"W1\": [[...]], \"b1\": [...], ...}")
    parser.add_argument("--init", choices=SCHEMES, help="starting parameters by scheme (default ones: w = 1, b = 0)")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="seed for --init glorot/he")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default text); latex: one align* block")
    parser.add_argument("--json", action="store_const", const="json", dest="format",
                        help="machine-readable output, same as --format json (a number that "
                        "overflowed to inf or NaN is null, and its place is listed in \"non_finite\")")
    parser.add_argument("--standalone", action="store_true",
                        help="with --format latex, a complete A4 article (compiles with pdflatex)")


# -- input ----------------------------------------------------------------------------------
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


def chain_values(gradient, values) -> list[list[float]]:
    """The numeric value of every factor of every chain path."""
    exact = _as_sympy(values)
    return [[_number(f.value, exact) for f in path] for path in gradient.chain]


def step(spec: Spec, x, y, lr: float, params: dict[str, np.ndarray]) -> dict:
    """Everything one update shows, from the generated trainer plus the chain rule."""
    trainer = load_trainer(spec)
    params = {name: np.array(value, dtype=trainer.DTYPE) for name, value in params.items()}
    X, Y = np.array([x]), np.array([y])
    nodes = trainer.nodes(params, X)
    loss, grads = trainer.loss_and_gradients(params, X, Y)
    updated = {name: value.copy() for name, value in params.items()}
    trainer.sgd_step(updated, X, Y, lr)
    return {"trainer": trainer, "params": params, "nodes": nodes, "loss": loss, "grads": grads,
            "updated": updated, "output": nodes[f"O{spec.depth}"][0],
            "loss_after": trainer.loss(updated, X, Y)}


# -- output -------------------------------------------------------------------------------------
def as_json(result: dict) -> dict:
    """The step as strict JSON: a value that overflowed (inf, NaN) is null, and the entries
    holding one are listed under "non_finite" (present only then), e.g. ["loss", "grads.W1"]."""
    out = {
        "loss": float(result["loss"]),
        "output": result["output"].tolist(),
        "nodes": {name: value[0].tolist() for name, value in result["nodes"].items()},
        "grads": {name: value.tolist() for name, value in result["grads"].items()},
        "params": {name: value.tolist() for name, value in result["updated"].items()},
    }
    where = []
    for key, value in out.items():
        parts = value.items() if isinstance(value, dict) else [(None, value)]
        where += [key if name is None else f"{key}.{name}" for name, part in parts
                  if not np.isfinite(np.asarray(part, dtype=float)).all()]
    safe = files.json_safe(out)
    if where:
        safe["non_finite"] = where
    return safe


def _frac(p, num, den) -> str:
    return f"∂{p.text(num)}/∂{p.text(den)}"


def as_text(spec: Spec, derivation, x, y, lr: float, result: dict, values: dict) -> tuple[list[str], list[str]]:
    """(lines to print, disagreements between the trainer and the chain rule)."""
    p = derivation.printer
    L = spec.depth
    lines = [f"One SGD update of the {spec.describe()}, η = {fmt(lr)}",
             "Row: " + ", ".join(f"{p.text(nt.feature(j))} = {fmt(v)}" for j, v in enumerate(x, 1))
             + "; " + ", ".join(f"{p.text(nt.target(j))} = {fmt(v)}" for j, v in enumerate(y, 1)),
             "", "Forward pass (z = Σ w·O + b, O = g(z))"]
    for k in range(1, L + 1):
        for j in range(1, spec.layers[k] + 1):
            z_name, o_sym = p.text(nt.preactivation(k, j)), nt.output(k, j, L)
            o_name = p.text(o_sym) if k < L else f"{p.text(o_sym)} = O_{k}{j}"
            lines.append(f"  layer {k}: {z_name} = {fmt(values[nt.preactivation(k, j)]):<14} "
                         f"{o_name} = {fmt(values[o_sym])}")
    lines += ["", f"Loss  L = {p.text(derivation.net.loss)} = {fmt(result['loss'])}", "",
              "Gradients (chain rule, output layer first)"]
    problems = []
    for g in derivation.gradients:
        name, index = g.key
        number = float(result["grads"][name][index])
        paths, numbers = g.chain, chain_values(g, values)
        by_chain = sum(math.prod(path) for path in numbers)
        if not math.isclose(by_chain, number, rel_tol=AGREE_RTOL, abs_tol=1e-9 * (1 + abs(number))):
            problems.append(f"∂L/∂{g.name}: trainer {number!r}, chain rule {by_chain!r}")
        head = f"  ∂L/∂{g.name} = "
        pad = " " * len(head)
        lines.append(head + " + ".join(" · ".join(_frac(p, f.numerator, f.denominator) for f in path)
                                       for path in paths))
        lines.append(pad[:-2] + "= " + " + ".join(" · ".join(f"[{p.text(f.value)}]" for f in path)
                                                  for path in paths))
        lines.append(pad[:-2] + "= " + " + ".join(" · ".join(f"[{fmt(v)}]" for v in path)
                                                  for path in numbers))
        lines.append(pad[:-2] + f"= {fmt(number)}")
    lines += ["", f"Update  w_new = w_old - η ∂L/∂w  (η = {fmt(lr)})"]
    for g in derivation.gradients:
        name, index = g.key
        old, grad = float(result["params"][name][index]), float(result["grads"][name][index])
        new = float(result["updated"][name][index])
        lines.append(f"  {g.name} = {fmt(old)} - {fmt(lr)} × {fmt(grad)} = {fmt(new)}")
    lines += ["", f"Loss on this row after the update: {fmt(result['loss_after'])} (before: {fmt(result['loss'])})"]
    return lines, problems


def tex_number(value: float) -> str:
    """fmt() in LaTeX: 88, -3008.6, 1.2 \\times 10^{4}, \\infty."""
    if math.isnan(value):
        return r"\text{NaN}"
    if math.isinf(value):
        return r"\infty" if value > 0 else r"-\infty"
    mantissa, _, exponent = fmt(value).partition("e")
    return mantissa if not exponent else rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _factor(value: float) -> str:
    return rf"\left({tex_number(value)}\right)" if value < 0 else tex_number(value)


def _pairs(equations: list[tuple[str, str]]) -> list[str]:
    """Two short equations per align* row, ``a &= 1,\\quad b = 2 \\\\`` (a second column pair
    would be pushed right by the long rows below)."""
    return [r",\quad ".join(f"{lhs} {'&' if n % 2 == 0 else ''}= {rhs}" for n, (lhs, rhs)
                            in enumerate(equations[m:m + 2])) + r" \\" for m in range(0, len(equations), 2)]


def as_latex(spec: Spec, derivation, x, y, lr: float, result: dict, values: dict) -> list[str]:
    """The step as LaTeX: the row, the forward pass, L, every δ, every gradient as its chain
    (names, factors, numbers, product) and every update, in one align* block."""
    p = derivation.printer
    L, exact = spec.depth, _as_sympy(values)
    row = [(p.latex(nt.feature(j)), tex_number(v)) for j, v in enumerate(x, 1)]
    row += [(p.latex(nt.target(j)), tex_number(v)) for j, v in enumerate(y, 1)]
    rows = [rf"% backprop step: one SGD update of the {spec.describe()}, \eta = {fmt(lr)}"]
    rows += ["% the row"] + _pairs(row) + ["% forward pass: z = sum of w O + b, O = g(z)"]
    rows += _pairs([(p.latex(s), tex_number(values[s])) for k in range(1, L + 1)
                    for j in range(1, spec.layers[k] + 1)
                    for s in (nt.preactivation(k, j), nt.output(k, j, L))])
    widest = rf"\frac{{\partial L}}{{\partial {p.latex(nt.weight(1, 1, 1))}}}"  # the left column
    rows += block_rows([("L", f"{loss_line(derivation, tex=True)} = {tex_number(float(result['loss']))}")],
                       A4_WIDTH, widest)
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
        rows += chain_rows(lhs, [names, symbolic, numbers, tex_number(float(result["grads"][name][index]))],
                           A4_WIDTH)
    rows += [rf"% update: w \leftarrow w - \eta \, \partial L / \partial w, \eta = {fmt(lr)}"]
    updates = []
    for g in derivation.gradients:
        name, index = g.key
        old, grad = float(result["params"][name][index]), float(result["grads"][name][index])
        updates.append((p.latex(g.parameter), rf"{tex_number(old)} - {tex_number(lr)} \times {_factor(grad)}"
                        rf" = {tex_number(float(result['updated'][name][index]))}"))
    updates.append((r"L_{\text{after}}", tex_number(float(result["loss_after"]))))
    rows += block_rows(updates, A4_WIDTH, widest)
    rows[-1] = rows[-1].removesuffix(r" \\")
    return [rows[0], r"\begin{align*}", *rows[1:], r"\end{align*}"]


def run(args) -> int:
    spec = spec_from_args(args)
    if args.standalone and args.format != "latex":
        raise UserError("--standalone makes a LaTeX document; add --format latex")
    # before reading a row of 100 000 inputs
    check_per_parameter(spec, hint="step shows every parameter's chain; for a network this "
                        "size use 'backprop generate' and the trainer's sgd_step")
    x = parse_row("--x", args.x, spec.n_inputs, "inputs")
    y = parse_row("--y", args.y, spec.n_outputs, "outputs")
    if not math.isfinite(args.lr):
        raise UserError("--lr must be a finite number")
    if args.params and args.init:
        raise UserError("give either --params FILE or --init SCHEME, not both")
    if args.params:
        params = load_params(args.params, spec)
    else:
        params = load_trainer(spec).init_params(seed=args.seed, scheme=args.init or "ones")
    result = step(spec, x, y, args.lr, params)
    derivation = derive(spec)
    for warning in derivation.warnings:
        print(f"backprop step: warning: {warning}", file=sys.stderr)
    values = symbol_values(spec, x, y, result["params"], result["nodes"])
    lines, problems = as_text(spec, derivation, x, y, args.lr, result, values)
    for problem in problems:
        print(f"backprop step: warning: the trainer and the chain rule disagree: {problem}", file=sys.stderr)
    if args.format == "json":
        print_json(as_json(result))  # overflow: NumPy's warning line, null + "non_finite" here
    elif args.format == "latex":
        tex = "\n".join(as_latex(spec, derivation, x, y, args.lr, result, values)) + "\n"
        title = f"One SGD update of the {spec.describe()}"
        sys.stdout.write("".join(standalone([tex], title)) if args.standalone else tex)
    else:
        print("\n".join(lines))
    return 0
