"""The labelled verify corpus (verify/corpus/) and issue 11's figures measured on it.

Size floors and entry shape are plain tests; "no false correct" is a hard test over the whole
corpus.  The other targets (no false wrong/error on correct input, >= 90 % right labels,
every counterexample really differs) are measured and reported; the ones that need work still
in progress elsewhere (notation profiles, misconception labels, kinks) are xfail(strict=False)
with the figure in the reason, so the lead flips them when they pass.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from backprop.verify.corpus import build
from backprop.verify.misconceptions import SLIPS

ROOT = Path(__file__).resolve().parents[1]
#: Verifying the corpus takes tens of CPU-minutes (and one entry near #500 ran for over 15
#: minutes in this session: being tracked), regenerating it 4: the default run checks the
#: corpus's size, shape and coverage; BACKPROP_FULL_CORPUS=1 also verifies every entry
#: (the figures of issue 11), as `python bench/verify_corpus.py` does.
FULL = os.environ.get("BACKPROP_FULL_CORPUS") == "1"
full_only = pytest.mark.skipif(not FULL, reason="whole-corpus check: set BACKPROP_FULL_CORPUS=1")


def _bench():
    spec = importlib.util.spec_from_file_location("verify_corpus_bench", ROOT / "bench" / "verify_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def corpus():
    return build.load_corpus()


@pytest.fixture(scope="module")
def result(corpus):
    if not FULL:
        pytest.skip("verifying the corpus takes tens of minutes: set BACKPROP_FULL_CORPUS=1")
    bench = _bench()
    claims = {e["id"]: e["claim"] for e in build.generate() if "claim" in e}
    return bench.measure(corpus, claims)


def test_size_floors(corpus):
    correct = [e for e in corpus if e["expect"] == "correct"]
    wrong = [e for e in corpus if e["expect"] == "wrong"]
    assert len(correct) >= 300
    assert len(wrong) >= 300


def test_every_entry_parses(corpus):
    problems = {e.get("id", "?"): p for e in corpus if (p := build.entry_problems(e))}
    assert problems == {}
    ids = [e["id"] for e in corpus]
    assert len(ids) == len(set(ids))


def test_coverage(corpus):
    """Every profile, activation, loss, slip and form appears (correct and wrong where it can)."""
    notations = {e["notation"] for e in corpus}
    assert notations == set(build.NOTATIONS)
    acts = {a for e in corpus for a in e["spec"]["activations"].split(",")}
    assert acts >= {"linear", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "softmax", "step"}
    assert {e["spec"]["loss"] for e in corpus} == {"se", "half_se", "mse", "bce", "cce", "hinge"}
    labels = {e["label"] for e in corpus if e["expect"] == "wrong"}
    assert labels >= set(build.ADVERSARIAL)
    scalar_slips = set(build.SCALAR_SLIPS)
    assert scalar_slips <= labels
    assert labels <= set(SLIPS) | set(build.ADVERSARIAL)
    assert {e["form"] for e in corpus} == set(build.FORMS)


@full_only
def test_generated_file_is_fresh(corpus):
    """generated.json is what build.py writes (regenerate: python -m backprop.verify.corpus.build)."""
    on_disk = json.loads(build.GENERATED.read_text(encoding="utf-8"))
    assert on_disk == [build._json_ready(e) for e in build.generate()]


@full_only
def test_generated_wrong_claims_really_differ_from_the_truth():
    """Every generated wrong claim differs from the derived gradient (checked here, not by verify)."""
    import random

    from backprop.derive import derive

    rng = random.Random(5)
    by_spec = {}
    for e in build.generate():
        if e["expect"] != "wrong" or e["label"] not in build.SCALAR_SLIPS:
            continue
        spec = build.spec_of(e)
        d = by_spec.setdefault(spec, derive(spec))
        truth = d.gradient(e["parameter"]).formula
        assert build._differs(spec, e["claim"], truth, rng), e["id"]


def test_no_false_correct(result):
    """The worst bug a checker can have: a wrong derivation called correct (hard target 0)."""
    bad = [r["id"] for r in result["rows"] if r["expect"] == "wrong" and r["verdict"] == "correct"]
    assert bad == [], f"{len(bad)} wrong entries called correct: {bad[:20]}"


def _figure(result, key):
    return result["figures"][key]


@pytest.mark.xfail(strict=False, reason="notation profiles, align blocks, σ'/g' and matrix forms are "
                   "being added in parallel (issue 11); see bench/verify_corpus.py for the figure")
def test_no_false_wrong_or_error_on_correct_input(result):
    f = result["figures"]
    assert (f["false_wrong"], f["false_error"]) == (0, 0), [
        x for x in result["failures"] if x["expect"] == "correct"][:10]


@pytest.mark.xfail(strict=False, reason="the misconception field on wrong verdicts is being added in "
                   "parallel (issue 11)")
def test_misconception_labels(result):
    assert _figure(result, "labelled_share") >= 0.90


def test_counterexamples_really_differ(result):
    f = result["figures"]
    assert f["counterexamples_differ"] == f["counterexamples_checked"], [
        r["id"] for r in result["rows"] if r.get("cx_checked") and not r["cx_differs"]]


def test_report_figures(result, capsys):
    """Not a target: prints the figures so the test log carries them."""
    f = result["figures"]
    with capsys.disabled():
        print("\nverify corpus:", json.dumps(f))
    assert f["entries"] == f["correct_entries"] + f["wrong_entries"]
