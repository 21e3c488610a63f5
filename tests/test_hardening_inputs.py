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
    assert len(kinds) >= 15 and set(kinds) == {"TOML", "CSV", "JSON"}
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
