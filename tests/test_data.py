"""CSV loading: good files become arrays; every bad file is one line naming file, line and column."""
import numpy as np
import pytest

from backprop.core.errors import UserError
from backprop.train.data import accuracy, load_csv

GOOD = "iq,cgpa,package\n80,8,5\n60,5,3\n110,7,8\n"


def write(tmp_path, text, name="students.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_features_and_target_in_header_order(tmp_path):
    ds = load_csv(write(tmp_path, GOOD), "package")
    assert ds.features == ["iq", "cgpa"] and ds.targets == ["package"]
    np.testing.assert_array_equal(ds.X, [[80, 8], [60, 5], [110, 7]])
    np.testing.assert_array_equal(ds.Y, [[5], [3], [8]])
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous


def test_features_pick_and_order_columns_and_several_targets(tmp_path):
    path = write(tmp_path, "a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    ds = load_csv(path, ["d", "b"], features=["c,a"])
    np.testing.assert_array_equal(ds.X, [[3, 1], [7, 5]])
    np.testing.assert_array_equal(ds.Y, [[4, 2], [8, 6]])


def test_unused_text_column_is_fine_when_left_out(tmp_path):
    path = write(tmp_path, "name,iq,package\nann,80,5\nbob,60,3\n")
    ds = load_csv(path, "package", features="iq")
    np.testing.assert_array_equal(ds.X, [[80], [60]])


def test_blank_lines_crlf_and_bom_are_tolerated(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffiq,cgpa,package\r\n80,8,5\r\n\r\n60,5,3\r\n".encode("utf-8"))
    ds = load_csv(path, "package")
    assert ds.n_rows == 2 and ds.features == ["iq", "cgpa"]


def test_standardise_gives_mean_0_std_1_and_remembers_the_scaling(tmp_path):
    ds = load_csv(write(tmp_path, GOOD), "package").standardise()
    np.testing.assert_allclose(ds.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X.std(axis=0), 1)
    assert ds.scaling()["mean"] == pytest.approx([250 / 3, 20 / 3])
    np.testing.assert_array_equal(ds.Y, [[5], [3], [8]])  # targets untouched


# The bad-CSV matrix: (file text, extra load_csv arguments, words the one-line message must hold).
BAD = {
    "text in a numeric column": (
        "iq,cgpa,package\n80,8,5\n60,abc,3\n", {}, ["line 3", "data row 2", "'cgpa'", "'abc'"]),
    "NaN cell": ("iq,cgpa,package\n80,8,5\n60,5,3\n110,nan,8\n", {}, ["line 4", "'cgpa'", "NaN"]),
    "infinite cell": ("iq,cgpa,package\n80,8,inf\n", {}, ["line 2", "'package'", "finite"]),
    "empty cell": ("iq,cgpa,package\n80,8,5\n,5,3\n", {}, ["line 3", "'iq'", "empty cell"]),
    "missing target column": (GOOD, {"target": "salary"}, ["'salary'", "iq, cgpa, package"]),
    "ragged row, too few": ("iq,cgpa,package\n80,8,5\n60,5\n", {}, ["line 3", "2 cells", "3 columns"]),
    "ragged row, too many": ("iq,cgpa,package\n80,8,5,1\n", {}, ["line 2", "4 cells"]),
    "ragged row, quoted file": ('iq,cgpa,package\n"80",8,5\n60,5\n', {}, ["line 3", "2 cells"]),
    "empty file": ("", {}, ["is empty", "header"]),
    "whitespace-only file": ("\n\n  \n", {}, ["is empty"]),
    "header only": ("iq,cgpa,package\n", {}, ["header row but no data rows"]),
    "unknown --features column": (GOOD, {"features": ["iq", "gpa"]}, ["'gpa'", "--features"]),
    "feature that is the target": (GOOD, {"features": ["iq", "package"]}, ["both a feature and a target"]),
    "numbers as header": ("1,2,3\n4,5,6\n", {}, ["line 1", "header"]),
    "duplicate column": ("iq,iq,package\n1,2,3\n", {}, ["line 1", "iq", "twice"]),
    "empty column name": ("iq,,package\n1,2,3\n", {}, ["line 1", "empty column name"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_csv_is_one_line_naming_file_and_place(tmp_path, case):
    text, kwargs, words = BAD[case]
    path = write(tmp_path, text)
    kwargs = {"target": "package", **kwargs}
    with pytest.raises(UserError) as info:
        load_csv(path, kwargs.pop("target"), **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, (case, message)


@pytest.mark.parametrize("case", ["text in a numeric column", "empty cell", "missing target column",
                                  "ragged row, too few", "empty file", "header only",
                                  "unknown --features column", "NaN cell"])
def test_bad_csv_through_the_cli_exits_2_with_one_line(tmp_path, cli, case):
    text, kwargs, words = BAD[case]
    path = write(tmp_path, text)
    args = ["train", "--data", str(path), "--target", kwargs.get("target", "package"), "--quiet"]
    if "features" in kwargs:
        args += ["--features", ",".join(kwargs["features"])]
    status, out, err = cli(*args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("backprop train: error: ")
    assert words[0] in err


def test_text_in_a_regression_target_points_to_classification(tmp_path):
    with pytest.raises(UserError, match="'yes' is not a number; fix the cell, for class labels use --loss bce or cce"):
        load_csv(write(tmp_path, "x,placed\n1,yes\n"), "placed")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_csv(tmp_path / "nope.csv", "y")


def test_cce_labels_become_one_hot_in_sorted_order(tmp_path):
    path = write(tmp_path, "x1,x2,kind\n0,1,cat\n1,0,dog\n1,1,ant\n0,0,dog\n")
    ds = load_csv(path, "kind", loss="cce")
    assert ds.classes == ["ant", "cat", "dog"]
    assert ds.targets == ["kind=ant", "kind=cat", "kind=dog"]
    np.testing.assert_array_equal(ds.Y, [[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]])


def test_numeric_labels_sort_numerically(tmp_path):
    path = write(tmp_path, "x,c\n0,10\n1,2\n2,2\n")
    ds = load_csv(path, "c", loss="cce")
    assert ds.classes == ["2", "10"]
    np.testing.assert_array_equal(ds.Y, [[0, 1], [1, 0], [1, 0]])


def test_bce_maps_two_labels_to_0_and_1(tmp_path):
    ds = load_csv(write(tmp_path, "x,placed\n1,yes\n2,no\n3,yes\n"), "placed", loss="bce")
    assert ds.classes == ["no", "yes"]
    np.testing.assert_array_equal(ds.Y, [[1], [0], [1]])
    ds = load_csv(write(tmp_path, "x,placed\n1,1\n2,0\n", "b.csv"), "placed", loss="bce")
    np.testing.assert_array_equal(ds.Y, [[1], [0]])


def test_bce_with_three_labels_suggests_cce(tmp_path):
    with pytest.raises(UserError, match="use --loss cce"):
        load_csv(write(tmp_path, "x,c\n1,a\n2,b\n3,c\n"), "c", loss="bce")


def test_empty_label_cell_is_named(tmp_path):
    with pytest.raises(UserError, match=r"line 3 \(data row 2\), column 'c': empty cell"):
        load_csv(write(tmp_path, "x,c\n1,a\n2,\n"), "c", loss="cce")


def test_nan_label_is_a_missing_value(tmp_path):
    with pytest.raises(UserError, match=r"line 3 \(data row 2\), column 'c': 'NaN' marks a missing label"):
        load_csv(write(tmp_path, "x,c\n1,a\n2,NaN\n"), "c", loss="cce")


def test_semicolon_file_gets_a_hint(tmp_path):
    with pytest.raises(UserError, match="only comma-separated files"):
        load_csv(write(tmp_path, "iq;cgpa;package\n80;8;5\n"), "package")


def test_accuracy():
    Y = np.array([[1, 0], [0, 1], [0, 1]])
    P = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert accuracy("cce", Y, P) == pytest.approx(2 / 3)
    assert accuracy("bce", np.array([[1], [0]]), np.array([[0.7], [0.7]])) == 0.5
    assert accuracy("se", Y, P) is None


def test_large_file_loads_vectorised(tmp_path, monkeypatch):
    """50 000 rows load with no per-cell Python on the happy path (the cell-by-cell
    diagnosis runs only to explain a bad file): work is checked, not wall time."""
    import backprop.train.data as data_module

    def no_per_cell(*args, **kwargs):
        raise AssertionError("the per-cell diagnosis ran on a good file")

    monkeypatch.setattr(data_module, "_diagnose", no_per_cell)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(50_000, 3))
    path = tmp_path / "big.csv"
    np.savetxt(path, data, delimiter=",", header="a,b,y", comments="", fmt="%.6f")
    ds = load_csv(path, "y")
    np.testing.assert_allclose(ds.X, data[:, :2], atol=1e-6)



# -- issue 13: reading test rows and new rows the training set's way ------------------------------

LABELS = "x,kind\n1,b\n2,c\n3,b\n"


def test_classes_given_fix_the_one_hot_order_even_when_a_class_is_absent(tmp_path):
    ds = load_csv(write(tmp_path, LABELS), "kind", loss="cce", classes=["a", "b", "c"])
    assert ds.classes == ["a", "b", "c"] and ds.label_column == "kind"
    assert ds.target_columns == ["kind"]
    np.testing.assert_array_equal(ds.Y, [[0, 1, 0], [0, 0, 1], [0, 1, 0]])
    found = load_csv(write(tmp_path, LABELS), "kind", loss="cce")
    assert found.classes == ["b", "c"] and found.Y.shape == (3, 2)


def test_a_label_outside_the_classes_given_is_named(tmp_path):
    with pytest.raises(UserError, match=r"data row 2, column 'kind': label 'c' is not one of the "
                       r"training classes \(a, b\)"):
        load_csv(write(tmp_path, LABELS), "kind", loss="cce", classes=["a", "b"])


def test_bce_classes_given_keep_0_and_1(tmp_path):
    ds = load_csv(write(tmp_path, "x,y\n1,1.0\n2,0\n"), "y", loss="bce", classes=["0", "1"])
    assert ds.classes == ["0", "1"] and ds.Y[:, 0].tolist() == [1.0, 0.0]


def test_load_features_reads_named_columns_only_and_needs_no_target(tmp_path):
    from backprop.train.data import load_features, read_header
    path = write(tmp_path, "id,b,note,a\n1,2,x,3\n4,5,y,6\n")
    assert read_header(path) == ["id", "b", "note", "a"]
    ds = load_features(path, ["a", "b"])
    np.testing.assert_array_equal(ds.X, [[3, 2], [6, 5]])
    assert ds.Y.shape == (2, 0) and ds.features == ["a", "b"]
    with pytest.raises(UserError, match=r"no feature column 'c' \(from the model file\)"):
        load_features(path, ["a", "c"], origin="the model file")
    with pytest.raises(UserError, match=r"line 2 \(data row 1\), column 'a': 'inf' is not a finite"):
        load_features(write(tmp_path, "a\ninf\n", "bad.csv"), ["a"])


def test_apply_scaling_uses_the_statistics_given():
    from backprop.train.data import from_arrays
    train = from_arrays([[0.0], [2.0]], [0, 1]).standardise()
    test = from_arrays([[4.0], [1.0]], [0, 1]).apply_scaling(train.mean, train.std)
    np.testing.assert_array_equal(test.X, [[3.0], [0.0]])  # (x - 1) / 1
    assert test.mean.tolist() == [1.0] and test.std.tolist() == [1.0]
