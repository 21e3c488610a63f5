"""Streaming (`backprop train --stream`) against in-memory training, rows per second, one run.

    python bench/stream.py                 # a ~100 MB CSV, 3 rounds (~1-2 min on 2 cores)
    python bench/stream.py --mb 300 --repeats 5 --batch 256

One configuration: an 8-16-1 tanh,linear network (se), mini-batches of --batch rows, plain SGD,
one epoch, on a seeded CSV of 8 feature columns and 1 target written to a temporary folder
(deleted at the end).  Every measurement runs in a fresh process (so its peak RSS is its own)
and the table shows medians over --repeats rounds:

  read, loader     train/data.py's load_csv: the whole file into arrays (np.loadtxt)
  read, stream     train/stream.py's PyArrow reader: one pass of blocks to NumPy, nothing kept
  epoch, memory    the generated trainer's train(..., batch_size, shuffle=False) on loaded arrays
  epoch, stream    stream.fit over the file, file order (--shuffle-buffer 0): read + train
  epoch, shuffled  the same through the default shuffle buffer (65536 rows)

rows/s counts the file's data rows over the measured seconds; "epoch, memory" excludes the
load (add the loader's time for a first epoch).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("read, loader", "read, stream", "epoch, memory", "epoch, stream", "epoch, shuffled")
SPEC = ("8-16-1", "tanh,linear", "se")


def write_csv(path: Path, mb: float, seed: int = 0) -> int:
    """A CSV of about ``mb`` megabytes: 8 standard-normal features and y = tanh(x·w) + noise,
    with 17 significant digits; returns its data rows."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=8)
    rows = 0
    with open(path, "w") as fh:
        fh.write(",".join([f"x{i}" for i in range(8)] + ["y"]) + "\n")
        while fh.tell() < mb * 1e6:
            X = rng.standard_normal((50_000, 8))
            y = np.tanh(X @ w) + 0.1 * rng.standard_normal(len(X))
            np.savetxt(fh, np.column_stack([X, y]), delimiter=",", fmt="%.17g")
            rows += len(X)
    return rows


def measure(mode: str, path: str, batch: int) -> dict:
    """One measurement in this process: seconds of the measured part and peak RSS."""
    from backprop.codegen import load_trainer
    from backprop.derive import make_spec
    from backprop.train import runner, stream
    from backprop.train.data import load_csv

    spec = make_spec(*SPEC)
    trainer = load_trainer(spec)
    params = runner.init_params(trainer, "glorot", seed=0)
    opt = runner.optimizer_for(spec, None, 0.01)
    state = trainer.optimizer_state(params, opt)
    if mode == "read, loader":
        t = time.perf_counter()
        load_csv(path, "y")
        seconds = time.perf_counter() - t
    elif mode == "read, stream":
        table = stream.open_table(path, "y")
        t = time.perf_counter()
        for _ in table.blocks():
            pass
        seconds = time.perf_counter() - t
    elif mode == "epoch, memory":
        ds = load_csv(path, "y")
        t = time.perf_counter()
        trainer.train(params, ds.X, ds.Y, 1, 0.01, batch_size=batch, shuffle=False, optimizer=opt,
                      state=state)
        seconds = time.perf_counter() - t
    else:
        table = stream.open_table(path, "y")
        n = stream.scan(table).n_rows  # untimed: the pass every --stream run makes once
        hist = stream.fit(trainer, params, table, epochs=1, lr=0.01, batch_size=batch, n_rows=n,
                          seed=0, shuffle_buffer=0 if mode == "epoch, stream" else stream.SHUFFLE_BUFFER,
                          optimizer=opt, state=state, initial_loss=1.0)
        seconds = hist.seconds[-1]  # the epoch itself, not the final loss pass
    return {"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100, help="size of the CSV (default 100 MB)")
    parser.add_argument("--batch", type=int, default=256, help="mini-batch rows (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3; medians)")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "PATH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], int(args.one[2]))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        rows = write_csv(path, args.mb)
        size = path.stat().st_size / 1e6
        print(f"{path.name}: {size:.0f} MB, {rows} rows × 9 columns; network {SPEC[0]} {SPEC[1]} "
              f"{SPEC[2]}, batch {args.batch}, sgd, 1 epoch; medians of {args.repeats}")
        got = {mode: [] for mode in MODES}
        for _ in range(args.repeats):
            for mode in MODES:  # interleaved rounds: a slow moment of the machine hits all modes
                out = subprocess.run([sys.executable, __file__, "--one", mode, str(path), str(args.batch)],
                                     capture_output=True, text=True, check=True)
                got[mode].append(json.loads(out.stdout))
    print(f"{'':17} {'seconds':>8} {'rows/s':>11} {'MB/s':>7} {'peak RSS':>9}")
    for mode, runs in got.items():
        s = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["rss_mb"] for r in runs)
        print(f"{mode:17} {s:8.2f} {rows / s:11,.0f} {size / s:7.0f} {rss:7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
