r"""verify names WHY a derivation is wrong: every slip of verify/misconceptions.py applied to
derived truths on random networks is `wrong` with that slip's label; the notes' own chain
steps (\frac{\partial (E)}{\partial P} with E a node's expression, total derivatives) are
correct; multi-line derivations name their first wrong step (issue 11, issue 18 item 3)."""
import collections
import random

import pytest

from backprop.derive import derive, make_spec
from backprop.verify import misconceptions as m
from backprop.verify import verify_text

LIN = make_spec("2-2-1", "linear", "se")
SIG = make_spec("2-2-1", "sigmoid", "se")
DL = r"\frac{\partial L}{\partial w^2_{11}}"

HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
OUTPUTS = [("linear", "se"), ("linear", "half_se"), ("linear", "mse"), ("sigmoid", "bce"),
           ("softmax", "cce"), ("linear", "hinge"), ("sigmoid", "se"), ("tanh", "half_se")]


def one(src, spec=LIN):
    return verify_text(src, spec).verdicts[0]


def random_spec(rng):
    depth = rng.choice([1, 2, 2, 3])
    act, loss = rng.choice(OUTPUTS)
    outs = 1 if loss in ("bce", "hinge") else rng.choice([1, 2])
    if loss == "cce":
        outs = rng.choice([2, 3])
    widths = [rng.choice([1, 2, 3])] + [rng.choice([2, 3]) for _ in range(depth - 1)] + [outs]
    acts = [rng.choice(HIDDEN) for _ in range(depth - 1)] + [act]
    return make_spec("-".join(map(str, widths)), ",".join(acts), loss)


def slipped_claims(n_networks, seed, per_network=2):
    """(spec, LaTeX equation, slip id, ids of the slips that give the same formula) for every
    slip applied to ∂L/∂P of a few parameters of random networks, printed as the tool prints."""
    rng = random.Random(seed)
    for _ in range(n_networks):
        spec = random_spec(rng)
        d = derive(spec)
        params = d.net.parameters()
        for p in rng.sample(params, min(per_network, len(params))):
            pts = m._Points(d.net, spec.loss, "test")
            truth = m.Truth(d, p, pts).F
            seen = []
            for slip_id, expr, _ in m.candidates(d, p):
                vals = pts.values(expr)
                if vals is None or m._same(vals, list(truth)):
                    continue  # this slip changes nothing on this network (linear g', one path...)
                same_as = {s for s, v in seen if m._same(v, vals)}
                seen.append((slip_id, vals))
                lhs = r"\frac{\partial L}{\partial %s}" % d.printer.latex(p)
                yield spec, f"{lhs} = {d.printer.latex(expr)}", slip_id, same_as


@pytest.fixture(scope="module")
def labelled():
    out = []
    for spec, src, slip_id, same_as in slipped_claims(5, seed=11):
        v = one(src, spec)
        out.append((slip_id, same_as, v))
    return out


def test_every_slip_applied_to_the_truth_is_wrong(labelled):
    assert len(labelled) > 60
    assert {s for s, _, _ in labelled} >= {"missing_gprime", "gprime_at_output", "wrong_layer_weight",
                                           "sign_error", "factor_two", "bias_extra_input", "missing_path"}
    not_wrong = [(s, v.source, v.verdict, v.message) for s, _, v in labelled if v.verdict != "wrong"]
    assert not not_wrong


def test_slips_are_labelled_with_that_slip(labelled):
    """≥ 90 % carry the slip's own label; a formula two slips produce (x2 is also a missing
    mean over two outputs) may carry either."""
    right = sum((v.misconception or {}).get("id") == s for s, _, v in labelled)
    either = sum((v.misconception or {}).get("id") in {s} | same for s, same, v in labelled)
    confused = collections.Counter((s, (v.misconception or {}).get("id")) for s, _, v in labelled
                                   if (v.misconception or {}).get("id") != s)
    assert right / len(labelled) >= 0.9, confused
    assert either / len(labelled) >= 0.95, confused


def test_misconception_is_in_the_json_and_the_text_report():
    r = verify_text(r"\frac{\partial L}{\partial w^2_{11}} = 2(y - \hat{y}) O_{11}", LIN)
    obj = r.as_list()[0]
    assert obj["misconception"]["id"] == "sign_error" and obj["misconception"]["explanation"]
    assert "misconception (sign_error)" in r.text()
    assert one(DL + r" = -2(y - \hat{y}) O_{11}").misconception is None


def test_table_has_the_shared_ids():
    assert set(m.SLIPS) == {"missing_gprime", "gprime_at_output", "wrong_layer_weight", "transposed_indices",
                            "bn_batch_means_forgotten", "bn_batch_mean_term_missing",
                            "missing_skip", "missing_path", "missing_transpose", "extra_transpose", "hadamard_vs_matmul",
                            "missing_mean", "extra_mean", "sign_error", "factor_two", "extra_gprime_fused",
                            "bias_extra_input", "bias_not_summed"}
    assert set(m.APPLY) == set(m.SLIPS)
    assert all(s.label and s.explanation for s in m.SLIPS.values())


# -- the why blames the factor the slip is in ---------------------------------------------------
def test_stray_two_is_blamed_on_dl_dyhat_not_on_dyhat_dw():
    v = one(DL + r" = -2(y - \hat{y}) O_{11}", make_spec("2-2-1", "linear", "half_se"))
    assert v.verdict == "wrong" and v.misconception["id"] == "factor_two"
    assert r"\frac{\partial L}{\partial \hat{y}}" in v.factor and r"\partial w" not in v.factor
    assert "-O_{11}" not in v.message.replace(" ", "")


def test_extra_input_in_a_bias_gradient_is_blamed_on_dz_db():
    v = one(r"\frac{\partial L}{\partial b_{11}} = -2(y - \hat{y}) w^2_{11} x_{i1}")
    assert v.verdict == "wrong" and v.misconception["id"] == "bias_extra_input"
    assert r"\frac{\partial z_{11}}{\partial b_{11}}" in v.factor and r"\partial O_{11}" not in v.factor


@pytest.mark.parametrize("src, slip, spec", [
    (r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) \hat{y}(1-\hat{y}) w^2_{11} x_{i1}", "missing_gprime", SIG),
    (r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) \sigma(\hat{y})(1 - \sigma(\hat{y})) O_{11}",
     "gprime_at_output", SIG),
    (r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) w^1_{11} x_{i1}", "wrong_layer_weight", LIN),
    (r"\frac{\partial L}{\partial w^1_{12}} = -2(y - \hat{y}) w^2_{21} x_{i2}", "transposed_indices", LIN),
    (r"\frac{\partial L}{\partial w^2_{11}} = (\hat{y} - y) \hat{y} (1 - \hat{y}) O_{11}", "extra_gprime_fused",
     make_spec("2-2-1", "linear,sigmoid", "bce")),
    (r"\frac{\partial L}{\partial w^1_{11}} = -2(y_1 - \hat{y}_1) w^2_{11} x_{i1}", "missing_path",
     make_spec("2-2-2", "linear", "se")),
])
def test_hand_written_slips_get_their_label(src, slip, spec):
    v = one(src, spec)
    assert v.verdict == "wrong" and v.misconception["id"] == slip, (v.message, v.misconception)


def test_no_message_shows_zoo_or_no_close_name():
    for src in [r"\frac{\partial L}{\partial w^2_{11}} = \frac{1}{0 \cdot O_{11}}",
                r"\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) Q_{11}",
                r"\frac{\partial L}{\partial w^2_{11}} = 0"]:
        v = one(src)
        assert r"\tilde{\infty}" not in v.message + (v.factor or "") and "no close name" not in v.message, v.message


# -- chain steps (issue 18.3) --------------------------------------------------------------------
@pytest.mark.parametrize("src", [
    # the notes' own step 2: the factor differentiates ŷ's expression, not L's
    DL + r" = \frac{\partial L}{\partial \hat{y}} \cdot \frac{\partial (w^2_{11} O_{11} + w^2_{21} O_{12} + b_{21})}"
         r"{\partial w^2_{11}}",
    # a total derivative: ŷ inside depends on w through the forward definitions
    DL + r" = \frac{\partial (y-\hat{y})^2}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}",
    r"\frac{\partial (y-\hat{y})^2}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}",
    r"\frac{\partial (y-\hat{y})^2}{\partial w^1_{11}} = -2(y - \hat{y}) w^2_{11} x_{i1}",
    # the local readings the notes use
    r"\frac{\partial \hat{y}}{\partial O_{11}} = \frac{\partial (w^2_{11} O_{11} + w^2_{21} O_{12} + b_{21})}"
    r"{\partial O_{11}} = w^2_{11}",
    r"\frac{\partial L}{\partial w^1_{11}} = \frac{\partial L}{\partial \hat{y}} \frac{\partial (w^2_{11} O_{11} + "
    r"w^2_{21} O_{12} + b_{21})}{\partial O_{11}} \frac{\partial O_{11}}{\partial w^1_{11}}",
])
def test_chain_steps_of_the_notes_are_correct(src):
    v = one(src)
    assert v.verdict == "correct", v.message


def test_total_derivative_is_not_zero():
    v = one(r"\frac{\partial (y-\hat{y})^2}{\partial w^2_{11}} = 0")
    assert v.verdict == "wrong"


@pytest.mark.parametrize("src, what", [
    # the notes' real slip: O_21 (which is ŷ) written for O_12 inside ŷ
    (r"\frac{\partial \hat{y}}{\partial O_{11}} = \frac{\partial (w_{11}^2 O_{11} + w_{21}^2 O_{21} + b_{21})}"
     r"{\partial O_{11}} = w_{11}^2", "not ŷ"),
    # an expression that is no node at all
    (DL + r" = \frac{\partial L}{\partial \hat{y}} \cdot \frac{\partial (w^2_{11} O_{12} + b_{21})}{\partial w^2_{11}}",
     "which is not"),
])
def test_differentiating_an_expression_that_is_no_node_is_wrong(src, what):
    v = one(src)
    assert v.verdict == "wrong" and what in v.message, v.message


# -- multi-line derivations ----------------------------------------------------------------------
def test_first_wrong_step_is_named_and_later_steps_follow_from_it():
    r = verify_text("\n".join([
        DL + r" = \frac{\partial L}{\partial \hat{y}} \frac{\partial \hat{y}}{\partial w^2_{11}}",
        r"= -2(y - \hat{y}) \cdot \frac{\partial \hat{y}}{\partial w^2_{11}}",
        r"= 2(y - \hat{y}) O_{11}",
        r"= 2 O_{11} (y - \hat{y})",
    ]), LIN)
    v = r.verdicts
    assert [x.verdict for x in v] == ["correct", "correct", "wrong", "wrong"]
    assert v[2].message.startswith("line 3 is where it goes wrong") and v[2].misconception["id"] == "sign_error"
    assert v[3].follows_from == 3 and "follows from line 3" in v[3].message
    assert v[1].source.startswith("=")  # shown as written


def test_same_left_side_lines_are_one_derivation_and_a_new_error_says_so():
    r = verify_text("\n".join([
        DL + r" = 2(y - \hat{y}) O_{11}",
        DL + r" = -2(y - \hat{y}) O_{12}",
    ]), LIN)
    a, b = r.verdicts
    assert a.message.startswith("line 1 is where it goes wrong")
    assert b.verdict == "wrong" and b.follows_from is None and "a new error after line 1" in b.message


def test_unrelated_lines_are_not_grouped():
    r = verify_text("\n".join([DL + r" = 2(y - \hat{y}) O_{11}",
                               r"\frac{\partial L}{\partial w^2_{21}} = -2(y - \hat{y}) O_{12}"]), LIN)
    assert "goes wrong" not in r.verdicts[0].message and r.verdicts[1].verdict == "correct"


@pytest.mark.parametrize("slip, label", [
    (lambda t: t.replace(r"w^{2}_{12}", r"w^{1}_{12}"), "wrong_layer_weight"),
    (lambda t: t.replace(r"\hat{y}_{2} \left(1 - \hat{y}_{2}\right) ", ""), "missing_gprime"),
])
def test_a_slip_on_one_path_of_the_sum_is_named_with_that_path(slip, label):
    """Students slip on one term of Σ_m, not on all: the label says which path."""
    spec = make_spec("2-2-2", "sigmoid,sigmoid", "half_se")
    right = (r"\frac{\partial L}{\partial w^{1}_{11}} = x_{i1} O_{11} \left(1 - O_{11}\right) \left("
             r"\left(\hat{y}_{1} - y_{1}\right) \hat{y}_{1} \left(1 - \hat{y}_{1}\right) w^{2}_{11} + "
             r"\left(\hat{y}_{2} - y_{2}\right) \hat{y}_{2} \left(1 - \hat{y}_{2}\right) w^{2}_{12}\right)")
    assert verify_text(right, spec).verdicts[0].verdict == "correct"
    v = verify_text(slip(right), spec).verdicts[0]
    assert v.verdict == "wrong" and v.misconception and v.misconception["id"] == label, (v.message, v.misconception)
    assert "on the path through nodes 1 → 2 only" in v.message
