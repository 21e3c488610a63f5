"""The generated module as a classifier (issue 13): predict, predict_proba and accuracy on raw
rows with a stored standardisation, backprop's model file, and its own command line reading
CSV files by the same contract as ``backprop train`` (label columns, --standardise,
--test-split, a bad cell named by file, line and column)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.derive import make_spec
from backprop.core.errors import UserError
from backprop.train import data as train_data
from backprop.train.model import Model, load_model as backprop_load_model

E = math.e


@pytest.fixture(scope="module")
def cce():
    """2-2 softmax/cce: one layer, so the probabilities are a softmax of X @ W + b by hand."""
    return load_trainer(make_spec("2-2", "softmax", "cce"))


@pytest.fixture(scope="module")
def bce():
    return load_trainer(make_spec("2-1", "sigmoid", "bce"))


@pytest.fixture(scope="module")
def linear():
    return load_trainer(make_spec("2-1", "linear", "se"))


@pytest.fixture(scope="module")
def iris_net():
    return load_trainer(make_spec("2-4-3", ["tanh", "softmax"], "cce"))


def identity_params():
    return {"W1": np.eye(2), "b1": np.zeros(2)}


# -- predict, predict_proba, accuracy ----------------------------------------------------------------

def test_predict_proba_is_the_softmax_of_the_rows(cce):
    P = cce.predict_proba(identity_params(), [[1.0, 0.0], [0.0, 2.0]])
    expected = [[E / (E + 1), 1 / (E + 1)], [1 / (1 + E**2), E**2 / (1 + E**2)]]
    np.testing.assert_allclose(P, expected, rtol=1e-15)


def test_predict_gives_indices_or_the_class_names(cce):
    params = identity_params()
    X = [[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]
    assert cce.predict(params, X).tolist() == [0, 1, 0]
    params["classes"] = ["cat", "dog"]
    assert cce.predict(params, X).tolist() == ["cat", "dog", "cat"]


def test_a_tie_goes_to_the_first_class(cce):
    """z1 = z2 (the arg max's kink): the first class, as numpy's argmax picks it."""
    assert cce.predict(identity_params(), [[0.5, 0.5]]).tolist() == [0]


def test_accuracy_takes_one_hot_rows_indices_or_names(cce):
    params = {**identity_params(), "classes": ["cat", "dog"]}
    X = [[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.0, 1.0]]  # predicted cat, dog, cat, dog
    assert cce.accuracy(params, X, [[1, 0], [1, 0], [1, 0], [0, 1]]) == 0.75
    assert cce.accuracy(params, X, [0, 1, 1, 1]) == 0.75
    assert cce.accuracy(params, X, ["dog", "dog", "dog", "dog"]) == 0.5
    with pytest.raises(ValueError, match="'bird', not a class name"):
        cce.accuracy(params, X, ["bird", "dog", "cat", "cat"])
    with pytest.raises(ValueError, match=r"one label or one row of 2 targets per row of X \(4 rows\)"):
        cce.accuracy(params, X, [0, 1])


def test_binary_predictions_threshold_at_one_half(bce):
    """σ(z) ≥ ½ is class 1, z = 0 (the kink: σ = ½ exactly) included."""
    params = {"W1": np.array([[1.0], [-1.0]]), "b1": np.zeros(1)}
    X = [[2.0, 1.0], [0.0, 3.0], [1.0, 1.0], [1.0, 1.0 + 1e-9]]  # z = 1, -3, 0, -1e-9
    np.testing.assert_allclose(bce.predict_proba(params, X)[:, 0],
                               [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(3)), 0.5, 0.5 - 0.25e-9], rtol=1e-9)
    assert bce.predict(params, X).tolist() == [1, 0, 1, 0]
    params["classes"] = ["no", "yes"]
    assert bce.predict(params, X).tolist() == ["yes", "no", "yes", "no"]
    assert bce.accuracy(params, X, [1, 1, 1, 1]) == 0.5
    assert bce.accuracy(params, X, ["yes", "no", "no", "no"]) == 0.75


def test_regression_predicts_values_and_has_no_probabilities(linear):
    params = {"W1": np.array([[2.0], [3.0]]), "b1": np.array([1.0])}
    np.testing.assert_array_equal(linear.predict(params, [[1.0, 1.0], [0.0, -1.0]]), [[6.0], [-2.0]])
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        linear.predict_proba(params, [[1.0, 1.0]])
    with pytest.raises(ValueError, match="predict_proba is for classifiers"):
        linear.accuracy(params, [[1.0, 1.0]], [[6.0]])


# -- standardisation ---------------------------------------------------------------------------------

def test_fit_standardise_is_the_columns_mean_and_population_std(cce):
    scaling = cce.fit_standardise([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    np.testing.assert_allclose(scaling["mean"], [3.0, 5.0])
    np.testing.assert_allclose(scaling["std"], [math.sqrt(8 / 3), 1.0])  # a constant column: 1
    np.testing.assert_allclose(cce.standardise([[3.0, 6.0]], scaling), [[0.0, 1.0]])
    assert cce.standardise([[3.0, 6.0]], None) == [[3.0, 6.0]]


def test_predict_applies_the_stored_standardisation(cce):
    params = {**identity_params(), "standardise": {"mean": np.array([1.0, 1.0]), "std": np.array([2.0, 0.5])}}
    X = [[1.0, 0.0], [0.0, 2.0]]  # the network sees (0, -2) and (-0.5, 2)
    expected = [[1 / (1 + E**-2), E**-2 / (1 + E**-2)], [1 / (1 + E**2.5), E**2.5 / (1 + E**2.5)]]
    np.testing.assert_allclose(cce.predict_proba(params, X), expected, rtol=1e-14)
    assert cce.predict(params, X).tolist() == [0, 1]
    np.testing.assert_array_equal(cce.forward(params, X), cce.forward(identity_params(), X))  # raw


def test_float32_parameters_stay_float32_through_the_scaling(cce):
    params = cce.init_params(seed=0, dtype=np.float32)
    params["standardise"] = cce.fit_standardise([[1.0, 2.0], [3.0, 8.0]])
    assert cce.predict_proba(params, [[1.0, 2.0]]).dtype == np.float32


# -- model files -------------------------------------------------------------------------------------

def trained_like(module, seed=0):
    params = module.init_params(seed=seed)
    params.update(standardise={"mean": np.array([1.5, -2.0]), "std": np.array([0.5, 3.0])},
                  features=["x1", "x2"], targets=["kind=a", "kind=b", "kind=c"], classes=["a", "b", "c"])
    return params


def test_model_file_round_trips(iris_net, tmp_path):
    params = trained_like(iris_net)
    iris_net.save_model(tmp_path / "m.json", params)
    back = iris_net.load_model(tmp_path / "m.json")
    assert set(back) == set(params)
    for name in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(back[name], params[name])
    np.testing.assert_array_equal(back["standardise"]["std"], [0.5, 3.0])
    assert back["classes"] == ["a", "b", "c"] and back["features"] == ["x1", "x2"]
    X = np.random.default_rng(1).normal(size=(7, 2))
    assert iris_net.predict(back, X).tolist() == iris_net.predict(params, X).tolist()


def test_backprop_reads_the_model_file_the_module_writes(iris_net, tmp_path):
    """backprop's reader (what `backprop predict --params` uses) sees the same network, scaling
    and names, and its scaled forward pass gives the module's probabilities."""
    params = trained_like(iris_net)
    iris_net.save_model(tmp_path / "m.json", params)
    model = backprop_load_model(tmp_path / "m.json")
    assert model.spec == make_spec("2-4-3", ["tanh", "softmax"], "cce")
    assert model.classes == ["a", "b", "c"] and model.targets == ["kind=a", "kind=b", "kind=c"]
    X = np.random.default_rng(2).normal(size=(5, 2))
    np.testing.assert_allclose(model.scale(X), (X - [1.5, -2.0]) / [0.5, 3.0])
    np.testing.assert_allclose(iris_net.forward(model.params, model.scale(X)), iris_net.predict_proba(params, X),
                               rtol=1e-14)


def test_the_module_reads_backprops_model_file_and_old_plain_files(iris_net, tmp_path):
    params = iris_net.init_params(seed=3)
    spec = make_spec("2-4-3", ["tanh", "softmax"], "cce")
    model = Model(spec, params, mean=np.array([1.0, 2.0]), std=np.array([4.0, 5.0]),
                  features=["u", "v"], targets=["y=p", "y=q", "y=r"], classes=["p", "q", "r"])
    (tmp_path / "model.json").write_text(json.dumps(model.to_json()))
    back = iris_net.load_model(tmp_path / "model.json")
    np.testing.assert_array_equal(back["W2"], params["W2"])
    np.testing.assert_array_equal(back["standardise"]["mean"], [1.0, 2.0])
    assert back["classes"] == ["p", "q", "r"]
    (tmp_path / "plain.json").write_text(json.dumps({k: v.tolist() for k, v in params.items()}))
    plain = iris_net.load_model(tmp_path / "plain.json")
    assert set(plain) == {"W1", "b1", "W2", "b2"}  # no scaling, no names
    np.testing.assert_array_equal(plain["W1"], params["W1"])


@pytest.mark.parametrize("change, words", [
    (lambda d: d["spec"].update(layers=[2, 5, 3]), "is for another network"),
    (lambda d: d.update(version=2), "format version 2"),
    (lambda d: d["params"].pop("b2"), "has no b2"),
    (lambda d: d["params"].update(W1=[[1.0]]), "W1 has shape (1, 1); expected (2, 4)"),
    (lambda d: d["standardise"].update(std=[1.0, 0.0]), "std that is not positive"),
    (lambda d: d.update(classes=["a", "b"]), "2 classes named; this network needs 3"),
])
def test_a_model_file_for_another_network_or_broken_is_refused(iris_net, tmp_path, change, words):
    content = iris_net.model_json(trained_like(iris_net))
    change(content)
    (tmp_path / "m.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(words)):
        iris_net.load_model(tmp_path / "m.json")


# -- the command line: one CSV contract with backprop train ----------------------------------------------

def blobs_csv(path, labels=("b", "a", "c"), n=20, seed=0):
    """Three well-separated clusters, ``n`` rows each, with a label column, in shuffled order;
    the features are far from mean 0 / std 1 (so standardising matters)."""
    rng = np.random.default_rng(seed)
    centres = {labels[0]: (100.0, 5.0), labels[1]: (110.0, 9.0), labels[2]: (90.0, 9.0)}
    rows = [(cx + rng.normal(), cy + 0.3 * rng.normal(), name)
            for name, (cx, cy) in centres.items() for _ in range(n)]
    order = rng.permutation(len(rows))
    path.write_text("height,width,kind\n" + "".join(f"{rows[i][0]:.4f},{rows[i][1]:.4f},{rows[i][2]}\n"
                                                      for i in order))
    return path


def run_main(module, capsys, *argv):
    try:
        status = module.main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_a_label_column_is_one_hot_in_sorted_order_as_backprop_reads_it(iris_net, tmp_path):
    path = blobs_csv(tmp_path / "d.csv")
    X, Y, names = iris_net._read_table(str(path), "kind")
    ds = train_data.load_csv(path, "kind", loss="cce")
    assert names["classes"] == ["a", "b", "c"] == ds.classes
    assert names["targets"] == ["kind=a", "kind=b", "kind=c"] == ds.targets
    assert names["features"] == ["height", "width"]
    np.testing.assert_array_equal(X, ds.X)
    np.testing.assert_array_equal(Y, ds.Y)
    first = path.read_text().splitlines()[1].split(",")[2]
    assert Y[0].tolist() == [float(first == c) for c in "abc"]


def test_numeric_labels_sort_as_numbers_and_bce_reads_two_labels(iris_net, bce, tmp_path):
    _, _, names = iris_net._read_table(str(blobs_csv(tmp_path / "n.csv", labels=("10", "2", "9"))), "kind")
    assert names["classes"] == ["2", "9", "10"]
    (tmp_path / "b.csv").write_text("u,v,ok\n1,2,yes\n3,4,no\n5,6,yes\n")
    _, Y, names = bce._read_table(str(tmp_path / "b.csv"), None)  # default: the last column
    assert names["classes"] == ["no", "yes"] and Y[:, 0].tolist() == [1.0, 0.0, 1.0]
    (tmp_path / "three.csv").write_text("u,v,ok\n1,2,yes\n3,4,no\n5,6,maybe\n")
    with pytest.raises(ValueError, match="bce needs two classes in column 'ok', found 3"):
        bce._read_table(str(tmp_path / "three.csv"), "ok")
    with pytest.raises(ValueError, match=r"column 'kind' holds 4 classes \(a, b, c, d\) but the network has 3"):
        (tmp_path / "four.csv").write_text("height,width,kind\n1,2,a\n1,2,b\n1,2,c\n1,2,d\n")
        iris_net._read_table(str(tmp_path / "four.csv"), "kind")


def test_the_cli_trains_on_a_label_column_and_writes_a_model_file(iris_net, tmp_path, capsys):
    path = blobs_csv(tmp_path / "d.csv")
    status, out, err = run_main(iris_net, capsys, "--data", str(path), "--target", "kind", "--standardise",
                                "--test-split", "0.3", "--seed", "0", "--epochs", "100", "--lr", "0.1",
                                "--batch-size", "8", "--out", str(tmp_path / "m.json"))
    assert status == 0, err
    lines = out.splitlines()
    assert "train accuracy 100.0% (42/42 rows)" in lines  # 60 rows, 18 held out (6 per class)
    assert "test accuracy 100.0% (18/18 rows)" in lines
    model = json.loads((tmp_path / "m.json").read_text())
    assert model["format"] == "backprop-model" and model["version"] == 1
    assert model["classes"] == ["a", "b", "c"] and model["features"] == ["height", "width"]
    X, Y, _ = iris_net._read_table(str(path), "kind")
    train_rows, _ = iris_net.split_rows(Y, 0.3, 0)
    np.testing.assert_allclose(model["standardise"]["mean"], X[train_rows].mean(axis=0), rtol=1e-15)
    back = iris_net.load_model(tmp_path / "m.json")
    labels = np.array(["a", "b", "c"])[Y.argmax(axis=1)]
    assert iris_net.predict(back, X).tolist() == labels.tolist()  # raw rows: the scaling is stored


def test_without_standardise_the_raw_features_are_used(iris_net, tmp_path, capsys):
    path = blobs_csv(tmp_path / "d.csv")
    status, out, err = run_main(iris_net, capsys, "--data", str(path), "--epochs", "2", "--seed", "0",
                                "--out", str(tmp_path / "m.json"))
    assert status == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["standardise"] is None
    assert "train accuracy" in out and "test accuracy" not in out


def test_the_test_split_is_reproducible_stratified_and_backprops(iris_net, tmp_path):
    _, Y, _ = iris_net._read_table(str(blobs_csv(tmp_path / "d.csv", n=21)), "kind")
    train_a, test_a = iris_net.split_rows(Y, 0.3, seed=5)
    train_b, test_b = iris_net.split_rows(Y, 0.3, seed=5)
    np.testing.assert_array_equal(test_a, test_b)
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.array_equal(test_a, iris_net.split_rows(Y, 0.3, seed=6)[1])
    assert sorted(np.concatenate([train_a, test_a]).tolist()) == list(range(63))
    assert np.bincount(Y[test_a].argmax(axis=1)).tolist() == [6, 6, 6]  # round(0.3 × 21) per class
    if not hasattr(train_data, "split"):
        pytest.skip("backprop's train/data.py has no split() yet")
    ds = train_data.load_csv(tmp_path / "d.csv", "kind", loss="cce")
    train, test = train_data.split(ds, 0.3, seed=5)
    np.testing.assert_array_equal(test.Y, Y[test_a])
    np.testing.assert_array_equal(train.X, ds.X[train_a])


def test_the_same_seed_prints_the_same_run(iris_net, tmp_path, capsys):
    path = blobs_csv(tmp_path / "d.csv")
    argv = ["--data", str(path), "--standardise", "--test-split", "0.25", "--seed", "4", "--epochs", "5",
            "--batch-size", "4"]
    first = run_main(iris_net, capsys, *argv)
    assert first[0] == 0 and first == run_main(iris_net, capsys, *argv)


@pytest.mark.parametrize("split", ["0", "1", "nan", "-0.2"])
def test_a_test_split_outside_0_1_is_refused(iris_net, tmp_path, capsys, split):
    status, out, err = run_main(iris_net, capsys, "--data", str(blobs_csv(tmp_path / "d.csv")),
                                f"--test-split={split}")
    assert status == 2 and out == "" and "--test-split must be a fraction between 0 and 1" in err


@pytest.mark.parametrize("row, column", [("nan", "width"), ("inf", "width"), ("", "width"), ("-inf", "height")])
def test_a_bad_cell_is_refused_as_backprop_train_refuses_it(iris_net, tmp_path, capsys, row, column):
    """The same one line as backprop's reader, word for word, after the program's name."""
    cells = {"height": "101.5", "width": "5.2", column: row}
    path = tmp_path / "d.csv"
    path.write_text(f"height,width,kind\n100,5,a\n\n110,9,b\n{cells['height']},{cells['width']},c\n90,9,c\n")
    with pytest.raises(UserError) as theirs:
        train_data.load_csv(path, "kind", loss="cce")
    status, out, err = run_main(iris_net, capsys, "--data", str(path), "--target", "kind", "--epochs", "1")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.endswith(f"error: {theirs.value}\n")
    assert f"d.csv line 5 (data row 3), column '{column}'" in err


def test_a_ragged_row_and_an_empty_label_are_named_as_backprop_names_them(iris_net, tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("height,width,kind\n100,5,a\n110,9\n")
    with pytest.raises(UserError) as theirs:
        train_data.load_csv(path, "kind", loss="cce")
    status, _, err = run_main(iris_net, capsys, "--data", str(path), "--epochs", "1")
    assert status == 2 and err.endswith(f"error: {theirs.value}\n")
    path.write_text("height,width,kind\n100,5,a\n110,9, \n")
    with pytest.raises(ValueError, match=re.escape("d.csv line 3 (data row 2), column 'kind': empty cell; "
                                                   "fill it in or drop the row")):
        iris_net._read_table(str(path), "kind")


def test_the_committed_classifier_runs_as_a_script(tmp_path):
    """generated/softmax_cce.py, standalone: a label column, --standardise, --test-split."""
    import subprocess
    import sys

    from backprop.cli.commands.generate import generated_folder

    rng = np.random.default_rng(0)
    rows = [(*(rng.normal(size=4) + 3 * k), name) for k, name in enumerate(["x", "y", "z"]) for _ in range(10)]
    (tmp_path / "d.csv").write_text("a,b,c,d,label\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    done = subprocess.run([sys.executable, str(generated_folder() / "softmax_cce.py"), "--data", "d.csv",
                           "--target", "label", "--standardise", "--test-split", "0.3", "--seed", "0",
                           "--epochs", "50", "--lr", "0.1", "--out", "m.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "(9/9 rows)" in done.stdout.splitlines()[-2]
    assert backprop_load_model(tmp_path / "m.json").classes == ["x", "y", "z"]
