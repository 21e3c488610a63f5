"""Every generated trainer's gradients against three independent references:

1. central finite differences of the trainer's own ``loss`` (float64, rel. error < 1e-6);
2. the spine's per-parameter SymPy formulas, evaluated numerically (``numeric_gradients``);
3. PyTorch autograd in float64, where torch is installed.

Parametrised over the keys of the activation and loss tables, so a new entry is tested on
arrival (tangent's conftest, Brian 2's test_math_functions).
"""
import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.derive import ACTIVATIONS, LOSSES, UserError, derive, make_spec, numeric_gradients
from backprop.derive import notation as nt

from fd import finite_differences  # tests/fd.py

FD_RTOL = 1e-6


def targets(loss: str, rng, shape):
    """Targets inside each loss's domain: one-hot for cce, in (0, 1) for bce, ±1 for hinge."""
    rows, outs = shape
    if LOSSES[loss].one_hot:
        return np.eye(outs)[rng.integers(0, outs, rows)]
    if loss == "bce":
        return rng.uniform(0.05, 0.95, shape)
    if loss == "hinge":
        return rng.choice([-1.0, 1.0], shape)
    return rng.normal(size=shape)


def random_problem(spec, seed=0, rows=5):
    """Parameters with non-zero biases, a batch X and targets Y for ``spec``."""
    rng = np.random.default_rng(seed)
    trainer = load_trainer(spec)
    params = trainer.init_params(seed=seed)
    for name in params:
        params[name] = params[name] + rng.normal(0.0, 0.3, params[name].shape)
    X = rng.normal(size=(rows, spec.n_inputs))
    Y = targets(spec.loss, rng, (rows, spec.n_outputs))
    return trainer, params, X, Y


def relative_error(a, b):
    """‖a - b‖ / (‖a‖ + ‖b‖), 0 when both vanish (cs231n's gradient check)."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def spec_or_skip(layers, activations, loss, bias=True):
    try:
        return make_spec(layers, activations, loss, bias=bias)
    except UserError as exc:  # e.g. softmax of one node
        pytest.skip(str(exc))


def assert_matches_fd(spec, seed=0):
    trainer, params, X, Y = random_problem(spec, seed)
    with np.errstate(all="ignore"):
        in_domain = np.isfinite(trainer.loss(params, X, Y))
    if not in_domain:
        pytest.skip(f"{spec.activations[-1]} outputs lie outside the domain of {spec.loss}")
    grads = trainer.gradients(params, X, Y)
    fd = finite_differences(trainer, params, X, Y)
    assert grads.keys() == params.keys()
    for name in params:
        assert grads[name].shape == params[name].shape
        assert relative_error(grads[name], fd[name]) < FD_RTOL, name


# -- 1. finite differences ----------------------------------------------------------------------
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("output", sorted(ACTIVATIONS))
def test_output_layer_and_loss_match_finite_differences(output, loss):
    """Every output activation with every loss (where its outputs are in the loss's domain)."""
    assert_matches_fd(spec_or_skip("3-4-3", ["tanh", output], loss))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
def test_hidden_layers_match_finite_differences(hidden, bias):
    """Every activation in two hidden layers (its derivative goes through δ^k = δ^{k+1}W^T ⊙ g')."""
    assert_matches_fd(spec_or_skip("3-4-3-2", [hidden, hidden, "linear"], "se", bias=bias), seed=1)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_classifier_heads_match_finite_differences(loss):
    """Every loss on a sigmoid head and on a softmax head (the fused cases among them)."""
    for head in ("sigmoid", "softmax"):
        assert_matches_fd(make_spec("4-5-3", ["relu", head], loss), seed=2)


# -- 2. the spine's SymPy formulas ---------------------------------------------------------------
def _row_values(spec, params, x, y):
    values = {nt.feature(j): x[j - 1] for j in range(1, spec.n_inputs + 1)}
    values.update({nt.target(j): y[j - 1] for j in range(1, spec.n_outputs + 1)})
    for k in range(1, spec.depth + 1):
        for i in range(1, spec.layers[k - 1] + 1):
            for j in range(1, spec.layers[k] + 1):
                values[nt.weight(k, i, j)] = float(params[f"W{k}"][i - 1, j - 1])
        for j in range(1, spec.layers[k] + 1):
            values[nt.bias(k, j)] = float(params[f"b{k}"][j - 1]) if spec.bias else 0.0
    return values


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["se", "mse", "bce", "cce", "hinge"])
def test_gradients_equal_the_sympy_formulas(activation, loss):
    """One row: the trainer's vectorised gradients = the memoised per-parameter derivation."""
    spec = spec_or_skip("2-3-2", [activation, "sigmoid" if loss != "cce" else "softmax"], loss)
    trainer, params, X, Y = random_problem(spec, seed=3, rows=1)
    grads = trainer.gradients(params, X, Y)
    derivation = derive(spec)
    symbolic = numeric_gradients(derivation, _row_values(spec, params, X[0], Y[0]))
    for g in derivation.gradients:
        name, index = g.key
        assert grads[name][index] == pytest.approx(symbolic[g.parameter], rel=1e-9, abs=1e-12), g.name


# -- 3. PyTorch autograd --------------------------------------------------------------------------
def _torch_tables():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    acts = {
        "linear": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "softplus": F.softplus,
        "step": lambda z: 0 * z + (z >= 0).to(z.dtype),  # torch has no heaviside derivative
        "softmax": lambda z: torch.softmax(z, dim=1),
        "elu": F.elu,
        "selu": F.selu,
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "swish": F.silu,
    }
    losses = {
        "se": lambda y, p: ((y - p) ** 2).sum(1),
        "half_se": lambda y, p: ((y - p) ** 2).sum(1) / 2,
        "mse": lambda y, p: ((y - p) ** 2).mean(1),
        "bce": lambda y, p: -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum(1),
        "cce": lambda y, p: -(y * torch.log(p)).sum(1),
        "hinge": lambda y, p: torch.clamp(1 - y * p, min=0).sum(1),
    }
    return torch, acts, losses


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_equal_torch_autograd(activation, loss):
    torch, acts, losses = _torch_tables()
    assert activation in acts and loss in losses, "add the new table entry to the torch reference"
    head = {"bce": "sigmoid", "cce": "softmax"}.get(loss, "linear")
    spec = spec_or_skip("3-4-3", [activation, head], loss)
    trainer, params, X, Y = random_problem(spec, seed=4)
    grads = trainer.gradients(params, X, Y)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    O = torch.tensor(X, dtype=torch.float64)
    for k, name in enumerate(spec.activations, start=1):
        Z = O @ tp[f"W{k}"] + (tp[f"b{k}"] if spec.bias else 0)
        O = acts[name](Z)
    L = losses[loss](torch.tensor(Y, dtype=torch.float64), O).mean()
    L.backward()
    assert trainer.loss(params, X, Y) == pytest.approx(L.item(), rel=1e-12)
    for name, value in tp.items():
        np.testing.assert_allclose(grads[name], value.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
