"""One gradient-descent update, shown number by number the way the notes do.

Prints the forward value of every node (z and O), the loss, every gradient as its chain
of factors (symbolic, then with the numbers filled in, then the product) and every updated
parameter, w_new = w_old - η ∂L/∂w.  The numbers come from the generated NumPy trainer (the
one `backprop generate` writes); the chain-rule values are evaluated independently from the
symbolic derivation, and a disagreement is reported on stderr.

--x and --y may repeat (one --y per --x): a batch step.  Each row's chain is shown, then the
mean of the rows' gradients (the loss of a batch is the mean over its rows) and the update
with that mean, exactly what the trainer's sgd_step does with those rows.

With an optimiser in the spec (--spec adam.toml: [optimizer] name = "adam", ...) the update is
that optimiser's step, every assignment of its rule shown for every parameter: the weight
decay, the state (m, v: fresh zeros, or a --params model file's optimizer_state), the bias
correction m̂, v̂ and the new w; η is the optimiser's lr unless --lr is given.  Plain SGD
prints as it always did.

--y takes the target values, or for a classifier a class: with loss cce a class name of the
--params model file (or its index 0..n-1) becomes the one-hot target; with bce, 0/1 or one of
the model's two labels.

Parameters start as the notes' (every weight 1, every bias 0) unless --init or --params
says otherwise.  --params reads a model file (`backprop train --params-out`): with no network
flags its own network is used, and its standardisation is applied to the raw --x rows.
Plain {"W1": [[...]], "b1": [...], ...} files (W{k}[i-1][j-1] = w^k_ij, or the "params" of
a previous `step --json`) still load, for the network the flags name.

With --format latex the same step is align* blocks (rows broken to fit an A4 page; a batch-
normalised network's as three: the forward pass, the gradients, the update and running statistics);
--standalone makes it a complete article that compiles with pdflatex.

examples:
  backprop step --layers 2-2-1 --activations linear --loss se --x 80,8 --y 5 --init ones --lr 0.1
  backprop step --x 80,8 --x 60,9 --y 5 --y 6 --init ones          # a batch of two rows
  backprop step --params iris.json --x 5.1,3.5,1.4,0.2 --y setosa   # a model file, a class label
  backprop step --x 80,8 --y 5 --format latex --standalone > step.tex
  backprop step --spec net.toml --params p.json --x 0.05,0.10 --y 0.01,0.99 --lr 0.5 --json
  backprop step --spec adam.toml --x 80,8 --y 5 --init ones    # one Adam step: m, v, m̂, v̂, w
"""
from __future__ import annotations

import math
import sys

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from backprop.codegen import load_trainer
from backprop.core.errors import UserError
from backprop.derive import derive
from backprop.derive import notation as nt
from backprop.derive import batchnorm, optimizers
from backprop.derive.report import SKIP_FACTOR, chain_text, loss_line
from backprop.derive.printing import NotationPrinter
from backprop.derive.teaching import A4_WIDTH, block_rows, chain_rows, rendered_width, row_width, standalone
from backprop.train.onestep import (AGREE_RTOL, DEFAULT_LR, SCHEMES, Problem, as_json, batch_norm_json,
                                    batch_norm_text, batch_step, chain_values, evaluate, exact_values,
                                    factor, fmt, load_start, plain_sgd, read_problem, row_values,
                                    tex_factor, tex_number)

from ..common import add_spec_arguments, network_given, nonnegative_int, print_json, spec_from_args

NAME = "step"
HELP = "one gradient-descent update on one row or a few, every number shown"
ORDER = 35

FORMATS = ("text", "latex", "json")


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


# -- text ---------------------------------------------------------------------------------------
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
        lines.append(head + " + ".join(" · ".join(SKIP_FACTOR[False] if f.skip else _frac(p, f.numerator, f.denominator)
                                                  for f in path)
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
    if "optimizer" in result:
        lines += [""] + _optimizer_text(derivation, result)
        problems += _optimizer_problems(derivation, result)
    else:
        lines += ["", f"Update  w_new = w_old - η ∂L/∂w  (η = {fmt(problem.lr)})"]
    for g in ([] if "optimizer" in result else derivation.gradients):
        name, index = g.key
        old, grad = float(result["params"][name][index]), float(result["grads"][name][index])
        new = float(result["updated"][name][index])
        lines.append(f"  {g.name} = {fmt(old)} - {factor(problem.lr)} × {factor(grad)} = {fmt(new)}")
    where = "Mean loss on these rows" if problem.batch else "Loss on this row"
    lines += ["", f"{where} after the update: {fmt(result['loss_after'])} (before: {fmt(result['loss'])})"]
    return lines, problems


# -- an optimiser's step ---------------------------------------------------------------------------
def _settings_text(settings: dict, tex: bool = False) -> str:
    """'η = 0.001, β₁ = 0.9, ...' (the hyper-parameters by their display names)."""
    which = 1 if tex else 0
    return ", ".join(f"{optimizers.DISPLAY[k][which]} = {tex_number(v) if tex else fmt(v)}"
                     for k, v in settings.items() if k in optimizers.DISPLAY)


def _element_steps(result: dict, name: str, index) -> list[tuple[sympy.Symbol, sympy.Expr, dict, float]]:
    """One entry's assignments: (target, expression, the values it reads, its value)."""
    opt = result["optimizer"]
    entry = optimizers.OPTIMIZERS[opt["settings"]["name"]]
    known = {optimizers.SYMBOLS[k]: v for k, v in opt["settings"].items() if k in optimizers.SYMBOLS}
    values = {**known, optimizers.t: opt["t"], optimizers.w: float(result["params"][name][index]),
              optimizers.g: float(result["grads"][name][index]),
              **{optimizers.SYMBOLS[s]: float(opt["before"][s][name][index]) for s in entry.state}}
    out = []
    for (target, expr), (_, value) in zip(entry.update(opt["settings"]), opt["steps"][name]):
        out.append((target, expr, dict(values), float(value[index])))
        values[target] = float(value[index])
    return out


def _rule(expr: sympy.Expr, values: dict | None, tex: bool) -> str:
    """The rule's right side in display names, or (``values``) with the numbers in."""
    def shown(sym):
        if values is None:
            return optimizers.DISPLAY[sym.name][1 if tex else 0]
        value = values[sym]
        return (tex_factor(value) if tex else factor(value)) if sym != optimizers.t else str(value)
    names = {sym: shown(sym) for sym in expr.free_symbols}
    printer = (_NamedLatex if tex else _NamedStr)({"order": "none"})
    printer.names = names  # the same tree printed twice: names and numbers line up term by term
    text = printer.doprint(expr)
    return text if tex else text.replace("**", "^").replace("*", "·")


class _NamedStr(StrPrinter):
    """SymPy's str printer with each symbol printed as ``names[symbol]``."""

    names: dict = {}

    def _print_Symbol(self, expr):
        return self.names[expr]


class _NamedLatex(LatexPrinter):
    """SymPy's LaTeX printer with each symbol printed as ``names[symbol]``."""

    names: dict = {}

    def _print_Symbol(self, expr, style="plain"):
        return self.names[expr]


def _optimizer_text(derivation, result: dict) -> list[str]:
    """The optimiser's update: settings, step t, then per parameter every assignment with its
    numbers."""
    opt = result["optimizer"]
    settings, entry = opt["settings"], optimizers.OPTIMIZERS[opt["settings"]["name"]]
    fresh = "fresh state, zeros" if opt["before"]["t"] == 0 else f"state after step {opt['before']['t']}"
    lines = [f"Update with {settings['name']} ({_settings_text(settings)}), step t = {opt['t']} ({fresh})",
             f"  {entry.doc}"]
    for g in derivation.gradients:
        name, index = g.key
        head = f"  {g.name}: "
        for n, (target, expr, values, value) in enumerate(_element_steps(result, name, index)):
            lhs = optimizers.DISPLAY[target.name][0]
            lines.append((head if n == 0 else " " * len(head)) + f"{lhs} = {_rule(expr, None, False)} = "
                         f"{_rule(expr, values, False)} = {fmt(value)}")
    return lines


def _optimizer_problems(derivation, result: dict) -> list[str]:
    """Where the trainer's updated parameter and the table's rule, evaluated, disagree."""
    out = []
    for g in derivation.gradients:
        name, index = g.key
        by_rule = float(dict(result["optimizer"]["steps"][name])["w"][index])
        trainer = float(result["updated"][name][index])
        if not math.isclose(by_rule, trainer, rel_tol=AGREE_RTOL, abs_tol=1e-12 * (1 + abs(trainer))):
            out.append(f"{g.name} after the update: trainer {trainer!r}, the optimizer's rule {by_rule!r}")
    return out


def _optimizer_latex(derivation, result: dict) -> list[str]:
    """The optimiser's update as align* rows (one parameter's assignments per block)."""
    p = derivation.printer
    rows = _optimizer_rows(result, [(*g.key, g.name, p.latex(g.parameter)) for g in derivation.gradients])
    rows.append(rf"L_{{\text{{after}}}} &= {tex_number(float(result['loss_after']))} \\")
    return rows


def _optimizer_rows(result: dict, parameters: list[tuple[str, tuple, str, str]], column: str = "") -> list[str]:
    """The optimiser's assignments for (params key, index, text name, LaTeX name) of every
    parameter, as align* rows under a comment naming the parameter, broken to fit A4 (the
    align*'s left column at least as wide as ``column``)."""
    opt = result["optimizer"]
    rows = [f"% update with {opt['settings']['name']}: {_settings_text(opt['settings'], tex=True)}, t = {opt['t']}"]
    blocks = [(text, [(tex if target == optimizers.w else optimizers.DISPLAY[target.name][1],
                       f"{_rule(expr, None, True)} = {_rule(expr, values, True)} = {tex_number(value)}")
                      for target, expr, values, value in _element_steps(result, name, index)])
              for name, index, text, tex in parameters]
    column = max([column] + [lhs for _, equations in blocks for lhs, _ in equations], key=rendered_width)
    for text, equations in blocks:
        rows += [f"% {text}", *block_rows(equations, A4_WIDTH, column)]
    return rows


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
    L, exact, row = spec.depth, exact_values(values), problem.rows[n]
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
    rows += _pairs([(p.latex(s), tex_number(evaluate(derivation.resolved_delta(*nt.parse(s).indices), exact)))
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
    if "optimizer" in result:
        return rows + _optimizer_latex(derivation, result)
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


# -- a batch-normalised network's step in LaTeX ---------------------------------------------------
#: A batch-normalised node's learnt numbers: params stem, text and LaTeX spelling.
_BN_PARAMETERS = (("gamma", "γ", r"\gamma"), ("beta", "β", r"\beta"))


def _tex_list(values) -> str:
    r"""\left({1.5}, {-0.25}\right): one number per row, each braced so that a row break falls
    between two numbers, never inside 1.2 \times 10^{4}."""
    return r"\left(" + ", ".join(f"{{{tex_number(float(v))}}}" for v in values) + r"\right)"


def _sub(p, k: int, j: int) -> str:
    """'_{11}': node j of layer k's subscript as the notes' printer writes it (b_{11})."""
    return p.latex(nt.bias(k, j))[1:]


def _bn_parameters(spec, p) -> list[tuple[str, tuple, str, str]]:
    """(params key, index, text name, LaTeX name) of every learnt number: w, b, γ, β per layer."""
    out = []
    for k in range(1, spec.depth + 1):
        rows, cols = spec.layers[k - 1], spec.layers[k]
        out += [(f"W{k}", (i, j), p.text(nt.weight(k, i + 1, j + 1)), p.latex(nt.weight(k, i + 1, j + 1)))
                for i in range(rows) for j in range(cols)]
        if spec.bias:
            out += [(f"b{k}", (j,), p.text(nt.bias(k, j + 1)), p.latex(nt.bias(k, j + 1))) for j in range(cols)]
        if k in spec.batch_norm_layers:
            out += [(f"{stem}{k}", (j,), sym + p.text(nt.bias(k, j + 1))[1:], tex + _sub(p, k, j + 1))
                    for stem, sym, tex in _BN_PARAMETERS for j in range(cols)]
    return out


def _lhs_column(entries: list) -> str:
    """The widest left-hand side of :func:`_laid_out`'s entries."""
    return max((lhs for entry in entries if not isinstance(entry, str) for lhs, _ in entry), key=rendered_width)


def _laid_out(entries: list, column: str = "") -> list[str]:
    """align* rows from entries: a comment line, or a list of one or two (lhs, rhs) sharing a
    row (two only where they fit A4, else one row each, broken to fit); every row's budget
    counts the align*'s widest left-hand side (these entries' or ``column``)."""
    column = max(_lhs_column(entries), column, key=rendered_width)
    rows = []
    for entry in entries:
        if isinstance(entry, str):
            rows.append(entry)
            continue
        paired = _pairs(list(entry))
        if len(entry) == 2 and rendered_width(column) + row_width("", paired[0]) <= A4_WIDTH:
            rows += paired
        else:
            rows += block_rows(entry, A4_WIDTH, column)
    return rows


def _bn_forward(problem: Problem, p, result: dict) -> list:
    """The rows and every node of the training-mode forward pass, one number per row in each list."""
    spec, nodes, params, L = problem.spec, result["batch"], result["params"], problem.spec.depth
    std = " (x standardised with the model's mean/std)" if problem.mean is not None else ""
    entries: list = [f"% the rows{std}"]
    entries += [[(p.latex(nt.feature(j)), _tex_list([row.x[j - 1] for row in problem.rows]))]
                for j in range(1, spec.layers[0] + 1)]
    entries += [[(p.latex(nt.target(j)), _tex_list([row.y[j - 1] for row in problem.rows]))]
                for j in range(1, spec.layers[L] + 1)]
    for k in range(1, L + 1):
        normed = k in spec.batch_norm_layers
        entries.append(f"% layer {k} ({spec.activations[k - 1]}): z = sum of w O + b" + (
            r", \hat{x} = (z - \mu)/\sqrt{\sigma^2 + \varepsilon}, \tilde{z} = \gamma \hat{x} + \beta, O = g(\tilde{z})"
            if normed else ", O = g(z)"))
        for j in range(1, spec.layers[k] + 1):
            s = _sub(p, k, j)
            entries.append([(p.latex(nt.preactivation(k, j)), _tex_list(nodes[f"Z{k}"][:, j - 1]))])
            if normed:
                entries += [[(rf"\mu{s}", tex_number(float(nodes[f"mu{k}"][j - 1]))),
                             (rf"\sigma^{{2}}{s}", tex_number(float(nodes[f"var{k}"][j - 1])))],
                            [(rf"\hat{{x}}{s}", _tex_list(nodes[f"Xhat{k}"][:, j - 1]))],
                            [(rf"{tex}{s}", tex_number(float(params[f"{stem}{k}"][j - 1])))
                             for stem, _, tex in _BN_PARAMETERS],
                            [(rf"\tilde{{z}}{s}", _tex_list(nodes[f"Zn{k}"][:, j - 1]))]]
            entries.append([(p.latex(nt.output(k, j, L)), _tex_list(nodes[f"O{k}"][:, j - 1]))])
    return entries + ["% the loss: the mean over the rows", [("L", tex_number(float(result["loss"])))]]


def _bn_gradients(parameters, result: dict) -> list:
    """The derived batch-norm rule (SymPy's result, printed) and the trainer's every gradient."""
    entries: list = [r"% through batch norm, per node over the rows i, g_i = \partial L/\partial \tilde{z}_i (derived)"]
    entries += [[tuple(line.split(" = ", 1))] for line in batchnorm.derivation().latex()]
    entries.append("% the gradients of the batch's loss")
    grads = [(rf"\frac{{\partial L}}{{\partial {tex}}}", tex_number(float(result["grads"][key][index])))
             for key, index, _, tex in parameters]
    return entries + [grads[m:m + 2] for m in range(0, len(grads), 2)]


def _bn_update(problem: Problem, p, parameters, result: dict) -> list[str]:
    """The update (SGD's or the spec's optimiser's), the running statistics, the loss after."""
    spec, n, lr = problem.spec, len(problem.rows), problem.lr
    entries: list = []
    if "optimizer" not in result:
        entries = [rf"% update: w \leftarrow w - \eta \, \partial L / \partial w, \eta = {fmt(lr)}"]
        entries += [[(tex, rf"{tex_number(float(result['params'][key][index]))} - {tex_factor(lr)} \cdot "
                           rf"{tex_factor(float(result['grads'][key][index]))} = "
                           rf"{tex_number(float(result['updated'][key][index]))}")]
                    for key, index, _, tex in parameters]
    m, batch = batchnorm.MOMENTUM, result["batch"]
    entries.append(rf"% running statistics (eval mode): \bar{{\mu}} \leftarrow {fmt(1 - m)} \bar{{\mu}} + {fmt(m)} \mu, "
                   rf"\bar{{\sigma}}^2 \leftarrow {fmt(1 - m)} \bar{{\sigma}}^2 + {fmt(m)} n/(n-1) \sigma^2")
    for k in spec.batch_norm_layers:
        for j in range(spec.layers[k]):
            s, out = _sub(p, k, j + 1), []
            for stat, name, batch_value in (("mean", rf"\bar{{\mu}}{s}", tex_factor(float(batch[f"mu{k}"][j]))),
                                            ("var", rf"\bar{{\sigma}}^{{2}}{s}",
                                             rf"\frac{{{n}}}{{{n - 1}}} \cdot {tex_factor(float(batch[f'var{k}'][j]))}")):
                before = float(result["params"][f"running_{stat}{k}"][j])
                after = float(result["updated"][f"running_{stat}{k}"][j])
                out.append((name, rf"{tex_number(1 - m)} \cdot {tex_factor(before)} + {tex_number(m)} \cdot "
                                  rf"{batch_value} = {tex_number(after)}"))
            entries += [[eq] for eq in out]
    entries += ["% the mean loss on these rows after the update",
                [(r"L_{\text{after}}", rf"{tex_number(float(result['loss_after_training']))} \text{{ (training mode)}},"
                                        rf"\quad {tex_number(float(result['loss_after']))} \text{{ (eval mode)}}")]]
    if "optimizer" not in result:
        return _laid_out(entries)
    column = max([_lhs_column(entries)] + [tex for *_, tex in parameters], key=rendered_width)
    return _optimizer_rows(result, parameters, column) + _laid_out(entries, column)


def batch_norm_latex(problem: Problem, result: dict) -> list[str]:
    """A batch-normalised network's step as LaTeX: the forward pass over the rows, the
    gradients (the derived rule named), the update and the running statistics, one align*
    block each under a bold line: the rows couple, so there is no per-row chain."""
    spec, n = problem.spec, len(problem.rows)
    p = NotationPrinter(depth=spec.depth)
    parameters = _bn_parameters(spec, p)
    how = (f"SGD, \\eta = {problem.eta()}" if "optimizer" not in result
           else f"{result['optimizer']['settings']['name']}, step t = {result['optimizer']['t']}")
    return [rf"% backprop step: one batch gradient-descent step on {n} rows of the {spec.describe()}, {how}",
            r"% batch norm couples the rows (each row's \tilde{z} reads the whole batch's \mu and \sigma^2): "
            "the step is the batch's, there is no per-row chain",
            "", r"\noindent\textbf{Forward pass, training mode} (each list holds one number per row $i$ of the "
            r"batch; batch norm: $\hat{x} = (z - \mu)/\sqrt{\sigma^{2} + \varepsilon}$ over the rows, "
            r"$\tilde{z} = \gamma \hat{x} + \beta$, $O = g(\tilde{z})$)",
            *_align(_laid_out(_bn_forward(problem, p, result))),
            "", r"\noindent\textbf{Gradients} (the rows couple through $\mu$ and $\sigma^{2}$; "
            r"$g_{i} = \partial L/\partial \tilde{z}_{i}$ is what the activation sends back)",
            *_align(_laid_out(_bn_gradients(parameters, result))),
            "", r"\noindent\textbf{The update and the running statistics} (what eval mode normalises with)",
            *_align(_bn_update(problem, p, parameters, result))]


def run(args) -> int:
    if args.standalone and args.format != "latex":
        raise UserError("--standalone makes a LaTeX document; add --format latex")
    if args.params and args.init:
        raise UserError("give either --params FILE or --init SCHEME, not both")
    spec, model = load_start(args.params, spec_from_args(args), network_given(args))
    lr = args.lr if args.lr is not None or plain_sgd(spec) else optimizers.full(spec.optimizer)["lr"]
    problem = read_problem(spec, model, args.x, args.y, lr, args.params)
    params = model.params if model is not None else \
        load_trainer(spec).init_params(seed=args.seed, scheme=args.init or "ones")
    result = batch_step(spec, [row.x for row in problem.rows], [row.y for row in problem.rows], problem.lr, params,
                        state=model.optimizer_state if model is not None else None)
    if spec.batch_norm_layers:  # the rows couple: the batch's step, no per-row chain to print
        if args.format == "latex":
            tex = "\n".join(batch_norm_latex(problem, result)) + "\n"
            title = f"One batch gradient-descent step of the {spec.describe()}"
            sys.stdout.write("".join(standalone([tex], title)) if args.standalone else tex)
        elif args.format == "json":
            print_json(batch_norm_json(problem, result))
        else:
            print("\n".join(batch_norm_text(problem, result)))
        return 0
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
