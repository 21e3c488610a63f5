"""backprop verify: every verdict kind, the notation variants, unparsable input, unknown
names, directives, and the CLI (in-process)."""
import json

import pytest

from backprop.cli.main import main
from backprop.derive import make_spec
from backprop.verify import verify_text

LIN = make_spec("2-2-1", "linear", "se")
SIG = make_spec("2-2-1", "sigmoid", "se")
DL = r"\frac{\partial L}{\partial w^2_{11}}"


def one(src, spec=LIN):
    return verify_text(src, spec).verdicts[0]


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


# -- correct -------------------------------------------------------------------------------------
@pytest.mark.parametrize("lhs", [
    r"\frac{\partial L}{\partial w^2_{11}}", r"\frac{\partial L}{\partial w_{11}^2}",
    r"\frac{\partial L}{\partial w^{2}_{11}}", r"\frac{\partial L}{\partial w_{11}^{2}}",
    r"\frac{\partial L}{\partial {w^{2}_{11}}}".replace("{w^{2}_{11}}", "w^{2}_{11}"),
])
def test_weight_spellings_are_one_parameter(lhs):
    v = one(lhs + r" = -2(y - \hat{y}) O_{11}")
    assert v.verdict == "correct" and v.parameter == "w^2_11"


@pytest.mark.parametrize("rhs", [
    r"-2(y - \hat{y}) O_{11}",
    r"-2(y - \hat{y}) o_{11}",
    r"-2(y - \hat{y}) \cdot O_{11}",
    r"-2 \times (y - \hat{y}) \times O_{11}",
    r"\boxed{-2\left(y - \hat{y}\right) O_{11}}",
    r"-2(y - \hat{y})(w^1_{11} x_{i1} + w^1_{21} x_{i2} + b_{11})",
    r"-2(y - O_{21})(w^1_{11} x_{1} + w^1_{21} x_{2} + b_{11})",
    r"\frac{\partial L}{\partial \hat{y}} \cdot \frac{\partial \hat{y}}{\partial w^2_{11}}",
    r"2(\hat{y} - y) O_{11}",
])
def test_same_gradient_in_many_forms_is_correct(rhs):
    v = one(f"{DL} = {rhs}")
    assert v.verdict == "correct", v.message
    assert "symbolic" in v.method


def test_fully_expanded_right_side_is_correct():
    y_hat = r"(w^2_{11}(w^1_{11} x_{i1} + w^1_{21} x_{i2} + b_{11}) + w^2_{21}(w^1_{12} x_{i1} + w^1_{22} x_{i2} + b_{12}) + b_{21})"
    v = one(rf"{DL} = -2(y - {y_hat})(w^1_{{11}} x_{{i1}} + w^1_{{21}} x_{{i2}} + b_{{11}})")
    assert v.verdict == "correct"


def test_sigmoid_chain_with_sigma_and_output_forms():
    assert one(r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) \hat{y}(1 - \hat{y}) w^2_{11} "
               r"O_{11}(1 - O_{11}) x_{i1}", SIG).verdict == "correct"
    assert one(r"O_{11} = \sigma(w^1_{11} x_{i1} + w^1_{21} x_{i2} + b_{11})", SIG).verdict == "correct"


def test_cases_blocks_read_as_piecewise():
    spec = make_spec("1-2-1", "leaky_relu,linear", "se")
    right = (r"\frac{\partial L}{\partial b_{12}} = -2(y - \hat{y}) w^2_{21} \begin{cases} 1 & \text{for}\: O_{12} > 0 "
             r"\\ \frac{1}{100} & \text{otherwise} \end{cases}")
    assert one(right, spec).verdict == "correct"
    assert one(right.replace("{1}{100}", "{1}{10}"), spec).verdict == "wrong"


def test_definitions_and_loss():
    assert one(r"O_{21} = w^2_{11} O_{11} + w^2_{21} O_{12} + b_{21}").verdict == "correct"
    assert one(r"L = (y - \hat{y})^2").verdict == "correct"
    assert one(r"O_{21} = w^2_{11} O_{11} + w^2_{21} O_{12} + b_{12}").verdict == "wrong"


# -- wrong ---------------------------------------------------------------------------------------
def test_wrong_weight_names_the_factor_and_gives_a_counterexample():
    v = one(r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) w^2_{21} x_{i1}")
    assert v.verdict == "wrong"
    assert v.expected_latex == r"- 2 \left(y - \hat{y}\right) w^{2}_{11} x_{i1}"
    assert r"\frac{\partial \hat{y}}{\partial O_{11}}" in v.factor and "w^{2}_{21}" in v.factor
    cx = v.counterexample
    assert cx["claimed"] != cx["actual"]
    # the counterexample really differs: recompute both at the point
    p = cx["point"]
    o11 = p["w^1_11"] * p["x_i1"] + p["w^1_21"] * p["x_i2"] + p["b_11"]
    o12 = p["w^1_12"] * p["x_i1"] + p["w^1_22"] * p["x_i2"] + p["b_12"]
    yhat = p["w^2_11"] * o11 + p["w^2_21"] * o12 + p["b_21"]
    assert cx["claimed"] == pytest.approx(-2 * (p["y"] - yhat) * p["w^2_21"] * p["x_i1"])
    assert cx["actual"] == pytest.approx(-2 * (p["y"] - yhat) * p["w^2_11"] * p["x_i1"])


def test_missing_sigma_prime_is_named():
    v = one(r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) \hat{y}(1-\hat{y}) w^2_{11} x_{i1}", SIG)
    assert v.verdict == "wrong" and "O_{11} \\left(1 - O_{11}\\right) x_{i1}" in v.factor


def test_missing_factor_and_wrong_chain():
    v = one(r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) x_{i1}")
    assert v.verdict == "wrong" and "missing" in v.factor
    v = one(r"\frac{\partial L}{\partial w^1_{11}} = \frac{\partial L}{\partial \hat{y}} "
            r"\frac{\partial \hat{y}}{\partial O_{12}} \frac{\partial O_{11}}{\partial w^1_{11}}")
    assert v.verdict == "wrong" and "O_{12}" in v.factor and v.expected_latex.startswith(r"\frac{\partial L}")


def test_middle_step_differentiating_the_wrong_expression_is_wrong():
    v = one(r"\frac{\partial \hat{y}}{\partial o_{12}} = \frac{\partial (w_{11}^2 o_{11} + w_{21}^2 o_{12} + b_{12})}"
            r"{\partial o_{12}} = w_{21}^2")
    assert v.verdict == "wrong" and "b_12" in v.message
    assert sorted(v.expected_latex.split(" + ")) == ["b_{21}", "w^{2}_{11} O_{11}", "w^{2}_{21} O_{12}"]


def test_missing_partial_in_denominator_is_a_warning():
    v = one(r"\frac{\partial \hat{y}}{\partial w^2_{11}} = \frac{\partial (O_{11} w^2_{11} + O_{12} w^2_{21} + b_{21})}"
            r"{w^2_{11}} = O_{11}")
    assert v.verdict == "correct" and "no \\partial" in v.message


def test_expected_in_claims_vocabulary():
    v = one(r"\frac{\partial L}{\partial b_{11}} = -2(y - (w^2_{11} x_{i1} + b_{21})) w^2_{21}")
    assert v.verdict == "wrong" and "O_" not in v.expected_latex and r"\hat" not in v.expected_latex


# -- error ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, col", [
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y} O_{11}", 42),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y})) O_{11}", 55),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2 + * O_{11}", 45),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \cdot", 56),
])
def test_unparsable_latex_reports_the_column(src, col):
    """Columns are 1-based, in the text as typed (before the pre-pass rewrote it)."""
    v = one(src)
    assert v.verdict == "error" and "unparsable" in v.message and v.column + 1 == col, v.message


@pytest.mark.parametrize("src, bad, meant", [
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(\gamma - \hat{y}) O_{11}", r"\gamma", "y"),
    (r"\frac{\partial L}{\partial w^i_{11}} = -2(y - \hat{y}) O_{11}", "w^i_{11}", "w^1_11"),
    (r"\frac{\partial L}{\partial w^2_{12}} = -2(y - \hat{y}) O_{11}", "w^2_{12}", "w^2_11"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \theta_{11}", r"\theta_{11}", "O_11"),
    (r"\frac{\partial L}{\partial w^1_{22}} = -2(y - \hat{y}) w^2_{21} \omega^1_{22}", r"\omega^1_{22}", "w^1_22"),
])
def test_unknown_names_come_with_suggestions(src, bad, meant):
    v = one(src)
    assert v.verdict == "error" and bad in v.message and meant in v.suggestions, v.message


@pytest.mark.parametrize("src, words", [
    (r"O_{11} + y = 3", "left side"),
    (r"x + y = 3", "did you mean x_i1"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \sum_i O_{1i}", "no limits"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) g'(in_j)", "delta rule"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) g'(z)", "which activation"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) in_1", "delta rule"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) g^1(O_{11})", "which activation"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \triangle_i", "delta rule"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) n O_{11}", "'n'"),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \text{O}", "cannot be checked"),
    (r"\frac{\partial L}{\partial w^2_{11}}", "no '='"),
    (r"\frac{\partial L}{\partial w^2_{11}} = \sigma(\cdot) O_{11}", "placeholder"),
    (r"\frac{\partial w^2_{11}}{\partial L} = 1", "with respect to L"),
])
def test_constructs_the_parser_cannot_express_are_errors(src, words):
    v = one(src)
    assert v.verdict == "error" and words in v.message, v.message


# -- non-derivative claims -------------------------------------------------------------------------
def test_count_directive():
    text = "% count: 5-4-3-2-1\n20 + 15 + 8 + 3 = 46\n% count: 5-4-3-2-1\n24 + 15 + 8 + 3 = 50\n"
    a, b = verify_text(text).verdicts
    assert a.verdict == "wrong" and a.expected_latex == "24 + 15 + 8 + 3 = 50" and "24, not 20" in a.message
    assert b.verdict == "correct"


def test_numeric_directive_exact_and_approx():
    text = ("% at: x_1=80 x_2=8 y=5 w=1 b=0\n\\hat{y} = 176\n\\hat{y} = 17\n"
            "% at: y=1.8 yhat=5\nL = (1.8 - 5)^2 = 10.2\nL = (1.8 - 5)^2 \\approx 10.2\nL = 10.24\n")
    got = [v.verdict for v in verify_text(text).verdicts]
    assert got == ["correct", "wrong", "wrong", "correct", "correct"]
    v = verify_text(text).verdicts[2]
    assert v.counterexample["actual"] == 10.24 and "rounded" in v.message


def test_delta_rule_under_half_se():
    spec = make_spec("2-2-2", "sigmoid", "half_se")
    ok = verify_text(r"W_{j,i} \leftarrow W_{j,i} + \alpha \times a_j \times \Delta_i", spec).verdicts[0]
    bad = verify_text(r"W_{i,j} \leftarrow W_{i,j} + \alpha a_j \Delta_i", spec).verdicts[0]
    hid = verify_text(r"\Delta_j = g'(in_j) \sum_i W_{j,i} \Delta_i", spec).verdicts[0]
    assert ok.verdict == "correct" and hid.verdict == "correct"
    assert bad.verdict == "wrong" and "reversed" in bad.message and bad.expected_latex.startswith("W_{j,i}")
    se = verify_text(r"\Delta_i = Err_i g'(in_i)", make_spec("2-2-2", "sigmoid", "se")).verdicts[0]
    assert se.verdict == "wrong"


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_exit_codes_and_json(capsys, tmp_path):
    eq = r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}"
    status, out, _ = run(capsys, "verify", "--layers", "2-2-1", "--activations", "linear", "--loss", "se", eq)
    assert status == 0 and "CORRECT" in out
    status, out, _ = run(capsys, "verify", "--json", eq.replace("O_{11}", "O_{12}"))
    assert status == 1
    obj = json.loads(out)[0]
    assert {"index", "source", "parameter", "verdict", "expected_latex", "counterexample", "message"} <= set(obj)
    assert obj["verdict"] == "wrong" and set(obj["counterexample"]) == {"point", "claimed", "actual"}
    f = tmp_path / "d.tex"
    f.write_text("% spec: layers=2-2-1 activations=linear loss=se\n$" + eq + "$\n$$" + eq.replace("w^2", "w^i") + "$$\n")
    status, out, _ = run(capsys, "verify", str(f))
    assert status == 2 and "1 correct, 0 wrong, 1 error" in out


@pytest.mark.parametrize("args, words", [
    (["verify", "missing.tex"], "neither a file"),
    (["verify"], "nothing to verify"),
    (["verify", "--layers", "2-x-1", r"L = (y-\hat{y})^2"], "positive integers"),
    (["verify", "--spec", "nope.toml", r"L = (y-\hat{y})^2"], "does not exist"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, args, words):
    status, out, err = run(capsys, *args)
    assert status == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_directory_and_empty_file(capsys, tmp_path):
    status, _, err = run(capsys, "verify", str(tmp_path))
    assert status == 2 and "directory" in err
    empty = tmp_path / "e.tex"
    empty.write_text("% nothing\n")
    status, _, err = run(capsys, "verify", str(empty))
    assert status == 2 and "no equation" in err


# -- vectorised forms ------------------------------------------------------------------------------
MAT = make_spec("2-3-2", "sigmoid,linear", "se")


@pytest.mark.parametrize("src", [
    r"Z^1 = X W^1 + b^1",
    r"\delta^1 = (\delta^2 W^{2\top}) \odot O^1 \odot (1 - O^1)",
    r"\delta^1 = \delta^2 (W^2)^\top \odot g'(Z^1)",
    r"\frac{\partial L}{\partial W^2} = O^{1\top} \delta^2",
    r"\frac{\partial L}{\partial W^1} = X^T \delta^1",
    r"\frac{\partial L}{\partial b^2} = \delta^2",
    r"\delta^2 = 2(\hat{Y} - Y)",
])
def test_matrix_forms_correct(src):
    v = one(src, MAT)
    assert v.verdict == "correct", v.message


def test_matrix_forms_wrong_and_shape_errors():
    v = one(r"\delta^1 = \delta^2 W^{2\top}", MAT)
    assert v.verdict == "wrong" and "entry (1, 1)" in v.message and v.expected_latex.startswith(r"\delta^{1}")
    v = one(r"\frac{\partial L}{\partial W^2} = \delta^2 O^{1\top}", MAT)
    assert v.verdict == "error" and "cannot multiply a 1×2 by a 3×1" in v.message
    col = verify_text("% vectors: column\nO^1 = \\sigma(W^{1\\top} x + b^1)\nO^1 = \\sigma(W^1 x + b^1)\n", MAT)
    # W^1 x with W^1 2×3 cannot multiply; read with W^1 transposed it holds: a missing transpose
    assert [v.verdict for v in col.verdicts] == ["correct", "wrong"]
    assert col.verdicts[1].misconception["id"] == "missing_transpose" and "2×3" in col.verdicts[1].message


# -- robustness ------------------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from backprop.verify import Checker  # noqa: E402
from backprop.verify.latex_input import Equation  # noqa: E402

SOUP_CHECKER = Checker(SIG)

PIECES = [r"\frac{\partial L}{\partial w^2_{11}}", "=", r"\frac{", "}", "{", "(", ")", r"\hat{y}", "O_{11}",
          "w^1_{21}", "x_{i1}", "b_{21}", "y", "-2", "+", "-", r"\cdot", "^2", "_", "^", r"\sigma", r"\partial",
          r"\left(", r"\right)", r"\boxed{", r"\sum", "W^2", r"\delta^1", r"\odot", r"^\top", r"\leftarrow",
          r"\Delta_i", "Err_i", "g'(in_i)", "W_{j,i}", "a_j", r"\alpha", "3.5", "L", r"\gamma", "O_{21}",
          r"\rightarrow", "'", "\\", "$"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=9))
def test_any_token_soup_gets_a_verdict_never_an_exception(tokens):
    v = SOUP_CHECKER.check(Equation(1, " ".join(tokens), 1))
    assert v.verdict in ("correct", "wrong", "error")
    assert "please report" not in v.message, v.message
