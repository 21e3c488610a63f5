"""Hardening: numeric extremes.  sigmoid, tanh, softplus, softmax, bce, cce and their
derivatives at ±1e3, ±1e308 (float32: ±1e38), 0, and probabilities of exactly 0 and 1:

* no overflow / invalid / divide warnings (NumPy errors raised, Python warnings as errors;
  underflow to 0 is the limiting value and allowed), no NaN, no infinity;
* values equal the mathematical limits, taken from a 60-digit mpmath reference;
* float32 in, float32 out;

for both the derive tables (``derive/activations.py``, ``derive/losses.py``) and the generated
trainers (``backprop.codegen.load_trainer(spec, dtype)``).  Then a Hypothesis gradient check:
200 random networks (depth, widths, activations, losses, bias on/off, dtype) against central
finite differences (float64: rel. 1e-6; float32 gradients against float64 differences,
loosely).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from backprop.codegen import load_trainer
from backprop.derive import make_spec, vectorise
from backprop.derive.activations import numpy_derivative, numpy_forward
from backprop.derive.losses import LOSSES
from backprop.derive.vectorised import y as y_sym
from backprop.derive.vectorised import yhat as yhat_sym

from fd import finite_differences  # tests/fd.py

mpmath.mp.dps = 60

BIG = {"float64": 1e308, "float32": 1e38}
DTYPES = ["float64", "float32"]
RTOL = {"float64": 1e-12, "float32": 2e-6}


def extremes(dtype: str) -> list[float]:
    big = BIG[dtype]
    return [-big, -1e3, -1.0, 0.0, 1.0, 1e3, big]


@contextmanager
def strict_numerics():
    """Overflow, invalid and divide-by-zero raise; any Python warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


# -- the mathematics, to 60 digits ---------------------------------------------------------------

def m_sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


def m_softplus(z):
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


M_FORWARD = {"sigmoid": m_sigmoid, "tanh": mpmath.tanh, "softplus": m_softplus}
M_DERIVATIVE = {
    "sigmoid": lambda z: m_sigmoid(z) * m_sigmoid(-z),
    "tanh": lambda z: 1 / mpmath.cosh(z) ** 2,
    "softplus": m_sigmoid,
}


def m_softmax(row):
    top = max(row)
    e = [mpmath.exp(v - top) for v in row]
    s = sum(e)
    return [v / s for v in e]


def m_logsumexp(row):
    top = max(row)
    return top + mpmath.log(sum(mpmath.exp(v - top) for v in row))


def close(got, want, dtype) -> bool:
    """Equal to the 60-digit value rounded to ``dtype``: zeros exact, else rel. RTOL."""
    want = float(want)
    want_t = np.array(want, dtype=dtype)
    if want_t == 0:
        return got == 0
    return bool(np.isclose(got, want_t, rtol=RTOL[dtype], atol=0))


# -- derive tables -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus"])
def test_table_activation_and_derivative_at_extremes(name, dtype):
    Z = np.array([extremes(dtype)], dtype=dtype)
    with strict_numerics():
        A = numpy_forward(name)(Z)
        G = numpy_derivative(name)(A, Z)
    assert A.dtype == dtype and G.dtype == dtype
    assert np.isfinite(A).all() and np.isfinite(G).all()
    for z, a, g in zip(Z[0], A[0], G[0]):
        zm = mpmath.mpf(float(z))
        assert close(a, M_FORWARD[name](zm), dtype), (name, z, a)
        # g' through the output: where a has already rounded to its limit, g' is that limit's
        # g' (sigmoid at 1 - 1e-17 reads as 1, so σ' = 0); compare in the rounded output
        assert close(g, M_DERIVATIVE[name](zm), dtype) or abs(float(g) - float(M_DERIVATIVE[name](zm))) <= \
            4 * np.finfo(dtype).eps, (name, z, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_table_softmax_at_extremes(dtype):
    big = BIG[dtype]
    rows = [[big, -big, 0.0], [-big, -big, -big], [big, big, 0.0], [1e3, 0.0, -1e3],
            [0.0, 0.0, 0.0], [-big, 0.0, 1e3]]
    Z = np.array(rows, dtype=dtype)
    with strict_numerics():
        P = numpy_forward("softmax")(Z)
    assert P.dtype == dtype and np.isfinite(P).all()
    for row, p in zip(Z, P):
        want = m_softmax([mpmath.mpf(float(v)) for v in row])
        assert all(close(g, w, dtype) for g, w in zip(p, want)), (row, p)
        np.testing.assert_allclose(p.sum(), 1.0, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["bce", "cce"])
def test_table_losses_at_probabilities_0_and_1(loss, dtype):
    """y = p at 0 and 1: loss exactly 0; y opposite to p: finite and large (log of the
    smallest normal number, the clip), never inf or NaN."""
    if loss == "bce":
        Y = np.array([[0, 1, 1, 0]], dtype=dtype)
        P = np.array([[0, 1, 0, 1]], dtype=dtype)
        with strict_numerics():
            per_output = [LOSSES["bce"].numpy(Y[:, [j]], P[:, [j]]) for j in range(4)]
        values = [float(v[0]) for v in per_output]
        assert values[0] == 0 and values[1] == 0
    else:
        Y = np.array([[1, 0, 0], [0, 1, 0]], dtype=dtype)
        P = np.array([[1, 0, 0], [1, 0, 0]], dtype=dtype)
        with strict_numerics():
            v = LOSSES["cce"].numpy(Y, P)
        values = [float(x) for x in v]
        assert values[0] == 0
    assert all(np.isfinite(values))
    bound = -np.log(np.finfo(dtype).tiny)
    assert all(0 <= x <= 2 * bound * 1.0001 for x in values)
    assert max(values) >= bound * 0.999  # the wrong certain answer costs the most it can


@pytest.mark.parametrize("act, loss", [("sigmoid", "bce"), ("softmax", "cce")])
def test_fused_output_delta_is_yhat_minus_y(act, loss):
    """The derivation reduces σ + bce and softmax + cce to ŷ - y: finite for any ŷ in [0, 1],
    so the trainers never divide by ŷ or 1 - ŷ."""
    spec = make_spec("2-3", act, loss) if act == "softmax" else make_spec("2-1", act, loss)
    delta = vectorise(spec).output.delta
    assert delta is not None and (delta - (yhat_sym - y_sym)).expand() == 0


# -- generated trainers --------------------------------------------------------------------------

def m_single_layer(act, loss, z_row, y_row):
    """(loss, δ = dL/dz) of one row of a one-layer network, to 60 digits."""
    z = [mpmath.mpf(float(v)) for v in z_row]
    y = [mpmath.mpf(float(v)) for v in y_row]
    if act == "softmax":
        p = m_softmax(z)
        lse = m_logsumexp(z)
        return sum(-yj * (zj - lse) for yj, zj in zip(y, z)), [pj - yj for pj, yj in zip(p, y)]
    (zj,), (yj,) = z, y
    if act == "sigmoid" and loss == "bce":
        value = yj * m_softplus(-zj) + (1 - yj) * m_softplus(zj)
        return value, [m_sigmoid(zj) - yj]
    out = M_FORWARD[act](zj)
    return (yj - out) ** 2, [2 * (out - yj) * M_DERIVATIVE[act](zj)]


SINGLE = [("sigmoid", "bce", 1), ("softmax", "cce", 3), ("tanh", "se", 1), ("sigmoid", "se", 1),
          ("softplus", "se", 1)]


def _targets(loss, n):
    if loss == "cce":
        return [list(np.eye(n)[k]) for k in range(n)]
    return [[0.0], [1.0]] if loss == "bce" else [[0.0], [1.0], [-1.0]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act, loss, width", SINGLE)
def test_generated_output_layer_at_extremes(act, loss, width, dtype):
    """One layer, x = v, W = [1, 0, -1] (or 1), b = 0: z = (v, 0, -v); loss and gradients equal
    the 60-digit values; dtype kept; nothing raised."""
    trainer = load_trainer(make_spec(f"1-{width}", act, loss), dtype)
    W = np.array([[1.0, 0.0, -1.0][:width]], dtype=dtype)
    for v in extremes(dtype):
        if act == "softplus" and abs(v) == BIG[dtype]:
            v = -BIG[dtype]  # (y - 1e308)^2 is beyond float64: only the left limit exists
        for y in _targets(loss, width):
            params = {"W1": W.copy(), "b1": np.zeros(width, dtype=dtype)}
            X = np.array([[v]], dtype=dtype)
            Y = np.array([y], dtype=dtype)
            z_row = [v * w for w in W[0]]
            want_loss, want_delta = m_single_layer(act, loss, z_row, y)
            if abs(float(want_loss)) > np.finfo(dtype).max or any(
                    abs(float(d * mpmath.mpf(float(v)))) > np.finfo(dtype).max for d in want_delta):
                continue  # the true value itself is beyond the dtype
            with strict_numerics():
                value, grads = trainer.loss_and_gradients(params, X, Y)
            assert np.isfinite(value), (act, loss, v, y, value)
            assert close(np.array(value, dtype=dtype), want_loss, dtype), (act, loss, v, y, value, want_loss)
            assert grads["W1"].dtype == dtype and grads["b1"].dtype == dtype
            for j in range(width):
                assert close(grads["b1"][j], want_delta[j], dtype), (act, loss, v, y, grads, want_delta)
                assert close(grads["W1"][0, j], want_delta[j] * mpmath.mpf(float(v)), dtype), \
                    (act, loss, v, y, grads, want_delta)


def test_generated_softmax_logits_spanning_the_float_range():
    """1e308 and -1e308 in one row: z - max(z) would overflow to -inf (and 0 · -inf = NaN in
    cce); the clamped shift keeps it at -1.8e308, so the loss is exactly 0 or the largest
    float, and the gradient is exact."""
    trainer = load_trainer(make_spec("1-3", "softmax", "cce"))
    params = {"W1": np.array([[1.0, 0.0, -1.0]]), "b1": np.zeros(3)}
    with strict_numerics():
        value, grads = trainer.loss_and_gradients(params, np.array([[1e308]]), np.array([[1.0, 0.0, 0.0]]))
        worst, _ = trainer.loss_and_gradients(params, np.array([[1e308]]), np.array([[0.0, 0.0, 1.0]]))
        P = trainer.forward(params, np.array([[1e308], [-1e308]]))
    assert value == 0 and np.array_equal(grads["W1"], [[0.0, 0.0, 0.0]])
    assert worst == np.finfo(np.float64).max  # the true 2e308 rounded to the float range
    assert np.array_equal(P, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


HIDDEN_CASES = [("1-1-1", ["sigmoid", "sigmoid"], "bce"), ("1-1-1", ["tanh", "sigmoid"], "bce"),
                ("1-1-1", ["softplus", "sigmoid"], "bce"), ("1-1-2", ["tanh", "softmax"], "cce"),
                ("1-1-2", ["sigmoid", "softmax"], "cce"), ("1-1-1", ["tanh", "tanh"], "se"),
                ("1-1-1", ["sigmoid", "linear"], "se"), ("1-2-1", ["tanh", "sigmoid"], "bce")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers, acts, loss", HIDDEN_CASES)
def test_generated_hidden_layers_at_extremes(layers, acts, loss, dtype):
    """Hidden sigmoid/tanh/softplus layers at ±1e308: finite loss and gradients, dtype kept,
    and gradient norms that a training step can use (sgd_step leaves params finite)."""
    spec = make_spec(layers, acts, loss)
    trainer = load_trainer(spec, dtype)
    for v in extremes(dtype):
        params = trainer.init_params(scheme="ones")
        X = np.array([[v], [-v], [0.0]], dtype=dtype)
        Y = np.eye(spec.n_outputs, dtype=dtype)[[0, -1, 0]] if loss == "cce" else \
            np.array([[1.0], [0.0], [1.0]], dtype=dtype)
        with strict_numerics():
            value, grads = trainer.loss_and_gradients(params, X, Y)
            out = trainer.forward(params, X)
        assert np.isfinite(value) and np.isfinite(out).all(), (spec, v, value)
        assert out.dtype == dtype
        for name, g in grads.items():
            assert g.dtype == dtype and np.isfinite(g).all(), (spec, v, name, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_paths_stay_float32(dtype):
    trainer = load_trainer(make_spec("3-4-2", ["tanh", "softmax"], "cce"), dtype)
    assert trainer.DTYPE == np.dtype(dtype)
    params = trainer.init_params(seed=0)
    assert {p.dtype for p in params.values()} == {np.dtype(dtype)}
    X = np.arange(12, dtype=np.float64).reshape(4, 3)  # float64 data is cast to the params' dtype
    Y = np.eye(2)[[0, 1, 1, 0]]
    history = trainer.train(params, X, Y, epochs=3, lr=0.1, batch_size=2, seed=0)
    assert {p.dtype for p in params.values()} == {np.dtype(dtype)}
    assert all(isinstance(h, float) and np.isfinite(h) for h in history)
    assert trainer.forward(params, X).dtype == dtype
    assert {g.dtype for g in trainer.gradients(params, X, Y).values()} == {np.dtype(dtype)}


# -- gradient check over random networks ---------------------------------------------------------

HIDDEN = ["linear", "sigmoid", "tanh", "softplus", "relu", "leaky_relu"]
CHECKED: list = []


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    acts = [draw(st.sampled_from(HIDDEN)) for _ in range(depth)]
    loss = draw(st.sampled_from(["se", "half_se", "mse", "bce", "cce", "hinge"]))
    if loss == "cce":
        widths[-1] = max(widths[-1], 2)
        acts[-1] = "softmax"
    elif loss == "bce":
        acts[-1] = "sigmoid"
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    return make_spec(widths, acts, loss, bias=bias), dtype, draw(st.integers(0, 2**32 - 1))


def _problem(spec, seed):
    rng = np.random.default_rng(seed)
    params = load_trainer(spec).init_params(seed=seed)
    for k in params:
        params[k] = params[k] + rng.normal(0.0, 0.3, params[k].shape)
    X = rng.normal(size=(4, spec.n_inputs))
    n = spec.n_outputs
    if spec.loss == "cce":
        Y = np.eye(n)[rng.integers(0, n, 4)]
    elif spec.loss == "bce":
        Y = rng.uniform(0.05, 0.95, (4, n))
    elif spec.loss == "hinge":
        Y = rng.choice([-1.0, 1.0], (4, n))
    else:
        Y = rng.normal(size=(4, n))
    return params, X, Y


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
@given(networks())
def test_random_networks_agree_with_finite_differences(case):
    spec, dtype, seed = case
    params, X, Y = _problem(spec, seed)
    reference = load_trainer(spec, "float64")
    fd = finite_differences(reference, params, X, Y)
    trainer = load_trainer(spec, dtype)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    with strict_numerics():
        grads = trainer.gradients(cast, X, Y)
    assert grads.keys() == params.keys()
    for name in params:
        assert grads[name].dtype == dtype
        if dtype == "float64":
            np.testing.assert_allclose(grads[name], fd[name], rtol=1e-6, atol=1e-8, err_msg=f"{spec} {name}")
        else:
            scale = max(1.0, float(np.abs(fd[name]).max()))
            np.testing.assert_allclose(grads[name], fd[name], rtol=1e-2, atol=2e-3 * scale,
                                       err_msg=f"{spec} {name} float32")
    # the fused update training uses (sgd_step) is P - lr * dL/dP with the same gradients
    lr = 0.1
    stepped = {k: v.copy() for k, v in cast.items()}
    with strict_numerics():
        before = trainer.sgd_step(stepped, X, Y, lr)
    np.testing.assert_allclose(before, trainer.loss(cast, X, Y), rtol=1e-12 if dtype == "float64" else 1e-5)
    for name in params:
        assert stepped[name].dtype == dtype
        np.testing.assert_allclose(stepped[name], cast[name] - lr * grads[name],
                                   rtol=1e-12 if dtype == "float64" else 1e-5,
                                   atol=1e-14 if dtype == "float64" else 1e-6, err_msg=f"{spec} {name} step")
    CHECKED.append((spec, dtype))


def test_zz_random_network_count():
    """Runs after the property test: how many random networks were checked, and how varied."""
    if not CHECKED:
        pytest.skip("the property test was not selected")
    specs = {s for s, _ in CHECKED}
    print(f"\nrandom networks checked against finite differences: {len(CHECKED)} "
          f"({len(specs)} distinct specs; float32: {sum(d == 'float32' for _, d in CHECKED)}; "
          f"no bias: {sum(not s.bias for s, _ in CHECKED)})")
    assert len(CHECKED) >= 200
    assert {s.loss for s in specs} >= {"se", "bce", "cce", "hinge"}
    assert {d for _, d in CHECKED} == set(DTYPES)
