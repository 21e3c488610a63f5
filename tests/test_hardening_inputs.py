"""Hardening: bad CSV / JSON / TOML inputs.  Each case of ``tests/bad_inputs.py`` exits with
status 2 and exactly one line on stderr (``backprop COMMAND: error: ...``) naming the problem;
``docs/TROUBLESHOOTING.md`` is the same table, generated from the same cases."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import bad_inputs  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "TROUBLESHOOTING.md"


def test_at_least_15_cases_of_each_family():
    kinds = [c.kind for c in bad_inputs.CASES]
    assert len(kinds) >= 15 and {"TOML", "CSV", "JSON"} <= set(kinds) <= {"TOML", "CSV", "JSON", "flags"}
    assert len({c.name for c in bad_inputs.CASES}) == len(kinds)


@pytest.mark.parametrize("case", bad_inputs.CASES, ids=lambda c: f"{c.kind}: {c.name}")
def test_bad_input_exits_2_with_one_line(case):
    status, err = bad_inputs.run_case(case)
    assert status == 2, (case.name, status, err)
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith(f"backprop {case.argv[0]}: error: ")
    assert "Traceback" not in err
    for word in case.expect:
        assert word in err, (word, err)


def test_troubleshooting_doc_is_the_table():
    want = bad_inputs.HEADER + bad_inputs.markdown()
    have = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert have == want, ("docs/TROUBLESHOOTING.md is out of date: "
                          "python tests/bad_inputs.py --markdown > docs/TROUBLESHOOTING.md")
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert want.split("\n", 1)[1].strip() in readme, \
        "README.md's troubleshooting section differs from docs/TROUBLESHOOTING.md: paste it again"


# -- generated bad inputs: whatever the file holds, exit 0 or one line and exit 2 ---------------

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


def _outcome(argv, files):
    case = bad_inputs.Case("generated", "CSV", files, tuple(argv), ())
    status, err = bad_inputs.run_case(case)
    assert status in (0, 2), (status, err)
    if status == 2:
        assert err.count("\n") == 1 and err.startswith(f"backprop {argv[0]}: error: "), repr(err)
    assert "Traceback" not in err
    return status, err


@PROPERTY
@given(st.lists(st.text(min_size=1, max_size=12), min_size=3, max_size=3),
       st.lists(st.lists(st.one_of(st.floats(allow_nan=True), st.text(max_size=4)), min_size=3, max_size=3),
                min_size=0, max_size=5))
def test_any_csv_is_a_run_or_one_line(names, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(names)
    w.writerows(rows)
    _outcome(["train", "--layers", "2-1", "--data", "d.csv", "--target", names[-1].strip() or "y",
              "--epochs", "1", "-q"], {"d.csv": buf.getvalue()})


_toml_value = st.recursive(
    st.one_of(st.integers(-3, 10**20), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
              st.text(max_size=10), st.sampled_from(["sigmoid", "softmax", "se", "cce", "linear"])),
    lambda inner: st.lists(inner, max_size=4), max_leaves=8)


def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(_toml(x) for x in v) + "]"


@PROPERTY
@given(st.dictionaries(st.sampled_from(["layers", "activations", "loss", "bias", "extra"]), _toml_value))
def test_any_spec_is_a_derivation_or_one_line(table):
    text = "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
    _outcome(["derive", "--spec", "net.toml", "--vectorised"], {"net.toml": text})


_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(), st.integers(-10**30, 10**30), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["W1", "b1", "W2", "params", "x"]), inner, max_size=3)),
    max_leaves=10)


@PROPERTY
@given(_json_value)
def test_any_params_json_is_a_run_or_one_line(value):
    text = json.dumps(value) if not (isinstance(value, float) and math.isnan(value)) else "NaN"
    _outcome(list(bad_inputs.RESUME), {"d.csv": bad_inputs.GOOD_CSV, "p.json": text})
