"""`backprop vanishing`: sigmoid starves the first layer, ReLU with He initialisation does not."""
import json

import pytest

from backprop.train import vanishing

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs():
    return {(r.activation, r.init): r for r in vanishing.run_all(
        "2-8-8-8-8-8-1", ["sigmoid", "tanh", "relu"], ["glorot", "he"], epochs=5, seed=0)}


def test_sigmoid_first_layer_gradient_is_10x_smaller_than_last(runs):
    for init in ("glorot", "he"):
        norms = runs["sigmoid", init].history.grad_norms[0]
        assert norms[0] * 10 <= norms[-1], norms
        # and it shrinks layer by layer towards the input
        assert all(a < b for a, b in zip(norms, norms[1:])), norms


def test_relu_with_he_init_keeps_layers_within_10x(runs):
    norms = runs["relu", "he"].history.grad_norms[0]
    assert max(norms) / min(norms) <= 10, norms
    assert 0.1 <= runs["relu", "he"].ratio <= 10


def test_fewer_layers_remedy(runs):
    shallow = vanishing.run_all("2-8-1", ["sigmoid"], ["glorot"], epochs=1, seed=0)[0]
    assert shallow.ratio > 10 * runs["sigmoid", "glorot"].ratio


def test_small_init_starves_every_layer_even_with_relu(runs):
    run = vanishing.run_all("2-8-8-8-8-8-1", ["relu"], ["small"], epochs=1, seed=0)[0]
    assert max(run.history.grad_norms[0]) < 1e-6 * min(runs["relu", "he"].history.grad_norms[0])
    assert "every layer" in vanishing.verdict(run)


def test_command_table_json_and_plot(cli, tmp_path):
    png = tmp_path / "grads.png"
    status, out, err = cli("vanishing", "--layers", "2-8-8-8-8-8-1", "--activations", "sigmoid",
                           "--epochs", "3", "--plot", str(png))
    assert status == 0, err
    assert "| sigmoid    | glorot |" in out and "| relu       | he     |" in out  # relu added
    assert "sigmoid + glorot: layer 1 gets" in out and "vanishing" in out
    assert png.read_bytes()[:8] == PNG
    status, out, err = cli("vanishing", "--activations", "tanh,relu", "--init", "he",
                           "--epochs", "2", "--json")
    data = json.loads(out)
    assert [(r["activation"], r["init"]) for r in data["runs"]] == [("tanh", "he"), ("relu", "he")]
    assert len(data["runs"][0]["first_epoch"]) == 6


def test_command_refuses_a_net_without_hidden_layers(cli):
    status, _, err = cli("vanishing", "--layers", "2-1")
    assert status == 2 and "need hidden layers" in err
    status, _, err = cli("vanishing", "--init", "lecun")
    assert status == 2 and "unknown initialisation 'lecun'" in err



def test_unknown_plot_suffix_is_refused_before_the_runs(cli, monkeypatch):
    import backprop.train.vanishing as vanishing

    monkeypatch.setattr(vanishing, "run_all", lambda *a, **k: pytest.fail("ran before refusing the plot name"))
    status, out, err = cli("vanishing", "--layers", "2-3-1", "--plot", "grads.gif")
    assert status == 2 and err.count("\n") == 1 and ".png, .svg, .pdf" in err
