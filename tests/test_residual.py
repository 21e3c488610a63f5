"""Residual connections, O_kj = g(z_kj) + O_{k-1,j}: the per-parameter derivation against torch
autograd (float64) and against finite differences of a forward pass written here (not the
network's), the chain's paths through the skip, the printed forms (derive --param, the
matrix form), the graph's skip op, and verify's round trip (correct, and the skip forgotten
labelled missing_skip)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy

from backprop.derive import derive, make_spec, numeric_gradients, vectorise
from backprop.derive import notation as nt
from backprop.derive.budget import paths_to_loss
from backprop.derive.graph import AddSkip, SkipBackward, build
from backprop.derive.report import as_latex, chain_text
from backprop.verify import verify_text

SEED = 20261502

#: The activations a residual block is tried with, as plain NumPy (independent of the tables).
NUMPY_ACTS = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, z / 100),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(z)),
}
NUMPY_LOSSES = {
    "se": lambda y, p: float(np.sum((y - p) ** 2)),
    "half_se": lambda y, p: float(np.sum((y - p) ** 2) / 2),
    "bce": lambda y, p: float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))),
}

#: (layers, activations, loss, residual): the brief's 2-3-3-1 and 3-4-4-4-2 and a few more.
NETWORKS = [
    ("2-3-3-1", "sigmoid,relu,linear", "se", (False, True)),
    ("2-3-3-1", "tanh,sigmoid,linear", "half_se", (False, True)),
    ("3-4-4-4-2", "sigmoid,relu,tanh,linear", "half_se", (False, True, True)),
    ("3-4-4-4-2", "relu,sigmoid,leaky_relu,sigmoid", "bce", (False, True, True)),
    ("3-3-3-3-1", "softplus,elu,sigmoid,linear", "se", (True, True, True)),
    ("2-2-2-1", "linear,tanh,linear", "se", (True, True)),
]


def _spec(layers, acts, loss, residual, bias=True):
    return make_spec(layers, acts, loss, bias=bias, residual=residual)


def _point(d, rng):
    """Parameters, one row and its targets as {symbol: float}."""
    net = d.net
    values = {s: float(rng.normal(scale=0.7)) for s in net.parameters()}
    values |= {s: float(rng.normal()) for s in net.inputs}
    if d.spec.loss == "bce":
        values |= {s: float(rng.integers(0, 2)) for s in net.targets}
    else:
        values |= {s: float(rng.normal()) for s in net.targets}
    return values


def _arrays(d, values):
    """The point as W^k, b^k matrices (rows: inputs), x and y."""
    spec = d.spec
    Ws, bs = [], []
    for k in range(1, spec.depth + 1):
        Ws.append(np.array([[values[nt.weight(k, i, j)] for j in range(1, spec.layers[k] + 1)]
                            for i in range(1, spec.layers[k - 1] + 1)]))
        bs.append(np.array([values[nt.bias(k, j)] if spec.bias else 0.0 for j in range(1, spec.layers[k] + 1)]))
    x = np.array([values[s] for s in d.net.inputs])
    y = np.array([values[s] for s in d.net.targets])
    return Ws, bs, x, y


def _numpy_loss(spec, Ws, bs, x, y):
    """L of one row, the skip added by hand: O^k = g(x W^k + b^k) + O^{k-1} on residual layers."""
    o = x
    for k, (W, b) in enumerate(zip(Ws, bs), start=1):
        a = NUMPY_ACTS[spec.activations[k - 1]](o @ W + b)
        o = a + o if k in spec.residual_layers else a
    return NUMPY_LOSSES[spec.loss](y, o)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("net", NETWORKS, ids=lambda n: f"{n[0]}-{n[1]}")
def test_derivation_matches_finite_differences(net, bias):
    spec = _spec(*net, bias=bias)
    d = derive(spec)
    rng = np.random.default_rng(SEED)
    for _ in range(2):
        values = _point(d, rng)
        derived = numeric_gradients(d, values)
        Ws, bs, x, y = _arrays(d, values)
        h = 1e-6
        for g in d.gradients:
            name, idx = g.key
            arrays = Ws if name[0] == "W" else bs
            k = g.layer - 1
            old = arrays[k][idx]
            arrays[k][idx] = old + h
            up = _numpy_loss(spec, Ws, bs, x, y)
            arrays[k][idx] = old - h
            down = _numpy_loss(spec, Ws, bs, x, y)
            arrays[k][idx] = old
            fd = (up - down) / (2 * h)
            assert derived[g.parameter] == pytest.approx(fd, rel=1e-6, abs=1e-7), (spec.describe(), g.name)


TORCH_ACTS = {
    "linear": lambda t, F: t, "sigmoid": lambda t, F: t.sigmoid(), "tanh": lambda t, F: t.tanh(),
    "relu": lambda t, F: t.relu(), "leaky_relu": lambda t, F: F.leaky_relu(t, 0.01),
    "softplus": lambda t, F: F.softplus(t), "elu": lambda t, F: F.elu(t),
}


def _torch_gradients(d, values):
    """{parameter symbol: ∂L/∂P} by torch autograd in float64 on the same residual network."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    spec = d.spec
    Ws, bs, x, y = _arrays(d, values)
    tW = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in Ws]
    tb = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in bs]
    o = torch.tensor(x, dtype=torch.float64)
    for k, (W, b) in enumerate(zip(tW, tb), start=1):
        a = TORCH_ACTS[spec.activations[k - 1]](o @ W + b, F)
        o = a + o if k in spec.residual_layers else a
    t = torch.tensor(y, dtype=torch.float64)
    loss = {"se": lambda: ((t - o) ** 2).sum(), "half_se": lambda: ((t - o) ** 2).sum() / 2,
            "bce": lambda: F.binary_cross_entropy(o, t, reduction="sum")}[spec.loss]()
    loss.backward()
    out = {}
    for g in d.gradients:
        name, idx = g.key
        grad = (tW if name[0] == "W" else tb)[g.layer - 1].grad.numpy()
        out[g.parameter] = float(grad[idx])
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("net", NETWORKS, ids=lambda n: f"{n[0]}-{n[1]}")
def test_derivation_matches_torch_autograd(net, bias):
    spec = _spec(*net, bias=bias)
    d = derive(spec)
    rng = np.random.default_rng(SEED + 1)
    for _ in range(3):
        values = _point(d, rng)
        torch_grads = _torch_gradients(d, values)
        derived = numeric_gradients(d, values)
        for p, expected in torch_grads.items():
            assert derived[p] == pytest.approx(expected, rel=1e-10, abs=1e-12), (spec.describe(), p)


def test_each_form_agrees_with_the_memo_table():
    """formula (lambdified, forward values in), memoised and the chain's path sum: one number."""
    d = derive(_spec("2-2-2-1", "sigmoid,tanh,linear", "se", (True, True)))
    values = _point(d, np.random.default_rng(SEED + 2))
    memo = numeric_gradients(d, values)
    full = d.net.forward_values(values)
    for g in d.gradients:
        assert g.numpy(values) == pytest.approx(memo[g.parameter], rel=1e-12, abs=1e-14), g.name
        paths = sympy.Add(*[sympy.Mul(*[f.value for f in path]) for path in g.chain])
        assert float(paths.xreplace(full)) == pytest.approx(memo[g.parameter], rel=1e-12, abs=1e-14), g.name


def test_relu_skip_at_its_kink_takes_pytorchs_zero():
    """z_21 = 0 exactly: relu' is 0 there (the sign test reads z, not O_21 - O_11), so only the
    skip's path is left, as torch has it."""
    d = derive(_spec("1-1-1-1", "sigmoid,relu,linear", "half_se", (False, True)))
    values = _point(d, np.random.default_rng(SEED + 3))
    values[nt.weight(2, 1, 1)] = 0.0
    values[nt.bias(2, 1)] = 0.0
    assert d.net.forward_values(values)[nt.preactivation(2, 1)] == 0.0
    derived = numeric_gradients(d, values)
    torch_grads = _torch_gradients(d, values)
    for p, expected in torch_grads.items():
        assert derived[p] == pytest.approx(expected, rel=1e-12, abs=1e-15), p
    assert d.net.slope(2, 1) == sympy.Heaviside(nt.preactivation(2, 1), 0)


# -- the derivation's pieces ------------------------------------------------------------------
def test_memo_table_adds_the_skip_and_writes_g_prime_through_g_of_z():
    d = derive(_spec("1-1-1-1", "sigmoid,sigmoid,linear", "half_se", (False, True)))
    O11, O21 = nt.output(1, 1, 3), nt.output(2, 1, 3)
    assert d.grad_output_definition(1, 1) == nt.grad_output(2, 1) + nt.weight(2, 1, 1) * nt.delta(2, 1)
    # σ'(z_21) = g(1 - g) with g = O_21 - O_11, not O_21 (1 - O_21)
    assert sympy.expand(d.delta_definition(2, 1) - nt.grad_output(2, 1) * (O21 - O11) * (1 - O21 + O11)) == 0
    assert d.delta_definition(1, 1) == nt.grad_output(1, 1) * O11 * (1 - O11)
    assert any("g' is written through sigmoid(z_21) = O_21 - O_11" in a for a in d.assumptions)


@pytest.mark.parametrize("layers,acts,residual,param,paths", [
    ("1-1-1-1", "sigmoid,tanh,linear", (False, True), "w^1_11", 2),  # through z_21, and the skip
    ("2-2-2-1", "sigmoid,tanh,linear", (False, True), "w^1_11", 3),  # two weights and the skip
    ("2-2-2-2-1", "tanh,tanh,tanh,linear", (False, True, True), "b_11", 9),  # 3 · 3 · 1
    ("2-2-2-2-1", "tanh,tanh,tanh,linear", (True, True, False), "w^1_21", 6),  # 3 · 2 · 1
])
def test_chain_counts_the_skip_as_a_path(layers, acts, residual, param, paths):
    spec = _spec(layers, acts, "se", residual)
    d = derive(spec)
    g = d.gradient(param)
    assert len(g.chain) == paths == d.chain_paths(g.layer) == paths_to_loss(spec, g.layer)
    skips = [path for path in g.chain if any(f.skip for f in path)]
    assert skips and all(f.value == 1 for path in skips for f in path if f.skip)
    # a plain network of the same widths has fewer paths
    plain = derive(_spec(layers, acts, "se", ()))
    assert len(plain.gradient(param).chain) < paths


def test_chain_through_z_is_split_and_the_skip_is_its_own_factor():
    d = derive(_spec("1-1-1-1", "sigmoid,sigmoid,linear", "se", (False, True)))
    through_z, skip = d.gradient("w^1_11").chain
    z21, O11, O21 = nt.preactivation(2, 1), nt.output(1, 1, 3), nt.output(2, 1, 3)
    assert [(f.numerator, f.denominator) for f in through_z[2:4]] == [(O21, z21), (z21, O11)]
    assert through_z[3].value == nt.weight(2, 1, 1)
    assert [f.skip for f in skip] == [False, False, True, False]
    assert (skip[2].numerator, skip[2].denominator, skip[2].value) == (O21, O11, 1)


def test_derive_param_prints_both_paths_summed(tmp_path):
    spec_file = tmp_path / "resnet.toml"
    spec_file.write_text('layers = [1, 1, 1, 1]\nactivations = ["sigmoid", "relu", "linear"]\n'
                         'loss = "half_se"\nresidual = [false, true]\n')
    out = subprocess.run([sys.executable, "-m", "backprop.cli.main", "derive", "--spec", str(spec_file),
                          "--param", "w^1_11"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    chain = next(line for line in out.stdout.splitlines() if line.strip().startswith("chain"))
    names, values = chain.split(" = ", 1)
    assert names.count("∂L/∂ŷ") == 2 and "∂O_21/∂z_21 · ∂z_21/∂O_11" in names and "1 (skip)" in names
    assert values.count("[w^3_11]") == 2 and "[1]" in values
    formula = next(line for line in out.stdout.splitlines() if line.strip().startswith("formula"))
    assert "(1 + 1[z_21 > 0] w^2_11)" in formula
    assert "O_21 = max(0, w^2_11 O_11 + b_21) + O_11" in out.stdout
    assert "residual" in out.stdout.splitlines()[0]


# -- the matrix form and the graph --------------------------------------------------------------
def test_graph_has_the_skip_op_and_its_backward_accumulates():
    g = build(_spec("2-2-2-1", "sigmoid,relu,linear", "se", (True, True)))
    skips = [op for op in g.forward if isinstance(op, AddSkip)]
    assert [(op.layer, repr(op.out), repr(op.inp), repr(op.skip)) for op in skips] == [
        (1, "O1", "A1", "X"), (2, "O2", "A2", "O1")]
    back = g.backward()
    sent = [op for op in back if isinstance(op, SkipBackward)]
    assert [(repr(op.out), repr(op.grad), op.accumulate) for op in sent] == [("dO1", "dO2", False)]  # none to X
    dO1 = [op for op in back if op.out.kind == "dO" and op.out.layer == 1]
    assert [type(op).__name__ for op in dO1] == ["SkipBackward", "MatMul"] and dO1[1].accumulate


def test_matrix_form_prints_the_skip():
    eqs = dict(vectorise(_spec("2-2-2-2-1", "sigmoid,relu,tanh,linear", "se", (True, True, False)))
               .equations("text"))
    assert eqs["O^1"] == "sigmoid(Z^1) + X" and eqs["O^2"] == "relu(Z^2) + O^1" and eqs["O^3"] == "tanh(Z^3)"
    assert eqs["∂L/∂O^2"] == "δ^3 W^3ᵀ"
    assert eqs["δ^2"] == "∂L/∂O^2 ⊙ 1[Z^2 > 0]"
    assert eqs["δ^1"] == "(∂L/∂O^2 + δ^2 W^2ᵀ) ⊙ ((O^1 - X) ⊙ (1 - O^1 + X))"


# -- verify ------------------------------------------------------------------------------------
@pytest.mark.parametrize("net", [("1-1-1-1", "sigmoid,relu,linear", "half_se", (False, True)),
                                 ("2-2-2-1", "tanh,sigmoid,linear", "se", (True, True))])
def test_verify_reads_the_derivation_back_correct(net):
    spec = _spec(*net)
    d = derive(spec)
    tex = as_latex(d, vectorise(d), True)  # the per-parameter forms and the matrix form
    verdicts = verify_text(tex, spec).verdicts
    assert [(v.verdict, v.source, v.message) for v in verdicts if v.verdict != "correct"] == []
    assert any(r"\underbrace{1}_{\text{skip}}" in v.source for v in verdicts)
    assert any(r"\frac{\partial L}{\partial O^{2}}" in v.source for v in verdicts)


def test_chain_latex_is_checked_path_by_path():
    spec = _spec("1-1-1-1", "sigmoid,tanh,linear", "half_se", (False, True))
    g = derive(spec).gradient("w^1_11")
    v = verify_text(rf"\frac{{\partial L}}{{\partial w^1_{{11}}}} = {chain_text(g, tex=True)}", spec).verdicts[0]
    assert v.verdict == "correct", v.message


LHS = r"\frac{\partial L}{\partial w^1_{11}} = "


@pytest.mark.parametrize("claim,verdict,label", [
    (r"-(y - \hat{y}) w^3_{11} (1 + \tanh'(z_{21}) w^2_{11}) \sigma'(z_{11}) x_{i1}", "correct", None),
    (r"-(y - \hat{y}) w^3_{11} (1 + (1 - (O_{21} - O_{11})^2) w^2_{11}) O_{11}(1 - O_{11}) x_{i1}", "correct", None),
    (r"-(y - \hat{y}) w^3_{11} \tanh'(z_{21}) w^2_{11} \sigma'(z_{11}) x_{i1}", "wrong", "missing_skip"),
    (r"\frac{\partial L}{\partial \hat{y}} \frac{\partial \hat{y}}{\partial O_{21}} \frac{\partial O_{21}}{\partial z_{21}}"
     r" \frac{\partial z_{21}}{\partial O_{11}} \frac{\partial O_{11}}{\partial w^1_{11}}", "wrong", "missing_skip"),
    # g' of the residual node through O_21 alone (as if there were no skip) is wrong, too
    (r"-(y - \hat{y}) w^3_{11} (1 + (1 - O_{21}^2) w^2_{11}) O_{11}(1 - O_{11}) x_{i1}", "wrong", None),
])
def test_verify_skip_claims(claim, verdict, label):
    spec = _spec("1-1-1-1", "sigmoid,tanh,linear", "half_se", (False, True))
    v = verify_text(LHS + claim, spec).verdicts[0]
    assert v.verdict == verdict, v.message
    if label is not None:
        assert v.misconception["id"] == label and "skip" in v.misconception["label"]


# -- the generated trainer -----------------------------------------------------------------------
TRAINER_NETWORKS = [
    ("2-3-3-1", "sigmoid,relu,linear", "se", (False, True), True),
    ("3-4-4-4-2", "sigmoid,tanh,relu,sigmoid", "bce", (False, True, True), False),
    ("3-3-3-3", "tanh,softmax,softmax", "cce", (True, True), True),
]


def _batch(spec, rng, rows=5):
    X = rng.normal(size=(rows, spec.layers[0]))
    if spec.loss == "cce":
        return X, np.eye(spec.layers[-1])[rng.integers(0, spec.layers[-1], rows)]
    if spec.loss == "bce":
        return X, rng.integers(0, 2, (rows, spec.layers[-1])).astype(float)
    return X, rng.normal(size=(rows, spec.layers[-1]))


@pytest.mark.parametrize("net", TRAINER_NETWORKS, ids=lambda n: f"{n[0]}-{n[1]}")
def test_trainer_gradients_match_finite_differences_and_the_derivation(net):
    from fd import finite_differences

    from backprop.codegen import load_trainer

    *shape, bias = net
    spec = _spec(*shape, bias=bias)
    trainer = load_trainer(spec)
    rng = np.random.default_rng(SEED + 4)
    params = trainer.init_params(seed=3)
    X, Y = _batch(spec, rng)
    _, grads = trainer.loss_and_gradients(params, X, Y)
    fd = finite_differences(trainer, {k: v.copy() for k, v in params.items()}, X, Y)
    for name in grads:
        np.testing.assert_allclose(grads[name], fd[name], rtol=1e-6, atol=1e-8, err_msg=name)
    # one row (one-hot for cce, as the derivation of softmax + cce assumes): the trainer's gradient is the derivation's, number for number
    d = derive(spec)
    values = {s: float(v) for s, v in zip(d.net.inputs, X[0])} | {s: float(v) for s, v in zip(d.net.targets, Y[0])}
    for g in d.gradients:
        name, idx = g.key
        values[g.parameter] = float(params[name][idx])
    _, row = trainer.loss_and_gradients(params, X[:1], Y[:1])
    derived = numeric_gradients(d, values)
    for g in d.gradients:
        name, idx = g.key
        assert row[name][idx] == pytest.approx(derived[g.parameter], rel=1e-9, abs=1e-12), g.name


@pytest.mark.parametrize("net", TRAINER_NETWORKS, ids=lambda n: f"{n[0]}-{n[1]}")
def test_trainer_steps_equal_gradients_then_update(net):
    """The fused step (buffers, g' in place after the skip's copy) and the scalar one-row step
    move every parameter by exactly -η ∂L/∂P of loss_and_gradients."""
    from backprop.codegen import load_trainer

    *shape, bias = net
    spec = _spec(*shape, bias=bias)
    trainer = load_trainer(spec)
    rng = np.random.default_rng(SEED + 5)
    params = trainer.init_params(seed=4)
    X, Y = _batch(spec, rng)
    for rows in (len(X), 1):  # the NumPy step, then the scalar path of one row
        _, grads = trainer.loss_and_gradients(params, X[:rows], Y[:rows])
        stepped = {k: v.copy() for k, v in params.items()}
        trainer.sgd_step(stepped, X[:rows], Y[:rows], 0.1)
        for name in grads:
            np.testing.assert_allclose(stepped[name], params[name] - 0.1 * grads[name], rtol=0, atol=1e-15,
                                       err_msg=f"{name}, {rows} rows")


def test_trainer_prints_the_skip():
    from backprop.codegen import render_trainer

    source = render_trainer(_spec("2-2-2-1", "sigmoid,relu,linear", "se", (True, True)))
    for line in ("A1 = sigmoid(Z1)", "O1 = A1 + X", "O2 = A2 + O1", "dO1 = dO2.copy()",
                 "delta2 = dO2 * relu_derivative(A2)", "dO1 += delta2 @ W2.T", "o2_1 = a2_1 + o1_1",
                 "dO1_1 = dO2_1"):
        assert line in source, line


def test_step_prints_the_skip_path_and_agrees_with_the_trainer(tmp_path):
    spec_file = tmp_path / "resnet.toml"
    spec_file.write_text('layers = [1, 1, 1, 1]\nactivations = ["sigmoid", "relu", "linear"]\n'
                         'loss = "half_se"\nresidual = [false, true]\n')
    out = subprocess.run([sys.executable, "-m", "backprop.cli.main", "step", "--spec", str(spec_file), "--x", "0.5",
                          "--y", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "disagree" not in out.stderr, out.stderr
    # O_11 = σ(0.5), O_21 = relu(O_11) + O_11 (every weight 1, bias 0), ŷ = O_21
    o11 = 1 / (1 + np.exp(-0.5))
    assert f"O_21 = {2 * o11:.6g}" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("∂L/∂w^1_11 ="))
    assert "1 (skip)" in line and line.count("∂L/∂ŷ") == 2
    # the two paths: (ŷ - y) (1 + 1) σ'(0.5) x, the product the step prints
    expected = (2 * o11 - 1) * 2 * o11 * (1 - o11) * 0.5
    assert f"= {expected:.6g}" in out.stdout


def test_teaching_document_writes_the_skip_in_the_forward_pass(tmp_path):
    spec_file = tmp_path / "resnet.toml"
    spec_file.write_text('layers = [1, 1, 1, 1]\nactivations = ["sigmoid", "relu", "linear"]\n'
                         'loss = "half_se"\nresidual = [false, true]\n')
    out = subprocess.run([sys.executable, "-m", "backprop.cli.main", "derive", "--spec", str(spec_file),
                          "--format", "latex", "--standalone"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert r"O_{21} &= \max\left(0, z_{21}\right) + O_{11}" in out.stdout
