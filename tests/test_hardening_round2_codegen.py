"""Hardening, round two (issue 18), the generated trainer: its own command line follows the
rules of ``backprop train`` (items 12, 7, 9), and a path in the header can never become a
PEP 263 encoding declaration (item 13).

Each trainer is rendered into a scratch folder and run as a script with ``subprocess`` (the
way a user runs it), or imported."""
from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tokenize

import numpy as np
import pytest

from backprop.codegen import render_trainer
from backprop.derive import make_spec

#: The notes' table: two features and a target, three rows.
NOTES_CSV = "iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n"
#: PEP 263: a comment like this on line 1 or 2 sets the file's source encoding.
CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


@pytest.fixture
def trainer(tmp_path):
    """The 2-2-1 linear se trainer as a file in a scratch folder (run as a script)."""
    path = tmp_path / "trainer.py"
    path.write_text(render_trainer(make_spec("2-2-1", "linear", "se")), encoding="utf-8")
    return path


def _import(path, name):
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    """The same trainer, imported once (its main() is the script's)."""
    path = tmp_path_factory.mktemp("round2") / "trainer.py"
    path.write_text(render_trainer(make_spec("2-2-1", "linear", "se")), encoding="utf-8")
    return _import(path, "round2_trainer")


def script(trainer, *args, data=NOTES_CSV):
    """(exit status, stdout, stderr) of ``python trainer.py --data d.csv ARGS`` in its folder."""
    folder = trainer.parent
    if data is not None:
        (folder / "d.csv").write_text(data, encoding="utf-8")
    done = subprocess.run([sys.executable, str(trainer), "--data", "d.csv", *args], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def run(module, tmp_path, monkeypatch, capsys):
    """Like :func:`script`, in-process in tmp_path: main(["--data", "d.csv", *args])."""
    monkeypatch.chdir(tmp_path)

    def go(*args, data=NOTES_CSV):
        if data is not None:
            (tmp_path / "d.csv").write_text(data, encoding="utf-8")
        try:
            status = module.main(["--data", "d.csv", *args])
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return go


def one_line(err: str) -> str:
    """The single line of a refusal (fails on a traceback or a usage block)."""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- item 12: diverging training writes nothing ---------------------------------------------------

def test_diverging_training_is_refused_and_writes_no_parameters(trainer):
    # unscaled inputs (iq ~ 100) and lr 1: the first update overshoots, the loss overflows
    status, out, err = script(trainer, "--epochs", "200", "--lr", "1", "--seed", "0", "--out", "p.json")
    assert status == 2
    line = one_line(err)
    assert "diverged" in line and "smaller --lr" in line and "not written" in line
    assert not (trainer.parent / "p.json").exists()


def test_diverging_training_leaves_an_existing_file_alone(run, tmp_path):
    before = '{"W1": "mine"}\n'
    (tmp_path / "p.json").write_text(before)
    status, _, err = run("--epochs", "200", "--lr", "1", "--out", "p.json", "--force")
    assert status == 2 and "diverged" in one_line(err)
    assert (tmp_path / "p.json").read_text() == before


def test_converging_training_writes_finite_strict_json(run, tmp_path):
    status, out, err = run("--epochs", "20", "--lr", "1e-5", "--seed", "0", "--out", "p.json")
    assert status == 0, err
    text = (tmp_path / "p.json").read_text()
    model = json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in the JSON"))
    params = model["params"]  # a model file (issue 13): backprop's format
    assert set(params) == {"W1", "b1", "W2", "b2"}
    assert np.isfinite(np.array(params["W1"])).all() and np.array(params["W1"]).shape == (2, 2)


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_a_nan_or_infinite_cell_names_file_line_and_column(run, cell):
    status, out, err = run("--epochs", "2", data=f"iq,cgpa,package\n80,8,5\n60,{cell},3\n")
    assert status == 2 and out == ""
    line = one_line(err)
    assert "d.csv line 3" in line and "column 'cgpa'" in line and "not a finite number" in line


@pytest.mark.parametrize("cell, words", [("abc", "'abc' is not a number"), ("", "empty cell")])
def test_a_cell_that_is_not_a_number_names_file_line_and_column(run, cell, words):
    status, _, err = run("--epochs", "2", data=f"iq,cgpa,package\n80,8,5\n\n60,7,{cell}\n")
    assert status == 2
    line = one_line(err)
    assert "d.csv line 4" in line and "column 'package'" in line and words in line


@pytest.mark.parametrize("data, words", [("", "is empty"), ("iq,cgpa,package\n\n", "at least one data row"),
                                         ("iq,cgpa,package\n80,8\n", "line 2 (data row 1): 2 cells but the header has 3")])
def test_an_empty_or_ragged_table_is_one_line(run, data, words):
    status, out, err = run("--epochs", "2", data=data)
    assert status == 2 and out == "" and words in one_line(err)


@pytest.mark.parametrize("lr", ["nan", "inf", "-inf", "0", "-0.01"])
def test_lr_must_be_finite_and_positive(run, tmp_path, lr):
    status, out, err = run("--epochs", "2", f"--lr={lr}", "--out", "p.json")
    assert status == 2 and out == ""  # refused before any epoch
    assert "--lr must be a finite number > 0" in one_line(err)
    assert not (tmp_path / "p.json").exists()


def test_negative_seed_is_one_line(run):
    status, out, err = run("--epochs", "2", "--seed", "-1")
    assert status == 2 and out == ""
    assert "--seed must be 0 or more" in one_line(err)


def test_usage_errors_are_one_line(run):
    status, _, err = run("--epochs", "two")
    assert status == 2 and "--epochs" in one_line(err)
    status, _, err = run("--epochs", "0")
    assert status == 2 and "at least 1" in one_line(err)


# -- item 12: --out is checked before training ------------------------------------------------------

@pytest.mark.parametrize("out, words", [
    (".", "is a folder"),
    ("sub", "is a folder"),
    ("missing/p.json", "folder"),
])
def test_out_that_cannot_be_written_is_refused_before_training(run, tmp_path, out, words):
    (tmp_path / "sub").mkdir()
    status, stdout, err = run("--epochs", "2", "--out", out)
    assert status == 2 and stdout == ""  # no epoch ran
    line = one_line(err)
    assert words in line and out in line
    assert not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "sub"]


def test_out_naming_the_data_file_is_refused_even_with_force(run, tmp_path):
    status, stdout, err = run("--epochs", "2", "--out", "./d.csv", "--force")
    assert status == 2 and stdout == "" and "is the data file" in one_line(err)
    assert (tmp_path / "d.csv").read_text() == NOTES_CSV


def test_out_in_an_unwritable_folder_is_refused_before_training(run, module, tmp_path, monkeypatch):
    """The probe file cannot be created (a read-only folder; root may write anywhere, so the
    refusal is simulated): one line, no epoch run, nothing written."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(module.tempfile, "mkstemp", refuse)
    status, out, err = run("--out", "p.json")
    assert status == 2 and out == ""
    assert "cannot write --out p.json" in one_line(err) and "Permission denied" in err
    assert not (tmp_path / "p.json").exists()


# -- item 7: devices and pipes are refused, files are streamed --------------------------------------

def test_a_device_as_data_is_refused_without_reading_it(trainer):
    done = subprocess.run([sys.executable, str(trainer), "--data", "/dev/zero", "--epochs", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a regular file" in one_line(done.stderr)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_as_data_is_refused_without_opening_it(run, tmp_path):
    os.mkfifo(tmp_path / "d.csv")  # opening it for reading would wait for a writer
    status, _, err = run("--epochs", "1", data=None)
    assert status == 2 and "not a regular file" in one_line(err)


@pytest.mark.parametrize("missing, words", [("nothing.csv", "does not exist"), (".", "folder")])
def test_missing_data_or_a_folder_is_one_line(trainer, missing, words):
    done = subprocess.run([sys.executable, str(trainer), "--data", missing], cwd=trainer.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and words in one_line(done.stderr)


def test_reading_in_blocks_gives_the_whole_table_and_true_line_numbers(module, tmp_path):
    """More rows than one block holds: the values are exactly the file's, in order, and a bad
    cell in a later block is reported at its own line (blank lines counted)."""
    n = 2 * module._BLOCK_ROWS + 7
    rows = np.random.default_rng(0).normal(size=(n, 3)).round(6)
    text = "a,b,y\n" + "".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows)
    path = tmp_path / "many.csv"
    path.write_text(text)
    X, Y = module._read_csv(str(path), None)
    np.testing.assert_array_equal(X, rows[:, :2])
    np.testing.assert_array_equal(Y, rows[:, 2:])
    bad = n - 3  # a row in the last block
    lines = text.splitlines()
    lines[bad + 1] = "1,nan,2"
    path.write_text("\n".join(lines[:5] + [""] + lines[5:]) + "\n")  # one blank line early on
    with pytest.raises(ValueError, match=rf"many.csv line {bad + 3} \(data row {bad + 1}\), column 'b'"):
        module._read_csv(str(path), None)


# -- item 13: no path becomes an encoding declaration -------------------------------------------------

SPELLINGS = ["coding:utf-7", "coding: latin-1", "-*- coding: utf-16 -*-", "vim: set fileencoding=utf-7 :"]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("where", ["output", "spec"])
def test_a_coding_pattern_in_a_path_stays_a_comment(tmp_path, monkeypatch, cli, spelling, where):
    monkeypatch.chdir(tmp_path)
    spec = "net.toml"
    out = "trainer.py"
    if where == "spec":
        spec = f"x {spelling}.toml"
    else:
        out = f"x {spelling}.py"
    (tmp_path / spec).write_text('layers = [2, 2, 1]\nactivations = ["tanh", "linear"]\nloss = "se"\n')
    status, _, err = cli("generate", "--spec", spec, "-o", out)
    assert status == 0, err
    raw = (tmp_path / out).read_bytes()
    first_two = raw.decode("utf-8").splitlines()[:2]
    assert not any(CODING_COOKIE.match(line) for line in first_two), first_two
    with open(tmp_path / out, "rb") as fh:
        assert tokenize.detect_encoding(fh.readline)[0] == "utf-8"
    compile(raw, out, "exec")  # bytes: Python picks the encoding from the file itself
    module = _import(tmp_path / out, f"round2_coding_{where}_{SPELLINGS.index(spelling)}")
    assert "Ŷ" in module.__doc__  # non-ASCII text read as UTF-8, not garbled
    command = shlex.join(["backprop", "generate", "--spec", spec, "-o", out])
    assert f"#     {command}" in raw.decode("utf-8").splitlines()[:12]
    params = module.init_params(scheme="ones")
    np.testing.assert_allclose(module.forward(params, [[0.0, 0.0]]), [[0.0]])
