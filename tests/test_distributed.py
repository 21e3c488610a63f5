"""train --engine dask: data-parallel training on a LocalCluster makes single-process updates."""
import json
import os
import signal
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")

from backprop.core.errors import UserError  # noqa: E402
from backprop.derive import make_spec  # noqa: E402
from backprop.train import distributed as D  # noqa: E402
from backprop.train import runner  # noqa: E402
from backprop.train.data import load_csv  # noqa: E402
from backprop.train.model import load_model  # noqa: E402

N_ROWS = 103
#: (rows of each partition file): uneven on purpose, one file of a single row.
PIECES = ((0, 40), (40, 41), (41, N_ROWS))


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module (2 single-threaded worker processes)."""
    with D.connect(2) as c:
        yield c


@pytest.fixture
def ready(client):
    """The client with both workers up (a test that kills one leaves the nanny restarting it)."""
    client.wait_for_workers(2)
    return client


def _write(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for row in rows:
            fh.write(",".join(v if isinstance(v, str) else repr(float(v)) for v in row) + "\n")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A regression table and a 3-class label table, each as parts/*.csv and as one CSV."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 3))
    out = {}
    Y = np.tanh(X @ rng.normal(size=(3, 2)))
    labels = np.array(["setosa", "versicolor", "virginica"])[np.argmax(X @ rng.normal(size=(3, 3)), 1)]
    labels[:41] = np.where(labels[:41] == "virginica", "setosa", labels[:41])  # not in parts 1-2
    for name, header, rows in (("reg", ["a", "b", "c", "y1", "y2"], [[*x, *y] for x, y in zip(X, Y)]),
                               ("cls", ["a", "b", "c", "kind"], [[*x, k] for x, k in zip(X, labels)])):
        folder = tmp_path_factory.mktemp(name)
        (folder / "parts").mkdir()
        for i, (a, b) in enumerate(PIECES):
            _write(folder / "parts" / f"p{i}.csv", header, rows[a:b])
        _write(folder / "all.csv", header, rows)
        out[name] = folder
    return out


#: (spec, target, optimizer): a regression with plain sgd (the fused path) and a softmax
#: classifier of text labels with momentum (the trainer's optimizer_step).
SPECS = {"reg": (("3-4-2", "tanh,linear", "mse"), ["y1", "y2"], None),
         "cls": (("3-5-3", "relu,softmax", "cce"), ["kind"], {"name": "momentum", "momentum": 0.9})}
#: (gd, batch size, shuffle, epochs): 100 updates each (103 rows: batches of 21 -> 5 per epoch).
MODES = {"batch": ("batch", None, True, 100), "minibatch": ("minibatch", 21, True, 20),
         "minibatch-in-order": ("minibatch", 21, False, 20)}


def _relative(a: dict, b: dict) -> float:
    """The largest difference of an array of a from b's, relative to b's largest entry (a zero
    array, such as untrained biases, counts absolutely)."""
    return max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(b[k])) or 1.0)) for k in b)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("table", list(SPECS))
def test_100_updates_equal_single_process_training(ready, tables, table, mode):
    (layers, acts, loss), target, optimizer = SPECS[table]
    gd, size, shuffle, epochs = MODES[mode]
    spec = make_spec(layers, acts, loss)
    trainer = runner.load_trainer(spec)
    ds = load_csv(tables[table] / "all.csv", target, loss=loss)
    alone = trainer.init_params(seed=1)
    parallel = runner.copy_params(alone)
    trainer.train(alone, ds.X, ds.Y, epochs, 0.05, batch_size=size, shuffle=shuffle, seed=7,
                  optimizer=optimizer and {**optimizer, "lr": 0.05})
    data = str(tables[table] / ("parts/*.csv" if mode != "batch" else "all.csv"))
    run = D.fit(spec, parallel, data, target, client=ready, epochs=epochs, lr=0.05, gd=gd,
                batch_size=size, shuffle=shuffle, seed=7, optimizer=optimizer)
    assert len(run.step_seconds) == 100 == run.history.optimizer_state["t"]
    assert len(run.workers) == 2 and run.history.n_rows == N_ROWS
    assert run.classes == ds.classes  # cce: every label, though parts 1-2 lack virginica
    assert _relative(parallel, alone) <= 1e-12
    assert run.history.losses[-1] == pytest.approx(trainer.loss(alone, ds.X, ds.Y), rel=1e-12)
    assert _relative(parallel, trainer.init_params(seed=1)) > 1e-3  # it did train


def test_a_single_csv_is_cut_into_row_ranges_at_line_starts(ready, tables):
    parts = ready.submit(D.find_parts, str(tables["reg"] / "all.csv"), 3).result()
    assert len(parts) == 3 and parts[0].start > 0 and parts[-1].end == os.path.getsize(parts[0].path)
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
    text = (tables["reg"] / "all.csv").read_bytes()
    assert all(text[p.start - 1:p.start] == b"\n" for p in parts)


def test_a_bad_cell_is_named_by_its_file_and_real_line(ready, tmp_path, tables):
    lines = (tables["reg"] / "all.csv").read_text().splitlines()
    lines[90] = "0.5,oops," + lines[90].split(",", 2)[2]  # line 91 of the file, data row 90
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    spec = make_spec("3-4-2", "tanh,linear", "mse")
    params = runner.load_trainer(spec).init_params(seed=1)
    with pytest.raises(UserError) as err:
        D.fit(spec, params, str(bad), "y1,y2", client=ready, epochs=1, lr=0.1)
    assert str(err.value).startswith(f"{bad} line 91 (data row 90), column 'b': 'oops' is not a number")


def test_batch_norm_is_refused(ready, tables):
    spec = make_spec("3-4-2", "relu,linear", "mse", batch_norm=[True])
    params = runner.load_trainer(spec).init_params(seed=1)
    with pytest.raises(UserError, match="batch-normalised"):
        D.fit(spec, params, str(tables["reg"] / "all.csv"), "y1,y2", client=ready, epochs=1, lr=0.1)


def test_cli_engine_dask_makes_the_numpy_engines_updates(cli, tables, tmp_path):
    """Own LocalCluster (--workers 2), standardised by statistics combined across workers."""
    common = ["train", "--layers", "3-4-2", "--activations", "tanh,linear", "--loss", "mse",
              "--target", "y1,y2", "--standardise", "--gd", "minibatch", "--batch-size", "10",
              "--epochs", "10", "--lr", "0.05", "--seed", "3", "--json"]
    status, out, err = cli(*common, "--data", str(tables["reg"] / "all.csv"))
    assert status == 0, err
    alone = json.loads(out)
    model = tmp_path / "m.json"
    status, out, err = cli(*common, "--data", str(tables["reg"] / "parts" / "*.csv"),
                           "--engine", "dask", "--workers", "2", "--params-out", str(model))
    assert status == 0, err
    dask = json.loads(out)
    assert dask["workers"] and len(dask["workers"]) == 2 and dask["rows"] == N_ROWS
    assert dask["updates_per_epoch"] == 11 and dask["optimizer_steps"] == 110
    assert _relative({k: np.array(v) for k, v in dask["params"].items()},
                     {k: np.array(v) for k, v in alone["params"].items()}) <= 1e-12
    np.testing.assert_allclose(dask["standardised"]["mean"], alone["standardised"]["mean"], rtol=1e-13)
    np.testing.assert_allclose(dask["standardised"]["std"], alone["standardised"]["std"], rtol=1e-13)
    saved = load_model(model)
    assert saved.features == ["a", "b", "c"] and saved.standardised
    assert _relative(saved.params, {k: np.array(v) for k, v in dask["params"].items()}) == 0


def test_a_worker_killed_mid_run_is_one_line_and_the_model_file_is_intact(cli, ready, tables,
                                                                          tmp_path, monkeypatch):
    """SIGKILL one worker process after epoch 2: exit 2, one line naming what happened, and the
    model file holds exactly the single-process parameters after 2 epochs."""
    fit = D.fit

    def killing_fit(*args, callback, **kwargs):
        def after(epoch, run):
            callback(epoch, run)
            if epoch == 2:
                worker = run.workers[0]
                os.kill(ready.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        return fit(*args, callback=after, **kwargs)

    monkeypatch.setattr(D, "fit", killing_fit)
    model = tmp_path / "m.json"
    status, out, err = cli("train", "--layers", "3-4-2", "--activations", "tanh,linear", "--loss",
                           "mse", "--data", str(tables["reg"] / "parts" / "*.csv"),
                           "--target", "y1,y2", "--gd", "minibatch", "--batch-size", "21",
                           "--epochs", "50", "--lr", "0.05", "--seed", "5", "--quiet",
                           "--engine", "dask", "--scheduler", ready.scheduler.address,
                           "--params-out", str(model))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("backprop train: error: the Dask worker tcp://")
    assert "was lost" in err and "in epoch 3" in err
    assert f"{model} holds the model after epoch 2 (--resume {model} to go on)" in err
    saved = load_model(model)
    spec = make_spec("3-4-2", "tanh,linear", "mse")
    trainer = runner.load_trainer(spec)
    ds = load_csv(tables["reg"] / "all.csv", "y1,y2")
    alone = trainer.init_params(seed=5)
    trainer.train(alone, ds.X, ds.Y, 2, 0.05, batch_size=21, seed=5)
    assert _relative(saved.params, alone) <= 1e-12
    assert saved.optimizer_state["t"] == 10


def test_missing_dask_is_one_line_naming_the_extra(cli, monkeypatch, tables):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(UserError, match=r"pip install -e '\.\[dask\]'"):
        D.require_distributed()
    status, out, err = cli("train", "--data", str(tables["reg"] / "all.csv"), "--target", "y1,y2",
                           "--layers", "3-2-2", "--engine", "dask")
    assert status == 2 and err.count("\n") == 1
    assert "--engine dask needs Dask's distributed scheduler" in err and ".[dask]" in err


def test_flags_for_the_other_engine_are_refused(cli, tables):
    data = str(tables["reg"] / "all.csv")
    status, _, err = cli("train", "--data", data, "--target", "y1,y2", "--workers", "2")
    assert status == 2 and "--workers and --scheduler apply to --engine dask only" in err
    status, _, err = cli("train", "--data", data, "--target", "y1,y2", "--engine", "dask",
                         "--test-split", "0.3")
    assert status == 2 and "--test-split is not available with --engine dask" in err
