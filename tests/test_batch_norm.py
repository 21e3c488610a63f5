"""Batch normalisation: the derivation over a batch (exact against SymPy's own diff on
concrete batches), its NumPy evaluation against torch's nn.BatchNorm1d (training mode,
float64) and finite differences, the network's refusals and the vectorised form."""
import re

import numpy as np
import pytest
import sympy

from backprop.derive import batchnorm as bn

RNG_SEED = 20240615


# -- the derivation ------------------------------------------------------------------------
def _direct(rows: int):
    """∂L/∂z_r, ∂L/∂γ, ∂L/∂β by SymPy's diff of Σ_m g_m z̃_m written out for ``rows`` rows."""
    zs = sympy.symbols(f"z1:{rows + 1}", real=True)
    gs = sympy.symbols(f"g1:{rows + 1}", real=True)
    mean = sum(zs) / rows
    variance = sum((zr - mean) ** 2 for zr in zs) / rows
    xh = [(zr - mean) / sympy.sqrt(variance + bn.eps) for zr in zs]
    L = sum(gm * (bn.gamma * x + bn.beta) for gm, x in zip(gs, xh))
    return zs, gs, mean, variance, xh, L


def _derived_at(r, zs, gs, mean, variance, xh):
    """The derived ∂L/∂z_i for row r, its symbols filled in from the concrete batch."""
    rows = len(zs)
    values = {bn.g_i: gs[r], bn.xhat_i: xh[r], bn.mean_g: sum(gs) / rows,
              bn.mean_gx: sum(gm * x for gm, x in zip(gs, xh)) / rows, bn.var: variance, bn.mu: mean}
    return bn.derivation().dz.xreplace(values)


@pytest.mark.parametrize("rows", [3, 4])
def test_derived_dz_equals_direct_diff_exactly(rows):
    zs, gs, mean, variance, xh, L = _direct(rows)
    rng = np.random.default_rng(RNG_SEED + rows)
    point = {s: sympy.Rational(int(v), 7) for s, v in zip(zs + gs, rng.integers(-20, 21, 2 * rows))}
    point[bn.gamma] = sympy.Rational(3, 2)
    point[bn.beta] = sympy.Rational(-1, 3)
    point[bn.eps] = sympy.Rational(1, 100)
    for r in range(rows):
        direct = sympy.diff(L, zs[r]).xreplace(point)
        derived = _derived_at(r, zs, gs, mean, variance, xh).xreplace(point)
        assert sympy.simplify(direct - derived) == 0
        assert direct != 0  # a real check: the gradient is not trivially zero here


def test_derived_dz_equals_direct_diff_symbolically_for_three_rows():
    zs, gs, mean, variance, xh, L = _direct(3)
    difference = sympy.diff(L, zs[0]) - _derived_at(0, zs, gs, mean, variance, xh)
    assert sympy.simplify(difference) == 0


@pytest.mark.parametrize("rows", [3, 4])
def test_derived_dgamma_dbeta_equal_direct_diff(rows):
    zs, gs, mean, variance, xh, L = _direct(rows)
    d = bn.derivation()
    concrete = lambda e: e.xreplace({bn.n: rows}).doit().xreplace(  # noqa: E731
        {bn.g[r + 1]: gs[r] for r in range(rows)} | {bn.XHAT[r + 1]: xh[r] for r in range(rows)})
    assert sympy.simplify(concrete(d.dgamma) - sympy.diff(L, bn.gamma)) == 0
    assert sympy.simplify(concrete(d.dbeta) - sympy.diff(L, bn.beta)) == 0


def test_the_printed_result_is_the_known_one():
    text = bn.derivation().text()
    assert text == ["∂L/∂z_i = γ/√(σ² + ε) (g_i - mean(g) - mean(g x̂) x̂_i)",
                    "∂L/∂γ = Σ_m g_m x̂_m", "∂L/∂β = Σ_m g_m"]
    tex = bn.derivation().latex()
    assert tex[0].startswith(r"\frac{\partial L}{\partial z_{i}} = \frac{\gamma}{\sqrt{\sigma^{2} + \varepsilon}}")


def test_forgetting_the_batch_means_is_not_the_derivative():
    """γ g_i/√(σ² + ε) (the per-row reading, batch-mean terms forgotten) differs from the
    derivation on a concrete batch: the coupling is real."""
    zs, gs, mean, variance, xh, L = _direct(3)
    point = {zs[0]: 1, zs[1]: 2, zs[2]: 4, gs[0]: 1, gs[1]: -1, gs[2]: 3,
             bn.gamma: 2, bn.beta: 0, bn.eps: sympy.Rational(1, 10)}
    forgot = (bn.gamma * gs[0] / sympy.sqrt(variance + bn.eps)).xreplace(point)
    assert sympy.simplify(sympy.diff(L, zs[0]).xreplace(point) - forgot) != 0


# -- numbers: torch and finite differences -------------------------------------------------
def _batch(rows=6, width=4, seed=RNG_SEED):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, width)) * 2 + 0.5, rng.normal(size=width) + 1, rng.normal(size=width),
            rng.normal(size=(rows, width)))


def _surrogate_loss(Z, gamma, beta, C):
    """A loss that couples nothing but the batch norm: Σ C ⊙ tanh(Z̃)."""
    return float((C * np.tanh(bn.forward(Z, gamma, beta)[0])).sum())


def _grads(Z, gamma, beta, C):
    out, xhat, _, variance = bn.forward(Z, gamma, beta)
    G = C * (1 - np.tanh(out) ** 2)
    return bn.backward(G, xhat, gamma, variance)


def test_against_torch_batchnorm1d_training_mode():
    torch = pytest.importorskip("torch")
    Z, gamma, beta, C = _batch()
    layer = torch.nn.BatchNorm1d(Z.shape[1], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
    layer.train()
    Zt = torch.from_numpy(Z.copy()).requires_grad_(True)
    out = layer(Zt)
    (torch.from_numpy(C) * torch.tanh(out)).sum().backward()
    ours, xhat, mean, variance = bn.forward(Z, gamma, beta)
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=0, atol=1e-12)
    dz, dgamma, dbeta = _grads(Z, gamma, beta, C)
    np.testing.assert_allclose(dz, Zt.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dgamma, layer.weight.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dbeta, layer.bias.grad.numpy(), rtol=0, atol=1e-10)
    running_mean, running_var = bn.running(np.zeros(Z.shape[1]), np.ones(Z.shape[1]), mean, variance, len(Z))
    np.testing.assert_allclose(running_mean, layer.running_mean.numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(running_var, layer.running_var.numpy(), rtol=0, atol=1e-14)
    layer.eval()
    with torch.no_grad():
        evaluated = layer(torch.from_numpy(Z[:2].copy())).numpy()
    np.testing.assert_allclose(bn.inference(Z[:2], gamma, beta, running_mean, running_var), evaluated,
                               rtol=0, atol=1e-12)


def test_finite_differences_of_every_gradient():
    Z, gamma, beta, C = _batch(rows=5, width=3, seed=RNG_SEED + 1)
    dz, dgamma, dbeta = _grads(Z, gamma, beta, C)
    h = 1e-6
    for array, grad in ((Z, dz), (gamma, dgamma), (beta, dbeta)):
        fd = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + h
            up = _surrogate_loss(Z, gamma, beta, C)
            array[idx] = old - h
            down = _surrogate_loss(Z, gamma, beta, C)
            array[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    assert np.abs(dz).max() > 1e-3  # the gradients compared are not all zero


# -- the network, the graph and the matrix form ----------------------------------------------
def _bn_spec():
    from backprop.derive import make_spec

    return make_spec("2-3-3-1", "relu,sigmoid,linear", "half_se", batch_norm=[True, False])


def test_graph_normalises_before_the_activation_and_derives_the_rule():
    from backprop.derive import graph

    g = graph.build(_bn_spec())
    kinds = [type(op).__name__ for op in g.forward[:4]]
    assert kinds == ["MatMul", "AddBias", "BatchNorm", "Activate"]
    assert g.forward[3].inp == graph.Array("Zn", 1)
    assert [repr(p) for p in g.params()] == list(_bn_spec().shapes())
    back = [op for op in g.backward(updates=True) if getattr(op, "layer", None) == 1 or
            getattr(op.out, "layer", None) == 1]
    names = [f"{type(op).__name__}:{op.out!r}" for op in back]
    # dγ, dβ from ∂L/∂Z̃ before δ^1; γ updated only after δ^1 has read it
    assert names.index("SumRowsProduct:dgamma1") < names.index("BatchNormBackward:delta1")
    assert names.index("SumRows:dbeta1") < names.index("BatchNormBackward:delta1")
    assert names.index("BatchNormBackward:delta1") < names.index("Update:gamma1")


def test_vectorised_form_prints_the_forward_and_the_derived_backward():
    from backprop.derive import vectorise

    eq = dict(vectorise(_bn_spec()).equations("text"))
    assert eq["μ^1"] == "(1/n) Σ_rows Z^1"
    assert eq["X̂^1"] == "(Z^1 - μ^1) / √((σ^1)² + ε)"
    assert eq["Z̃^1"] == "γ^1 ⊙ X̂^1 + β^1"
    assert eq["O^1"] == "relu(Z̃^1)"
    assert eq["δ^1"] == ("γ^1 / √((σ^1)² + ε) ⊙ (G - mean_rows(G) - X̂^1 ⊙ mean_rows(G ⊙ X̂^1)),  "
                         "G = ∂L/∂Z̃^1")
    assert eq["∂L/∂Z̃^1"] == "(δ^2 W^2ᵀ) ⊙ 1[O^1 > 0]"
    assert eq["∂L/∂γ^1"] == "Σ_rows ∂L/∂Z̃^1 ⊙ X̂^1"
    assert eq["∂L/∂β^1"] == "Σ_rows ∂L/∂Z̃^1"
    assert "δ^2" in eq and "mean_rows" not in eq["δ^2"]  # the plain layer stays plain
    tex = dict(vectorise(_bn_spec()).equations("latex"))
    assert tex[r"\delta^{1}"].startswith(r"\frac{\gamma^{1}}{\sqrt{\left(\sigma^{1}\right)^{2} + \varepsilon}}")


def test_per_parameter_forms_are_refused_pointing_to_vectorised():
    from backprop.core.errors import UserError
    from backprop.derive import derive

    d = derive(_bn_spec())
    for ask in (lambda: d.gradients, lambda: d.gradient("w^2_11"), lambda: d.resolved_delta(2, 1),
                lambda: d.net.z(2, 1)):
        with pytest.raises(UserError, match=r"batch normalisation \(layer 1\).*--vectorised"):
            ask()


def test_cli_derive_vectorised_and_the_refusals(cli, tmp_path):
    spec = tmp_path / "bn.toml"
    spec.write_text('layers = [2, 3, 1]\nactivations = ["tanh", "linear"]\nloss = "se"\nbatch_norm = [true]\n')
    status, out, err = cli("derive", "--spec", str(spec), "--vectorised")
    assert status == 0 and "δ^1 = γ^1 / √((σ^1)² + ε) ⊙ (G - mean_rows(G)" in out
    status, out, err = cli("derive", "--spec", str(spec))
    assert status == 2 and "--vectorised" in err and "Traceback" not in err and err.count("\n") == 1


def test_draw_shows_gamma_beta_and_the_running_statistics():
    from backprop.pictures import draw
    from backprop.train.row import Values

    spec = _bn_spec()
    params = {name: np.arange(1, np.prod(shape) + 1, dtype=float).reshape(shape) / 4
              for name, shape in spec.shapes().items()}
    params |= {"running_mean1": np.array([0.5, -0.25, 2.0]), "running_var1": np.array([1.5, 0.75, 3.0])}
    grads = {name: -value for name, value in params.items() if not name.startswith("running")}
    rows = dict((node, (lines, table)) for node, lines, table in
                draw._node_rows(spec, Values(params=params, grads=grads)))
    lines, table = rows[(1, 2)]
    assert "γ₁₂ = 0.5, ∂L/∂γ = −0.5" in lines and "β₁₂ = 0.5, ∂L/∂β = −0.5" in lines
    assert "μ₁₂ = −0.25" in lines and "σ²₁₂ = 0.75" in lines
    assert ["σ²₁₂", "0.75", ""] in table
    assert not any(line.startswith(("γ", "μ")) for line in rows[(2, 1)][0])  # layer 2 is plain


# -- the generated trainer ---------------------------------------------------------------------
def _trainer_spec():
    from backprop.derive import make_spec

    return make_spec("3-4-5-2", "tanh,relu,linear", "half_se", batch_norm=[True, True])


def _trained_params(t, seed=RNG_SEED):
    """init_params with γ, β and the biases moved off their start (so none of them is trivial)."""
    rng = np.random.default_rng(seed)
    params = t.init_params(seed=seed)
    for k in t.BATCH_NORM:
        for name, shift in (("gamma", 1.0), ("beta", 0.0), ("b", 0.0)):
            params[f"{name}{k}"] = rng.normal(size=params[f"{name}{k}"].shape) + shift
    return params


def _torch_model(torch, spec, params):
    """nn.Linear + nn.BatchNorm1d + the activation per hidden layer, float64, the same numbers."""
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
    linears, norms, layers = [], [], []
    for k in range(1, spec.depth + 1):
        linear = torch.nn.Linear(spec.layers[k - 1], spec.layers[k], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(params[f"W{k}"].T.copy()))
            linear.bias.copy_(torch.from_numpy(params[f"b{k}"]))
        linears.append(linear)
        layers.append(linear)
        if k in spec.batch_norm_layers:
            norm = torch.nn.BatchNorm1d(spec.layers[k], dtype=torch.float64)
            with torch.no_grad():
                norm.weight.copy_(torch.from_numpy(params[f"gamma{k}"]))
                norm.bias.copy_(torch.from_numpy(params[f"beta{k}"]))
            norms.append(norm)
            layers.append(norm)
        if k < spec.depth:
            layers.append(acts[spec.activations[k - 1]]())
    return torch.nn.Sequential(*layers), linears, norms


def test_generated_trainer_against_torch_training_and_eval_mode():
    torch = pytest.importorskip("torch")
    from backprop.codegen import load_trainer

    spec = _trainer_spec()
    t = load_trainer(spec)
    params = _trained_params(t)
    rng = np.random.default_rng(RNG_SEED + 7)
    X, Y = rng.normal(size=(7, 3)) * 2 + 1, rng.normal(size=(7, 2))
    model, linears, norms = _torch_model(torch, spec, params)
    model.train()
    out = model(torch.from_numpy(X))
    loss = 0.5 * ((out - torch.from_numpy(Y)) ** 2).sum() / len(X)
    loss.backward()
    L, grads = t.loss_and_gradients(params, X, Y)
    assert L == pytest.approx(loss.item(), rel=1e-12)
    assert t.forward(params, X, training=True) == pytest.approx(out.detach().numpy(), abs=1e-12)
    assert set(grads) == set(spec.shapes())  # every learnt parameter, never the running statistics
    for k, linear in enumerate(linears, start=1):
        np.testing.assert_allclose(grads[f"W{k}"], linear.weight.grad.numpy().T, rtol=0, atol=1e-10)
        np.testing.assert_allclose(grads[f"b{k}"], linear.bias.grad.numpy(), rtol=0, atol=1e-10)
    for k, norm in zip(spec.batch_norm_layers, norms):
        np.testing.assert_allclose(grads[f"gamma{k}"], norm.weight.grad.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(grads[f"beta{k}"], norm.bias.grad.numpy(), rtol=0, atol=1e-10)
        assert np.abs(grads[f"gamma{k}"]).max() > 1e-3  # compared values that are not all zero
    # one step: the running statistics move as torch's did in its training forward
    stepped = {name: value.copy() for name, value in params.items()}
    t.sgd_step(stepped, X, Y, 0.1)
    for k, norm in zip(spec.batch_norm_layers, norms):
        np.testing.assert_allclose(stepped[f"running_mean{k}"], norm.running_mean.numpy(), rtol=0, atol=1e-14)
        np.testing.assert_allclose(stepped[f"running_var{k}"], norm.running_var.numpy(), rtol=0, atol=1e-14)
        assert not np.allclose(stepped[f"running_var{k}"], 1.0)
    # eval mode: the running statistics, each row on its own
    model.eval()
    evaluated = {**params, **{k: v for k, v in stepped.items() if k.startswith("running")}}
    with torch.no_grad():
        expected = model(torch.from_numpy(X[:3])).numpy()
    np.testing.assert_allclose(t.forward(evaluated, X[:3]), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(t.forward(evaluated, X[:1]), expected[:1], rtol=0, atol=1e-12)


def test_the_fused_step_is_loss_and_gradients_then_the_update():
    from backprop.codegen import load_trainer

    t = load_trainer(_trainer_spec())
    params = _trained_params(t)
    rng = np.random.default_rng(RNG_SEED + 8)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    fused = {name: value.copy() for name, value in params.items()}
    before = t.sgd_step(fused, X, Y, 0.05)
    plain = {name: value.copy() for name, value in params.items()}
    untouched = {name: value.copy() for name, value in params.items()}
    L, grads = t.loss_and_gradients(untouched, X, Y)  # no update_running: the running stats stay
    assert all(np.array_equal(untouched[k], params[k]) for k in params)
    L, grads = t.loss_and_gradients(plain, X, Y, update_running=True)
    for name, g in grads.items():
        plain[name] -= 0.05 * g
    assert before == L
    for name in params:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-13, atol=1e-15, err_msg=name)
    assert not hasattr(t, "_sgd_step_scalar")  # rows couple: no one-row float path


def test_an_optimiser_step_moves_the_running_statistics_too():
    from backprop.codegen import load_trainer

    t = load_trainer(_trainer_spec())
    params = _trained_params(t)
    rng = np.random.default_rng(RNG_SEED + 9)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    state = t.optimizer_state(params, "adam")
    assert not any(key.startswith("running") for key in state["m"])
    trained = {name: value.copy() for name, value in params.items()}
    t.train(trained, X, Y, epochs=1, lr=0.01, optimizer="adam", state=state)
    expected = {name: value.copy() for name, value in params.items()}
    t.loss_and_gradients(expected, X, Y, update_running=True)
    for k in t.BATCH_NORM:
        for stat in ("running_mean", "running_var"):
            np.testing.assert_array_equal(trained[f"{stat}{k}"], expected[f"{stat}{k}"])
            assert not np.array_equal(trained[f"{stat}{k}"], params[f"{stat}{k}"])


def test_generated_gradients_against_finite_differences():
    from backprop.codegen import load_trainer
    from backprop.derive import make_spec

    spec = make_spec("2-3-3-1", "sigmoid,tanh,sigmoid", "bce", batch_norm=[True, True])
    t = load_trainer(spec)
    params = _trained_params(t, seed=RNG_SEED + 3)
    rng = np.random.default_rng(RNG_SEED + 4)
    X, Y = rng.normal(size=(5, 2)), rng.integers(0, 2, size=(5, 1)).astype(float)
    _, grads = t.loss_and_gradients(params, X, Y)
    h = 1e-6
    for name in spec.shapes():
        fd = np.zeros_like(params[name])
        for idx in np.ndindex(fd.shape):
            old = params[name][idx]
            params[name][idx] = old + h
            up = t.loss(params, X, Y, training=True)
            params[name][idx] = old - h
            down = t.loss(params, X, Y, training=True)
            params[name][idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-9, err_msg=name)
    assert np.abs(grads["gamma1"]).max() > 1e-4


def test_init_eval_mode_and_the_plain_layer_in_between():
    from backprop.codegen import load_trainer, render_trainer
    from backprop.derive import make_spec

    spec = make_spec("2-3-3-1", "relu,tanh,linear", "se", batch_norm=[False, True])
    t = load_trainer(spec)
    params = t.init_params(seed=0)
    assert t.BATCH_NORM == (2,)
    assert set(params) == set(spec.shapes()) | {"running_mean2", "running_var2"}
    np.testing.assert_array_equal(params["gamma2"], np.ones(3))
    np.testing.assert_array_equal(params["beta2"], np.zeros(3))
    np.testing.assert_array_equal(params["running_mean2"], np.zeros(3))
    np.testing.assert_array_equal(params["running_var2"], np.ones(3))
    X = np.random.default_rng(1).normal(size=(4, 2))
    nodes = t.nodes(params, X)
    assert list(nodes) == ["Z1", "O1", "Z2", "Xhat2", "Zn2", "O2", "Z3", "O3"]
    # eval mode at the start: running mean 0, variance 1, γ = 1, β = 0: Z̃ = Z / √(1 + ε)
    np.testing.assert_allclose(nodes["Zn2"], nodes["Z2"] / np.sqrt(1 + bn.EPS), rtol=1e-15)
    trained = t.nodes(params, X, training=True)
    np.testing.assert_allclose(trained["Xhat2"].mean(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(trained["Xhat2"].var(axis=0), 1 / (1 + bn.EPS / trained["Z2"].var(axis=0)), rtol=1e-12)
    source = render_trainer(spec)
    assert max(len(line) for line in source.splitlines()) <= 99
    assert "mean_g2 = dZn2.mean(axis=0)" in source and "mean_gxhat2 = (dZn2 * Xhat2).mean(axis=0)" in source
    assert "# δ^2 = γ^2 / √((σ^2)² + ε) ⊙ (G - mean_rows(G) - X̂^2 ⊙ mean_rows(G ⊙ X̂^2))" in source
    assert "Xhat1" not in source  # layer 1 is plain


def test_float32_trainer_keeps_its_dtype():
    from backprop.codegen import load_trainer

    t = load_trainer(_trainer_spec(), dtype="float32")
    params = t.init_params(seed=0)
    X = np.random.default_rng(2).normal(size=(5, 3))
    Y = np.random.default_rng(3).normal(size=(5, 2))
    t.sgd_step(params, X, Y, 0.1)
    assert {value.dtype for value in params.values()} == {np.dtype(np.float32)}
    assert t.forward(params, X).dtype == np.float32


def test_backprop_train_on_a_batch_norm_spec_and_the_model_file_round_trip(cli, tmp_path):
    from backprop.codegen import load_trainer
    from backprop.train.model import load_model

    spec_file = tmp_path / "bn.toml"
    spec_file.write_text('layers = [4, 6, 3]\nactivations = ["relu", "softmax"]\nloss = "cce"\n'
                         'batch_norm = [true]\n')
    out = tmp_path / "model.json"
    status, _, err = cli("train", "--spec", str(spec_file), "--example", "iris", "--epochs", "20",
                         "--seed", "0", "--params-out", str(out), "--quiet")
    assert status == 0, err
    model = load_model(out)
    assert model.spec.batch_norm_layers == [1]
    assert set(model.params) == {"W1", "b1", "gamma1", "beta1", "running_mean1", "running_var1", "W2", "b2"}
    assert not np.allclose(model.params["running_var1"], 1.0)  # training moved them
    assert np.all(model.params["running_var1"] > 0)
    t = load_trainer(model.spec)
    again = t.load_model(str(out))  # the trainer's own reader takes backprop's file
    for name, value in model.params.items():
        np.testing.assert_array_equal(again[name], value)
    from pathlib import Path

    iris = Path(__file__).parents[1] / "train" / "examples" / "iris.csv"
    status, out_text, err = cli("predict", "--params", str(out), "--data", str(iris))
    assert status == 0, err
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(out_text)))
    P = np.array([[float(r[f"p_{name}"]) for name in model.classes] for r in rows])
    raw = np.array([[float(v) for k, v in r.items() if k != "species"]
                    for r in csv.DictReader(iris.open(encoding="utf-8"))])
    np.testing.assert_allclose(P, t.forward(model.params, model.scale(raw)), rtol=1e-12)  # eval mode


def test_model_file_running_statistics_checked_and_filled(tmp_path):
    import json

    from backprop.core.errors import UserError
    from backprop.train.model import check_params

    spec = _bn_spec()
    data = {name: np.ones(shape).tolist() for name, shape in spec.shapes().items()}
    params = check_params("p.json", data, spec)
    np.testing.assert_array_equal(params["running_mean1"], np.zeros(3))  # none in the file: fresh
    np.testing.assert_array_equal(params["running_var1"], np.ones(3))
    with pytest.raises(UserError, match="running_var1 holds a value that is not at least 0"):
        check_params("p.json", {**data, "running_var1": [1, -1, 1]}, spec)
    with pytest.raises(UserError, match="running_mean1 must be a list of 3 numbers"):
        check_params("p.json", {**data, "running_mean1": [0, 0]}, spec)
    with pytest.raises(UserError, match="running_mean2 is not a parameter"):
        check_params("p.json", {**data, "running_mean2": [0]}, spec)
    kept = check_params("p.json", {**data, "running_mean1": [1, 2, 3]}, spec)
    np.testing.assert_array_equal(kept["running_mean1"], [1, 2, 3])
    assert "running_mean1" not in check_params("p.json", data, spec, running=False)
    json.dumps({k: v.tolist() for k, v in kept.items()})


# -- backprop step on a batch-normalised network ----------------------------------------------
_STEP_ROWS = ("--x", "1,2", "--y", "1", "--x", "0,1", "--y", "0", "--x", "2,0.5", "--y", "1")


def _step_spec(tmp_path, optimizer=""):
    path = tmp_path / "bn.toml"
    path.write_text('layers = [2, 2, 1]\nactivations = ["sigmoid", "linear"]\nloss = "half_se"\n'
                    f'batch_norm = [true]\n{optimizer}')
    return path


def test_step_shows_gamma_beta_mu_sigma_and_the_running_statistics(cli, tmp_path):
    import json

    from backprop.codegen import load_trainer
    from backprop.derive import load_toml

    spec_file = _step_spec(tmp_path)
    status, out, err = cli("step", "--spec", str(spec_file), *_STEP_ROWS, "--init", "glorot", "--seed", "3")
    assert status == 0, err
    status, text, err = cli("step", "--spec", str(spec_file), *_STEP_ROWS, "--init", "glorot", "--seed", "3",
                            "--json")
    assert status == 0, err
    data = json.loads(text)
    t = load_trainer(load_toml(spec_file))
    params = t.init_params(seed=3, scheme="glorot")
    X, Y = np.array([[1, 2], [0, 1], [2, 0.5]]), np.array([[1.0], [0.0], [1.0]])
    L, grads = t.loss_and_gradients(params, X, Y)
    Z1 = X @ params["W1"] + params["b1"]
    assert data["loss"] == L
    np.testing.assert_allclose(data["nodes"]["mu1"], Z1.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(data["nodes"]["var1"], Z1.var(axis=0), rtol=1e-14)
    np.testing.assert_allclose(data["grads"]["gamma1"], grads["gamma1"], rtol=1e-15)
    stepped = {k: v.copy() for k, v in params.items()}
    t.sgd_step(stepped, X, Y, 0.1)
    for name, value in stepped.items():  # the update and the running statistics are sgd_step's
        np.testing.assert_allclose(data["params"][name], value, rtol=1e-15, err_msg=name)
    assert data["params"]["running_mean1"] == pytest.approx(0.1 * Z1.mean(axis=0), rel=1e-12)
    assert data["loss_after"] == pytest.approx(t.loss(stepped, X, Y), rel=1e-15)
    assert "Batch norm couples the rows" in out
    assert f"μ_11 = {_fmt(Z1.mean(axis=0)[0])}, σ²_11 = {_fmt(Z1.var(axis=0)[0])}" in out
    assert f"∂L/∂γ_12 = {_fmt(grads['gamma1'][1])}" in out
    assert f"γ_11 = 1 - 0.1 × {_factor(grads['gamma1'][0])} = {_fmt(stepped['gamma1'][0])}" in out
    assert (f"node 11: μ = 0 -> {_fmt(stepped['running_mean1'][0])}, σ² = 1 -> "
            f"{_fmt(stepped['running_var1'][0])}") in out
    assert "∂L/∂z_i = γ/√(σ² + ε) (g_i - mean(g) - mean(g x̂) x̂_i)" in out


def _fmt(value):
    from backprop.train.onestep import fmt

    return fmt(float(value))


def _factor(value):
    from backprop.train.onestep import factor

    return factor(float(value))


def test_step_with_adam_moves_the_running_statistics_and_refusals(cli, tmp_path):
    import json

    spec_file = _step_spec(tmp_path, '[optimizer]\nname = "adam"\n')
    status, text, err = cli("step", "--spec", str(spec_file), *_STEP_ROWS, "--json")
    assert status == 0, err
    data = json.loads(text)
    assert data["optimizer"]["settings"]["name"] == "adam" and data["optimizer"]["t"] == 1
    Z1 = np.array([[1, 2], [0, 1], [2, 0.5]]) @ np.ones((2, 2))  # --init ones: w = 1, b = 0
    assert data["params"]["running_mean1"] == pytest.approx(0.1 * Z1.mean(axis=0), rel=1e-12)
    assert data["params"]["running_var1"] == pytest.approx(0.9 + 0.1 * Z1.var(axis=0, ddof=1), rel=1e-12)
    status, out, err = cli("step", "--spec", str(spec_file), "--x", "1,2", "--y", "1")
    assert status == 2 and "its step takes two rows or more" in err and err.count("\n") == 1
    status, tex, err = cli("step", "--spec", str(spec_file), *_STEP_ROWS, "--format", "latex")
    assert status == 0 and err == ""  # adam's every assignment, broken to fit A4
    _check_latex(tex)
    assert r"\hat{m} &= \frac{m}{1 - \beta_1^{t}}" in tex and "% update with adam" in tex
    assert _numbers(_row(tex, r"\gamma_{12} &= ", last=True))[-1] == pytest.approx(data["params"]["gamma1"][1], rel=5e-6)


# -- backprop step --format latex on a batch-normalised network ---------------------------------
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?: \\times 10\^\{(-?\d+)\})?")


def _numbers(tex: str) -> list[float]:
    """Every number printed in ``tex`` (tex_number's 1.2 \\times 10^{-4} read as 1.2e-4)."""
    return [float(m.group(0).split(" ")[0]) * 10.0 ** int(m.group(1) or 0) for m in _NUMBER.finditer(tex)]


def _row(tex: str, start: str, last: bool = False) -> str:
    """The (first or ``last``) align* row starting with ``start`` and its continuation rows
    (&\\quad ...) joined, the left-hand side dropped (its indices are not numbers of the step)."""
    lines = tex.splitlines()
    at = [n for n, line in enumerate(lines) if line.startswith(start)][-1 if last else 0]
    out = [lines[at][len(start):]]
    for line in lines[at + 1:]:
        if not line.startswith(r"&\quad"):
            break
        out.append(line)
    return " ".join(out)


def _check_latex(tex: str) -> None:
    """Balanced as pdflatex needs it: braces never closing more than opened, every row's
    \\left/\\right paired, $ paired, align* opened and closed without a break before its end;
    every row of maths no wider than an A4 row by teaching's estimate (the block's widest
    left-hand side counted)."""
    from backprop.derive.teaching import A4_WIDTH, rendered_width

    body = [line for line in tex.splitlines() if not line.startswith("%")]
    depth = 0
    for char in "\n".join(body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    for line in body:
        assert line.count(r"\left") == line.count(r"\right"), line
        assert line.count("$") % 2 == 0, line
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") > 0
    for env in tex.split(r"\begin{align*}")[1:]:
        rows = [line for line in env.split(r"\end{align*}")[0].strip().splitlines() if not line.startswith("%")]
        assert not rows[-1].rstrip().endswith("\\\\")
        column = max(rendered_width(row.partition("&")[0]) for row in rows)
        for row in rows:
            right = row.partition("&")[2].removesuffix("\\\\")
            assert column + rendered_width(right) <= A4_WIDTH, row


_BN_SPEC = 'layers = [2, 3, 1]\nactivations = ["tanh", "linear"]\nloss = "se"\nbatch_norm = [true]\n'


def test_step_latex_of_a_batch_norm_network_is_balanced_and_its_numbers_are_the_jsons(cli, tmp_path):
    import json

    spec_file = tmp_path / "bn.toml"
    spec_file.write_text(_BN_SPEC)
    args = ("step", "--spec", str(spec_file), *_STEP_ROWS, "--init", "glorot", "--seed", "3")
    status, tex, err = cli(*args, "--format", "latex")
    assert status == 0 and err == ""
    data = json.loads(cli(*args, "--json")[1])
    _check_latex(tex)
    assert tex.count(r"\begin{align*}") == 3  # forward pass, gradients, update
    nodes, before = data["nodes"], {k: np.array(v) for k, v in data["params"].items()}
    for j in range(3):
        node = f"{{1{j + 1}}}"
        for lhs, name in (("z", "Z1"), (r"\hat{x}", "Xhat1"), (r"\tilde{z}", "Zn1"), ("O", "O1")):
            assert _numbers(_row(tex, f"{lhs}_{node} &= ")) == pytest.approx(np.array(nodes[name])[:, j], rel=5e-6)
        mu, var = _numbers(_row(tex, rf"\mu_{node} &= ").replace(rf"\sigma^{{2}}_{node}", ""))
        assert (mu, var) == pytest.approx((nodes["mu1"][j], nodes["var1"][j]), rel=5e-6)
        assert _numbers(_row(tex, rf"\gamma_{node} &= ").replace(rf"\beta_{node}", "")) == [1, 0]
        # the running statistics: 0.9 · before + 0.1 · (3/2 for σ²) · batch = the model file's after
        keep, old_mu, momentum, batch_mu, after_mu = _numbers(_row(tex, rf"\bar{{\mu}}_{node} &= "))
        assert (keep, old_mu, momentum, batch_mu) == pytest.approx((0.9, 0.0, 0.1, nodes["mu1"][j]), rel=5e-6)
        assert after_mu == pytest.approx(0.1 * nodes["mu1"][j], rel=5e-6)
        assert after_mu == pytest.approx(before["running_mean1"][j], rel=5e-6)
        keep, old_var, momentum, n, n1, batch_var, after_var = _numbers(_row(tex, rf"\bar{{\sigma}}^{{2}}_{node} &= "))
        assert (keep, old_var, n, n1) == (0.9, 1.0, 3, 2) and batch_var == pytest.approx(nodes["var1"][j], rel=5e-6)
        assert after_var == pytest.approx(0.9 + 0.1 * 1.5 * nodes["var1"][j], rel=5e-6)
        assert after_var == pytest.approx(before["running_var1"][j], rel=5e-6)
    assert _numbers(_row(tex, r"\hat{y}_{1} &= ")) == pytest.approx(np.array(nodes["O2"])[:, 0], rel=5e-6)
    assert _numbers(_row(tex, "x_{i2} &= ")) == [2, 1, 0.5] and _numbers(_row(tex, "y_{1} &= ")) == [1, 0, 1]
    assert _numbers(_row(tex, "L &= ")) == pytest.approx([data["loss"]], rel=5e-6)
    # every gradient (two to a row) and every update, in the JSON's numbers
    names = {"w^{1}_{23}": ("W1", (1, 2)), "b_{13}": ("b1", (2,)), r"\gamma_{12}": ("gamma1", (1,)),
             r"\beta_{13}": ("beta1", (2,)), "w^{2}_{31}": ("W2", (2, 0)), "b_{21}": ("b2", (0,))}
    grads = {k: np.array(v) for k, v in data["grads"].items()}
    for tex_name, (key, index) in names.items():
        shown = re.search(re.escape(rf"\frac{{\partial L}}{{\partial {tex_name}}}") + r" &?= (.*?)(?:,\\quad| \\\\|$)",
                          tex, re.M).group(1)
        assert _numbers(shown) == pytest.approx([grads[key][index]], rel=5e-6, abs=1e-20), tex_name
        old, lr, grad, new = _numbers(_row(tex, f"{tex_name} &= ", last=True))  # γ, β: the forward's first
        assert lr == 0.1 and grad == pytest.approx(grads[key][index], rel=5e-6, abs=1e-20)
        assert new == pytest.approx(old - 0.1 * grad, rel=1e-5, abs=1e-20)
        assert new == pytest.approx(before[key][index], rel=5e-6, abs=1e-20)
    assert tex.count(r"\frac{\partial L}{\partial") == 6 + 3 + 3 + 3 + 3 + 1 + 3  # every parameter's, the rule's 3
    assert (r"\frac{\partial L}{\partial z_{i}} &= \frac{\gamma}{\sqrt{\sigma^{2} + \varepsilon}} \left(g_{i} - "
            r"\overline{g} - \overline{g\,\hat{x}} \hat{x}_{i}\right) \\") in tex
    training, evaluated = _numbers(_row(tex, r"L_{\text{after}} &= "))
    assert (training, evaluated) == pytest.approx((data["loss_after_training"], data["loss_after"]), rel=5e-6)
    status, doc, err = cli(*args, "--format", "latex", "--standalone")
    assert status == 0 and err == "" and doc.count(r"\begin{document}") == doc.count(r"\end{document}") == 1
    assert r"\allowdisplaybreaks" in doc and tex in doc


def test_step_latex_of_a_long_batch_breaks_its_lists_to_fit_a4(cli, tmp_path):
    """Twelve rows: every list of the forward pass is broken between numbers (\\right. ...
    \\left.), each row fits A4 and the numbers read back in order are the JSON's."""
    import json

    spec_file = tmp_path / "bn.toml"
    spec_file.write_text(_BN_SPEC)
    rows = [arg for m in range(12) for arg in (f"--x={m % 5 - 2.25},{m * 0.37 - 1}", "--y", str(m % 3))]
    args = ("step", "--spec", str(spec_file), *rows, "--init", "glorot", "--seed", "1")
    status, tex, err = cli(*args, "--format", "latex")
    assert status == 0 and err == ""
    _check_latex(tex)
    data = json.loads(cli(*args, "--json")[1])
    for lhs, name in (("z_{12} &= ", "Z1"), (r"\hat{x}_{12} &= ", "Xhat1"), ("O_{12} &= ", "O1")):
        text = _row(tex, lhs)
        assert r"\right. \\" in text and r"&\quad \left." in text  # broken, and balanced on each row
        assert _numbers(text) == pytest.approx(np.array(data["nodes"][name])[:, 1], rel=5e-6)
