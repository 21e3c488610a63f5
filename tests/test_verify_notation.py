r"""verify reads the notation textbooks use (issue 11: notation profiles, --explain, the round
trip of derive's LaTeX; issue 18 items 5 and 9).

Every case states a derivation and the verdict a correct checker must give: correct ones are
textbook formulas for the named network, wrong ones the same with one slip.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from backprop.derive import derive, make_spec
from backprop.derive.activations import ACTIVATIONS, passes_no_gradient
from backprop.derive.report import as_latex
from backprop.verify import NOTATIONS, verify_text
from backprop.verify.latex_input import block_rows
from backprop.verify.notations import MAZUR_WEIGHTS, Notation

SIG = ("2-2-1", "sigmoid", "se")
SIG_LIN = ("2-2-1", "sigmoid,linear", "se")
TANH_LIN = ("2-2-1", "tanh,linear", "se")
RELU_LIN = ("2-2-1", "relu,linear", "se")
NG = ("2-2-1", "tanh,sigmoid", "bce")
MAZUR = ("2-2-2", "sigmoid", "half_se")
LINEAR = ("2-2-1", "linear", "se")


def verdicts(spec, text, notation="notes", explain=False):
    return verify_text(text, make_spec(*spec), notation=notation, explain=explain).verdicts


def one(spec, text, notation="notes", explain=False):
    vs = verdicts(spec, text, notation, explain)
    assert len(vs) == 1, [v.source for v in vs]
    return vs[0]


def no_leak(message: str) -> None:
    for bad in ("sigmaprime", "actprime", "Upsilon", "no close name", r"\tilde{\infty}", "zzq", "qqph", "Traceback"):
        assert bad not in message, message


# ---------------------------------------------------------------------------------------------
# the profile table
# ---------------------------------------------------------------------------------------------
def test_each_profile_is_one_frozen_table_entry():
    assert set(NOTATIONS) == {"notes", "nielsen", "ng", "bishop", "mazur"}
    for key, n in NOTATIONS.items():
        assert isinstance(n, Notation) and n.key == key
        with pytest.raises(Exception):
            n.key = "other"  # frozen
    assert NOTATIONS["nielsen"].loss == ("C",) and NOTATIONS["nielsen"].weight_order == "to-from"
    assert NOTATIONS["notes"].weight_order == "from-to" and NOTATIONS["ng"].batch == "m"
    assert NOTATIONS["bishop"].output == ("z",) and NOTATIONS["bishop"].preactivation == ("a",)
    # Mazur: w1: i1→h1, w2: i2→h1, w3: i1→h2, w4: i2→h2, w5: h1→o1, w6: h2→o1, w7: h1→o2, w8: h2→o2
    assert MAZUR_WEIGHTS == ((1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 2, 2), (2, 1, 1), (2, 2, 1), (2, 1, 2), (2, 2, 2))


# ---------------------------------------------------------------------------------------------
# profiles: a correct textbook derivation reads correct, the same with a slip wrong
# ---------------------------------------------------------------------------------------------
PROFILE_CASES = [
    # Nielsen BP1-BP4 for one node of a 2-2-1 sigmoid net (his layer 1 is the input layer)
    ("nielsen", SIG, r"\delta^3_1 = \frac{\partial C}{\partial a^3_1} \sigma'(z^3_1)",
     r"\delta^3_1 = \frac{\partial C}{\partial a^3_1} \sigma'(a^3_1)"),
    ("nielsen", SIG, r"\delta^2_1 = \sum_k w^3_{k1} \delta^3_k \sigma'(z^2_1)",
     r"\delta^2_1 = \sum_k w^3_{k1} \delta^3_k"),
    ("nielsen", SIG, r"\frac{\partial C}{\partial b^2_1} = \delta^2_1", r"\frac{\partial C}{\partial b^2_1} = \delta^2_2"),
    ("nielsen", SIG, r"\frac{\partial C}{\partial w^2_{12}} = a^1_2 \delta^2_1",
     r"\frac{\partial C}{\partial w^2_{12}} = a^1_1 \delta^2_1"),
    # Ng, one entry: dz = a - y (sigmoid + cross-entropy), dW = dz a^T
    ("ng", NG, r"dz^{[2]}_1 = a^{[2]}_1 - y", r"dz^{[2]}_1 = (a^{[2]}_1 - y) a^{[2]}_1 (1 - a^{[2]}_1)"),
    ("ng", NG, r"dW^{[2]}_{12} = dz^{[2]}_1 a^{[1]}_2", r"dW^{[2]}_{12} = dz^{[2]}_1 a^{[1]}_1"),
    ("ng", NG, r"\frac{\partial J}{\partial b^{[2]}_1} = a^{[2]}_1 - y", r"\frac{\partial J}{\partial b^{[2]}_1} = y - a^{[2]}_1"),
    # Bishop 5.3: δ_j = h'(a_j) Σ_k w_kj δ_k; output δ_k = y_k - t_k (here 2(y - t), loss se)
    ("bishop", TANH_LIN, r"\delta_1 = h'(a_1) \sum_{k=1}^{1} w^{(2)}_{k1} \delta^{(2)}_k",
     r"\delta_1 = \sum_{k=1}^{1} w^{(2)}_{k1} \delta^{(2)}_k"),
    ("bishop", TANH_LIN, r"\delta^{(2)}_1 = 2(y_1 - t_1)", r"\delta^{(2)}_1 = 2(t_1 - y_1)"),
    ("bishop", TANH_LIN, r"\frac{\partial E_n}{\partial w^{(1)}_{12}} = \delta_1 x_2",
     r"\frac{\partial E_n}{\partial w^{(1)}_{12}} = \delta_2 x_1"),
    # Mazur's step by step: ∂E_total/∂w_5 on his 2-2-2 sigmoid net with E = Σ ½(target - out)²
    ("mazur", MAZUR, r"\frac{\partial E_{total}}{\partial w_5} = -(target_{o1} - out_{o1}) \cdot out_{o1}(1-out_{o1}) "
                     r"\cdot out_{h1}",
     r"\frac{\partial E_{total}}{\partial w_5} = -(target_{o1} - out_{o1}) \cdot out_{o1}(1-out_{o1}) \cdot out_{h2}"),
    ("mazur", MAZUR, r"\frac{\partial E_{total}}{\partial out_{o1}} = -(target_{o1} - out_{o1})",
     r"\frac{\partial E_{total}}{\partial out_{o1}} = (target_{o1} - out_{o1})"),
    ("mazur", MAZUR, r"\frac{\partial out_{h1}}{\partial net_{h1}} = out_{h1}(1 - out_{h1})",
     r"\frac{\partial out_{h1}}{\partial net_{h1}} = out_{h1}"),
]


@pytest.mark.parametrize("notation, spec, right, slip", PROFILE_CASES)
def test_profile_derivations(notation, spec, right, slip):
    v = one(spec, right, notation)
    assert v.verdict == "correct", v.message
    w = one(spec, slip, notation)
    assert w.verdict == "wrong", (w.verdict, w.message)
    no_leak(w.message)


def test_mazur_weights_map_in_his_order():
    # w_1 .. w_8 each differentiate to their own weight: ∂E/∂w_n = δ of its target node × its source
    for n, (k, i, j) in enumerate(MAZUR_WEIGHTS, start=1):
        notes = rf"\frac{{\partial L}}{{\partial w^{k}_{{{i}{j}}}}}"
        src = rf"\frac{{\partial E_{{total}}}}{{\partial w_{n}}} = {notes}"
        assert one(MAZUR, src, "mazur").verdict == "correct", src


def test_mazur_shared_biases_and_other_networks_are_clear_errors():
    v = one(MAZUR, r"\frac{\partial E_{total}}{\partial b_1} = 1", "mazur")
    assert v.verdict == "error" and "shared" in v.message and "b_{kj}" in v.message
    v = one(("2-3-2", "sigmoid", "half_se"), r"\frac{\partial E_{total}}{\partial w_5} = 1", "mazur")
    assert v.verdict == "error" and "2-2-2" in v.message


def test_a_line_in_another_books_notation_says_which():
    v = one(SIG, r"\frac{\partial C}{\partial w^2_{12}} = a^1_2 \delta^2_1")
    assert v.verdict == "error" and "try --notation nielsen" in v.message
    v = one(MAZUR, r"\frac{\partial E_{total}}{\partial out_{o1}} = -(target_{o1} - out_{o1})")
    assert v.verdict == "error" and "try --notation mazur" in v.message
    # a plain slip in the notes' own names is not blamed on a notation
    v = one(LINEAR, r"\frac{\partial L}{\partial w^2_{12}} = -2(y - \hat{y}) O_{11}")
    assert v.verdict == "error" and "--notation" not in v.message


def test_nielsen_weight_order_is_reversed():
    # Nielsen's w^2_{12}: from node 2 of his layer 1 (input) to node 1 of his layer 2 = the notes' w^1_{21}
    assert one(SIG, r"\frac{\partial C}{\partial w^2_{12}} = \frac{\partial L}{\partial w^1_{21}}",
               "nielsen").verdict == "error"  # w^1_{21} in Nielsen's is from his input layer: not a weight
    assert one(SIG, r"\frac{\partial C}{\partial w^2_{12}} = x_2 \delta^2_1", "nielsen").verdict == "correct"


# ---------------------------------------------------------------------------------------------
# spellings every profile reads (issue 11's list)
# ---------------------------------------------------------------------------------------------
SPELLINGS = [
    (SIG, r"\frac{\partial L}{\partial w^{2}_{11}} = -2(y-\hat{y}) \sigma'(z_{21}) O_{11}"),
    (SIG, r"\frac{\partial L}{\partial w^{2}_{11}} = -2(y-\hat{y}) \sigma^{\prime}(z_{21}) O_{11}"),
    (TANH_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} g'(z_{11}) x_{i1}"),
    (TANH_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} f'(z_{11}) x_{i1}"),
    (TANH_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} h'(z_{11}) x_{i1}"),
    (TANH_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} (1 - O_{11}^2) x_{i1}"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} g'(z_{11}) x_{i1}"),
    (LINEAR, r"\frac{\partial L}{\partial w^{(2)}_{11}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\frac{\partial L}{\partial w^{[2]}_{11}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\frac{\partial L}{\partial w_{11}^{(2)}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\frac{dL}{dw^2_{11}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\frac{d L}{d w^{2}_{11}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\partial L/\partial w^2_{11} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, "\\frac{∂L}{∂w^2_{11}} = -2(y - \\hat{y}) O_{11}"),
    (LINEAR, r"\frac{\partial \mathcal{L}}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}"),
    (LINEAR, r"\delta_{21} = -2(y - \hat{y})"),
    (SIG_LIN, r"\delta_{11} = \delta_{21} w^2_{11} O_{11}(1 - O_{11})"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} \mathbb{1}[z_{11}>0] x_{i1}"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} \mathbb{1}_{z_{11}>0} x_{i1}"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} \mathbb{1}\{z_{11}>0\} x_{i1}"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} H(z_{11}) x_{i1}"),
    (RELU_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} \theta(z_{11}) x_{i1}"),
    (LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11} \quad \text{by the chain rule}"),
    (LINEAR, r"\hat{y} = \sum_{j=1}^{2} w^2_{j1} O_{1j} + b_{21}"),
    (LINEAR, r"\hat{y} = \sum_j w^2_{j1} O_{1j} + b_{21}"),
    (LINEAR, r"L = \|y - \hat{y}\|^2"),
    (LINEAR, r"L = \lVert y - \hat{y} \rVert^{2}"),
    (("2-2-2", "linear", "se"), r"L = \|y - \hat{y}\|^2"),
    (("2-2-2", "linear", "se"), r"L = \sum_{k=1}^{2} (y_k - \hat{y}_k)^2"),
    (LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2 \cdot (y - \hat{y}) \cdot O_{11}"),
    (LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2 \times (y - \hat{y}) \times O_{11}"),
    (LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2 (y - \hat{y}) O_{11}"),
]


@pytest.mark.parametrize("spec, src", SPELLINGS)
def test_spellings_read_correct(spec, src):
    v = one(spec, src)
    assert v.verdict == "correct", v.message
    no_leak(v.message)


def test_sigma_prime_of_the_output_is_evaluated_at_the_output():
    # σ'(O) is σ' AT O (a known slip), never silently σ'(z)
    v = one(SIG, r"\frac{\partial L}{\partial w^{2}_{11}} = -2(y-\hat{y}) \sigma'(\hat{y}) O_{11}")
    assert v.verdict == "wrong"
    no_leak(v.message)
    v = one(TANH_LIN, r"\frac{\partial L}{\partial w^{1}_{11}} = -2(y-\hat{y}) w^2_{11} g'(O_{11}) x_{i1}")
    assert v.verdict == "wrong"


def test_explain_prints_primes_with_the_nodes_output():
    v = one(TANH_LIN, r"\delta_{11} = \delta_{21} w^2_{11} g'(z_{11})", explain=True)
    assert v.verdict == "correct" and v.read_as.endswith(r"\left(1 - O_{11}^{2}\right)"), v.read_as
    v = one(SIG, r"\delta_{11} = \delta_{21} w^2_{11} \sigma'(z_{11})", explain=True)
    assert v.verdict == "correct" and v.read_as.endswith(r"O_{11} \left(1 - O_{11}\right)"), v.read_as


def test_g_prime_takes_the_layers_activation():
    # g' of a linear output layer is 1, of a tanh hidden layer 1 - O²; σ' stays the sigmoid's
    assert one(TANH_LIN, r"\frac{\partial L}{\partial w^2_{11}} = -2(y-\hat{y}) g'(z_{21}) O_{11}").verdict == "correct"
    assert one(TANH_LIN, r"\frac{\partial L}{\partial w^2_{11}} = -2(y-\hat{y}) \sigma'(z_{21}) O_{11}").verdict \
        == "wrong"
    v = one(TANH_LIN, r"\frac{\partial L}{\partial w^2_{11}} = -2(y-\hat{y}) g'(z) O_{11}")
    assert v.verdict == "error" and "which node" in v.message
    v = one(("2-2-2", "sigmoid,softmax", "cce"), r"\frac{\partial L}{\partial w^2_{11}} = g'(z_{21})")
    assert v.verdict == "error" and "Jacobian" in v.message


def test_a_remark_is_dropped_with_a_note_and_a_factor_is_not():
    v = one(LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}, \text{by the chain rule}")
    assert v.verdict == "correct" and "by the chain rule" in v.message and "dropped" in v.message
    v = one(LINEAR, r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \text{O}")
    assert v.verdict == "error"


@pytest.mark.parametrize("number, verdict", [
    ("1.76e2", "correct"), ("176", "correct"), ("1.76 \\times 10^{2}", "correct"), ("17.6e1", "correct"),
    ("1.76e3", "wrong"), ("1e400", "wrong"), ("176e-3", "wrong"),
])
def test_scientific_notation_is_a_number(number, verdict):
    # the notes' worked point: x = (80, 8), every w = 1, b = 0 in the linear 2-2-1 net: ŷ = 176
    v = one(LINEAR, f"% at: x_1=80 x_2=8 y=5 w=1 b=0\n\\hat{{y}} = {number}")
    assert v.verdict == verdict, v.message
    no_leak(v.message + str(v.expected_latex))


def test_align_blocks_join_continuation_rows():
    rows = block_rows([r"\begin{align*}", r"a &= b \\", r"&= c \\", r"d &= e,\quad f = g \\",
                       r"h &= \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}", r"\end{align*}"], 10)
    assert [r[0].split() for r in rows] == [["a", "&=", "b", "&=", "c"], ["d", "&=", "e"], ["f", "=", "g"],
                                            ["h", "&=", r"\begin{cases}", "1", "&", "x", ">", "0", "\\\\", "0", "&",
                                             r"\text{otherwise}", r"\end{cases}"]]
    assert [r[1] for r in rows] == [11, 13, 13, 14]
    text = "\n".join([r"\begin{aligned}", r"\frac{\partial L}{\partial w^2_{11}} &= -2(y - \hat{y}) \cdot O_{11} \\",
                      r"&= -2 (y - w^2_{11} O_{11} - w^2_{21} O_{12} - b_{21}) O_{11}", r"\end{aligned}"])
    vs = verdicts(LINEAR, text)
    assert [v.verdict for v in vs] == ["correct"]
    wrong = text.replace("- b_{21}) O_{11}", "- b_{21}) O_{12}")
    assert [v.verdict for v in verdicts(LINEAR, wrong)] == ["wrong"]


def test_unreadable_lines_are_one_precise_line():
    v = one(LINEAR, r"L = \sum_{k=1}^{99999} O_{1k}")
    assert v.verdict == "error" and "99999" in v.message and "2 nodes" in v.message
    v = one(LINEAR, r"L = \sum_{k=1}^{x} O_{1k}")
    assert v.verdict == "error" and "number of nodes" in v.message
    for src in [r"\frac{\partial L}{\partial w^2_{11}} = \sum_i O_{1i}",
                r"\frac{\partial L}{\partial w^2_{11}} = q O_{11}",
                r"\frac{\partial L}{\partial w^2_{11}} = \Xi(O_{11})",
                r"\frac{\partial L}{\partial w^2_{11}} = \frac{1}{0}"]:
        v = one(LINEAR, src)
        assert v.verdict in ("error", "wrong"), v
        assert "\n" not in v.message
        no_leak(v.message)


# ---------------------------------------------------------------------------------------------
# round trip: everything `derive --format latex` prints reads back correct
# ---------------------------------------------------------------------------------------------
def _round_trip(spec_args):
    spec = make_spec(*spec_args)
    tex = as_latex(derive(spec), None, True)
    vs = verify_text(tex, spec).verdicts
    bad = [(v.verdict, v.source, v.message) for v in vs if v.verdict != "correct"]
    assert not bad, bad
    return vs


@pytest.mark.parametrize("spec", [("2-2-1", "sigmoid,linear", "se"), ("2-1-1", "leaky_relu,linear", "mse"),
                                  ("2-2-1", "softplus,linear", "hinge"), ("1-2-1", "step,linear", "se")])
def test_derive_latex_reads_back_all_correct(spec):
    vs = _round_trip(spec)
    # the δ lines, the chains and the ,\quad second equations all became equations
    assert any(v.source.lstrip().startswith(r"\delta") for v in vs)
    assert any("=" in v.source and r"\cdot" in v.source for v in vs)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(widths=st.lists(st.integers(1, 2), min_size=2, max_size=3),
       hidden=st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear"]),
       loss=st.sampled_from(["se", "half_se", "mse", "bce", "hinge"]))
def test_round_trip_property(widths, hidden, loss):
    out = "sigmoid" if loss == "bce" else "linear"
    acts = ",".join([hidden] * (len(widths) - 1) + [out])
    _round_trip(("-".join(map(str, widths + [1])), acts, loss))


# ---------------------------------------------------------------------------------------------
# --explain, the CLI and long arguments
# ---------------------------------------------------------------------------------------------
def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "backprop.cli.main", "verify", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_explain_reads_back_in_the_notes_notation():
    v = one(SIG, r"\frac{\partial C}{\partial w^2_{12}} = a^1_2 \delta^2_1", "nielsen", explain=True)
    assert v.verdict == "correct"
    assert v.read_as.startswith(r"\frac{\partial L}{\partial w^{1}_{21}} =") and "x_{i2}" in v.read_as
    v = one(MAZUR, r"\frac{\partial E_{total}}{\partial w_5} = -(target_{o1} - out_{o1}) \cdot out_{o1}(1-out_{o1})"
                   r" \cdot out_{h1}", "mazur", explain=True)
    assert v.read_as.startswith(r"\frac{\partial L}{\partial w^{2}_{11}} =") and "O_{11}" in v.read_as


def test_cli_notation_explain_and_json():
    r = cli("--layers", "2-2-1", "--activations", "sigmoid", "--loss", "se", "--notation", "nielsen", "--explain",
            "--json", r"\frac{\partial C}{\partial b^2_1} = \delta^2_1")
    assert r.returncode == 0, r.stderr
    (d,) = json.loads(r.stdout)
    assert d["verdict"] == "correct" and d["read_as"].startswith(r"\frac{\partial L}{\partial b_{11}}")
    r = cli("--layers", "2-2-1", "--notation", "nielsen", "--explain", r"\frac{\partial C}{\partial b^2_1} = \delta^2_1")
    assert "read as:" in r.stdout
    r = cli("--notation", "fourier", r"L = 1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_an_equation_longer_than_a_file_name_is_an_equation():
    long_eq = r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}" + " + 0 \\cdot O_{11}" * 30
    assert len(long_eq.encode()) > 255
    r = cli(long_eq)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "File name too long" not in r.stdout + r.stderr


def test_derive_pipe_into_verify_is_all_correct():
    d = subprocess.run([sys.executable, "-m", "backprop.cli.main", "derive", "--layers", "2-1-1", "--activations",
                        "tanh,linear", "--format", "latex"], capture_output=True, text=True, timeout=300)
    assert d.returncode == 0, d.stderr
    r = cli("--layers", "2-1-1", "--activations", "tanh,linear", "-", stdin=d.stdout)
    assert r.returncode == 0, r.stdout
    assert " 0 wrong, 0 error" in r.stdout


# -- derivatives written with the layer or the activation's own name -----------------------
TANH_RELU = ("2-2-1", "tanh,relu", "se")
#: ∂L/∂b_11 of the 2-2-1 tanh,relu net: -2 (y - ŷ) relu'(z_21) w^2_11 tanh'(z_11)
B11 = r"\frac{\partial L}{\partial b_{11}} = -2 (y - \hat{y}) \, {r2} \, w^{2}_{11} \, {t1}"


@pytest.mark.parametrize("t1, r2", [
    (r"\tanh'(z_{11})", r"\operatorname{ReLU}'(z_{21})"),
    (r"\tanh^{\prime}(z_{11})", r"\mathrm{relu}'(z_{21})"),
    (r"g^{[1]\prime}(z_{11})", r"g^{[2]\prime}(z_{21})"),
    (r"g_{1}'(z_{11})", r"g_2'(z_{21})"),
    (r"g^{(1)}{}'(z_{11})", r"\text{relu}'(z_{21})"),
])
def test_named_and_layer_labelled_primes_read_as_that_derivative(t1, r2):
    text = B11.replace("{r2}", r2).replace("{t1}", t1)
    assert one(TANH_RELU, text).verdict == "correct", text


@pytest.mark.parametrize("t1, r2", [
    (r"\operatorname{ReLU}'(z_{11})", r"\operatorname{ReLU}'(z_{21})"),  # relu' where tanh' belongs
    (r"\tanh'(z_{11})", r"\tanh'(z_{21})"),                              # tanh' where relu' belongs
    (r"\tanh'(O_{11})", r"\operatorname{ReLU}'(z_{21})"),                # at the output, not z
])
def test_the_named_derivative_is_the_one_written_not_the_layers(t1, r2):
    text = B11.replace("{r2}", r2).replace("{t1}", t1)
    assert one(TANH_RELU, text).verdict == "wrong", text


def test_a_layer_labelled_prime_of_another_layers_node_is_an_error():
    text = B11.replace("{r2}", r"g^{[1]\prime}(z_{21})").replace("{t1}", r"\tanh'(z_{11})")
    v = one(TANH_RELU, text)
    assert v.verdict == "error" and "layer 1's g'" in v.message and "layer 2" in v.message


@pytest.mark.parametrize("bad, says", [
    (r"\operatorname{mish}'(z_{21})", "mish' at column"),
    (r"\operatorname{softmax}'(z_{21})", "softmax' at column 58 is a Jacobian"),
    (r"\Psi_{1}(z_{21})", r"\Psi at column"),
    (r"\Upsilon_{2}(z_{21})", r"\Upsilon at column"),
])
def test_unknown_named_primes_and_typed_placeholders_are_one_line_errors(bad, says):
    text = B11.replace("{r2}", bad).replace("{t1}", r"\tanh'(z_{11})")
    v = one(TANH_RELU, text)
    assert v.verdict == "error" and says in v.message, v.message


def test_ng_layer_labelled_prime_in_ng_notation():
    text = (r"\frac{\partial \mathcal{L}}{\partial b^{[1]}_{1}} = -2 (y - \hat{y}) \, g^{[2]\prime}(z^{[2]}_{1})"
            r" \, w^{[2]}_{11} \, g^{[1]\prime}(z^{[1]}_{1})")
    assert one(TANH_RELU, text, notation="ng").verdict == "correct"


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if ACTIVATIONS[a].elementwise])
def test_every_element_wise_activation_is_read_as_a_named_prime(act):
    r"""\operatorname{NAME}'(z) names g' of any element-wise entry of the table, in the table's
    spellings (leaky\_relu, LReLU), with no list of names in the reader; right and wrong."""
    spec = make_spec("2-1", act, "se")
    for word in {act.replace("_", r"\_"), *ACTIVATIONS[act].aliases}:
        claim = rf"\frac{{\partial L}}{{\partial b_{{11}}}} = -2 (y_{{1}} - O_{{11}}) \operatorname{{{word}}}'(z_{{11}})"
        assert verify_text(claim, spec).verdicts[0].verdict == "correct", word
    wrong = claim.replace("-2", "-3")  # the same, but for step's g' = 0
    assert verify_text(wrong, spec).verdicts[0].verdict == ("correct" if passes_no_gradient(act) else "wrong")


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky_relu", "softplus"])
def test_every_form_of_every_gradient_reads_back_correct(act):
    """The printed LaTeX is the derived maths: tanh(z)**2 once printed as \\tanh(z) (the power
    passed by SymPy's LaTeX printer as exp= was dropped), and the expanded form read wrong."""
    spec = make_spec("2-2-1", f"{act},linear", "se")
    d = derive(spec)
    for g in d.gradients:
        for form in ("memoised", "formula", "expanded", "chain"):
            v = verify_text(g.latex(form), spec).verdicts[0]
            assert v.verdict == "correct", (g.name, form, g.latex(form), v.message)


@pytest.mark.parametrize("rhs, verdict", [
    (r"O_{11}", "correct"), (r"O_{12}", "wrong"), (r"1", "wrong")])
def test_a_pre_activation_is_differentiated_as_mazur_writes_net(rhs, verdict):
    """∂net_{o1}/∂w_5 = out_{h1}: z_kj is differentiated through its forward definition."""
    spec = SIG_LIN
    assert one(spec, rf"\frac{{\partial z_{{21}}}}{{\partial w^{{2}}_{{11}}}} = {rhs}").verdict == verdict
    deep = r"\frac{\partial z_{21}}{\partial b_{11}} = w^{2}_{11} O_{11} (1 - O_{11})"
    assert one(spec, deep).verdict == "correct"
    assert one(spec, deep.replace(" O_{11} (1 - O_{11})", "")).verdict == "wrong"


@pytest.mark.parametrize("extra, verdict", [
    (r" + \frac{\sin(100 \pi x_{i1})}{1000}", "wrong"),  # zero at every 2-decimal x: not at π's
    (r" \cdot \frac{\pi}{\pi}", "correct"),
    (r" + e^{0} - 1", "correct"),
])
def test_pi_and_e_are_numbers_in_a_claim(extra, verdict):
    text = r"\frac{\partial L}{\partial w^{1}_{11}} = -2 (y - \hat{y}) w^{2}_{11} x_{i1}" + extra
    assert one(("2-2-1", "linear", "se"), text).verdict == verdict
