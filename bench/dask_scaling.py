"""Data-parallel training on Dask: 1 vs 2 workers on a compute-bound network, and the per-step
overhead of the engine itself (issue 17), in one run.

    python bench/dask_scaling.py                        # 784-256-10 on 20 000 rows, ~2 min on 2 cores
    python bench/dask_scaling.py --rows 5000 --steps 3  # quicker
    python bench/dask_scaling.py --out bench/dask_scaling.md

Rows
  * compute-bound: 784-256-10 (relu, softmax; cce), batch GD on ``--rows`` rows of integer
    "pixels" 0-255 (standardised) with labels 0-9, written as two CSV partitions.  Per
    engine, ``--repeats`` rounds of ``--steps`` updates after one untimed warm-up update; a
    row's time per update is the median over rounds of the round's median.  NumPy in one
    process (BLAS limited to 1 thread, and left at its default), Dask with 1 and 2 worker
    processes of one BLAS thread each (``LocalCluster``; the data read by the workers).
  * per-step overhead: the notes' 2-2-1 on 1 000 rows, batch GD, 200 updates: the network is
    so small that a Dask update is nearly all engine (send the params, two actor calls, add,
    update); the overhead is its time minus NumPy's in-process update.

The weights after the timed updates are checked against single-process NumPy (≤ 1e-12
relative) so a fast wrong row cannot pass.  Every figure is wall time on this machine,
shared with whatever else runs on it: read the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backprop.derive import make_spec
from backprop.train import distributed as D
from backprop.train import runner

SEED = 20261202


def write_parts(folder: Path, X: np.ndarray, labels: np.ndarray, fmt: str) -> str:
    """Two CSV partitions (first half, second half) of features x1.. and a label column."""
    header = ",".join([f"x{j + 1}" for j in range(X.shape[1])] + ["label"])
    half = len(X) // 2
    for i, rows in enumerate((slice(0, half), slice(half, len(X)))):
        block = np.column_stack([X[rows], labels[rows]])
        np.savetxt(folder / f"part{i}.csv", block, delimiter=",", header=header, comments="",
                   fmt=fmt)
    return str(folder / "part*.csv")


def rounds(times: list[float], repeats: int) -> float:
    """Median over ``repeats`` equal rounds of each round's median."""
    k = len(times) // repeats
    return statistics.median(statistics.median(times[r * k:(r + 1) * k]) for r in range(repeats))


def numpy_steps(trainer, params, X, Y, steps: int, repeats: int, batch_size=None) -> list[float]:
    """Per-update wall times of the trainer's own train(), one epoch of batch GD per update."""
    times = []
    trainer.train(params, X, Y, 1, 0.01, batch_size=batch_size)  # warm-up
    for _ in range(steps * repeats):
        tic = time.perf_counter()
        trainer.train(params, X, Y, 1, 0.01, batch_size=batch_size)
        times.append(time.perf_counter() - tic)
    return times


def dask_steps(spec, params, data, target, workers: int, steps: int, repeats: int,
               standardise: bool) -> tuple[list[float], dict, float]:
    """Per-update wall times (client side) on a fresh LocalCluster of ``workers`` processes."""
    with D.connect(workers) as client:
        run = D.fit(spec, params, data, target, client=client, epochs=1 + steps * repeats,
                    lr=0.01, gd="batch", standardise=standardise)
    assert len(run.workers) == workers
    return run.step_seconds[1:], params, run.load_seconds


def relative(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / (np.max(np.abs(b[k])) or 1.0)) for k in b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=5, help="timed updates per round (big network)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="also write the table here (markdown)")
    args = ap.parse_args(argv)
    D.require_distributed()
    from threadpoolctl import threadpool_limits

    lines = [f"# Dask data-parallel scaling ({os.cpu_count()} CPUs, {sys.platform})", "",
             "| row | workers | time/update (median) | rows/s | vs NumPy 1 thread | max rel. diff |",
             "|---|---|---|---|---|---|"]
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory(prefix="backprop-dask-bench-") as tmp:
        folder = Path(tmp)
        # compute-bound: 784-256-10
        X = rng.integers(0, 256, size=(args.rows, 784)).astype(float)
        labels = rng.integers(0, 10, size=args.rows)
        (folder / "big").mkdir()
        data = write_parts(folder / "big", X, labels, "%d")
        spec = make_spec("784-256-10", "relu,softmax", "cce")
        trainer = runner.load_trainer(spec)
        mean, std = X.mean(axis=0), X.std(axis=0)
        Xs = (X - mean) / np.where(std > 0, std, 1.0)
        Y = np.eye(10)[labels]
        start = trainer.init_params(seed=1)
        n_updates = 1 + args.steps * args.repeats
        rows_per = args.rows
        results = {}
        for name, threads in (("NumPy, 1 process", 1), ("NumPy, 1 process", None)):
            params = runner.copy_params(start)
            with threadpool_limits(limits=threads):
                times = numpy_steps(trainer, params, Xs, Y, args.steps, args.repeats)
            results[(name, threads)] = (rounds(times, args.repeats), params)
        reference = results[("NumPy, 1 process", 1)][1]
        base = results[("NumPy, 1 process", 1)][0]
        for (name, threads), (t, _) in results.items():
            label = f"{threads} BLAS thread" if threads else "default BLAS threads"
            lines.append(f"| 784-256-10 batch GD, {name} ({label}) | – | {t * 1e3:.1f} ms | "
                         f"{rows_per / t:,.0f} | {base / t:.2f}× | – |")
        for workers in (1, 2):
            params = runner.copy_params(start)
            times, params, load = dask_steps(spec, params, data, "label", workers, args.steps,
                                             args.repeats, standardise=True)
            t = rounds(times, args.repeats)
            diff = relative(params, reference)
            lines.append(f"| 784-256-10 batch GD, Dask (workers read the CSVs in {load:.1f} s) | "
                         f"{workers} | {t * 1e3:.1f} ms | {rows_per / t:,.0f} | {base / t:.2f}× | "
                         f"{diff:.1e} |")

        # per-step overhead: the notes' 2-2-1
        tiny_rows, tiny_steps = 1000, 200
        Xt = rng.normal(size=(tiny_rows, 2))
        yt = Xt @ np.array([0.5, -0.3]) + 0.1
        (folder / "tiny").mkdir()
        tiny = write_parts(folder / "tiny", Xt, yt, "%.17g")
        tiny_spec = make_spec("2-2-1", "linear", "se")
        tiny_trainer = runner.load_trainer(tiny_spec)
        start = tiny_trainer.init_params(seed=1)
        p_np = runner.copy_params(start)
        times = numpy_steps(tiny_trainer, p_np, Xt, yt.reshape(-1, 1), tiny_steps // 3, 3)
        t_np = rounds(times, 3)
        lines.append(f"| 2-2-1 batch GD on {tiny_rows} rows, NumPy in process | – | "
                     f"{t_np * 1e6:.0f} µs | {tiny_rows / t_np:,.0f} | – | – |")
        overhead = {}
        for workers in (1, 2):
            params = runner.copy_params(start)
            with D.connect(workers) as client:
                run = D.fit(tiny_spec, params, tiny, "label", client=client, epochs=tiny_steps,
                            lr=0.01, gd="batch")
            t = rounds(run.step_seconds[2:], 3)
            overhead[workers] = t - t_np
            lines.append(f"| 2-2-1 batch GD on {tiny_rows} rows, Dask | {workers} | {t * 1e3:.2f} ms | "
                         f"{tiny_rows / t:,.0f} | – | – |")
    lines += ["", "Per-step overhead of the Dask engine (2-2-1 update time minus NumPy's): "
              + ", ".join(f"{w} worker{'s' if w > 1 else ''}: {o * 1e3:.2f} ms"
                          for w, o in overhead.items()),
              f"({n_updates} updates of the big network per engine, first untimed; "
              f"{args.repeats} rounds of {args.steps}; the tiny one {tiny_steps} updates)."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
