"""Plots are valid PNGs written atomically; without matplotlib, one line saying how to install it."""
import builtins
import json
import os

import pytest

from backprop.core.errors import UserError
from backprop.pictures import plots
from backprop.train.runner import History

PNG = b"\x89PNG\r\n\x1a\n"


def history(gd="batch", n=5):
    h = History(gd=gd, batch_size=None if gd == "batch" else 1, n_rows=n)
    h.losses = [10.0 / (e + 1) for e in range(21)]
    h.seconds = [0.001 * e for e in range(1, 21)]
    h.weights = [[1.0 - 0.01 * e, 0.5 + 0.02 * e] for e in range(21)]
    h.weight_names = ["w^1_11", "w^2_11"]
    h.grad_norms = [[1e-4 * (e + 1), 1.0] for e in range(21)]
    return h


def test_training_plot_is_a_png(tmp_path):
    path = plots.plot_training(history(), tmp_path / "loss.png", title="t")
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5000


def test_compare_plot_is_a_png(tmp_path):
    path = plots.plot_compare({"batch": history(), "sgd": history("sgd")}, tmp_path / "gd.png")
    assert path.read_bytes()[:8] == PNG


def test_vanishing_plot_is_a_png(tmp_path):
    from backprop.train.vanishing import Run
    runs = [Run("sigmoid", "glorot", None, history()), Run("relu", "he", None, history())]
    path = plots.plot_vanishing(runs, tmp_path / "v.png")
    assert path.read_bytes()[:8] == PNG


def test_plot_refuses_to_replace_without_force(tmp_path):
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")
    with pytest.raises(UserError, match="already exists"):
        plots.plot_training(history(), path)
    assert path.read_bytes() == b"old"
    plots.plot_training(history(), path, force=True)
    assert path.read_bytes()[:8] == PNG
    assert os.listdir(tmp_path) == ["loss.png"]


@pytest.fixture
def no_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_matplotlib_is_one_line_with_the_install_command(no_matplotlib, tmp_path):
    with pytest.raises(UserError, match=r"plots need matplotlib: pip install 'backprop\[plot\]'"):
        plots.plot_training(history(), tmp_path / "loss.png")


@pytest.mark.parametrize("command", [
    ["train", "--example", "notes-iq-cgpa", "--plot", "{}"],
    ["compare-gd", "--example", "notes-iq-cgpa", "--plot", "{}"],
    ["vanishing", "--plot", "{}"],
    ["draw", "-o", "{}"],
])
def test_commands_without_matplotlib_fail_before_work(no_matplotlib, cli, tmp_path, command):
    target = str(tmp_path / "out.png")
    status, out, err = cli(*[a.format(target) for a in command])
    assert status == 2 and out == ""
    assert err.strip().endswith("plots need matplotlib: pip install 'backprop[plot]'")
    assert not os.listdir(tmp_path)


def test_training_without_plot_needs_no_matplotlib(no_matplotlib, cli):
    status, out, err = cli("train", "--example", "notes-iq-cgpa", "--json")
    assert status == 0 and json.loads(out)["loss_final"] < 1

