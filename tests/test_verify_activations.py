"""verify judges the tool's own derivation right, and a one-slip copy of it wrong, for every
element-wise activation and every loss on a 2-2-1 network (issue 14: selu and gelu were
judged WRONG when their table constants were Floats, off by 1e-16 at 40 digits).

The activation is the hidden layer's; the output layer is the one each loss pairs with
(:data:`OUTPUT`), and a network is checked when :mod:`backprop.derive.advice` has nothing
to say about it (step belongs to a perceptron; cce needs a softmax of two or more outputs,
which a 2-2-1 network has not): 50 networks.  Each is checked on ∂L/∂w^1_11 and ∂L/∂b_11 in
the formula and chain forms, as the tool prints them in LaTeX, and on one slip of each (a
factor dropped, the sign flipped): 6 verdicts a network.

Bounded: verify's symbolic stage runs here only on differences of at most :data:`OPS` operations
(:func:`_bounded`); past that the 40-digit numeric stage decides, which is where the Float
constants failed.  Without the bound, expanding gelu's tanh(√(2/π)(z + 0.044715z³)) inside
bce's sigmoid output takes verify ~40 s a claim, though its term estimate says 440 terms."""
import pytest
import sympy

from backprop.derive import ACTIVATIONS, LOSSES, UserError, advice, derive, make_spec
from backprop.derive import notation as nt
from backprop.verify import equivalence, verify_text

#: The output activation each loss pairs with (its canonical link; linear for a score).
OUTPUT = {"se": "linear", "half_se": "linear", "mse": "linear", "bce": "sigmoid", "cce": "softmax",
          "hinge": "linear"}


def _spec(act: str, loss: str):
    return make_spec("2-2-1", f"{act},{OUTPUT[loss]}", loss)


def _legal(act: str, loss: str) -> bool:
    try:
        return not advice.warnings(_spec(act, loss))
    except UserError:  # softmax of one output
        return False


#: Most operations of an expanded difference the symbolic stage takes on here (verify's: 3000).
OPS = 200


@pytest.fixture(autouse=True)
def _bounded(monkeypatch):
    monkeypatch.setattr(equivalence, "OPS_BUDGET", OPS)


PAIRS = [(act, loss) for act in ACTIVATIONS if ACTIVATIONS[act].elementwise for loss in LOSSES
         if _legal(act, loss)]


def test_the_pairings_are_the_legal_ones():
    """Every element-wise activation but step, with every loss but cce."""
    assert set(OUTPUT) == set(LOSSES)
    hidden = {a for a in ACTIVATIONS if ACTIVATIONS[a].elementwise} - {"step"}
    assert set(PAIRS) == {(act, loss) for act in hidden for loss in set(LOSSES) - {"cce"}}
    assert len(PAIRS) == 50


def _verdict(tex: str, spec):
    (v,) = verify_text(tex, spec=spec).verdicts
    return v


def _differ(v) -> bool:
    """The counterexample's claimed and actual values are two different numbers."""
    c, a = (float(v.counterexample[k]) for k in ("claimed", "actual"))
    return abs(c - a) > 1e-9 * max(1.0, abs(a))


def _dropped(formula: sympy.Expr) -> sympy.Expr:
    """The formula without its factor w^2_11 (∂ŷ/∂O_11, in every layer-1 gradient here)."""
    w = nt.weight(2, 1, 1)
    factors = sympy.Mul.make_args(formula)
    assert w in factors, formula
    return sympy.Mul(*[f for f in factors if f != w])


#: The slip made in each gradient's formula: w^2_11 dropped, or the sign flipped.
SLIPS = {"w^1_11": lambda p, f: p.latex(_dropped(f)), "b_11": lambda p, f: rf"- \left({p.latex(f)}\right)"}


@pytest.mark.parametrize("act, loss", PAIRS)
def test_own_derivation_is_correct_and_a_slip_is_wrong(act, loss):
    spec = _spec(act, loss)
    d = derive(spec)
    grads = {g.name: g for g in d.gradients if g.name in SLIPS}
    assert set(grads) == set(SLIPS)
    for name, g in grads.items():
        for form in ("formula", "chain"):
            v = _verdict(g.latex(form), spec)
            assert v.verdict == "correct", (form, name, v.message, v.counterexample)
        lhs = g.latex("formula").split(" = ")[0]
        slip = SLIPS[name](d.printer, g.formula)
        v = _verdict(f"{lhs} = {slip}", spec)
        assert v.verdict == "wrong", (name, slip, v.message)
        assert v.counterexample and _differ(v), (name, slip, v.counterexample)


@pytest.mark.parametrize("act", ["selu", "gelu", "elu", "swish"])
def test_the_issue_claim_with_g_prime_is_correct(act):
    """The issue's claim: g_1'(z_11) read from the table agrees with the derivation exactly."""
    spec = make_spec("2-2-1", f"{act},linear", "se")
    claim = r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) w^2_{11} g_1'(z_{11}) x_{i1}"
    assert _verdict(claim, spec).verdict == "correct"
    slipped = r"\frac{\partial L}{\partial w^1_{11}} = -2(y - \hat{y}) g_1'(z_{11}) x_{i1}"
    v = _verdict(slipped, spec)
    assert v.verdict == "wrong" and _differ(v)


def test_selu_constants_are_read_as_printed():
    """λ and α in a claim are selu's own constants (as the derivation prints them), and only in
    a network with selu; a claim with λ's digits in place of λ is still right."""
    spec = make_spec("2-2-1", "selu,linear", "se")
    lhs = r"\frac{\partial L}{\partial b_{11}} = -2(y - \hat{y}) w^2_{11}"
    right = lhs + r" \begin{cases} \lambda & O_{11} > 0 \\ O_{11} + \lambda \alpha & \text{otherwise} \end{cases}"
    assert _verdict(right, spec).verdict == "correct"
    digits = lhs + (r" \begin{cases} 1.0507009873554804934193349852946 & O_{11} > 0 \\ O_{11} + "
                    r"1.0507009873554804934193349852946 \cdot 1.6732632423543772848170429916717 & "
                    r"\text{otherwise} \end{cases}")
    assert _verdict(digits, spec).verdict == "correct"
    swapped = lhs + r" \begin{cases} \alpha & O_{11} > 0 \\ O_{11} + \lambda \alpha & \text{otherwise} \end{cases}"
    assert _verdict(swapped, spec).verdict == "wrong"
    elsewhere = _verdict(r"\frac{\partial L}{\partial b_{21}} = -2(y - \hat{y}) \lambda", make_spec("2-2-1", "elu,linear", "se"))
    assert elsewhere.verdict == "error" and "lambda" in elsewhere.message
