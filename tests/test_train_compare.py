"""`backprop compare-gd`: three variants from the same weights, a table and the notes' claims."""
import json

import numpy as np
import pytest

from backprop.derive import make_spec
from backprop.train import compare, runner

PNG = b"\x89PNG\r\n\x1a\n"


def test_compare_table_plot_and_claims(cli, tmp_path):
    png = tmp_path / "gd.png"
    status, out, err = cli("compare-gd", "--example", "notes-cgpa-resume", "--epochs", "100",
                           "--seed", "0", "--plot", str(png), "--json")
    assert status == 0, err
    s = json.loads(out)
    rows = {r["variant"]: r for r in s["table"]}
    assert [r["variant"] for r in s["table"]] == ["batch", "sgd", "minibatch"]
    assert (rows["batch"]["updates_per_epoch"], rows["sgd"]["updates_per_epoch"],
            rows["minibatch"]["updates_per_epoch"]) == (1, 4, 2)
    # same initial weights: every curve starts at the same loss
    starts = {gd: losses[0] for gd, losses in s["losses"].items()}
    assert len(set(starts.values())) == 1
    for gd, losses in s["losses"].items():
        assert losses[-1] < losses[0] and len(losses) == 101
    # SGD makes 4 updates per epoch, so it needs fewer epochs to reach L*
    assert rows["sgd"]["epochs_to_target"] < rows["batch"]["epochs_to_target"]
    assert s["target_loss"] == pytest.approx(max(r["final_loss"] for r in s["table"]))
    assert any(c.startswith('"batch GD is faster"') for c in s["claims"])
    assert any(c.startswith('"SGD converges faster": in epochs TRUE') for c in s["claims"])
    assert png.read_bytes()[:8] == PNG


def test_compare_text_output_is_a_markdown_table(cli):
    status, out, err = cli("compare-gd", "--layers", "3-4-1", "--activations", "tanh,linear",
                           "--rows", "200", "--epochs", "5", "--seed", "1")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[1].startswith("| variant ") and lines[2].startswith("|---")
    assert lines[3].startswith("| batch ") and "| 200 " in lines[3]
    assert "minibatch | 32 " in lines[5] and "| 7 " in lines[5]  # ceil(200/32) updates
    assert sum(line.startswith('"') for line in lines) == 2
    assert lines[-1].startswith("the middle ground: mini-batch (batch size 32)")


def test_diverging_variant_is_reported_not_fatal():
    spec = make_spec("2-2-1", "linear", "se")
    trainer = runner.load_trainer(spec)
    X = np.array([[80.0, 8], [60, 5], [110, 7]])
    Y = np.array([[5.0], [3], [8]])
    runs = compare.compare(trainer, trainer.init_params(scheme="ones"), X, Y, epochs=20, lr=0.01,
                           seed=0)
    assert runs["sgd"].diverged_at is not None
    rows = compare.table(runs)
    claims = compare.verdicts(rows, compare.target_loss(runs))
    assert "diverged" in compare.format_table(rows, compare.target_loss(runs))
    assert "not measurable" in claims[-1]


def test_rows_and_data_are_exclusive(cli, tmp_path):
    status, _, err = cli("compare-gd", "--rows", "10", "--example", "notes-iq-cgpa")
    assert status == 2 and "--rows" in err



def test_wall_clock_ties_within_noise():
    assert compare._judge(1.0, 1.2) == "TIE"
    assert compare._judge(1.0, 2.0) == "TRUE"
    assert compare._judge(2.0, 1.0) == "FALSE"
    assert compare._judge(None, 1.0) == "FALSE" and compare._judge(1.0, None) == "TRUE"
