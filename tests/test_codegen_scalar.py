"""The generated scalar fast path (``_sgd_step_scalar``): one row of a small float64 network
in Python floats.  Same values as the NumPy step, taken only where it should be, stable."""
import warnings

import numpy as np
import pytest

from backprop.codegen import load_trainer, render_trainer, scalar
from backprop.derive import ACTIVATIONS, LOSSES, make_spec

OUTPUT_LOSSES = [("linear", "se"), ("linear", "half_se"), ("tanh", "mse"), ("sigmoid", "bce"),
                 ("linear", "hinge"), ("softmax", "cce"), ("softmax", "se"), ("relu", "se"),
                 ("softplus", "half_se"), ("leaky_relu", "mse"), ("step", "se")]


def numpy_step(t, params, X, Y, lr):
    """The NumPy path of sgd_step, whatever the batch size."""
    X, Y = t._rows(params, X, Y)
    key, B = t._buffers(X.shape[0], X.dtype)
    try:
        return t._step(params, X, Y, lr, B)
    finally:
        t._release(key, B)


def targets(rng, loss, n_out):
    if loss == "cce":
        return np.eye(n_out)[[rng.integers(n_out)]]
    if loss == "hinge":
        return np.sign(rng.normal(size=(1, n_out)))
    return rng.uniform(size=(1, n_out))


def spy(monkeypatch, t):
    calls = []
    real = t._sgd_step_scalar

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(t, "_sgd_step_scalar", counting)
    return calls


def test_every_key_is_covered():
    assert {loss for _, loss in OUTPUT_LOSSES} == set(LOSSES)


@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
@pytest.mark.parametrize("output, loss", OUTPUT_LOSSES)
@pytest.mark.parametrize("bias", [True, False])
def test_scalar_step_equals_the_numpy_step(hidden, output, loss, bias, monkeypatch):
    spec = make_spec("3-4-2", [hidden, output], loss, bias=bias)
    t = load_trainer(spec)
    calls = spy(monkeypatch, t)
    rng = np.random.default_rng(len(hidden) * 31 + len(loss))
    p_scalar = t.init_params(seed=2)
    p_numpy = {k: v.copy() for k, v in p_scalar.items()}
    for step in range(6):
        X, Y = rng.normal(size=(1, 3)), targets(rng, loss, 2)
        before = t.sgd_step(p_scalar, X, Y, 0.05)
        expected = numpy_step(t, p_numpy, X, Y, 0.05)
        assert before == pytest.approx(expected, rel=1e-12, abs=1e-300)
        for k in p_numpy:
            assert p_scalar[k].dtype == np.float64
            np.testing.assert_allclose(p_scalar[k], p_numpy[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert len(calls) == 6  # every step went the scalar way (none fell back)


@pytest.mark.parametrize("layers, acts, loss", [
    ("2-2-1", "linear", "se"), ("2-3-3-1", ["tanh", "sigmoid", "linear"], "se"),
    ("3-5-3", ["relu", "softmax"], "cce"), ("2-4-1", ["leaky_relu", "sigmoid"], "bce")])
def test_training_with_sgd_matches_the_numpy_path_and_repeats_bit_for_bit(layers, acts, loss, monkeypatch):
    t = load_trainer(make_spec(layers, acts, loss))
    rng = np.random.default_rng(0)
    n_in, n_out = t.LAYERS[0], t.LAYERS[-1]
    X = rng.normal(size=(20, n_in))
    Y = np.vstack([targets(rng, loss, n_out) for _ in range(20)])
    runs = []
    for _ in range(2):
        p = t.init_params(seed=4)
        runs.append((t.train(p, X, Y, epochs=5, lr=0.05, batch_size=1, seed=9), p))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])
    monkeypatch.setattr(t, "_sgd_step_scalar", lambda *a: (_ for _ in ()).throw(OverflowError))
    p = t.init_params(seed=4)
    history = t.train(p, X, Y, epochs=5, lr=0.05, batch_size=1, seed=9)  # NumPy path only
    np.testing.assert_allclose(history, runs[0][0], rtol=1e-11)
    for k in p:
        np.testing.assert_allclose(runs[0][1][k], p[k], rtol=1e-11, atol=1e-14)


def test_only_small_networks_get_a_scalar_path():
    small = make_spec("4-8-3", ["relu", "softmax"], "cce")  # 56 weights
    big = make_spec("8-16-1", "tanh", "se")  # 144 weights
    assert scalar.weight_count(small) <= scalar.MAX_WEIGHTS < scalar.weight_count(big)
    assert "def _sgd_step_scalar(" in render_trainer(small)
    assert "import math" not in render_trainer(small)  # NumPy's functions on floats instead
    source = render_trainer(big)
    assert "_sgd_step_scalar" not in source
    assert not hasattr(load_trainer(big), "_sgd_step_scalar")


def test_only_one_row_batches_take_it(monkeypatch):
    t = load_trainer(make_spec("2-3-1", "sigmoid", "se"))
    calls = spy(monkeypatch, t)
    p = t.init_params(seed=0)
    X, Y = np.random.default_rng(1).normal(size=(4, 2)), np.zeros(4)
    t.sgd_step(p, X, Y, 0.1)
    t.sgd_step(p, X[:2], Y[:2], 0.1)
    assert calls == []
    t.sgd_step(p, X[:1], Y[:1], 0.1)
    t.sgd_step(p, X[0], Y[:1], 0.1)  # a 1-D row is one row too
    assert len(calls) == 2
    t.train(p, X, Y, epochs=2, lr=0.1, batch_size=2, seed=0)
    assert len(calls) == 2
    t.train(p, X, Y, epochs=2, lr=0.1, batch_size=1, seed=0)
    assert len(calls) == 10


@pytest.mark.parametrize("output, loss", [("linear", "se"), ("sigmoid", "bce"), ("softmax", "cce")])
def test_float32_never_takes_it_and_rounds_as_float32(output, loss, monkeypatch):
    spec = make_spec("3-4-2", ["tanh", output], loss)
    t32 = load_trainer(spec, "float32")
    calls = spy(monkeypatch, t32)
    rng = np.random.default_rng(3)
    p = t32.init_params(seed=1)
    p_numpy = {k: v.copy() for k, v in p.items()}
    for _ in range(4):
        X, Y = rng.normal(size=(1, 3)), targets(rng, loss, 2)
        assert t32.sgd_step(p, X, Y, 0.1) == numpy_step(t32, p_numpy, X, Y, 0.1)
    assert calls == []
    for k in p:
        assert p[k].dtype == np.float32
        np.testing.assert_array_equal(p[k], p_numpy[k])
    # float32 parameters in a float64 module: the NumPy path too, float32 kept
    t64 = load_trainer(spec)
    calls64 = spy(monkeypatch, t64)
    p = t64.init_params(seed=1, dtype=np.float32)
    t64.sgd_step(p, rng.normal(size=(1, 3)), targets(rng, loss, 2), 0.1)
    assert calls64 == [] and all(v.dtype == np.float32 for v in p.values())


@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
@pytest.mark.parametrize("output, loss", [("linear", "se"), ("tanh", "se"), ("sigmoid", "bce"),
                                          ("softmax", "cce"), ("softplus", "se"), ("relu", "se")])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_logits_of_magnitude_1000_give_no_warning_and_no_error(hidden, output, loss, sign, monkeypatch):
    t = load_trainer(make_spec("2-2-2", [hidden, output], loss))
    calls = spy(monkeypatch, t)
    p = t.init_params(scheme="zeros")
    p["W1"][...] = 0.0
    p["b1"][...] = sign * 1000.0  # every hidden z = ±1000
    p["b2"][...] = [1000.0, -1000.0]  # output z = ±1000 (plus what the hidden layer adds: 0)
    Y = np.eye(2)[[1]] if loss == "cce" else np.array([[0.0, 1.0]])
    expected_p = {k: v.copy() for k, v in p.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            before = t.sgd_step(p, np.array([[0.5, -0.5]]), Y, 1e-3)
            expected = numpy_step(t, expected_p, np.array([[0.5, -0.5]]), Y, 1e-3)
    assert np.isfinite(before) and all(np.isfinite(v).all() for v in p.values())
    assert calls == [1]
    assert before == pytest.approx(expected, rel=1e-12)
    for k in p:
        np.testing.assert_allclose(p[k], expected_p[k], rtol=1e-12, atol=1e-15)


def test_inf_or_nan_falls_back_to_numpy_untouched(monkeypatch):
    """A step that would make inf: the scalar step writes nothing, NumPy's step runs (and
    NumPy's errstate decides), as it did before the scalar path existed."""
    t = load_trainer(make_spec("2-2-1", "linear", "se"))
    p = t.init_params(scheme="ones")
    X, Y = np.array([[1e200, 1e200]]), np.array([[0.0]])
    with pytest.raises(FloatingPointError):
        t._sgd_step_scalar(p, X[0].tolist(), Y[0].tolist(), 0.1)
    np.testing.assert_array_equal(p["W1"], np.ones((2, 2)))  # nothing written back
    with np.errstate(over="raise", invalid="raise"), pytest.raises(FloatingPointError):
        t.sgd_step(p, X, Y, 0.1)  # the NumPy step's own error, as without a scalar path
    with np.errstate(all="ignore"):
        assert t.sgd_step(p, X, Y, 0.1) == np.inf


def test_the_scalar_function_reads_as_documented():
    source = render_trainer(make_spec("2-2-1", "sigmoid", "se"))
    fast = source.index("# ---- fast paths: the same maths, fused for speed")
    body = source[source.index("# One row of a network this small", fast):source.index("def sgd_step(")]
    assert "µs of overhead" in body and "bench/README.md" in body
    assert "def _sgd_step_scalar(params, x, y, lr):" in body
    scalar_body = body.split("def _sgd_step_scalar")[1]
    assert "float(np.tanh(" in scalar_body and "math." not in scalar_body
    assert "np.matmul" not in scalar_body and "@" not in scalar_body
    # the notes' names, numbered from 1: w1_21 is w^1_21, x_2 the second input
    assert "z1_1 = b1_1 + x_1*w1_11 + x_2*w1_21" in body
    assert "w1_11 -= lr*(x_1*delta1_1)" in body
    assert "[[w1_11, w1_12], [w1_21, w1_22]] = W1.tolist()" in body
