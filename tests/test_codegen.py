"""The printer, the templates and the generated module's behaviour (API, dtype, seeds,
stability, GD variants, the notes' table)."""
import ast
import inspect
import math
import warnings

import jinja2
import numpy as np
import pytest
import sympy
from sympy.codegen.numpy_nodes import logaddexp

from backprop.codegen import load_trainer, render_trainer
from backprop.codegen import forms, naming
from backprop.codegen.printer import BackpropPrinter, print_numpy
from backprop.codegen.render import ENVIRONMENT, render, trainer_context
from backprop.derive import ACTIVATIONS, make_spec

Z, O, Y = sympy.symbols("Z O Y")
NOTES_X = np.array([[80.0, 8.0], [60.0, 5.0], [110.0, 7.0]])  # IQ, CGPA
NOTES_Y = np.array([5.0, 3.0, 8.0])  # package (LPA)


@pytest.fixture(scope="module")
def notes():
    return load_trainer(make_spec("2-2-1", "linear", "se"))


# -- printer: exact strings ------------------------------------------------------------------------
@pytest.mark.parametrize("expr, text", [
    (sympy.exp(-logaddexp(0, -Z)), "np.exp(-np.logaddexp(0, -Z))"),
    (O * (1 - O), "O*(1 - O)"),
    (sympy.Heaviside(O, 0), "np.heaviside(O, 0)"),
    (sympy.Max(0, Z), "np.maximum(0, Z)"),
    (sympy.Piecewise((Z, Z > 0), (Z / 100, True)), "np.where(Z > 0, Z, (1/100)*Z)"),
    (sympy.Piecewise((1, O > 0), (sympy.Rational(1, 100), True)),
     "np.where(O > 0, 1, 1/100).astype(O.dtype)"),
    (forms.RowSum(O * Y), "(O*Y).sum(axis=1, keepdims=True)"),
    (forms.RowMax(Z), "Z.max(axis=1, keepdims=True)"),
])
def test_printer_exact(expr, text):
    assert BackpropPrinter().doprint(expr) == text


def test_printer_heaviside_mask_only_for_a_whole_expression():
    """relu' as a bool mask (`dO1 *= O1 > 0`) when it is the whole piece; inside arithmetic
    the float form stays (a bool mask must never be negated or added)."""
    mask = BackpropPrinter({"heaviside_mask": True})
    assert mask.doprint(sympy.Heaviside(O, 0)) == "np.greater(O, 0)"
    assert mask.doprint(sympy.Heaviside(O, 1)) == "np.greater_equal(O, 0)"
    assert mask.doprint(1 - sympy.Heaviside(O, 0)) == "1 - np.heaviside(O, 0)"


@pytest.mark.parametrize("activation, text", [
    ("sigmoid", "(1/2)*np.tanh((1/2)*Z) + 1/2"),
    ("softplus", "np.log1p(np.exp(-np.abs(Z))) + np.maximum(0, Z)"),
])
def test_fast_stable_forms_equal_the_table_forms(activation, text):
    """The forward forms the trainer prints: same values as the table's, finite at ±1000."""
    piece = forms.layer_pieces(make_spec("2-2", activation, "se"))[0]
    assert print_numpy(piece.forward, {forms.z: "Z"}) == text
    table = sympy.lambdify(forms.z, ACTIVATIONS[activation].stable(forms.z), "numpy")
    fast = sympy.lambdify(forms.z, piece.forward, "numpy")
    z = np.concatenate([np.linspace(-30, 30, 601), [-1000.0, -700.0, 700.0, 1000.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        np.testing.assert_allclose(fast(z), table(z), rtol=1e-12, atol=1e-15)


def test_printer_records_imports_and_refuses_foreign_modules():
    p = BackpropPrinter()
    p.doprint(sympy.tanh(Z))
    assert p.module_imports == {"numpy": {"tanh"}}
    assert p.imports() == ["import numpy as np"]
    p._module_format("math.pi")
    with pytest.raises(ValueError, match="only numpy"):
        p.imports()


def test_printer_is_strict():
    with pytest.raises(Exception, match="not supported|Unsupported|not implemented|PrintMethod"):
        BackpropPrinter().doprint(sympy.Function("mystery")(Z))


def test_printer_cse_names_temporaries():
    lines, text = BackpropPrinter().statements(forms.ROWWISE["softmax"].forward.xreplace({forms.z: Z}))
    assert lines == ["_t0 = Z.max(axis=1, keepdims=True)",
                     "_t1 = np.exp(-_t0 + np.maximum(Z, -np.finfo(Z.dtype).max + np.maximum(0, _t0)))"]
    assert text == "_t1/_t1.sum(axis=1, keepdims=True)"


def test_sigmoid_bce_loss_is_taken_on_the_logits():
    out = forms.output_pieces(make_spec("2-1", "sigmoid", "bce"))
    assert out.on_logits and out.delta == (forms.yhat - forms.y) / forms.n_rows
    text = print_numpy(out.loss_term, {forms.y: "Y", forms.z: "Z1"})
    assert text == "Y*np.logaddexp(0, -Z1) + (1 - Y)*np.logaddexp(0, Z1)"


def test_naming_refuses_non_identifiers():
    assert naming.activation("relu") == "relu"
    assert naming.activation("loss") == "loss_activation"  # never shadows the module API
    for bad in ["os.system", "a b", "x\nimport os", "class", "é"]:
        with pytest.raises(ValueError):
            naming.identifier(bad)


# -- templates ----------------------------------------------------------------------------------------
def test_environment_is_strict():
    assert ENVIRONMENT.undefined is jinja2.StrictUndefined
    assert ENVIRONMENT.trim_blocks and ENVIRONMENT.lstrip_blocks and ENVIRONMENT.keep_trailing_newline


@pytest.mark.parametrize("missing", ["loss_function", "backward_blocks", "command", "functions"])
def test_a_template_missing_a_variable_raises(missing):
    context = trainer_context(make_spec("2-2-1", "sigmoid", "se"))
    del context[missing]
    with pytest.raises(jinja2.UndefinedError):
        render("trainer.py.j2", context)


def test_templates_hold_no_jinja_arithmetic():
    """Jinja expressions are names and attributes only; the maths arrives printed."""
    for name in ENVIRONMENT.list_templates():
        source = ENVIRONMENT.loader.get_source(ENVIRONMENT, name)[0]
        for tag in source.split("{{")[1:]:
            expr = tag.split("}}")[0]
            assert not any(op in expr for op in "+*/%") and " - " not in expr, (name, expr)


def test_rendering_is_byte_identical_and_standalone():
    spec = make_spec("4-8-3", ["relu", "softmax"], "cce")
    source = render_trainer(spec, command="backprop generate --spec a.toml -o b.py")
    assert source == render_trainer(spec, command="backprop generate --spec a.toml -o b.py")
    header = source.splitlines()[:8]
    assert "do not edit" in header[0].lower() and "SymPy" in header[0] and "backprop 0" in header[0]
    assert spec.digest() in header[1] and 'loss = "cce"' in "\n".join(header)
    # the command after the spec: lines 1-2 hold no user text (PEP 263 reads them)
    assert header[6:8] == ["# Regenerate with:", "#     backprop generate --spec a.toml -o b.py"]
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported - {"argparse", "csv", "json", "os", "sys", "tempfile"} == {"numpy"}


def test_command_text_cannot_inject_code():
    source = render_trainer(make_spec("2-1", "linear", "se"), command="x\nimport os; os.remove('f')")
    assert "\nimport os;" not in source
    tree = ast.parse(source)
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" and n.lineno < 10
                   for n in ast.walk(tree))


def test_generated_code_reads_like_the_notes():
    source = render_trainer(make_spec("5-4-3-2-1", ["sigmoid"] * 3 + ["linear"], "se"))
    for line in ["# ∂L/∂W^2 = O^1ᵀ δ^2", "# ∂L/∂b^4 = Σ_rows δ^4", "delta3 = dO3 * sigmoid_derivative(O3)",
                 "dW1 = X.T @ delta1", "Z2 = O1 @ W2 + b2", "def sigmoid(Z):",
                 "# δ^4 = ∂L/∂Z^4 = (1/n) (2 (Ŷ - Y))",
                 "# δ^3 = ∂L/∂Z^3 = (δ^4 W^4ᵀ) ⊙ (O^3 ⊙ (1 - O^3)): layer 3, sigmoid"]:
        assert line in source
    assert "dO0" not in source and "delta1 @ W1.T" not in source  # no input gradient


def test_inspect_shows_the_generated_source(notes):
    assert "# ∂L/∂W^1 = Xᵀ δ^1" in inspect.getsource(notes.loss_and_gradients)
    assert load_trainer(make_spec("2-2-1", "linear", "se")) is notes  # cached


# -- the generated module's API ---------------------------------------------------------------------
def test_constants_and_shapes(notes):
    assert notes.LAYERS == (2, 2, 1) and notes.ACTIVATIONS == ("linear", "linear")
    assert notes.LOSS == "se" and notes.BIAS is True and notes.DTYPE == np.float64
    p = notes.init_params(scheme="ones")
    assert {k: v.shape for k, v in p.items()} == {"W1": (2, 2), "b1": (2,), "W2": (2, 1), "b2": (1,)}
    assert (p["W1"] == 1).all() and (p["b1"] == 0).all()
    n = notes.nodes(p, NOTES_X[:1])
    assert list(n) == ["Z1", "O1", "Z2", "O2"]
    # the notes' first row with w = 1, b = 0: O_11 = O_12 = 80 + 8, ŷ = 176
    assert n["O1"].tolist() == [[88.0, 88.0]] and n["O2"].tolist() == [[176.0]]
    assert notes.forward(p, NOTES_X).shape == (3, 1)
    assert notes.loss(p, NOTES_X[:1], [5.0]) == (5 - 176) ** 2
    assert notes.gradients(p, NOTES_X[:1], [5.0])["W2"].tolist() == [[30096.0], [30096.0]]


def test_init_schemes(notes):
    for scheme in ["glorot", "he", "ones", "zeros"]:
        p = notes.init_params(seed=0, scheme=scheme)
        assert all((p[f"b{k}"] == 0).all() for k in (1, 2))
    with pytest.raises(ValueError, match="unknown init scheme"):
        notes.init_params(scheme="magic")
    no_bias = load_trainer(make_spec("2-2-1", "linear", "se", bias=False))
    assert set(no_bias.init_params()) == {"W1", "W2"}


def test_bad_shapes_are_refused(notes):
    p = notes.init_params(seed=0)
    with pytest.raises(ValueError, match="2 columns"):
        notes.forward(p, np.ones((3, 3)))
    with pytest.raises(ValueError, match="Y must have shape"):
        notes.loss(p, NOTES_X, np.ones((2, 1)))


def test_sgd_step_updates_in_place_and_returns_the_loss_before(notes):
    p = notes.init_params(scheme="ones")
    W1 = p["W1"]
    before = notes.loss(p, NOTES_X[:1], NOTES_Y[:1])
    grads = notes.gradients(p, NOTES_X[:1], NOTES_Y[:1])
    expected = {k: v - 0.1 * grads[k] for k, v in p.items()}
    assert notes.sgd_step(p, NOTES_X[:1], NOTES_Y[:1], 0.1) == before == 29241.0
    assert p["W1"] is W1
    for k in p:
        np.testing.assert_array_equal(p[k], expected[k])
    np.testing.assert_allclose(p["W2"], [[-3008.6], [-3008.6]])  # 1 - 0.1 × 30096


# -- float32, seeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_float32_stays_float32(activation):
    spec = make_spec("3-4-3", [activation, "softmax"], "cce")
    trainer = load_trainer(spec, "float32")
    assert trainer.DTYPE == np.float32
    p = trainer.init_params(seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3))  # float64 in, float32 inside
    Y = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    assert all(v.dtype == np.float32 for v in p.values())
    assert all(v.dtype == np.float32 for v in trainer.nodes(p, X).values())
    assert all(v.dtype == np.float32 for v in trainer.gradients(p, X, Y).values())
    trainer.train(p, X, Y, epochs=2, lr=0.1, batch_size=2, seed=0)
    assert all(v.dtype == np.float32 for v in p.values())
    # the float64 module computes in float32 too when handed float32 parameters
    p64 = load_trainer(spec).init_params(seed=0, dtype=np.float32)
    assert load_trainer(spec).forward(p64, X).dtype == np.float32


def test_same_seed_gives_bit_identical_training():
    trainer = load_trainer(make_spec("4-8-3", ["relu", "softmax"], "cce"))
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(20, 4)), np.eye(3)[rng.integers(0, 3, 20)]
    runs = []
    for _ in range(2):
        p = trainer.init_params(seed=11)
        history = trainer.train(p, X, Y, epochs=5, lr=0.1, batch_size=3, seed=5)
        runs.append((p, history))
    (p1, h1), (p2, h2) = runs
    assert h1 == h2
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    p3 = trainer.init_params(seed=11)
    assert trainer.train(p3, X, Y, epochs=5, lr=0.1, batch_size=3, seed=6) != h1


# -- stability at |z| = 1000 -------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [
    make_spec("2-4-1", ["tanh", "sigmoid"], "bce"),
    make_spec("2-3", ["sigmoid"], "bce"),
    make_spec("2-3", ["sigmoid"], "cce"),
    make_spec("2-3", ["sigmoid"], "se"),
    make_spec("2-3", ["softmax"], "cce"),
    make_spec("2-3", ["softmax"], "se"),
    make_spec("2-3-3", ["softplus", "softmax"], "cce"),
    make_spec("2-3-3", ["sigmoid", "sigmoid"], "bce"),
], ids=lambda s: "-".join(s.activations) + "-" + s.loss)
def test_stable_at_logits_of_magnitude_1000(spec):
    trainer = load_trainer(spec)
    p = trainer.init_params(seed=0)
    for k in range(1, spec.depth + 1):
        p[f"W{k}"][:] = 0.0
    last = spec.depth
    # only the last layer sees ±1000: its pre-activations are [1000, -1000, 0][:width] per row
    p[f"b{last}"][:] = [1000.0, -1000.0, 0.0][: spec.n_outputs]
    X = np.array([[1.0, -1.0], [0.5, 2.0]])
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[:, : spec.n_outputs] if spec.n_outputs > 1 else \
        np.array([[0.0], [1.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        value = trainer.loss(p, X, Y)
        grads = trainer.gradients(p, X, Y)
        trainer.sgd_step(p, X, Y, 0.01)
    assert math.isfinite(value)
    assert all(np.isfinite(g).all() for g in grads.values())
    if spec.activations[-1] == "sigmoid" and spec.loss == "bce" and spec.n_outputs == 1:
        # row 1: y = 0 at z = 1000 costs 1000; row 2: y = 1 at z = 1000 costs e^-1000: mean 500
        assert value == pytest.approx(500.0)
    if spec.activations[-1] == "softmax" and spec.loss == "cce":
        # row 1 picks the 1000 logit (cost 0), row 2 the -1000 one (cost 2000): mean 1000
        assert value == pytest.approx(1000.0)


# -- batch, stochastic and mini-batch GD ---------------------------------------------------------
@pytest.mark.parametrize("batch_size, updates", [(None, 1), (1, 10), (3, 4), (5, 2), (10, 1), (64, 1)])
def test_updates_per_epoch(batch_size, updates, monkeypatch):
    trainer = load_trainer(make_spec("2-2-1", "sigmoid", "se"))
    calls = []
    real = trainer.sgd_step

    def counting(params, X, Y, lr):
        calls.append(len(X))
        return real(params, X, Y, lr)

    monkeypatch.setattr(trainer, "sgd_step", counting)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 2)), rng.normal(size=10)
    epochs_seen = []
    history = trainer.train(trainer.init_params(seed=0), X, Y, epochs=3, lr=0.1, batch_size=batch_size,
                            seed=0, callback=lambda e, loss, p: epochs_seen.append((e, loss)))
    assert len(calls) == 3 * updates and sum(calls) == 30
    assert len(history) == 3 and [e for e, _ in epochs_seen] == [1, 2, 3]
    assert [l for _, l in epochs_seen] == history


def test_training_on_the_notes_table_lowers_the_loss(notes):
    for batch_size in (None, 1, 2):
        p = notes.init_params(seed=0)
        history = notes.train(p, NOTES_X, NOTES_Y, epochs=50, lr=1e-5, batch_size=batch_size, seed=0)
        assert history[-1] < history[0] / 10
        assert notes.loss(p, NOTES_X, NOTES_Y) < history[0]


def test_the_notes_start_diverges_as_the_notes_warn(notes):
    """w = 1, b = 0 and η = 0.1 on raw IQ values: the first update overshoots by thousands."""
    p = notes.init_params(scheme="ones")
    with np.errstate(over="ignore", invalid="ignore"):
        history = notes.train(p, NOTES_X, NOTES_Y, epochs=3, lr=0.1, batch_size=1, shuffle=False)
    assert history[0] > 1e4 and not history[-1] < history[0]


@pytest.mark.xfail(reason="known gap: softmax + bce keeps log(1 - ŷ) and ∂L/∂ŷ = (1-y)/(1-ŷ) - y/ŷ, "
                          "which overflow when a softmax output saturates; no logit rule for it yet",
                   raises=(FloatingPointError, RuntimeWarning, AssertionError), strict=True)
def test_softmax_with_bce_at_logits_of_magnitude_1000():
    trainer = load_trainer(make_spec("2-3", ["softmax"], "bce"))
    p = trainer.init_params(seed=0)
    p["W1"][:] = 0.0
    p["b1"][:] = [1000.0, -1000.0, 0.0]
    X, Y = np.ones((1, 2)), np.array([[0.0, 1.0, 0.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        assert math.isfinite(trainer.loss(p, X, Y))
        assert all(np.isfinite(g).all() for g in trainer.gradients(p, X, Y).values())
