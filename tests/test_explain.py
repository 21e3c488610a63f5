"""`backprop explain`: the lesson page's numbers are `backprop step --json`'s, it references
nothing on the network, its maths is MathML, bad input is one line and exit 2, and in a real
headless browser it loads cleanly and clicking an edge shows that weight's numbers."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from backprop.derive import make_spec
from backprop.train.model import Model
from backprop.train.onestep import fmt

NOTES = ["--layers", "2-2-1", "--activations", "linear", "--loss", "se"]
MAZUR_PARAMS = {"W1": [[0.15, 0.25], [0.20, 0.30]], "b1": [0.35, 0.35],
                "W2": [[0.40, 0.50], [0.45, 0.55]], "b2": [0.60, 0.60]}
MAZUR_ROW = ["--x", "0.05,0.10", "--y", "0.01,0.99", "--lr", "0.5"]
DATA = re.compile(r'<script type="application/json" id="lesson-data">(.*?)</script>', re.S)


def page_data(html: str) -> dict:
    return json.loads(DATA.search(html).group(1))


@pytest.fixture
def mazur(tmp_path):
    """Flags for Mazur's 2-2-2 sigmoid example (spec file + params file)."""
    (tmp_path / "p.json").write_text(json.dumps(MAZUR_PARAMS))
    (tmp_path / "net.toml").write_text('layers = [2, 2, 2]\nactivations = "sigmoid"\nloss = "half_se"\n')
    return ["--spec", str(tmp_path / "net.toml"), "--params", str(tmp_path / "p.json"), *MAZUR_ROW]


def explain(cli, tmp_path, *args, name="lesson.html"):
    out = tmp_path / name
    status, stdout, err = cli("explain", *args, "-o", str(out))
    assert status == 0, err
    assert stdout == f"wrote {out}\n"
    html = out.read_text(encoding="utf-8")
    return html, page_data(html)


@pytest.fixture(params=["notes_221", "mazur_222"])
def lesson(request, cli, tmp_path, mazur):
    """(page HTML, its data, step --json of the same row) for the notes' 2-2-1 and Mazur's 2-2-2."""
    args = [*NOTES, "--x", "80,8", "--y", "5", "--lr", "0.1"] if request.param == "notes_221" else mazur
    html, data = explain(cli, tmp_path, *args)
    status, out, err = cli("step", *args, "--json")
    assert status == 0, err
    return html, data, json.loads(out)


# -- the numbers ------------------------------------------------------------------------------
def test_page_numbers_equal_step_json(lesson):
    _, data, step = lesson
    assert data["step"] == step  # the same computation, to the last bit


def test_every_parameter_shows_steps_old_gradient_and_new_value(lesson):
    _, data, step = lesson
    before = {k: np.array(v) for k, v in data["step"]["params"].items()}
    for pid, p in data["parameters"].items():
        name, index = p["key"][0], tuple(p["key"][1])
        assert p["grad"] == np.array(step["grads"][name])[index]
        assert p["new"] == np.array(step["params"][name])[index]
        assert p["old"] - data["lr"] * p["grad"] == pytest.approx(p["new"], rel=1e-12, abs=1e-12)
        assert p["shown"] == {"old": fmt(p["old"]), "grad": fmt(p["grad"]), "new": fmt(p["new"])}
        assert before[name][index] == p["new"]
    assert len(data["parameters"]) == sum(np.size(v) for v in step["grads"].values())


def test_deltas_from_the_chain_rule_equal_the_trainers_bias_gradients(lesson):
    """δ_kj = ∂L/∂b_kj: the page's δ (SymPy, from the memo definitions) against the trainer."""
    _, data, step = lesson
    for key, delta in data["deltas"].items():
        k, j = map(int, key.split(","))
        assert delta == pytest.approx(step["grads"][f"b{k}"][j - 1], rel=1e-9, abs=1e-12)


def test_mazur_values_on_the_page(cli, tmp_path, mazur):
    html, data = explain(cli, tmp_path, *mazur)
    assert data["step"]["loss"] == pytest.approx(0.298371109, abs=1e-9)
    assert data["parameters"]["w-2-1-1"]["new"] == pytest.approx(0.35891648, abs=1e-8)  # Mazur's w5
    assert data["parameters"]["w-1-1-1"]["new"] == pytest.approx(0.149780716, abs=1e-9)  # w1
    assert data["deltas"]["2,1"] == pytest.approx(0.138498562, abs=1e-9)
    assert "<td>0.358916</td>" in html and "<td>0.149781</td>" in html  # the parameter table


def test_frames_forward_then_loss_then_backward_node_by_node_then_update(cli, tmp_path, mazur):
    _, data = explain(cli, tmp_path, *mazur)
    frames = data["frames"]
    assert [f["phase"] for f in frames] == ["forward"] * 4 + ["loss"] + ["backward"] * 4 + ["update"]
    assert [f["node"] for f in frames if f["phase"] == "forward"] == ["n-1-1", "n-1-2", "n-2-1", "n-2-2"]
    assert [f["node"] for f in frames if f["phase"] == "backward"] == ["n-2-1", "n-2-2", "n-1-1", "n-1-2"]
    first = frames[0]
    assert {"n-1-1", "n-0-1", "n-0-2", "w-1-1-1", "w-1-2-1", "b-1-1"} == set(first["highlight"])
    assert "0.3775" in first["math"][0] and "0.59327" in first["math"][1]  # z_11, O_11
    assert "0.298371" in frames[4]["math"][0]
    hidden = frames[7]  # δ_11: the δ of the layer above sent back along w^2_11, w^2_12
    assert {"n-2-1", "n-2-2", "w-2-1-1", "w-2-1-2"} <= set(hidden["highlight"])
    assert "0.00877135" in hidden["math"][0] and hidden["delta"] == "0.00877135"


# -- self-contained, MathML --------------------------------------------------------------------
def test_no_network_references(lesson):
    html = lesson[0]
    assert not re.search(r"https?://", html, re.I)
    assert not re.search(r"\b(src|href)\s*=", html, re.I)
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # the browser itself refuses any fetch


def test_maths_is_mathml(cli, tmp_path, mazur):
    html, data = explain(cli, tmp_path, *mazur)
    chain = "".join(data["parameters"]["w-1-1-1"]["chain"])
    assert chain.count("<math") == 4 and "<mfrac>" in chain
    for factor in ("0.741365", "0.0747262", "0.012065", "-0.217072", "0.087755", "0.000438568"):
        assert f"<mn>{factor.lstrip('-')}</mn>" in chain  # every factor's value, and the product
    update = data["parameters"]["w-1-1-1"]["update"]
    assert "<mi>&#x003B7;</mi>" in update and "<mn>0.149781</mn>" in update  # w − η ∂L/∂w = new
    assert "\\frac" not in html and "\\partial" not in html  # no LaTeX left for a renderer


def test_script_data_cannot_close_its_element(lesson):
    html = lesson[0]
    body = DATA.search(html).group(1)
    assert "</" not in body and "<math" in body  # MathML inside, every "</" escaped


# -- model files ---------------------------------------------------------------------------------
def test_a_model_files_spec_standardisation_and_class_label(cli, tmp_path):
    spec = make_spec("2-3-3", "tanh,softmax", "cce")
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(2, 3)), "b1": rng.normal(size=3),
              "W2": rng.normal(size=(3, 3)), "b2": rng.normal(size=3)}
    model = Model(spec, params, mean=np.array([5.0, 3.0]), std=np.array([2.0, 0.5]),
                  features=["a", "b"], targets=["kind"], classes=["cat", "dog", "eel"])
    (tmp_path / "m.json").write_text(json.dumps(model.to_json()))
    args = ["--params", str(tmp_path / "m.json"), "--x", "6,2", "--y", "dog"]
    html, data = explain(cli, tmp_path, *args)
    assert data["network"]["layers"] == [2, 3, 3] and data["network"]["loss"] == "cce"
    assert data["row"] == {"x": [0.5, -2.0], "x_raw": [6.0, 2.0], "y": [0.0, 1.0, 0.0],
                           "class": "class dog, one-hot"}
    assert "standardised from 6, 2" in html
    status, out, err = cli("step", *args, "--json")
    assert status == 0, err
    assert data["step"] == json.loads(out)


# -- bad input: one line, exit 2 ------------------------------------------------------------------
def one_line_error(cli, *args):
    status, out, err = cli("explain", *args)
    assert status == 2 and out == "" and err.count("\n") == 1, (status, out, err)
    return err


def test_bad_inputs(cli, tmp_path):
    out = str(tmp_path / "l.html")
    assert "3 value(s)" in one_line_error(cli, *NOTES, "--x", "1,2,3", "--y", "5", "-o", out)
    assert "not a number" in one_line_error(cli, *NOTES, "--x", "1,a", "--y", "5", "-o", out)
    assert "42 nodes" in one_line_error(cli, "--layers", "20-21-1", "--x", "1", "--y", "5", "-o", out)
    assert "HTML page" in one_line_error(cli, "--x", "1,2", "--y", "5", "-o", str(tmp_path / "l.png"))
    assert "not both" in one_line_error(cli, "--params", "p.json", "--init", "he",
                                        "--x", "1,2", "--y", "5", "-o", out)
    (tmp_path / "p.json").write_text(json.dumps(MAZUR_PARAMS))  # a 2-2-2 file, the default 2-2-1 network
    assert "W2" in one_line_error(cli, "--params", str(tmp_path / "p.json"), "--x", "1,2", "--y", "5", "-o", out)
    assert "not a number" in one_line_error(cli, *NOTES, "--x", "1,2", "--y", "cat", "-o", out)
    assert "2 value(s)" in one_line_error(cli, *NOTES, "--x", "1,2", "--y", "5,6", "-o", out)
    assert "--lr" in one_line_error(cli, *NOTES, "--x", "1,2", "--y", "5", "--lr", "nan", "-o", out)
    assert "does not exist" in one_line_error(cli, "--x", "1,2", "--y", "5", "-o", str(tmp_path / "no" / "l.html"))
    assert list(tmp_path.iterdir()) == [tmp_path / "p.json"]  # nothing written by a refused run


def test_refuses_to_replace_without_force(cli, tmp_path):
    explain(cli, tmp_path, "--x", "80,8", "--y", "5")
    assert "--force" in one_line_error(cli, "--x", "80,8", "--y", "6", "-o", str(tmp_path / "lesson.html"))
    assert page_data((tmp_path / "lesson.html").read_text())["row"]["y"] == [5.0]
    _, data = explain(cli, tmp_path, "--x", "80,8", "--y", "6", "--force")
    assert data["row"]["y"] == [6.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.html"]  # no temporary file left


# -- a real browser ---------------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_in_a_headless_browser(cli, tmp_path, mazur):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM} (Debian: apt-get install chromium)")
    html, data = explain(cli, tmp_path, *mazur)
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((tmp_path / "lesson.html").as_uri())
            assert page.inner_text("#counter") == "0 / 10"
            assert page.locator("#n-1-1 .value").is_hidden()  # not computed yet
            for _ in range(3):
                page.click("#next")
            assert page.inner_text("#frame-title") == "Forward pass · layer 2, node 1"
            assert page.locator("#n-1-1 .value").text_content() == "0.59327"
            assert page.locator("#n-1-1 .value").is_visible() and page.locator("#n-2-2 .value").is_hidden()
            assert page.locator("#n-2-1").get_attribute("class") == "node hl"
            assert page.locator("#frame-math .eq").count() == 2  # z_21 and ŷ_1, three lines each
            assert page.locator("#frame-math math").count() == 6
            page.click("#w-1-1-1 line.hit", force=True)
            detail = page.locator("#detail")
            assert detail.is_visible()
            shown = {k: detail.locator(f'[data-role="{k}"]').inner_text() for k in ("old", "grad", "new")}
            assert shown == {"old": "0.15", "grad": "0.000438568", "new": "0.149781"}
            assert shown == data["parameters"]["w-1-1-1"]["shown"]
            assert detail.locator("#detail-chain math").count() == 4
            assert "sel" in page.locator("#w-1-1-1").get_attribute("class")
            page.click('tr[data-param="b-2-2"]')  # a bias, from the table
            assert detail.locator('[data-role="grad"]').inner_text() == "-0.0380982"
            page.keyboard.press("ArrowRight")
            assert page.inner_text("#counter") == "4 / 10"
            page.screenshot(path=str(tmp_path / "lesson.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
    assert (tmp_path / "lesson.png").stat().st_size > 10_000


KINK = {"W1": [[3.0, 1.0], [1.0, 1.0]], "b1": [0.0, 0.0], "W2": [[2.0], [-1.0]], "b2": [0.5]}  # z_11 = 0 at x = 0.5,-1.5


@pytest.mark.parametrize("layers, activations, loss, y, start", [
    ("2-2-1", "relu,linear", "se", "3", KINK),  # z_11 = 0: relu's kink, z_12 < 0
    ("2-2-1", "leaky_relu,sigmoid", "bce", "1", KINK),  # leaky relu's kink, sigmoid + bce
    ("2-3-3", "tanh,softmax", "cce", "2", "he"),  # a class index, softmax + cce
    ("2-2-2-1", "sigmoid,relu,linear", "half_se", "0.5", "glorot"),  # two hidden layers
])
def test_page_deltas_and_numbers_across_activations(cli, tmp_path, layers, activations, loss, y, start):
    if isinstance(start, dict):
        (tmp_path / "p.json").write_text(json.dumps(start))
        begin = ["--params", str(tmp_path / "p.json")]
    else:
        begin = ["--init", start, "--seed", "3"]
    args = ["--layers", layers, "--activations", activations, "--loss", loss, *begin,
            "--x", "0.5,-1.5", "--y", y]
    html, data = explain(cli, tmp_path, *args)
    status, out, err = cli("step", *args, "--json")
    assert status == 0, err
    step = json.loads(out)
    assert data["step"] == step
    if start is KINK:
        assert step["nodes"]["Z1"][0] == 0.0 and step["grads"]["b2"][0] != 0  # at the kink, δ flows back
    for key, delta in data["deltas"].items():
        k, j = map(int, key.split(","))
        assert delta == pytest.approx(step["grads"][f"b{k}"][j - 1], rel=1e-9, abs=1e-12), key
    assert not re.search(r"https?://", html)
