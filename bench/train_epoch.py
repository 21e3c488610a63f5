"""One training epoch, one process per implementation, in one run: the generated trainer
against hand-written NumPy, PyTorch eager, JAX jit, scikit-learn and (tiny) scalar Python.

    python bench/train_epoch.py --quick                  # tiny + small, 3 rounds (~1 min)
    python bench/train_epoch.py                          # everything (< 10 min on 2 cores)
    python bench/train_epoch.py --configs medium,large --repeats 3 --out bench/results.md
    python bench/train_epoch.py --configs tiny_sgd,sgd20k,small,medium,large --threads 1  # issue 16

How a run goes
  1. ``gemm`` worker: the best matrix-multiply rate NumPy reaches here, per dtype (square
     products and the configs' own shapes, best of several); it prices the GEMM floor,
     6 × weights × rows FLOPs per epoch.
  2. ``init`` worker: for each config, times ``backprop.codegen.load_trainer`` and saves the
     generated trainer's ``init_params(seed=INIT_SEED)`` to an .npz that every worker reads
     (falls back to a Glorot init in ``common.py``, reported, if codegen is missing).
  3. Per config and dtype: one long-lived worker process per implementation builds the same
     seeded data (``common.make_data``), loads the weights, warms up (untimed), then waits.
     The harness runs ``repeats`` rounds; each round asks every worker, in a rotated order,
     for ``inner`` timed epochs (each from the initial weights; the reset is untimed), with a
     pause between workers so one library's spinning BLAS threads do not eat the next one's
     time.  Only one worker computes at any moment.  A row's time is the median over rounds
     of the per-round median epoch time.
  4. Every worker's weights after one epoch are scored by the same float64 loss
     (``peers.hand_numpy.loss`` on the float64 data); a row whose loss differs from hand
     NumPy's by more than 1e-9 (float64) or 1e-3 (float32), relative, is marked WRONG.

If ``OPENBLAS_CORETYPE`` or ``OPENBLAS_L2_SIZE`` is set, NumPy-based rows run twice: as is,
and with both removed from that worker's environment only (the parent's is never changed).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import CONFIGS, INIT_SEED, Config, fallback_init, make_data  # noqa: E402

#: name -> (peer module, factory, label, uses NumPy's BLAS)
IMPLS = {
    "generated": ("generated", "make", "generated train()", True),
    "generated_steps": ("generated", "make_steps", "generated sgd_step loop", True),
    "hand_numpy": ("hand_numpy", "make", "hand NumPy", True),
    "torch": ("torch_eager", "make", "PyTorch eager", False),
    "jax": ("jax_jit", "make", "JAX jit step", False),
    "sklearn": ("sklearn_mlp", "make", "scikit-learn", True),
    "tuned_numpy": ("tuned_numpy", "make", "tuned NumPy (BLAS beta=1)", True),
    "tuned_numpy_nb": ("tuned_numpy", "make_no_blas", "tuned NumPy (out= update)", True),
    "scalar_python": ("scalar_python", "make", "scalar Python", False),
    "scalar_unrolled": ("scalar_unrolled", "make", "scalar unrolled (prototype)", False),
    "numba_backend": ("generated", "make_numba", "generated --backend numba", True),
    "jax_backend": ("generated", "make_jax", "generated --backend jax", False),
}
DEFAULT_IMPLS = {
    "tiny": ["generated", "generated_steps", "hand_numpy", "scalar_python", "scalar_unrolled", "torch", "jax",
             "sklearn", "numba_backend", "jax_backend"],
    "tiny_sgd": ["generated", "hand_numpy", "scalar_python", "jax", "numba_backend", "jax_backend"],
    "sgd20k": ["generated", "hand_numpy", "numba_backend", "jax_backend"],
    "small": ["generated", "generated_steps", "hand_numpy", "scalar_unrolled", "torch", "jax", "sklearn",
              "numba_backend", "jax_backend"],
    "medium": ["generated", "generated_steps", "hand_numpy", "tuned_numpy", "tuned_numpy_nb", "torch", "jax",
               "sklearn", "numba_backend", "jax_backend"],
    "large": ["generated", "hand_numpy", "tuned_numpy", "torch", "jax", "sklearn", "numba_backend",
              "jax_backend"],
}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TOL = {"float64": 1e-9, "float32": 1e-3}
PAUSE_S = 0.25          # between two workers' turns: lets idle BLAS/OpenMP threads stop spinning
READY_TIMEOUT_S = 300
RUN_TIMEOUT_S = 600


# ----------------------------------------------------------------------------- workers

def _send(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _blas_info() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{k: d.get(k) for k in keys} for d in threadpool_info()]


def worker_main(args) -> None:
    """Serve 'run N' / 'final' requests on stdin for one implementation of one config."""
    cfg = _config(args.config, args.hidden)
    try:
        module, factory, _, _ = IMPLS[args.worker]
        X, Y = make_data(cfg, args.dtype)
        with np.load(args.init) as z:
            params0 = {k: z[k] for k in z.files}
        try:
            peer = importlib.import_module(f"peers.{module}")
            runner = getattr(peer, factory)(cfg, params0, X, Y, args.dtype)
        except ImportError as exc:
            _send({"missing": f"{type(exc).__name__}: {exc}"})
            return
        runner.warmup()
        runner.reset()
        _send({"ready": True, "blas": _blas_info(), "versions": _versions()})
    except Exception as exc:  # reported as the row's status
        _send({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]})
        return
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "run":
            times = []
            for _ in range(int(cmd[1])):
                runner.reset()
                t0 = time.perf_counter()
                runner.epoch()
                runner.sync()
                times.append(time.perf_counter() - t0)
            _send({"times": times})
        elif cmd[0] == "final":
            np.savez(args.final, **runner.params())
            _send({"saved": args.final})
            return


def _versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("torch", "jax", "jaxlib", "sklearn", "scipy"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def gemm_main(args) -> None:
    """Best GFLOP/s NumPy reaches for C = A @ B (out= preallocated), per dtype."""
    shapes = [(n, n, n) for n in (256, 512, 1024, 2048)]
    for name in args.configs.split(","):
        cfg = _config(name, None)
        for n0, n1 in zip(cfg.layers[:-1], cfg.layers[1:]):
            if min(cfg.batch, n0, n1) >= 64:     # the small configs' products say nothing of the peak
                shapes += [(cfg.batch, n0, n1), (n0, cfg.batch, n1), (cfg.batch, n1, n0)]
    rng = np.random.default_rng(0)
    result = {"blas": _blas_info(), "per_shape": {}}
    for dtype in ("float64", "float32"):
        best = 0.0
        for m, k, n in shapes:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C = np.empty((m, n), dtype=dtype)
            flop = 2.0 * m * k * n
            reps = max(1, min(200, int(2e8 / flop)))
            np.matmul(A, B, out=C)
            rates = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(reps):
                    np.matmul(A, B, out=C)
                rates.append(flop * reps / (time.perf_counter() - t0))
            result["per_shape"][f"{dtype} {m}x{k}x{n}"] = max(rates) / 1e9
            best = max(best, max(rates))
        result[dtype] = best / 1e9
    _send(result)


def init_main(args) -> None:
    """Generated init_params(seed) per config, plus how long load_trainer takes."""
    out = {}
    for name in args.configs.split(","):
        cfg = _config(name, args.hidden)
        path = Path(args.tmp) / f"init_{name}.npz"
        entry = {"path": str(path)}
        try:
            from backprop.codegen import load_trainer, render_trainer
            from backprop.derive import make_spec

            spec = make_spec(cfg.layers, list(cfg.activations), cfg.loss)
            t0 = time.perf_counter()
            render_trainer(spec, dtype="float64")
            entry["render_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            mod = load_trainer(spec, dtype="float64")
            entry["load_s"] = time.perf_counter() - t0
            params = mod.init_params(seed=INIT_SEED)
            entry["source"] = f"generated init_params(seed={INIT_SEED})"
        except Exception as exc:
            params = fallback_init(cfg)
            entry["source"] = f"fallback Glorot (codegen unavailable: {type(exc).__name__}: {exc})"
        np.savez(path, **{k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
        out[name] = entry
    _send(out)


def info_main(args) -> None:
    """Versions of every peer library (imported here, not in the parent)."""
    vers = {}
    for name in ("numpy", "scipy", "sklearn", "torch", "jax", "jaxlib", "sympy", "threadpoolctl"):
        try:
            vers[name] = importlib.import_module(name).__version__
        except Exception as exc:
            vers[name] = f"not installed ({type(exc).__name__})"
    try:
        import torch
        vers["torch threads"] = torch.get_num_threads()
        vers["torch BLAS"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    except Exception:
        pass
    try:
        import jax
        vers["jax backend"] = jax.default_backend()
    except Exception:
        pass
    _send({"versions": vers, "blas": _blas_info()})


# ----------------------------------------------------------------------------- harness

def _config(name: str, hidden: str | None) -> Config:
    cfg = CONFIGS[name]
    if hidden and cfg.loss == "cce":
        cfg = cfg.with_hidden(hidden)
    return cfg


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _env_variants(threads: int | None) -> list[tuple[str, dict]]:
    base = dict(os.environ)
    base.setdefault("PYTHONHASHSEED", "0")
    if threads:                     # the workers' own environment only, never the parent's
        for var in THREAD_VARS:
            base[var] = str(threads)
        if threads == 1:
            base["XLA_FLAGS"] = (base.get("XLA_FLAGS", "") +
                                 " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
        base["BENCH_THREADS"] = str(threads)
    variants = [("as is", base)]
    if any(v in os.environ for v in OPENBLAS_VARS):
        variants.append(("OPENBLAS_* unset", {k: v for k, v in base.items() if k not in OPENBLAS_VARS}))
    return variants


class Worker:
    """One long-lived implementation process for one config and dtype."""

    def __init__(self, impl, variant, vindex, env, cfg_name, dtype, init, tmp, hidden, log):
        self.impl, self.variant = impl, variant
        self.final = str(Path(tmp) / f"final_{cfg_name}_{dtype}_{impl}_{vindex}.npz")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--config", cfg_name,
               "--dtype", dtype, "--init", init, "--final", self.final]
        if hidden:
            cmd += ["--hidden", hidden]
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env, cwd=str(HERE.parent))
        self.status = "starting"
        self.times: list[list[float]] = []
        self.info: dict = {}

    def read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{self.impl}: no answer in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.impl}: worker died (see {self.log.name})")
        return json.loads(line)

    def ask(self, text, timeout=RUN_TIMEOUT_S):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.log.close()


def _run_helper(mode: str, extra: list[str], env=None, timeout=900) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--{mode}"] + extra
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(HERE.parent))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} helper failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_config(cfg: Config, dtype: str, impls, repeats, init_path, tmp, hidden, variants, say):
    """All workers of one config and dtype; returns one result dict per (impl, variant)."""
    workers: list[Worker] = []
    results = []
    for vindex, (vname, env) in enumerate(variants):
        for impl in impls:
            if vindex > 0 and not IMPLS[impl][3]:      # only NumPy-based rows run per variant
                continue
            log = Path(tmp) / f"log_{cfg.name}_{dtype}_{impl}_{vindex}.txt"
            w = Worker(impl, vname, vindex, env, cfg.name, dtype, init_path, tmp, hidden, log)
            try:
                msg = w.read(READY_TIMEOUT_S)
            except Exception as exc:
                msg = {"error": str(exc)}
            if msg.get("ready"):
                w.status, w.info = "ok", msg
            elif "missing" in msg:
                w.status = f"not installed ({msg['missing']})"
            else:
                w.status = f"error: {msg.get('error')}"
                if msg.get("trace"):
                    say(msg["trace"])
            workers.append(w)
    live = [w for w in workers if w.status == "ok"]
    for r in range(repeats):
        order = live[r % len(live):] + live[: r % len(live)] if live else []
        for w in order:
            if w.status != "ok":
                continue
            time.sleep(PAUSE_S)
            try:
                w.times.append(w.ask(f"run {cfg.inner}")["times"])
            except Exception as exc:
                w.status = f"error: {exc}"
        say(f"  round {r + 1}/{repeats} done")
    X64, Y64 = make_data(cfg, "float64")
    from peers.hand_numpy import loss as ref_loss
    for w in workers:
        row = {"impl": w.impl, "label": IMPLS[w.impl][2], "variant": w.variant, "status": w.status,
               "blas": w.info.get("blas", []), "versions": w.info.get("versions", {})}
        if w.status == "ok":
            try:
                w.ask("final")
                with np.load(w.final) as z:
                    params = {k: z[k] for k in z.files}
                row["loss"] = ref_loss(params, X64, Y64, cfg.activations, cfg.loss)
            except Exception as exc:
                row["status"] = f"error: {exc}"
            per_round = [statistics.median(t) for t in w.times]
            row["round_medians"] = per_round
            row["median_s"] = statistics.median(per_round) if per_round else None
            row["min_s"] = min(min(t) for t in w.times) if w.times else None
            row["samples"] = sum(len(t) for t in w.times)
        w.close()
        results.append(row)
    # correctness and ratios against hand NumPy of the same environment variant
    for row in results:
        ref = next((r for r in results if r["impl"] == "hand_numpy" and r["variant"] == row["variant"]),
                   None)
        if ref is None or "loss" not in ref:
            ref = next((r for r in results if r["impl"] == "hand_numpy" and "loss" in r), None)
        if ref and "loss" in row and "loss" in ref:
            rel = abs(row["loss"] - ref["loss"]) / max(abs(ref["loss"]), 1e-300)
            row["rel_loss"] = rel
            if rel > TOL[dtype]:
                row["status"] = "WRONG"
            if row.get("median_s") and ref.get("median_s"):
                row["ratio"] = row["median_s"] / ref["median_s"]
    return results


def fmt_time(s):
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def render(meta, all_results) -> str:
    out = []
    m = meta
    out.append(f"Run {m['date']} · {m['cmd']}")
    out.append("")
    out.append(f"- machine: {m['nproc']} cores, {m['cpu']}; {m['kernel']}")
    out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    for vname, blas in m["gemm_blas"].items():
        out.append(f"- NumPy BLAS (threadpoolctl, env {vname}): " + "; ".join(
            f"{b['internal_api']} {b['version']} kernel {b['architecture']}, {b['num_threads']} threads"
            for b in blas))
    out.append("- env: " + ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in
                                       OPENBLAS_VARS + THREAD_VARS))
    out.append("- threads per worker: " + (f"{m['threads']} (--threads: OMP/OpenBLAS/MKL env, "
                                              "XLA_FLAGS, torch.set_num_threads)"
                                              if m.get("threads") else "each library's default"))
    out.append(f"- GEMM peak (best NumPy matmul, this run): float64 {m['gemm']['float64']:.1f} GFLOP/s, "
               f"float32 {m['gemm']['float32']:.1f} GFLOP/s")
    for name, e in m["init"].items():
        gen = (f"render_trainer {e['render_s']:.2f} s, load_trainer {e['load_s']:.2f} s"
               if "load_s" in e else "no generation time")
        out.append(f"- {name}: initial weights from {e['source']}; {gen}")
    out.append("- timing: median over rounds of the per-round median epoch; rounds × epochs per "
               "round: " + ", ".join(f"{k} {v}" for k, v in m["repeats"].items()))
    out.append("")
    out.append("| config | dtype | implementation | env | epoch (median) | × hand NumPy | × GEMM floor "
               "| final loss | rel. diff | status |")
    out.append("|---|---|---|---|---:|---:|---:|---:|---:|---|")
    for (cname, dtype), rows in all_results.items():
        cfg = _config(cname, m.get("hidden"))
        floor = cfg.flops_floor / (m["gemm"][dtype] * 1e9)
        show_floor = cfg.weights >= 100_000     # tiny/small: per-call overhead, not FLOPs
        if show_floor:
            out.append(f"| **{cname}** | {dtype} | *GEMM floor* (6·{cfg.weights}·{cfg.rows} FLOP "
                       f"at {m['gemm'][dtype]:.0f} GFLOP/s) | | {fmt_time(floor)} | | 1.00 | | | |")
        for r in rows:
            ms = r.get("median_s")
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else "–"
            fl = f"{ms / floor:.2f}" if ms and show_floor else "–"
            loss = f"{r['loss']:.10g}" if "loss" in r else "–"
            rel = f"{r['rel_loss']:.1e}" if "rel_loss" in r else "–"
            status = r["status"] if len(r["status"]) < 90 else r["status"][:87] + "..."
            out.append(f"| {cname} | {dtype} | {r['label']} | {r['variant']} | {fmt_time(ms)} | {ratio} "
                       f"| {fl} | {loss} | {rel} | {status} |")
    kernels = sorted({f"{r['label']} [{r['variant']}]: " + ", ".join(
        f"{b['internal_api']} {b['architecture']}" for b in r["blas"])
        for rows in all_results.values() for r in rows if r.get("blas")})
    if kernels:
        out.append("")
        out.append("BLAS kernels named by threadpoolctl in each worker: " + "; ".join(kernels))
    tiny = [(k, rows) for k, rows in all_results.items() if k[0] in ("tiny", "tiny_sgd")]
    for (cname, dtype), rows in tiny:
        cfg = _config(cname, None)
        steps = -(-cfg.rows // cfg.batch)
        per = {r["label"]: r["median_s"] / steps for r in rows if r.get("median_s")}
        if per:
            out.append("")
            out.append(f"Tiny {dtype}, per SGD step ({steps} steps/epoch): " + ", ".join(
                f"{k} {v * 1e6:.1f} µs" for k, v in per.items()))
    out += targets_table(meta, all_results)
    return "\n".join(out) + "\n"


#: Issue 16's targets: (what, configs, numerator impls (best of), denominator impl or "floor", bound).
TARGETS = [
    ("tiny 2-2-1 SGD step, numba ÷ plain-Python scalar loop", ("tiny_sgd",), ("numba_backend",),
     "scalar_python", 0.02),
    ("tiny 2-2-1 SGD step, numba ÷ JAX jit step", ("tiny_sgd",), ("numba_backend",), "jax", 0.05),
    ("epoch, jax backend ÷ JAX jit of jax.grad", ("small", "medium", "large"), ("jax_backend",), "jax", 1.05),
    ("epoch, best backend ÷ GEMM floor", ("medium", "large"),
     ("generated", "numba_backend", "jax_backend"), "floor", 1.0),
    ("20 000-row SGD epoch of 8-16-1, numba ÷ NumPy backend", ("sgd20k",), ("numba_backend",),
     "generated", 0.05),
]


def targets_table(meta, all_results) -> list[str]:
    """Issue 16's five ratios from this run's rows (the as-is environment; a missing row: –)."""
    def median(rows, impl):
        times = [r["median_s"] for r in rows if r["impl"] == impl and r.get("median_s")
                 and r["status"] == "ok" and r["variant"] == rows[0]["variant"]]
        return times[0] if times else None

    out = ["", "Issue 16's targets (ratios of medians in this run; ≤ bound is met):", "",
           "| target | config | dtype | ratio | bound | met |", "|---|---|---|---:|---:|---|"]
    for what, configs, numerators, denominator, bound in TARGETS:
        for (cname, dtype), rows in all_results.items():
            if cname not in configs:
                continue
            tops = [(median(rows, impl), impl) for impl in numerators]
            tops = [t for t in tops if t[0] is not None]
            if denominator == "floor":
                cfg = _config(cname, meta.get("hidden"))
                bottom = cfg.flops_floor / (meta["gemm"][dtype] * 1e9)
            else:
                bottom = median(rows, denominator)
            if not tops or not bottom:
                out.append(f"| {what} | {cname} | {dtype} | – | {bound} | not measured |")
                continue
            best, impl = min(tops)
            ratio = best / bottom
            who = f" ({IMPLS[impl][2]})" if len(numerators) > 1 else ""
            out.append(f"| {what}{who} | {cname} | {dtype} | {ratio:.3f} | {bound} | "
                       f"{'yes' if ratio <= bound else 'NO'} |")
    return out


def machine_meta() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.platform()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="tiny,small,medium,large")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--impls", default=None, help="comma list; default per config (see DEFAULT_IMPLS)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds per config (default per config)")
    ap.add_argument("--quick", action="store_true", help="tiny + small, 3 rounds")
    ap.add_argument("--hidden", default=None, help="hidden activation for medium/large (default relu)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for every library in every worker (OMP/OpenBLAS/MKL/XLA/torch); "
                         "default: each library's own")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    ap.add_argument("--readme", action="store_true", help="also replace the results block in bench/README.md")
    # internal modes
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--gemm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--info", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ap.add_argument("--final", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker_main(args)
        return 0
    if args.gemm:
        gemm_main(args)
        return 0
    if args.info:
        info_main(args)
        return 0
    if args.prepare:
        init_main(args)
        return 0

    if args.quick:
        args.configs = "tiny,small"
        args.repeats = args.repeats or 3
    configs = args.configs.split(",")
    dtypes = args.dtypes.split(",")
    variants = _env_variants(args.threads)
    say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    t_start = time.time()
    meta = machine_meta()
    meta["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta["cmd"] = "python bench/train_epoch.py " + " ".join(argv if argv is not None else sys.argv[1:])
    meta["hidden"] = args.hidden
    meta["threads"] = args.threads
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        info = _run_helper("info", [], env=variants[0][1])
        meta["versions"], meta["blas"] = info["versions"], info["blas"]
        say(f"versions: {meta['versions']}")
        gemm = {"float64": 0.0, "float32": 0.0}
        for vname, env in variants:
            g = _run_helper("gemm", ["--configs", ",".join(configs)], env=env)
            say(f"GEMM [{vname}]: {g['float64']:.1f} / {g['float32']:.1f} GFLOP/s (f64/f32)")
            meta.setdefault("gemm_blas", {})[vname] = g["blas"]
            for d in gemm:
                gemm[d] = max(gemm[d], g[d])
        init_args = ["--tmp", tmp, "--configs", ",".join(configs)]
        if args.hidden:
            init_args += ["--hidden", args.hidden]
        meta["init"] = _run_helper("prepare", init_args)
        for name, e in meta["init"].items():
            say(f"init {name}: {e['source']} {e.get('load_s', '')}")
        all_results = {}
        meta["repeats"] = {}
        for name in configs:
            cfg = _config(name, args.hidden)
            impls = args.impls.split(",") if args.impls else DEFAULT_IMPLS[name]
            if cfg.loss != "se" or "softmax" in cfg.activations:
                impls = [i for i in impls if not i.startswith("scalar")]
            repeats = args.repeats or cfg.repeats
            meta["repeats"][name] = f"{repeats}×{cfg.inner}"
            for dtype in dtypes:
                say(f"{cfg.label} {dtype}: {', '.join(impls)}")
                all_results[(name, dtype)] = run_config(
                    cfg, dtype, impls, repeats, meta["init"][name]["path"], tmp, args.hidden,
                    variants, say)
                for r in all_results[(name, dtype)]:
                    say(f"    {r['label']:26s} {r['variant']:8s} {fmt_time(r.get('median_s')):>12s} "
                        f"x{r.get('ratio', float('nan')):.2f} {r['status'][:100]}")
        # GEMM again at the end: the best of both measurements is the peak
        g = _run_helper("gemm", ["--configs", ",".join(configs)], env=variants[-1][1])
        for d in gemm:
            gemm[d] = max(gemm[d], g[d])
        meta["gemm"] = gemm
    meta["wall_s"] = time.time() - t_start
    text = render(meta, all_results) + f"\nWall time of this run: {meta['wall_s']:.0f} s.\n"
    Path(args.out).write_text(text)
    print(text)
    if args.readme:
        readme = HERE / "README.md"
        s = readme.read_text()
        a, b = "<!-- results:start -->", "<!-- results:end -->"
        if a in s and b in s:
            s = s[: s.index(a) + len(a)] + "\n" + text + s[s.index(b):]
            readme.write_text(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
