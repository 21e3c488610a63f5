"""The notes' 2-2-1 linear network: the nine hand results, corrected, must be what we derive."""
import sympy

from backprop.derive import notation as nt

w, b, x = nt.weight, nt.bias, nt.feature
y, yhat = nt.target(1), nt.prediction(1)
O11, O12 = nt.output(1, 1), nt.output(1, 2)

#: The nine results of the second note, with its slips corrected (γ → y, θ → O,
#: w^i_11 → w^2_11, w_i2 → w_12, and the summary's w^2_12 → w^1_11).
NOTES_RESULTS = {
    w(2, 1, 1): -2 * (y - yhat) * O11,
    w(2, 2, 1): -2 * (y - yhat) * O12,
    b(2, 1): -2 * (y - yhat),
    w(1, 1, 1): -2 * (y - yhat) * w(2, 1, 1) * x(1),
    w(1, 2, 1): -2 * (y - yhat) * w(2, 1, 1) * x(2),
    b(1, 1): -2 * (y - yhat) * w(2, 1, 1),
    w(1, 1, 2): -2 * (y - yhat) * w(2, 2, 1) * x(1),
    w(1, 2, 2): -2 * (y - yhat) * w(2, 2, 1) * x(2),
    b(1, 2): -2 * (y - yhat) * w(2, 2, 1),
}


def test_nine_gradients_in_notes_vocabulary(notes_221):
    derived = {g.parameter: g.formula for g in notes_221.gradients}
    assert set(derived) == set(NOTES_RESULTS)
    for p, expected in NOTES_RESULTS.items():
        assert sympy.expand(derived[p] - expected) == 0, p


def test_backprop_order_matches_the_notes(notes_221):
    assert [g.name for g in notes_221.gradients] == [
        "w^2_11", "w^2_21", "b_21", "w^1_11", "w^1_21", "b_11", "w^1_12", "w^1_22", "b_12"]


def test_formulas_print_as_the_notes_write_them(notes_221):
    p = notes_221.printer
    g = notes_221.gradient("w^1_11")
    assert p.text(g.formula) == "-2 (y - ŷ) w^2_11 x_i1"
    assert g.latex() == r"\frac{\partial L}{\partial w^{1}_{11}} = - 2 \left(y - \hat{y}\right) w^{2}_{11} x_{i1}"
    assert p.text(notes_221.gradient("b_21").formula) == "-2 (y - ŷ)"


def test_chain_is_the_notes_factorisation(notes_221):
    p = notes_221.printer
    (path,) = notes_221.gradient("w^1_11").chain
    assert [(p.text(f.numerator), p.text(f.denominator), p.text(f.value)) for f in path] == [
        ("L", "ŷ", "-2 (y - ŷ)"), ("ŷ", "O_11", "w^2_11"), ("O_11", "w^1_11", "x_i1")]
    product = sympy.Mul(*[f.value for f in path])
    assert sympy.expand(product - notes_221.gradient("w^1_11").formula) == 0


def test_expanded_form_is_in_inputs_and_parameters_only(notes_221):
    for g in notes_221.gradients:
        kinds = {nt.parse(s).kind for s in g.expanded.free_symbols}
        assert kinds <= {"x", "y", "w", "b"}, (g.name, kinds)


def test_memoised_form_uses_delta(notes_221):
    g = notes_221.gradient("w^1_21")
    assert g.memoised == nt.delta(1, 1) * x(2)
    assert notes_221.printer.text(g.memoised) == "δ_11 x_i2"


def test_forward_value_of_notes_row(notes_221):
    """w = 1, b = 0 on the notes' first row (IQ 80, CGPA 8): O_11 = O_12 = 88, ŷ = 176
    (the note's "suppose we got 17" is only a supposition)."""
    values = {s: 1.0 for s in notes_221.net.parameters() if nt.parse(s).kind == "w"}
    values |= {s: 0.0 for s in notes_221.net.parameters() if nt.parse(s).kind == "b"}
    values |= {x(1): 80.0, x(2): 8.0, y: 5.0}
    full = notes_221.net.forward_values(values)
    assert full[O11] == 88.0 and full[yhat] == 176.0
    # dL/dw^2_11 = -2 (5 - 176) 88 = 30096
    assert notes_221.gradient("w^2_11").numpy(values) == 30096.0


def test_jupyter_renders_latex(notes_221):
    from backprop.derive import vectorise

    shown = notes_221._repr_latex_()
    assert shown.startswith("$$\\begin{aligned}L &= ") and shown.count("&=") == 1 + 9  # L, 9 gradients
    assert r"w^{2}_{11}" in notes_221.gradient("w^1_11")._repr_latex_()
    assert r"\delta^{1}" in vectorise(notes_221)._repr_latex_()
