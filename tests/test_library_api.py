"""The library as a user meets it: values by the names the tool prints, every form as LaTeX,
``d.gradients`` a lazy sequence, objects that render in the notes' notation, numpydoc
examples that run, ``python -m backprop`` and ``backprop.__version__``."""
import doctest
import importlib
import importlib.metadata
import pickle
import re
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
import sympy

import backprop
from backprop.derive import FORMS, Gradients, derive, make_spec, numeric_gradients
from backprop.derive import derivation as derivation_module
from backprop.derive import notation as nt
from backprop.derive.printing import NotationPrinter
from test_derive_gradients import _nested_loss, _point  # tests/: the independent references

#: Networks of several shapes, multi-output and two-digit indices among them.
NETWORKS = [
    ("2-2-1", "linear", "se"),
    ("3-2-2", "sigmoid,softmax", "cce"),
    ("2-3-3-2", "tanh,relu,sigmoid", "bce"),
    ("11-2-1", "softplus,linear", "hinge"),
    ("2-2", "linear", "se", False),
]


def _derive(case):
    layers, acts, loss, *bias = case
    return derive(make_spec(layers, acts, loss, bias=bias[0] if bias else True))


def _printed(d, values, spell=nt.text_name):
    """The same values keyed by the names the tool prints (or their LaTeX)."""
    return {spell(nt.parse(s), d.net.single_output): v for s, v in values.items()}


# -- g.numpy: the printed names ------------------------------------------------------------
@pytest.mark.parametrize("case", NETWORKS, ids=lambda c: "-".join(map(str, c)))
def test_numpy_with_printed_names_matches_memo_table_and_finite_differences(case):
    d = _derive(case)
    values = _point(d, np.random.default_rng(3))
    memo = numeric_gradients(d, values)
    loss, h = _nested_loss(d), 1e-6
    for spell in (nt.text_name, nt.latex_name):
        printed = _printed(d, values, spell)
        assert len(printed) == len(values)  # every name distinct
        for g in d.gradients:
            got = g.numpy(printed)
            assert got == pytest.approx(memo[g.parameter], rel=1e-12, abs=1e-14)
            up, down = dict(values), dict(values)
            up[g.parameter] += h
            down[g.parameter] -= h
            fd = (loss(up) - loss(down)) / (2 * h)
            assert abs(got - fd) <= 1e-6 * max(abs(fd), 1.0), (g.name, got, fd)


def test_every_printed_name_is_accepted_and_means_its_symbol():
    for case in NETWORKS:
        d = _derive(case)
        for s in d.givens:
            for spell in (nt.text_name, nt.latex_name):
                printed = spell(nt.parse(s), d.net.single_output)
                assert d.values_by_symbol({printed: 1.0}) == {s: 1.0}, printed
            assert d.values_by_symbol({s: 2.0, sympy.Symbol(s.name): 3.0}) == {s: 3.0}


def test_names_the_issue_quotes():
    d = derive(make_spec("2-2-1", "linear", "se"))
    assert d.values_by_symbol({"w^1_11": 0.5, "x_i1": 2, "y": 1, "b_21": 0, "w^{2}_{11}": 1}) == {
        nt.weight(1, 1, 1): 0.5, nt.feature(1): 2, nt.target(1): 1, nt.bias(2, 1): 0,
        nt.weight(2, 1, 1): 1}


def test_two_digit_indices():
    d = derive(make_spec("11-2-1", "linear", "se"))
    assert d.values_by_symbol({"w^1_11,1": 1, "x_i11": 2, "w^{1}_{11,2}": 3}) == {
        nt.weight(1, 11, 1): 1, nt.feature(11): 2, nt.weight(1, 11, 2): 3}


def test_missing_names_are_listed_exactly_in_printed_names():
    d = derive(make_spec("2-2", "linear", "se"))
    g = d.gradient("w^1_11")  # -2 (y_1 - ŷ_1) x_i1: ŷ_1 needs x, w^1_i1, b_11; nothing of output 2
    values = _printed(d, _point(d, np.random.default_rng(0)))
    for name in ("y_1", "x_i2", "w^1_21", "b_11"):
        with pytest.raises(ValueError) as err:
            g.numpy({k: v for k, v in values.items() if k != name})
        assert str(err.value) == f"∂L/∂w^1_11 needs a value for {name}"
    with pytest.raises(ValueError) as err:
        g.numpy({})
    assert str(err.value) == "∂L/∂w^1_11 needs a value for x_i1, x_i2, y_1, w^1_11, w^1_21, b_11"
    needed = {k: v for k, v in values.items() if k not in ("y_2", "w^1_12", "w^1_22", "b_12")}
    assert g.numpy(needed) == g.numpy(values) == pytest.approx(
        -2 * (values["y_1"] - (values["w^1_11"] * values["x_i1"] + values["w^1_21"] * values["x_i2"]
                               + values["b_11"])) * values["x_i1"], rel=1e-12)
    with pytest.raises(ValueError) as err:  # a wide network: the list is cut, with the count
        derive(make_spec("60-1", "linear", "se")).gradient("b_11").numpy({})
    assert str(err.value).endswith(", x_i49, x_i50 and 72 more")  # 60 x, y, 60 w, b


@pytest.mark.parametrize("name, why", [
    ("foo", "is not an input, target or parameter"),
    ("w^3_11", "is not an input, target or parameter"),
    ("x_i3", "is not an input, target or parameter"),
    ("y_2", "is not an input, target or parameter"),
    ("ŷ", "is computed by the forward pass, not given"),
    ("O_11", "is computed by the forward pass, not given"),
    ("z_11", "is computed by the forward pass, not given"),
])
def test_unknown_names_are_named_with_the_valid_ones(name, why):
    d = derive(make_spec("2-2-1", "linear", "se"))
    with pytest.raises(ValueError) as err:
        d.gradient("b_21").numpy({"y": 1.0, name: 1.0})
    assert str(err.value) == (f"{name} {why}" + ("" if "computed" in why else " of the " + d.spec.describe())
                              + "; give values for x_i1, x_i2, y, w^1_11 … w^2_21 (6), b_11, b_12, b_21")


def test_bare_y_in_a_multi_output_network_is_not_guessed():
    d = derive(make_spec("2-2", "softmax", "cce"))
    with pytest.raises(ValueError, match=r"^y is not an input, target or parameter .* y_1, y_2"):
        d.values_by_symbol({"y": 1.0})
    with pytest.raises(ValueError, match="must be a dict"):
        d.values_by_symbol([("y_1", 1.0)])


# -- g.latex -----------------------------------------------------------------------------------
def test_latex_for_every_form():
    d = derive(make_spec("2-2-1", "linear", "se"))
    g = d.gradient("w^1_11")
    lhs = r"\frac{\partial L}{\partial w^{1}_{11}} = "
    assert g.latex("memoised") == lhs + r"\delta_{11} x_{i1}"
    assert g.latex("formula") == g.latex() == lhs + r"- 2 \left(y - \hat{y}\right) w^{2}_{11} x_{i1}"
    assert g.latex("expanded").startswith(lhs + r"- 2 \left(y - w^{2}_{11}")
    chain = g.latex("chain")
    assert chain.startswith(lhs + r"\frac{\partial L}{\partial \hat{y}} \cdot \frac{\partial \hat{y}}"
                                  r"{\partial O_{11}} \cdot \frac{\partial O_{11}}{\partial w^{1}_{11}} = ")
    assert chain.endswith(r"\left[w^{2}_{11}\right] \cdot \left[x_{i1}\right]")
    for case in NETWORKS:
        for g in _derive(case).gradients[:3]:
            assert all(g.latex(form).startswith(r"\frac{\partial L}{\partial ") for form in FORMS)


@pytest.mark.parametrize("form", ["bogus", "Formula", "", None, 3])
def test_an_unknown_form_lists_the_forms(form):
    g = derive(make_spec("2-2-1", "linear", "se")).gradient("b_21")
    with pytest.raises(ValueError) as err:
        g.latex(form)
    assert str(err.value) == f"unknown form {form!r}; the forms are chain, memoised, formula, expanded"


# -- d.gradients: a lazy sequence --------------------------------------------------------------
def test_gradients_is_a_sequence_in_backprop_order():
    d = derive(make_spec("3-2-2", "sigmoid,softmax", "cce"))
    grads = d.gradients
    assert isinstance(grads, Sequence) and len(grads) == d.spec.n_parameters == 14
    order = [g.parameter for g in grads]
    assert order == d.net.parameters()  # output layer first, weights into j then b_kj
    assert [g.parameter for g in d] == order
    assert [grads[i].parameter for i in range(-14, 14)] == order + order
    assert [g.parameter for g in reversed(grads)] == order[::-1]
    for sl in (slice(2, 9), slice(None, None, 3), slice(-4, None), slice(10, 2, -2), slice(20, 30)):
        part = grads[sl]
        assert isinstance(part, Gradients) and [g.parameter for g in part] == order[sl]
    for i, g in enumerate(grads):
        assert grads.index(g) == i and g in grads and grads.count(g) == 1
    assert grads[3:].index(grads[5]) == 2 and grads[5] not in grads[6:]
    with pytest.raises(IndexError):
        grads[14]
    with pytest.raises(ValueError):
        grads[6:].index(grads[5])
    assert d.gradient("w^2_11").parameter == grads[0].parameter
    assert repr(grads) == ("Gradients(14 of the 3-2-2 network, activations sigmoid,softmax, loss cce, "
                           "with bias: ∂L/∂w^2_11, ∂L/∂w^2_21, ∂L/∂b_21, …)")


def test_gradients_are_made_on_access_only(monkeypatch):
    """A 100 000-parameter network: len, a far index, a slice and a short walk make as many
    Gradient objects as they return, never the whole list."""
    made = []

    class Counted(derivation_module.Gradient):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self.parameter)

    monkeypatch.setattr(derivation_module, "Gradient", Counted)
    d = derive(make_spec("300-300-30-1", "relu,relu,linear", "se"))
    grads = d.gradients
    assert len(grads) == d.spec.n_parameters == 99_361 and made == []
    assert grads[-1].name == "b_1,300" and grads[0].name == "w^3_11" and grads[30].name == "b_31"
    assert grads[99_360 - 300].name == "w^1_1,300" and len(made) == 4
    tail = grads[-302:]
    assert len(tail) == 302 and len(made) == 4
    assert [g.name for g in tail[:2]] == ["b_1,299", "w^1_1,300"] and len(made) == 6
    assert [g.name for _, g in zip(range(3), grads[30:])] == ["b_31", "w^2_11", "w^2_21"]
    assert len(made) == 9


# -- rendering in the notes' notation ------------------------------------------------------------
def test_symbols_render_in_the_notes_notation_in_sympys_own_printers():
    d = derive(make_spec("2-2-1", "sigmoid,linear", "se"))
    tex = sympy.latex(d.gradient("w^1_11").formula)
    for name in (r"w^{2}_{11}", r"x_{i1}", r"\hat{y}_{1}", r"O_{11}", "y_{1}"):
        assert name in tex
    assert "w_{2 1 1}" not in tex and "x_{1}" not in tex
    assert d.gradient("w^1_11").formula._repr_latex_().startswith(r"$\displaystyle ")
    assert sympy.pretty(nt.weight(2, 1, 1) * nt.feature(1)) == "w^2_11⋅x_i1"
    # in the network's own printer, one output is plain ŷ (the printer's _single_output)
    assert NotationPrinter(d).latex(nt.prediction(1)) == r"\hat{y}"
    assert NotationPrinter(depth=1, single_output=False).latex(nt.prediction(1)) == r"\hat{y}_{1}"


def test_symbol_identity_is_unchanged():
    w = nt.weight(2, 1, 1)
    assert str(w) == w.name == "w_2_1_1" and w.is_real
    assert pickle.loads(pickle.dumps(w)) is w or pickle.loads(pickle.dumps(w)) == w
    assert nt.weight(2, 1, 1) is w and hash(pickle.loads(pickle.dumps(w))) == hash(w)
    expr = d_expr = derive(make_spec("2-2-1", "linear", "se")).gradient("w^1_11").formula
    assert pickle.loads(pickle.dumps(expr)) == d_expr
    assert sympy.lambdify([w, nt.feature(1)], w * nt.feature(1) ** 2)(3.0, 2.0) == 12.0
    assert nt.parse(sympy.Symbol("w_2_1_1")) == nt.parse(w)  # plain symbols still read by name


def test_reprs_and_latex_of_the_library_objects():
    d = derive(make_spec("2-2-1", "linear", "se"))
    g = d.gradient("w^1_11")
    assert repr(g) == "Gradient(∂L/∂w^1_11 = -2 (y - ŷ) w^2_11 x_i1)"
    assert g._repr_latex_() == (r"$\displaystyle \frac{\partial L}{\partial w^{1}_{11}} = "
                                r"- 2 \left(y - \hat{y}\right) w^{2}_{11} x_{i1}$")
    assert repr(d) == "Derivation(2-2-1 network, activations linear,linear, loss se, with bias: 9 parameters)"
    assert repr(derive(make_spec("2-2", "linear", "cce"))).endswith(": 6 parameters; 1 warning)")
    shown = d._repr_latex_()
    assert shown.startswith(r"$$\begin{aligned}L &= \left(y - \hat{y}\right)^{2} \\ "
                            r"\frac{\partial L}{\partial w^{2}_{11}} &= - 2 \left(y - \hat{y}\right) O_{11}")
    assert d.spec._repr_latex_() == (r"$\text{2-2-1 network, activations linear,linear, loss se, with bias: "
                                     r"9 parameters} \quad L = \left(y - \hat{y}\right)^{2}$")
    from backprop.derive import vectorise

    assert repr(vectorise(d)) == "VectorisedForm(2-2-1 network, activations linear,linear, loss se, with bias)"
    assert vectorise(d)._repr_latex_().startswith(r"$$\begin{aligned}")


def test_a_long_formula_shows_the_memoised_form_in_repr():
    d = derive(make_spec("4-4-4-4-1", "sigmoid,sigmoid,sigmoid,linear", "se"))
    g = d.gradient("w^1_11")
    assert len(d.printer.text(g.formula)) > derivation_module.MAX_REPR_CHARS
    assert re.fullmatch(r"Gradient\(∂L/∂w\^1_11 = δ_11 x_i1   \(formula: [\d,]+ characters\)\)", repr(g))
    shown = g._repr_latex_()
    assert shown.startswith(r"$\displaystyle \frac{\partial L}{\partial w^{1}_{11}} = \delta_{11} x_{i1} \quad \text{(formula: ")
    assert re.search(r" [\d,]+ characters\)}\$$", shown)


# -- documentation, python -m backprop, __version__ ----------------------------------------------
@pytest.mark.parametrize("module", ["backprop", "backprop.derive", "backprop.derive.derivation",
                                    "backprop.derive.spec", "backprop.derive.vectorised", "backprop.verify"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("obj", ["derive", "make_spec", "load_toml", "vectorise", "Derivation", "Gradient"])
def test_public_api_has_numpydoc_sections(obj):
    doc = getattr(importlib.import_module("backprop.derive"), obj).__doc__
    assert "Examples\n    --------" in doc
    assert "Parameters\n    ----------" in doc or "Attributes\n    ----------" in doc


def test_version_is_the_installed_distributions():
    assert backprop.__version__ == importlib.metadata.version("backprop")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", backprop.__version__)


def test_python_dash_m_backprop_is_the_command(tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "backprop", *args], capture_output=True,  # noqa: E731
                                       text=True, cwd=tmp_path, timeout=300)
    version = run("--version")
    assert version.returncode == 0 and version.stdout == f"backprop {backprop.__version__}\n"
    derived = run("derive")
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.startswith("2-2-1 network, activations linear,linear, loss se, with bias: 9 parameters")
    bad = run("derive", "--layers", "2-x-1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
