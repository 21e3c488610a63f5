"""The numba backend (issue 16): its compiled SGD epoch and sgd_step give the NumPy trainer's
numbers (float64 within 1e-12 relative, float32 within 1e-5) on a random-network suite that
covers every activation and loss, bias on and off, a residual layer, batch sizes 1, k not
dividing n, and n; kinks take the table's value; a loss that is not finite goes to the NumPy
step; the source is valid, readable and imports numpy, numba and math only.

Compiling costs seconds per module, so the suite is a few specs with many checks each, and
every module comes from load_trainer's cache (one compile per spec and dtype)."""
from __future__ import annotations

import ast
import warnings

import numpy as np
import pytest
import sympy

pytest.importorskip("numba")

from backprop.codegen import backend_numba, load_trainer, render_trainer  # noqa: E402
from backprop.core.errors import UserError  # noqa: E402
from backprop.derive import ACTIVATIONS, LOSSES, make_spec  # noqa: E402
from backprop.derive.activations import z  # noqa: E402

#: Every activation (hidden and output) and every loss at least once, bias off and a skip.
SUITE = [
    make_spec("3-5-4-4-4-4-3", "relu,leaky_relu,elu,selu,gelu,softmax", "cce"),
    make_spec("2-4-4-4-4-2", "swish,softplus,tanh,step,sigmoid", "bce"),
    make_spec("3-4-4-2", "tanh,relu,linear", "hinge", bias=False, residual=(False, True)),
    make_spec("3-4-3", "sigmoid,softmax", "se"),
    make_spec("3-4-3", "tanh,softmax", "bce"),
    make_spec("3-4-2", "tanh,linear", "half_se"),
    make_spec("3-4-2", "relu,sigmoid", "mse"),
]
#: The committed-style networks: the notes' 2-2-1 and 5-4-3-2-1.
NOTES = [make_spec("2-2-1", "linear,linear", "se"),
         make_spec("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se")]
ROWS = 10


def test_the_suite_covers_every_table_entry():
    assert {a for s in SUITE for a in s.activations} == set(ACTIVATIONS)
    assert {s.loss for s in SUITE} == set(LOSSES)
    assert any(not s.bias for s in SUITE) and any(s.residual_layers for s in SUITE)


def _data(spec, rows=ROWS, seed=0, dtype="float64"):
    """Random rows and targets the loss accepts (one-hot, 0/1 or ±1 where it needs them)."""
    rng = np.random.default_rng(seed)
    n_out = spec.layers[-1]
    X = rng.normal(size=(rows, spec.layers[0]))
    if spec.loss == "cce":
        Y = np.eye(n_out)[rng.integers(0, n_out, rows)]
    elif spec.loss == "bce":
        Y = rng.integers(0, 2, (rows, n_out)).astype(float)
    elif spec.loss == "hinge":
        Y = rng.choice([-1.0, 1.0], (rows, n_out))
    else:
        Y = rng.normal(size=(rows, n_out))
    return X.astype(dtype), Y.astype(dtype)


def _relative(expected, got):
    """The largest difference over the largest value, per array (0 for equal arrays)."""
    worst = 0.0
    for key in expected:
        want, have = np.asarray(expected[key], np.float64), np.asarray(got[key], np.float64)
        worst = max(worst, float(np.max(np.abs(want - have)) / max(np.max(np.abs(want)), 1e-300)))
    return worst


def _agree(spec, dtype, tolerance, batch_sizes=(1, 3, ROWS), epochs=2):
    """Train the NumPy and the numba trainer side by side; both histories and parameters, and
    then one sgd_step on all rows, agree within tolerance."""
    numpy_trainer, numba_trainer = load_trainer(spec, dtype), load_trainer(spec, dtype, "numba")
    X, Y = _data(spec, dtype=dtype)
    for size in batch_sizes:
        expected, got = numpy_trainer.init_params(seed=1), numba_trainer.init_params(seed=1)
        h_expected = numpy_trainer.train(expected, X, Y, epochs, lr=0.1, batch_size=size, seed=3)
        h_got = numba_trainer.train(got, X, Y, epochs, lr=0.1, batch_size=size, seed=3)
        assert all(got[k].dtype == np.dtype(dtype) for k in got)
        assert np.allclose(h_got, h_expected, rtol=tolerance, atol=0), (size, h_got, h_expected)
        assert _relative(expected, got) <= tolerance, size
        changed = _relative(numpy_trainer.init_params(seed=1), got)
        assert changed > 100 * tolerance  # training moved the parameters: the check can fail
        loss_expected = numpy_trainer.sgd_step(expected, X, Y, 0.05)
        loss_got = numba_trainer.sgd_step(got, X, Y, 0.05)
        assert abs(loss_got - loss_expected) <= tolerance * abs(loss_expected)
        assert _relative(expected, got) <= tolerance


@pytest.mark.parametrize("spec", SUITE + NOTES, ids=lambda s: s.describe())
def test_float64_epochs_and_steps_equal_the_numpy_trainers(spec):
    _agree(spec, "float64", 1e-12)


@pytest.mark.parametrize("spec", [NOTES[0], SUITE[0]], ids=lambda s: s.describe())
def test_float32_stays_float32_and_close(spec):
    _agree(spec, "float32", 1e-5, batch_sizes=(1, 3))


def test_the_blas_kernel_of_a_larger_network_agrees():
    spec = make_spec("70-60-3", "tanh,softmax", "cce")
    assert not backend_numba.loops_wanted(spec)
    assert "np.dot(" in render_trainer(spec, backend="numba")
    assert "np.dot(" not in render_trainer(SUITE[0], backend="numba")
    _agree(spec, "float64", 1e-12, batch_sizes=(3, ROWS), epochs=1)


def test_relu_at_exactly_zero_takes_the_tables_kink_value():
    """Z1 = 0 exactly (zero weights and biases): relu'(0) = 0, so W1 and b1 stay exactly
    zero, as in the NumPy trainer; step at 0 is 1 forward (Heaviside(0, 1))."""
    spec = SUITE[2]  # tanh, relu (hidden 2, with its skip), linear
    trainer, reference = load_trainer(spec, backend="numba"), load_trainer(spec)
    X, Y = _data(spec)
    params = trainer.init_params(seed=0)
    params["W2"][...] = 0.0
    expected = {k: v.copy() for k, v in params.items()}
    trainer.sgd_step(params, X, Y, 0.1)
    reference.sgd_step(expected, X, Y, 0.1)
    assert np.array_equal(params["W2"], np.zeros_like(params["W2"]))
    for key in params:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-12, atol=0)
    step = backend_numba.NumbaPrinter()
    assert step.doprint(sympy.Heaviside(z, 1)) == "(1.0 if z >= 0 else 0.0)"
    assert step.doprint(sympy.Heaviside(z, 0)) == "(1.0 if z > 0 else 0.0)"


def test_a_loss_that_is_not_finite_is_the_numpy_steps():
    """A batch whose loss overflows is not touched by the kernel: the NumPy step takes it and
    the rest of the epoch (its inf/nan values, its warnings)."""
    spec = NOTES[0]
    trainer, reference = load_trainer(spec, backend="numba"), load_trainer(spec)
    X, Y = _data(spec)
    X[4] = 1e200  # rows 0-3 train in the kernel, row 4's loss is inf
    got, expected = trainer.init_params(seed=0), reference.init_params(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h_got = trainer.train(got, X, Y, 1, lr=0.01, batch_size=1, shuffle=False)
    with warnings.catch_warnings(record=True) as caught_reference:
        warnings.simplefilter("always")
        h_expected = reference.train(expected, X, Y, 1, lr=0.01, batch_size=1, shuffle=False)
    assert not np.isfinite(h_got[0]) and not np.isfinite(h_expected[0])
    for key in got:
        np.testing.assert_array_equal(got[key], expected[key])  # nan where NumPy's is nan
    assert not np.isfinite(got["W1"]).all()
    assert {str(w.category) for w in caught} == {str(w.category) for w in caught_reference} != set()


def test_the_source_is_valid_readable_and_imports_numpy_numba_and_math_only():
    wide = make_spec("70-60-3", "tanh,softmax", "cce")
    for spec, dtype in ((SUITE[0], "float64"), (SUITE[1], "float32"), (wide, "float64")):
        source = render_trainer(spec, dtype=dtype, backend="numba", cli=False)
        tree = ast.parse(source)
        assert [line for line in source.splitlines() if len(line) > 99] == []
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
        assert imported == {"numpy", "numba", "math"}
        assert "@njit(cache=True" in source and "def _epoch(" in source and "def _batch(" in source
        for spelling in ("Heaviside", "Max(", "Min(", "Piecewise", "FloatMax("):
            assert spelling not in source
    assert "np.float32(0.5)" in render_trainer(NOTES[1], dtype="float32", backend="numba")


def test_batch_norm_is_a_one_line_error():
    spec = make_spec("3-4-2", "relu,linear", "se", batch_norm=(True,))
    with pytest.raises(UserError, match="numba backend does not support batch_norm yet; use --backend"):
        render_trainer(spec, backend="numba")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tiny_sgd_runs_the_register_kernel_and_matches_numpy(dtype):
    """SGD (batch 1) on a network of at most scalar.MAX_WEIGHTS weights runs _sgd_rows, every
    weight a local for the whole epoch: the NumPy trainer's parameters (float64: to 1e-12;
    float32: every local float32, to float32 rounding), in the trainer's dtype."""
    for spec in (make_spec("2-2-1", "linear", "se"), make_spec("3-4-3", "tanh,softmax", "cce"),
                 make_spec("2-3-1", "relu,sigmoid", "bce")):
        reference, engine = load_trainer(spec, dtype=dtype), load_trainer(spec, dtype=dtype, backend="numba")
        assert "def _sgd_rows(" in render_trainer(spec, dtype=dtype, backend="numba")
        rng = np.random.default_rng(11)
        X = rng.normal(size=(40, spec.layers[0])).astype(dtype)
        if spec.loss == "cce":
            Y = np.eye(spec.layers[-1], dtype=dtype)[rng.integers(0, spec.layers[-1], 40)]
        elif spec.loss == "bce":
            Y = rng.integers(0, 2, (40, 1)).astype(dtype)
        else:
            Y = rng.normal(size=(40, 1)).astype(dtype)
        p_ref, p_eng = reference.init_params(seed=5), engine.init_params(seed=5)
        h_ref = reference.train(p_ref, X, Y, 3, 0.05, batch_size=1, seed=2)
        h_eng = engine.train(p_eng, X, Y, 3, 0.05, batch_size=1, seed=2)
        tol = 1e-12 if dtype == "float64" else 2e-5
        np.testing.assert_allclose(h_eng, h_ref, rtol=tol)
        for key in p_ref:
            assert p_eng[key].dtype == np.dtype(dtype)
            np.testing.assert_allclose(p_eng[key], p_ref[key], rtol=tol, atol=tol)
            assert not np.array_equal(p_eng[key], reference.init_params(seed=5)[key])  # it moved
