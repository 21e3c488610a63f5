"""The activation and loss tables: derivatives come from SymPy and agree with it; the NumPy
forms are stable at extreme inputs.  Parametrised over the table keys, so a new entry is
tested on arrival."""
import warnings

import numpy as np
import pytest
import sympy

from backprop.derive.activations import (ACTIVATIONS, a, derivative, numpy_derivative,
                                         numpy_forward, softmax_jacobian, z)
from backprop.derive.losses import LOSSES

ELEMENTWISE = [n for n, act in ACTIVATIONS.items() if act.elementwise]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_through_output_matches_sympy_diff(name):
    expr, var = derivative(name)
    g = ACTIVATIONS[name].sym(z)
    for point in (-2.5, -0.3, 0.4, 3.1):
        truth = sympy.diff(g, z).subs(z, point).replace(sympy.DiracDelta, lambda *_: 0)
        at = expr.subs(var, g.subs(z, point) if var is a else point)
        assert float(at) == pytest.approx(float(truth), rel=1e-12, abs=1e-12)


def test_textbook_forms_through_the_output():
    assert derivative("sigmoid") == (a * (1 - a), a)
    assert derivative("tanh") == (1 - a**2, a)
    assert derivative("linear")[0] == 1


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_numpy_forward_is_stable_at_extremes(name):
    Z = np.array([[-1e308, -1000.0, 0.0, 1000.0, 1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = numpy_forward(name)(Z)
        numpy_derivative(name)(out, Z)
    assert np.all(~np.isnan(out))


def test_sigmoid_limits():
    out = numpy_forward("sigmoid")(np.array([-1000.0, 0.0, 1000.0]))
    assert out.tolist() == [0.0, 0.5, 1.0]


def test_softmax_is_stable_and_matches_sympy_jacobian():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = numpy_forward("softmax")(np.array([[1000.0, 0.0, -1000.0]]))
    assert out.tolist() == [[1.0, 0.0, 0.0]]
    zs = sympy.symbols("z1:4")
    exps = [sympy.exp(t) for t in zs]
    outs = [e / sum(exps) for e in exps]
    point = {zs[0]: 0.3, zs[1]: -1.2, zs[2]: 0.7}
    for m in range(3):
        for j in range(3):
            truth = sympy.diff(outs[m], zs[j]).subs(point)
            ours = softmax_jacobian(outs, m, j).subs(point)
            assert float(ours) == pytest.approx(float(truth), rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_numpy_loss_matches_symbolic_and_is_finite_at_0_and_1(name):
    loss = LOSSES[name]
    y, p = sympy.symbols("y p")
    Y = np.array([[1.0, 0.0]])
    P = np.array([[0.7, 0.2]])
    symbolic = loss.row([y, y], [p, p])  # check per-output term via two equal outputs
    assert float(symbolic.subs({y: 1.0, p: 0.7})) == pytest.approx(
        float(loss.numpy(np.array([[1.0, 1.0]]), np.array([[0.7, 0.7]]))[0]), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extreme = loss.numpy(np.array([[1.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 1.0]]))
    assert np.all(np.isfinite(extreme))
    assert np.isfinite(loss.numpy(Y, P)).all()


@pytest.mark.parametrize("name", [n for n, act in ACTIVATIONS.items()
                                  if act.elementwise and act.inverse is not None])
def test_derivative_through_output_is_what_simplify_gives(name):
    """derivative() rewrites g'(z(a)) with cheap exact rewrites instead of sympy.simplify (whose
    first call costs every run ~0.1 s); for every table entry the two agree exactly, so a new
    entry that the cheap rewrites cannot untangle fails here instead of printing a tangle."""
    import sympy

    from backprop.derive.activations import _tidy, a, simplest, z

    act = ACTIVATIONS[name]
    d = _tidy(sympy.diff(act.sym(z), z))
    if d.is_number:
        pytest.skip("constant derivative: nothing to rewrite")
    through = d.subs(z, act.inverse(a))
    assert simplest(through) == sympy.simplify(through)


# -- the four entries added as one row each (issue 14) ---------------------------------------
NEW = ["elu", "selu", "gelu", "swish"]


@pytest.mark.parametrize("name", NEW)
def test_new_entries_match_torch_forward_and_derivative(name):
    """g and g' of the table (NumPy forms) against torch float64 at points across both sides."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    fn = {"elu": F.elu, "selu": F.selu, "gelu": lambda t: F.gelu(t, approximate="tanh"),
          "swish": F.silu}[name]
    pts = np.array([[-30.0, -7.5, -2.0, -0.3, 0.0, 0.4, 1.7, 6.0, 12.0, 45.0]])
    t = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    out = fn(t)
    out.sum().backward()
    A = numpy_forward(name)(pts)
    np.testing.assert_allclose(A, out.detach().numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(numpy_derivative(name)(A, pts), t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_new_entries_derive_where_the_rules_say():
    """elu/selu through the output, branch by branch (no Piecewise inside a Piecewise), gelu and
    swish (no inverse) in z."""
    from backprop.derive.activations import SELU_ALPHA, SELU_SCALE

    assert derivative("elu") == (sympy.Piecewise((1, a > 0), (a + 1, True)), a)
    expr, var = derivative("selu")
    assert var is a and expr == sympy.Piecewise((SELU_SCALE, a > 0), (a + SELU_SCALE * SELU_ALPHA, True))
    assert derivative("gelu")[1] is z and derivative("swish")[1] is z
    assert not any(p.has(sympy.Piecewise) for p, _ in derivative("elu")[0].args)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_no_float_in_the_table(name):
    """Every g, g' and stable form is exact: a Float (15-17 digits) in a constant made the
    derivation and a reader's g' differ by 1e-16, and verify (40 digits) said WRONG (issue 14)."""
    act = ACTIVATIONS[name]
    forms = [act.sym(z), derivative(name)[0]] + ([act.stable(z)] if act.stable else [])
    assert not any(f.atoms(sympy.Float) for f in forms), forms


def test_table_constants_are_exact_and_cancel():
    """λ, α, 0.044715 and 0.5 are their decimals at any precision; selu through its inverses
    is the output again exactly (λα · a/(λα) = a, not 1.0·a)."""
    from backprop.derive.activations import GELU_HALF, GELU_K, SELU_ALPHA, SELU_SCALE, TableConstant

    for c, digits in ((SELU_SCALE, "1.0507009873554804934193349852946"),
                      (SELU_ALPHA, "1.6732632423543772848170429916717"), (GELU_K, "0.044715"), (GELU_HALF, "0.5")):
        assert isinstance(c, TableConstant) and c.is_number and c.is_positive
        assert sympy.Rational(str(c.evalf(60))) - sympy.Rational(digits) == 0
        assert c.evalf(50) == sympy.Float(digits, 50)
    assert float(SELU_SCALE * SELU_ALPHA) == float(sympy.Rational(SELU_SCALE.decimal) * sympy.Rational(SELU_ALPHA.decimal))
    lam_alpha = SELU_SCALE * SELU_ALPHA  # the left branch λα(e^z - 1) at its inverse z = log(a/(λα) + 1)
    assert sympy.expand(lam_alpha * (sympy.exp(sympy.log(a / lam_alpha + 1)) - 1)) == a
    assert lam_alpha * (a / lam_alpha) == a
    assert 3 * GELU_K != sympy.Rational(26829, 200000)  # a number of its own, never a Float
    assert abs((3 * GELU_K).evalf(40) - sympy.Rational(26829, 200000)) < sympy.Rational(1, 10**40)


def test_table_constants_print_as_the_notes_and_as_float_literals():
    """The notation printers write λ and α (λ first) and gelu's decimals multiplied out; the
    code printers (lambdify's NumPy, the trainers' forms) a float literal, never a name."""
    from backprop.codegen import forms
    from backprop.derive import make_spec
    from backprop.derive.activations import GELU_HALF, GELU_K, SELU_ALPHA, SELU_SCALE
    from backprop.derive.printing import NotationPrinter

    p = NotationPrinter(depth=2, single_output=True)
    O = sympy.Symbol("O_1_1", real=True)
    assert p.text(sympy.Piecewise((SELU_SCALE, O > 0), (O + SELU_ALPHA * SELU_SCALE, True))) == \
        "{λ if O_11 > 0; λ α + O_11 otherwise}"
    assert p.latex(SELU_ALPHA * SELU_SCALE * O) == r"\lambda \alpha O_{11}"
    assert p.text(1 + 3 * GELU_K * O**2) == "1 + 0.134145 O_11^2"
    assert p.latex(GELU_HALF * sympy.sqrt(2) / sympy.sqrt(sympy.pi) * O) == r"0.5 \frac{\sqrt{2}}{\sqrt{\pi}} O_{11}"
    source = sympy.lambdify(z, SELU_SCALE * SELU_ALPHA * z + GELU_K, "numpy").__doc__.split("Source code:")[1]
    assert "1.0507009873554805" in source and "1.67326324235437" in source and "0.044715" in source
    assert "λ" not in source and "α" not in source
    for act in ("selu", "gelu"):
        piece = forms.layer_pieces(make_spec("2-2-1", f"{act},linear", "se"))[0]
        for expr in (piece.forward, piece.derivative):
            assert not expr.atoms(sympy.NumberSymbol) - {sympy.pi}, expr
            assert expr.atoms(sympy.Float), expr


@pytest.mark.parametrize("name", ["gelu", "swish"])
def test_stable_derivative_clips_only_where_g_prime_is_flat(name):
    """The clipped g' equals the textbook g' inside the clip and at the clip's edge to float64."""
    from backprop.derive.activations import stable_derivative

    expr, _ = derivative(name)
    clipped, _ = stable_derivative(name)
    limit = ACTIVATIONS[name].flat_beyond
    for point in (-limit, -3.0, 0.25, 2.0, limit, 2 * limit, -2 * limit):
        at = min(max(point, -limit), limit)
        assert float(clipped.subs(z, point)) == pytest.approx(float(expr.subs(z, at)), rel=1e-15, abs=1e-300)
        if abs(point) > limit:  # beyond: the textbook value is the edge's, to 1e-15
            assert float(expr.subs(z, point)) == pytest.approx(float(expr.subs(z, at)), abs=1e-15)


def test_spellings_come_from_the_table():
    from backprop.derive.activations import by_spelling, latex_commands

    assert latex_commands() == {r"\sigma": "sigmoid", r"\tanh": "tanh"}
    assert [by_spelling(w) for w in ("ReLU", r"leaky\_relu", "LReLU", "SiLU", "GELU", "nope")] == \
        ["relu", "leaky_relu", "leaky_relu", "swish", "gelu", None]


# -- the loss table's columns -----------------------------------------------------------------
def test_loss_columns():
    from backprop.derive.losses import is_canonical_pair, is_classification, names_where

    assert {n: (l.targets.kind, l.task, l.metric) for n, l in LOSSES.items()} == {
        "se": ("real", "regression", "rmse"), "half_se": ("real", "regression", "rmse"),
        "mse": ("real", "regression", "rmse"), "bce": ("binary", "classification", "accuracy"),
        "cce": ("one_hot", "classification", "accuracy"), "hinge": ("sign", "classification", "accuracy")}
    assert [n for n in LOSSES if is_classification(n)] == ["bce", "cce", "hinge"]
    assert names_where(squared=True) == names_where(task="regression") == ("se", "half_se", "mse")
    assert [n for n in LOSSES if LOSSES[n].one_hot] == ["cce"]
    assert is_canonical_pair("sigmoid", "bce") and is_canonical_pair("softmax", "cce")
    assert not is_canonical_pair("sigmoid", "cce") and not is_canonical_pair("linear", "se")


def test_loss_decide_and_metric():
    from backprop.derive.losses import metric_value

    P = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    assert LOSSES["cce"].decide(P).tolist() == [1, 0] and LOSSES["cce"].n_classes(3) == 3
    assert LOSSES["bce"].decide(np.array([[0.5], [0.49]])).tolist() == [1, 0]
    assert LOSSES["hinge"].decide(np.array([[0.0], [-0.01]])).tolist() == [1, 0]
    assert LOSSES["bce"].n_classes(1) == LOSSES["hinge"].n_classes(1) == 2
    assert metric_value("hinge", np.array([[1.0], [-1.0], [1.0], [-1.0]]),
                        np.array([[0.3], [0.2], [-2.0], [-0.1]])) == 0.5
    assert metric_value("se", np.zeros((2, 2)), np.array([[3.0, 0.0], [0.0, 4.0]])) == 2.5  # √(25/4)
    with pytest.raises(ValueError, match="not a classification loss"):
        LOSSES["mse"].decide(P)


def test_a_loss_whose_kink_value_disagrees_is_refused():
    from dataclasses import replace

    from backprop.derive.losses import TARGET, _d_per_output

    wrong = replace(LOSSES["hinge"], kink=replace(LOSSES["hinge"].kink, grad=-TARGET))
    with pytest.raises(ValueError, match="hinge: derived ∂ℓ/∂ŷ at its kink"):
        _d_per_output(wrong, 1)
