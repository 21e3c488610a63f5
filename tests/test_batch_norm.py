"""Batch normalisation: the derivation over a batch (exact against SymPy's own diff on
concrete batches), its NumPy evaluation against torch's nn.BatchNorm1d (training mode,
float64) and finite differences, the network's refusals and the vectorised form."""
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
