"""CSV training data: a header row, numeric feature columns, one or more target columns.

Loading is vectorised and streamed: the file's shape (same number of cells on every line) is
checked with NumPy, one 4 MB block of whole lines at a time, and the numbers are parsed by
:func:`numpy.loadtxt` (which streams too), so a million-row file loads in about a second and
memory stays near the size of the arrays, whatever the size of the file.  Only when something is wrong does a second,
row-by-row pass with the :mod:`csv` module run, to name the first bad cell exactly: every
problem is a :class:`UserError` of the form ``FILE line N (data row M), column 'NAME': ...``,
in the words of :mod:`backprop.core.csv_contract`, which the generated trainers hold too.

Classification (``--loss bce`` / ``cce``): the target column may hold class labels (text or
numbers); cce turns one label column into one-hot columns in sorted label order, bce maps
two labels to 0 and 1.  Standardisation rescales the features only, to mean 0 and standard
deviation 1, and remembers the shift and scale so they can be reported and reused.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop.core.csv_contract import (BINARY_LABELS, fraction_problem, held_out_rows, label_problem,
                                        number_problem, ragged_row, row_place, sort_labels)
from backprop.core.errors import UserError
from backprop.derive.losses import LOSSES

from .metrics import classifiers, is_classifier

#: Bytes read per block when checking the file's shape (whole lines are carried over): 4 MB,
#: so the check's memory is a few times this, whatever the size of the file.
CHUNK = 1 << 22

#: The header line may be at most this long (100 000 columns of 600-character names).
MAX_HEADER_BYTES = 64 << 20

#: How a cell of text in a numeric column can be mended: a target column, a feature column.
TARGET_FIX = f"for class labels use --loss {' or '.join(classifiers())}"
FEATURE_FIX = "or leave the column out with --features"


@dataclass
class Dataset:
    """Arrays ready for a trainer: ``X`` (n_rows, n_features), ``Y`` (n_rows, n_outputs)."""

    X: np.ndarray
    Y: np.ndarray
    features: list[str]
    targets: list[str]
    source: str
    classes: list[str] | None = None  # class label of each output column (or of 0/1 for bce)
    mean: np.ndarray | None = None  # feature shift applied by standardise()
    std: np.ndarray | None = None  # feature scale applied by standardise()
    label_column: str | None = None  # the one column of class labels Y was one-hot encoded from

    @property
    def target_columns(self) -> list[str]:
        """The file's target column(s): the label column, or the numeric/one-hot columns."""
        return [self.label_column] if self.label_column else list(self.targets)

    def __repr__(self) -> str:
        return (f"Dataset({self.source!r}, {self.n_rows} rows, features {self.features}, "
                f"targets {self.targets})")

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def standardise(self) -> "Dataset":
        """Rescale every feature column to mean 0, standard deviation 1 (constant columns: shift only)."""
        mean = self.X.mean(axis=0)
        std = self.X.std(axis=0)
        return self.apply_scaling(mean, np.where(std > 0, std, 1.0))

    def apply_scaling(self, mean: np.ndarray, std: np.ndarray) -> "Dataset":
        """(X - mean) / std with given statistics: the training rows' applied to test rows, or a
        model file's applied to new rows, so every set is scaled the way the network learnt."""
        mean = np.asarray(mean, dtype=float)
        std = np.asarray(std, dtype=float)
        X = self.X if self.X.flags.writeable and self.X.dtype.kind == "f" else self.X.astype(float)
        X -= mean  # in place: no second and third copy of a large table
        X /= std
        self.X = X
        self.mean, self.std = mean, std
        return self

    def rows(self, index: np.ndarray, source: str | None = None) -> "Dataset":
        """The rows at ``index`` as a Dataset of their own (names, classes and scaling kept)."""
        return Dataset(X=self.X[index], Y=self.Y[index], features=list(self.features),
                       targets=list(self.targets), source=source or self.source,
                       classes=self.classes, mean=self.mean, std=self.std,
                       label_column=self.label_column)

    def scaling(self) -> dict | None:
        """The standardisation as JSON: {"features": [...], "mean": [...], "std": [...]}."""
        if self.mean is None:
            return None
        return {"features": list(self.features), "mean": self.mean.tolist(), "std": self.std.tolist()}


def split(ds: Dataset, test_fraction: float, seed: int | None = None
          ) -> tuple[Dataset, Dataset]:
    """(train, test): a random ``test_fraction`` of the rows held out, the same rows for the same
    seed.  A classifier's rows are split class by class (stratified: each class keeps its share
    in both sets, round(fraction × class size) of it in the test set); other data as one group.
    Both keep the file's row order.  Call before standardising: the statistics must come from
    the training rows only."""
    problem = fraction_problem(test_fraction)
    if problem:
        raise UserError(problem)
    test_index = held_out_rows(_classes(ds), test_fraction, seed)
    if len(test_index) == 0 or len(test_index) == ds.n_rows:
        raise UserError(f"--test-split {test_fraction:g} of {ds.n_rows} rows leaves "
                        f"{len(test_index)} test and {ds.n_rows - len(test_index)} training rows; "
                        "both need at least one: pick another fraction or give --test-data")
    keep = np.ones(ds.n_rows, dtype=bool)
    keep[test_index] = False
    return (ds.rows(np.flatnonzero(keep)),
            ds.rows(test_index, f"{ds.source} (test rows)"))


def _classes(ds: Dataset) -> np.ndarray:
    """Each row's class (classifiers: arg max of one-hot Y, or Y ≥ ½ for one 0/1 column), or
    0 for every row (regression: one group)."""
    if ds.classes is None:
        return np.zeros(ds.n_rows, dtype=np.int64)
    return ds.Y.argmax(axis=1) if ds.Y.shape[1] > 1 else (ds.Y[:, 0] >= 0.5).astype(np.int64)


def split_names(values) -> list[str]:
    """``["a,b", "c"]`` or ``"a,b"`` -> ``["a", "b", "c"]`` (flags may repeat or use commas)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [name.strip() for v in values for name in v.split(",") if name.strip()]


def load_csv(path: str | Path, target, features=None, loss: str = "se",
             dtype: str = "float64", classes: list[str] | None = None) -> Dataset:
    """Read ``path`` into a :class:`Dataset`.

    Parameters
    ----------
    path : the CSV file; first line is the header.
    target : one or more target column names (list, or a comma-separated string).
    features : feature column names; default every column that is not a target.
    loss : the spec's loss; ``bce``/``cce`` read the target as class labels.
    dtype : float dtype of the arrays.
    classes : the class labels in a fixed order (a test file or new rows read with the
        training set's classes); a label outside them is an error.  Default: the labels found,
        sorted.

    Returns
    -------
    Dataset with X of shape (n_rows, n_features) and Y of shape (n_rows, n_outputs).
    """
    targets = split_names(target)
    if not targets:
        raise UserError("name the target column(s) with --target, e.g. --target salary")
    try:
        return _load_csv(Path(path), targets, features, loss, dtype, classes)
    except csv.Error as exc:  # e.g. a cell past the csv module's 131072-character limit
        raise UserError(f"{path}: cannot read it as a CSV table: {exc}") from None


def load_features(path: str | Path, features: list[str], dtype: str = "float64",
                  origin: str = "--features") -> Dataset:
    """Only the named feature columns of ``path`` (new rows to predict: no target needed, other
    columns ignored), with the same checks and one-line errors as :func:`load_csv`; ``origin``
    says where the names came from when one is missing (e.g. "the model file")."""
    if not features:
        raise UserError("no feature columns to read")
    try:
        return _load_csv(Path(path), [], features, "se", dtype, None, origin=origin)
    except csv.Error as exc:
        raise UserError(f"{path}: cannot read it as a CSV table: {exc}") from None


def read_header(path: str | Path) -> list[str]:
    """The column names on line 1 of ``path`` (checked as :func:`load_csv` checks them)."""
    return _header(Path(path), str(path))


def _load_csv(path: Path, targets: list[str], features, loss: str, dtype: str, classes=None,
              origin: str = "--features") -> Dataset:
    name = str(path)
    header = _header(path, name)
    columns = {c: i for i, c in enumerate(header)}
    feats = resolve_columns(name, header, targets, features, origin)

    labels = is_classifier(loss) and len(targets) == 1
    numeric = feats + ([] if labels else targets)
    n_data = _check_shape(path, header, [columns[c] for c in numeric])
    if n_data == 0:
        raise UserError(f"{name} has a header row but no data rows")

    block = _loadtxt(path, header, [columns[c] for c in numeric], dtype,
                     targets={columns[c] for c in targets})
    X, Y = _split_columns(block, len(feats))
    del block
    ds = Dataset(X=X, Y=Y, features=feats, targets=targets, source=name)
    if labels:
        _read_labels(ds, path, header, columns[targets[0]], loss, dtype, classes)
    elif is_classifier(loss):  # numeric targets: inside the loss's domain (0/1, one-hot rows)
        one_hot = LOSSES[loss].one_hot
        if not one_hot and not np.isin(ds.Y, (0.0, 1.0)).all():
            raise UserError(f"{name}: {loss} needs targets 0 or 1 in {', '.join(targets)}; "
                            "give one label column instead, or use --loss se")
        if one_hot:
            if not (np.isin(ds.Y, (0.0, 1.0)).all() and (ds.Y.sum(axis=1) == 1).all()):
                raise UserError(f"{name}: {loss} with several target columns needs them one-hot "
                                "(one 1 per row); or give one label column as --target")
            ds.classes = list(targets)
            if classes is not None and list(classes) != ds.classes:
                raise UserError(f"{name}: the one-hot target columns {', '.join(targets)} are not "
                                f"the training classes {', '.join(classes)}")
    return ds


def resolve_columns(name: str, header: list[str], targets: list[str], features,
                    origin: str = "--features") -> list[str]:
    """The feature columns of a table with this header: the named ones (each present, none a
    target), else every column that is not a target; a missing target is an error too (the
    in-memory loader and the streaming reader of train/stream.py share these checks)."""
    columns = set(header)
    for t in targets:
        if t not in columns:
            hint = ""
            if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
                hint = " (only comma-separated files are read; this header has no commas)"
            raise UserError(f"{name}: no target column {t!r}; the columns are "
                            f"{', '.join(header)}{hint}")
    wanted = split_names(features)
    if wanted:
        for f in wanted:
            if f not in columns:
                raise UserError(f"{name}: no feature column {f!r} (from {origin}); "
                                f"the columns are {', '.join(header)}")
            if f in targets:
                raise UserError(f"{name}: column {f!r} is both a feature and a target; "
                                "drop it from --features or --target")
        feats = wanted
    else:
        target_set = set(targets)
        feats = [c for c in header if c not in target_set]
    if not feats:
        raise UserError(f"{name}: no feature columns left besides the target(s) "
                        f"{', '.join(targets)}; a network needs at least one input")
    if len(set(feats)) != len(feats) or len(set(targets)) != len(targets):
        raise UserError(f"{name}: a column is named twice in --features or --target")
    return feats


# --------------------------------------------------------------------------- reading


def _first_line(path: Path) -> bytes:
    """The header line's bytes; a device, a pipe, a folder, a missing or empty file is refused."""
    if path.exists() and not path.is_file() and not path.is_dir():  # /dev/zero, a pipe
        raise UserError(f"data file {path} is not a regular file (a device or a pipe); the table "
                        "is read more than once: save it to a file first")
    try:
        with open(path, "rb") as fh:
            first = fh.readline(MAX_HEADER_BYTES + 1)
            if not first.strip():
                first = first if _any_content(fh) else b""
    except FileNotFoundError:
        raise UserError(f"data file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"data file {path} is a directory") from None
    except OSError as exc:
        raise UserError(f"cannot read data file {path}: {exc.strerror}") from None
    if not first:
        raise UserError(f"{path} is empty; expected a header row (column names) and data rows")
    if len(first) > MAX_HEADER_BYTES:
        raise UserError(f"{path} line 1: the header is over {MAX_HEADER_BYTES >> 20} MB with no line "
                        "break; is this a CSV file with a header row of column names?")
    return first.rstrip(b"\n")


def _any_content(fh) -> bool:
    """Whether the rest of the file holds anything but whitespace (read a block at a time)."""
    while block := fh.read(CHUNK):
        if block.strip():
            return True
    return False


def _header(path: Path, name: str) -> list[str]:
    """The column names of line 1: non-empty, distinct (one pass, not one per name), not numbers."""
    first = _first_line(path)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name} line 1: the header is not UTF-8 text") from None
    if text.count('"') % 2:
        raise UserError(f"{name} line 1: a quoted column name runs onto the next line (a line break "
                        "inside quotes, or an unclosed quote); put the whole header on line 1")
    if not text.strip():
        raise UserError(f"{name} line 1: the first line is blank; the first line must be a header "
                        "of column names")
    header = [c.strip() for c in next(csv.reader([text]))]
    if any(not c for c in header):
        raise UserError(f"{name} line 1: the header has an empty column name; "
                        "name every column")
    dup = sorted(c for c, n in Counter(header).items() if n > 1)
    if dup:
        shown = ", ".join(dup[:10]) + (f" and {len(dup) - 10} more" if len(dup) > 10 else "")
        raise UserError(f"{name} line 1: column name(s) {shown} appear twice")
    try:
        float(header[0])
    except ValueError:
        return header
    raise UserError(f"{name} line 1: the first line looks like numbers ({text[:80]!r}); "
                    "the first line must be a header of column names")


def _line_spans(raw: bytes):
    """Start and end byte offsets of every line (line 1 is the header)."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    # a trailing newline leaves one empty last "line": drop it
    if len(buf) and buf[-1] == 10:
        starts, ends = starts[:-1], ends[:-1]
    return buf, starts, ends


def _blocks(path: Path):
    """The file as blocks of whole lines (about :data:`CHUNK` bytes each), never all at once."""
    with open(path, "rb") as fh:
        carry = b""
        while block := fh.read(CHUNK):
            data = carry + block
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                yield data[:cut]
        if carry:
            yield carry


def _blank(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines with no content (empty, or only a carriage return)."""
    length = ends - starts
    cr_only = (length == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13)
    return (length == 0) | cr_only


def _check_shape(path: Path, header: list[str], used: list[int]) -> int:
    """Every non-blank line has as many cells as the header (vectorised, block by block).

    Returns the number of data rows (non-blank lines after the header)."""
    lines_before = 0  # physical lines in earlier blocks
    rows_before = 0  # non-blank lines after the header in earlier blocks
    quoted = False
    for block in _blocks(path):
        buf, starts, ends = _line_spans(block)
        filled = ~_blank(buf, starts, ends)
        if lines_before == 0:
            filled[0] = False  # the header
        quoted = quoted or b'"' in block
        if not quoted:  # quoted cells may contain commas: counted the exact way below
            commas = np.flatnonzero(buf == 44)
            cells = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
            bad = (cells != len(header)) & filled
            if bad.any():
                line = int(np.argmax(bad))  # 0-based within the block
                data_row = rows_before + int(filled[:line + 1].sum())
                raise UserError(ragged_row(row_place(path, lines_before + line + 1, data_row),
                                           cells[line], len(header)))
        lines_before += len(starts)
        rows_before += int(filled.sum())
    if quoted:
        _diagnose(path, header, used, check_values=False)
    return rows_before


def _split_columns(block: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) = (the first ``n_features`` columns, the rest), both C-contiguous, without holding
    two copies of the table: Y is copied out, then X is packed into the front of the block's
    own buffer (row by row, in pieces) and the buffer is shrunk to it."""
    n, m = block.shape
    Y = np.ascontiguousarray(block[:, n_features:])
    if n_features == m:
        return block, Y
    if not (block.flags.owndata and block.flags.c_contiguous):
        return np.ascontiguousarray(block[:, :n_features]), Y
    flat = block.reshape(-1)
    rows = max(1, (1 << 20) // m)
    for r0 in range(0, n, rows):  # destination [r0*f, r1*f) never passes source row r1's start
        r1 = min(n, r0 + rows)
        flat[r0 * n_features:r1 * n_features] = block[r0:r1, :n_features].reshape(-1)
    del flat
    block.resize((n, n_features), refcheck=False)
    return block, Y


def _loadtxt(path: Path, header, used: list[int], dtype: str, targets=frozenset()) -> np.ndarray:
    """Parse the used columns as floats; on any problem name the first bad cell."""
    try:
        block = np.loadtxt(path, delimiter=",", skiprows=1, usecols=used, dtype=dtype, ndmin=2,
                           encoding="utf-8", comments=None, quotechar='"')
    except (ValueError, UnicodeDecodeError) as exc:
        _diagnose(path, header, used, targets=targets)
        raise UserError(f"{path}: cannot read the numbers: {exc}") from None
    if not np.isfinite(block).all():
        _diagnose(path, header, used, targets=targets)
        raise UserError(f"{path}: some value is not a finite number")
    return block


def _diagnose(path: Path, header: list[str], used: list[int], check_values: bool = True,
              labels: bool = False, targets=frozenset()) -> None:
    """Walk the file with the csv module and raise on the first ragged row or bad cell
    (with ``labels``, the used cells are class labels: only an empty or "nan"-like one is bad)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        data_row = 0
        for row in reader:
            if not row or row == [""]:
                continue
            data_row += 1
            place = row_place(path, reader.line_num, data_row)
            if len(row) != len(header):
                raise UserError(ragged_row(place, len(row), len(header)))
            if not check_values:
                continue
            for i in used:
                problem = (label_problem(place, header[i], row[i]) if labels else
                           number_problem(place, header[i], row[i],
                                          TARGET_FIX if i in targets else FEATURE_FIX))
                if problem:
                    raise UserError(problem)


def _read_labels(ds: Dataset, path: Path, header, col: int, loss: str, dtype: str,
                 known: list[str] | None = None) -> None:
    """Class labels in one column -> one-hot (cce) or 0/1 (bce), with ds.classes the label order
    (``known``: that order, given; a label outside it is an error naming its row).

    Every check and clean-up runs on the distinct labels (a handful), not on the million cells."""
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=[col], dtype=str, ndmin=1,
                     encoding="utf-8", comments=None, quotechar='"').reshape(-1)
    lexical, index = np.unique(raw, return_inverse=True)
    labels = [str(c).strip() for c in lexical]
    if any(label_problem("", "", label) for label in labels):
        _diagnose(path, header, [col], labels=True)  # names the first such cell, line and row
        raise UserError(f"{path}: column {header[col]!r} has an empty or missing label; "
                        "fill it in or drop the row")
    name = header[col]
    classes = list(known) if known is not None else sort_labels(sorted(set(labels)))
    one_hot = LOSSES[loss].one_hot  # one output per class; else one 0/1 output (two classes)
    if not one_hot and set(classes) <= set(BINARY_LABELS) and set(labels) <= set(BINARY_LABELS):
        classes = ["0", "1"]
        order = BINARY_LABELS
    else:
        order = {c: i for i, c in enumerate(classes)}
    for k, label in enumerate(labels):
        if label not in order:
            row = int(np.argmax(index.reshape(-1) == k)) + 1
            raise UserError(f"{path} data row {row}, column {name!r}: label {label!r} is not one of "
                            f"the training classes ({', '.join(classes)})")
    index = np.array([order[label] for label in labels])[index.reshape(-1)]
    if not one_hot:
        if len(classes) != 2:
            wide = next(n for n in classifiers() if LOSSES[n].one_hot)
            raise UserError(f"{path}: {loss} needs two classes in column {name!r}, found "
                            f"{len(classes)} ({', '.join(classes[:6])}); use --loss {wide}")
        ds.Y = index.reshape(-1, 1).astype(dtype)
        ds.targets = [name]
    else:
        ds.Y = np.eye(len(classes), dtype=dtype)[index]
        ds.targets = [f"{name}={c}" for c in classes]
    ds.classes = classes
    ds.label_column = name


def accuracy(loss: str, Y: np.ndarray, P: np.ndarray) -> float | None:
    """Fraction of rows classified right (cce: arg max; bce: every output ŷ ≥ ½ on the side of
    its 0/1 target), or None for a loss training does not treat as a classifier."""
    if not is_classifier(loss):
        return None
    if LOSSES[loss].one_hot:
        return float((P.argmax(axis=1) == Y.argmax(axis=1)).mean())
    return float(((P >= 0.5) == (Y >= 0.5)).all(axis=1).mean())


def from_arrays(X, Y, features=None, targets=None, source="arrays") -> Dataset:
    """A Dataset from in-memory arrays (examples, synthetic data)."""
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    features = features or [f"x{i + 1}" for i in range(X.shape[1])]
    targets = targets or [f"y{j + 1}" for j in range(Y.shape[1])]
    return Dataset(X=X, Y=Y, features=list(features), targets=list(targets), source=source)
