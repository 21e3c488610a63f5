r"""Hardening: LaTeX fuzzing for ``backprop verify``.

Random token soups, mutated real derivations, arbitrary unicode and a fixed list of nasty
inputs (unbalanced braces, 10 000-deep nesting, unknown commands, unicode, empty input, a
1 MB line) must each give a verdict (correct / wrong / error with a one-line message) or a
one-line UserError: never a traceback, a RecursionError or a hang.  The work is bounded by
verify's own size limits (equation length, nesting, digits, sum limits, the symbolic term
budget), not by a clock: the alarm below only turns a real hang into a failure instead of a
stuck run, and is far above any honest run on a loaded machine.

Every case run is counted in :data:`CASES`; the last test checks and prints the totals
(``pytest -s tests/test_hardening_latex_fuzz.py`` shows them).
"""
from __future__ import annotations

import collections
import io
import json
import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from backprop.derive import UserError, derive, make_spec
from backprop.verify import NOTES, notes_path, verify_text
from backprop.verify.latex_input import split_document

#: A hang detector, not a speed test (see the module docstring).
HANG_S = 300.0
CASES: collections.Counter = collections.Counter()
OUTCOMES: collections.Counter = collections.Counter()

D = r"\frac{\partial L}{\partial w^2_{11}}"
NASTY = {
    "empty": "",
    "blank lines": "\n\n   \n\t\n",
    "only a comment": "% nothing here",
    "unbalanced open": D + r" = -2(y - \hat{y}) O_{11",
    "unbalanced close": "}}}} = {{{",
    "lone frac": r"\frac = \frac{",
    "10000-deep braces": "{" * 10_000 + "y" + "}" * 10_000 + " = y",
    "10000-deep parens": "(" * 10_000 + "y" + ")" * 10_000 + " = y",
    "10000-deep frac": r"\frac{1}{" * 10_000 + "1" + "}" * 10_000 + " = 1",
    "10000-deep powers": "y" + "^{y" * 10_000 + "}" * 10_000 + " = y",
    "10000-deep sqrt": r"\sqrt{" * 10_000 + "y" + "}" * 10_000 + " = y",
    "10000 minus signs": "-" * 10_000 + "y = y",
    "1500-term sum": "y = " + "+".join(["y"] * 1495),
    "unknown commands": r"\foo{L} = \bar\baz{w^2_{11}} \qqq",
    "unknown environment": r"\begin{weird} y = 1 \end{weird}",
    "unicode maths": "∂L/∂w²₁₁ = −2(y − ŷ)·O₁₁ 😀 ∑ ∫",
    "unicode letters": "ÿ = ŷ = γ_{11} = θ^1_{12} = ω",
    "right-to-left marks": "\u202ey = 1\u202c",
    "NUL byte": "y = \x00",
    "control characters": "y\x07 = \x1b[31m1",
    "dollars only": "$$$$$ = $",
    "unclosed $$ block": "$$ y = 1",
    "1 MB line": "y = " + "y+" * 500_000 + "y",
    "1 MB of one letter": "x" * 1_000_000,
    "1 MB of braces": "{" * 500_000 + "}" * 500_000,
    "many equations": "\n".join(f"{D} = {k}" for k in range(50)),
    "huge number": D + " = " + "9" * 2_000,
    "longest number read": D + " = " + "9" * 330,
    "float extremes": "% at: x_1=1e308 x_2=-1e308 y=1e308 w=1e308 b=0\n" + D + r" = -2(y - \hat{y}) O_{11}",
    "nan point": "% at: x_1=nan x_2=inf y=0 w=1 b=0\n" + D + " = 1",
    "bad spec directive": "% spec: layers=0-0 activations=nope\ny = 1",
    "huge spec directive": "% spec: layers=100000-100000-1\n" + D + " = 1",
    "delta rule junk": r"\Delta w \leftarrow \leftarrow \eta Err_{",
    "count junk": "% count: 5-4-3-2-1 total\n1 + + = 46",
    "derivative of derivative": r"\frac{\partial \frac{\partial L}{\partial y}}{\partial w^2_{11}} = 0",
    "division by zero": D + r" = \frac{1}{0}",
    "huge exponent": D + r" = e^{e^{e^{1000}}}",
    "factorial bomb": D + r" = 1000000!",
    "matrix junk": r"\frac{\partial L}{\partial W^2} = \delta^{2} {O^1}^T^T",
}


class Overtime(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` inside verify eats it."""


@contextmanager
def deadline(seconds: float = HANG_S):
    """Fail (not hang forever) when the block never finishes."""

    def alarm(signum, frame):
        raise Overtime(f"verify did not finish in {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_outcome(text: str, kind: str) -> str:
    """Run verify on ``text``; assert the outcome is a verdict or a one-line UserError."""
    CASES[kind] += 1
    outcome = _outcome(text)
    OUTCOMES[outcome] += 1
    return outcome


def _outcome(text: str) -> str:
    with deadline():
        try:
            report = verify_text(text)
        except UserError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            assert "Traceback" not in message
            return "user error"
        # the report renders both ways without raising
        rendered = report.text()
        json.dumps(report.as_list())
    assert "Traceback" not in rendered
    verdicts = [v for f in report.files for v in f.verdicts]
    assert verdicts
    for v in verdicts:
        assert v.verdict in ("correct", "wrong", "error"), v
        assert "\n" not in v.message, repr(v.message)
        assert "RecursionError" not in v.message and "Traceback" not in v.message
        if v.verdict == "error":
            assert v.message
    return verdicts[0].verdict


@pytest.mark.parametrize("name", list(NASTY))
def test_nasty_inputs(name):
    outcome = check_outcome(NASTY[name], "fixed")
    if name in ("empty", "blank lines", "only a comment", "dollars only"):
        assert outcome == "user error"
    if name.startswith(("1 MB", "10000", "unbalanced", "unknown")):
        assert outcome in ("error", "user error")


@pytest.mark.parametrize("name", ["1 MB line", "10000-deep braces", "unicode maths", "empty", "NUL byte"])
def test_nasty_inputs_through_the_cli(name, cli, monkeypatch):
    """Standard input of the CLI: exit 0/1/2, at most a one-line error, no traceback."""
    CASES["fixed (CLI)"] += 1
    monkeypatch.setattr("sys.stdin", io.StringIO(NASTY[name]))
    with deadline():
        status, out, err = cli("verify", "-")
    assert status in (0, 1, 2)
    assert "Traceback" not in out + err and err.count("\n") <= 1


# -- generated cases ----------------------------------------------------------------------------

TOKENS = [
    r"\frac", r"\partial", "{", "}", "(", ")", "[", "]", "^", "_", "=", "+", "-", "*", "/", r"\cdot",
    r"\times", "L", "w", "y", "x", "b", "z", "O", r"\hat{y}", "O_{11}", "w^2_{11}", "w^{1}_{21}",
    "x_{i1}", r"\delta_{21}", r"\sigma", r"\sigma'", "'", "0", "1", "2", "11", "1.5", "e", r"\exp",
    r"\log", r"\sum", r"\sum_{i=1}^{2}", r"\left(", r"\right)", r"\boxed{", r"\underbrace{",
    r"\foo", r"\text{", "&", r"\\", "$", "$$", "%", "\n", " ", "ŷ", "∂", "·", "σ", "γ", "😀", "\u200b",
    r"\leftarrow", r"\Delta", r"\approx", r"\rightarrow", "Err_", r"\eta", "% at: w=1 b=0\n",
    "% spec: layers=2-3-1 activations=sigmoid loss=bce\n", "% count: total\n", "% mode: delta\n",
]


def _notes_equations() -> list[str]:
    eqs = []
    for name in NOTES:
        eqs += [e.source for e in split_document(notes_path(name).read_text(encoding="utf-8")).equations]
    d = derive(make_spec("2-2-1", "sigmoid", "bce"))
    for g in d.gradients[:4]:
        eqs.append(rf"\frac{{\partial L}}{{\partial {d.printer.latex(g.parameter)}}} = {d.printer.latex(g.formula)}")
    return eqs


SEEDS = _notes_equations()

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), min_size=0, max_size=40).map("".join))
def test_random_token_soup(text):
    check_outcome(text, "random tokens")


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 8)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "truncate", "nest"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] * draw(st.integers(1, 50)) + text[j:]
        elif op == "swap" and j > i + 1:
            text = text[:i] + text[j - 1] + text[i + 1:j - 1] + text[i] + text[j:]
        elif op == "truncate":
            text = text[:i]
        elif op == "nest":
            k = draw(st.integers(1, 200))
            text = text[:i] + "{" * k + text[i:j] + "}" * k + text[j:]
    return text


@FUZZ
@given(mutated())
def test_mutated_derivations(text):
    check_outcome(text, "mutated derivations")


@settings(FUZZ, max_examples=80)
@given(st.text(max_size=300))
def test_arbitrary_unicode(text):
    check_outcome(text, "arbitrary unicode")


def test_zz_fuzz_case_counts():
    """Runs last in this file: how many cases each family ran (see the module docstring)."""
    print("\nLaTeX fuzz cases run:", dict(CASES), "total", sum(CASES.values()), "outcomes", dict(OUTCOMES))
    if CASES["random tokens"]:  # the whole file ran, not a single selected test
        assert CASES["fixed"] == len(NASTY)
        assert sum(CASES.values()) >= 300
