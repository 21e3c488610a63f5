"""Issue 18, derive side: wide output layers cost O(1) differentiations (item 6); odd widths,
huge estimates, vanishing with step and negative seeds are one line (item 9); the library
refuses wrong types with TypeError/ValueError, takes NumPy ints and bools, and a Spec cannot
be changed after validation (item 15)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sympy

from backprop.cli.main import main
from backprop.derive import (LOSSES, Network, Spec, UserError, UserTypeError, derive, make_spec,
                             vectorise)
from backprop.derive import notation as nt
from backprop.derive.budget import approx, check_per_parameter
from backprop.derive.losses import _d_per_output

WIDE = "2-100000"


class _Counter:
    """Wraps a function and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture
def work(monkeypatch):
    """Counts of sympy.diff calls and of output-symbol constructions during a test."""
    _d_per_output.cache_clear()  # the count must include the loss's own differentiation
    diff, outputs = _Counter(sympy.diff), _Counter(nt.output)
    monkeypatch.setattr(sympy, "diff", diff)
    monkeypatch.setattr(nt, "output", outputs)
    return diff, outputs


# -- item 6: the width of the output layer does not multiply the work --------------------------

@pytest.mark.parametrize("act,loss", [("linear", "se"), ("sigmoid", "bce"), ("softmax", "cce"),
                                      ("linear", "mse"), ("relu", "hinge")])
def test_wide_vectorised_derive_does_constant_work(work, act, loss):
    diff, outputs = work
    vectorise(derive(make_spec("2-3", act, loss))).text()  # the tables' one-time work, cached
    diff.calls = outputs.calls = 0
    text = vectorise(derive(make_spec(WIDE, act, loss))).text()
    assert "δ^1 = (1/n)" in text and "∂L/∂W^1 = Xᵀ δ^1" in text
    # before: one sympy.diff of the 100 000-term loss per output (100 000 calls, each O(width))
    assert diff.calls <= 3, diff.calls
    assert outputs.calls <= 10, outputs.calls


def test_wide_vectorised_derive_cli_prints_the_loss_as_a_sum(work, capsys):
    diff, outputs = work
    vectorise(derive(make_spec("2-3", "linear", "se"))).text()  # the tables' one-time work, cached
    diff.calls = outputs.calls = 0
    assert main(["derive", "--layers", WIDE, "--vectorised", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["loss"]["text"] == "Σ_{j=1..100000} (y_j - ŷ_j)^2"
    assert doc["loss"]["latex"].startswith(r"\sum_{j=1}^{100000}")
    assert any(e["lhs"] == "δ^1" and "(Ŷ - Y)" in e["rhs"] for e in doc["vectorised"])
    assert diff.calls <= 3 and outputs.calls <= 10, (diff.calls, outputs.calls)


def test_wide_generate_does_constant_work(work):
    from backprop.codegen import render_trainer

    diff, outputs = work
    render_trainer(make_spec("2-3", "softmax", "cce"))  # the tables' one-time work, cached
    diff.calls = outputs.calls = 0
    source = render_trainer(make_spec(WIDE, "softmax", "cce"))
    compile(source, "trainer.py", "exec")
    assert "100000" in source
    # a constant number, never one per output (measured: 7 and 12 for 2-1000 as for 2-100000):
    # the trainer also prints the loss's textbook form and the optimisers' rules
    assert diff.calls <= 8 and outputs.calls <= 14, (diff.calls, outputs.calls)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("widths", ["2-1", "2-3", "3-2-4"])
def test_per_output_derivative_equals_differentiating_the_whole_loss(loss, widths):
    """The width-free ∂L/∂ŷ_j is exactly SymPy's derivative of the summed loss."""
    d = derive(make_spec(widths, "sigmoid", loss))
    assert len(d.dL_dyhat) == d.spec.n_outputs
    for j, p in enumerate(d.net.predictions):
        assert sympy.simplify(d.dL_dyhat[j] - sympy.diff(d.net.loss, p)) == 0
    assert d.dL_dyhat[-1] == d.dL_dyhat[d.spec.n_outputs - 1]
    with pytest.raises(IndexError):
        d.dL_dyhat[d.spec.n_outputs]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_softmax_cce_delta_is_yhat_minus_y(n):
    """The coupled form, derived once, still gives δ_j = ŷ_j - y_j (using Σ y = 1)."""
    d = derive(make_spec(f"2-{n}", "softmax", "cce"))
    for j in range(1, n + 1):
        assert sympy.expand(d.output_delta(j) - (nt.prediction(j) - nt.target(j))) == 0
    # and numerically against the full softmax Jacobian sum at a one-hot target
    rng = np.random.default_rng(0)
    z = rng.standard_normal(n)
    p = np.exp(z) / np.exp(z).sum()
    y = np.eye(n)[1]
    grad = -(y / p)  # ∂L/∂ŷ of cce
    jac = np.diag(p) - np.outer(p, p)
    values = {nt.prediction(j + 1): p[j] for j in range(n)} | {nt.target(j + 1): y[j] for j in range(n)}
    got = [float(d.output_delta(j + 1).xreplace(values)) for j in range(n)]
    assert np.allclose(got, jac.T @ grad)


def test_narrow_networks_still_print_the_loss_term_by_term(capsys):
    assert main(["derive", "--layers", "2-3", "--vectorised"]) == 0
    assert "L = (y_1 - ŷ_1)^2 + (y_2 - ŷ_2)^2 + (y_3 - ŷ_3)^2" in capsys.readouterr().out


# -- item 9: one line, exit 2 ----------------------------------------------------------------------

def _one_line(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("layers", ["2-²-1", "2-٣-1", "²", "2-1.5-1", "2--1"])
def test_non_ascii_or_odd_widths_are_one_line(layers, capsys):
    assert "digits 0-9" in _one_line(["derive", "--layers", layers], capsys)


@pytest.mark.parametrize("digits", [101, 4301, 10_000])
def test_widths_with_too_many_digits_are_one_line(digits, capsys):
    for command in ("derive", "count"):
        err = _one_line([command, "--layers", f"2-{'9' * digits}-1"], capsys)
        assert f"{digits:,} digits" in err and "at most 100 digits" in err
    assert main(["count", "--layers", f"2-{'9' * 100}-1"]) == 0  # 100 digits is still a width
    capsys.readouterr()


def test_an_estimate_too_large_for_a_float_is_one_line(capsys):
    err = _one_line(["derive", "--layers", "2-" + "1000-" * 120 + "1"], capsys)
    # derive streams each parameter in constant memory: it is the parameter count that is capped
    assert "(119,123,001 parameters)" in err and "at most 1,000,000 parameters" in err
    assert "(122 layers)" in err and "--vectorised" in err and "report it as a bug" not in err
    err = _one_line(["step", "--layers", "2-" + "1000-" * 120 + "1", "--x", "1,1", "--y", "1"], capsys)
    assert "10^362 terms" in err and "at most 2,000,000 terms" in err and "(122 layers)" in err
    assert approx(10 ** 400) == "10^400" and approx(2_400_000) == "2.4e+06"


def test_the_refusal_estimate_is_exact_for_huge_nets():
    spec = make_spec("2-" + "1000-" * 120 + "1", "linear", "se")
    with pytest.raises(UserError, match=r"10\^\d+ terms"):
        check_per_parameter(spec)


@pytest.mark.parametrize("argv", [["vanishing", "--seed", "-1"], ["vanishing", "--seed", "x"]])
def test_negative_or_bad_seed_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "whole number >= 0" in err


def test_nonnegative_int_type():
    import argparse

    from backprop.cli.common import nonnegative_int

    assert nonnegative_int("0") == 0 and nonnegative_int(" 7 ") == 7
    for bad in ("-1", "1.5", "", "x" * 100):
        with pytest.raises(argparse.ArgumentTypeError):
            nonnegative_int(bad)


def test_vanishing_with_step_is_a_verdict_not_a_division_by_zero(capsys):
    argv = ["vanishing", "--layers", "2-4-4-1", "--activations", "step", "--epochs", "2", "--rows", "16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "step, glorot init: layer 1 gets no gradient at all" in out
    assert main(argv + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # strict JSON: no Infinity/NaN tokens
    step = [r for r in doc["runs"] if r["activation"] == "step"]
    assert step and all(r["ratio_first_to_last_layer"] == 0.0 for r in step)


def test_vanishing_library_refuses_a_negative_seed():
    from backprop.train.vanishing import run_all

    with pytest.raises(UserError, match="seed"):
        run_all("2-4-4-1", ["sigmoid"], ["he"], epochs=1, rows=8, seed=-3)


# -- item 15: the library's types ----------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: make_spec(None, "linear", "se"),
    lambda: make_spec(5, "linear", "se"),
    lambda: make_spec("2-1", None, "se"),
    lambda: make_spec("2-1", 5, "se"),
    lambda: make_spec("2-1", "linear", None),
    lambda: make_spec("2-1", "linear", ["se"]),
    lambda: make_spec([2.0, 1], "linear", "se"),
    lambda: make_spec("2-1", ["linear", 3], "se"),
    lambda: make_spec("2-1", "linear", "se", bias=1),
    lambda: make_spec("2-1", "linear", "se", bias="yes"),
    lambda: Spec((2, 1), "linear", "se"),
    lambda: Spec({2: 1}, ("linear",), "se"),
    lambda: Spec((2, True), ("linear",), "se"),
    lambda: derive("2-1"),
    lambda: derive(None),
    lambda: vectorise("2-2-1"),
    lambda: vectorise(3),
    lambda: Network([2, 1]),
], ids=range(18))
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError) as exc:
        call()
    assert isinstance(exc.value, UserTypeError) and not isinstance(exc.value, AttributeError)
    assert str(exc.value)


@pytest.mark.parametrize("call", [
    lambda: make_spec("2-0-1", "linear", "se"),
    lambda: make_spec("2-1", "relu6", "se"),
    lambda: make_spec("2-1", "linear", "l1"),
    lambda: Spec((2, -1), ("linear",), "se"),
])
def test_wrong_values_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_numpy_integers_and_booleans_are_accepted():
    spec = make_spec([np.int64(2), np.int32(3), np.uint8(1)], "sigmoid", "se", bias=np.bool_(False))
    assert spec == make_spec("2-3-1", "sigmoid", "se", bias=False)
    assert all(type(w) is int for w in spec.layers) and spec.bias is False
    assert make_spec(np.array([2, 2, 1]), "linear", "se") == make_spec("2-2-1", "linear", "se")
    assert derive(spec).gradient("w^2_11").formula != 0


def test_a_spec_built_from_lists_cannot_be_changed_afterwards():
    layers, acts = [2, 2, 1], ["linear", "linear"]
    spec = Spec(layers=layers, activations=acts, loss="se")
    assert spec.layers == (2, 2, 1) and spec.activations == ("linear", "linear")
    layers.append(7)
    acts[0] = "relu"
    assert spec.layers == (2, 2, 1) and spec.activations == ("linear", "linear")
    with pytest.raises(AttributeError):  # tuples have no append
        spec.layers.append(3)  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.layers = (2, 1)  # type: ignore[misc]
    g = derive(spec).gradient("w^1_11").formula
    assert sympy.expand(g - (-2 * (nt.target(1) - nt.prediction(1))
                             * nt.weight(2, 1, 1) * nt.feature(1))) == 0
    assert hash(spec) == hash(Spec((2, 2, 1), ("linear", "linear"), "se"))


def test_too_large_is_never_called_a_bug(capsys):
    for argv in (["derive", "--layers", "2000-1000-1000-10"], ["derive", "--layers", "2-" + "9" * 200]):
        err = _one_line(argv, capsys)
        assert "bug" not in err and ("at most" in err)
