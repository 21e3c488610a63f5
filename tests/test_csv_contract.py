"""One CSV contract: backprop train and every generated trainer name a bad row or cell in the
same words and hold out the same test rows, because both run core/csv_contract.py's text."""
import importlib
from pathlib import Path

import numpy as np
import pytest

from backprop.codegen import load_trainer
from backprop.core import csv_contract
from backprop.core.errors import UserError
from backprop.derive import make_spec
from backprop.train import data as train_data

CONTRACT = Path(csv_contract.__file__).read_text(encoding="utf-8")
TRAINERS = ["notes_2_2_1", "notes_5_4_3_2_1", "sigmoid_bce", "softmax_cce"]


@pytest.fixture(scope="module")
def classifier():
    """A generated 2-input, 3-class trainer (features height, width; labels in column kind)."""
    return load_trainer(make_spec("2-3-3", "sigmoid,softmax", "cce"))


@pytest.mark.parametrize("name", TRAINERS)
def test_every_committed_trainer_holds_the_contract_word_for_word(name):
    module = importlib.import_module(f"backprop.generated.{name}")
    assert Path(module.__file__).read_text(encoding="utf-8").count(CONTRACT) == 1
    assert module.number_problem("t.csv line 2 (data row 1)", "a", " inf ", "x") == (
        "t.csv line 2 (data row 1), column 'a': 'inf' is not a finite number (NaN or infinity); "
        "fill it in or drop the row")


#: Tables with one bad row or cell (features height, width; label column kind), and where.
BAD = {
    "missing label": ("height,width,kind\n100,5,a\n\n110,9,NA\n", "line 4 (data row 2), column "
                      "'kind': 'NA' marks a missing label; fill it in or drop the row"),
    "empty label": ("height,width,kind\n100,5,a\n110,9,\n", "line 3 (data row 2), column 'kind': "
                    "empty cell; fill it in or drop the row"),
    "nan feature": ("height,width,kind\n100,nan,a\n", "line 2 (data row 1), column 'width': 'nan' is not a "
                    "finite number (NaN or infinity); fill it in or drop the row"),
    "ragged row": ("height,width,kind\n100,5,a\n1,2,3,4\n", "line 3 (data row 2): 4 cells but the header "
                   "has 3 columns; every row needs one value per column"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_train_and_a_generated_trainer_refuse_a_bad_table_in_the_same_words(classifier, tmp_path, case):
    text, says = BAD[case]
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(UserError) as ours:
        train_data.load_csv(path, "kind", loss="cce")
    with pytest.raises(ValueError) as theirs:
        classifier._read_table(str(path), "kind")
    assert str(ours.value) == str(theirs.value) == f"{path} {says}"


def test_text_in_a_feature_column_differs_only_in_the_way_out_each_tool_offers(classifier, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("height,width,kind\n100,5,a\n110,wide,b\n")
    with pytest.raises(UserError) as ours:
        train_data.load_csv(path, "kind", loss="cce")
    with pytest.raises(ValueError) as theirs:
        classifier._read_table(str(path), "kind")
    same = f"{path} line 3 (data row 2), column 'width': 'wide' is not a number; fix the cell, "
    assert str(ours.value) == same + train_data.FEATURE_FIX
    assert str(theirs.value) == same + "or leave the column out of the table"


def test_held_out_rows_are_stratified_and_seeded():
    classes = np.array([0] * 10 + [1] * 4 + [2] * 1)
    test = csv_contract.held_out_rows(classes, 0.3, seed=3)
    assert [int((classes[test] == k).sum()) for k in range(3)] == [3, 1, 0]  # round(0.3 × size)
    assert list(test) == sorted(test) and len(set(test.tolist())) == 4
    assert np.array_equal(test, csv_contract.held_out_rows(classes, 0.3, seed=3))
    assert csv_contract.fraction_problem(0.3) is None
    assert csv_contract.fraction_problem(1.0) == ("--test-split must be a fraction between 0 and 1 "
                                                  "(e.g. 0.3), got 1")
