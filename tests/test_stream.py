"""`backprop train --stream` (train/stream.py): file-order streaming equals in-memory training bit
for bit, the shuffle buffer is seeded and bounded, the loader's bad-cell errors, standardisation,
Parquet, the missing-extra message, and flat memory on a file far bigger than the memory cap."""
import builtins
import io
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from backprop.codegen import load_trainer  # noqa: E402
from backprop.derive import make_spec  # noqa: E402
from backprop.train import runner, stream  # noqa: E402
from backprop.train.data import load_csv  # noqa: E402


def write_table(path, X, Y, names=None, labels=None):
    """A CSV of X's columns and Y's (or one column of text labels), 17 significant digits."""
    names = names or [f"x{i}" for i in range(X.shape[1])] + [f"y{j}" for j in range(Y.shape[1])]
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(len(X)):
            cells = [repr(float(v)) for v in X[i]]
            cells += [labels[i]] if labels is not None else [repr(float(v)) for v in Y[i]]
            fh.write(",".join(cells) + "\n")
    return path


def data(rows, n_in, n_out, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, scale, (rows, n_in))
    Y = np.tanh(X @ rng.normal(size=(n_in, n_out))) + 0.1 * rng.normal(size=(rows, n_out))
    return X, Y


def settings_for(trainer, name, lr):
    return runner.optimizer_for(make_spec("1-1", "linear", "se"), name, lr)


def both(spec, path, target, batch_size, epochs, optimizer="sgd", lr=0.05, seed=3, gd="minibatch",
         labels=False):
    """(in-memory params, streamed params) after the same run without shuffling."""
    trainer = load_trainer(spec)
    opt = settings_for(trainer, optimizer, lr)
    ds = load_csv(path, target, loss=spec.loss)
    mem = runner.init_params(trainer, "glorot", seed=seed)
    streamed = runner.copy_params(mem)
    size = runner.batch_size_for(gd, batch_size, ds.n_rows)
    trainer.train(mem, ds.X, ds.Y, epochs, opt["lr"], batch_size=size, shuffle=False,
                  optimizer=opt, state=trainer.optimizer_state(mem, opt))
    table = stream.open_table(path, target, loss=spec.loss)
    scanned = stream.scan(table)
    stream.fit(trainer, streamed, table, epochs=epochs, lr=opt["lr"], gd=gd, batch_size=batch_size,
               n_rows=scanned.n_rows, shuffle_buffer=0, optimizer=opt,
               state=trainer.optimizer_state(streamed, opt))
    return mem, streamed


@pytest.fixture
def small_blocks(monkeypatch):
    """1 KB CSV blocks: a few dozen rows each, so batches straddle block boundaries."""
    monkeypatch.setattr(stream, "CSV_BLOCK", 1 << 10)


# --------------------------------------------------------------------------- bit for bit


@pytest.mark.parametrize("layers,acts,loss,opt,batch", [
    ("3-4-2", "tanh,linear", "se", "sgd", 7),
    ("3-5-2", "relu,sigmoid", "mse", "adam", 13),
    ("3-2-2", "sigmoid,linear", "half_se", "momentum", 1),
    ("3-6-4-2", "gelu,tanh,linear", "se", "rmsprop", 32),
])
def test_file_order_equals_in_memory_minibatch_bit_for_bit(tmp_path, small_blocks, layers, acts,
                                                           loss, opt, batch):
    X, Y = data(203, 3, 2, seed=1)
    path = write_table(tmp_path / "t.csv", X, Y)
    spec = make_spec(layers, acts, loss)
    mem, streamed = both(spec, path, "y0,y1", batch, epochs=3, optimizer=opt, lr=0.01)
    for key in mem:
        assert np.array_equal(mem[key], streamed[key]), key
    assert not np.array_equal(mem["W1"], runner.init_params(load_trainer(spec), "glorot", seed=3)["W1"])


def test_batch_norm_and_residual_nets_stream_bit_for_bit(tmp_path, small_blocks):
    X, Y = data(150, 3, 3, seed=2)
    path = write_table(tmp_path / "t.csv", X, Y)
    spec = make_spec("3-3-3", "relu,linear", "se", residual=(True,), batch_norm=(True,))
    mem, streamed = both(spec, path, "y0,y1,y2", 16, epochs=2, optimizer="adam", lr=0.01)
    for key in mem:  # the running statistics too (update_running, as train() steps)
        assert np.array_equal(mem[key], streamed[key]), key


def test_class_labels_stream_bit_for_bit(tmp_path, small_blocks):
    X, _ = data(120, 2, 1, seed=4)
    labels = np.where(X[:, 0] + X[:, 1] > 0.3, "yes", np.where(X[:, 0] > 0, "maybe", "no"))
    path = write_table(tmp_path / "t.csv", X, None, names=["a", "b", "label"], labels=labels)
    spec = make_spec("2-5-3", "tanh,softmax", "cce")
    mem, streamed = both(spec, path, "label", 10, epochs=2, optimizer="sgd", lr=0.1)
    for key in mem:
        assert np.array_equal(mem[key], streamed[key]), key
    table = stream.open_table(path, "label", loss="cce")
    stream.scan(table)
    assert table.classes == ["maybe", "no", "yes"]


def test_batch_gd_over_blocks_matches_in_memory(tmp_path, small_blocks):
    """grad_sum added over the blocks: the sums' order differs from one whole-table pass, so
    the update agrees to rounding, not bit for bit."""
    X, Y = data(97, 3, 1, seed=5)
    path = write_table(tmp_path / "t.csv", X, Y)
    spec = make_spec("3-4-1", "tanh,linear", "se")
    mem, streamed = both(spec, path, "y0", None, epochs=5, optimizer="adam", lr=0.05, gd="batch")
    for key in mem:
        np.testing.assert_allclose(streamed[key], mem[key], rtol=1e-12, atol=1e-14)


def test_small_file_shuffled_equals_in_memory_shuffled(tmp_path, cli):
    """A file that fits in the buffer is permuted once per epoch with the run's seed, which is
    what the in-memory trainer does: the same weights."""
    X, Y = data(40, 2, 1, seed=6)
    path = write_table(tmp_path / "t.csv", X, Y)
    out = {}
    for extra in ([], ["--stream"]):
        status, text, err = cli("train", "--data", str(path), "--target", "y0", "--batch-size", "6",
                                "--epochs", "4", "--seed", "9", "--json", *extra)
        assert status == 0, err
        out[bool(extra)] = json.loads(text)
    assert out[True]["params"] == out[False]["params"]
    assert out[True]["loss_final"] == pytest.approx(out[False]["loss_final"], rel=1e-13)
    assert out[True]["shuffle_buffer"] == stream.SHUFFLE_BUFFER


# --------------------------------------------------------------------------- shuffling


def test_shuffle_buffer_is_a_seeded_bounded_permutation():
    rows = np.arange(1000, dtype=float).reshape(-1, 1)
    blocks = [(rows[i:i + 64], rows[i:i + 64] * 2, i) for i in range(0, 1000, 64)]

    def order(seed, capacity):
        out = list(stream.shuffled(iter(blocks), capacity, np.random.default_rng(seed)))
        X = np.concatenate([x for x, _, _ in out])[:, 0]
        Y = np.concatenate([y for _, y, _ in out])[:, 0]
        assert np.array_equal(Y, 2 * X)  # targets travel with their rows
        return X

    a, b, c = order(1, 100), order(1, 100), order(2, 100)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(np.sort(a), rows[:, 0])  # every row exactly once
    assert not np.array_equal(a, rows[:, 0])
    # bounded: a row cannot leave before the buffer has filled to within capacity of it
    position = np.empty(1000)
    position[a.astype(int)] = np.arange(1000)
    assert (position >= np.arange(1000) - 100).all()
    # and it is mixed: rows travel, on average, a good part of the buffer
    assert np.abs(position - np.arange(1000)).mean() > 20


def test_shuffled_stream_is_reproducible_and_seed_dependent(tmp_path, small_blocks):
    X, Y = data(300, 3, 1, seed=7)
    path = write_table(tmp_path / "t.csv", X, Y)
    spec = make_spec("3-4-1", "tanh,linear", "se")
    trainer = load_trainer(spec)
    opt = settings_for(trainer, "sgd", 0.05)

    def run(seed):
        table = stream.open_table(path, "y0", loss="se")
        n = stream.scan(table).n_rows
        params = runner.init_params(trainer, "glorot", seed=0)
        state = trainer.optimizer_state(params, opt)
        hist = stream.fit(trainer, params, table, epochs=2, lr=0.05, batch_size=8, n_rows=n,
                          seed=seed, shuffle_buffer=50, optimizer=opt, state=state)
        return params, hist, state

    p1, h1, s1 = run(5)
    p2, h2, _ = run(5)
    p3, _, _ = run(6)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1) and h1.losses == h2.losses
    assert not np.array_equal(p1["W1"], p3["W1"])
    assert s1["t"] == 2 * 38 and "shuffle" in s1  # ceil(300/8) updates per epoch; resumable order
    assert h1.losses[-1] < h1.losses[0]


def test_shuffle_buffer_smaller_than_a_batch_is_refused(tmp_path, cli):
    X, Y = data(30, 2, 1)
    path = write_table(tmp_path / "t.csv", X, Y)
    status, _, err = cli("train", "--data", str(path), "--target", "y0", "--stream",
                         "--batch-size", "8", "--shuffle-buffer", "4")
    assert status == 2
    assert "--shuffle-buffer 4 is smaller than a batch (8 rows)" in err
    status, _, err = cli("train", "--data", str(path), "--target", "y0", "--shuffle-buffer", "4")
    assert status == 2 and "--shuffle-buffer applies to --stream only" in err


# --------------------------------------------------------------------------- standardisation


def test_streamed_standardisation_equals_in_memory(tmp_path, small_blocks):
    X, Y = data(1000, 3, 1, seed=8, scale=3.0)
    X += np.array([1e6, -50.0, 0.0])  # a large offset: a naive Σx² - n·mean² would lose digits
    path = write_table(tmp_path / "t.csv", X, Y)
    table = stream.open_table(path, "y0")
    got = stream.scan(table)
    ds = load_csv(path, "y0")
    np.testing.assert_allclose(got.mean, ds.X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(got.std, ds.X.std(axis=0), rtol=1e-11)
    assert got.n_rows == 1000


def test_stream_cli_writes_a_model_file_with_the_standardisation(tmp_path, cli):
    X, Y = data(60, 2, 1, seed=9, scale=20.0)
    path = write_table(tmp_path / "t.csv", X, Y)
    out = tmp_path / "m.json"
    status, text, err = cli("train", "--data", str(path), "--target", "y0", "--stream",
                            "--standardise", "--batch-size", "7", "--epochs", "5", "--seed", "1",
                            "--params-out", str(out))
    assert status == 0, err
    assert "60 training rows streamed" in text and "shuffle buffer 65536 rows" in text
    model = json.loads(out.read_text())
    np.testing.assert_allclose(model["standardise"]["mean"], X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(model["standardise"]["std"], X.std(axis=0), rtol=1e-12)
    assert model["training"]["stream"] is True and model["features"] == ["x0", "x1"]
    status, text, err = cli("predict", "--params", str(out), "--data", str(path))
    assert status == 0, err


# --------------------------------------------------------------------------- bad cells


@pytest.mark.parametrize("bad", [
    "1.5,abc,2\n",  # text in a number column
    "1.5,NaN,2\n",
    "1.5,inf,2\n",
    "1.5,,2\n",  # empty cell
    "1.5,2\n",  # ragged row
    "1.5,2,3,4\n",
])
def test_bad_cells_are_the_loaders_one_line_errors(tmp_path, cli, small_blocks, bad):
    good = "".join(f"{i}.25,{i}.5,{i}\n" for i in range(200))
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n" + good + bad + good)
    status, _, err_mem = cli("train", "--data", str(path), "--target", "y")
    status_s, out, err = cli("train", "--data", str(path), "--target", "y", "--stream")
    assert status == status_s == 2 and out == ""
    assert err == err_mem  # the same words: FILE line N (data row M), column 'NAME': ...
    assert f"{path} line 202 (data row 201)" in err and len(err.strip().splitlines()) == 1


def test_bad_label_cell_is_named(tmp_path, cli):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,x\n3,4,y\n5,6, \n")
    status, _, err = cli("train", "--data", str(path), "--target", "c", "--loss", "bce",
                         "--layers", "2-1", "--activations", "sigmoid", "--stream")
    assert status == 2
    assert f"{path} line 4 (data row 3), column 'c': empty cell" in err


def test_header_only_and_refusals(tmp_path, cli):
    path = tmp_path / "h.csv"
    path.write_text("a,b,y\n")
    status, _, err = cli("train", "--data", str(path), "--target", "y", "--stream")
    assert status == 2 and "has a header row but no data rows" in err
    status, _, err = cli("train", "--data", str(path), "--target", "y", "--stream",
                         "--test-split", "0.3")
    assert status == 2 and "--test-split is not available with --stream" in err
    status, _, err = cli("train", "--data", str(path), "--target", "zz", "--stream")
    assert status == 2 and "no target column 'zz'" in err


# --------------------------------------------------------------------------- parquet, extras


def test_parquet_streams_like_the_csv(tmp_path, cli):
    pq = pytest.importorskip("pyarrow.parquet")
    X, Y = data(90, 2, 1, seed=10)
    write_table(tmp_path / "t.csv", X, Y)  # the same rows as CSV
    pq.write_table(pa.table({"x0": X[:, 0], "x1": X[:, 1], "y0": Y[:, 0]}), tmp_path / "t.parquet",
                   row_group_size=25)
    got = {}
    for name in ("t.csv", "t.parquet"):
        status, text, err = cli("train", "--data", str(tmp_path / name), "--target", "y0", "--stream",
                                "--shuffle-buffer", "0", "--batch-size", "8", "--epochs", "3",
                                "--seed", "2", "--json")
        assert status == 0, err
        got[name] = json.loads(text)
    assert got["t.csv"]["params"] == got["t.parquet"]["params"]
    assert got["t.parquet"]["rows"] == 90
    bad = X.copy()
    bad[40, 1] = np.nan
    pq.write_table(pa.table({"x0": bad[:, 0], "x1": bad[:, 1], "y0": Y[:, 0]}), tmp_path / "b.parquet")
    status, _, err = cli("train", "--data", str(tmp_path / "b.parquet"), "--target", "y0", "--stream")
    assert status == 2 and "data row 41, column 'x1': 'nan' is not a finite number" in err


def test_missing_pyarrow_names_the_extra(tmp_path, cli, monkeypatch):
    X, Y = data(10, 2, 1)
    path = write_table(tmp_path / "t.csv", X, Y)
    real = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    status, out, err = cli("train", "--data", str(path), "--target", "y0", "--stream")
    assert status == 2 and out == ""
    assert err.strip() == ("backprop train: error: --stream needs pyarrow, which is not installed: "
                           "pip install -e '.[stream]'")


# --------------------------------------------------------------------------- memory


#: The child: train one epoch over the file under an address-space cap, report peak RSS.
CHILD = textwrap.dedent("""
    import json, resource, sys
    cap = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from backprop.cli.main import main
    status = main(["train", "--data", sys.argv[1], "--target", "y", "--layers", "3-4-1",
                   "--activations", "tanh,linear", "--stream", "--batch-size", "4096",
                   "--epochs", "1", "--seed", "0", "--lr", "0.01", "--quiet", "--json"])
    # VmHWM: this process's own peak RSS.  Not getrusage's ru_maxrss, which Linux carries over
    # execve from the parent (pytest, grown large by the suite: 1.8 GB seen in CI)
    hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
    print(json.dumps({"status": status, "maxrss": hwm}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc (VmHWM, RLIMIT_AS)")
def test_streaming_a_file_three_times_the_memory_cap(tmp_path):
    """A 3 GB CSV trained on under a 1 GB RLIMIT_AS cap: it finishes, peak RSS stays under the
    cap (measured: ~210 MB, flat from a 300 MB file to a 3 GB one).  The cap is on virtual
    address space, which counts every thread's reserved stack and each malloc arena, not only
    what is touched: `import numpy, pyarrow` and backprop's CLI alone reach a VmPeak of ~366 MB.
    So the child runs with OMP_NUM_THREADS=1 (Arrow sizes its CPU pool by it, else by the cores
    of the CI machine) and MALLOC_ARENA_MAX=2; then 1 GB (even 768 MB) leaves room.  Arrow's
    16 MB blocks failed under 1 GB (their read-ahead); the 1 MB blocks of CSV_BLOCK pass.
    The file is one 1/8-million-row block of text written over and over (seconds, not minutes
    of formatting); one epoch, batch size 4096: three passes (scan, epoch, final loss)."""
    gb = 1 << 30
    path = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1 << 17, 3))
    text = io.StringIO()
    np.savetxt(text, np.hstack([X, X.sum(axis=1, keepdims=True)]), delimiter=",", fmt="%.10f")
    block = text.getvalue().encode()
    try:
        with open(path, "wb") as fh:
            fh.write(b"a,b,c,y\n")
            while fh.tell() < 3 * gb:
                fh.write(block)
        size = os.path.getsize(path)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(gb)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stdout.strip().splitlines()
        report = json.loads(lines[-1])
        summary = json.loads("\n".join(lines[:-1]))
        rows = (size - len("a,b,c,y\n")) // len(block) * (1 << 17)
        assert report["status"] == 0 and summary["rows"] == rows and size > 3 * gb
        assert report["maxrss"] < gb // 2  # well under the cap: flat, not the file's size
        assert summary["loss_final"] < summary["loss_initial"]
    finally:
        path.unlink(missing_ok=True)


def test_classifier_metrics_and_test_data_equal_in_memory(tmp_path, cli):
    """iris (150 rows, inside the shuffle buffer) with a test file: the same weights and the
    same metrics (accuracy, confusion, per-class) as the in-memory command."""
    iris = os.path.join(os.path.dirname(stream.__file__), "examples", "iris.csv")
    flags = ["train", "--data", iris, "--target", "species", "--layers", "4-6-3", "--activations",
             "tanh,softmax", "--loss", "cce", "--standardise", "--seed", "4", "--epochs", "20",
             "--test-data", iris, "--optimizer", "adam", "--lr", "0.02", "--json"]
    got = {}
    for extra in ([], ["--stream"]):
        status, text, err = cli(*flags, *extra)
        assert status == 0, err
        got[bool(extra)] = json.loads(text)
    mem, streamed = got[False], got[True]
    for which in ("train", "test"):
        m, s = mem["metrics"][which], streamed["metrics"][which]
        assert s["confusion"] == m["confusion"] and s["rows"] == m["rows"] == 150
        assert s["per_class"] == m["per_class"] and s["classes"] == ["setosa", "versicolor", "virginica"]
        assert s["loss"] == pytest.approx(m["loss"], rel=1e-9)
    np.testing.assert_allclose(np.array(streamed["params"]["W1"]), np.array(mem["params"]["W1"]),
                               rtol=1e-10)  # standardisation merged by blocks: equal to rounding


def test_batch_gd_from_the_command_line(tmp_path, cli):
    X, Y = data(50, 2, 1, seed=11)
    path = write_table(tmp_path / "t.csv", X, Y)
    status, text, err = cli("train", "--data", str(path), "--target", "y0", "--stream", "--gd",
                            "batch", "--epochs", "30", "--lr", "0.1", "--seed", "0", "--json")
    assert status == 0, err
    streamed = json.loads(text)
    status, text, err = cli("train", "--data", str(path), "--target", "y0", "--gd", "batch",
                            "--epochs", "30", "--lr", "0.1", "--seed", "0", "--json")
    mem = json.loads(text)
    assert streamed["updates_per_epoch"] == 1 and streamed["optimizer_steps"] == 30
    assert streamed["loss_final"] == pytest.approx(mem["loss_final"], rel=1e-12)
    assert streamed["loss_initial"] == pytest.approx(mem["loss_initial"], rel=1e-14)


def test_progress_counts_megabytes_read_on_a_terminal_only(tmp_path, small_blocks):
    from backprop.train.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    X, Y = data(3000, 3, 1, seed=12)
    path = write_table(tmp_path / "t.csv", X, Y)
    spec = make_spec("3-2-1", "tanh,linear", "se")
    trainer = load_trainer(spec)
    opt = settings_for(trainer, "sgd", 0.01)
    for screen, drawn in ((Terminal(), True), (io.StringIO(), False)):
        table = stream.open_table(path, "y0")
        n = stream.scan(table).n_rows
        params = runner.init_params(trainer, "glorot", seed=0)
        kb = math.ceil(2 * table.size / 1e3)
        bar = Progress(kb, stream=screen, interval=0.0, label="kB")
        stream.fit(trainer, params, table, epochs=2, lr=0.01, batch_size=64, n_rows=n, seed=0,
                   optimizer=opt, state=trainer.optimizer_state(params, opt), progress=bar,
                   progress_unit=1e3)
        text = screen.getvalue()
        halfway = f"kB {round(table.size / 1e3):>{len(str(kb))}}/{kb} [############"
        assert (halfway in text and f"kB {kb}/{kb} [" in text and "loss" in text) is drawn
        assert text == "" or text.endswith("\r\033[K")  # erased before the summary


@pytest.mark.parametrize("missing, words", [(None, "empty cell"), ("nan", "'nan' marks a missing label")])
def test_a_missing_parquet_label_is_one_line(tmp_path, cli, missing, words):
    """A null or "nan" class label in a Parquet file: the loader's one-line words for the
    column (Parquet has no lines to name), not a traceback or CSV-read garbage."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0, 4.0], "lab": ["a", "b", missing, "a"]}), path)
    status, out, err = cli("train", "--layers", "1-2", "--activations", "softmax", "--loss", "cce",
                           "--data", str(path), "--target", "lab", "--stream", "--epochs", "1")
    assert status == 2 and out == ""
    assert err == f"backprop train: error: {path}, column 'lab': {words}; fill it in or drop the row\n"
