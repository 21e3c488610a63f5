"""`backprop predict`: a model file applied to new rows, equal to the trainer on standardised rows."""
import csv
import io
import json

import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.derive import make_spec
from backprop.train.data import load_csv
from backprop.train.examples import EXAMPLES
from backprop.train.model import load_model

IRIS = EXAMPLES["iris"].path
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    """A model file trained on iris (few epochs: predict's arithmetic is checked, not accuracy)."""
    from backprop.cli.main import main
    path = tmp_path_factory.mktemp("model") / "iris.json"
    assert main(["train", "--example", "iris", "--epochs", "30", "--quiet", "--json",
                 "--params-out", str(path)]) == 0
    return path


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def expected(model_path, X):
    m = load_model(model_path)
    return load_trainer(m.spec).forward(m.params, (X - m.mean) / m.std)


def test_predictions_equal_the_trainer_on_standardised_rows(cli, iris_model, tmp_path):
    out = tmp_path / "pred.csv"
    status, text, err = cli("predict", "--params", str(iris_model), "--data", str(IRIS), "-o", str(out))
    assert status == 0, err
    rows = read_csv(out.read_text())
    assert list(rows[0]) == ["row", "predicted_species", "p_setosa", "p_versicolor", "p_virginica"]
    ds = load_csv(IRIS, "species", loss="cce")
    P = expected(iris_model, ds.X)
    got = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    np.testing.assert_array_equal(got, P)  # written in full: equal to the last bit
    assert [r["predicted_species"] for r in rows] == [CLASSES[k] for k in P.argmax(axis=1)]
    assert [int(r["row"]) for r in rows] == list(range(1, 151))
    acc = (P.argmax(1) == ds.Y.argmax(1)).mean()
    assert f"accuracy {acc:.1%}" in text and f"wrote {out} (150 rows)" in text


def test_rows_without_target_other_order_and_extra_columns(cli, iris_model, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("id,petal_width,sepal_width,note,petal_length,sepal_length\n"
                   "7,0.2,3.5,x,1.4,5.1\n8,2.3,3.0,y,5.9,6.8\n")
    status, out, err = cli("predict", "--params", str(iris_model), "--data", str(new))
    assert status == 0 and err == ""  # no target column: no metrics
    rows = read_csv(out)
    P = expected(iris_model, np.array([[5.1, 3.5, 1.4, 0.2], [6.8, 3.0, 5.9, 2.3]]))
    got = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    np.testing.assert_array_equal(got, P)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


def test_json_holds_predictions_and_metrics(cli, iris_model):
    status, out, err = cli("predict", "--params", str(iris_model), "--data", str(IRIS), "--json")
    assert status == 0, err
    doc = json.loads(out)
    assert doc["rows"] == 150 and doc["classes"] == CLASSES and doc["standardised"] is True
    assert doc["predictions"][0]["row"] == 1 and doc["predictions"][0]["predicted_species"] in CLASSES
    m = doc["metrics"]
    assert sum(c["support"] for c in m["per_class"]) == 150 and np.sum(m["confusion"]) == 150
    ds = load_csv(IRIS, "species", loss="cce")
    mdl = load_model(iris_model)
    trainer = load_trainer(mdl.spec)
    assert m["loss"] == pytest.approx(trainer.loss(mdl.params, mdl.scale(ds.X), ds.Y), rel=1e-12)


def test_train_predict_round_trip_on_the_test_rows(cli, tmp_path):
    """train --test-data, then predict on that file: the same accuracy and loss."""
    lines = IRIS.read_text().splitlines()
    train, test, model = tmp_path / "train.csv", tmp_path / "test.csv", tmp_path / "m.json"
    pick = lambda rows: "\n".join([lines[0]] + rows) + "\n"
    train.write_text(pick([r for i, r in enumerate(lines[1:]) if i % 5]))
    test.write_text(pick([r for i, r in enumerate(lines[1:]) if i % 5 == 0]))
    status, out, err = cli("train", "--layers", "4-8-3", "--activations", "relu,softmax", "--loss",
                           "cce", "--data", str(train), "--target", "species", "--standardise",
                           "--test-data", str(test), "--seed", "0", "--epochs", "50", "--json",
                           "--quiet", "--params-out", str(model))
    assert status == 0, err
    trained = json.loads(out)["metrics"]["test"]
    status, out, err = cli("predict", "--params", str(model), "--data", str(test), "--json")
    assert status == 0, err
    predicted = json.loads(out)["metrics"]
    assert predicted["confusion"] == trained["confusion"]
    assert predicted["loss"] == pytest.approx(trained["loss"], rel=1e-12)


def test_bce_gives_the_positive_class_probability(cli, tmp_path):
    data, model = tmp_path / "d.csv", tmp_path / "m.json"
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    data.write_text("a,b,ok\n" + "".join(f"{a},{b},{'yes' if a + b > 0 else 'no'}\n" for a, b in X))
    status, _, err = cli("train", "--layers", "2-1", "--activations", "sigmoid", "--loss", "bce",
                         "--data", str(data), "--target", "ok", "--seed", "0", "--epochs", "50",
                         "--quiet", "--params-out", str(model))
    assert status == 0, err
    status, out, err = cli("predict", "--params", str(model), "--data", str(data))
    assert status == 0, err
    rows = read_csv(out)
    assert list(rows[0]) == ["row", "predicted_ok", "p_yes"]
    m = load_model(model)
    p = load_trainer(m.spec).forward(m.params, X)[:, 0]
    np.testing.assert_allclose([float(r["p_yes"]) for r in rows], p, rtol=1e-15)
    assert [r["predicted_ok"] for r in rows] == ["yes" if v >= 0.5 else "no" for v in p]
    assert "accuracy" in err  # the labels were there: metrics on stderr, the CSV alone on stdout


def test_regression_predicts_values(cli, tmp_path):
    data, model = tmp_path / "s.csv", tmp_path / "m.json"
    data.write_text("iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n75,6,4\n95,9,7\n")
    assert cli("train", "--data", str(data), "--target", "package", "--standardise", "--epochs", "20",
               "--seed", "0", "--quiet", "--params-out", str(model))[0] == 0
    status, out, err = cli("predict", "--params", str(model), "--data", str(data))
    assert status == 0, err
    rows = read_csv(out)
    assert list(rows[0]) == ["row", "predicted_package"]
    P = expected(model, np.array([[80, 8], [60, 5], [110, 7], [75, 6], [95, 9]], dtype=float))
    np.testing.assert_array_equal([float(r["predicted_package"]) for r in rows], P[:, 0])
    assert "loss" in err and "accuracy" not in err


def test_old_plain_params_file_loads_with_the_network_named(cli, tmp_path):
    spec = make_spec("2-2-1", "linear", "se")
    trainer = load_trainer(spec)
    params = trainer.init_params(seed=4)
    plain, data = tmp_path / "old.json", tmp_path / "d.csv"
    plain.write_text(json.dumps({k: v.tolist() for k, v in params.items()}))
    data.write_text("x1,x2,y\n1,2,3\n0.5,-1,0\n")
    status, _, err = cli("predict", "--params", str(plain), "--data", str(data))
    assert status == 2 and "name the network with --spec or --layers" in err and err.count("\n") == 1
    status, out, err = cli("predict", "--params", str(plain), "--layers", "2-2-1", "--data", str(data),
                           "--target", "y")
    assert status == 0, err
    P = trainer.forward(params, np.array([[1, 2], [0.5, -1]], dtype=float))
    np.testing.assert_array_equal([float(r["predicted_y"]) for r in read_csv(out)], P[:, 0])


def test_output_is_atomic_and_refuses_to_replace_without_force(cli, iris_model, tmp_path):
    out = tmp_path / "pred.csv"
    out.write_text("precious")
    args = ["predict", "--params", str(iris_model), "--data", str(IRIS), "-o", str(out)]
    status, _, err = cli(*args)
    assert status == 2 and "already exists; pass --force" in err and out.read_text() == "precious"
    assert cli(*args, "--force")[0] == 0 and out.read_text().startswith("row,predicted_species")
    assert [f.name for f in tmp_path.iterdir()] == ["pred.csv"]  # no temporary file left


# -- bad inputs: exit 2, one line naming the problem ----------------------------------------------


def one_line_error(cli, *args):
    status, out, err = cli("predict", *args)
    assert status == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_missing_feature_column_is_named(cli, iris_model, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("sepal_length,sepal_width,petal_length\n5,3,1\n")
    err = one_line_error(cli, "--params", str(iris_model), "--data", str(data))
    assert "no column 'petal_width', a feature the model was trained on" in err


@pytest.mark.parametrize("cell, says", [("nan", "is not a finite number"),
                                        ("abc", "'abc' is not a number")])
def test_bad_cell_names_file_line_and_column(cli, iris_model, tmp_path, cell, says):
    data = tmp_path / "d.csv"
    data.write_text(f"sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0.2\n5,3,{cell},0.2\n")
    err = one_line_error(cli, "--params", str(iris_model), "--data", str(data))
    assert f"{data} line 3 (data row 2), column 'petal_length'" in err and says in err


def test_model_file_of_a_newer_version_is_refused(cli, iris_model, tmp_path):
    newer = tmp_path / "newer.json"
    doc = json.loads(iris_model.read_text())
    doc["version"] = 99
    newer.write_text(json.dumps(doc))
    err = one_line_error(cli, "--params", str(newer), "--data", str(IRIS))
    assert "model format version 99" in err and "upgrade backprop" in err


def test_unknown_label_in_the_target_column_is_named(cli, iris_model, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(",".join(FEATURES) + ",species\n5,3,1,0.2,setosa\n5,3,1,0.2,tulip\n")
    err = one_line_error(cli, "--params", str(iris_model), "--data", str(data))
    assert "label 'tulip' is not one of the training classes (setosa, versicolor, virginica)" in err


def test_features_flag_with_a_model_file_is_refused(cli, iris_model):
    err = one_line_error(cli, "--params", str(iris_model), "--data", str(IRIS), "--features", "a")
    assert "--features is for plain params files" in err


def test_predict_equals_the_generated_modules_predict_on_the_same_model_file(cli, iris_model, tmp_path):
    """`backprop predict` and the generated trainer's own load_model/predict/predict_proba (the
    module a user gets from `backprop generate`) give the same labels and probabilities for the
    same model file and raw rows: one model contract for both."""
    out = tmp_path / "pred.csv"
    status, _, err = cli("predict", "--params", str(iris_model), "--data", str(IRIS), "-o", str(out))
    assert status == 0, err
    rows = read_csv(out.read_text())
    module = load_trainer(load_model(iris_model).spec)
    params = module.load_model(str(iris_model))
    X = load_csv(IRIS, "species", loss="cce").X
    labels = module.predict(params, X)
    proba = module.predict_proba(params, X)
    assert [r["predicted_species"] for r in rows] == [str(v) for v in labels]
    got = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    np.testing.assert_allclose(got, proba, rtol=1e-12, atol=0)
    assert set(labels) <= set(CLASSES)  # the module names the classes the model file stores
