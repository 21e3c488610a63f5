"""One gradient-descent step, number by number: the computation behind `backprop step` and `backprop explain`.

The numbers come from the generated NumPy trainer (:func:`batch_step`); every symbol of the
notes' notation gets its value (:func:`symbol_values`) and every chain-rule factor is
evaluated from the symbolic derivation (:func:`chain_values`), so a printer can show both and
say where they disagree.  With an optimiser other than plain SGD (the spec's [optimizer])
:func:`optimizer_update` gives every assignment of its rule (g with weight decay, m, v, the bias
correction, w) for every parameter, evaluated from the table's SymPy expressions beside the
trainer's ``optimizer_step``.  A batch-normalised network's step is the batch's
(:func:`batch_norm_text`, :func:`batch_norm_json`): its rows couple, so there is no per-row
chain; every node's z, μ, σ², x̂, z̃ and O, γ and β with their gradients, the update and the
running statistics are shown instead.  :func:`read_problem` turns the typed rows and targets (a class name
of a model file, or numbers) into a :class:`Problem`; :func:`as_json` is the strict JSON form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy

from backprop.codegen import load_trainer
from backprop.core import files, init_schemes
from backprop.core.errors import UserError
from backprop.derive import Spec
from backprop.derive import notation as nt
from backprop.derive import optimizers
from backprop.derive import batchnorm
from backprop.derive.budget import MAX_TERMS, approx, check_per_parameter, formula_terms
from backprop.derive.losses import LOSSES
from backprop.derive.printing import NotationPrinter
from backprop.train import metrics
from backprop.train.model import Model, load_model

#: Starting parameters by scheme (ones: the notes' every weight 1, every bias 0).
SCHEMES = init_schemes.TRAINER
#: The notes' learning rate for a hand-worked step (train's default is 0.01: see --lr's help).
DEFAULT_LR = 0.1
#: Relative tolerance between the trainer's gradient and the chain rule's.
AGREE_RTOL = 1e-6
#: Most --x rows in one step: every row's chain is printed.
MAX_ROWS = 100


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
    if not metrics.is_classifier(spec.loss):
        return {}
    if LOSSES[spec.loss].one_hot and n > 1:  # one output: a single number is the full target
        indices = {} if classes and any(_is_number(c) for c in classes) else {str(i): i for i in range(n)}
        return {**indices, **{c: i for i, c in enumerate(classes or [])}}  # a name wins
    if not LOSSES[spec.loss].one_hot and n == 1:  # the 0/1 target's own spellings
        return {**{str(v): i for i, v in enumerate(LOSSES[spec.loss].targets.labels)},
                **{c: i for i, c in enumerate(classes or [])}}
    return {}


def check_classes(spec: Spec, classes: list[str] | None, source: str) -> list[str] | None:
    """The model's class names, if they fit its outputs (cce: one per output, bce: two)."""
    if not classes or not metrics.is_classifier(spec.loss):
        return None
    expected = metrics.n_classes(spec.loss, spec.n_outputs)
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
        if not LOSSES[spec.loss].one_hot:  # the 0/1 target; named when the model's labels say more
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


def load_start(params: str | None, spec: Spec, network_given: bool) -> tuple[Spec, Model | None]:
    """The network and the model file ``params`` (None without one): ``spec``, the flags'
    network, or when no flag names a network the model file's own (a plain params file then
    means ``spec``, the notes' 2-2-1)."""
    if params and not network_given:
        model = load_model(params, default=spec)
        check_size(model.spec)
        return model.spec, model
    check_size(spec)  # before reading a row of 100 000 inputs or a params file that size
    return spec, (load_model(params, spec) if params else None)


def check_size(spec: Spec, rows: int = 1) -> None:
    """Refuse a network (or a batch) whose printed chains would not fit, before any work."""
    check_per_parameter(spec, hint="step shows every parameter's chain; for a network this "
                        "size use 'backprop generate' and the trainer's sgd_step")
    terms = formula_terms(spec) * rows
    if rows > MAX_ROWS or terms > MAX_TERMS:
        raise UserError(f"{rows} rows of the {spec.describe()} would print about {approx(terms)} terms "
                        f"(at most {MAX_ROWS} rows and {MAX_TERMS:,} terms); give fewer --x rows, "
                        "or train on them with 'backprop train'")


def read_problem(spec: Spec, model: Model | None, xs: list[str], ys: list[str], lr: float | None,
                 source: str | None = None) -> Problem:
    """The rows ``xs`` as typed ("80,8"; standardised with the model's mean/std), their targets
    ``ys`` (numbers, or a class of the model file ``source``) and η (None: :data:`DEFAULT_LR`)."""
    if len(xs) != len(ys):
        raise UserError(f"--x is given {len(xs)} time(s) and --y {len(ys)}; give one --y per --x row")
    check_size(spec, len(xs))
    if lr is not None and not math.isfinite(lr):
        raise UserError("--lr must be a finite number")
    classes = check_classes(spec, model.classes, source) if model is not None else None
    table = class_table(spec, classes)
    rows = []
    for x_text, y_text in zip(xs, ys):
        typed = parse_row("--x", x_text, spec.n_inputs, "inputs")
        y, label = parse_target(y_text, spec, table, classes)
        x = model.scale(np.array([typed]))[0].tolist() if model is not None else typed
        rows.append(Row(typed, x, y, label))
    scaled = model is not None and model.standardised
    return Problem(spec, rows, DEFAULT_LR if lr is None else lr, lr is None,
                   model.mean if scaled else None, model.std if scaled else None)


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


def evaluate(expr: sympy.Expr, exact: dict) -> float:
    """``expr`` at the values ``exact`` (from :func:`exact_values`); NaN where it is not real."""
    value = sympy.sympify(expr, strict=True).xreplace(exact).doit()
    return float(value) if value.is_extended_real else float("nan")  # -y/ŷ at ŷ = 0: undefined


def exact_values(values: dict) -> dict:
    """:func:`symbol_values` as SymPy Floats, ready to substitute into a formula."""
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
    exact = exact_values(values)
    return [[evaluate(f.value, exact) for f in path] for path in gradient.chain]


def plain_sgd(spec: Spec) -> bool:
    """Whether the spec's optimiser is w ← w − η g (sgd without weight decay): step's classic view."""
    opt = optimizers.full(spec.optimizer)
    return opt["name"] == "sgd" and not opt["weight_decay"]


def optimizer_update(settings: dict, params: dict, grads: dict, state: dict | None) -> dict:
    """One optimiser step number by number: t, the settings, and per parameter the table's
    assignments evaluated in order ([("g", ...), ("m", ...), ..., ("w", ...)]) from ``state``
    (a model file's, of the same optimiser; None: fresh, zeros at t = 0).  The parameters are
    those with a gradient (a batch norm's running statistics are kept, not learnt)."""
    entry = optimizers.OPTIMIZERS[settings["name"]]
    if state is None or state.get("name") != settings["name"]:
        state = {"name": settings["name"], "t": 0,
                 **{s: {k: np.zeros_like(params[k]) for k in grads} for s in entry.state}}
    t = state["t"] + 1
    steps = {key: optimizers.trace(settings, params[key], grads[key],
                                   {s: state[s][key] for s in entry.state}, t) for key in grads}
    after = {"name": settings["name"], "t": t,
             **{s: {key: dict(steps[key])[s] for key in grads} for s in entry.state}}
    return {"settings": settings, "t": t, "before": state, "steps": steps, "state": after}


def batch_step(spec: Spec, X, Y, lr: float, params: dict[str, np.ndarray],
               state: dict | None = None) -> dict:
    """One gradient-descent step on the rows X, Y: each row's nodes, loss and gradients, the
    batch's (the mean over rows) loss and gradients, and the parameters after sgd_step (or,
    for the spec's optimiser, after the trainer's optimizer_step with η = ``lr`` from
    ``state``; then "optimizer" holds :func:`optimizer_update`, the table's rule evaluated,
    which ``step`` checks against the trainer's numbers)."""
    trainer = load_trainer(spec)
    params = {name: np.array(value, dtype=trainer.DTYPE) for name, value in params.items()}
    X, Y = np.array(X, dtype=trainer.DTYPE), np.array(Y, dtype=trainer.DTYPE)
    normed = bool(spec.batch_norm_layers)
    if normed and X.shape[0] < 2:
        raise UserError(f"batch norm (layer {','.join(map(str, spec.batch_norm_layers))}) normalises over "
                        "the rows of a batch and one row has no variance: its step takes two rows or "
                        "more (backprop step: repeat --x and --y)")
    rows = []
    for n in range(0 if normed else X.shape[0]):  # batch norm couples the rows: no per-row step
        x, y = X[n:n + 1], Y[n:n + 1]
        nodes = trainer.nodes(params, x)
        loss, grads = trainer.loss_and_gradients(params, x, y)
        rows.append({"nodes": nodes, "loss": loss, "grads": grads, "output": nodes[f"O{spec.depth}"][0]})
    loss, grads = trainer.loss_and_gradients(params, X, Y)
    updated = {name: value.copy() for name, value in params.items()}
    extra = {}
    if plain_sgd(spec):
        trainer.sgd_step(updated, X, Y, lr)
    else:
        settings = optimizers.full(optimizers.settings({**dict(spec.optimizer), "lr": lr}, "--lr"))
        extra["optimizer"] = optimizer_update(settings, params, grads, state)
        before = extra["optimizer"]["before"]  # the trainer steps from a copy of it
        own = {k: ({n: a.copy() for n, a in v.items()} if isinstance(v, dict) else v) for k, v in before.items()}
        if normed:  # the training forward moves the running statistics (sgd_step's does too)
            trainer.loss_and_gradients(updated, X, Y, update_running=True)
        trainer.optimizer_step(updated, grads, own, settings)
        extra["optimizer"]["state"] = own  # the trainer's state after its step (t, m, v, ...)
    if normed:
        extra["batch"] = batch_norm_nodes(trainer, spec, params, X)
        extra["loss_after_training"] = trainer.loss(updated, X, Y, training=True)
    return {"trainer": trainer, "params": params, "rows": rows, "loss": loss, "grads": grads,
            "updated": updated, "loss_after": trainer.loss(updated, X, Y), **extra}


# -- batch norm: the batch's step --------------------------------------------------------------
def batch_norm_nodes(trainer, spec: Spec, params: dict, X) -> dict[str, np.ndarray]:
    """Every array of the trainer's training-mode forward pass by name: Z1, then for a
    batch-normalised layer mu1, var1, Xhat1, Zn1, then O1, ... (its every_node tuple)."""
    names = [name for k in range(1, spec.depth + 1) for name in
             (f"Z{k}", *((f"mu{k}", f"var{k}", f"Xhat{k}", f"Zn{k}") if k in spec.batch_norm_layers else ()),
              f"O{k}")]
    return dict(zip(names, trainer.forward(params, X, every_node=True, training=True), strict=True))


def _listed(values) -> str:
    """[1.5, -0.25, 2]: one number per row."""
    return "[" + ", ".join(fmt(float(v)) for v in values) + "]"


def _parameter_names(spec: Spec) -> list[tuple[str, tuple, str]]:
    """(params key, index, the notes' name) of every learnt number: w^k_ij, b_kj, γ_kj, β_kj."""
    p = NotationPrinter(depth=spec.depth)
    out = []
    for k in range(1, spec.depth + 1):
        rows, cols = spec.layers[k - 1], spec.layers[k]
        out += [(f"W{k}", (i, j), p.text(nt.weight(k, i + 1, j + 1))) for i in range(rows) for j in range(cols)]
        if spec.bias:
            out += [(f"b{k}", (j,), p.text(nt.bias(k, j + 1))) for j in range(cols)]
        if k in spec.batch_norm_layers:
            out += [(f"{stem}{k}", (j,), f"{sym}_{k}{j + 1}") for stem, sym in (("gamma", "γ"), ("beta", "β"))
                    for j in range(cols)]
    return out


def _forward_lines(spec: Spec, nodes: dict, params: dict) -> list[str]:
    """Every node of the training-mode forward pass, one number per row in each list."""
    lines = []
    for k in range(1, spec.depth + 1):
        normed = k in spec.batch_norm_layers
        lines.append(f"  layer {k} ({spec.activations[k - 1]}): z = Σ w·O + b"
                     + (", x̂ = (z - μ)/√(σ² + ε), z̃ = γ x̂ + β, O = g(z̃)" if normed else ", O = g(z)"))
        for j in range(spec.layers[k]):
            node = f"{k}{j + 1}"
            line = f"    z_{node} = {_listed(nodes[f'Z{k}'][:, j])}"
            if normed:
                line += (f", μ_{node} = {fmt(float(nodes[f'mu{k}'][j]))}, σ²_{node} = {fmt(float(nodes[f'var{k}'][j]))}"
                         f", x̂_{node} = {_listed(nodes[f'Xhat{k}'][:, j])}, γ_{node} = {fmt(float(params[f'gamma{k}'][j]))}"
                         f", β_{node} = {fmt(float(params[f'beta{k}'][j]))}, z̃_{node} = {_listed(nodes[f'Zn{k}'][:, j])}")
            lines.append(line + f", O_{node} = {_listed(nodes[f'O{k}'][:, j])}")
    return lines


def batch_norm_text(problem: Problem, result: dict) -> list[str]:
    """The step of a batch-normalised network as text: the training-mode forward pass node by
    node, the loss, every gradient (δ through the derived batch-norm Jacobian), the update and
    the running statistics eval mode will use."""
    spec, n = problem.spec, len(problem.rows)
    scale, bracket = batchnorm.derivation().factored()
    lines = [f"One batch gradient-descent step on {n} rows of the {spec.describe()}, η = {problem.eta()}",
             "Batch norm couples the rows (each row's z̃ reads the whole batch's μ and σ²), so the step",
             "is the batch's, as `backprop derive --vectorised` writes it: there is no per-row chain.",
             "", "Forward pass, training mode (each list holds one number per row)"]
    lines += [f"  row {m}: x = {_listed(row.x)}, y = {_listed(row.y)}" for m, row in enumerate(problem.rows, 1)]
    lines += _forward_lines(spec, result["batch"], result["params"])
    lines += ["", f"Loss (the mean over the rows)  L = {fmt(result['loss'])}", "",
              f"Gradients (the trainer's): through batch norm ∂L/∂z_i = {batchnorm._text(scale)} "
              f"({batchnorm._text(bracket)}), g = ∂L/∂z̃ over the batch; ∂L/∂γ = Σ_rows g x̂, ∂L/∂β = Σ_rows g"]
    names = _parameter_names(spec)
    lines += [f"  ∂L/∂{name} = {fmt(float(result['grads'][key][index]))}" for key, index, name in names]
    plain = "optimizer" not in result
    how = (f"w_new = w_old - η ∂L/∂w  (η = {fmt(problem.lr)})" if plain
           else f"{result['optimizer']['settings']['name']}'s step t = {result['optimizer']['t']}")
    lines += ["", f"Update  {how}"]
    for key, index, name in names:
        old, new = float(result["params"][key][index]), float(result["updated"][key][index])
        grad = float(result["grads"][key][index])
        lines.append(f"  {name} = {fmt(old)} - {factor(problem.lr)} × {factor(grad)} = {fmt(new)}" if plain
                     else f"  {name} = {fmt(old)} -> {fmt(new)}")
    m = batchnorm.MOMENTUM
    lines += ["", f"Running statistics (what eval mode normalises with): μ ← {fmt(1 - m)} μ + {fmt(m)} μ_batch, "
              f"σ² ← {fmt(1 - m)} σ² + {fmt(m)} n/(n-1) σ²_batch"]
    for k in spec.batch_norm_layers:
        for j in range(spec.layers[k]):
            before, after = (tuple(float(source[f"running_{stat}{k}"][j]) for stat in ("mean", "var"))
                             for source in (result["params"], result["updated"]))
            lines.append(f"  node {k}{j + 1}: μ = {fmt(before[0])} -> {fmt(after[0])}, "
                         f"σ² = {fmt(before[1])} -> {fmt(after[1])}")
    lines += ["", f"Mean loss on these rows after the update: {fmt(result['loss_after_training'])} in training "
              f"mode, {fmt(result['loss_after'])} in eval mode (before: {fmt(result['loss'])})"]
    return lines


def batch_norm_json(problem: Problem, result: dict) -> dict:
    """The batch-normalised step as strict JSON: "loss", "grads", "params" (after the update,
    the running statistics included), "loss_after" (eval mode), "loss_after_training", "lr",
    "nodes" (every training-mode array by name: Z1, mu1, var1, Xhat1, Zn1, O1, ...), "rows"."""
    out = {"loss": float(result["loss"]), "lr": problem.lr,
           "nodes": {name: np.asarray(value).tolist() for name, value in result["batch"].items()},
           "grads": {name: value.tolist() for name, value in result["grads"].items()},
           "params": {name: np.asarray(value).tolist() for name, value in result["updated"].items()},
           "loss_after": float(result["loss_after"]),
           "loss_after_training": float(result["loss_after_training"]),
           "rows": [{"x": row.x, "y": row.y} for row in problem.rows]}
    if "optimizer" in result:
        out["optimizer"] = {"settings": result["optimizer"]["settings"], "t": result["optimizer"]["t"]}
    where = _non_finite(out, "")
    safe = files.json_safe(out)
    if where:
        safe["non_finite"] = where
    return safe


def step(spec: Spec, x, y, lr: float, params: dict[str, np.ndarray]) -> dict:
    """One row's update: :func:`batch_step` of one row, with its nodes and output on top."""
    result = batch_step(spec, [x], [y], lr, params)
    return {**result, "nodes": result["rows"][0]["nodes"], "output": result["rows"][0]["output"]}


def row_values(problem: Problem, result: dict) -> list[dict]:
    """symbol_values of every row."""
    return [symbol_values(problem.spec, row.x, row.y, result["params"], r["nodes"])
            for row, r in zip(problem.rows, result["rows"])]


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
    if "optimizer" in result:
        opt = result["optimizer"]
        out["optimizer"] = {
            "settings": opt["settings"], "t": opt["t"],
            "steps": {key: {name: np.asarray(value).tolist() for name, value in steps}
                      for key, steps in opt["steps"].items()},
            "state": {k: ({n: np.asarray(a).tolist() for n, a in v.items()} if isinstance(v, dict) else v)
                      for k, v in opt["state"].items()},
        }
    if problem is not None:
        out["lr"] = problem.lr
        if problem.mean is not None:
            out["standardise"] = {"mean": problem.mean.tolist(), "std": problem.std.tolist()}
    where = _non_finite(out, "")
    safe = files.json_safe(out)
    if where:
        safe["non_finite"] = where
    return safe


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
