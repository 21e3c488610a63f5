"""Training on a table too big for memory: ``backprop train --stream`` (issue 17).

The CSV (or Parquet) file is read in blocks with PyArrow's streaming readers
(:func:`pyarrow.csv.open_csv` with :data:`CSV_BLOCK`-byte blocks,
:meth:`pyarrow.parquet.ParquetFile.iter_batches`), never whole, so memory stays flat whatever
the file's size: one block, a shuffle buffer of at most ``shuffle_buffer`` rows and one batch.

Why PyArrow and not the project's own block reader (train/data.py, ``np.loadtxt``): on a 202 MB
CSV (2 M rows × 5 float columns, 17 digits each) PyArrow's streaming reader turns the file into
NumPy columns in 0.68 s with 1 MB blocks (0.51 s with 16 MB, which cost memory: see
:data:`CSV_BLOCK`) against 2.18 s for ``load_csv``, medians of 3 on a shared 2-core machine:
3-4× faster, and it streams by design.
pandas (the issue's other candidate) is not a dependency; its C parser is no faster than Arrow's.

Passes over the file: one scan (every cell checked, rows counted, the standardisation's mean and
std merged block by block with Chan et al.'s pairwise update, class labels collected), then one
per epoch, then one for the loss (and a classifier's confusion matrix) after training.  The loss
before training rides on the scan when nothing it needs comes from the scan (no --standardise,
numeric targets), else it takes a pass of its own.

Mini-batches: with ``shuffle_buffer`` 0 the rows go in file order, cut into batches of B, which
are exactly the in-memory trainer's ``train(..., batch_size=B, shuffle=False)`` batches; each
step is the generated trainer's own (``sgd_step`` for plain SGD, else ``loss_and_gradients`` +
``optimizer_step``), so the weights equal in-memory training bit for bit.  With a buffer of S
rows (:func:`shuffled`) each row leaves the buffer at a random point within about S rows of where
it entered: a bounded, seeded shuffle (a full permutation would need every row in memory).
Batch GD adds the trainer's ``grad_sum`` over the blocks: one update per epoch on all rows.

The per-epoch loss: an epoch's whole-data loss would cost one more pass over the file per epoch,
so epochs 1..E−1 report the running loss (each batch's loss before its update, averaged over the
rows, the trainer's own ``train`` history); the loss before training and after the last epoch
are over every row.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop.core.csv_contract import BINARY_LABELS, label_problem, number_problem, sort_labels
from backprop.core.errors import UserError
from backprop.derive.losses import LOSSES

from .data import FEATURE_FIX, TARGET_FIX, _diagnose, _header, resolve_columns, split_names
from .metrics import class_indices, classifiers, confusion_matrix, is_classifier, n_classes
from .runner import History, batch_size_for, traced_weights, weight_label

#: Bytes of CSV text per block.  Arrow's streaming reader reads several blocks ahead, so the
#: block size sets the memory: measured on a 304 MB file of 4 columns (one pass to NumPy, peak
#: RSS with Python, NumPy and PyArrow's ~64 MB): 1 MB blocks 1.2 s and 148 MB, 4 MB 2.3 s and
#: 269 MB, 16 MB 2.5 s and 433 MB.  1 MB is as fast as any and keeps the reader near 100 MB.
CSV_BLOCK = 1 << 20

#: Rows per Parquet batch (about as many as a 16 MB CSV block of a few columns holds).
PARQUET_ROWS = 1 << 18

#: Rows the shuffle buffer holds by default (``--shuffle-buffer``): 65536 rows of 10 float64
#: columns are 5 MB, and each row is mixed with about this many neighbours.
SHUFFLE_BUFFER = 65536

#: File suffixes read as Parquet; anything else is read as CSV.
PARQUET_SUFFIXES = (".parquet", ".pq")

INSTALL = "pip install -e '.[stream]'"


def pyarrow_modules():
    """(pyarrow, pyarrow.csv, pyarrow.compute), imported on first use: pyarrow is the optional
    ``stream`` extra; without it the error names the extra to install from a clone."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
    except ImportError:
        raise UserError(f"--stream needs pyarrow, which is not installed: {INSTALL}") from None
    return pyarrow, pyarrow.csv, pyarrow.compute


# --------------------------------------------------------------------------- the table


@dataclass
class Table:
    """A training file read block by block: which columns are features and targets, how the
    targets are read (numbers, or one column of class labels) and, once known, the classes and
    the standardisation applied to every block."""

    path: Path
    header: list[str]
    features: list[str]
    targets: list[str]  # the file's target column(s)
    loss: str
    dtype: str = "float64"
    labels: bool = False  # one column of class labels (bce, cce)
    classes: list[str] | None = None
    order: dict | None = None  # label -> class index (labels only)
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def parquet(self) -> bool:
        return self.path.suffix.lower() in PARQUET_SUFFIXES

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def numeric(self) -> list[str]:
        """Columns read as numbers: the features, then numeric targets."""
        return self.features + ([] if self.labels else self.targets)

    @property
    def output_names(self) -> list[str]:
        """The network's output columns: the numeric targets, or one per class (cce) / one (bce)."""
        if not self.labels:
            return list(self.targets)
        if LOSSES[self.loss].one_hot:
            return [f"{self.targets[0]}={c}" for c in self.classes]
        return [self.targets[0]]

    def raw(self):
        """(X, T, rows_before, bytes_read) per block: X the numeric columns as float64 (checked:
        every cell a finite number), T the label column (a pyarrow string array) or None."""
        yield from (self._parquet_blocks() if self.parquet else self._csv_blocks())

    def _csv_blocks(self):
        pa, pcsv, _ = pyarrow_modules()
        used = self.numeric + ([self.targets[0]] if self.labels else [])
        types = {c: pa.float64() for c in self.numeric}
        if self.labels:
            types[self.targets[0]] = pa.string()
        read = pcsv.ReadOptions(block_size=CSV_BLOCK, skip_rows=1, column_names=self.header)
        convert = pcsv.ConvertOptions(column_types=types, include_columns=used)
        rows = 0
        with pa.OSFile(str(self.path)) as fh:
            try:
                reader = pcsv.open_csv(fh, read_options=read, convert_options=convert)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    X = self._numbers(batch, rows)
                    T = batch.column(len(self.numeric)) if self.labels else None
                    yield X, T, rows, fh.tell()
                    rows += batch.num_rows
            except (pa.ArrowMemoryError, MemoryError):
                raise UserError(f"{self.name}: out of memory reading a {CSV_BLOCK >> 20} MB block; "
                                "free some memory (the block, the shuffle buffer and a batch must fit)"
                                ) from None
            except pa.ArrowException as exc:  # text in a number column, a ragged row, bad UTF-8
                self._diagnose(exc)

    def _numbers(self, batch, rows_before: int) -> np.ndarray:
        """The block's numeric columns as one float64 array; an empty, NaN or infinite cell is
        the loader's one-line error (found by the row-by-row walk of train/data.py)."""
        n, m = batch.num_rows, len(self.numeric)
        X = np.empty((n, m), dtype=np.float64)
        for j in range(m):
            column = batch.column(j)
            if column.null_count:  # an empty cell, or NaN/NA/null (Arrow's null spellings)
                self._diagnose()
            X[:, j] = column.to_numpy(zero_copy_only=False)
        if not np.isfinite(X).all():
            self._diagnose()
        return X

    def _diagnose(self, exc=None) -> None:
        """Raise the in-memory loader's error for the first bad row or cell of a CSV file (it
        walks the file from the top with the csv module: only ever run once something is wrong)."""
        index = {c: i for i, c in enumerate(self.header)}
        targets = {index[c] for c in self.targets}
        _diagnose(self.path, self.header, [index[c] for c in self.numeric], targets=targets)
        if self.labels:
            _diagnose(self.path, self.header, [index[self.targets[0]]], labels=True)
        if exc is not None:  # the csv module finds nothing wrong: Arrow's own words, one line
            raise UserError(f"{self.name}: cannot read the table: {str(exc).splitlines()[0]}")
        raise UserError(f"{self.name}: some value is not a finite number")

    def _parquet_blocks(self):
        pa, _, _ = pyarrow_modules()
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.path)
        used = self.numeric + ([self.targets[0]] if self.labels else [])
        schema = pf.schema_arrow
        for c in self.numeric:
            kind = schema.field(c).type
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                fix = TARGET_FIX if c in self.targets else FEATURE_FIX
                raise UserError(f"{self.name}: column {c!r} holds {kind}, not numbers; {fix}")
        total, rows, size = max(pf.metadata.num_rows, 1), 0, self.size
        for batch in pf.iter_batches(batch_size=PARQUET_ROWS, columns=used):
            n, m = batch.num_rows, len(self.numeric)
            X = np.empty((n, m), dtype=np.float64)
            for j, c in enumerate(self.numeric):
                column = batch.column(j)
                values = column.to_numpy(zero_copy_only=False).astype(np.float64)
                bad = ~np.isfinite(values) | (column.is_null().to_numpy(zero_copy_only=False)
                                              if column.null_count else False)
                if bad.any():
                    i = int(np.argmax(bad))
                    cell = "" if column[i].as_py() is None else str(column[i].as_py())
                    fix = TARGET_FIX if c in self.targets else FEATURE_FIX
                    raise UserError(number_problem(f"{self.name} data row {rows + i + 1}", c, cell, fix))
                X[:, j] = values
            T = batch.column(m).cast(pa.string()) if self.labels else None
            yield X, T, rows, int(size * (rows + n) / total)
            rows += n

    def blocks(self):
        """(X, Y, bytes_read) per block, as the network takes them: features standardised (when
        the table has a mean and std), targets numeric, one-hot (cce) or 0/1 (bce), in dtype."""
        f = len(self.features)
        for X, T, rows, done in self.raw():
            Y = self._encode(T, rows) if self.labels else X[:, f:]
            X = X[:, :f]
            if self.mean is not None:
                X = (X - self.mean) / self.std  # the in-memory loader's X -= mean; X /= std
            yield (np.ascontiguousarray(X, dtype=self.dtype),
                   np.ascontiguousarray(Y, dtype=self.dtype), done)

    def _encode(self, T, rows_before: int) -> np.ndarray:
        """A block's class labels as one-hot rows (cce) or one 0/1 column (bce)."""
        pa, _, pc = pyarrow_modules()
        keys = list(self.order)
        index = pc.index_in(pc.utf8_trim_whitespace(T), value_set=pa.array(keys, pa.string()))
        if index.null_count:
            i = int(np.argmax(index.is_null().to_numpy(zero_copy_only=False)))
            label = (T[i].as_py() or "").strip()  # a Parquet null: the empty label
            problem = label_problem(f"{self.name} data row {rows_before + i + 1}", self.targets[0], label)
            if problem:
                raise UserError(problem)
            raise UserError(f"{self.name} data row {rows_before + i + 1}, column {self.targets[0]!r}: "
                            f"label {label!r} is not one of the training classes "
                            f"({', '.join(self.classes)})")
        cls = np.array([self.order[k] for k in keys])[index.to_numpy(zero_copy_only=False)]
        if LOSSES[self.loss].one_hot:
            return np.eye(len(self.classes))[cls]
        return cls.reshape(-1, 1).astype(np.float64)


def open_table(path, target, features=None, loss: str = "se", dtype: str = "float64",
               classes: list[str] | None = None) -> Table:
    """A :class:`Table` over ``path`` (CSV, or Parquet by its suffix): the header read and the
    columns checked in the in-memory loader's words; nothing else read yet."""
    pyarrow_modules()
    targets = split_names(target)
    if not targets:
        raise UserError("name the target column(s) with --target, e.g. --target salary")
    path = Path(path)
    name = str(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        header = _parquet_header(path)
    else:
        header = _header(path, name)
    feats = resolve_columns(name, header, targets, features)
    labels = is_classifier(loss) and len(targets) == 1
    return Table(path=path, header=header, features=feats, targets=targets, loss=loss,
                 dtype=dtype, labels=labels, classes=list(classes) if classes else None)


def _parquet_header(path: Path) -> list[str]:
    import pyarrow.parquet as pq
    import pyarrow as pa

    if not path.is_file():
        raise UserError(f"data file {path} does not exist" if not path.exists()
                        else f"data file {path} is not a regular file")
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: cannot read it as a Parquet file: {exc}") from None


# --------------------------------------------------------------------------- the scan


@dataclass
class Scan:
    """What one pass over the file found: rows, the raw features' mean and std, the classes,
    and (when it could be computed on the way) the loss of the given parameters."""

    n_rows: int
    mean: np.ndarray
    std: np.ndarray
    loss: float | None = None


class Moments:
    """Column means and sums of squared deviations (M2) merged block by block (Chan, Golub and
    LeVeque's pairwise update), as stable as NumPy's mean and std of all rows at once."""

    def __init__(self, m: int):
        self.n, self.mean, self.m2 = 0, np.zeros(m), np.zeros(m)

    def add(self, X: np.ndarray) -> None:
        k = X.shape[0]
        if k == 0:
            return
        mean = X.mean(axis=0)
        m2 = ((X - mean) ** 2).sum(axis=0)
        n = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * (k / n)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.n * k / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


def scan(table: Table, trainer=None, params: dict | None = None) -> Scan:
    """One pass over ``table``: every cell checked, rows counted, the features' mean and std,
    the class labels (fixing ``table.classes``/``order``); with ``trainer`` and ``params`` and
    targets already readable (numbers, or known classes) without scaling, the loss on the way."""
    f = len(table.features)
    moments = Moments(f)
    found: set[str] = set()
    one_hot_targets = (not table.labels and is_classifier(table.loss))
    loss_sum = 0.0
    with_loss = trainer is not None and table.mean is None and (not table.labels or table.order)
    for X, T, rows, _ in table.raw():
        moments.add(X[:, :f])
        if table.labels:
            found.update(_distinct(T))
            if with_loss:
                Y = table._encode(T, rows)
        else:
            Y = X[:, f:]
            if one_hot_targets:
                _check_indicators(table, Y)
        if with_loss and len(X):
            Xd, Yd = X[:, :f].astype(table.dtype), np.ascontiguousarray(Y, dtype=table.dtype)
            loss_sum += float(trainer.loss(params, np.ascontiguousarray(Xd), Yd)) * len(X)
    if moments.n == 0:
        raise UserError(f"{table.name} has a header row but no data rows")
    if table.labels:
        fix_classes(table, found)
    elif is_classifier(table.loss) and LOSSES[table.loss].one_hot:
        if table.classes is not None and table.classes != table.targets:
            raise UserError(f"{table.name}: the one-hot target columns {', '.join(table.targets)} "
                            f"are not the training classes {', '.join(table.classes)}")
        table.classes = list(table.targets)
    std = moments.std
    return Scan(moments.n, moments.mean, np.where(std > 0, std, 1.0),
                loss_sum / moments.n if with_loss else None)


def _distinct(T) -> set[str]:
    """A block's distinct labels, stripped; a missing one (Parquet's null) as the empty label."""
    _, _, pc = pyarrow_modules()
    return set(pc.unique(pc.utf8_trim_whitespace(pc.fill_null(T, ""))).to_pylist())


def _check_indicators(table: Table, Y: np.ndarray) -> None:
    """Numeric classifier targets: 0/1 (bce), one 1 per row (cce), as the loader demands."""
    ok01 = np.isin(Y, (0.0, 1.0)).all()
    if not LOSSES[table.loss].one_hot and not ok01:
        raise UserError(f"{table.name}: {table.loss} needs targets 0 or 1 in "
                        f"{', '.join(table.targets)}; give one label column instead, or use --loss se")
    if LOSSES[table.loss].one_hot and not (ok01 and (Y.sum(axis=1) == 1).all()):
        raise UserError(f"{table.name}: {table.loss} with several target columns needs them one-hot "
                        "(one 1 per row); or give one label column as --target")


def fix_classes(table: Table, labels: set[str]) -> None:
    """The class order from the labels found (or the known classes), as train/data.py orders
    them: numbers numerically, text alphabetically, bce's 0/1 spellings as 0 and 1."""
    if any(label_problem("", "", label) for label in labels):
        if not table.parquet:
            table._diagnose()  # the loader's words, with the line
        bad = next(label for label in sorted(labels) if label_problem("", "", label))
        raise UserError(label_problem(table.name, table.targets[0], bad))  # Parquet has no lines
    name, loss = table.targets[0], table.loss
    classes = list(table.classes) if table.classes is not None else sort_labels(sorted(labels))
    one_hot = LOSSES[loss].one_hot
    if not one_hot and set(classes) <= set(BINARY_LABELS) and labels <= set(BINARY_LABELS):
        classes, order = ["0", "1"], dict(BINARY_LABELS)
    else:
        order = {c: i for i, c in enumerate(classes)}
    if not one_hot and len(classes) != 2:
        wide = next(n for n in classifiers() if LOSSES[n].one_hot)
        raise UserError(f"{table.name}: {loss} needs two classes in column {name!r}, found "
                        f"{len(classes)} ({', '.join(classes[:6])}); use --loss {wide}")
    table.classes, table.order = classes, order
    # a label outside known classes is named with its row by the first block that holds it


# --------------------------------------------------------------------------- batches


def shuffled(blocks, capacity: int, rng):
    """The rows of ``blocks`` ((X, Y, done) triples) in a bounded random order: the buffer fills
    to ``capacity`` rows, is permuted, and its first half goes out while the second half waits
    for the next rows; at the end the rest is permuted and goes out.  Memory: the buffer and one
    block.  Yields (X, Y, done) chunks of rows."""
    X_buf = Y_buf = None
    done = 0
    for X, Y, done in blocks:
        X_buf = X if X_buf is None else np.concatenate((X_buf, X))
        Y_buf = Y if Y_buf is None else np.concatenate((Y_buf, Y))
        while len(X_buf) >= capacity:
            window = rng.permutation(capacity)
            head, keep = window[:(capacity + 1) // 2], window[(capacity + 1) // 2:]
            out = (X_buf[head], Y_buf[head])
            rest = np.arange(capacity, len(X_buf))
            X_buf = np.concatenate((X_buf[keep], X_buf[rest]))
            Y_buf = np.concatenate((Y_buf[keep], Y_buf[rest]))
            yield out[0], out[1], done
    if X_buf is not None and len(X_buf):
        order = rng.permutation(len(X_buf))
        yield X_buf[order], Y_buf[order], done


def batches(chunks, size: int):
    """Consecutive batches of ``size`` rows (the last may be smaller) from a stream of (X, Y,
    done) chunks, C-contiguous, as in-memory training slices its rows."""
    X_rest = Y_rest = None
    for X, Y, done in chunks:
        if X_rest is not None:
            X, Y = np.concatenate((X_rest, X)), np.concatenate((Y_rest, Y))
        n = len(X)
        full = n - n % size
        for start in range(0, full, size):
            yield X[start:start + size], Y[start:start + size], done
        X_rest, Y_rest = (X[full:], Y[full:]) if full < n else (None, None)
    if X_rest is not None:
        yield np.ascontiguousarray(X_rest), np.ascontiguousarray(Y_rest), done


# --------------------------------------------------------------------------- training


def evaluate(trainer, params: dict, table: Table, classes_count: int | None = None):
    """(mean loss over every row, confusion matrix or None, rows) in one pass."""
    loss_sum, n, cm = 0.0, 0, None
    classifier = is_classifier(table.loss)
    for X, Y, _ in table.blocks():
        if not len(X):
            continue
        loss_sum += float(trainer.loss(params, X, Y)) * len(X)
        n += len(X)
        if classifier:
            k = classes_count or n_classes(table.loss, Y.shape[1])
            part = confusion_matrix(class_indices(table.loss, Y),
                                    class_indices(table.loss, trainer.forward(params, X)), k)
            cm = part if cm is None else cm + part
    if n == 0:
        raise UserError(f"{table.name} has a header row but no data rows")
    return loss_sum / n, cm, n


def fit(trainer, params: dict, table: Table, *, epochs: int, lr: float, gd: str = "minibatch",
        batch_size: int | None = None, n_rows: int, seed: int | None = None,
        shuffle_buffer: int = SHUFFLE_BUFFER, optimizer: dict, state: dict,
        initial_loss: float | None = None, progress=None, track_weights: bool = False,
        classes_count: int | None = None, progress_unit: float = 1e6) -> History:
    """Train ``params`` in place over ``table``'s blocks, ``epochs`` passes, each step the
    generated trainer's own; returns a :class:`~backprop.train.runner.History` whose losses are
    the whole-data loss before training and after the last epoch, the running loss between.

    ``optimizer``: complete settings (runner.optimizer_for); ``state``: its state, updated in
    place (a shuffled run keeps its generator's state under "shuffle", as the trainer does).
    A classifier's confusion matrix over every row after the last epoch (the same pass as its
    loss) is left in ``hist.confusion``.  ``progress`` counts bytes read in ``progress_unit``s
    (1e6: its total is the megabytes of all epochs)."""
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserError(f"--lr must be a positive number, got {lr}")
    if shuffle_buffer < 0:
        raise UserError(f"--shuffle-buffer must be 0 (file order) or a number of rows, got {shuffle_buffer}")
    size = batch_size_for(gd, batch_size, n_rows)
    settings = trainer.optimizer_settings(optimizer, lr)
    fused = settings["name"] == "sgd" and not settings["weight_decay"]
    batch_norm = hasattr(trainer, "_update_running")
    if size is None and not hasattr(trainer, "grad_sum"):
        raise UserError("--stream with --gd batch adds the trainer's grad_sum over the blocks, which a "
                        "batch-normalised network has not (its batch statistics couple the rows); "
                        "use --gd minibatch")
    if shuffle_buffer and size is not None and shuffle_buffer < size:
        raise UserError(f"--shuffle-buffer {shuffle_buffer} is smaller than a batch ({size} rows); "
                        "give at least the batch size, or 0 for file order")
    shuffling = bool(shuffle_buffer) and size is not None and size < n_rows
    rng = np.random.default_rng(seed) if shuffling else None
    if shuffling and state.get("shuffle") is not None:  # a resumed run goes on with its order
        rng.bit_generator.state = state["shuffle"]
    hist = History(gd=gd, batch_size=size, n_rows=n_rows, optimizer=dict(optimizer),
                   optimizer_state=state)
    picks = traced_weights(params) if track_weights else []
    hist.weight_names = [weight_label(*p) for p in picks]

    def observe(value):
        hist.losses.append(value)
        if track_weights:
            hist.weights.append([float(params[k][i, j]) for k, i, j in picks])

    hist.confusion = None
    hist.shuffle_buffer = shuffle_buffer if shuffling else 0  # the buffer used: 0 in file order
    observe(initial_loss if initial_loss is not None else evaluate(trainer, params, table)[0])
    if not math.isfinite(hist.losses[0]):
        raise UserError("the loss is not finite before training starts; scale the inputs "
                        "(--standardise) or check the data")
    mb = max(table.size, 1) / progress_unit  # the file in progress units
    if progress is not None:
        progress.update(0, hist.losses[0])
    spent = 0.0
    try:
        for epoch in range(1, epochs + 1):
            mark = time.perf_counter()
            total, seen = 0.0, 0
            with np.errstate(over="ignore", invalid="ignore"):
                if size is None:
                    total = _batch_epoch(trainer, params, table, settings, state, progress,
                                         (epoch - 1) * mb, progress_unit)
                else:
                    chunks = shuffled(table.blocks(), shuffle_buffer, rng) if shuffling else table.blocks()
                    for Xb, Yb, done in batches(chunks, size):
                        if fused:
                            loss_before = trainer.sgd_step(params, Xb, Yb, settings["lr"])
                            state["t"] += 1
                        else:
                            if batch_norm:
                                loss_before, grads = trainer.loss_and_gradients(params, Xb, Yb,
                                                                                update_running=True)
                            else:
                                loss_before, grads = trainer.loss_and_gradients(params, Xb, Yb)
                            trainer.optimizer_step(params, grads, state, settings)
                        total += loss_before * Xb.shape[0]
                        seen += Xb.shape[0]
                        if progress is not None:
                            progress.update(int((epoch - 1) * mb + done / progress_unit), total / seen)
                    total /= n_rows
            if shuffling:
                state["shuffle"] = rng.bit_generator.state
            if progress is not None:
                progress.update(round(epoch * mb), total)
            spent += time.perf_counter() - mark
            hist.seconds.append(spent)
            hist.running.append(float(total))
            if epoch == epochs:  # the last epoch's loss over every row (and the confusion)
                total, hist.confusion, _ = evaluate(trainer, params, table, classes_count)
            observe(float(total))
            if not math.isfinite(hist.losses[-1]):
                hist.diverged_at = epoch
                raise UserError(f"the loss diverged (became {hist.losses[-1]}) in epoch {epoch} with "
                                f"--lr {lr:g}; lower --lr, or scale the inputs with --standardise")
    finally:
        if progress is not None:
            progress.close()
    return hist


def _batch_epoch(trainer, params, table, settings, state, progress, offset, unit) -> float:
    """One batch-GD epoch: grad_sum added over the blocks, divided by the rows, one update.
    Returns the loss before the update (over every row)."""
    loss_sum, sums, n = 0.0, None, 0
    for X, Y, done in table.blocks():
        if not len(X):
            continue
        part_loss, part, rows = trainer.grad_sum(params, X, Y)
        loss_sum += part_loss
        n += rows
        sums = part if sums is None else {k: sums[k] + v for k, v in part.items()}
        if progress is not None:
            progress.update(int(offset + done / unit), loss_sum / n)
    trainer.optimizer_step(params, {k: v / n for k, v in sums.items()}, state, settings)
    return loss_sum / n


def stream_metrics(table: Table, loss_value: float, cm, n_rows: int) -> dict:
    """metrics.evaluate's dictionary from what a streaming pass measured: the loss over every
    row and, for a classifier, the confusion matrix added block by block."""
    from .metrics import accuracy, precision_recall_f1

    classifier = is_classifier(table.loss)
    out = {"rows": int(n_rows), "loss": float(loss_value)}
    if not classifier:
        return out
    names = list(table.classes) if table.classes and len(table.classes) == len(cm) else \
        [str(i) for i in range(len(cm))]
    per = precision_recall_f1(cm)
    out.update({
        "accuracy": accuracy(cm), "classes": names, "confusion": cm.tolist(),
        "per_class": [{"class": name, "precision": float(per["precision"][i]),
                       "recall": float(per["recall"][i]), "f1": float(per["f1"][i]),
                       "support": int(per["support"][i])} for i, name in enumerate(names)],
    })
    return out

