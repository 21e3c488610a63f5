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
    rows = [[c.strip() for c in line.split("|")[1:3]] for line in out.splitlines() if line.startswith("| ")]
    assert ["sigmoid", "glorot"] in rows and ["relu", "he"] in rows  # relu added
    assert "sigmoid, glorot init: layer 1 gets" in out and "vanishing" in out
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


@pytest.fixture(scope="module")
def trained():
    """20 epochs: long enough for the sigmoid net to settle on the mean."""
    return {(r.activation, r.init): r for r in vanishing.run_all(
        "2-8-8-8-8-8-1", ["sigmoid", "relu"], ["glorot", "he"], epochs=20, seed=0)}


def test_sigmoid_collapses_to_the_mean_and_relu_does_not(trained):
    X, Y = vanishing.dataset(2, 1, 256, 0)
    for init in ("glorot", "he"):
        run = trained["sigmoid", init]
        assert run.collapsed
        assert run.mean_loss == pytest.approx(float(Y.var()))  # loss se of always predicting mean(Y)
        assert run.history.losses[-1] == pytest.approx(run.mean_loss, rel=0.01)
        assert run.pred_std[0] < 0.01 * run.target_std[0]
        note = vanishing.collapse_note(run)
        assert note.startswith(f"sigmoid, {init} init: collapsed to the mean") and "0.2306" in note
    for init in ("glorot", "he"):
        run = trained["relu", init]
        assert not run.collapsed and vanishing.collapse_note(run) is None
        assert run.pred_std[0] > 0.5 * run.target_std[0]
        assert run.history.losses[-1] < 0.5 * run.mean_loss


def test_collapse_needs_both_flat_predictions_and_the_mean_loss(trained):
    import dataclasses
    run = trained["sigmoid", "glorot"]
    spread = dataclasses.replace(run, pred_std=[0.1 * run.target_std[0]])
    assert not spread.collapsed  # predictions vary: not collapsed, whatever the loss
    worse = dataclasses.replace(run, mean_loss=run.history.losses[-1] / 1.2)
    assert not worse.collapsed  # flat but far from the mean: stuck, not the mean


def test_command_prints_the_collapse_note_in_text_and_json(cli):
    status, out, err = cli("vanishing", "--activations", "sigmoid", "--init", "glorot",
                           "--epochs", "20")
    assert status == 0, err
    notes = [line for line in out.splitlines() if "collapsed to the mean" in line]
    assert len(notes) == 1 and notes[0].startswith("sigmoid, glorot init:")
    status, out, err = cli("vanishing", "--activations", "sigmoid", "--init", "glorot",
                           "--epochs", "20", "--json")
    data = json.loads(out)
    assert [r["collapsed_to_mean"] for r in data["runs"]] == [True, False]  # sigmoid, relu
    assert len(data["notes"]) == 1 and data["notes"][0].startswith("sigmoid, glorot init: collapsed")
    assert data["runs"][0]["loss_of_the_mean"] == pytest.approx(data["runs"][0]["loss_final"], rel=0.01)


def _figure_of(monkeypatch, runs, **kw):
    """The figure plot_vanishing builds, drawn (so artists have their display extents)."""
    from backprop.pictures import plots
    seen = {}
    monkeypatch.setattr(plots, "save", lambda fig, path, force=False: seen.setdefault("fig", fig))
    plots.plot_vanishing(runs, "unused.png", **kw)
    fig = seen["fig"]
    fig.canvas.draw()
    return fig


@pytest.mark.parametrize("keys, panels", [
    ([("sigmoid", "glorot"), ("sigmoid", "he"), ("relu", "glorot"), ("relu", "he")], 4),
    ([("sigmoid", "glorot"), ("relu", "glorot"), ("relu", "he")], 3),
    ([("sigmoid", "glorot"), ("sigmoid", "he"), ("relu", "glorot"), ("relu", "he"),
      ("sigmoid", "glorot")], 5),
])
def test_plot_has_no_empty_panel_and_the_legend_covers_no_data(monkeypatch, trained, keys, panels):
    fig = _figure_of(monkeypatch, [trained[k] for k in keys], title="t")
    assert len(fig.axes) == panels
    for ax in fig.axes:
        assert ax.get_visible() and len(ax.get_lines()) == 6  # one line per layer, all shown
        assert all(len(line.get_xdata()) == 21 for line in ax.get_lines())
    assert not any(ax.get_legend() for ax in fig.axes)
    (legend,) = fig.legends
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), "the legend sits on a panel"
    assert [t.get_text() for t in legend.get_texts()] == [f"layer {k}" for k in range(1, 7)]
    said = ["collapsed to the mean" in ax.get_title() for ax in fig.axes]
    assert said == [k[0] == "sigmoid" for k in keys]  # the sigmoid runs collapsed, relu did not


def test_compare_runs_each_remedy_on_the_same_network_and_data():
    """--compare: the same deep sigmoid net plain, with skips where widths match (layer 1 goes
    2 -> 8, so layers 2..5), and batch-normalised; the remedies lift layer 1's share of the
    gradient at the initial weights by orders of magnitude (the notes' claim, measured)."""
    from backprop.train import vanishing

    runs = vanishing.run_all("2-8-8-8-8-8-1", ["sigmoid"], ["glorot"], epochs=2, remedies=("none", "residual", "batch_norm"))
    by = {r.remedy: r for r in runs}
    assert set(by) == {"none", "residual", "batch_norm"}
    assert by["residual"].spec.residual == (False, True, True, True, True)
    assert by["batch_norm"].spec.batch_norm == (True,) * 5
    assert by["none"].ratio < 1e-3
    assert by["residual"].ratio > 10 * by["none"].ratio
    assert by["batch_norm"].ratio > 1000 * by["none"].ratio
    assert by["residual"].label == "sigmoid + residual" and by["residual"].row()["remedy"] == "residual"


def test_compare_residual_needs_a_hidden_layer_as_wide_as_the_one_before(cli):
    status, out, err = cli("vanishing", "--layers", "2-4-8-1", "--compare", "residual", "--epochs", "1")
    assert status == 2 and "none can add a skip" in err and err.count("\n") == 1


def test_compare_unknown_remedy_is_one_line(cli):
    status, out, err = cli("vanishing", "--compare", "dropout", "--epochs", "1")
    assert status == 2 and "unknown remedy 'dropout'" in err and err.count("\n") == 1
