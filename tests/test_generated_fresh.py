"""The committed trainers in generated/ are exactly what the generator makes today, and each
one runs on its own (imports only NumPy)."""
import subprocess
import sys

import numpy as np
import pytest

from backprop.cli.commands.generate import committed, generated_folder
from backprop.codegen import render_trainer
from backprop.derive import load_toml

COMMITTED = committed()
EXPECTED = {"notes_2_2_1", "notes_5_4_3_2_1", "softmax_cce", "sigmoid_bce"}


def test_the_notes_networks_are_committed():
    assert EXPECTED <= {c.spec.stem for c in COMMITTED}
    assert (generated_folder() / "__init__.py").exists()
    copies = {c.module.stem for c in COMMITTED if c.backend != "numpy"}
    assert copies == {f"{name}_{backend}" for name in ("notes_2_2_1", "notes_5_4_3_2_1")
                      for backend in ("numba", "jax")}
    assert all(c.module.exists() for c in COMMITTED)


@pytest.mark.parametrize("name,engine", [(n, b) for n in ("notes_2_2_1", "notes_5_4_3_2_1")
                                         for b in ("numba", "jax")])
def test_committed_backend_copy_trains_as_the_numpy_one(name, engine):
    pytest.importorskip(engine)
    reference = __import__(f"backprop.generated.{name}", fromlist=["train"])
    module = __import__(f"backprop.generated.{name}_{engine}", fromlist=["train"])
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, module.LAYERS[0]))
    Y = rng.normal(size=(9, module.LAYERS[-1]))
    p_ref, p_eng = reference.init_params(seed=3), module.init_params(seed=3)
    h_ref = reference.train(p_ref, X, Y, epochs=3, lr=0.01, batch_size=2, seed=4)
    h_eng = module.train(p_eng, X, Y, epochs=3, lr=0.01, batch_size=2, seed=4)
    np.testing.assert_allclose(h_eng, h_ref, rtol=1e-12)
    for key in p_ref:
        np.testing.assert_allclose(p_eng[key], p_ref[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec_file, module, command, backend", COMMITTED, ids=[c.module.stem for c in COMMITTED])
def test_committed_trainer_is_fresh(spec_file, module, command, backend):
    fresh = render_trainer(load_toml(spec_file), command=command, backend=backend)
    assert module.read_text(encoding="utf-8") == fresh, (
        f"{module.name} is stale: run `backprop generate --all --force`")


def test_generate_check_passes_in_process(cli):
    status, out, err = cli("generate", "--check")
    assert status == 0, err
    assert out.count("up to date") == len(COMMITTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_trainer_imports_as_a_package_module(name):
    module = __import__(f"backprop.generated.{name}", fromlist=["init_params"])
    params = module.init_params(seed=0)
    X = np.random.default_rng(0).normal(size=(4, module.LAYERS[0]))
    assert module.forward(params, X).shape == (4, module.LAYERS[-1])


def test_committed_trainer_runs_as_a_script(tmp_path):
    script = generated_folder() / "notes_2_2_1.py"
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                               check=True).stdout
    assert "--data" in help_text and "--batch-size" in help_text
    table = tmp_path / "notes.csv"
    table.write_text("iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n")
    run = subprocess.run([sys.executable, str(script), "--data", str(table), "--target", "package",
                          "--epochs", "20", "--lr", "1e-5", "--seed", "0", "--batch-size", "1",
                          "--out", str(tmp_path / "p.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "final loss" in run.stdout and (tmp_path / "p.json").exists()
    bad = subprocess.run([sys.executable, str(script), "--data", str(table), "--target", "salary"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no column 'salary'" in bad.stderr
