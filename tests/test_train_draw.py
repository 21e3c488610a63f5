"""`backprop draw`: the notes' diagram, with one row's values and gradients from the trainer."""
import json

import numpy as np
import pytest

from backprop.derive import make_spec
from backprop.train import draw, runner

PNG = b"\x89PNG\r\n\x1a\n"


def test_structure_only(cli, tmp_path):
    status, out, err = cli("draw", "-o", str(tmp_path / "net.png"))
    assert status == 0, err
    assert (tmp_path / "net.png").read_bytes()[:8] == PNG


def test_values_and_gradients_of_the_notes_first_student(cli, tmp_path):
    status, out, err = cli("draw", "--x", "80,8", "--y", "5", "-o", str(tmp_path / "step.png"))
    assert status == 0, err
    spec = make_spec("2-2-1", "linear", "se")
    trainer = runner.load_trainer(spec)
    v = draw.compute(trainer, trainer.init_params(scheme="ones"), np.array([80.0, 8]), np.array([5.0]))
    # w = 1, b = 0: O_11 = O_12 = 88, ŷ = 176, L = (5 - 176)², ∂L/∂w^2_11 = -2(y-ŷ)·O_11
    assert v.nodes["O1"].tolist() == [88, 88] and v.nodes["O2"].tolist() == [176]
    assert v.loss == (5 - 176) ** 2
    assert v.grads["W2"][0, 0] == -2 * (5 - 176) * 88


def test_params_file_and_svg(cli, tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"W1": [[1, -2], [0.5, 1]], "b1": [0, 1], "W2": [[1], [-1]], "b2": [0]}))
    status, out, err = cli("draw", "--params", str(p), "-o", str(tmp_path / "net.svg"))
    assert status == 0, err
    assert b"<svg" in (tmp_path / "net.svg").read_bytes()[:500]


def test_refuses_more_than_40_nodes(cli, tmp_path):
    status, out, err = cli("draw", "--layers", "784-16-10", "-o", str(tmp_path / "big.png"))
    assert status == 2 and "810 nodes" in err and "up to 40" in err
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--x", "80"], "--x has 1 value(s); the network needs 2"),
    (["--x", "80,abc"], "--x takes numbers"),
    (["--y", "5"], "--y needs the row's inputs"),
    (["-o", "net.gif"], "image format"),
])
def test_bad_arguments(cli, tmp_path, args, words):
    if "-o" not in args:
        args = args + ["-o", str(tmp_path / "n.png")]
    status, _, err = cli("draw", *args)
    assert status == 2 and words in err


def test_wide_net_draws_without_edge_labels(cli, tmp_path):
    status, out, err = cli("draw", "--layers", "6-8-8-2", "--activations", "relu,relu,softmax",
                           "--loss", "cce", "--init", "he", "--seed", "0", "-o", str(tmp_path / "w.png"))
    assert status == 0, err

