"""Hardening, round two (issue 18, items 7, 8, 10, 11, 14, 15): files, data, outputs, signals.

Small-by-nature files are read up to a limit, the CSV is streamed, the duplicate-column check
is one pass, every output is checked (aliases, writable folder) before the work and kept
somewhere after a late failure, a new file is never published over one that appeared
meanwhile, SIGTERM/SIGHUP clean up like Ctrl-C, and stderr/JSON/image outputs are what they
say they are."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from backprop.core import files
from backprop.core.errors import UserError
from backprop.core.files import write_atomic
from backprop.core.userfile import read_text
from backprop.derive import make_spec
from backprop.train import data, runner

from backprop.cli.params import load_params, max_params_bytes

ROWS = "a,b,y\n" + "".join(f"{i % 5},{(3 * i) % 7},{(i % 5) + 0.5 * ((3 * i) % 7)}\n" for i in range(20))


def _csv(tmp_path, text=ROWS, name="d.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _train(path, *extra):
    return ("train", "--data", str(path), "--target", "y", "--layers", "2-2-1", "--epochs", "2",
            "--seed", "0", "-q", *extra)


def _one_line(err: str) -> bool:
    return err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err


def _no_training(monkeypatch):
    """Make any training fail loudly: the checks under test must come before it."""
    def fit(*a, **k):
        raise AssertionError("training started before the outputs were checked")
    monkeypatch.setattr(runner, "fit", fit)


# -- 7. files small by nature are capped; data is streamed ----------------------------------------

def test_params_file_over_the_limit_is_one_line_naming_it(tmp_path, cli):
    spec = make_spec("2-2-1", "linear", "se")
    assert max_params_bytes(spec) == 1_000_000 + 256 * 9
    big = tmp_path / "p.json"
    big.write_text(" " * 2_000_000 + "{}")  # valid JSON, but no params file is this big
    data_path = _csv(tmp_path)
    status, out, err = cli(*_train(data_path, "--resume", str(big)))
    assert status == 2 and _one_line(err)
    assert "params file" in err and "over 1.002 MB" in err and "2-2-1 network (9 numbers)" in err


def test_params_limit_grows_with_the_network(tmp_path):
    """A real params file of a big network is read: the limit is per parameter."""
    spec = make_spec("30-200-200-1", "tanh", "se")
    params = {k: np.full(shape, 0.123456789012345) for k, shape in spec.shapes().items()}
    path = tmp_path / "p.json"
    files.write_json(path, {k: v.tolist() for k, v in params.items()})
    assert path.stat().st_size > 1_000_000
    loaded = load_params(path, spec)
    assert all(np.array_equal(loaded[k], params[k]) for k in params)


def test_capped_reader_reads_at_most_the_limit(tmp_path, monkeypatch):
    """The reusable reader for .tex/spec/params files: it never asks for more than limit + 1."""
    path = tmp_path / "notes.tex"
    path.write_text("x" * 5000)
    asked = []
    real_open = Path.open

    def spy_open(self, *a, **k):
        fh = real_open(self, *a, **k)
        real_read = fh.read

        class Spy:
            def __enter__(self):
                return self

            def __exit__(self, *info):
                fh.close()

            def read(self, n=-1):
                asked.append(n)
                return real_read(n)
        return Spy()

    monkeypatch.setattr(Path, "open", spy_open)
    with pytest.raises(UserError, match=r"LaTeX file .*notes.tex is over 1 kB; one derivation"):
        read_text(path, "LaTeX file", 1000, "one derivation is a few kB")
    assert asked == [1001]


def test_pipe_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is a pipe, not a file"):
        read_text(fifo, "params file", 1000)


def _table(path, n_rows, seed=0):
    rng = np.random.default_rng(seed)
    np.savetxt(path, np.round(rng.standard_normal((n_rows, 5)), 6), delimiter=",", fmt="%.6f",
               header="a,b,c,d,y", comments="")
    return path


def test_csv_memory_stays_near_the_arrays_not_several_times_the_file(tmp_path, monkeypatch):
    """A 10 MB table: the peak of traced memory while loading is under 2.5x the arrays returned
    (the file read whole plus two byte masks made it 3.5x and more)."""
    monkeypatch.setattr(data, "CHUNK", 1 << 18)
    path = _table(tmp_path / "big.csv", 200_000)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        ds = data.load_csv(path, "y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = ds.X.nbytes + ds.Y.nbytes
    assert 0.8 * size < arrays < 1.2 * size
    assert peak < 2.5 * arrays, (peak, arrays)
    want = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(ds.X, want[:, :4])
    np.testing.assert_array_equal(ds.Y, want[:, 4:])
    assert ds.X.flags.c_contiguous and ds.Y.flags.c_contiguous


@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])
def test_streamed_shape_check_names_the_same_line_whatever_the_block_size(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(data, "CHUNK", chunk)
    lines = ["a,b,y"] + [f"{i},{i + 1},{i + 2}" for i in range(40)]
    lines[30] = "1,2"  # file line 31
    lines.insert(10, "")  # a blank line: file line 11, so the short row is now line 32
    path = _csv(tmp_path, "\r\n".join(lines) + "\r\n")
    with pytest.raises(UserError, match=r"line 32 \(data row 30\): 2 cells but the header has 3"):
        data.load_csv(path, "y")
    lines[31] = "1,2,3"
    ds = data.load_csv(_csv(tmp_path, "\n".join(lines)), "y")  # no final newline
    assert ds.n_rows == 40 and ds.X[-1].tolist() == [39, 40]


@pytest.mark.parametrize("n_features", [1, 3])
def test_packing_features_in_place_keeps_every_value(n_features):
    rng = np.random.default_rng(n_features)
    block = rng.standard_normal((3 * (1 << 20) // 4 + 17, 4))  # several packing pieces
    want_X, want_Y = block[:, :n_features].copy(), block[:, n_features:].copy()
    X, Y = data._split_columns(block, n_features)
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(Y, want_Y)
    assert X.flags.c_contiguous and X.shape == want_X.shape


# -- 8. duplicate columns in one pass -------------------------------------------------------------

def test_duplicate_column_check_is_one_pass_over_100000_columns(tmp_path):
    """No per-name scan of the header (list.count made it quadratic: two minutes)."""
    names = [f"c{i}" for i in range(100_000)]
    names[-1] = "c7"
    path = _csv(tmp_path, ",".join(names) + ",y\n" + ",".join(["1"] * 100_001) + "\n")
    counted = []

    def profile(frame, event, arg):
        if event == "c_call" and arg.__name__ == "count" and isinstance(arg.__self__, list):
            counted.append(arg)

    sys.setprofile(profile)
    try:
        with pytest.raises(UserError, match=r"line 1: column name\(s\) c7 appear twice"):
            data.load_csv(path, "y")
    finally:
        sys.setprofile(None)
    assert counted == []


def test_many_duplicates_are_named_briefly(tmp_path):
    names = [f"c{i % 500}" for i in range(1000)]
    with pytest.raises(UserError, match=r"c0, c1, c10, .* and 490 more appear twice") as exc:
        data.load_csv(_csv(tmp_path, ",".join(names) + ",y\n" + "1," * 1000 + "1\n"), "y")
    assert len(str(exc.value)) < 200


# -- 15. a quoted newline in the header -----------------------------------------------------------

def test_quoted_line_break_in_the_header_is_one_line_not_misread(tmp_path, cli):
    path = _csv(tmp_path, '"a\nb",c,y\n1,2,3\n2,3,5\n')
    status, out, err = cli(*_train(path))
    assert status == 2 and _one_line(err) and "runs onto the next line" in err


# -- 10. outputs checked before the work, kept after a late failure -------------------------------

def test_unwritable_output_folder_is_refused_before_training(tmp_path, cli, monkeypatch):
    folder = Path("/sys")  # read-only even for root
    if not folder.is_dir() or os.access(folder, os.W_OK) and _probe_works(folder):
        pytest.skip("no read-only folder here")
    _no_training(monkeypatch)
    status, out, err = cli(*_train(_csv(tmp_path), "--params-out", "/sys/p.json"))
    assert status == 2 and _one_line(err) and "cannot write to output folder /sys" in err


def _probe_works(folder):
    try:
        files.probe(folder)
        return True
    except UserError:
        return False


def test_probe_leaves_nothing_behind(tmp_path):
    files.probe(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_late_write_failure_keeps_the_result_and_says_where(tmp_path, cli, monkeypatch):
    params, history = tmp_path / "p.json", tmp_path / "h.csv"
    real = files.write_atomic

    def refuse_params(path, data, force=False):
        if Path(path) == params:
            raise PermissionError(13, "Permission denied")
        return real(path, data, force)

    monkeypatch.setattr(files, "write_atomic", refuse_params)
    status, out, err = cli(*_train(_csv(tmp_path), "--params-out", str(params),
                                   "--history", str(history)))
    assert status == 2 and _one_line(err)
    assert f"cannot write {params}: Permission denied; the result is kept in " in err
    kept = Path(err.rsplit("the result is kept in ", 1)[1].strip())
    try:
        assert kept.parent == Path(__import__("tempfile").gettempdir())
        saved = json.loads(kept.read_text())["params"]  # the model file, kept whole
        assert set(saved) == {"W1", "b1", "W2", "b2"} and np.array(saved["W1"]).shape == (2, 2)
    finally:
        kept.unlink()
    assert not params.exists()
    assert history.read_text().startswith("epoch,loss,seconds\n0,")  # the other output landed


# -- 11. aliases and races ------------------------------------------------------------------------

@pytest.mark.parametrize("alias", ["sub/../same.json", "link.json"])
def test_two_outputs_that_are_one_file_are_refused(tmp_path, cli, monkeypatch, alias):
    (tmp_path / "sub").mkdir()
    same = tmp_path / "same.json"
    same.write_text("{}\n")
    os.symlink(same, tmp_path / "link.json")
    _no_training(monkeypatch)
    status, out, err = cli(*_train(_csv(tmp_path), "--params-out", str(same),
                                   "--history", str(tmp_path / alias), "--force"))
    assert status == 2 and _one_line(err) and "are the same file" in err
    assert same.read_text() == "{}\n"


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    """Two runs writing one new file: the one that publishes second must not win silently."""
    target = tmp_path / "p.json"
    real_fsync = os.fsync

    def other_run_finishes_first(fd):
        real_fsync(fd)
        target.write_text("the other run's parameters\n")

    monkeypatch.setattr(files.os, "fsync", other_run_finishes_first)
    with pytest.raises(UserError, match="already exists; pass --force"):
        write_atomic(target, "ours\n")
    monkeypatch.undo()
    assert target.read_text() == "the other run's parameters\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_new_file_without_hard_links_is_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    assert write_atomic(tmp_path / "a.txt", "new\n").read_text() == "new\n"
    (tmp_path / "b.txt").write_text("theirs\n")
    with pytest.raises(UserError, match="already exists"):
        files._link_new(str(tmp_path / "a.txt"), tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_text() == "theirs\n"


# -- 14. SIGTERM and SIGHUP clean up like Ctrl-C ---------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_a_write_leaves_no_temporary_and_the_old_file(tmp_path, cli, monkeypatch, sig):
    params = tmp_path / "p.json"
    params.write_text("previous\n")
    real_fsync = os.fsync

    def signalled(fd):
        real_fsync(fd)
        os.kill(os.getpid(), sig)  # the handler raises at the next bytecode

    monkeypatch.setattr(files.os, "fsync", signalled)
    before = signal.getsignal(sig)
    status, out, err = cli(*_train(_csv(tmp_path), "--params-out", str(params), "--force"))
    assert status == 128 + sig and _one_line(err) and signal.Signals(sig).name in err
    assert params.read_text() == "previous\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert signal.getsignal(sig) == before  # the handler is the command's only


def test_sigterm_removes_the_trainer_folder(tmp_path):
    """A real process: killed mid-training, it exits 143 and leaves no temporary folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    proc = subprocess.Popen([sys.executable, "-m", "backprop.cli", "train", "--example",
                             "notes-iq-cgpa", "--epochs", "100000000", "-q"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # until the trainer module is written (then training runs)
            if list(scratch.glob("backprop-trainers-*/*.py")) or proc.poll() is not None:
                break
            __import__("time").sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip() == "backprop train: stopped by SIGTERM"
    assert list(scratch.iterdir()) == []


# -- 15. stderr, JSON and images are what they say ------------------------------------------------

OVERFLOW = ("step", "--x", "1e200,1e200", "--y", "5", "--init", "ones")


def test_numpy_warnings_are_one_line(cli):
    status, out, err = cli(*OVERFLOW)
    assert status == 0
    assert err.count("\n") == 1 and err.startswith("backprop step: warning: overflow encountered")


def test_step_json_is_strict_json_with_null_for_overflow(cli):
    status, out, err = cli(*OVERFLOW, "--json")
    assert status == 0

    def no_constants(name):
        raise AssertionError(f"invalid JSON token {name}")

    report = json.loads(out, parse_constant=no_constants)
    assert report["loss"] is None and "loss" in report["non_finite"]
    assert report["output"] == [4e200] and report["grads"]["W1"][0][0] is None
    status, out, err = cli("step", "--x", "80,8", "--y", "5", "--init", "ones", "--json")
    assert "non_finite" not in json.loads(out, parse_constant=no_constants) and err == ""


def test_write_json_refuses_non_finite_values(tmp_path):
    with pytest.raises(UserError, match="not finite"):
        files.write_json(tmp_path / "p.json", {"W1": [[float("nan")]]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", b"\x89PNG")])
def test_plot_is_written_in_the_format_its_name_says(tmp_path, cli, suffix, magic):
    pytest.importorskip("matplotlib")
    plot = tmp_path / f"loss{suffix}"
    status, out, err = cli(*_train(_csv(tmp_path), "--plot", str(plot)))
    assert status == 0, err
    assert plot.read_bytes().startswith(magic)


@pytest.mark.parametrize("command", ["train", "compare-gd"])
def test_unknown_plot_suffix_is_refused_before_training(tmp_path, cli, monkeypatch, command):
    pytest.importorskip("matplotlib")
    _no_training(monkeypatch)
    status, out, err = cli(command, "--example", "notes-iq-cgpa", "--plot", str(tmp_path / "l.gif"))
    assert status == 2 and _one_line(err) and "end it in .png, .svg, .pdf" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ("train", "--example", "notes-iq-cgpa"),
    ("compare-gd", "--example", "notes-iq-cgpa"),
    ("step", "--x", "1,2", "--y", "3", "--init", "glorot"),
    ("draw", "--init", "glorot", "-o", "net.png"),
])
def test_negative_seed_is_one_line_exit_2(argv, monkeypatch, tmp_path, capsys):
    from backprop.cli.main import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--seed", "-1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and _one_line(err) and "--seed: expected a whole number >= 0" in err
    assert list(tmp_path.iterdir()) == []


def test_compare_gd_json_is_strict_when_a_variant_diverges(cli):
    status, out, err = cli("compare-gd", "--example", "notes-iq-cgpa", "--lr", "50", "--epochs", "5",
                           "--json")
    assert status == 0

    def no_constants(name):
        raise AssertionError(f"invalid JSON token {name}")

    report = json.loads(out, parse_constant=no_constants)
    diverged = [row for row in report["table"] if row["diverged_at"] is not None]
    assert diverged
    for row in diverged:
        assert report["losses"][row["variant"]][row["diverged_at"]] is None
