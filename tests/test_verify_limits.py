"""verify's inputs are small by nature: a LaTeX file over 500 kB or with more than 2 000
equations is one line and exit 2 before any work (issue 18 items 7 and 8); a long input
reports progress to a callback (the CLI shows it on a terminal)."""
from __future__ import annotations

import io
import sys

import pytest

from backprop.derive import UserError
from backprop.verify import MAX_EQUATIONS, MAX_TEX_BYTES, check_document, read_tex


def test_a_tex_file_over_the_cap_is_refused_before_reading_it_whole(tmp_path, cli):
    big = tmp_path / "big.tex"
    big.write_bytes(b"y" * (MAX_TEX_BYTES + 1))
    status, out, err = cli("verify", str(big))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "over 500 kB" in err and "split it" in err


def test_a_device_is_not_read(cli):
    with pytest.raises(UserError, match="is a device"):
        read_tex("/dev/zero")
    status, _, err = cli("verify", "/dev/zero")
    assert status == 2 and err.count("\n") == 1


def test_standard_input_over_the_cap_is_refused(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"y = 1\n" * (MAX_TEX_BYTES // 6 + 1))))
    status, _, err = cli("verify", "-")
    assert status == 2 and "standard input is over 500 kB" in err


def test_too_many_equations_is_one_line_before_checking_any(tmp_path, cli, monkeypatch):
    import backprop.verify as verify

    many = tmp_path / "many.tex"
    many.write_text("\n".join(f"y = {k}" for k in range(MAX_EQUATIONS + 1)))
    monkeypatch.setattr(verify, "Checker", lambda *a, **k: pytest.fail("checked before refusing"))
    status, _, err = cli("verify", str(many))
    assert status == 2 and f"{MAX_EQUATIONS + 1:,} equations" in err


def test_progress_is_reported_after_every_equation():
    seen = []
    report = check_document("\n".join(f"L = (y - \\hat{{y}})^{{2}} + {k} - {k}" for k in range(5)),
                            progress=lambda done, total: seen.append((done, total)))
    assert [v.verdict for v in report.verdicts] == ["correct"] * 5
    assert seen == [(k, 5) for k in range(1, 6)]
