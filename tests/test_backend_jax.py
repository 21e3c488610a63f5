"""The jax backend (issue 16): the derived gradients printed in jax.numpy equal the NumPy
trainer's (float64, <= 1e-12) and an independent jax.grad of the loss written here from the
activation and loss definitions; train() (batch, ragged mini-batch, SGD, shuffled; adam)
ends where the NumPy trainer ends; float32 stays float32; the source is valid, at most 99
characters a line, and imports numpy and jax only.

Compiles are bounded (one module per spec, each checked several ways): the machine is small.
"""
import ast

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from backprop.codegen import load_trainer, render_trainer  # noqa: E402
from backprop.core.errors import UserError  # noqa: E402
from backprop.derive import ACTIVATIONS, LOSSES, make_spec  # noqa: E402

#: The suite: every activation and every loss, depths 1 to 4, bias on and off, a residual net.
SUITE = [
    make_spec((3, 5, 2), ("tanh", "softmax"), "cce"),
    make_spec((4, 6, 5, 1), ("sigmoid", "relu", "sigmoid"), "bce", bias=False),
    make_spec((2, 4, 4, 4, 3), ("leaky_relu", "softplus", "elu", "linear"), "se"),
    make_spec((3, 7, 3), ("selu", "tanh"), "half_se"),
    make_spec((5, 4, 6, 2), ("gelu", "swish", "linear"), "mse", bias=False),
    make_spec((3, 4, 4, 2), ("step", "softmax", "tanh"), "hinge"),
    make_spec((2, 3, 3, 3, 2), ("relu", "tanh", "sigmoid", "softmax"), "cce",
              residual=(False, True, True)),
    make_spec((4, 3), ("linear",), "se", bias=False),
]
IDS = ["-".join(map(str, s.layers)) + f"-{s.loss}" for s in SUITE]

#: The activations and losses as JAX writes them (jax.nn where it has them): the reference.
ACT = {
    "linear": lambda z: z,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "softplus": jax.nn.softplus,
    "step": lambda z: jnp.heaviside(z, 1.0),
    "softmax": lambda z: jax.nn.softmax(z, axis=1),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": lambda z: jax.nn.gelu(z, approximate=True),
    "swish": jax.nn.silu,
}
LOSS = {
    "se": lambda Y, P: ((Y - P) ** 2).sum(axis=1),
    "half_se": lambda Y, P: ((Y - P) ** 2).sum(axis=1) / 2,
    "mse": lambda Y, P: ((Y - P) ** 2).mean(axis=1),
    "bce": lambda Y, P: -(Y * jnp.log(P) + (1 - Y) * jnp.log(1 - P)).sum(axis=1),
    "cce": lambda Y, P: -(Y * jnp.log(P)).sum(axis=1),
    "hinge": lambda Y, P: jnp.maximum(0, 1 - Y * P).sum(axis=1),
}


def test_the_suite_covers_every_activation_and_loss():
    assert {a for s in SUITE for a in s.activations} == set(ACTIVATIONS) == set(ACT)
    assert {s.loss for s in SUITE} == set(LOSSES) == set(LOSS)


def reference_loss(spec):
    """The batch loss as a function of the parameters, from the definitions above (not from
    the generated code): what jax.grad differentiates."""
    def loss(params, X, Y):
        O = X
        for k, act in enumerate(spec.activations, start=1):
            Z = O @ params[f"W{k}"] + (params[f"b{k}"] if spec.bias else 0)
            A = ACT[act](Z)
            O = A + O if k in spec.residual_layers else A
        return LOSS[spec.loss](Y, O).mean()
    return loss


def data(spec, rows, seed):
    """Seeded rows and targets of the loss's kind (one-hot, 0/1, ±1 or real)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, spec.layers[0]))
    out = spec.layers[-1]
    if spec.loss == "cce":
        Y = np.eye(out)[rng.integers(0, out, rows)]
    elif spec.loss == "bce":
        Y = rng.integers(0, 2, (rows, out)).astype(float)
    elif spec.loss == "hinge":
        Y = rng.choice([-1.0, 1.0], (rows, out))
    else:
        Y = rng.normal(size=(rows, out))
    return X, Y


def start(module, spec, seed):
    """Glorot weights and small random biases (zero biases would hide a bias-gradient slip)."""
    params = module.init_params(seed=seed)
    rng = np.random.default_rng(seed + 100)
    for k in range(1, spec.depth + 1):
        if spec.bias:
            params[f"b{k}"] = 0.3 * rng.normal(size=params[f"b{k}"].shape)
    return params


def close(actual, expected, rel):
    """|actual - expected| <= rel × max|expected| (relative to the array's scale)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert float(np.abs(actual - expected).max()) <= rel * scale, (actual, expected)


@pytest.mark.parametrize("spec", SUITE, ids=IDS)
def test_derived_gradients_equal_numpy_and_jax_grad(spec):
    numpy_trainer, jax_trainer = load_trainer(spec), load_trainer(spec, backend="jax")
    reference = jax.jit(jax.value_and_grad(reference_loss(spec)))
    for seed, rows in ((1, 7), (2, 16)):
        params = start(numpy_trainer, spec, seed)
        X, Y = data(spec, rows, seed)
        L_np, g_np = numpy_trainer.loss_and_gradients(params, X, Y)
        L_jax, g_jax = jax_trainer.loss_and_gradients(params, X, Y)
        L_ref, g_ref = reference({k: jnp.asarray(v) for k, v in params.items()}, X, Y)
        assert isinstance(L_jax, float) and L_jax == pytest.approx(L_np, rel=1e-12)
        assert L_jax == pytest.approx(float(L_ref), rel=1e-12)  # the reference is the same loss
        assert set(g_jax) == set(g_np) == set(params)
        for key in params:
            assert isinstance(g_jax[key], np.ndarray) and g_jax[key].dtype == np.float64
            close(g_jax[key], g_np[key], 1e-12)
            close(g_jax[key], np.asarray(g_ref[key]), 1e-12)
        if spec.activations[0] != "step":  # step's g' = 0: the first layer learns nothing
            assert np.abs(g_jax["W1"]).max() > 1e-6
        # the other public maths: forward (every node), loss, nodes
        np.testing.assert_allclose(jax_trainer.forward(params, X), numpy_trainer.forward(params, X),
                                   rtol=1e-12, atol=1e-15)
        every = jax_trainer.forward(params, X, every_node=True)
        for mine, theirs in zip(every, numpy_trainer.forward(params, X, every_node=True), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-15)
        assert jax_trainer.loss(params, X, Y) == pytest.approx(L_np, rel=1e-12)
        assert set(jax_trainer.nodes(params, X)) == set(numpy_trainer.nodes(params, X))


TRAINED = [SUITE[0], SUITE[6]]  # softmax + cce; a residual network with se-free cce
MODES = {"batch": None, "mini-ragged": 4, "sgd": 1}


@pytest.mark.parametrize("spec", TRAINED, ids=[IDS[0], IDS[6]])
def test_train_ends_where_the_numpy_trainer_ends(spec):
    numpy_trainer, jax_trainer = load_trainer(spec), load_trainer(spec, backend="jax")
    X, Y = data(spec, 11, 3)
    for mode, batch_size in MODES.items():
        p_np, p_jax = start(numpy_trainer, spec, 4), start(numpy_trainer, spec, 4)
        s_np, s_jax = numpy_trainer.optimizer_state(p_np), jax_trainer.optimizer_state(p_jax)
        seen = []
        h_np = numpy_trainer.train(p_np, X, Y, 5, 0.3, batch_size=batch_size, seed=9, state=s_np)
        h_jax = jax_trainer.train(p_jax, X, Y, 5, 0.3, batch_size=batch_size, seed=9, state=s_jax,
                                  callback=lambda e, loss, p: seen.append((e, loss, p["W1"].copy())))
        np.testing.assert_allclose(h_jax, h_np, rtol=1e-12, err_msg=mode)
        assert h_jax[-1] < h_jax[0]  # it learns
        for key in p_np:
            assert isinstance(p_jax[key], np.ndarray) and p_jax[key].dtype == np.float64
            np.testing.assert_allclose(p_jax[key], p_np[key], rtol=1e-12, atol=1e-14, err_msg=mode)
        assert s_jax["t"] == s_np["t"] == 5 * -(-11 // (batch_size or 11))
        assert s_jax.get("shuffle") == s_np.get("shuffle")
        # the callback saw params' own arrays, written at each epoch, and the epoch's loss
        assert [e for e, _, _ in seen] == [1, 2, 3, 4, 5]
        assert [loss for _, loss, _ in seen] == h_jax
        assert not np.array_equal(seen[0][2], seen[-1][2])
        np.testing.assert_array_equal(seen[-1][2], p_jax["W1"])
    # without a callback the history is the same; an epoch compiles once per (rows, batch size)
    p = start(numpy_trainer, spec, 4)
    before = jax_trainer._epoch._cache_size()
    assert jax_trainer.train(p, X, Y, 5, 0.3, batch_size=4, seed=9) == pytest.approx(
        numpy_trainer.train(start(numpy_trainer, spec, 4), X, Y, 5, 0.3, batch_size=4, seed=9),
        rel=1e-12)
    assert jax_trainer._epoch._cache_size() == before  # compiled above already: no new trace


def test_train_resumes_and_other_optimisers_match_numpy():
    spec = SUITE[0]
    numpy_trainer, jax_trainer = load_trainer(spec), load_trainer(spec, backend="jax")
    X, Y = data(spec, 11, 5)
    # 3 + 3 shuffled epochs end where 6 do (the generator's state kept in the optimiser state)
    whole, halves = start(jax_trainer, spec, 1), start(jax_trainer, spec, 1)
    jax_trainer.train(whole, X, Y, 6, 0.2, batch_size=3, seed=2)
    state = jax_trainer.optimizer_state(halves)
    jax_trainer.train(halves, X, Y, 3, 0.2, batch_size=3, seed=2, state=state)
    jax_trainer.train(halves, X, Y, 3, 0.2, batch_size=3, seed=2, state=state)
    for key in whole:
        np.testing.assert_array_equal(halves[key], whole[key])
    # adam (the NumPy-side update on the jitted gradients) and sgd with weight decay
    for optimizer in ("adam", {"name": "sgd", "weight_decay": 0.01}):
        p_np, p_jax = start(numpy_trainer, spec, 6), start(numpy_trainer, spec, 6)
        h_np = numpy_trainer.train(p_np, X, Y, 4, 0.05, batch_size=4, seed=1, optimizer=optimizer)
        h_jax = jax_trainer.train(p_jax, X, Y, 4, 0.05, batch_size=4, seed=1, optimizer=optimizer)
        np.testing.assert_allclose(h_jax, h_np, rtol=1e-12)
        for key in p_np:
            np.testing.assert_allclose(p_jax[key], p_np[key], rtol=1e-12, atol=1e-14)


def test_jit_step_is_functional_and_sgd_step_updates_in_place():
    spec = SUITE[2]
    numpy_trainer, jax_trainer = load_trainer(spec), load_trainer(spec, backend="jax")
    X, Y = data(spec, 6, 7)
    p_np, p_jax = start(numpy_trainer, spec, 2), start(numpy_trainer, spec, 2)
    P = {key: jnp.asarray(p_jax[key]) for key in jax_trainer.LEARNT}
    new, loss_before = jax_trainer.jit_step(P, X, Y, 0.1)
    assert all(P[key].is_deleted() for key in P)  # donated: their buffers became the result's
    L, grads = numpy_trainer.loss_and_gradients(p_np, X, Y)
    assert float(loss_before) == pytest.approx(L, rel=1e-12)
    for key in p_np:
        close(new[key], p_np[key] - 0.1 * grads[key], 1e-12)
    # sgd_step: the same update written into the caller's arrays (same objects)
    W1 = p_jax["W1"]
    assert jax_trainer.sgd_step(p_jax, X, Y, 0.1) == pytest.approx(L, rel=1e-12)
    assert p_jax["W1"] is W1
    numpy_trainer.sgd_step(p_np, X, Y, 0.1)
    for key in p_np:
        close(p_jax[key], p_np[key], 1e-12)


def test_float32_stays_float32_and_close():
    spec = SUITE[0]
    numpy_trainer = load_trainer(spec, dtype="float32")
    jax_trainer = load_trainer(spec, dtype="float32", backend="jax")
    assert jax_trainer.DTYPE == np.float32
    X, Y = data(spec, 11, 8)
    p_np, p_jax = start(numpy_trainer, spec, 3), start(numpy_trainer, spec, 3)
    p_np = {k: v.astype(np.float32) for k, v in p_np.items()}
    p_jax = {k: v.astype(np.float32) for k, v in p_jax.items()}
    L_np, g_np = numpy_trainer.loss_and_gradients(p_np, X, Y)
    L_jax, g_jax = jax_trainer.loss_and_gradients(p_jax, X, Y)
    assert L_jax == pytest.approx(L_np, rel=1e-5)
    for key in g_np:
        assert g_jax[key].dtype == np.float32
        close(g_jax[key], g_np[key], 1e-5)
    h_np = numpy_trainer.train(p_np, X, Y, 5, 0.3, batch_size=4, seed=2)
    h_jax = jax_trainer.train(p_jax, X, Y, 5, 0.3, batch_size=4, seed=2)
    np.testing.assert_allclose(h_jax, h_np, rtol=1e-5)
    for key in p_np:
        assert p_jax[key].dtype == np.float32
        close(p_jax[key], p_np[key], 1e-5)
    assert jax_trainer.forward(p_jax, X).dtype == np.float32


@pytest.mark.parametrize("cli", [False, True], ids=["no-cli", "cli"])
def test_source_is_valid_short_lined_and_imports_numpy_and_jax_only(cli):
    runtime = {"argparse", "csv", "json", "os", "sys", "tempfile"} if cli else set()
    for spec, dtype in ((SUITE[6], "float64"), (SUITE[4], "float32")):
        source = render_trainer(spec, dtype=dtype, cli=cli, backend="jax")
        assert source == render_trainer(spec, dtype=dtype, cli=cli, backend="jax")  # reproducible
        tree = ast.parse(source)
        assert max(len(line) for line in source.splitlines()) <= 99
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert imported == {"numpy", "jax"} | runtime
        autodiff = {"grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd"}
        assert not [node.attr for node in ast.walk(tree)  # the gradients are the derived ones
                    if isinstance(node, ast.Attribute) and node.attr in autodiff]
        x64 = 'jax.config.update("jax_enable_x64", True)'
        assert (x64 + "  #" in source) == (dtype == "float64")
        assert source.startswith("# Generated by backprop") and "JAX trainer for the" in source


def test_batch_norm_is_refused_in_one_line():
    spec = make_spec((3, 4, 2), ("relu", "linear"), "se", batch_norm=(True,))
    with pytest.raises(UserError) as caught:
        render_trainer(spec, backend="jax")
    assert str(caught.value) == ("the jax backend does not support batch_norm yet; "
                                 "use --backend numpy")


def test_train_takes_rows_already_on_the_device():
    """X, Y as JAX arrays: plain SGD uses them where they are (no copy) and ends where NumPy
    rows end; a 1-D Y is one column, a wrong width is the NumPy trainer's ValueError."""
    spec = SUITE[0]
    numpy_trainer, jax_trainer = load_trainer(spec), load_trainer(spec, backend="jax")
    X, Y = data(spec, 10, 5)
    p_np, p_dev = start(numpy_trainer, spec, 2), start(numpy_trainer, spec, 2)
    h_np = numpy_trainer.train(p_np, X, Y, 3, 0.1, batch_size=3, seed=1)
    h_dev = jax_trainer.train(p_dev, jax.device_put(X), jax.device_put(Y), 3, 0.1, batch_size=3, seed=1)
    np.testing.assert_allclose(h_dev, h_np, rtol=1e-12)
    for key in p_np:
        assert isinstance(p_dev[key], np.ndarray)
        np.testing.assert_allclose(p_dev[key], p_np[key], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="columns"):
        jax_trainer.train(p_dev, jnp.ones((4, spec.layers[0] + 1)), jnp.ones((4, spec.layers[-1])), 1, 0.1)
    if spec.layers[-1] == 1:
        jax_trainer.train(p_dev, jax.device_put(X), jax.device_put(Y[:, 0]), 1, 0.1)
