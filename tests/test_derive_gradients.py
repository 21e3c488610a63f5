"""Every derived gradient against independent references: central finite differences of
the fully nested loss (lambdified from SymPy's textbook forms, not from our derivation), and
naive ``sympy.diff`` of that loss on small networks."""
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop.derive import ACTIVATIONS, LOSSES, derive, make_spec, numeric_gradients
from backprop.derive import notation as nt

HIDDEN = [a for a in ACTIVATIONS if a != "step"]
#: Output activations that keep each loss defined (log-losses need ŷ in (0, 1)).
OUTPUTS = {"se": HIDDEN, "half_se": HIDDEN, "mse": HIDDEN, "hinge": HIDDEN,
           "bce": ["sigmoid"], "cce": ["softmax", "sigmoid"]}


def _targets(loss, n_out, rng):
    if loss == "cce":
        return np.eye(n_out)[rng.integers(n_out)]
    if loss == "bce":
        return rng.integers(0, 2, n_out).astype(float)
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], n_out)
    return rng.normal(size=n_out)


def _point(d, rng):
    net = d.net
    values = {s: float(rng.normal(scale=0.8)) for s in net.parameters()}
    values |= {s: float(rng.normal()) for s in net.inputs}
    values |= {s: float(v) for s, v in zip(net.targets, _targets(d.spec.loss, d.spec.n_outputs, rng))}
    return values


def _nested_loss(d):
    """L as a function of all values, evaluated node by node from the forward definitions
    (textbook forms, plain floats, math module): independent of the derivation, and
    linear in the network's size where the fully substituted loss grows exponentially."""
    net = d.net
    steps = []
    for k in range(1, net.depth + 1):
        for j in range(1, d.spec.layers[k] + 1):
            definition = net.definition(k, j)
            args = sorted(definition.free_symbols, key=str)
            steps.append((net.O(k, j), args, sympy.lambdify(args, definition, "math")))
    loss_args = sorted(net.loss.free_symbols, key=str)
    loss_fn = sympy.lambdify(loss_args, net.loss, "math")

    def loss(values):
        known = dict(values)
        for out, args, fn in steps:
            known[out] = fn(*[known[a] for a in args])
        return loss_fn(*[known[a] for a in loss_args])

    return loss


def _fd_check(d, values, h=1e-6):
    loss = _nested_loss(d)
    derived = numeric_gradients(d, values)
    for p in d.net.parameters():
        up, down = dict(values), dict(values)
        up[p] += h
        down[p] -= h
        fd = (loss(up) - loss(down)) / (2 * h)
        g = derived[p]
        assert abs(g - fd) <= 1e-6 * max(abs(fd), abs(g), 1.0), (d.spec.describe(), p, g, fd)


@st.composite
def networks(draw):
    loss = draw(st.sampled_from(sorted(LOSSES)))
    depth = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    out_act = draw(st.sampled_from(OUTPUTS[loss]))
    if out_act == "softmax":
        widths[-1] = max(2, widths[-1])
    hidden = [draw(st.sampled_from(HIDDEN)) for _ in range(depth - 1)]
    for k, act in enumerate(hidden, start=1):
        if act == "softmax":
            widths[k] = max(2, widths[k])
    bias = draw(st.booleans())
    return make_spec(widths, hidden + [out_act], loss, bias=bias), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_match_finite_differences(case):
    spec, seed = case
    d = derive(spec)
    _fd_check(d, _point(d, np.random.default_rng(seed)))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_matches_finite_differences(loss):
    out = OUTPUTS[loss][0]
    spec = make_spec([2, 3, 2], ["tanh", out], loss)
    d = derive(spec)
    _fd_check(d, _point(d, np.random.default_rng(1)))


@pytest.mark.parametrize("act", HIDDEN)
def test_every_activation_matches_finite_differences(act):
    d = derive(make_spec([2, 3, 1], [act, "linear"], "se"))
    for seed in range(3):
        _fd_check(d, _point(d, np.random.default_rng(seed)))


def test_per_parameter_numpy_callable_agrees_with_memo_table():
    d = derive(make_spec("3-2-2", "sigmoid,softmax", "cce"))
    values = _point(d, np.random.default_rng(7))
    memo = numeric_gradients(d, values)
    for g in d.gradients:
        assert g.numpy(values) == pytest.approx(memo[g.parameter], rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("spec", [
    ("2-2-1", "linear", "se"),
    ("2-2-1", "tanh,linear", "half_se"),
    ("2-2-2", "linear", "mse"),
    ("1-2-1", "sigmoid", "se"),
])
def test_memoised_equals_naive_sympy_diff(spec):
    """The memo-table result, expanded, is the same expression naive diff gives."""
    d = derive(make_spec(*spec))
    for g in d.gradients:
        naive = sympy.diff(d.net.loss_expanded, g.parameter)
        assert sympy.simplify(g.expanded - naive) == 0, g.name


def test_softmax_cce_output_delta_reduces_to_yhat_minus_y():
    d = derive(make_spec("2-3", "softmax", "cce"))
    for j in range(1, 4):
        assert d.deltas[nt.delta(1, j)] == nt.prediction(j) - nt.target(j)


def test_sigmoid_bce_output_delta_reduces_to_yhat_minus_y():
    d = derive(make_spec("2-1", "sigmoid", "bce"))
    assert sympy.expand(d.deltas[nt.delta(1, 1)] - (nt.prediction(1) - nt.target(1))) == 0


def test_step_warns_that_no_gradient_flows():
    d = derive(make_spec("2-2-1", "step,linear", "se"))
    assert any("no gradient" in w and "layer 1" in w for w in d.warnings)
    assert all(g.formula == 0 for g in d.gradients if g.layer == 1)


def test_chain_paths_multiply_to_the_formula():
    d = derive(make_spec("2-2-2-1", "sigmoid,tanh,linear", "se"))
    g = d.gradient("w^1_21")
    assert len(g.chain) == 2  # two paths through layer 2
    total = sympy.Add(*[sympy.Mul(*[f.value for f in path]) for path in g.chain])
    values = _point(d, np.random.default_rng(3))
    full = d.net.forward_values(values)
    assert float(total.xreplace(full)) == pytest.approx(float(g.formula.xreplace(full)), rel=1e-12)
