"""Hardening: nothing lost.  Every output goes through one atomic writer (temporary file in the
same folder, then a rename), honours the umask like a plain ``open()``, never replaces a file
without --force, and leaves the previous file intact and no temporary behind when the write
fails half-way (disk full, a failing rename, Ctrl-C).  ``train --resume`` continues a run."""
from __future__ import annotations

import errno
import json
import os
import stat

import numpy as np
import pytest

from backprop.core import files
from backprop.core.errors import UserError
from backprop.core.files import write_atomic
from backprop.train import runner

PREVIOUS = "previous contents\n"


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


# -- the one writer ------------------------------------------------------------------------------

def test_one_atomic_writer_in_the_package():
    """core/files.py's write_atomic is the one writer: write() delegates to it, and no other
    module of the package makes its own temporary file and rename (the generated trainers'
    template, standalone by design, and the corpus build script aside)."""
    import inspect
    from pathlib import Path

    assert "write_atomic" in inspect.getsource(files.write)
    root = Path(files.__file__).resolve().parents[1]
    others = [p for folder in ("cli", "core", "derive", "explain", "train", "verify", "codegen", "package")
              for p in (root / folder).rglob("*.py")
              if p.name != "build.py" and p != Path(files.__file__).resolve()]
    assert len(others) > 30
    for path in others:
        source = path.read_text(encoding="utf-8")
        assert "mkstemp" not in source and "os.replace" not in source, path


@pytest.mark.parametrize("data", ["text ü\n", b"\x89PNG bytes"])
def test_new_file_gets_umask_permissions(tmp_path, umask_027, data):
    """mkstemp creates 0600; the written file must have 0666 & ~umask like open() gives."""
    out = write_atomic(tmp_path / "out.txt", data)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert (out.read_bytes() if isinstance(data, bytes) else out.read_text(encoding="utf-8")) == data
    assert _leftovers(tmp_path) == []


def test_umask_022_gives_0644(tmp_path):
    old = os.umask(0o022)
    try:
        out = files.write(tmp_path / "p.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_existing_file_needs_force(tmp_path):
    target = tmp_path / "params.json"
    target.write_text(PREVIOUS)
    with pytest.raises(UserError, match="already exists; pass --force"):
        write_atomic(target, "new")
    assert target.read_text() == PREVIOUS
    write_atomic(target, "new", force=True)
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_directory_and_missing_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        write_atomic(tmp_path, "x", force=True)
    with pytest.raises(UserError, match="does not exist"):
        write_atomic(tmp_path / "no" / "such" / "f.txt", "x")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where, exc", [
    ("fsync", OSError(errno.ENOSPC, "No space left on device")),
    ("replace", OSError(errno.EXDEV, "rename failed")),
    ("replace", KeyboardInterrupt()),
    ("fdopen_write", OSError(errno.ENOSPC, "No space left on device")),
])
def test_failure_midway_keeps_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch, where, exc):
    target = tmp_path / "trainer.py"
    target.write_text(PREVIOUS)

    def boom(*args, **kwargs):
        raise exc

    if where == "fdopen_write":
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *info):
                self.fh.close()

            def fileno(self):
                return self.fh.fileno()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])  # half of it lands, then the disk is full
                self.fh.flush()
                _disk_full()

        monkeypatch.setattr(files.os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    else:
        monkeypatch.setattr(files.os, where, boom)
    with pytest.raises(type(exc)):
        write_atomic(target, "new contents that never land\n" * 100, force=True)
    monkeypatch.undo()
    assert target.read_text() == PREVIOUS
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["trainer.py"]


def test_generate_cli_disk_full_keeps_module(tmp_path, monkeypatch, cli):
    target = tmp_path / "trainer.py"
    assert cli("generate", "-o", str(target))[0] == 0
    before = target.read_text()
    status, out, err = cli("generate", "--layers", "2-3-1", "-o", str(target))
    assert status == 2 and "already exists; pass --force" in err and err.count("\n") == 1
    monkeypatch.setattr(files.os, "fsync", _disk_full)
    with pytest.raises(OSError):
        cli("generate", "--layers", "2-3-1", "-o", str(target), "--force")
    assert target.read_text() == before and _leftovers(tmp_path) == []


# -- training outputs ----------------------------------------------------------------------------

def _csv(tmp_path):
    path = tmp_path / "data.csv"
    rows = ["a,b,y"] + [f"{i % 5},{(3 * i) % 7},{(i % 5) + 0.5 * ((3 * i) % 7)}" for i in range(20)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_outputs_atomic_with_umask_and_force(tmp_path, cli, umask_027):
    data = _csv(tmp_path)
    outs = {"--params-out": tmp_path / "p.json", "--history": tmp_path / "h.csv"}
    args = ["train", "--data", str(data), "--target", "y", "--layers", "2-2-1", "--epochs", "3",
            "--seed", "0", "-q"]
    for flag, path in outs.items():
        args += [flag, str(path)]
    status, out, err = cli(*args)
    assert status == 0, err
    for path in outs.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    before = {p: p.read_bytes() for p in outs.values()}
    status, out, err = cli(*args)
    assert status == 2 and "already exists; pass --force" in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in outs.values()} == before
    assert _leftovers(tmp_path) == []


def test_plot_output_atomic(tmp_path, cli, monkeypatch):
    pytest.importorskip("matplotlib")
    data = _csv(tmp_path)
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"old png")
    base = ["train", "--data", str(data), "--target", "y", "--layers", "2-2-1", "--epochs", "2",
            "-q", "--plot", str(plot)]
    assert cli(*base)[0] == 2 and plot.read_bytes() == b"old png"
    monkeypatch.setattr(files.os, "replace", _disk_full)
    status, out, err = cli(*base, "--force")  # a late failure: one line, the plot kept elsewhere
    assert status == 2 and err.count("\n") == 1 and "No space left on device" in err
    kept = err.split("the result is kept in ")[1].strip()
    assert files.is_png(open(kept, "rb").read())
    os.unlink(kept)
    assert plot.read_bytes() == b"old png" and _leftovers(tmp_path) == []


def test_ctrl_c_during_training_keeps_previous_params(tmp_path, cli, monkeypatch):
    """KeyboardInterrupt from the epoch callback: exit 130, previous params untouched."""
    data = _csv(tmp_path)
    params = tmp_path / "p.json"
    args = ["train", "--data", str(data), "--target", "y", "--layers", "2-2-1", "--epochs", "5",
            "--seed", "1", "-q", "--params-out", str(params)]
    assert cli(*args)[0] == 0
    before = params.read_text()

    real_fit = runner.fit

    def interrupted_fit(*a, **k):
        class Bar:
            def update(self, epoch, loss):
                if epoch == 3:
                    raise KeyboardInterrupt

            def close(self):
                pass

        k["progress"] = Bar()
        return real_fit(*a, **k)

    monkeypatch.setattr(runner, "fit", interrupted_fit)
    status, out, err = cli(*args, "--force", "--epochs", "50")
    assert status == 130 and "interrupted" in err and "Traceback" not in err
    assert params.read_text() == before and _leftovers(tmp_path) == []


def test_resume_continues_from_saved_parameters(tmp_path, cli):
    """3 epochs + resume 3 epochs == 6 epochs in one go (batch GD is deterministic)."""
    data = _csv(tmp_path)
    base = ["train", "--data", str(data), "--target", "y", "--layers", "2-2-1", "--seed", "0",
            "--gd", "batch", "--lr", "0.01", "-q"]
    p3, p6, p33 = (tmp_path / n for n in ("p3.json", "p6.json", "p33.json"))
    assert cli(*base, "--epochs", "3", "--params-out", str(p3))[0] == 0
    assert cli(*base, "--epochs", "6", "--params-out", str(p6))[0] == 0
    status, out, err = cli(*base, "--epochs", "3", "--resume", str(p3), "--params-out", str(p33))
    assert status == 0, err
    a, b = json.loads(p6.read_text())["params"], json.loads(p33.read_text())["params"]
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.array(b[k]), np.array(a[k]), rtol=1e-12, atol=1e-14)
    # resuming into the same file with --force replaces it only after the run
    status, out, err = cli(*base, "--epochs", "1", "--resume", str(p33), "--params-out", str(p33), "--force")
    assert status == 0, err
    assert json.loads(p33.read_text())["params"].keys() == a.keys()


# -- the generated trainer's own --out -----------------------------------------------------------

def _standalone(tmp_path):
    import importlib.util

    from backprop.codegen import render_trainer
    from backprop.derive import make_spec

    path = tmp_path / "trainer.py"
    path.write_text(render_trainer(make_spec("2-2-1", "tanh", "se")), encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location("hardening_standalone", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_generated_main_out_is_atomic_with_force_and_umask(tmp_path, monkeypatch, umask_027, capsys):
    module = _standalone(tmp_path)
    data = _csv(tmp_path)
    out = tmp_path / "p.json"
    assert module.main(["--data", str(data), "--epochs", "2", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    before = out.read_text()
    # an existing --out needs --force, checked before training
    with pytest.raises(SystemExit) as exc:
        module.main(["--data", str(data), "--epochs", "2", "--seed", "3", "--out", str(out)])
    assert exc.value.code == 2 and "already exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == before
    # disk full / failing rename with --force: previous file intact, no temporary left
    for name, fail in (("replace", OSError(errno.EXDEV, "rename failed")),
                       ("fdopen", OSError(errno.ENOSPC, "No space left on device"))):
        def boom(*a, _fail=fail, **k):
            raise _fail

        monkeypatch.setattr(module.os, name, boom)
        with pytest.raises(OSError):
            module.main(["--data", str(data), "--epochs", "2", "--seed", "3", "--out", str(out), "--force"])
        monkeypatch.undo()
        assert out.read_text() == before and _leftovers(tmp_path) == []
    assert module.main(["--data", str(data), "--epochs", "2", "--seed", "3", "--out", str(out), "--force"]) == 0
    assert out.read_text() != before
