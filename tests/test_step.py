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
from backprop.derive import ACTIVATIONS, derive, make_spec

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
    params = step_cmd.load_trainer(spec).init_params(seed=1)
    for name in params:
        params[name] = params[name] + rng.normal(0, 0.2, params[name].shape)
    result = step_cmd.step(spec, x, y, 0.1, params)
    values = step_cmd.symbol_values(spec, x, y, result["params"], result["nodes"])
    derivation = derive(spec)
    for g in derivation.gradients:
        by_chain = sum(math.prod(path) for path in step_cmd.chain_values(g, values))
        name, index = g.key
        assert by_chain == pytest.approx(result["grads"][name][index], rel=1e-9, abs=1e-12), g.name
    problem = step_cmd.Problem(spec, [step_cmd.Row(x, x, y)], 0.1)
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
    assert f"--layers 2-2-1 --activations linear --loss se -o {target}" in lines[lines.index("# Regenerate with:") + 1]
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
