"""Generated trainers a learner is glad to read (issue 14): the maths first, in the notes'
notation (docstring equations and δ-form comments from the notation printer, stable forms
commented with the textbook form they replace), the fast paths in their own marked section
with the notes' names (w1_12, numbered from 1), no line over 99 characters, no dated
measurements, and the runtime last or, with ``--no-cli``, left out."""
from __future__ import annotations

import ast
import importlib.util
import inspect
import re

import numpy as np
import pytest

from backprop.cli.commands.generate import committed
from backprop.codegen import load_trainer, naming, render_trainer
from backprop.codegen.render import stable_comment
from backprop.derive import ACTIVATIONS, LOSSES, make_spec
from backprop.derive.activations import z
from backprop.derive.printing import NotationPrinter

COMMITTED = {c.module.stem: c.module.read_text(encoding="utf-8") for c in committed()}


def _every_entry():
    """A small spec per activation (hidden, and as the output) and per loss: every table row."""
    specs = [make_spec("3-4-2", [name, "linear"], "se") for name, act in ACTIVATIONS.items() if act.elementwise]
    specs += [make_spec("3-4-2", ["tanh", name], "se") for name in ACTIVATIONS]
    specs += [make_spec("3-4-2", ["relu", "softmax" if LOSSES[name].one_hot else "sigmoid"], name)
              for name in LOSSES]
    specs += [make_spec("1-12-1", "tanh,linear", "se"), make_spec("2-3-2", "softmax,softmax", "se")]
    return specs


SPECS = _every_entry()


@pytest.fixture(scope="module")
def rendered():
    """name -> source: the four committed trainers and one per table entry (with and without CLI)."""
    out = {f"generated/{name}.py": text for name, text in COMMITTED.items()}
    for spec in SPECS:
        out[spec.describe()] = render_trainer(spec)
    out["no-cli " + SPECS[0].describe()] = render_trainer(SPECS[0], cli=False)
    return out


def test_every_table_entry_is_covered():
    names = {a for s in SPECS for a in s.activations}
    assert names == set(ACTIVATIONS) and {s.loss for s in SPECS} == set(LOSSES)


def test_no_line_over_99_characters(rendered):
    long = [(name, i, len(line)) for name, text in rendered.items()
            for i, line in enumerate(text.splitlines(), 1) if len(line) > 99]
    assert long == []


@pytest.mark.parametrize("spelling", ["Heaviside", "Max(", "Min(", "Piecewise", "⊙ (1)"])
def test_no_sympy_spelling_anywhere(rendered, spelling):
    """The docstring equations and the comments come from the notes' notation printer."""
    assert [name for name, text in rendered.items() if spelling in text] == []


def test_no_dated_measurements(rendered):
    for name, text in rendered.items():
        assert not re.search(r"20\d\d-\d\d-\d\d", text), name
        assert "Measured (" not in text, name


def test_the_maths_comes_first_then_the_fast_paths_then_the_runtime():
    text = COMMITTED["sigmoid_bce"]
    marks = ['"""NumPy trainer for the', "What it computes", "# ---- the maths", "def sigmoid(Z):",
             "def forward(params, X, every_node=False):", "def _batch_loss(",
             "def loss_and_gradients(params, X, Y):", "# ---- fast paths: the same maths, fused for speed",
             "def _step(", "def _sgd_step_scalar(", "def sgd_step(", "# ---- runtime", "def save_model(",
             "def main(argv=None):", 'if __name__ == "__main__":']
    places = [text.index(mark) for mark in marks]
    assert places == sorted(places)
    # the docstring's equations are the notation printer's: δ form, ⊙, ᵀ
    doc = ast.get_docstring(ast.parse(text))
    assert "    δ^1 = (δ^2 W^2ᵀ) ⊙ (1 - O^1 ⊙ O^1)" in doc and "    ∂L/∂W^1 = Xᵀ δ^1" in doc


def test_loss_and_gradients_reads_in_the_delta_form():
    t = load_trainer(make_spec("2-4-1", ["tanh", "sigmoid"], "bce"))
    source = inspect.getsource(t.loss_and_gradients)
    for comment in ["# δ^2 = ∂L/∂Z^2 = (1/n) (Ŷ - Y): the output layer",
                    "# ∂L/∂W^2 = O^1ᵀ δ^2", "# ∂L/∂b^2 = Σ_rows δ^2",
                    "# ∂L/∂O^1 = δ^2 W^2ᵀ: what layer 2 sends back",
                    "# δ^1 = ∂L/∂Z^1 = (δ^2 W^2ᵀ) ⊙ (1 - O^1 ⊙ O^1): layer 1, tanh",
                    "# ∂L/∂W^1 = Xᵀ δ^1"]:
        assert comment in source
    forward = inspect.getsource(t.forward)
    assert "# layer 1 (tanh): Z^1 = X W^1 + b^1, O^1 = tanh(Z^1)" in forward
    assert "Z1 = X @ W1 + b1" in forward


def test_one_forward_and_loss_and_gradients_agree_with_the_thin_wrappers():
    t = load_trainer(make_spec("3-4-2", ["relu", "softmax"], "cce"))
    rng = np.random.default_rng(0)
    params = t.init_params(seed=1)
    X, Y = rng.normal(size=(5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    every = t.forward(params, X, every_node=True)
    assert [a.shape for a in every] == [(5, 4), (5, 4), (5, 2), (5, 2)]
    np.testing.assert_array_equal(every[-1], t.forward(params, X))
    assert list(t.nodes(params, X)) == ["Z1", "O1", "Z2", "O2"]
    for (name, node), array in zip(t.nodes(params, X).items(), every):
        np.testing.assert_array_equal(node, array, err_msg=name)
    value, grads = t.loss_and_gradients(params, X, Y)
    assert value == t.loss(params, X, Y)
    probs = t.forward(params, X)
    assert value == pytest.approx(-np.log(probs[Y == 1]).mean(), rel=1e-12)
    assert grads.keys() == params.keys()
    for name, g in t.gradients(params, X, Y).items():
        np.testing.assert_array_equal(g, grads[name])


_NOTES = NotationPrinter(depth=1, single_output=True)


@pytest.mark.parametrize("name", sorted(n for n, a in ACTIVATIONS.items() if a.elementwise and a.sym(z) != z))
def test_a_stable_form_is_commented_with_the_textbook_form_it_replaces(name):
    """The textbook g is the table's sym in the notes' notation; an entry without a stable
    form (its code is the textbook form) gets no such comment."""
    source = render_trainer(make_spec("2-2-1", [name, "linear"], "se"))
    function = source[source.index(f"def {naming.activation(name)}(Z):"):]
    function = function[:function.index("\n\n\n")]
    comment = " ".join(line.strip().lstrip("#").strip() for line in function.splitlines()
                       if line.strip().startswith("#"))
    if ACTIVATIONS[name].stable is None:
        assert comment == "" and stable_comment(name, z) == ""
    else:
        assert comment.startswith(f"{name}(z) = {_NOTES.text(ACTIVATIONS[name].sym(z))}, written ")
        assert comment.endswith("never overflows")


def test_sigmoid_says_what_it_is_written_as():
    source = COMMITTED["sigmoid_bce"]
    assert "    # sigmoid(z) = 1/(1 + exp(-z)), written as (1 + tanh(z/2))/2 so that it never overflows\n" \
           "    return (1/2)*np.tanh((1/2)*Z) + 1/2\n" in source
    assert "# bce per output: -(y log(ŷ) + (1 - y) log(1 - ŷ)), written with the logits Z2" in source


# -- the fast paths' names: the notes', numbered from 1 -------------------------------------------
def test_weight_names_follow_the_notes_and_stay_unambiguous_past_nine_nodes():
    assert naming.weight(1, 0, 1, 2, 2) == "w1_12"  # w^1_12
    assert naming.weight(2, 2, 0, 3, 1) == "w2_31"
    assert naming.weight(1, 0, 9, 1, 12) == "w1_1_10"  # w^1_1,10: every index separated
    assert naming.weight(1, 10, 0, 12, 1) == "w1_11_1"
    assert naming.element("O", 1, 0) == "o1_1" and naming.element("delta", 2, 3) == "delta2_4"
    assert naming.element("dO", 1, 1) == "dO1_2" and naming.element("b", 3, 0) == "b3_1"
    assert naming.inputs(2) == ["x_1", "x_2"] and naming.target(0) == "y_1"


def test_a_wide_layers_scalar_locals_are_all_distinct():
    source = render_trainer(make_spec("1-12-1", "tanh,linear", "se"))
    body = source[source.index("def _sgd_step_scalar("):source.index("def sgd_step(")]
    assert "w1_1_10" in body and "w2_12_1" in body and "w1_110" not in body
    tree = ast.parse(body.replace("\n    ", "\n").split("\n", 1)[1])
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    weights = sorted(n for n in stored if n.startswith("w"))
    assert len(weights) == 24 and all(re.fullmatch(r"w[12]_\d+_\d+", n) for n in weights)


def test_the_small_trainer_unrolls_the_notes_network():
    body = COMMITTED["notes_2_2_1"]
    body = body[body.index("def _sgd_step_scalar("):body.index("def sgd_step(")]
    for line in ["[[w1_11, w1_12], [w1_21, w1_22]] = W1.tolist()", "[x_1, x_2] = x",
                 "z1_1 = b1_1 + x_1*w1_11 + x_2*w1_21", "z2_1 = b2_1 + z1_1*w2_11 + z1_2*w2_21",
                 "dO1_1 = w2_11*delta2_1", "w1_21 -= lr*(x_2*dO1_1)"]:  # linear: δ^1 is ∂L/∂O^1
        assert line in body


# -- --no-cli: the maths and training, NumPy only ---------------------------------------------------
def _imported(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_cli_leaves_the_runtime_out_and_still_trains(cli, tmp_path):
    out = tmp_path / "small.py"
    status, _, err = cli("generate", "--layers", "2-3-1", "--activations", "tanh,sigmoid", "--loss", "bce",
                         "--no-cli", "-o", str(out))
    assert status == 0, err
    source = out.read_text(encoding="utf-8")
    assert "--no-cli" in source[:source.index('"""')]  # the recorded command regenerates the same file
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"numpy"} and not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    assert not any(isinstance(n, ast.If) for n in tree.body)  # no __main__
    assert "# ---- runtime" not in source and "argparse" not in source
    module = _imported(out, "no_cli_trainer")
    for gone in ("main", "save_model", "load_model", "split_rows", "_read_table"):
        assert not hasattr(module, gone), gone
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    Y = (X[:, :1] + X[:, 1:] > 0).astype(float)
    params = module.init_params(seed=0)
    history = module.train(params, X, Y, epochs=30, lr=0.5, batch_size=4, seed=0)
    assert history[-1] < history[0] / 2
    assert module.accuracy(params, X, Y) > 0.9
    # the same maths as the full trainer, bit for bit
    full = load_trainer(make_spec("2-3-1", "tanh,sigmoid", "bce"))
    start = module.init_params(seed=3)
    np.testing.assert_array_equal(module.gradients(start, X, Y)["W1"], full.gradients(start, X, Y)["W1"])


def test_no_cli_is_refused_with_all(cli):
    status, _, err = cli("generate", "--all", "--no-cli")
    assert status == 2 and "--no-cli" in err
