"""Where the generated trainer spends an epoch: line timings of its step (line_profiler).

    python bench/profile_generated.py                       # medium and large, float64 + float32
    python bench/profile_generated.py --configs medium --dtypes float32 --rows 2000

Profiles ``forward``, ``loss_and_gradients``, ``sgd_step``, the element-wise helpers and
``_batch_loss`` of ``load_trainer(spec, dtype)`` over one epoch (no shuffle), then prints each
line's share of the epoch, largest first, with a label saying which product or pass it is.
Run it with ``--threads 1`` on a loaded machine (as the timing run does); line_profiler adds
a few µs per line, nothing next to these products.  Needs ``pip install line_profiler``.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="medium,large")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--rows", type=int, default=None, help="fewer rows than the config (faster)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--hidden", default=None, help="hidden activation for medium/large (default relu)")
    args = ap.parse_args(argv)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import inspect
    import time

    from line_profiler import LineProfiler

    from backprop.codegen import load_trainer
    from common import CONFIGS, INIT_SEED, batches, make_data
    from peers.generated import spec_of

    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        if args.rows:
            cfg = replace(cfg, rows=args.rows)
        if args.hidden and cfg.loss == "cce":
            cfg = cfg.with_hidden(args.hidden)
        for dtype in args.dtypes.split(","):
            mod = load_trainer(spec_of(cfg), dtype=dtype)
            X, Y = make_data(cfg, dtype)
            params = mod.init_params(seed=INIT_SEED, dtype=dtype)
            mod.train(params, X[: 3 * cfg.batch], Y[: 3 * cfg.batch], 1, cfg.lr,
                      batch_size=cfg.batch, shuffle=False)                   # warm-up
            funcs = [mod.forward, mod.loss_and_gradients, mod.sgd_step, mod._batch_loss, mod.train]
            funcs += [mod._step] if hasattr(mod, "_step") else []  # the fused update step
            funcs += [getattr(mod, f) for f in dir(mod)
                      if f.endswith(("_derivative", "_backward")) or f in ("relu", "tanh", "sigmoid",
                                                                           "softmax", "linear")]
            funcs = [f for f in funcs if inspect.isfunction(f)]
            lp = LineProfiler(*funcs)
            t0 = time.perf_counter()
            lp.runcall(mod.train, params, X, Y, 1, cfg.lr, batch_size=cfg.batch, shuffle=False)
            wall = time.perf_counter() - t0
            stats = lp.get_stats()
            rows = []
            for (fname, _, fn), lines in stats.timings.items():
                try:
                    lines_src = Path(fname).read_text().splitlines()
                except OSError:
                    lines_src = []
                for lineno, hits, t in lines:
                    text = lines_src[lineno - 1].strip() if lineno - 1 < len(lines_src) else "?"
                    rows.append((t * stats.unit, hits, fn, text))
            # only leaf lines (not calls into other profiled functions) add up to the epoch
            profiled = {f.__name__ for f in funcs}
            leaf = [r for r in rows if not any(f"{p}(" in r[3] for p in profiled) and r[2] != "train"]
            leaf.sort(reverse=True)
            total_leaf = sum(r[0] for r in leaf)
            steps = len(batches(cfg.rows, cfg.batch))
            print(f"\n## {cfg.name} {'-'.join(map(str, cfg.layers))} {','.join(cfg.activations)} "
                  f"{cfg.loss}, {dtype}, {cfg.rows} rows, batch {cfg.batch} ({steps} steps): "
                  f"epoch {wall:.3f} s under the profiler, leaf lines {total_leaf:.3f} s")
            print(f"{'share':>6} {'s':>8} {'hits':>6} {'µs/hit':>9}  function: line")
            for t, hits, fn, text in leaf[: args.top]:
                print(f"{100 * t / total_leaf:5.1f}% {t:8.3f} {hits:6d} {1e6 * t / max(hits, 1):9.1f}  "
                      f"{fn}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
