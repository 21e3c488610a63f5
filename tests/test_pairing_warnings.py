"""Pairings that make no sense are said, one line each, wherever a network is used (derive's
text and JSON, Derivation.warnings, train), and the softmax + cce assumption is stated and
true: δ = ŷ - y matches finite differences for one-hot targets and not for others."""
import json

import numpy as np
import pytest

from backprop.derive import advice, derive, make_spec
from backprop.derive import notation as nt
from backprop.derive.activations import ACTIVATIONS
from backprop.derive.losses import LOSSES
from test_derive_gradients import _nested_loss  # tests/: the independent reference

#: One network per rule that breaks it, and the line it must give.
BROKEN = {
    "bce-without-sigmoid": (("2-2-1", "tanh,linear", "bce"),
                            "bce scores each output as a probability from a sigmoid, but the output layer "
                            "is linear: use sigmoid on the output layer (or softmax with cce for one class "
                            "out of several)"),
    "cce-without-softmax": (("4-3", "sigmoid", "cce"),
                            "cce expects outputs that sum to 1 from a softmax, but the output layer is "
                            "sigmoid: use softmax on the output layer (or sigmoid with bce for yes/no outputs)"),
    "hinge-on-bounded-output": (("2-2-1", "relu,tanh", "hinge"),
                                "hinge wants an unbounded score, but tanh keeps ŷ inside (-1, 1), so the "
                                "margin y·ŷ ≥ 1 is never reached: use a linear output layer with targets -1/+1"),
    "step-outside-perceptron": (("2-2-1", "step,sigmoid", "se"),
                                "step belongs to a single-layer perceptron (e.g. --layers 2-1 --activations "
                                "step); in a 2-2-1 network with step,sigmoid use sigmoid, step's smooth "
                                "version, to train by gradient descent"),
}

#: Pairings that make sense: no advice at all.
SENSIBLE = [("2-2-1", "linear", "se"), ("2-3-1", "relu,sigmoid", "bce"), ("4-5-3", "tanh,softmax", "cce"),
            ("2-3-1", "relu,linear", "hinge"), ("2-1", "step", "se"), ("3-1", "step", "hinge"),
            ("2-2-2", "sigmoid", "bce"), ("2-2-1", "sigmoid", "mse")]


def test_every_rule_is_tested():
    assert {rule.name for rule in advice.RULES} == set(BROKEN)


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_rule_gives_its_one_line(rule):
    args, line = BROKEN[rule]
    spec = make_spec(*args)
    assert advice.warnings(spec) == [line]
    assert "\n" not in line
    assert line in derive(spec).warnings


@pytest.mark.parametrize("args", SENSIBLE, ids="-".join)
def test_sensible_pairings_give_none(args):
    assert advice.warnings(make_spec(*args)) == []


@pytest.mark.parametrize("out, bounds", [("sigmoid", "(0, 1)"), ("softmax", "(0, 1)"), ("tanh", "(-1, 1)")])
def test_hinge_names_each_bounded_output_and_its_range(out, bounds):
    spec = make_spec("2-2", out, "hinge")
    assert advice.warnings(spec) == [BROKEN["hinge-on-bounded-output"][1].replace("tanh", out)
                                     .replace("(-1, 1)", bounds)]


def test_rules_apply_exactly_where_they_say_over_every_pairing():
    """Every output activation × loss: a warning iff the rule's own condition holds."""
    for act in ACTIVATIONS:
        for loss in LOSSES:
            spec = make_spec("3-2", act, loss)
            said = " ".join(advice.warnings(spec))
            assert ("bce scores" in said) == (loss == "bce" and act != "sigmoid")
            assert ("cce expects" in said) == (loss == "cce" and act != "softmax")
            assert ("hinge wants" in said) == (loss == "hinge" and act in ("sigmoid", "tanh", "softmax"))
            assert "step belongs" not in said  # 3-2 with step is a single-layer perceptron


def test_step_in_a_deeper_network_is_advised_and_still_reported_as_no_gradient():
    d = derive(make_spec("2-2-1", "sigmoid,step", "se"))
    assert [w.split(" ")[0] for w in d.warnings] == ["layer", "step"]
    assert "no gradient" in d.warnings[0] and all(g.formula == 0 for g in d.gradients)


# -- where the lines are printed ------------------------------------------------------------------
def test_derive_prints_them_on_stderr_and_in_json(cli):
    status, out, err = cli("derive", "--layers", "4-3", "--activations", "sigmoid", "--loss", "cce")
    assert status == 0
    assert f"backprop derive: warning: {BROKEN['cce-without-softmax'][1]}\n" in err
    status, out, err = cli("derive", "--layers", "4-3", "--activations", "sigmoid", "--loss", "cce",
                           "--format", "json")
    assert status == 0
    doc = json.loads(out)
    assert doc["warnings"] == [BROKEN["cce-without-softmax"][1]] and doc["assumptions"] == []


def test_train_prints_them_before_training(cli, tmp_path):
    """The issue's case: cce on a sigmoid output trained iris to 33 % without a word."""
    rng = np.random.default_rng(0)
    rows = ["a,b,species"] + [f"{rng.normal():.3f},{rng.normal():.3f},{'xyz'[i % 3]}" for i in range(12)]
    data = tmp_path / "flowers.csv"
    data.write_text("\n".join(rows) + "\n")
    args = ["train", "--layers", "2-3", "--activations", "sigmoid", "--loss", "cce", "--data", str(data),
            "--target", "species", "--epochs", "2", "--quiet"]
    status, out, err = cli(*args)
    assert status == 0
    assert err.count("\n") == 1 and err == f"backprop train: warning: {BROKEN['cce-without-softmax'][1]}\n"
    status, out, err = cli(*args, "--json")
    assert status == 0 and json.loads(out)["warnings"] == [BROKEN["cce-without-softmax"][1]]
    status, out, err = cli(*[a if a != "sigmoid" else "softmax" for a in args], "--json")
    assert status == 0 and err == "" and json.loads(out)["warnings"] == []


# -- the assumption stated where it is used ---------------------------------------------------------
def test_softmax_cce_states_its_one_hot_assumption():
    d = derive(make_spec("2-3", "softmax", "cce"))
    assert d.assumptions == ["softmax + cce: δ_1j = ŷ_j - y_j holds for targets that sum to 1 (one-hot)"]
    assert derive(make_spec("2-4-3", "relu,softmax", "cce")).assumptions == [
        "softmax + cce: δ_2j = ŷ_j - y_j holds for targets that sum to 1 (one-hot)"]
    for args in SENSIBLE + [BROKEN[r][0] for r in BROKEN]:
        if args[1].split(",")[-1] != "softmax":
            assert derive(make_spec(*args)).assumptions == []


def test_the_assumption_is_printed_under_the_loss_and_in_json(cli):
    line = "softmax + cce: δ_1j = ŷ_j - y_j holds for targets that sum to 1 (one-hot)"
    status, out, _ = cli("derive", "--layers", "2-3", "--activations", "softmax", "--loss", "cce")
    lines = out.splitlines()
    assert status == 0 and lines[1].startswith("L = ") and lines[2] == f"assuming {line}"
    status, out, _ = cli("derive", "--layers", "2-3", "--activations", "softmax", "--loss", "cce",
                         "--format", "json")
    assert status == 0 and json.loads(out)["assumptions"] == [line]


def test_the_assumption_is_true_for_one_hot_targets_only():
    """∂L/∂b_1j (= δ_1j) by central differences of the textbook loss: the stated ŷ_j - y_j when
    the targets are one-hot; ŷ_j Σy - y_j (the Jacobian's sum, not the statement) otherwise."""
    d = derive(make_spec("2-3", "softmax", "cce"))
    rng = np.random.default_rng(5)
    loss, h = _nested_loss(d), 1e-6
    base = {s: float(rng.normal()) for s in d.net.parameters() + d.net.inputs}
    for targets, one_hot in (([0.0, 1.0, 0.0], True), ([1.0, 0.0, 0.0], True), ([0.5, 0.5, 0.5], False),
                             ([0.2, 0.0, 0.3], False)):
        values = base | {nt.target(j): t for j, t in enumerate(targets, start=1)}
        yhat = d.net.forward_values(values)
        for j in (1, 2, 3):
            b = nt.bias(1, j)
            fd = (loss(values | {b: values[b] + h}) - loss(values | {b: values[b] - h})) / (2 * h)
            stated = yhat[nt.prediction(j)] - targets[j - 1]
            general = yhat[nt.prediction(j)] * sum(targets) - targets[j - 1]
            assert abs(fd - general) < 1e-6, (targets, j)
            assert (abs(fd - stated) < 1e-6) == one_hot, (targets, j, fd, stated)
