"""The backend table: every engine renders the same derivation, a missing engine is one line
naming its pip extra, and every installed engine trains the notes' networks to the NumPy
trainer's numbers."""
import importlib.util
import json

import numpy as np
import pytest

from backprop.codegen import BACKENDS, load_trainer, render_trainer
from backprop.codegen import backends
from backprop.core.errors import UserError
from backprop.derive import make_spec

NOTES = [make_spec("2-2-1", "linear", "se"),
         make_spec("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se")]
ENGINES = [name for name in BACKENDS if name != backends.DEFAULT]
INSTALLED = [name for name in ENGINES if not backends.missing(name)]


def test_numpy_is_the_default_and_imports_numpy_only():
    source = render_trainer(NOTES[0])
    assert source == render_trainer(NOTES[0], backend="numpy")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert {line for line in imports if "numpy" in line} == {"import numpy as np"}
    assert not any(name in line for line in imports for name in ("numba", "jax"))


def test_unknown_backend_is_one_line_naming_the_choices():
    with pytest.raises(UserError, match="unknown backend 'cuda'; choose one of numpy"):
        render_trainer(NOTES[0], backend="cuda")
    with pytest.raises(UserError, match="unknown backend"):
        load_trainer(NOTES[0], backend="cuda")


@pytest.mark.parametrize("name", ENGINES)
def test_missing_engine_names_the_extra(name, monkeypatch):
    real = importlib.util.find_spec
    absent = set(BACKENDS[name].modules)
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m in absent else real(m, *a))
    with pytest.raises(UserError) as caught:
        load_trainer(NOTES[0], backend=name)
    message = str(caught.value)
    assert f"pip install -e '.[{BACKENDS[name].extra}]'" in message and "\n" not in message
    # rendering needs no engine: the source is text
    assert f"{BACKENDS[name].engine} trainer for the 2-2-1 network" in render_trainer(NOTES[0], backend=name)


@pytest.mark.parametrize("name", ENGINES)
def test_cli_generate_writes_the_backend_and_records_it(name, cli, tmp_path):
    out = tmp_path / f"t_{name}.py"
    status, stdout, err = cli("generate", "--backend", name, "-o", str(out))
    assert status == 0, err
    text = out.read_text(encoding="utf-8")
    header = text[:text.index('"""')]  # the regenerate command, in the comment block on top
    assert f"--backend {name}" in header and all(len(line) <= 99 for line in header.splitlines())
    assert f"{BACKENDS[name].engine} trainer" in stdout
    compile(text, str(out), "exec")


def test_cli_rejects_an_unknown_backend(cli):
    with pytest.raises(SystemExit) as caught:
        cli("generate", "--backend", "cuda", "-o", "x.py")
    assert caught.value.code == 2


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("spec", NOTES, ids=["2-2-1", "5-4-3-2-1"])
@pytest.mark.parametrize("batch_size", [1, 3, None], ids=["sgd", "mini-3", "batch"])
def test_every_engine_trains_the_notes_networks_as_numpy_does(name, spec, batch_size):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(10, spec.layers[0]))
    Y = rng.normal(size=(10, spec.layers[-1]))
    reference, engine = load_trainer(spec), load_trainer(spec, backend=name)
    p_ref, p_eng = reference.init_params(seed=2), engine.init_params(seed=2)
    for key in p_ref:
        np.testing.assert_array_equal(p_ref[key], p_eng[key])
    lr = 0.001 if spec.layers[0] == 2 else 0.1
    h_ref = reference.train(p_ref, X, Y, epochs=4, lr=lr, batch_size=batch_size, seed=5)
    h_eng = engine.train(p_eng, X, Y, epochs=4, lr=lr, batch_size=batch_size, seed=5)
    np.testing.assert_allclose(h_eng, h_ref, rtol=1e-12)
    for key in p_ref:
        assert isinstance(p_eng[key], np.ndarray) and p_eng[key].dtype == np.float64
        np.testing.assert_allclose(p_eng[key], p_ref[key], rtol=1e-12, atol=1e-14)
    L_ref, g_ref = reference.loss_and_gradients(p_ref, X, Y)
    L_eng, g_eng = engine.loss_and_gradients(p_eng, X, Y)
    assert L_eng == pytest.approx(L_ref, rel=1e-12)
    for key in g_ref:
        np.testing.assert_allclose(np.asarray(g_eng[key]), g_ref[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", INSTALLED)
def test_cli_train_through_an_engine_matches_numpy(name, cli):
    runs = {}
    for backend in ("numpy", name):
        status, out, err = cli("train", "--example", "notes-iq-cgpa", "--gd", "sgd", "--epochs", "20",
                               "--backend", backend, "--seed", "0", "--json")
        assert status == 0, err
        runs[backend] = json.loads(out)
    assert runs[name]["backend"] == name
    assert runs[name]["loss_final"] == pytest.approx(runs["numpy"]["loss_final"], rel=1e-12)
    for key, value in runs["numpy"]["params"].items():
        np.testing.assert_allclose(runs[name]["params"][key], value, rtol=1e-12)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_no_top_level_name_is_defined_twice(name):
    """A backend's template adds functions to the NumPy trainer's: a name it reuses would
    silently replace the NumPy one for every later caller (the jax step once shadowed the
    sgd optimiser's _sgd_update)."""
    import ast
    import collections

    for spec in (NOTES[0], make_spec("3-4-3", "tanh,softmax", "cce")):
        tree = ast.parse(render_trainer(spec, backend=name))
        names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        names += [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                  if isinstance(t, ast.Name)]
        twice = [key for key, count in collections.Counter(names).items() if count > 1]
        assert twice == [], twice
