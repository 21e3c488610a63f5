"""The transcriptions of the three lecture notes: the verdict of EVERY line is pinned, so
a change in the checker that finds a slip differently (or stops finding it) shows here."""
import pytest

from backprop.verify import NOTES, notes_path, verify_file

# (line in the .tex file, verdict)  # the '% where:' label of that line
EXPECTED = {
    "note1_what_is_backprop.tex": [
        (11, "correct"),  # note 1, Overview: "6 weights"
        (14, "correct"),  # note 1, Overview: "3 biases"
        (17, "correct"),  # note 1, Overview: "9 times"
        (23, "wrong"),  # note 1, Steps 2-3: "Suppose the answer we got is 17"
        (27, "correct"),  # note 1, Steps 4: loss of the supposed prediction
        (33, "correct"),  # note 1, Hierarchy
        (35, "correct"),  # note 1, Intuition: the chain
        (37, "correct"),  # note 1, Raw calculation: dL/dy-hat
        (39, "correct"),  # note 1, Raw calculation: dy-hat/dw^2_11 (no \partial in the denominator)
        (41, "correct"),  # note 1, Raw calculation: result
    ],
    "note2_deep_learning_mlp.tex": [
        (11, "wrong"),  # note 2, MLP notation: "total trainable parameters"
        (13, "error"),  # note 2, Layer 1: first row of σ(W^T x + b) (w' for w^1, b_1 for b_11)
        (16, "correct"),  # note 2, Layer 1 (read with w' = w^1, b_1 = b_11)
        (18, "correct"),  # note 2, Layer 2: G(W^T o + b), first and third rows
        (19, "correct"),  #
        (21, "correct"),  # note 2, Layer 3: g(W^T o + b)
        (22, "correct"),  #
        (24, "error"),  # note 2, Layer h: the final output (h and n stand for the last layer, 4)
        (27, "correct"),  # note 2, Layer h (read with h = n = 4)
        (31, "wrong"),  # note 2, Layer 1 as first written: W (5×4) times x (5×1): a missing transpose
        (33, "correct"),  # note 2, Layer 1: σ(W^T x + b) ("[4 × 3] [5 × 1] → [4 × 1]": W^T is 4 × 5; a shape claim, not checked)
        (35, "correct"),  # note 2, Layer 2: G(W^T o + b)
        (37, "correct"),  # note 2, Layer 3: g(W^T o + b)
        (39, "correct"),  # note 2, Layer h: g(W^T x + b), the final output
        (46, "wrong"),  # note 2, Step 2: "(ex, we got ŷ = 5)" for the first row (80, 3.5, 1.8), w = 1, b = 0
        (49, "wrong"),  # note 2, Step 3: the loss of that prediction
        (52, "correct"),  # note 2, Step 3: what ŷ depends on
        (55, "correct"),  # note 2, Final step: "a total of 9 trainable parameters"
        (58, "correct"),  # note 2, ①: the chain
        (60, "correct"),  # note 2, ①: dL/dŷ
        (62, "wrong"),  # note 2, ①: dŷ/dw^2_11 (O_21 w^2_21 written for O_12 w^2_21)
        (64, "correct"),  # note 2, ①: result
        (66, "correct"),  # note 2, ②: the chain
        (68, "correct"),  # note 2, ②: dŷ/dw^2_21
        (70, "correct"),  # note 2, ②: result
        (72, "correct"),  # note 2, ③: the chain
        (74, "correct"),  # note 2, ③: dŷ/db_21
        (76, "correct"),  # note 2, ③: result
        (78, "error"),  # note 2, ④: the chain (w^i_11 for w^1_11)
        (80, "error"),  # note 2, ④: dŷ/dO_11 (w^i for w^2, O_21 for O_12)
        (82, "error"),  # note 2, ④: dO_11/dw^i_11
        (84, "error"),  # note 2, ④: result
        (87, "correct"),  # note 2, ④ (read with w^i = w^1): the chain
        (89, "wrong"),  # note 2, ④ (read with w^i = w^2): dŷ/dO_11, O_21 still written for O_12
        (91, "correct"),  # note 2, ④ (read with w^i = w^1): dO_11/dw^1_11
        (93, "correct"),  # note 2, ④ (read with w^i = w^1, w^2): result
        (95, "error"),  # note 2, ⑤: the chain (w^i_21 for w^1_21)
        (97, "error"),  # note 2, ⑤: dO_11/dw^i_21
        (99, "correct"),  # note 2, ⑤: result
        (101, "correct"),  # note 2, ⑥: the chain
        (103, "correct"),  # note 2, ⑥: do_11/db_11
        (105, "correct"),  # note 2, ⑥: result
        (107, "correct"),  # note 2, ⑦: the chain
        (109, "wrong"),  # note 2, ⑦: dŷ/do_12 (b_12 written for b_21)
        (111, "correct"),  # note 2, ⑦: do_12/dw^1_12
        (113, "error"),  # note 2, ⑦: result (w_{i2} for w_{12}, γ for y)
        (116, "correct"),  # note 2, ⑦ (read with w_{i2} = w_{12}, γ = y): result
        (118, "correct"),  # note 2, ⑧: the chain
        (120, "error"),  # note 2, ⑧: dO_12/dw^1_22 (ω for w)
        (122, "error"),  # note 2, ⑧: result (γ for y)
        (125, "correct"),  # note 2, ⑧ (read with ω = w): dO_12/dw^1_22
        (127, "correct"),  # note 2, ⑧ (read with γ = y): result
        (129, "correct"),  # note 2, ⑨: the chain
        (131, "error"),  # note 2, ⑨: dO_12/db_12 (ω for w)
        (133, "error"),  # note 2, ⑨: result (γ for y)
        (136, "correct"),  # note 2, ⑨ (read with γ = y): result
        (143, "error"),  # note 2, final list 1 (θ for O)
        (145, "correct"),  # note 2, final list 2
        (147, "error"),  # note 2, final list 3 (θ for O)
        (149, "correct"),  # note 2, final list 4
        (151, "correct"),  # note 2, final list 5
        (153, "correct"),  # note 2, final list 6
        (155, "error"),  # note 2, final list 7 (w^2_12 for w^1_11: no such weight in 2-2-1)
        (157, "correct"),  # note 2, final list 8
        (159, "correct"),  # note 2, final list 9
        (162, "correct"),  # note 2, final list 1 (read with θ = O)
        (164, "correct"),  # note 2, final list 3 (read with θ = O)
        (166, "correct"),  # note 2, final list 7 (read with w^2_12 = w^1_11)
    ],
    "note3_delta_rule.tex": [
        (12, "error"),  # note 3, 1.2: output-layer update (α_j for a_j)
        (14, "error"),  # note 3, 1.2.1: output-layer delta (g^1 for g')
        (16, "error"),  # note 3, 2.2: hidden-layer delta (g^1 for g')
        (18, "error"),  # note 3, 3.1: hidden-layer update (α_k for a_k)
        (22, "wrong"),  # note 3, 1.2 (read with a_j): output-layer update, W_{i,j} for W_{j,i}
        (24, "correct"),  # note 3, 1.2 as it should read
        (26, "correct"),  # note 3, 1.2.1 (read with g')
        (28, "correct"),  # note 3, 2.2 (read with g')
        (30, "correct"),  # note 3, 3.1 (read with a_k)
        (35, "wrong"),  # note 3, 1.2.1 under loss (y - ŷ)² instead of ½(y - ŷ)²
    ],
}


@pytest.fixture(scope="module")
def reports():
    return {n: verify_file(notes_path(n)) for n in NOTES}


@pytest.mark.parametrize("name", NOTES)
def test_every_transcribed_line(reports, name):
    got = [(v.line, v.verdict) for v in reports[name].verdicts]
    assert got == EXPECTED[name]


def by_line(reports, name, line):
    return next(v for v in reports[name].verdicts if v.line == line)


def test_note1_prediction_is_176_not_17(reports):
    v = by_line(reports, NOTES[0], 23)
    assert v.counterexample["claimed"] == 17 and v.counterexample["actual"] == 176


def test_note2_numeric_slips(reports):
    count = by_line(reports, NOTES[1], 11)
    assert count.expected_latex == "24 + 15 + 8 + 3 = 50" and count.counterexample["actual"] == 50
    assert by_line(reports, NOTES[1], 46).counterexample["actual"] == 167
    loss = by_line(reports, NOTES[1], 49)
    assert loss.counterexample["actual"] == 10.24 and loss.counterexample["claimed"] == 10.2


def test_note2_notation_slips_suggest_what_was_meant(reports):
    assert "w^1_11" in by_line(reports, NOTES[1], 78).suggestions
    assert "y" in by_line(reports, NOTES[1], 122).suggestions
    assert "O_11" in by_line(reports, NOTES[1], 143).suggestions
    assert "w^1_12" in by_line(reports, NOTES[1], 120).suggestions
    assert "w^1_12" in by_line(reports, NOTES[1], 113).suggestions
    assert "b_21" in by_line(reports, NOTES[1], 109).expected_latex.replace("{", "").replace("}", "")


def test_note2_untransposed_product_is_a_shape_error(reports):
    v = by_line(reports, NOTES[1], 31)
    assert v.verdict == "wrong" and "5×4 by a 5×1" in v.message
    assert v.misconception["id"] == "missing_transpose"


def test_note3_index_order(reports):
    v = by_line(reports, NOTES[2], 22)
    assert "reversed" in v.message and v.expected_latex.startswith("W_{j,i}")


def test_cli_runs_each_note_without_flags(cli):
    for name in NOTES:
        status, out, err = cli("verify", str(notes_path(name)))
        assert status in (1, 2) and "Traceback" not in err and out.count("[") >= len(EXPECTED[name])
    status, out, _ = cli("verify", "--notes", "--json")
    assert status == 2 and out.count('"verdict"') == sum(map(len, EXPECTED.values()))
