"""Property: for random small networks, the tool's own formulas printed as LaTeX and fed back
to verify are correct; each with one factor dropped or one index changed is wrong, with a
counterexample that really differs when evaluated independently (forward pass + the memo
table of backprop.derive.numeric_gradients)."""
import math

import sympy
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from backprop.derive import derive, make_spec, numeric_gradients
from backprop.derive import notation as nt
from backprop.verify import verify_text

HIDDEN = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softplus"]  # step: every gradient is 0
LOSSES = ["se", "half_se", "mse", "bce", "cce", "hinge"]


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 3))
    top = 3 if depth < 3 else 2  # 3-3-3-3 works too (about 2 s per check); kept out for speed
    widths = [draw(st.integers(1, top)) for _ in range(depth + 1)]
    acts = [draw(st.sampled_from(HIDDEN)) for _ in range(depth)]
    if widths[-1] >= 2 and draw(st.booleans()):
        acts[-1] = "softmax"
    loss = draw(st.sampled_from(LOSSES))
    if loss in ("bce", "cce") and acts[-1] in ("relu", "leaky_relu"):
        acts[-1] = "sigmoid"  # y/ŷ at a dead relu output is 0/0: undefined, an 'error' verdict
    return make_spec(widths, acts, loss)


def lhs(d, p):
    return rf"\frac{{\partial L}}{{\partial {d.printer.latex(p)}}}"


def evaluate(d, expr, point):
    full = d.net.forward_values({k: float(v) for k, v in point.items()})
    full.update(point)
    value = complex(sympy.sympify(expr).xreplace({s: sympy.Float(full[s]) for s in expr.free_symbols}).evalf())
    return value.real if abs(value.imag) < 1e-12 else math.nan


def symbols_by_text(d):
    syms = d.net.inputs + d.net.parameters() + d.net.targets
    return {d.printer.text(s): s for s in syms}


SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: keep CI fast


@SETTINGS
@given(spec=networks(), data=st.data())
def test_own_formulas_verify_as_correct(spec, data):
    d = derive(spec)
    params = d.net.parameters()
    p = data.draw(st.sampled_from(params))
    g = d.gradient(p)
    v = verify_text(f"{lhs(d, p)} = {d.printer.latex(g.formula)}", spec).verdicts[0]
    assert v.verdict == "correct", (spec, v.message)


@SETTINGS
@given(spec=networks(), data=st.data())
def test_mutated_formulas_are_wrong_with_a_real_counterexample(spec, data):
    d = derive(spec)
    p = data.draw(st.sampled_from(d.net.parameters()))
    formula = d.gradient(p).formula
    kind = data.draw(st.sampled_from(["drop", "index"]))
    if kind == "drop":
        factors = [f for f in sympy.Mul.make_args(formula) if not f.is_number]
        assume(len(factors) >= 2)
        drop = data.draw(st.sampled_from(factors))
        mutated = sympy.Mul(*[f for f in sympy.Mul.make_args(formula) if f is not drop])
    else:
        names = sorted(formula.free_symbols, key=str)
        swappable = [s for s in names if nt.parse(s).kind in ("w", "O", "x", "yhat", "y")]
        assume(swappable)
        old = data.draw(st.sampled_from(swappable))
        kin = nt.parse(old).kind
        pool = [s for s in d.net.parameters() + d.net.inputs + d.net.targets + d.net.predictions
                + [d.net.O(k, j) for k in range(1, d.net.depth) for j in range(1, spec.layers[k] + 1)]
                if nt.parse(s).kind == kin and s != old]
        assume(pool)
        mutated = formula.xreplace({old: data.draw(st.sampled_from(pool))})
    # only mutations that change the value somewhere are expected to be caught
    checker_points = [{s: v for s, v in zip(d.net.inputs + d.net.parameters() + d.net.targets, vals)}
                      for vals in ([1.3, -0.7, 0.4, 1.1, -1.6, 0.9, 0.2, -0.3] * 40,
                                   [-0.4, 0.8, 1.7, -1.2, 0.5, -0.9, 1.4, 0.6] * 40)]
    for pt in checker_points:  # targets in each loss's domain, as the checker draws them
        if spec.loss in ("cce", "bce"):
            pt.update({y: float(i == 0) for i, y in enumerate(d.net.targets)})
        elif spec.loss == "hinge":
            pt.update({y: (-1.0) ** i for i, y in enumerate(d.net.targets)})
    pairs = [(evaluate(d, mutated, pt), evaluate(d, formula, pt)) for pt in checker_points]
    assume(any(math.isfinite(m) and math.isfinite(f) and abs(m - f) > 1e-6 * max(1.0, abs(f))
               for m, f in pairs))
    src = f"{lhs(d, p)} = {d.printer.latex(mutated)}"
    v = verify_text(src, spec).verdicts[0]
    assert v.verdict == "wrong", (spec, src, v.message)
    cx = v.counterexample
    point = {symbols_by_text(d)[k]: val for k, val in cx["point"].items()}
    claimed = evaluate(d, mutated, point)
    actual = numeric_gradients(d, {k: float(val) for k, val in point.items()})[p]
    assert math.isclose(claimed, cx["claimed"], rel_tol=1e-6, abs_tol=1e-9)
    assert math.isclose(actual, cx["actual"], rel_tol=1e-6, abs_tol=1e-9)
    assert not math.isclose(claimed, actual, rel_tol=1e-8, abs_tol=1e-12)
