"""`backprop draw`: the notes' diagram, with one row's values and gradients from the trainer."""
import json
import math
import re

import numpy as np
import pytest

from backprop.derive import make_spec
from backprop.pictures import draw
from backprop.train import row, runner

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
    v = row.compute(trainer, trainer.init_params(scheme="ones"), np.array([80.0, 8]), np.array([5.0]))
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


def test_wide_net_draws_with_its_labels_in_a_table(cli, tmp_path):
    status, out, err = cli("draw", "--layers", "6-8-8-2", "--activations", "relu,relu,softmax",
                           "--loss", "cce", "--init", "he", "--seed", "0", "-o", str(tmp_path / "w.png"))
    assert status == 0, err
    assert (tmp_path / "w.png").read_bytes()[:8] == PNG


# -- no text overlaps another, numbers are plain decimals --------------------------------------

NETWORKS = {  # name: (layers, activations, loss, x, y)
    "2-2-1": ("2-2-1", "linear", "se", [80, 8], [5]),
    "2-2-2": ("2-2-2", "sigmoid", "se", [0.05, 0.1], [0.01, 0.99]),
    "4-8-3": ("4-8-3", "relu,softmax", "cce", [5.1, 3.5, 1.4, 0.2], [1, 0, 0]),
    "2-36-2": ("2-36-2", "tanh,softmax", "cce", [0.5, -1.5], [0, 1]),  # 40 nodes, the most drawn
    # residual: a skip arc beside each w^k_jj (from the inputs too), labels clear of them
    "3-3-3-1 residual": ("3-3-3-1", "tanh,tanh,linear", "se", [0.5, -1, 2], [0.3], {"residual": [True, True]}),
    "2-4-4-4-1 residual": ("2-4-4-4-1", "relu,relu,relu,linear", "se", [1, -0.5], [2],
                           {"residual": [False, True, True]}),
}


def _values(name, with_values=True):
    layers, acts, loss, x, y, *options = NETWORKS[name]
    spec = make_spec(layers, acts, loss, **(options[0] if options else {}))
    if not with_values:
        return spec, row.Values()
    trainer = runner.load_trainer(spec)
    params = runner.init_params(trainer, "glorot", seed=0)
    return spec, row.compute(trainer, params, np.array(x, float), np.array(y, float))


def _texts(fig):
    """Every text drawn, with its box in display pixels: [(text, (x0, y0, x1, y1), axes)]."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for owner in [fig, *fig.axes]:
        for t in owner.texts:
            if t.get_visible() and t.get_text().strip():
                e = t.get_window_extent(renderer)
                out.append((t.get_text(), (e.x0, e.y0, e.x1, e.y1), owner))
    return out


def _overlapping(boxes):
    b = np.array(boxes)
    hit = ((b[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < b[:, None, 2]) &
           (b[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < b[:, None, 3]))
    np.fill_diagonal(hit, False)
    return np.argwhere(np.triu(hit))


@pytest.fixture(scope="module")
def figures():
    return {(name, with_values): (*_values(name, with_values),
                                  draw.figure(*_values(name, with_values)))
            for name in NETWORKS for with_values in (True, False)}


@pytest.mark.parametrize("with_values", [True, False])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_no_two_texts_overlap(figures, name, with_values):
    spec, values, fig = figures[name, with_values]
    texts = _texts(fig)
    boxes = [box for _, box, _ in texts]
    pairs = [(texts[a][0], texts[b][0]) for a, b in _overlapping(boxes)]
    assert not pairs, pairs[:5]
    assert len(texts) > sum(spec.layers)  # node names and more, not an empty picture


@pytest.mark.parametrize("name", list(NETWORKS))
def test_no_label_sits_on_a_node_circle(figures, name):
    from matplotlib.patches import Circle
    spec, values, fig = figures[name, True]
    diagram = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    circles = [p.get_window_extent(renderer) for p in diagram.patches if isinstance(p, Circle)]
    assert len(circles) == sum(spec.layers)
    names = {draw.node_name(k, j) for k, w in enumerate(spec.layers) for j in range(1, w + 1)}
    labels = [box for text, box, _ in _texts(fig) if text not in names]
    for c in circles:
        for x0, y0, x1, y1 in labels:
            assert not (x0 < c.x1 and c.x0 < x1 and y0 < c.y1 and c.y0 < y1)


def _numbers(text):
    return re.findall(r"(?<![\w⁰-⁹₀-₉])[−-]?\d[\d.]*(?:[eE][+\-−]?\d+)?", text)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_numbers_are_plain_decimals_and_the_size_is_readable(figures, name):
    spec, values, fig = figures[name, True]
    texts = [t for t, _, _ in _texts(fig)]
    numbers = [n for t in texts for n in _numbers(t)]
    assert numbers and not [n for n in numbers if "e" in n.lower()]
    width, height = fig.get_size_inches() * fig.dpi
    default = figures["2-2-1", False][2].get_size_inches() * fig.dpi
    assert width >= 1000 and width >= default[0] and height >= default[1]


def test_every_weight_and_gradient_is_shown_on_its_edge_or_in_the_table(figures):
    for name in NETWORKS:
        spec, values, fig = figures[name, True]
        texts = _texts(fig)
        shown = {}
        for text, box, owner in texts:  # labels on the diagram: "w¹₁₂ = 0.335\n∂L/∂w = 0.00103"
            m = re.fullmatch(r"(w\S+) = (\S+)\n∂L/∂w = (\S+)", text)
            if m:
                shown[m[1]] = (m[2], m[3])
        if len(fig.axes) > 1:  # the table: cells of one row share a baseline
            rows = {}
            for text, box, owner in texts:
                if owner is fig.axes[1]:
                    rows.setdefault(round(box[1]), []).append((box[0], text))
            # columns side by side: split each baseline into its rows at the names
            for cells in rows.values():
                cells = [t for _, t in sorted(cells)]
                for n, cell in enumerate(cells):
                    if cell.startswith("w") and n + 2 < len(cells):
                        shown[cell] = (cells[n + 1], cells[n + 2])
        for k in range(1, len(spec.layers)):
            for i in range(spec.layers[k - 1]):
                for j in range(spec.layers[k]):
                    w, g = shown[draw.weight_name(k, i + 1, j + 1)]
                    assert float(w.replace("−", "-")) == pytest.approx(
                        values.params[f"W{k}"][i, j], rel=5e-3, abs=1e-12)
                    assert float(g.replace("−", "-").replace("≈", "")) == pytest.approx(
                        values.grads[f"W{k}"][i, j], rel=5e-3, abs=1e-9)


def test_small_networks_keep_labels_on_the_diagram_larger_ones_key_them_to_a_table(figures):
    assert len(figures["2-2-1", True][2].axes) == 1 and len(figures["2-2-2", True][2].axes) == 1
    spec, values, fig = figures["4-8-3", True]
    assert len(fig.axes) == 2  # diagram and table
    keys = {t for t, _, owner in _texts(fig) if owner is fig.axes[0] and t.isdigit()}
    assert keys == {str(n) for n in range(1, 57)}  # every edge numbered, as the table's rows



@pytest.mark.parametrize("name", ["3-3-3-1 residual", "2-4-4-4-1 residual"])
@pytest.mark.parametrize("with_values", [True, False])
def test_a_residual_layers_skip_edges_are_dashed_arcs_labelled_skip(figures, name, with_values):
    """One dashed arc per skip O_{k-1,j} -> O_kj, from the source circle's edge to the end's,
    above the straight edge w^k_jj (same height: it would hide the skip); each labelled "skip"
    on its own arc, its box clear of every circle; the heading names the residual layers."""
    from matplotlib.patches import Circle
    spec, values, fig = figures[name, with_values]
    diagram = fig.axes[0]
    g = draw.geometry(spec.layers)
    arcs = [line for line in diagram.lines if line.get_linestyle() != "-"]
    skips = [(k, j) for k in spec.residual_layers for j in range(spec.layers[k])]
    assert len(arcs) == len(skips) and len(diagram.lines) == len(draw._edges(spec)) + len(skips)
    for line, (k, j) in zip(arcs, skips):
        xs, ys = line.get_xdata(), line.get_ydata()
        (x0, y0), (x1, y1) = g.pos[k - 1][j], g.pos[k][j]
        assert y0 == y1  # the straight edge w^k_jj runs exactly where the skip would
        assert math.dist((xs[0], ys[0]), (x0, y0)) == pytest.approx(g.radius)  # on the circles' rims
        assert math.dist((xs[-1], ys[-1]), (x1, y1)) == pytest.approx(g.radius)
        assert min(ys) > y0 and max(ys) - y0 < g.node_gap / 2  # above its edge, below the next row
    texts = _texts(fig)
    labels = [(box, owner) for text, box, owner in texts if text == draw.SKIP_LABEL]
    assert len(labels) == len(skips)
    renderer = fig.canvas.get_renderer()
    circles = [p.get_window_extent(renderer) for p in diagram.patches if isinstance(p, Circle)]
    for (x0, y0, x1, y1), owner in labels:
        assert owner is diagram
        assert not any(x0 < c.x1 and c.x0 < x1 and y0 < c.y1 and c.y0 < y1 for c in circles)
        # the label sits on an arc: some point of one arc lies inside its box
        assert any(np.any((p[:, 0] > x0) & (p[:, 0] < x1) & (p[:, 1] > y0) & (p[:, 1] < y1))
                   for p in (diagram.transData.transform(np.column_stack(a.get_data())) for a in arcs))
    heading, = [text for text, _, owner in texts if owner is fig]
    residual = ", ".join(map(str, spec.residual_layers))
    assert f"dashed green arcs (skip): skip edges of the residual layers {residual}, " \
           "O_kj = g(z_kj) + O_{k−1,j} (weight 1)" in heading


def test_a_plain_network_has_no_skip_arcs(figures):
    spec, values, fig = figures["2-2-2", True]
    assert all(line.get_linestyle() == "-" for line in fig.axes[0].lines)
    assert not [t for t, _, _ in _texts(fig) if t == draw.SKIP_LABEL or "skip edges" in t]

@pytest.mark.parametrize("value, text", [
    (0.012345, "0.0123"), (-12.5, "−12.5"), (29241.0, "29241"), (176.0, "176"), (1e-7, "0.0000001"),
    (0.0, "0"), (-0.0004, "−0.0004"), (123456789.0, "123456789"), (0.99999, "1"), (1.5e-12, "≈0"),
    (2.0 / 3, "0.667"), (-1e-4, "−0.0001"), (1e21, "1000000000000000000000"),
])
def test_number_is_a_plain_decimal(value, text):
    assert draw.number(value) == text


def test_indices_past_nine_are_separated():
    assert draw.weight_name(2, 1, 10) == "w²₁,₁₀" and draw.node_name(1, 12) == "O₁,₁₂"
    assert draw.weight_name(1, 2, 3) == "w¹₂₃" and draw.node_name(0, 3) == "x₃"


# -- a model file: its network and its standardisation -------------------------------------------

def _model_file(tmp_path):
    from backprop.train.model import Model
    spec = make_spec("4-3-2", "relu,softmax", "cce")
    trainer = runner.load_trainer(spec)
    params = runner.init_params(trainer, "glorot", seed=1)
    model = Model(spec, params, mean=np.array([5.8, 3.0, 3.7, 1.2]), std=np.array([0.8, 0.4, 1.8, 0.8]),
                  features=["sepal_length", "sepal_width", "petal_length", "petal_width"],
                  targets=["species"], classes=["setosa", "versicolor"])
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model.to_json()))
    return path, model, trainer


def test_model_file_standardises_x_and_names_the_network(cli, tmp_path, monkeypatch):
    path, model, trainer = _model_file(tmp_path)
    seen = {}

    def capture(spec, values, path, **kw):
        seen.update(spec=spec, values=values)
        return path
    monkeypatch.setattr(draw, "draw", capture)
    status, out, err = cli("draw", "--params", str(path), "--x", "5.1,3.5,1.4,0.2", "--y", "1,0",
                           "-o", str(tmp_path / "m.png"))
    assert status == 0, err
    spec, values = seen["spec"], seen["values"]
    assert spec.layers == (4, 3, 2) and spec.loss == "cce"  # from the file, no network flags
    raw = np.array([5.1, 3.5, 1.4, 0.2])
    np.testing.assert_allclose(values.x, (raw - model.mean) / model.std)
    np.testing.assert_array_equal(values.raw_x, raw)
    np.testing.assert_allclose(values.nodes["O2"], trainer.forward(model.params, values.x[None])[0])
    monkeypatch.undo()
    texts = [t for t, _, _ in _texts(draw.figure(spec, values))]
    heading = next(t for t in texts if t.startswith("4-3-2 network"))
    assert "standardised with the model file's mean and std" in heading
    assert any("5.1 → −0.875" in t for t in texts)  # raw and standardised input, (5.1 − 5.8) / 0.8
    assert any(t.startswith("setosa") for t in texts)  # the model's names on their nodes
    assert any(t.startswith("sepal_length") for t in texts)


def test_model_file_with_other_network_flags_is_refused(cli, tmp_path):
    path, _, _ = _model_file(tmp_path)
    status, _, err = cli("draw", "--params", str(path), "--layers", "4-5-2", "--activations",
                         "relu,softmax", "--loss", "cce", "-o", str(tmp_path / "m.png"))
    assert status == 2 and "is for the 4-3-2 network" in err
    assert not (tmp_path / "m.png").exists()
