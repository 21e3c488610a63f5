"""Issue 13's classifier workflow in `backprop train`: held-out test rows (seeded, stratified),
standardisation from the training rows only, metrics on both sets, the model file, iris."""
import json

import numpy as np
import pytest

from backprop.train import metrics
from backprop.train.data import from_arrays, load_csv, split
from backprop.train.examples import EXAMPLES

IRIS = EXAMPLES["iris"].path
#: The README's iris command (its documented seed is 1; see README "Classifiers").
IRIS_COMMAND = ["train", "--layers", "4-8-3", "--activations", "relu,softmax", "--loss", "cce",
                "--data", str(IRIS), "--target", "species", "--standardise",
                "--test-split", "0.3", "--seed", "1"]


def summary(cli, *args):
    status, out, err = cli(*args, "--json", "--quiet")
    assert status == 0, err
    return json.loads(out)


# -- the split ----------------------------------------------------------------------------------


def labelled(n_per_class=(10, 20, 30)):
    """A classifier's data set: row r holds r in its one feature, classes in blocks."""
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    ds = from_arrays(np.arange(len(labels), dtype=float).reshape(-1, 1), np.eye(3)[labels])
    ds.classes = ["a", "b", "c"]
    return ds, labels


def test_split_is_reproducible_with_a_seed_and_differs_between_seeds():
    ds, _ = labelled()
    a_train, a_test = split(ds, 0.3, seed=7)
    b_train, b_test = split(ds, 0.3, seed=7)
    c_train, c_test = split(ds, 0.3, seed=8)
    np.testing.assert_array_equal(a_test.X, b_test.X)
    np.testing.assert_array_equal(a_train.X, b_train.X)
    assert not np.array_equal(a_test.X, c_test.X)


def test_split_is_stratified_disjoint_complete_and_keeps_row_order():
    ds, labels = labelled()
    train, test = split(ds, 0.3, seed=0)
    rows_train, rows_test = train.X[:, 0].astype(int), test.X[:, 0].astype(int)
    assert sorted(np.concatenate([rows_train, rows_test])) == list(range(60))
    assert (np.diff(rows_train) > 0).all() and (np.diff(rows_test) > 0).all()
    # round(0.3 × class size) of each class: 3 of 10, 6 of 20, 9 of 30
    assert np.bincount(labels[rows_test]).tolist() == [3, 6, 9]
    assert test.Y.sum(axis=0).tolist() == [3, 6, 9] and train.Y.sum(axis=0).tolist() == [7, 14, 21]
    assert test.classes == train.classes == ["a", "b", "c"]


def test_split_of_bce_labels_is_stratified_too():
    Y = np.array([1] * 4 + [0] * 16, dtype=float).reshape(-1, 1)
    ds = from_arrays(np.arange(20.0).reshape(-1, 1), Y)
    ds.classes = ["no", "yes"]
    _, test = split(ds, 0.5, seed=3)
    assert test.n_rows == 10 and test.Y.sum() == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_fraction_outside_0_1_is_refused(fraction):
    from backprop.core.errors import UserError
    ds, _ = labelled()
    with pytest.raises(UserError, match="--test-split must be a fraction between 0 and 1"):
        split(ds, fraction, seed=0)


def test_split_leaving_no_test_row_is_refused():
    from backprop.core.errors import UserError
    ds = from_arrays(np.arange(3.0).reshape(-1, 1), np.arange(3.0))
    with pytest.raises(UserError, match="leaves 0 test and 3 training rows"):
        split(ds, 0.1, seed=0)


# -- metrics ------------------------------------------------------------------------------------

TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
PRED = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])


def test_confusion_matrix_precision_recall_f1_by_hand():
    cm = metrics.confusion_matrix(TRUE, PRED, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    per = metrics.precision_recall_f1(cm)
    # precision: TP / column sum; recall: TP / row sum
    np.testing.assert_allclose(per["precision"], [2 / 3, 2 / 3, 3 / 4])
    np.testing.assert_allclose(per["recall"], [2 / 3, 2 / 3, 3 / 4])
    np.testing.assert_allclose(per["f1"], [2 / 3, 2 / 3, 3 / 4])
    assert per["support"].tolist() == [3, 3, 4]
    assert metrics.accuracy(cm) == pytest.approx(0.7)


def test_a_class_never_predicted_has_precision_0_not_nan():
    cm = metrics.confusion_matrix([0, 1, 1], [1, 1, 1], 2)
    per = metrics.precision_recall_f1(cm)
    assert per["precision"].tolist() == [0.0, pytest.approx(2 / 3)]
    assert per["recall"].tolist() == [0.0, 1.0] and per["f1"][0] == 0.0


def test_metrics_agree_with_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    pred[:5] = 3  # some overlap either way
    cm = metrics.confusion_matrix(true, pred, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(true, pred, labels=range(4)))
    per = metrics.precision_recall_f1(cm)
    p, r, f, s = skm.precision_recall_fscore_support(true, pred, labels=range(4), zero_division=0)
    np.testing.assert_allclose(per["precision"], p, rtol=1e-15)
    np.testing.assert_allclose(per["recall"], r, rtol=1e-15)
    np.testing.assert_allclose(per["f1"], f, rtol=1e-15)
    np.testing.assert_array_equal(per["support"], s)
    assert metrics.accuracy(cm) == pytest.approx(skm.accuracy_score(true, pred), rel=1e-15)


def test_class_indices_cce_argmax_and_bce_threshold_at_one_half():
    assert metrics.class_indices("cce", np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])).tolist() == [1, 0]
    # bce: class 1 from ŷ = ½ on (the kink of the threshold), 0 just below
    bce = metrics.class_indices("bce", np.array([[0.5], [0.5 - 1e-12], [0.9], [0.0]]))
    assert bce.tolist() == [1, 0, 1, 0]


def test_evaluate_and_its_text_table():
    Y = np.eye(3)[TRUE]
    P = np.eye(3)[PRED] * 0.8 + 0.1 / 1.5
    m = metrics.evaluate("cce", Y, P, 0.25, ["setosa", "versicolor", "virginica"])
    assert m["rows"] == 10 and m["loss"] == 0.25 and m["accuracy"] == pytest.approx(0.7)
    assert m["confusion"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m["per_class"][2] == {"class": "virginica", "precision": 0.75, "recall": 0.75,
                                 "f1": 0.75, "support": 4}
    text = "\n".join(metrics.format_metrics("test", m))
    assert "test (10 rows): loss 0.25, accuracy 70.0%" in text
    assert "  virginica       0.750   0.750  0.750        4" in text
    assert "  versicolor           0          2          1" in text
    assert metrics.evaluate("se", Y, P, 1.5) == {"rows": 10, "loss": 1.5}


# -- train with a test set ----------------------------------------------------------------------


def test_iris_readme_command_reaches_95_percent_test_accuracy(cli):
    """The documented command, bounded by its epochs (200), not by time."""
    s = summary(cli, *IRIS_COMMAND)
    assert s["rows"] == 105 and s["test_rows"] == 45 and s["seed"] == 1
    assert (s["gd"], s["lr"], s["epochs"], s["init"]) == ("minibatch", 0.1, 200, "glorot")
    assert s["test_accuracy"] >= 0.95 and s["accuracy"] >= 0.95
    test = s["metrics"]["test"]
    assert [c["support"] for c in test["per_class"]] == [15, 15, 15]  # stratified
    assert np.sum(test["confusion"]) == 45 and np.trace(test["confusion"]) == round(45 * test["accuracy"])


def test_example_iris_is_the_readme_command(cli):
    a = summary(cli, "train", "--example", "iris")
    b = summary(cli, *IRIS_COMMAND)
    assert a["params"] == b["params"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["network"] == "4-8-3 network, activations relu,softmax, loss cce, with bias"


def test_standardisation_comes_from_training_rows_only(cli):
    s = summary(cli, *IRIS_COMMAND, "--epochs", "1")
    full = load_csv(IRIS, "species", loss="cce")
    train, test = split(full, 0.3, seed=1)
    np.testing.assert_allclose(s["standardised"]["mean"], train.X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s["standardised"]["std"], train.X.std(axis=0), rtol=1e-14)
    assert not np.allclose(s["standardised"]["mean"], full.X.mean(axis=0))


def test_test_metrics_are_the_trainers_on_test_rows_scaled_with_training_statistics(cli):
    from backprop.codegen import load_trainer
    from backprop.derive import make_spec
    s = summary(cli, *IRIS_COMMAND, "--epochs", "5")
    trainer = load_trainer(make_spec("4-8-3", "relu,softmax", "cce"))
    params = {k: np.asarray(v) for k, v in s["params"].items()}
    train, test = split(load_csv(IRIS, "species", loss="cce"), 0.3, seed=1)
    X = (test.X - np.array(s["standardised"]["mean"])) / np.array(s["standardised"]["std"])
    assert s["test_loss"] == pytest.approx(trainer.loss(params, X, test.Y), rel=1e-12)
    P = trainer.forward(params, X)
    assert s["test_accuracy"] == pytest.approx((P.argmax(1) == test.Y.argmax(1)).mean())


def test_test_data_file_with_other_column_order_and_missing_class(cli, tmp_path):
    lines = IRIS.read_text().splitlines()
    train = tmp_path / "train.csv"
    train.write_text("\n".join(lines[0:1] + lines[1:41] + lines[51:91] + lines[101:141]) + "\n")
    test = tmp_path / "test.csv"  # columns reordered, only versicolor and virginica rows
    rows = [r.split(",") for r in lines[91:101] + lines[141:151]]
    test.write_text("species,petal_width,petal_length,sepal_width,sepal_length\n"
                    + "".join(f"{r[4]},{r[3]},{r[2]},{r[1]},{r[0]}\n" for r in rows))
    s = summary(cli, "train", "--layers", "4-8-3", "--activations", "relu,softmax", "--loss", "cce",
                "--data", str(train), "--target", "species", "--standardise", "--seed", "0",
                "--test-data", str(test))
    assert s["rows"] == 120 and s["test_rows"] == 20 and s["test_data"] == str(test)
    t = s["metrics"]["test"]
    assert t["classes"] == ["setosa", "versicolor", "virginica"]
    assert [c["support"] for c in t["per_class"]] == [0, 10, 10] and t["accuracy"] >= 0.85


def test_test_data_with_an_unknown_label_is_one_line(cli, tmp_path):
    test = tmp_path / "test.csv"
    test.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n5,3,1,0.2,setosa\n"
                    "5,3,1,0.2,rose\n")
    status, out, err = cli(*IRIS_COMMAND[:-4], "--test-data", str(test), "--epochs", "1")
    assert status == 2 and err.count("\n") == 1
    assert "data row 2, column 'species': label 'rose' is not one of the training classes" in err


def test_test_split_and_test_data_together_are_refused(cli, tmp_path):
    status, _, err = cli(*IRIS_COMMAND, "--test-data", str(IRIS))
    assert status == 2 and "give --test-split or --test-data, not both" in err


def test_text_output_shows_both_sets_with_class_names(cli):
    status, out, err = cli(*IRIS_COMMAND, "--quiet")
    assert status == 0, err
    assert "105 training rows; 45 test rows held out (--test-split 0.3, seed 1)" in out
    assert "train (105 rows): loss " in out and "test (45 rows): loss " in out
    assert out.count("confusion (rows: true class, columns: predicted)") == 2
    assert "                  setosa versicolor  virginica" in out


def test_regression_gets_a_test_loss_and_no_class_table(cli, tmp_path):
    data = tmp_path / "r.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    data.write_text("a,b,y\n" + "".join(f"{a},{b},{a - b}\n" for a, b in X))
    s = summary(cli, "train", "--data", str(data), "--target", "y", "--test-split", "0.25",
                "--seed", "0", "--layers", "2-1", "--epochs", "50")
    assert s["rows"] == 30 and s["test_rows"] == 10 and s["test_accuracy"] is None
    assert set(s["metrics"]["test"]) == {"rows", "loss"} and s["test_loss"] > 0
    # regression keeps the old defaults: full batch, η = 0.01
    assert (s["gd"], s["lr"]) == ("batch", 0.01)


def test_model_file_holds_names_classes_standardisation_and_metrics(cli, tmp_path):
    from backprop.train.model import load_model
    p = tmp_path / "iris.json"
    s = summary(cli, *IRIS_COMMAND, "--epochs", "20", "--params-out", str(p))
    m = load_model(p)
    assert m.spec.layers == (4, 8, 3) and m.classes == ["setosa", "versicolor", "virginica"]
    assert m.features == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert m.targets == ["species"]
    np.testing.assert_array_equal(m.mean, s["standardised"]["mean"])
    for key, value in s["params"].items():
        np.testing.assert_array_equal(m.params[key], value)
    assert m.extra["metrics"]["test"]["accuracy"] == s["test_accuracy"]
    assert m.extra["training"]["seed"] == 1 and m.extra["training"]["test_split"] == 0.3


def test_resume_from_a_model_file_keeps_its_network_and_standardisation(cli, tmp_path):
    p1, p2 = tmp_path / "a.json", tmp_path / "b.json"
    first = summary(cli, *IRIS_COMMAND, "--epochs", "3", "--params-out", str(p1))
    # no network flags: the model file brings its 4-8-3 network
    second = summary(cli, "train", "--data", str(IRIS), "--target", "species", "--test-split", "0.3",
                     "--seed", "1", "--epochs", "3", "--resume", str(p1), "--params-out", str(p2))
    assert second["network"] == first["network"]
    assert second["standardised"]["mean"] == first["standardised"]["mean"]
    assert second["loss_initial"] == pytest.approx(first["loss_final"], rel=1e-12)


def test_plot_has_a_confusion_matrix_panel(cli, tmp_path):
    pytest.importorskip("matplotlib")
    from backprop.pictures import plots
    seen = {}
    real = plots.draw_confusion

    def spy(ax, matrix, classes, title):
        seen.update(matrix=matrix, classes=classes, title=title)
        return real(ax, matrix, classes, title)

    png = tmp_path / "iris.png"
    plots.draw_confusion = spy
    try:
        s = summary(cli, *IRIS_COMMAND, "--epochs", "2", "--plot", str(png))
    finally:
        plots.draw_confusion = real
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen["matrix"] == s["metrics"]["test"]["confusion"] and "test rows" in seen["title"]
    assert seen["classes"] == ["setosa", "versicolor", "virginica"]


def test_draw_confusion_writes_every_count():
    pytest.importorskip("matplotlib")
    from backprop.pictures.plots import draw_confusion, new_figure
    fig, axes = new_figure(3, 3)
    draw_confusion(axes[0][0], [[5, 0], [2, 13]], ["no", "yes"], "cm")
    assert sorted(t.get_text() for t in axes[0][0].texts) == ["0", "13", "2", "5"]
