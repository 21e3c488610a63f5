"""grad_sum: the generated trainer's per-share sums add up to the whole batch's mean gradient."""
import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.derive import make_spec

SPECS = [("2-2-1", "linear", "se"), ("3-4-2", "tanh", "mse"), ("4-5-3", "relu,softmax", "cce"),
         ("3-3-1", "sigmoid", "bce")]


@pytest.mark.parametrize("layers,acts,loss", SPECS)
def test_shares_add_up_to_the_batch(layers, acts, loss):
    spec = make_spec(layers, acts, loss)
    t = load_trainer(spec)
    rng = np.random.default_rng(3)
    params = t.init_params(seed=1)
    X = rng.normal(size=(11, spec.layers[0]))
    if loss == "cce":
        Y = np.eye(spec.layers[-1])[rng.integers(0, spec.layers[-1], 11)]
    elif loss == "bce":
        Y = rng.integers(0, 2, (11, 1)).astype(float)
    else:
        Y = rng.normal(size=(11, spec.layers[-1]))
    L, grads = t.loss_and_gradients(params, X, Y)
    shares = [t.grad_sum(params, X[a:b], Y[a:b]) for a, b in ((0, 4), (4, 5), (5, 11))]
    assert sum(n for _, _, n in shares) == 11
    assert sum(s for s, _, _ in shares) / 11 == pytest.approx(L, rel=1e-13)
    for key, g in grads.items():
        total = sum(share[key] for _, share, _ in shares) / 11
        np.testing.assert_allclose(total, g, rtol=1e-12, atol=1e-15)
        assert total.shape == g.shape


def test_batch_norm_trainers_have_no_grad_sum():
    """Batch statistics couple the rows: shares of a batch do not add up, so there is none."""
    spec = make_spec("3-4-1", "relu,linear", "se", batch_norm=[True])
    assert not hasattr(load_trainer(spec), "grad_sum")
