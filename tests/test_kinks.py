"""Every activation and loss at its kink, and just beside it: the table's stated value, SymPy's
derivative, the NumPy derivative, a generated trainer's backward (batch, buffered step and
scalar step) and PyTorch's autograd (float64, where torch defines the function) all agree.
Beside: z = ±1e-300 and ±1e-8 take the branch their sign says.  Far out: z = ±1e3 stays finite
and warning-free in every stable form, and matches a 50-digit mpmath evaluation.

Parametrised over the table keys, so a new entry is probed here on arrival; an entry whose g
has a corner (Max, Piecewise, Heaviside) but states no kink value fails
``test_every_cornered_entry_states_its_kink``.
"""
from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy

from backprop.codegen import load_trainer
from backprop.derive import make_spec
from backprop.derive.activations import (ACTIVATIONS, a, derivative, grad_at_kink,
                                         numpy_derivative, numpy_forward, z)
from backprop.derive.losses import LOSSES, PREDICTION, TARGET

ELEMENTWISE = sorted(n for n, act in ACTIVATIONS.items() if act.elementwise)
KINKED = sorted(n for n in ELEMENTWISE if ACTIVATIONS[n].kink is not None)
NEAR = [1e-300, -1e-300, 1e-8, -1e-8]
CORNERS = (sympy.Max, sympy.Min, sympy.Piecewise, sympy.Heaviside, sympy.Abs, sympy.sign)


def _torch_activations():
    """PyTorch's function for each entry it has (step: none with a gradient)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return torch, {
        "linear": lambda t: t, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "softplus": F.softplus, "elu": F.elu,
        "selu": F.selu, "gelu": lambda t: F.gelu(t, approximate="tanh"), "swish": F.silu,
    }


def _exact(name: str, point: float) -> float:
    """g'(point) from SymPy's derivative of the textbook g at the exact binary value of point
    (z ≠ 0, where every g here is smooth), to 30 digits."""
    d = sympy.diff(ACTIVATIONS[name].sym(z), z).replace(sympy.DiracDelta, lambda *_: sympy.S.Zero)
    return float(d.subs(z, sympy.Rational(point)).evalf(30))


def _numpy_grad(name: str, point: float) -> float:
    Z = np.array([[point]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return float(numpy_derivative(name)(numpy_forward(name)(Z), Z)[0, 0])


def _trainer_grads(name: str, point: float) -> dict[str, float]:
    """g'(z1) as three paths of a generated 1-1-1 trainer ([name, linear], se) compute it:
    ∂L/∂b1 = 2(ŷ - y)·w2·g'(z1) with w1 = w2 = 1, b = 0, x = point, divided by 2(ŷ - y)."""
    trainer = load_trainer(make_spec("1-1-1", [name, "linear"], "se"))
    params = {"W1": np.ones((1, 1)), "b1": np.zeros(1), "W2": np.ones((1, 1)), "b2": np.zeros(1)}
    X = np.array([[point]])
    yhat = float(trainer.forward(params, X)[0, 0])
    Y = np.array([[yhat - 0.5]])
    scale = 2 * (yhat - Y[0, 0])
    out = {"gradients": float(trainer.gradients(params, X, Y)["b1"][0]) / scale}
    for rows, path in ((1, "scalar step"), (2, "buffered step")):
        p = {k: v.copy() for k, v in params.items()}
        trainer.sgd_step(p, np.repeat(X, rows, 0), np.repeat(Y, rows, 0), 1.0)
        out[path] = -float(p["b1"][0]) / scale
    return out


def _torch_grad(name: str, point: float) -> float | None:
    torch, fns = _torch_activations()
    if name not in fns:
        return None
    t = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    fns[name](t).backward()
    return float(t.grad)


# -- the table -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_cornered_entry_states_its_kink(name):
    """g with a corner (or a jump) in its textbook form must state g' there; a smooth g must not."""
    cornered = ACTIVATIONS[name].sym(z).has(*CORNERS)
    assert (ACTIVATIONS[name].kink is not None) == cornered


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_cornered_loss_states_its_kink(name):
    cornered = LOSSES[name].term(TARGET, PREDICTION).has(*CORNERS)
    assert (LOSSES[name].kink is not None) == cornered


def test_kink_values_are_pytorchs():
    """The stated values, spelled out: relu'(0) = 0, leaky'(0) = 1/100, elu'(0) = α = 1,
    selu'(0) = λα (the left branch), step'(0) = 0."""
    assert {n: grad_at_kink(n) for n in KINKED} == {
        "relu": 0, "leaky_relu": sympy.Rational(1, 100), "elu": 1,
        "selu": ACTIVATIONS["selu"].kink.grad, "step": 0}
    assert float(grad_at_kink("selu")) == pytest.approx(1.0507009873554805 * 1.6732632423543772, rel=1e-15)
    # exactly λα, PyTorch's decimals multiplied at 40 digits (a Float product was off at 1e-16)
    with mpmath.workdps(40):
        lam_alpha = mpmath.mpf("1.0507009873554804934193349852946") * mpmath.mpf("1.6732632423543772848170429916717")
        assert abs(mpmath.mpf(str(grad_at_kink("selu").evalf(40))) - lam_alpha) < mpmath.mpf(10) ** -38


def test_a_derivative_that_moves_the_kink_is_refused(monkeypatch):
    """derivative() checks the derived g' at the kink against the table: a relu whose stated
    value disagrees (1 at 0, where Heaviside(a, 0) gives 0) is refused, not printed."""
    from dataclasses import replace

    from backprop.derive import activations

    wrong = replace(ACTIVATIONS["relu"], name="relu_wrong",
                    kink=activations.Kink(sympy.Integer(0), sympy.Integer(1)))
    monkeypatch.setitem(activations.ACTIVATIONS, "relu_wrong", wrong)
    with pytest.raises(ValueError, match="relu_wrong: derived g' at its kink"):
        activations.derivative.__wrapped__("relu_wrong")


# -- activations at z = 0 ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_at_zero_every_path_agrees(name):
    """At z = 0: the table's kink value (or SymPy's g'(0) for a smooth g), the symbolic
    derivative through the output, NumPy, the trainer's three paths and torch."""
    act = ACTIVATIONS[name]
    expr, var = derivative(name)
    symbolic = expr.xreplace({var: act.sym(sympy.Integer(0)) if var is a else sympy.Integer(0)})
    want = act.kink.grad if act.kink is not None else sympy.diff(act.sym(z), z).subs(z, 0)
    assert symbolic == want or float(symbolic) == pytest.approx(float(want), rel=1e-15)
    want = float(want)
    assert _numpy_grad(name, 0.0) == pytest.approx(want, rel=1e-15, abs=0)
    for path, got in _trainer_grads(name, 0.0).items():
        assert got == pytest.approx(want, rel=1e-15, abs=0), path
    if name != "step":  # torch has no gradient of heaviside
        assert _torch_grad(name, 0.0) == pytest.approx(want, rel=1e-15, abs=0)


@pytest.mark.parametrize("point", NEAR, ids=[f"{p:g}" for p in NEAR])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_beside_zero_every_path_takes_its_sides_branch(name, point):
    """At ±1e-300 and ±1e-8: the branch the sign of z selects (relu' = 1 at +1e-300, 0 at
    -1e-300), the same in NumPy, the trainer's three paths and torch."""
    want = _exact(name, point)
    assert _numpy_grad(name, point) == pytest.approx(want, rel=1e-12, abs=0)
    for path, got in _trainer_grads(name, point).items():
        assert got == pytest.approx(want, rel=1e-12, abs=0), path
    if name != "step":
        assert _torch_grad(name, point) == pytest.approx(want, rel=1e-12, abs=0)


# -- activations far out ----------------------------------------------------------------------
_MP_FORMS = {
    "linear": lambda t: t,
    "sigmoid": lambda t: 1 / (1 + mpmath.exp(-t)),
    "tanh": mpmath.tanh,
    "relu": lambda t: max(t, 0),
    "leaky_relu": lambda t: t if t > 0 else t / 100,
    "softplus": lambda t: mpmath.log1p(mpmath.exp(t)),
    "step": lambda t: mpmath.mpf(t >= 0),
    "elu": lambda t: t if t > 0 else mpmath.expm1(t),
    "selu": lambda t: mpmath.mpf("1.0507009873554804934193349852946") * (
        t if t > 0 else mpmath.mpf("1.6732632423543772848170429916717") * mpmath.expm1(t)),
    "gelu": lambda t: t / 2 * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (t + mpmath.mpf("0.044715") * t**3))),
    "swish": lambda t: t / (1 + mpmath.exp(-t)),
}


@pytest.mark.parametrize("point", [-1e3, 1e3, -1e308, 1e308])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_far_out_values_and_derivatives_are_finite_and_right(name, point):
    """The stable forms at ±1e3 (and ±1e308): no warning, finite, and g (and at ±1e3 g') equal
    a 50-digit evaluation of the textbook form (g' within 1e-15 absolute where it is ~0)."""
    assert set(_MP_FORMS) == set(ELEMENTWISE), "add the new entry's mpmath form"
    Z = np.array([[point]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = numpy_forward(name)(Z)
        G = numpy_derivative(name)(A, Z)
    assert np.isfinite(A).all() and np.isfinite(G).all()
    with mpmath.workdps(50):
        t = mpmath.mpf(point)
        g = _MP_FORMS[name](t)
        smooth_here = name not in ("relu", "leaky_relu", "step") and abs(point) <= 1e3
        dg = mpmath.diff(_MP_FORMS[name], t) if smooth_here else None
    assert float(A[0, 0]) == pytest.approx(float(g), rel=1e-14, abs=1e-300)
    if dg is not None:
        assert float(G[0, 0]) == pytest.approx(float(dg), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_generated_trainer_is_finite_far_out(name):
    """A trainer's forward and gradients at inputs of ±1e3 (float64 and float32): finite, no
    warning (the printed stable forms, clipped g' in z included)."""
    for dtype in ("float64", "float32"):
        trainer = load_trainer(make_spec("1-2-1", [name, "linear"], "se"), dtype)
        params = trainer.init_params(seed=0, scheme="ones")
        X = np.array([[-1e3], [1e3], [0.0]])
        Y = np.zeros((3, 1))
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            out = trainer.forward(params, X)
            grads = trainer.gradients(params, X, Y)
        assert np.isfinite(out).all(), dtype
        assert all(np.isfinite(g).all() for g in grads.values()), dtype


# -- losses at their kinks --------------------------------------------------------------------
LOSS_KINKED = sorted(n for n, loss in LOSSES.items() if loss.kink is not None)


def _kink_points(name: str):
    """(y, ŷ) on the kink for every label the loss takes: hinge y·ŷ = 1 at y = ±1."""
    at = LOSSES[name].kink.at
    for y in LOSSES[name].targets.labels:
        for p in sympy.solve((at.lhs - at.rhs).subs(TARGET, y), PREDICTION):
            yield y, p


def _loss_trainer_grad(name: str, y: float, yhat: float) -> dict[str, float]:
    """∂L/∂ŷ of a generated 1-1 linear trainer (w = 1, b = 0, x = ŷ) as ∂L/∂b, three paths."""
    trainer = load_trainer(make_spec("1-1", "linear", name))
    params = {"W1": np.ones((1, 1)), "b1": np.zeros(1)}
    X, Y = np.array([[yhat]]), np.array([[y]])
    out = {"gradients": float(trainer.gradients(params, X, Y)["b1"][0])}
    for rows, path in ((1, "scalar step"), (2, "buffered step")):
        p = {k: v.copy() for k, v in params.items()}
        trainer.sgd_step(p, np.repeat(X, rows, 0), np.repeat(Y, rows, 0), 1.0)
        out[path] = -float(p["b1"][0])
    return out


@pytest.mark.parametrize("name", LOSS_KINKED)
def test_loss_at_its_kink_every_path_agrees(name):
    """hinge at y·ŷ = 1: the table's -y/2 (H(0) = ½), the derived ∂ℓ/∂ŷ, the trainer's three
    paths and torch.maximum(1 - y·ŷ, 0), the form the table names."""
    torch = pytest.importorskip("torch")
    loss = LOSSES[name]
    d = loss.d_per_output(1)
    for y, p in _kink_points(name):
        want = loss.kink.grad.subs({TARGET: y, PREDICTION: p})
        assert d.subs({TARGET: y, PREDICTION: p}) == want
        for path, got in _loss_trainer_grad(name, float(y), float(p)).items():
            assert got == float(want), (path, y)
        t = torch.tensor(float(p), dtype=torch.float64, requires_grad=True)
        torch.maximum(1 - float(y) * t, torch.zeros((), dtype=torch.float64)).backward()
        assert float(t.grad) == float(want)


@pytest.mark.parametrize("step", [1e-8, -1e-8])
@pytest.mark.parametrize("name", LOSS_KINKED)
def test_loss_beside_its_kink_takes_its_sides_branch(name, step):
    """y·ŷ = 1 ± 1e-8: -y inside the margin, 0 beyond it, in the trainer as in torch."""
    torch = pytest.importorskip("torch")
    for y, p in _kink_points(name):
        yhat = float(p) + step * float(y)  # y·ŷ = 1 + step
        want = 0.0 if step > 0 else -float(y)
        for path, got in _loss_trainer_grad(name, float(y), yhat).items():
            assert got == want, (path, y)
        t = torch.tensor(yhat, dtype=torch.float64, requires_grad=True)
        torch.clamp(1 - float(y) * t, min=0).backward()
        assert float(t.grad) == want
