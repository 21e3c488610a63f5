r"""verify on a batch-normalised network: the matrix form checked on concrete seeded batches
(verify/batch_norm_form.py): derive --vectorised's own LaTeX reads back correct, the forgotten
batch-mean terms are `wrong` with that label, and the truth agrees with finite differences."""
from __future__ import annotations

import numpy as np
import pytest

from backprop.derive import batchnorm, derive, vectorise
from backprop.derive.spec import make_spec
from backprop.verify import verify_text
from backprop.verify.batch_norm_form import make_batch

BN = make_spec("2-3-1", "tanh,linear", "se", batch_norm=[True])
G_DEF = r",\quad G = \frac{\partial L}{\partial \tilde{Z}^{1}}"


def verdicts(text, spec=BN):
    return verify_text(text, spec).verdicts


def one(text, spec=BN):
    v, = verdicts(text, spec)
    return v


@pytest.mark.parametrize("layers,acts,loss,bn", [
    ("2-3-1", "tanh,linear", "se", [True]),
    ("2-3-2", "relu,softmax", "cce", [True]),
    ("2-3-2", "elu,sigmoid", "bce", [True]),
    ("2-3-3-1", "relu,sigmoid,linear", "half_se", [True, True]),
    ("2-3-3-1", "tanh,tanh,linear", "mse", [False, True]),
])
def test_the_tools_own_vectorised_latex_reads_back_correct(layers, acts, loss, bn):
    spec = make_spec(layers, acts, loss, batch_norm=bn)
    vs = verdicts(vectorise(derive(spec)).latex(), spec)
    assert len(vs) > 15
    assert [(v.source, v.message) for v in vs if v.verdict != "correct"] == []


def test_batch_mean_terms_forgotten_is_wrong_with_that_label():
    for claim in (r"\delta^{1} = \frac{\gamma^{1}}{\sigma^{1}} \odot G" + G_DEF,
                  r"\frac{\partial L}{\partial Z^{1}} = \frac{\gamma^{1}}{\sqrt{(\sigma^{1})^{2} + \varepsilon}} "
                  r"\odot \frac{\partial L}{\partial \tilde{Z}^{1}}"):
        v = verdicts(claim)[0]
        assert v.verdict == "wrong"
        assert v.misconception["id"] == "bn_batch_means_forgotten"
        assert v.misconception["label"] == "batch-mean terms forgotten"
        cx = v.counterexample
        assert cx["point"]["n"] in (4, 5) and float(cx["claimed"]) != pytest.approx(float(cx["actual"]))


def test_one_batch_mean_term_missing_has_its_own_label_and_the_full_form_is_correct():
    full = r"\delta^{1} = \frac{\gamma^{1}}{\sigma^{1}} \odot (G - \mathrm{mean}_{\text{rows}}(G) - \hat{X}^{1} \odot \mathrm{mean}_{\text{rows}}(G \odot \hat{X}^{1}))"
    assert one(full).verdict == "correct"
    half = r"\delta^{1} = \frac{\gamma^{1}}{\sigma^{1}} \odot (G - \mathrm{mean}_{\text{rows}}(G))"
    v = one(half)
    assert v.verdict == "wrong" and v.misconception["id"] == "bn_batch_mean_term_missing"
    # no ε in the divisor: wrong (by about 1e-5 relative), and no slip claimed for it
    v = one(full.replace(r"\sigma^{1}", r"\sqrt{(\sigma^{1})^{2}}"))
    assert v.verdict == "wrong" and v.misconception is None


def test_shapes_sums_and_transposes():
    v = one(r"\frac{\partial L}{\partial W^{1}} = X \delta^{1}")
    assert v.verdict == "wrong" and v.misconception["id"] == "missing_transpose"
    v = one(r"\frac{\partial L}{\partial \gamma^{1}} = \frac{\partial L}{\partial \tilde{Z}^{1}} \odot \hat{X}^{1}")
    assert v.verdict == "wrong" and "sum over the rows" in v.message
    v = one(r"\frac{\partial L}{\partial b^{1}} = \delta^{1}")
    assert v.verdict == "wrong" and v.misconception["id"] == "bias_not_summed"
    v = one(r"\delta^{2} = 2 (\hat{Y} - Y)")
    assert v.verdict == "wrong" and v.misconception["id"] == "missing_mean"
    v = one(r"\mu^{1} = \sum_{\text{rows}} Z^{1}")
    assert v.verdict == "wrong" and v.misconception is None  # L's 1/n labels gradients only
    assert one(r"\frac{\partial L}{\partial \beta^{1}} = \sum_{\text{rows}} G").verdict == "correct"
    v = one(r"\frac{\partial L}{\partial b^{1}} = 0")  # a number is not the 1×3 row (of zeros)
    assert v.verdict == "error" and "a number" in v.message


def test_per_parameter_and_column_claims_are_errors_naming_why():
    v = one(r"\frac{\partial L}{\partial w^1_{11}} = x_{i1}")
    assert v.verdict == "error" and "couples the rows" in v.message
    v = one("% vectors: column\n" + r"\mu^{1} = \frac{1}{n} \sum_{\text{rows}} Z^{1}")
    assert v.verdict == "error" and "row vectors" in v.message
    v = one(r"\mu^{2} = \frac{1}{n} \sum_{\text{rows}} Z^{2}")
    assert v.verdict == "error" and "not batch-normalised" in v.message


def test_the_loss_line_is_checked_on_the_rows():
    assert one(r"L = (y - \hat{y})^2").verdict == "correct"
    v = one(r"L = (y - \hat{y})")
    assert v.verdict == "wrong" and v.counterexample["claimed"] != v.counterexample["actual"]


def _loss(X, Y, p):
    Zt = batchnorm.forward(X @ p["W1"] + p["b1"], p["g1"], p["be1"])[0]
    P = np.tanh(Zt) @ p["W2"] + p["b2"]
    return ((Y - P) ** 2).mean()


def test_the_truth_agrees_with_finite_differences_and_numpy_backward():
    b = make_batch(BN, 5, seed=7)
    v = {k: np.array(a.tolist(), dtype=float) for k, a in b.values.items()}
    X, Y = v["O", 0], v["Y", None]
    p = {"W1": v["W", 1], "b1": v["b", 1], "g1": v["gamma", 1], "be1": v["beta", 1], "W2": v["W", 2], "b2": v["b", 2]}
    truth = {"W1": v["dW", 1], "g1": v["dgamma", 1], "be1": v["dbeta", 1], "W2": v["dW", 2], "b2": v["db", 2],
             "b1": v["db", 1]}
    h = 1e-6
    for name, grad in truth.items():
        fd = np.zeros_like(p[name])
        for idx in np.ndindex(*p[name].shape):
            up, down = {**p, name: p[name].copy()}, {**p, name: p[name].copy()}
            up[name][idx] += h
            down[name][idx] -= h
            fd[idx] = (_loss(X, Y, up) - _loss(X, Y, down)) / (2 * h)
        np.testing.assert_allclose(grad, fd, atol=1e-8, rtol=1e-6, err_msg=name)
    dz, dg, dbeta = batchnorm.backward(v["G", 1], v["Xhat", 1], v["gamma", 1], v["var", 1])
    np.testing.assert_allclose(v["delta", 1], dz, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v["dgamma", 1], dg[None, :], rtol=1e-12)
    assert np.abs(v["db", 1]).max() < 1e-30  # Σ_rows δ = 0: the bias before BN is cancelled by μ
