"""The CSV contract: how a bad row or cell of a training table is named, and which rows a
test split holds out.  `backprop train` (train/data.py) reads tables by these rules, and every
generated trainer holds this text word for word (its template includes this file), so both
name a bad cell as FILE line N (data row M), column 'NAME' in the same words and hold out the
same rows for the same seed.  NumPy only: a generated trainer imports nothing else.
"""
import numpy as np

#: Label cells that mean "no value" rather than a class.
MISSING_LABELS = ("nan", "na", "n/a", "null", "none")
#: The spellings of a 0/1 column read as binary labels, and the class each means.
BINARY_LABELS = {"0": 0, "0.0": 0, "1": 1, "1.0": 1}


def row_place(path, line, row):
    """How a row is named: FILE line N (data row M), N counting every line, M the data rows."""
    return f"{path} line {line} (data row {row})"


def ragged_row(place, cells, columns):
    """The message for a row of ``cells`` cells under a header of ``columns`` names."""
    return (f"{place}: {cells} cells but the header has {columns} columns; "
            "every row needs one value per column")


def number_problem(place, column, cell, fix):
    """What is wrong with a cell that must hold a number, or None when it holds a finite one;
    ``fix`` ends the message for text (each tool names its own way out)."""
    cell = cell.strip()
    where = f"{place}, column {column!r}"
    if not cell:
        return f"{where}: empty cell; fill it in or drop the row"
    try:
        value = float(cell)
    except ValueError:
        return f"{where}: {cell!r} is not a number; fix the cell, {fix}"
    if not np.isfinite(value):
        return (f"{where}: {cell!r} is not a finite number (NaN or infinity); "
                "fill it in or drop the row")
    return None


def label_problem(place, column, cell):
    """What is wrong with a class-label cell (empty, or a word for "no value"), or None."""
    label = cell.strip()
    where = f"{place}, column {column!r}"
    if not label:
        return f"{where}: empty cell; fill it in or drop the row"
    if label.lower() in MISSING_LABELS:
        return f"{where}: {label!r} marks a missing label; fill it in or drop the row"
    return None


def sort_labels(labels):
    """Numeric labels in numeric order (2 before 10), text labels alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def fraction_problem(fraction):
    """What is wrong with a --test-split fraction, or None when it lies strictly in (0, 1)."""
    if 0 < fraction < 1:
        return None
    return f"--test-split must be a fraction between 0 and 1 (e.g. 0.3), got {fraction:g}"


def held_out_rows(classes, fraction, seed=None):
    """The test rows' indices, ascending: of each class (``classes``: one per row, all equal
    for regression), round(fraction × its size) rows drawn at random, classes in sorted order,
    so the same seed holds out the same rows."""
    classes = np.asarray(classes)
    rng = np.random.default_rng(seed)
    test = [np.empty(0, dtype=np.int64)]
    for k in np.unique(classes):
        rows = np.flatnonzero(classes == k)
        test.append(rng.permutation(rows)[:int(np.floor(fraction * len(rows) + 0.5))])
    return np.sort(np.concatenate(test)).astype(np.int64)
