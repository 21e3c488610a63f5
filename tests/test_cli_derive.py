"""The derive and count commands, and the one-line exit-2 errors for bad input."""
import json

import pytest


def test_default_is_the_notes_2_2_1(cli):
    status, out, _ = cli("derive")
    assert status == 0
    assert out.startswith("2-2-1 network, activations linear,linear, loss se, with bias: 9 parameters")
    assert out.count("\n∂L/∂") + out.startswith("∂L/∂") == 9
    assert "formula   -2 (y - ŷ) w^2_11 x_i1" in out
    assert "∂L/∂ŷ · ∂ŷ/∂O_11 · ∂O_11/∂w^1_11 = [-2 (y - ŷ)] · [w^2_11] · [x_i1]" in out


def test_json_output(cli):
    status, out, _ = cli("derive", "--layers", "5-4-3-2-1", "--activations",
                         "sigmoid,sigmoid,sigmoid,linear", "--loss", "se", "--format", "json")
    assert status == 0
    doc = json.loads(out)
    assert doc["n_parameters"] == 50 and len(doc["gradients"]) == 50
    first = doc["gradients"][0]
    assert first["parameter"] == "w^4_11" and first["matrix"] == "W4" and first["index"] == [0, 0]
    assert first["formula"]["latex"].startswith("- 2")


def test_latex_format(cli, tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text('layers = [2, 2, 1]\nactivations = ["linear", "linear"]\nloss = "se"\nbias = true\n')
    status, out, _ = cli("derive", "--spec", str(spec), "--format", "latex")
    assert status == 0
    assert r"\begin{align*}" in out and r"w^{2}_{11}" in out and r"\hat{y}" in out


def test_vectorised_wide_network(cli):
    status, out, _ = cli("derive", "--layers", "784-256-128-10", "--activations",
                         "sigmoid,sigmoid,softmax", "--loss", "cce", "--vectorised")
    assert status == 0
    assert "δ^3 = (1/n) (Ŷ - Y)" in out
    assert "δ^1 = (δ^2 W^2ᵀ) ⊙ (O^1 ⊙ (1 - O^1))" in out
    assert "∂L/∂W^1 = Xᵀ δ^1" in out


def test_count(cli):
    status, out, _ = cli("count", "--layers", "5-4-3-2-1")
    assert status == 0
    assert out.strip().endswith("total: 24 + 15 + 8 + 3 = 50")
    status, out, _ = cli("count", "--layers", "5-4-3-2-1", "--json")
    assert json.loads(out)["total"] == 50


def test_step_activation_warns_on_stderr(cli):
    status, _, err = cli("derive", "--layers", "2-2-1", "--activations", "step,linear")
    assert status == 0 and "no gradient flows" in err


BAD = [
    (["derive", "--activations", "sigmoidd"], "unknown activation 'sigmoidd' for layer 1; known:"),
    (["derive", "--loss", "xent"], "unknown loss 'xent'; known: bce, cce, half_se, hinge, mse, se"),
    (["derive", "--layers", "2-0-1"], "layer widths must be positive integers"),
    (["derive", "--layers", "2-x-1"], "layer widths must be positive integers"),
    (["derive", "--layers", "2-2-1", "--activations", "tanh,tanh,tanh"], "3 activation(s) given for 2"),
    (["derive", "--layers", "2-1", "--activations", "softmax"], "has width 1"),
    (["derive", "--layers", "3"], "at least an input and an output layer"),
    (["derive", "--layers", "100000-100000-1"], "use --vectorised"),
    (["derive", "--spec", "/nonexistent/net.toml"], "does not exist"),
    (["derive", "--format", "yaml"], "invalid choice"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2(cli, capsys, args, message):
    try:
        status, _, err = cli(*args)
    except SystemExit as exc:  # argparse's own usage errors exit from inside parse_args
        status, err = exc.code, capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("text,message", [
    ("layers = [2, 2, 1\n", "not valid TOML"),
    ('layers = [2, 2, 1]\nactivations = "linear"\n', "missing key 'loss'"),
    ('layers = [2, 2, 1]\nactivations = "linear"\nloss = "se"\ncolour = 1\n', "unknown key(s) colour"),
    ('layers = "2-2-1"\nactivations = "linear"\nloss = "se"\n', "'layers' must be a list"),
    ('layers = [2, 2, 1]\nactivations = "linear"\nloss = "se"\nbias = "yes"\n', "bias must be true or false"),
    ('layers = [2, -2, 1]\nactivations = "linear"\nloss = "se"\n', "positive integers"),
])
def test_bad_toml(cli, tmp_path, text, message):
    spec = tmp_path / "net.toml"
    spec.write_text(text)
    status, _, err = cli("derive", "--spec", str(spec))
    assert status == 2 and message in err and err.count("\n") == 1


def test_spec_and_flags_do_not_mix(cli, tmp_path):
    spec = tmp_path / "net.toml"
    spec.write_text('layers = [2, 1]\nactivations = "linear"\nloss = "se"\n')
    status, _, err = cli("derive", "--spec", str(spec), "--layers", "2-1")
    assert status == 2 and "cannot be combined" in err


def test_help_on_every_subcommand(cli):
    from backprop.cli.main import build_parser

    parser = build_parser()
    names = parser._subparsers._group_actions[0].choices
    assert {"derive", "count"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exc:
            cli(name, "--help")
        assert exc.value.code == 0
