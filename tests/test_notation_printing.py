"""The notes' notation everywhere text or LaTeX is printed (issue 12): exact spellings of every
rule, the printers' strictness, and no SymPy spelling in any output over random networks of
every activation and loss (derive text / LaTeX / JSON / vectorised, step, generated trainer)."""
from __future__ import annotations

import json

import pytest
import sympy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from backprop.codegen import render_trainer
from backprop.derive import ACTIVATIONS, LOSSES, derive, make_spec, vectorise
from backprop.derive import notation as nt
from backprop.derive.printing import NotationPrinter
from backprop.derive.spelling import RULES, NotationError

#: SymPy's own spellings that must never reach a reader.
SYMPY_CLASSES = ("Heaviside", "Max(", "Min(", "Piecewise", "DiracDelta", "Derivative", "Subs(", "ITE(",
                 "ExprCondPair", "theta", "Abs(", "KroneckerDelta", "logaddexp", "operatorname{ITE}")
#: Spellings ambiguous for matrices or left over from SymPy's str printer.
BAD_TEXT = ("**", "^1^", "^2^", "⊙ (1)", "\\odot (1)", "True)", "otherwise)")


#: In the trainer's code (NumPy's np.logaddexp, np.abs are code, not notation).
CODE_LEAKS = tuple(c for c in SYMPY_CLASSES if c[0].isupper() or c.startswith("ITE"))


def _leaks(text: str, extra: tuple[str, ...] = BAD_TEXT, classes: tuple[str, ...] = SYMPY_CLASSES) -> list[str]:
    return [bad for bad in classes + extra if bad in text]


# -- exact spellings ---------------------------------------------------------------------------
def _show(layers, acts, loss):
    d = derive(make_spec(layers, acts, loss))
    return d, d.printer


def test_notes_2_2_1_prints_as_the_notes_write_it():
    d, p = _show("2-2-1", "linear", "se")
    assert p.text(d.net.loss) == "(y - ŷ)^2"
    assert p.latex(d.net.loss) == r"\left(y - \hat{y}\right)^{2}"
    assert p.text(d.gradient("w^1_11").formula) == "-2 (y - ŷ) w^2_11 x_i1"
    assert p.latex(d.gradient("w^1_11").formula) == r"- 2 \left(y - \hat{y}\right) w^{2}_{11} x_{i1}"
    lines = vectorise(d).text().splitlines()
    assert "δ^1 = δ^2 W^2ᵀ" in lines  # g' = 1: no ⊙ (1)


def test_relu_and_hinge():
    d, p = _show("2-2-1", "relu,linear", "hinge")
    assert p.text(d.net.loss) == "max(0, 1 - y ŷ)"
    assert p.latex(d.net.loss) == r"\max\left(0, 1 - y \hat{y}\right)"
    g = d.gradient("w^1_11").formula
    assert p.text(g) == "-y H(1 - y ŷ) w^2_11 1[O_11 > 0] x_i1"
    assert p.latex(g) == r"- y H\left(1 - y \hat{y}\right) w^{2}_{11} \mathbb{1}[O_{11} > 0] x_{i1}"
    assert p.text(d.net.definition(1, 1)) == "max(0, w^1_11 x_i1 + w^1_21 x_i2 + b_11)"
    v = vectorise(d)
    assert "δ^1 = (δ^2 W^2ᵀ) ⊙ 1[O^1 > 0]" in v.text().splitlines()
    assert "δ^2 = (1/n) (-Y ⊙ H(1 - Y ⊙ Ŷ))" in v.text().splitlines()
    assert (r"\delta^{1}", r"(\delta^{2} W^{2\top}) \odot (\mathbb{1}[O^{1} > 0])") in v.equations("latex")


def test_bce_as_the_notes_write_it():
    d, p = _show("2-2-1", "relu,sigmoid", "bce")
    assert p.text(d.net.loss) == "-(y log(ŷ) + (1 - y) log(1 - ŷ))"
    assert p.latex(d.net.loss) == (r"- (y \log\left(\hat{y}\right) + \left(1 - y\right) "
                                   r"\log\left(1 - \hat{y}\right))")
    assert p.text(d.gradient("w^1_11").formula) == "-(y - ŷ) w^2_11 1[O_11 > 0] x_i1"


def test_cce_and_a_sum_of_negative_terms_pulls_the_sign_out():
    d, p = _show("2-2-3", "tanh,softmax", "cce")
    assert p.text(d.net.loss) == "-(y_1 log(ŷ_1) + y_2 log(ŷ_2) + y_3 log(ŷ_3))"
    assert p.text(d.gradient("w^1_11").formula) == (
        "-((y_1 - ŷ_1) w^2_11 + (y_2 - ŷ_2) w^2_12 + (y_3 - ŷ_3) w^2_13) (1 - O_11^2) x_i1")
    assert "δ^1 = (δ^2 W^2ᵀ) ⊙ (1 - O^1 ⊙ O^1)" in vectorise(d).text().splitlines()


def test_leaky_relu_as_cases():
    d, p = _show("2-2-1", "leaky_relu,linear", "se")
    g = d.gradient("w^1_11").formula
    assert p.text(g) == "-2 (y - ŷ) w^2_11 {1 if O_11 > 0; 1/100 otherwise} x_i1"
    assert p.latex(g) == (r"- 2 \left(y - \hat{y}\right) w^{2}_{11} \left(\begin{cases} 1 & \text{if } O_{11} > 0 "
                          r"\\ \frac{1}{100} & \text{otherwise} \end{cases}\right) x_{i1}")
    assert p.text(d.net.definition(1, 1)) == (
        "{w^1_11 x_i1 + w^1_21 x_i2 + b_11 if w^1_11 x_i1 + w^1_21 x_i2 + b_11 > 0; "
        "(w^1_11 x_i1 + w^1_21 x_i2 + b_11)/100 otherwise}")
    assert "δ^1 = (δ^2 W^2ᵀ) ⊙ {1 if O^1 > 0; 1/100 otherwise}" in vectorise(d).text().splitlines()


def test_element_wise_products_and_squares_in_the_vectorised_form():
    d, _ = _show("2-2-1", "sigmoid,tanh", "se")
    lines = vectorise(d).text().splitlines()
    assert "δ^1 = (δ^2 W^2ᵀ) ⊙ (O^1 ⊙ (1 - O^1))" in lines
    assert "δ^2 = (1/n) (2 (1 - Ŷ ⊙ Ŷ) ⊙ (Ŷ - Y))" in lines
    tex = dict(vectorise(d).equations("latex"))
    assert tex[r"\delta^{2}"] == r"\frac{1}{n} (2 \left(1 - \hat{Y} \odot \hat{Y}\right) \odot \left(\hat{Y} - Y\right))"
    assert r"\mathrm{leaky\_relu}" in vectorise(derive(make_spec("2-2-1", "leaky_relu,linear", "se"))).latex()


@pytest.mark.parametrize("h0, text, latex", [
    (0, "1[z_11 > 0]", r"\mathbb{1}[z_{11} > 0]"),  # relu'
    (1, "1[z_11 ≥ 0]", r"\mathbb{1}[z_{11} \geq 0]"),  # step
    (sympy.S.Half, "H(z_11)", r"H\left(z_{11}\right)"),  # SymPy's H(0) = 1/2
])
def test_heaviside_spellings(h0, text, latex):
    p = NotationPrinter(depth=2, single_output=True)
    step = sympy.Heaviside(nt.preactivation(1, 1), h0)
    assert (p.text(step), p.latex(step)) == (text, latex)


def test_the_other_rules():
    p = NotationPrinter(depth=2, single_output=True)
    z, O = nt.preactivation(1, 1), nt.output(1, 1)
    assert p.text(sympy.Min(0, z)) == "min(0, z_11)"
    assert p.text(sympy.Abs(z)) == "|z_11|" and p.latex(sympy.Abs(z)) == r"\left|z_{11}\right|"
    assert p.text(sympy.sign(z)) == "sign(z_11)"
    assert p.latex(sympy.sign(z)) == r"\operatorname{sign}\left(z_{11}\right)"
    assert p.text(sympy.exp(-z)) == "exp(-z_11)" and p.latex(sympy.exp(-z)) == "e^{- z_{11}}"
    assert p.text(sympy.tanh(z)) == "tanh(z_11)"
    assert p.text(sympy.Piecewise((1, z <= 0), (O, True))) == "{1 if z_11 ≤ 0; O_11 otherwise}"
    ite = sympy.ITE(z + O > 0, z > 0, O > 0)
    assert p.text(ite) == "{z_11 > 0 if O_11 + z_11 > 0; O_11 > 0 otherwise}"


# -- strictness -----------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    sympy.gamma(nt.preactivation(1, 1)),
    sympy.DiracDelta(nt.preactivation(1, 1)),
    sympy.Derivative(sympy.Function("g")(nt.preactivation(1, 1)), nt.preactivation(1, 1)),
    sympy.Function("f")(nt.output(1, 1)),
    sympy.KroneckerDelta(sympy.Symbol("i"), sympy.Symbol("j")),
    sympy.EulerGamma * nt.output(1, 1),
], ids=["gamma", "DiracDelta", "Derivative", "undefined", "KroneckerDelta", "EulerGamma"])
def test_a_class_without_a_rule_is_refused(expr):
    p = NotationPrinter(depth=2, single_output=True)
    for show in (p.text, p.latex):
        with pytest.raises(NotationError, match="no notation rule"):
            show(expr)


def test_every_rule_names_a_sympy_class():
    """A typo in the table would silently never match."""
    classes = {c.__name__ for c in _subclasses(sympy.Basic)}
    assert set(RULES) <= classes, set(RULES) - classes


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# -- no SymPy spelling anywhere, over random networks of every activation and loss ------------------
_HIDDEN = [name for name, act in ACTIVATIONS.items() if act.elementwise]


def _spec_args(widths, acts, loss):
    return ["--layers", "-".join(map(str, widths)), "--activations", ",".join(acts), "--loss", loss]


def _docstring(source: str) -> str:
    return source.split('"""')[1]


def _check_everything(cli, widths, acts, loss):
    args = _spec_args(widths, acts, loss)
    outputs = {}
    for fmt in ("text", "latex", "json"):
        status, out, err = cli("derive", *args, "--format", fmt)
        assert status == 0, err
        outputs[f"derive {fmt}"] = out
        if fmt == "json":
            _parses(out)
        status, out, err = cli("derive", *args, "--vectorised", "--format", fmt)
        assert status == 0, err
        outputs[f"derive --vectorised {fmt}"] = out
    x = ",".join("0.5" for _ in range(widths[0]))
    y = ",".join(("1" if j == 0 else "0") for j in range(widths[-1]))
    status, out, err = cli("step", *args, "--x", x, "--y", y, "--init", "glorot", "--seed", "1")
    assert status == 0, err
    outputs["step"] = out
    spec = make_spec("-".join(map(str, widths)), ",".join(acts), loss)
    d = derive(spec)
    outputs["repr"] = repr(d.gradients[0]) + d.gradients[0].latex()
    source = render_trainer(spec)
    leaks = {name: _leaks(text) for name, text in outputs.items()}
    leaks["trainer"] = _leaks(source, (), CODE_LEAKS) + _leaks(_docstring(source))
    assert not any(leaks.values()), {k: v for k, v in leaks.items() if v}


def _parses(out: str) -> None:
    """One JSON document, or JSON lines."""
    try:
        json.loads(out)
    except json.JSONDecodeError:
        for line in filter(None, out.splitlines()):
            json.loads(line)


def _draw_net(data, output: str, loss: str):
    widths = data.draw(st.lists(st.integers(1, 2), min_size=2, max_size=3), label="widths")
    out_width = 2 if output == "softmax" or loss == "cce" else data.draw(st.integers(1, 2), label="outputs")
    hidden = [data.draw(st.sampled_from(_HIDDEN), label=f"layer {k}") for k in range(1, len(widths))]
    return widths + [out_width], hidden + [output]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data())
def test_no_sympy_spelling_for_any_activation(cli, activation, data):
    """Each activation as a hidden layer (softmax: as the output) of a random small network."""
    loss = data.draw(st.sampled_from(sorted(LOSSES)), label="loss")
    if activation == "softmax":
        widths, acts = _draw_net(data, "softmax", loss)
    else:
        widths, acts = _draw_net(data, data.draw(st.sampled_from(_HIDDEN), label="output"), loss)
        acts[0] = activation
    _check_everything(cli, widths, acts, loss)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
@given(data=st.data())
def test_no_sympy_spelling_for_any_loss(cli, loss, data):
    output = data.draw(st.sampled_from(sorted(ACTIVATIONS)), label="output")
    widths, acts = _draw_net(data, output, loss)
    _check_everything(cli, widths, acts, loss)


# -- verify reads the ⊙ the vectorised form prints ---------------------------------------------------
def test_verify_reads_hadamard_products_inside_an_element_wise_bracket():
    from backprop.derive.spec import Spec
    from backprop.verify import check_document

    spec = Spec(layers=[2, 2, 1], activations=["tanh", "linear"], loss="se")

    def verdict(rhs: str) -> str:
        (v,) = check_document(rf"\delta^{{1}} = (\delta^{{2}} W^{{2\top}}) \odot ({rhs})", "t", spec).verdicts
        return v.verdict

    assert verdict(r"1 - O^{1} \odot O^{1}") == "correct"
    assert verdict(r"1 - O^{1} O^{1}") == "correct"  # juxtaposition, as before
    assert verdict(r"1 - O^{1} \odot O^{1} \odot O^{1}") == "wrong"
    # a function of a ⊙ product: only the element-wise reading parses it (not the matrix grammar)
    hinge = Spec(layers=[2, 2, 2], activations=["softplus", "tanh"], loss="hinge")
    (v,) = check_document(r"\delta^{2} = \frac{1}{n} (-Y \odot \left(1 - \hat{Y} \odot \hat{Y}\right) \odot "
                          r"H\left(1 - Y \odot \hat{Y}\right))", "t", hinge).verdicts
    assert v.verdict == "correct", v.message
