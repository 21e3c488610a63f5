"""Data-parallel synchronous training on Dask (``backprop train --engine dask``).

Every update is the one single-process training makes: each worker holds its partitions of
the data (read by the worker itself, never through the client) and, per step, computes the
generated trainer's ``grad_sum`` (loss and ∂L/∂P summed over its rows of the batch); the
client adds the sums, divides by the batch's row count and applies the trainer's own update
(P ← P − ηg for plain sgd, else ``optimizer_step``).  Mini-batches follow the single-process
order: the client draws each epoch's permutation with the trainer's generator
(``np.random.default_rng(seed)``, resumable from the optimiser state's "shuffle") and sends
each worker the local indices of its rows in that order, never the rows.

One :class:`Shard` (a Dask actor: calls go straight to its worker, not through the
scheduler) per worker holds the rows and the trainer, imported there from its source text.
Per step the parameters go out once to each worker taking part and one sum comes back from
each (a gather; the client adds them in shard order, so runs are reproducible).  A worker
lost mid-run is one :class:`UserError`; the caller's per-epoch callback is where model files
are saved (the CLI writes its --params-out atomically after every epoch).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from backprop.core.csv_contract import sort_labels
from backprop.core.errors import UserError

from .data import Dataset, accuracy, load_csv, read_header, split_names
from .metrics import is_classifier

#: How to install the optional engine (a different ``backprop`` exists on PyPI: name the clone's).
EXTRA = "pip install -e '.[dask]'"

#: One BLAS/OpenMP thread per worker process: the workers are the parallelism (thread counts
#: only; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left alone).
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Characters that make --data a glob (one CSV per partition) rather than one file.
GLOB_CHARS = "*?["


def require_distributed():
    """The ``distributed`` module, or a one-line error naming the extra that installs it."""
    try:
        import distributed
    except ImportError:
        raise UserError("--engine dask needs Dask's distributed scheduler, which is not "
                        f"installed; install it with {EXTRA} (from a clone of backprop)") from None
    return distributed


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class Part:
    """One partition: a whole CSV file, or the rows of one between two byte offsets (whole
    lines; ``start`` > 0 means the header is line 1 of the file, not of the range)."""

    path: str
    start: int = 0
    end: int | None = None  # None: to the end of the file

    @property
    def name(self) -> str:
        return self.path if self.end is None else f"{self.path} (bytes {self.start}-{self.end})"


def find_parts(data: str, n_parts: int) -> list[Part]:
    """``data``'s partitions as a worker sees the file system: every file a glob matches
    (sorted: the global row order is theirs, file after file), or one CSV cut into ``n_parts``
    row ranges at line starts (a file with line breaks inside quoted cells must be split into
    files instead).  Runs on a worker; reads a few bytes around each cut, not the rows."""
    if any(c in data for c in GLOB_CHARS):
        paths = sorted(p for p in glob.glob(data) if os.path.isfile(p))
        if not paths:
            raise UserError(f"--data {data} matches no files")
        return [Part(p) for p in paths]
    if not os.path.isfile(data):
        raise UserError(f"data file {data} does not exist" if not os.path.exists(data)
                        else f"data file {data} is not a regular file")
    size = os.path.getsize(data)
    with open(data, "rb") as fh:
        fh.readline()
        first = fh.tell()  # the first data line
        cuts = [first]
        for k in range(1, n_parts):
            at = first + (size - first) * k // n_parts
            fh.seek(max(at - 1, first))
            if at > first:
                fh.readline()  # to the start of the next line (at itself when at-1 is a newline)
            cuts.append(max(fh.tell(), cuts[-1]))
    cuts.append(size)
    spans = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    if len(spans) <= 1:
        return [Part(data)]
    return [Part(data, a, b) for a, b in spans]


@contextlib.contextmanager
def _readable(part: Part):
    """A path load_csv can read for ``part`` (a row range: header + its lines in a temporary
    file) and a function that rewrites an error's wording to name the real file and line."""
    if part.end is None:
        yield part.path, (lambda message: message)
        return
    with tempfile.TemporaryDirectory(prefix="backprop-part-") as folder:
        tmp = os.path.join(folder, "part.csv")
        try:
            with open(part.path, "rb") as src, open(tmp, "wb") as dst:
                dst.write(src.readline())
                src.seek(part.start)
                left = part.end - part.start
                while left > 0:
                    block = src.read(min(left, 1 << 22))
                    if not block:
                        break
                    dst.write(block)
                    left -= len(block)
        except OSError as exc:  # the worker's own file error, never "a worker was lost" (_lost)
            raise UserError(f"{part.path}: cannot read it on the worker ({exc.strerror or exc})") from None
        yield tmp, lambda message: _renamed(message, tmp, part)


def _renamed(message: str, tmp: str, part: Part) -> str:
    """An error about the range's temporary file, told of the real file: its line and data row
    counted from the top (only on this error path: the lines before the range are read)."""
    lines = rows = 0
    with open(part.path, "rb") as fh:
        fh.readline()
        while fh.tell() < part.start:
            line = fh.readline()
            lines += 1
            rows += bool(line.strip())

    def place(m):
        return f"{part.path} line {int(m[1]) + lines} (data row {int(m[2]) + rows})"

    message = re.sub(re.escape(tmp) + r" line (\d+) \(data row (\d+)\)", place, message)
    message = re.sub(re.escape(tmp) + r" data row (\d+)",
                     lambda m: f"{part.path} data row {int(m[1]) + rows}", message)
    return message.replace(tmp, part.name)


def labels_of(part: Part, target: str) -> list[str]:
    """The distinct class labels in ``part``'s column ``target`` (stripped), so the client can
    fix one class order for every partition before any is read as one-hot rows."""
    with _readable(part) as (path, fix):
        try:
            header = read_header(path)
            if target not in header:
                raise UserError(f"{path}: no target column {target!r}; the columns are "
                                f"{', '.join(header)}")
            raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=[header.index(target)],
                             dtype=str, ndmin=1, encoding="utf-8", comments=None, quotechar='"')
        except UserError as exc:
            raise UserError(fix(str(exc))) from None
        except ValueError as exc:
            raise UserError(fix(f"{path}: cannot read column {target!r}: {exc}")) from None
    return sorted({str(label).strip() for label in np.unique(raw)})


# --------------------------------------------------------------------------- on the workers

_IMPORTED: dict[str, object] = {}


def import_source(source: str, name: str):
    """The trainer module from its source text (written to a temporary file and imported, as
    load_trainer does, so tracebacks show its lines), once per process and source."""
    from backprop.codegen import import_source as _import

    key = f"{name}_{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    if key not in _IMPORTED:
        _IMPORTED[key] = _import(source, key)
    return _IMPORTED[key]


class Shard:
    """One worker's rows and trainer (a Dask actor).  Rows are its partitions', in order; per
    epoch it is told, for each batch, the local indices of its rows in the global order."""

    def __init__(self, source: str, name: str):
        self.trainer = import_source(source, name)
        self.X = self.Y = None
        self.index = np.empty(0, dtype=np.int64)
        self.bounds = np.zeros(1, dtype=np.int64)

    def labels(self, parts: list[Part], target: str) -> list[str]:
        return sorted(set().union(*(labels_of(p, target) for p in parts)))

    def load(self, parts: list[Part], target, features, loss: str, dtype: str,
             classes: list[str] | None) -> dict:
        """Read every part (the CSV contract's checks and one-line errors, naming the file and
        line); returns the column names, classes and each part's row count."""
        blocks, rows, first = [], [], None
        for part in parts:
            with _readable(part) as (path, fix):
                try:
                    ds = load_csv(path, target, features, loss=loss, dtype=dtype, classes=classes)
                except UserError as exc:
                    raise UserError(fix(str(exc))) from None
            if first is None:
                first = ds
            elif (ds.features, ds.targets) != (first.features, first.targets):
                raise UserError(f"{part.name} has columns {', '.join(ds.features + ds.targets)}, "
                                f"{parts[0].name} {', '.join(first.features + first.targets)}; "
                                "every partition needs the same columns")
            blocks.append((ds.X, ds.Y))
            rows.append(ds.n_rows)
        self.X = np.ascontiguousarray(np.concatenate([x for x, _ in blocks]))
        self.Y = np.ascontiguousarray(np.concatenate([y for _, y in blocks]))
        return {"rows": rows, "features": first.features, "targets": first.targets,
                "classes": first.classes, "label_column": first.label_column}

    def moments(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(n, mean, Σ(x − mean)²) per feature, for the client to combine (Chan et al.)."""
        mean = self.X.mean(axis=0)
        return len(self.X), mean, ((self.X - mean) ** 2).sum(axis=0)

    def scale(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.X -= mean  # as Dataset.apply_scaling: in place
        self.X /= std

    def epoch(self, index: np.ndarray, bounds: np.ndarray) -> None:
        """This epoch's order: batch b takes local rows index[bounds[b]:bounds[b + 1]]."""
        self.index, self.bounds = index, bounds

    def grad(self, params: dict, step: int | None):
        """grad_sum on this worker's rows of batch ``step`` (None: every row, batch GD)."""
        if step is None:
            return self.trainer.grad_sum(params, self.X, self.Y)
        rows = self.index[self.bounds[step]:self.bounds[step + 1]]
        return self.trainer.grad_sum(params, self.X[rows], self.Y[rows])

    def evaluate(self, params: dict, loss: str, with_accuracy: bool = False) -> tuple[float, int, int | None]:
        """(loss summed over the rows, rows, rows classified right or None): one forward pass
        for the loss, a second for the accuracy only when asked (the run's last evaluation)."""
        n = len(self.X)
        total = float(self.trainer.loss(params, self.X, self.Y)) * n
        right = accuracy(loss, self.Y, self.trainer.forward(params, self.X)) if with_accuracy else None
        return total, n, None if right is None else int(round(right * n))


# --------------------------------------------------------------------------- the client side


@contextlib.contextmanager
def connect(workers: int | None = 2, scheduler: str | None = None):
    """A Dask client: on a LocalCluster of ``workers`` single-threaded processes (one BLAS
    thread each) started here and closed after, or on the scheduler at ``scheduler``."""
    distributed = require_distributed()
    import logging

    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler}: "
                            f"{_one_line(exc)}") from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    with distributed.LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                  dashboard_address=None, env=dict(WORKER_ENV),
                                  silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _lost(exc: BaseException) -> bool:
    """Whether ``exc`` says a worker (or the connection to it) is gone, rather than an error
    raised by the work itself (which is re-raised as it is)."""
    if isinstance(exc, UserError):
        return False
    try:
        from distributed import KilledWorker
    except ImportError:  # pragma: no cover - only called with distributed installed
        KilledWorker = ()
    return isinstance(exc, (OSError, KilledWorker, TimeoutError)) or (
        isinstance(exc, RuntimeError) and "lost" in str(exc).lower()) or \
        type(exc).__name__ in ("CancelledError", "CommClosedError")


class WorkerLost(UserError):
    """A worker died (or stopped answering) mid-run; the message is one line."""


@dataclass
class Layout:
    """Where the rows live: shard s holds parts[s], whose row counts are rows[s]."""

    parts: list[list[Part]]
    rows: list[list[int]]
    owner: np.ndarray = field(init=False)  # global row -> shard
    local: np.ndarray = field(init=False)  # global row -> index within its shard

    def __post_init__(self):
        counts = [sum(r) for r in self.rows]
        self.owner = np.repeat(np.arange(len(counts)), counts)
        self.local = np.concatenate([np.arange(c) for c in counts]) if counts else np.empty(0, int)

    @property
    def n_rows(self) -> int:
        return int(sum(map(sum, self.rows)))

    def split(self, order: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard, (its local rows in the order ``order`` visits them, the bounds of each
        batch of ``size`` in that list)."""
        n_steps = math.ceil(len(order) / size)
        owner = self.owner[order]
        out = []
        for s in range(len(self.parts)):
            positions = np.flatnonzero(owner == s)
            steps = positions // size
            out.append((self.local[order[positions]],
                        np.searchsorted(steps, np.arange(n_steps + 1)).astype(np.int64)))
        return out


@dataclass
class DaskRun:
    """What :func:`fit` did: the history (runner.History), the data as read and the timings."""

    history: object
    features: list[str]
    targets: list[str]
    classes: list[str] | None
    label_column: str | None
    mean: np.ndarray | None
    std: np.ndarray | None
    parts: list[Part]
    workers: list[str]
    accuracy: float | None
    step_seconds: list[float]  # wall time of every update, client side (send, compute, add, step)
    load_seconds: float

    @property
    def target_columns(self) -> list[str]:
        return [self.label_column] if self.label_column else list(self.targets)


def _plan(parts: list[Part], n_shards: int) -> list[list[Part]]:
    """Consecutive parts per shard, as even in count as they divide (at most one shard per part)."""
    n = min(n_shards, len(parts))
    return [parts[s * len(parts) // n:(s + 1) * len(parts) // n] for s in range(n)]


def _combine(moments) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std of the union from each shard's (n, mean, M2)."""
    n, mean, m2 = 0, None, None
    for k, mu, s in moments:
        if mean is None:
            n, mean, m2 = k, mu.astype(float), s.astype(float)
            continue
        delta = mu - mean
        total = n + k
        mean = mean + delta * (k / total)
        m2 = m2 + s + delta ** 2 * (n * k / total)
        n = total
    std = np.sqrt(m2 / n)
    return mean, np.where(std > 0, std, 1.0)


def fit(spec, params: dict, data: str, target, *, client, features=None, epochs: int,
        lr: float | None = None, gd: str = "batch", batch_size: int | None = None,
        seed: int | None = None, shuffle: bool = True, optimizer=None, state: dict | None = None,
        standardise: bool = False, scaling=None, classes=None, dtype: str = "float64",
        n_workers: int | None = None, callback=None) -> DaskRun:
    """Train ``params`` (updated in place) on ``data`` with the Dask ``client``'s workers.

    ``data``: a glob (one CSV per partition) or one CSV (cut into one row range per worker).
    ``standardise``: scale the features by the statistics of all rows (combined from the
    workers'); ``scaling`` = (mean, std) given instead (a resumed model's).  ``classes``: the
    label order (a resumed model's); default the labels found, sorted, as load_csv does.
    ``gd``/``batch_size``/``seed``/``shuffle``/``optimizer``/``state``: as the trainer's train().
    ``n_workers``: use at most this many of the client's workers.  ``callback(epoch, run)``
    runs on the client after every epoch (run.history.losses[-1]: the loss over all rows; the
    caller's params and run.history.optimizer_state are the state after that epoch).
    """
    from backprop.codegen import render_trainer

    from . import runner

    trainer = runner.load_trainer(spec, dtype=dtype)
    if not hasattr(trainer, "grad_sum"):
        raise UserError("--engine dask cannot train batch-normalised layers: the batch statistics "
                        "couple the rows, so workers' shares of a batch do not add up; use "
                        "--engine numpy")
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    try:
        settings = trainer.optimizer_settings(optimizer, lr)
    except ValueError as exc:  # a learning rate that is not a finite number > 0, an unknown name
        raise UserError(str(exc)) from None
    state = trainer.optimizer_state(params, settings) if state is None else state
    if state["name"] != settings["name"]:
        raise UserError(f"the optimiser state is {state['name']}'s, not {settings['name']}'s")
    targets = split_names(target)
    if not targets:
        raise UserError("name the target column(s) with --target, e.g. --target salary")

    clock = time.perf_counter()
    try:  # every worker (some versions list 5 unless asked for all)
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:  # older distributed: no n_workers, and all of them listed
        workers = sorted(client.scheduler_info()["workers"])
    if n_workers is not None:
        workers = workers[:n_workers]
    if not workers:
        raise UserError("the Dask cluster has no workers")
    parts = _call(client.submit(find_parts, data, len(workers), workers=workers[:1], pure=False))
    plan = _plan(parts, len(workers))
    workers = workers[:len(plan)]
    source = render_trainer(spec, dtype=dtype)
    name = f"backprop_trainer_{spec.digest()}_{dtype}"
    shards = [_call(client.submit(Shard, source, name, actor=True, workers=[w], pure=False))
              for w in workers]

    def each(method, *args, only=None):
        """Call ``method`` on every shard (or those in ``only``) at once, results in order."""
        chosen = range(len(shards)) if only is None else only
        futures = [getattr(shards[s], method)(*args) for s in chosen]
        return [_call(f, workers[s]) for f, s in zip(futures, chosen)]

    labelled = is_classifier(spec.loss) and len(targets) == 1
    if labelled and classes is None:
        classes = sort_labels(sorted(set().union(*each_planned(shards, plan, "labels", targets[0],
                                                               workers))))
    futures = [shards[s].load(plan[s], targets, features, spec.loss, dtype, classes)
               for s in range(len(shards))]
    loaded = [_call(f, workers[s]) for s, f in enumerate(futures)]
    head = loaded[0]
    for s, info in enumerate(loaded[1:], start=1):
        if (info["features"], info["targets"]) != (head["features"], head["targets"]):
            raise UserError(f"{plan[s][0].name} and {plan[0][0].name} have different columns; "
                            "every partition needs the same columns")
    layout = Layout(plan, [info["rows"] for info in loaded])
    n = layout.n_rows
    _check_fits(spec, head, data)
    mean = std = None
    if scaling is not None:
        mean, std = (np.asarray(v, dtype=float) for v in scaling)
    elif standardise:
        mean, std = _combine(each("moments"))
    if mean is not None:
        each("scale", mean, std)
    load_seconds = time.perf_counter() - clock

    bs = runner.batch_size_for(gd, batch_size, n)
    size = n if bs is None else min(int(bs), n)
    shuffled = shuffle and size < n
    rng = np.random.default_rng(seed) if shuffled else None
    if shuffled and state.get("shuffle") is not None:
        rng.bit_generator.state = state["shuffle"]
    n_steps = math.ceil(n / size)
    counts = None  # per step, which shards hold rows of it

    def evaluate(with_accuracy=False):
        results = each("evaluate", params, spec.loss, with_accuracy)
        total = sum(r[0] for r in results)
        right = None if results[0][2] is None else sum(r[2] for r in results)
        return total / n, right

    hist = runner.History(gd=gd, batch_size=bs, n_rows=n, optimizer=settings,
                          optimizer_state=state)
    hist.losses.append(evaluate()[0])
    if not math.isfinite(hist.losses[0]):
        raise UserError("the loss is not finite before training starts; scale the inputs "
                        "(--standardise) or check the data")
    step_seconds = []
    run = DaskRun(history=hist, features=head["features"], targets=head["targets"],
                  classes=head["classes"], label_column=head["label_column"], mean=mean, std=std,
                  parts=parts, workers=workers, accuracy=None, step_seconds=step_seconds,
                  load_seconds=load_seconds)
    spent, epoch, step = 0.0, 0, None
    try:
        for epoch in range(1, epochs + 1):
            mark = time.perf_counter()
            if size < n and (shuffled or counts is None):
                order = rng.permutation(n) if shuffled else np.arange(n)
                pieces = layout.split(order, size)
                each_args(shards, workers, "epoch", pieces)
                counts = np.array([np.diff(b) for _, b in pieces])  # (shards, steps)
            total = 0.0
            for step in range(n_steps):
                tick = time.perf_counter()
                if size == n:
                    only, key = range(len(shards)), None
                else:
                    only, key = np.flatnonzero(counts[:, step]).tolist(), step
                sums = each("grad", params, key, only=only)
                rows = sum(r[2] for r in sums)
                grads = dict(sums[0][1])
                for _, more, _ in sums[1:]:
                    for k in grads:
                        grads[k] = grads[k] + more[k]
                grads = {k: g / rows for k, g in grads.items()}
                total += sum(r[0] for r in sums)
                trainer.optimizer_step(params, grads, state, settings)  # the trainer's own update
                step_seconds.append(time.perf_counter() - tick)
            if shuffled:
                state["shuffle"] = rng.bit_generator.state
            step = None
            spent += time.perf_counter() - mark
            hist.seconds.append(spent)
            hist.running.append(total / n)
            hist.losses.append(evaluate()[0])
            if not math.isfinite(hist.losses[-1]):
                raise UserError(f"the loss diverged (became {hist.losses[-1]}) in epoch {epoch}; "
                                "lower --lr, or scale the inputs with --standardise")
            if callback is not None:
                callback(epoch, run)
        right = evaluate(with_accuracy=True)[1]
    except WorkerLost as exc:
        where = f"epoch {epoch}" + (f", step {step + 1} of {n_steps}" if step is not None else "")
        raise WorkerLost(f"{exc} in {where}") from None
    run.accuracy = None if right is None else right / n
    return run


def each_planned(shards, plan, method, target, workers):
    """``method(plan[s], target)`` on every shard at once (the label pass)."""
    futures = [getattr(shards[s], method)(plan[s], target) for s in range(len(shards))]
    return [_call(f, workers[s]) for s, f in enumerate(futures)]


def each_args(shards, workers, method, per_shard):
    """``method(*per_shard[s])`` on every shard at once."""
    futures = [getattr(shards[s], method)(*per_shard[s]) for s in range(len(shards))]
    return [_call(f, workers[s]) for s, f in enumerate(futures)]


def _call(future, worker: str | None = None):
    """A future's or actor call's result; a lost worker becomes one line (WorkerLost)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - sorted below: lost worker, or the work's own error
        if _lost(exc):
            who = f"the Dask worker {worker}" if worker else "a Dask worker"
            raise WorkerLost(f"{who} was lost ({_one_line(exc)})") from None
        raise


def _check_fits(spec, head: dict, data: str) -> None:
    """The network's input and output widths against the columns (prepare.check_fits' words)."""
    from .prepare import check_fits

    ds = Dataset(X=np.empty((0, len(head["features"]))), Y=np.empty((0, len(head["targets"]))),
                 features=head["features"], targets=head["targets"], source=data,
                 classes=head["classes"])
    check_fits(spec, ds)
