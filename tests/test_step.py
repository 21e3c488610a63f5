"""`backprop step` (one update, number by number) and `backprop generate` (the CLI side).

The hand-worked network: the notes' 2-2-1 linear network, w = 1, b = 0, row IQ 80, CGPA 8,
package 5, η = 0.1:
    O_11 = O_12 = 80·1 + 8·1 + 0 = 88;   ŷ = 88 + 88 = 176;   L = (5 - 176)² = 29241
    ∂L/∂ŷ = -2(y - ŷ) = 342
    ∂L/∂w^2_11 = 342 · O_11 = 30096          -> w^2_11 = 1 - 0.1 · 30096 = -3008.6
    ∂L/∂w^1_11 = 342 · w^2_11 · x_i1 = 27360  -> w^1_11 = 1 - 0.1 · 27360 = -2735
    ∂L/∂w^1_21 = 342 · w^2_11 · x_i2 = 2736   -> w^1_21 = -272.6
    ∂L/∂b_11 = 342                           -> b_11 = -34.2
"""
import json
import math

import numpy as np
import pytest

from backprop.cli.commands import step as step_cmd
from backprop.codegen import load_trainer
from backprop.derive import ACTIVATIONS, derive, make_spec
from backprop.train import onestep

NOTES = ["--layers", "2-2-1", "--activations", "linear", "--loss", "se"]

#: Matt Mazur's worked example (the notes' "step by step" reference): 2-2-2 sigmoid, ½Σ(y-ŷ)².
MAZUR_PARAMS = {"W1": [[0.15, 0.25], [0.20, 0.30]], "b1": [0.35, 0.35],
                "W2": [[0.40, 0.50], [0.45, 0.55]], "b2": [0.60, 0.60]}


def test_notes_row_by_hand(cli):
    status, out, err = cli("step", *NOTES, "--x", "80,8", "--y", "5", "--init", "ones", "--lr", "0.1")
    assert status == 0 and err == ""
    for line in ["z_11 = 88", "ŷ = O_21 = 176", "L = (y - ŷ)^2 = 29241",
                 "= [-2 (y - ŷ)] · [w^2_11] · [x_i1]", "= [342] · [1] · [80]", "= 27360",
                 "w^2_11 = 1 - 0.1 × 30096 = -3008.6", "w^1_11 = 1 - 0.1 × 27360 = -2735",
                 "w^1_21 = 1 - 0.1 × 2736 = -272.6", "b_11 = 0 - 0.1 × 342 = -34.2"]:
        assert line in out, line


def test_notes_row_json(cli):
    status, out, _ = cli("step", *NOTES, "--x", "80,8", "--y", "5", "--lr", "0.1", "--json")
    data = json.loads(out)
    assert status == 0 and set(data) == {"loss", "output", "nodes", "grads", "params", "loss_after", "lr", "rows"}
    assert data["loss"] == 29241 and data["output"] == [176]
    assert data["nodes"] == {"Z1": [88, 88], "O1": [88, 88], "Z2": [176], "O2": [176]}
    assert data["grads"]["W2"] == [[30096], [30096]] and data["grads"]["b1"] == [342, 342]
    assert data["grads"]["W1"] == [[27360, 27360], [2736, 2736]]  # W1[i-1][j-1] = w^1_ij
    assert data["params"]["W1"][1][0] == pytest.approx(-272.6)


def test_mazur_example_from_a_params_file(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(MAZUR_PARAMS))
    (tmp_path / "net.toml").write_text('layers = [2, 2, 2]\nactivations = "sigmoid"\nloss = "half_se"\n')
    status, out, err = cli("step", "--spec", str(tmp_path / "net.toml"), "--params", str(tmp_path / "p.json"),
                           "--x", "0.05,0.10", "--y", "0.01,0.99", "--lr", "0.5", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["loss"] == pytest.approx(0.298371109, abs=1e-9)
    assert data["params"]["W2"][0][0] == pytest.approx(0.35891648, abs=1e-8)  # w5
    assert data["params"]["W1"][0][0] == pytest.approx(0.149780716, abs=1e-9)  # w1
    # the output of step --json is itself a params file
    (tmp_path / "s.json").write_text(out)
    status, out2, err = cli("step", "--spec", str(tmp_path / "net.toml"), "--params", str(tmp_path / "s.json"),
                            "--x", "0.05,0.10", "--y", "0.01,0.99", "--lr", "0.5", "--json")
    assert status == 0 and json.loads(out2)["loss"] < data["loss"]


@pytest.mark.parametrize("activations, loss", [
    (["sigmoid", "sigmoid", "sigmoid", "linear"], "se"),
    (["tanh", "softmax"], "cce"),
    (["softmax", "sigmoid"], "bce"),
    (["relu", "softmax"], "se"),
] + [([name, "linear"], "hinge") for name in sorted(ACTIVATIONS) if ACTIVATIONS[name].elementwise])
def test_trainer_numbers_agree_with_the_symbolic_chain(activations, loss):
    layers = (3, 3, 3, 2, 1) if len(activations) == 4 else (3, 3, 2)
    spec = make_spec(layers, activations, loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=spec.n_inputs).tolist()
    y = (np.eye(spec.n_outputs)[0] if loss == "cce" else rng.uniform(0.1, 0.9, spec.n_outputs)).tolist()
    params = load_trainer(spec).init_params(seed=1)
    for name in params:
        params[name] = params[name] + rng.normal(0, 0.2, params[name].shape)
    result = onestep.step(spec, x, y, 0.1, params)
    values = onestep.symbol_values(spec, x, y, result["params"], result["nodes"])
    derivation = derive(spec)
    for g in derivation.gradients:
        by_chain = sum(math.prod(path) for path in onestep.chain_values(g, values))
        name, index = g.key
        assert by_chain == pytest.approx(result["grads"][name][index], rel=1e-9, abs=1e-12), g.name
    problem = onestep.Problem(spec, [onestep.Row(x, x, y)], 0.1)
    _, problems = step_cmd.as_text(problem, derivation, result, [values])
    assert problems == []


# -- bad input: one line, exit 2 -------------------------------------------------------------------
def one_line_error(cli, *args):
    status, out, err = cli(*args)
    assert status == 2 and out == "" and err.count("\n") == 1, (status, out, err)
    return err


def test_wrong_x_length(cli):
    err = one_line_error(cli, "step", *NOTES, "--x", "80,8,3", "--y", "5")
    assert "--x has 3 value(s) but the network has 2 inputs" in err


def test_non_numeric_x(cli):
    assert "not a number" in one_line_error(cli, "step", *NOTES, "--x", "80,__import__", "--y", "5")


def test_params_with_the_wrong_shape(cli, tmp_path):
    bad = dict(MAZUR_PARAMS, W1=[[1, 2, 3], [4, 5, 6]])
    (tmp_path / "p.json").write_text(json.dumps(bad))
    (tmp_path / "net.toml").write_text('layers = [2, 2, 2]\nactivations = "sigmoid"\nloss = "half_se"\n')
    err = one_line_error(cli, "step", "--spec", str(tmp_path / "net.toml"), "--params", str(tmp_path / "p.json"),
                         "--x", "1,2", "--y", "0,1")
    assert "W1 has shape (2, 3); expected (2, 2)" in err


@pytest.mark.parametrize("content, message", [
    ('{"W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1], [1]]}', "has no b2"),
    ('{"W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1], [1]], "b2": [0], "W9": 1}', "W9 is not a parameter"),
    ('{"W1": [[1, 1], [1]], "b1": [0, 0], "W2": [[1], [1]], "b2": [0]}', "W1 is not a matrix"),
    ("[1, 2]", "must hold an object"),
    ("{nope", "not valid JSON"),
])
def test_bad_params_files(cli, tmp_path, content, message):
    (tmp_path / "p.json").write_text(content)
    assert message in one_line_error(cli, "step", *NOTES, "--params", str(tmp_path / "p.json"),
                                     "--x", "80,8", "--y", "5")


def test_params_and_init_together(cli, tmp_path):
    (tmp_path / "p.json").write_text("{}")
    assert "not both" in one_line_error(cli, "step", *NOTES, "--params", str(tmp_path / "p.json"),
                                        "--init", "ones", "--x", "80,8", "--y", "5")


# -- generate ----------------------------------------------------------------------------------------
def test_generate_writes_refuses_and_forces(cli, tmp_path):
    target = tmp_path / "trainer.py"
    status, out, _ = cli("generate", *NOTES, "-o", str(target))
    assert status == 0 and "wrote" in out
    text = target.read_text()
    # the command is recorded after '# Regenerate with:', never in lines 1-2 (PEP 263 cookies)
    lines = text.splitlines()
    at = lines.index("# Regenerate with:") + 1
    recorded = " ".join(line[6:].strip().removesuffix(" \\") for line in lines[at:] if line.startswith("#     "))
    assert f"--layers 2-2-1 --activations linear --loss se -o {target}" in recorded
    err = one_line_error(cli, "generate", *NOTES, "-o", str(target))
    assert "already exists" in err and "--force" in err
    assert cli("generate", *NOTES, "-o", str(target), "--force")[0] == 0
    assert cli("generate", *NOTES, "-o", str(target), "--check")[0] == 0
    target.write_text(text.replace("Z1 = X @ W1 + b1", "Z1 = X @ W1"))
    status, _, err = cli("generate", *NOTES, "-o", str(target), "--check")
    assert status == 1 and "out of date" in err


def test_generate_float32(cli, tmp_path):
    target = tmp_path / "t32.py"
    assert cli("generate", "--layers", "2-3-1", "--activations", "tanh,sigmoid", "--loss", "bce",
               "-o", str(target), "--float32")[0] == 0
    assert "DTYPE = np.float32" in target.read_text()


def test_generate_into_a_missing_folder(cli, tmp_path):
    assert "does not exist" in one_line_error(cli, "generate", *NOTES, "-o", str(tmp_path / "nope" / "t.py"))


def test_generate_needs_a_py_output(cli, tmp_path):
    assert ".py" in one_line_error(cli, "generate", *NOTES, "-o", str(tmp_path / "trainer.txt"))
    assert "-o FILE" in one_line_error(cli, "generate", *NOTES)


def test_generate_odd_file_names_stay_comments(cli, tmp_path):
    target = tmp_path / "my trainer-1.py"
    status, out, _ = cli("generate", *NOTES, "-o", str(target))
    assert status == 0 and "runs as a script" in out
    compile(target.read_text(), str(target), "exec")


def test_an_interrupted_generate_leaves_nothing_behind(cli, tmp_path, monkeypatch):
    import os

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    monkeypatch.setattr(os, "link", interrupted)  # a new file is published by a hard link
    status, _, err = cli("generate", *NOTES, "-o", str(tmp_path / "t.py"))
    assert status == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_an_output_name_with_a_newline_stays_a_comment(cli, tmp_path):
    target = tmp_path / "x\nimport os\n.py"
    assert cli("generate", *NOTES, "-o", str(target))[0] == 0
    source = target.read_text()
    header = source.split('"""')[0].splitlines()
    assert len(header) == 8 and all(line.startswith("#") for line in header)
    assert "\\nimport os\\n" in header[7]  # escaped, as ascii() writes it
    compile(source, "t.py", "exec")


# -- a batch: repeated --x/--y ------------------------------------------------------------------------
#: The notes' network on two rows, w = 1, b = 0: row 1 as above (ŷ = 176, ∂L/∂ŷ = 342); row 2
#: IQ 60, CGPA 9, package 6: O_11 = O_12 = 69, ŷ = 138, ∂L/∂ŷ = -2(6 - 138) = 264, L = 132² = 17424.
#: The batch's loss and gradients are the means: L = 23332.5, ∂L/∂w^2_11 = (30096 + 18216)/2 = 24156.
BATCH = ["--x", "80,8", "--x", "60,9", "--y", "5", "--y", "6", "--init", "ones"]


def _trainer_step(spec, params, X, Y, lr):
    """The generated trainer's own batch update, the reference for step's."""
    trainer = load_trainer(spec)
    params = {k: np.array(v, dtype=float) for k, v in params.items()}
    loss, grads = trainer.loss_and_gradients(params, np.array(X), np.array(Y))
    trainer.sgd_step(params, np.array(X, dtype=float), np.array(Y, dtype=float), lr)
    return loss, grads, params


def test_batch_by_hand_and_text(cli):
    status, out, err = cli("step", *NOTES, *BATCH)
    assert status == 0 and err == ""
    for line in ["One batch gradient-descent step on 2 rows of the 2-2-1 network",
                 "Row 1 of 2: x_i1 = 80, x_i2 = 8; y = 5", "Row 2 of 2: x_i1 = 60, x_i2 = 9; y = 6",
                 "= [264] · [1] · [60]", "L = (29241 + 17424)/2 = 23332.5",
                 "∂L/∂w^2_11 = (30096 + 18216)/2 = 24156", "∂L/∂b_12 = (342 + 264)/2 = 303",
                 "w^2_11 = 1 - 0.1 × 24156 = -2414.6", "w^1_21 = 1 - 0.1 × 2556 = -254.6"]:
        assert line in out, line
    assert out.count("Gradients (chain rule, output layer first)") == 2


def test_batch_json_equals_the_trainers_sgd_step(cli):
    status, out, err = cli("step", *NOTES, *BATCH, "--json")
    assert status == 0, err
    data = json.loads(out)
    spec = make_spec("2-2-1", "linear", "se")
    ones = load_trainer(spec).init_params(scheme="ones")
    loss, grads, after = _trainer_step(spec, ones, [[80, 8], [60, 9]], [[5], [6]], 0.1)
    assert data["loss"] == loss == 23332.5 and "nodes" not in data and "output" not in data
    for name in after:
        np.testing.assert_allclose(data["params"][name], after[name], rtol=1e-12, atol=0)
        np.testing.assert_allclose(data["grads"][name], grads[name], rtol=1e-12, atol=0)
        mean = (np.array(data["rows"][0]["grads"][name]) + np.array(data["rows"][1]["grads"][name])) / 2
        np.testing.assert_allclose(mean, grads[name], rtol=1e-12, atol=0)
    assert data["grads"]["W2"] == [[24156], [24156]] and data["grads"]["W1"] == [[21600, 21600], [2556, 2556]]
    assert [r["loss"] for r in data["rows"]] == [29241, 17424] and data["rows"][1]["output"] == [138]
    assert data["rows"][1]["nodes"]["O1"] == [69, 69] and data["rows"][1]["x"] == [60, 9]
    # each row's gradients are that row's own one-row step
    single = json.loads(cli("step", *NOTES, "--x", "60,9", "--y", "6", "--init", "ones", "--json")[1])
    assert data["rows"][1]["grads"] == single["grads"] == single["rows"][0]["grads"]


def test_batch_of_a_sigmoid_network_equals_sgd_step(cli, tmp_path):
    """Three rows of a 2-3-2 sigmoid/softmax net from seeded glorot, η = 0.3: every number of
    the update agrees with the trainer's sgd_step on those rows to 1e-12."""
    rows = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]
    targets = [[1, 0], [0, 1], [0, 1]]
    args = ["--layers", "2-3-2", "--activations", "sigmoid,softmax", "--loss", "cce",
            "--init", "glorot", "--seed", "4", "--lr", "0.3", "--json"]
    for x, y in zip(rows, targets):
        args += ["--x=" + ",".join(map(str, x)), "--y", ",".join(map(str, y))]  # --x=-0.75: not a flag
    status, out, err = cli("step", *args)
    assert status == 0, err
    data = json.loads(out)
    spec = make_spec("2-3-2", "sigmoid,softmax", "cce")
    start = load_trainer(spec).init_params(seed=4, scheme="glorot")
    loss, grads, after = _trainer_step(spec, start, rows, targets, 0.3)
    assert data["loss"] == pytest.approx(loss, rel=1e-12) and data["lr"] == 0.3
    for name in after:
        np.testing.assert_allclose(data["params"][name], after[name], rtol=1e-12, atol=1e-15)
        each = np.mean([r["grads"][name] for r in data["rows"]], axis=0)
        np.testing.assert_allclose(each, grads[name], rtol=1e-12, atol=1e-15)
    assert data["params"]["W1"] != start["W1"].tolist()  # it moved


def test_batch_latex_is_balanced(cli):
    status, tex, err = cli("step", *NOTES, *BATCH, "--format", "latex")
    assert status == 0 and err == ""
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") == 3
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert body.count("{") == body.count("}") and body.count(r"\left") == body.count(r"\right")
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    for env in tex.split(r"\begin{align*}")[1:]:  # no row break before \end{align*}
        assert not env.split(r"\end{align*}")[0].rstrip().endswith("\\\\")
    assert r"\frac{\partial L}{\partial w^{2}_{11}} &= \frac{1}{2}\left(30096 + 18216\right) = 24156 \\" in tex
    assert r"w^{2}_{11} &= 1 - 0.1 \cdot 24156 = -2414.6 \\" in tex
    assert r"\noindent\textbf{Row 2 of 2}" in tex
    status, doc, _ = cli("step", *NOTES, *BATCH, "--format", "latex", "--standalone")
    assert status == 0 and doc.count(r"\begin{document}") == 1 and r"\allowdisplaybreaks" in doc


def test_count_mismatch_of_x_and_y(cli):
    err = one_line_error(cli, "step", *NOTES, "--x", "80,8", "--x", "60,9", "--y", "5")
    assert "--x is given 2 time(s) and --y 1; give one --y per --x row" in err


def test_too_many_rows(cli):
    args = ["--x", "1,2", "--y", "3"] * (onestep.MAX_ROWS + 1)
    assert "give fewer --x rows" in one_line_error(cli, "step", *NOTES, *args)


# -- parentheses around negative numbers --------------------------------------------------------------
def test_negative_gradients_are_parenthesised(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(MAZUR_PARAMS))
    (tmp_path / "net.toml").write_text('layers = [2, 2, 2]\nactivations = "sigmoid"\nloss = "half_se"\n')
    args = ("step", "--spec", str(tmp_path / "net.toml"), "--params", str(tmp_path / "p.json"),
            "--x", "0.05,0.10", "--y", "0.01,0.99", "--lr", "0.5")
    status, text, _ = cli(*args)
    assert status == 0
    assert "w^2_12 = 0.5 - 0.5 × (-0.0226025) = 0.511301" in text
    assert "b_22 = 0.6 - 0.5 × (-0.0380982) = 0.619049" in text
    assert "w^2_11 = 0.4 - 0.5 × 0.082167 = 0.358916" in text
    status, tex, _ = cli(*args, "--format", "latex")
    assert r"w^{2}_{12} &= 0.5 - 0.5 \cdot (-0.0226025) = 0.511301" in tex
    for out, ops in ((text, ("× -", "· -", "+ -", "- -")), (tex, (r"\cdot -", "+ -", "- -"))):
        assert not any(op in out for op in ops), [op for op in ops if op in out]


def test_negative_terms_of_a_mean_and_a_negative_lr(cli):
    """Row 1 (y = 0.5 under ŷ = 3.2) pulls b_21 down, row 2 (y = 10) up:
    ∂L/∂b_21 = -2(0.5 - 3.2) = 5.4 and -2(10 - 3.2) = -13.6, mean -4.1."""
    args = ("step", *NOTES, "--x", "0.8,0.8", "--x", "0.8,0.8", "--y", "0.5", "--y", "10", "--init", "ones")
    status, text, _ = cli(*args)
    assert status == 0
    assert "∂L/∂b_21 = (5.4 + (-13.6))/2 = -4.1" in text and "b_21 = 0 - 0.1 × (-4.1) = 0.41" in text
    status, tex, _ = cli(*args, "--format", "latex")
    assert r"\frac{1}{2}\left(5.4 + (-13.6)\right) = -4.1" in tex
    status, text, _ = cli("step", *NOTES, "--x", "0.8,0.8", "--y", "0.5", "--init", "ones", "--lr", "-0.1")
    assert "b_21 = 0 - (-0.1) × 5.4 = 0.54" in text


# -- η: step's default is the notes' 0.1 -----------------------------------------------------------
def test_default_lr_is_stated(cli, capsys):
    status, text, _ = cli("step", *NOTES, "--x", "80,8", "--y", "5")
    assert status == 0 and text.splitlines()[0].endswith("η = 0.1 (default)")
    assert "w^2_11 = 1 - 0.1 × 30096 = -3008.6" in text
    status, text, _ = cli("step", *NOTES, "--x", "80,8", "--y", "5", "--lr", "0.1")
    assert text.splitlines()[0].endswith("η = 0.1")
    status, tex, _ = cli("step", *NOTES, "--x", "80,8", "--y", "5", "--format", "latex")
    assert tex.splitlines()[0].endswith(r"\eta = 0.1 (default)")
    from backprop.cli.main import main
    with pytest.raises(SystemExit):
        main(["step", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default 0.1, the notes' hand-worked step; backprop train defaults to 0.01" in help_text


# -- class labels -------------------------------------------------------------------------------------
CCE = ["--layers", "2-3-3", "--activations", "tanh,softmax", "--loss", "cce", "--init", "glorot", "--seed", "2"]


def test_cce_class_index_is_its_one_hot_vector(cli):
    status, out, err = cli("step", *CCE, "--x", "0.5,-1", "--y", "1", "--json")
    assert status == 0, err
    by_index = json.loads(out)
    by_vector = json.loads(cli("step", *CCE, "--x", "0.5,-1", "--y", "0,1,0", "--json")[1])
    assert by_index["rows"][0]["y"] == [0, 1, 0] and by_index["rows"][0]["class"] == "class 1, one-hot"
    assert by_index["params"] == by_vector["params"] and by_index["loss"] == by_vector["loss"]
    # L = -ln ŷ_2 for the one-hot (0, 1, 0)
    assert by_index["loss"] == pytest.approx(-math.log(by_index["output"][1]), rel=1e-12)
    status, text, _ = cli("step", *CCE, "--x", "0.5,-1", "--y", "2")
    assert "y_1 = 0, y_2 = 0, y_3 = 1 (class 2, one-hot)" in text


def test_a_bad_class_index_names_the_accepted_ones(cli):
    err = one_line_error(cli, "step", *CCE, "--x", "0.5,-1", "--y", "3")
    assert "--y '3' is neither a class (0..2) nor 3 target values" in err
    err = one_line_error(cli, "step", "--layers", "2-3-4", "--activations", "tanh,softmax", "--loss", "cce",
                         "--x", "0.5,-1", "--y", "setosa")
    assert "neither a class (0..3)" in err


def test_a_class_index_is_refused_for_regression(cli):
    err = one_line_error(cli, "step", "--layers", "2-2-3", "--x", "1,2", "--y", "1")
    assert "--y has 1 value(s) but the network has 3 outputs" in err


IRIS = ["setosa", "versicolor", "virginica"]


def _model_file(tmp_path, spec, classes=None, mean=None, std=None, seed=0, name="model.json"):
    from backprop.train.model import Model
    params = load_trainer(spec).init_params(seed=seed, scheme="glorot")
    model = Model(spec, params, None if mean is None else np.array(mean), None if std is None else np.array(std),
                  features=None, targets=None, classes=classes)
    path = tmp_path / name
    path.write_text(json.dumps(model.to_json()))
    return path, params


def test_model_file_spec_standardisation_and_class_name(cli, tmp_path):
    """No network flags: the model's 4-3-3 is used, the raw row is standardised with its
    mean/std, and 'setosa' is the one-hot (1, 0, 0); the same step as the flags, the plain
    parameters, the standardised row and the vector by hand."""
    spec = make_spec("4-3-3", "tanh,softmax", "cce")
    mean, std = [5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.75, 0.75]
    path, params = _model_file(tmp_path, spec, IRIS, mean, std)
    raw = [5.1, 3.5, 1.4, 0.2]
    status, out, err = cli("step", "--params", str(path), "--x", ",".join(map(str, raw)), "--y", "setosa", "--json")
    assert status == 0, err
    data = json.loads(out)
    scaled = ((np.array(raw) - mean) / std).tolist()
    row = data["rows"][0]
    assert row["x_raw"] == raw and row["x"] == pytest.approx(scaled, rel=1e-15) and row["y"] == [1, 0, 0]
    assert row["class"] == "class setosa, one-hot" and data["standardise"] == {"mean": mean, "std": std}
    (tmp_path / "plain.json").write_text(json.dumps({k: v.tolist() for k, v in params.items()}))
    status, out, _ = cli("step", "--layers", "4-3-3", "--activations", "tanh,softmax", "--loss", "cce",
                         "--params", str(tmp_path / "plain.json"), "--x=" + ",".join(map(repr, scaled)),
                         "--y", "1,0,0", "--json")
    by_hand = json.loads(out)
    assert by_hand["params"] == data["params"] and by_hand["loss"] == data["loss"]
    status, text, _ = cli("step", "--params", str(path), "--x", "5.1,3.5,1.4,0.2", "--y", "setosa")
    assert "One SGD update of the 4-3-3 network, activations tanh,softmax, loss cce" in text
    assert "Row: x_i1 = 5.1, x_i2 = 3.5, x_i3 = 1.4, x_i4 = 0.2 (raw); y_1 = 1, y_2 = 0, y_3 = 0 " \
           "(class setosa, one-hot)" in text
    assert "x standardised with the model's mean/std, x = (x_raw - mean)/std:" in text
    assert "  x_i1 = (5.1 - 5.8)/0.8 = -0.875" in text and "  x_i4 = (0.2 - 1.2)/0.75 = -1.33333" in text
    status, tex, _ = cli("step", "--params", str(path), "--x", "5.1,3.5,1.4,0.2", "--y", "setosa", "--format", "latex")
    assert r"x_{i1} &= \frac{5.1 - 5.8}{0.8} = -0.875" in tex
    # a class of the model by index too (its names are not numbers), and a batch of two
    status, out, _ = cli("step", "--params", str(path), "--x", "5.1,3.5,1.4,0.2", "--y", "0", "--json")
    assert json.loads(out)["params"] == data["params"]
    status, out, err = cli("step", "--params", str(path), "--x", "5.1,3.5,1.4,0.2", "--x", "6.7,3.0,5.2,2.3",
                           "--y", "setosa", "--y", "virginica", "--json")
    assert status == 0, err
    assert [r["y"] for r in json.loads(out)["rows"]] == [[1, 0, 0], [0, 0, 1]]


def test_model_file_bad_label_names_its_classes(cli, tmp_path):
    path, _ = _model_file(tmp_path, make_spec("4-3-3", "tanh,softmax", "cce"), IRIS, [0] * 4, [1] * 4)
    err = one_line_error(cli, "step", "--params", str(path), "--x", "1,2,3,4", "--y", "virginia")
    assert "--y 'virginia' is neither a class (setosa, versicolor, virginica, 0..2) nor 3 target values" in err


def test_numeric_class_names_are_names_only(cli, tmp_path):
    """Classes 3, 5, 7 (a digits subset): --y 5 is the class 5 (index 1), and --y 1 is refused
    rather than read as an index that could be mistaken for a label."""
    path, _ = _model_file(tmp_path, make_spec("2-3-3", "tanh,softmax", "cce"), ["3", "5", "7"])
    status, out, err = cli("step", "--params", str(path), "--x", "1,2", "--y", "5", "--json")
    assert status == 0, err
    assert json.loads(out)["rows"][0]["y"] == [0, 1, 0]
    err = one_line_error(cli, "step", "--params", str(path), "--x", "1,2", "--y", "1")
    assert "neither a class (3, 5, 7)" in err


def test_bce_labels(cli, tmp_path):
    path, _ = _model_file(tmp_path, make_spec("2-2-1", "tanh,sigmoid", "bce"), ["benign", "malignant"])
    by_name = json.loads(cli("step", "--params", str(path), "--x", "1,2", "--y", "malignant", "--json")[1])
    by_value = json.loads(cli("step", "--params", str(path), "--x", "1,2", "--y", "1", "--json")[1])
    assert by_name["rows"][0]["y"] == [1] and by_name["params"] == by_value["params"]
    assert by_name["loss"] == pytest.approx(-math.log(by_name["output"][0]), rel=1e-12)  # -ln ŷ for y = 1
    status, text, _ = cli("step", "--params", str(path), "--x", "1,2", "--y", "benign")
    assert "; y = 0 (class benign)" in text
    err = one_line_error(cli, "step", "--params", str(path), "--x", "1,2", "--y", "maybe")
    assert "neither a class (benign, malignant, 0, 1) nor 1 target value" in err
    # without a model: 0/1, or a soft target
    plain = ["--layers", "2-2-1", "--activations", "tanh,sigmoid", "--loss", "bce"]
    assert json.loads(cli("step", *plain, "--x", "1,2", "--y", "0.25", "--json")[1])["rows"][0]["y"] == [0.25]


def test_model_classes_must_fit_its_outputs(cli, tmp_path):
    path, _ = _model_file(tmp_path, make_spec("2-3-3", "tanh,softmax", "cce"), ["a", "b"])
    assert "names 2 classes for a cce network with 3 output(s); expected 3" in \
        one_line_error(cli, "step", "--params", str(path), "--x", "1,2", "--y", "a")


def test_old_plain_params_file_without_flags_is_the_notes_network(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"W1": [[1, 1], [1, 1]], "b1": [0, 0], "W2": [[1], [1]], "b2": [0]}))
    status, out, err = cli("step", "--params", str(tmp_path / "p.json"), "--x", "80,8", "--y", "5", "--json")
    assert status == 0, err
    assert json.loads(out)["loss"] == 29241 and "standardise" not in json.loads(out)


def test_model_file_with_other_network_flags(cli, tmp_path):
    path, _ = _model_file(tmp_path, make_spec("2-3-3", "tanh,softmax", "cce"))
    err = one_line_error(cli, "step", *NOTES, "--params", str(path), "--x", "1,2", "--y", "1")
    assert "drop the network flags" in err
