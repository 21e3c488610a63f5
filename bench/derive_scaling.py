"""Memoised derivation vs naive ``sympy.diff`` of the nested loss, over growing networks.

Run:  python bench/derive_scaling.py [--naive-timeout 60] [--out bench/derive_scaling.md]

For each network, in one run: the time to build the memo table and every per-parameter
formula (memoised form δ·O, and the resolved formula in the notes' vocabulary where it is
affordable), the total expression size (SymPy tree nodes), ms per parameter, and the same for
naive per-parameter ``sympy.diff`` of the fully nested loss (in a subprocess with a timeout,
since it explodes).  Then the vectorised form of 784-1024-1024-10.  Last, the ``backprop
derive`` command itself (:data:`COMMANDS`), each run as a child process: wall time, time to
the first gradient on its stdout (a pipe), ms per parameter, bytes written and the child's
peak RSS (``os.wait4``'s rusage).  Medians of --repeats; reported, never asserted.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import subprocess
import statistics
import sys
import time

import sympy

from backprop.derive import derive, make_spec, vectorise
from backprop.derive.budget import formula_terms

NETWORKS = [
    ("2-2-1", "linear", "se"),
    ("4-4-1", "sigmoid,linear", "se"),
    ("4-8-8-1", "sigmoid,sigmoid,linear", "se"),
    ("4-8-8-8-1", "sigmoid,sigmoid,sigmoid,linear", "se"),
    ("8-16-16-16-16-1", "sigmoid,sigmoid,sigmoid,sigmoid,linear", "se"),
    ("32-32-32-1", "tanh,tanh,linear", "se"),
    ("64-64-10", "relu,softmax", "cce"),
    ("784-256-128-10", "sigmoid,sigmoid,softmax", "cce"),
]


#: (what it shows, derive arguments): the issue's targets, and a network 4x smaller than the
#: second for the memory comparison (peak RSS should not grow with the parameter count).
COMMANDS = [
    ("README example, default text", "--layers 5-4-3-2-1 --activations sigmoid,sigmoid,sigmoid,linear --loss se"),
    ("50-50-1 default text (target < 5 s)", "--layers 50-50-1 --activations sigmoid,linear"),
    ("16-32-32-32-32-1 json memoised,chain", "--layers 16-32-32-32-32-1 --activations "
     "sigmoid,sigmoid,sigmoid,sigmoid,linear --loss se --format json --forms memoised,chain"),
    ("32-64-64-64-64-1 json memoised,chain (target ≤ 0.1 ms/param)", "--layers 32-64-64-64-64-1 "
     "--activations sigmoid,sigmoid,sigmoid,sigmoid,linear --loss se --format json --forms memoised,chain"),
    ("32-64-64-64-64-1 jsonl memoised,chain", "--layers 32-64-64-64-64-1 "
     "--activations sigmoid,sigmoid,sigmoid,sigmoid,linear --loss se --format jsonl --forms memoised,chain"),
]


#: How a gradient starts in each format: a text line ∂L/∂..., a JSON object.
FIRST_GRADIENT = ("\n∂L/∂".encode(), b'{"parameter"', b'"type": "gradient"')


def run_command(argv: list[str]) -> tuple[float, float | None, int, float, float]:
    """(wall s, s to the first gradient on stdout, bytes written, peak RSS MiB, CPU s) of one
    child; CPU time (user + system) is what to compare on a machine shared with other work."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "backprop.cli.main", "derive", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first, total, tail = None, 0, b""
    while chunk := proc.stdout.read1(1 << 16):
        total += len(chunk)
        if first is None and any(mark in tail + chunk for mark in FIRST_GRADIENT):
            first = time.perf_counter() - t0
        tail = chunk[-64:]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"backprop derive {' '.join(argv)} exited {proc.returncode}")
    return wall, first, total, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def cli_table(repeats: int) -> list[str]:
    from backprop.cli.common import spec_from_args
    from backprop.cli.main import build_parser

    rows = ["| command | params | wall (s) | CPU (s) | first gradient (s) | CPU ms/param | output "
            "| peak RSS (MiB) |", "|---|---|---|---|---|---|---|---|"]
    for what, args in COMMANDS:
        argv = args.split()
        n = spec_from_args(build_parser().parse_args(["derive", *argv])).n_parameters
        runs = [run_command(argv) for _ in range(repeats)]
        wall = statistics.median(r[0] for r in runs)
        first = statistics.median(r[1] for r in runs if r[1] is not None)
        cpu = statistics.median(r[4] for r in runs)
        rows.append(f"| `backprop derive {args}` ({what}) | {n:,} | {wall:.2f} | {cpu:.2f} | {first:.2f} | "
                    f"{cpu * 1e3 / n:.3f} | {runs[0][2] / 1e6:.2f} MB | {max(r[3] for r in runs):.0f} |")
        print(rows[-1], flush=True)
    return rows


def size(expr) -> int:
    """Nodes in the expression tree (shared subtrees counted each time they appear)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


def memoised(spec, resolve: bool):
    t0 = time.perf_counter()
    d = derive(spec)
    nodes = sum(size(e) for e in d.deltas.values())
    grads = list(d.gradients)
    nodes += sum(2 for _ in grads)
    forms = [g.memoised for g in grads]
    if resolve:
        forms = [g.formula for g in grads]
    elapsed = time.perf_counter() - t0
    if resolve and len(grads) <= 2000:
        nodes = sum(size(f) for f in forms)
    return elapsed, nodes


def _naive(spec, queue):
    t0 = time.perf_counter()
    d = derive(spec)
    L = d.net.loss_expanded
    out = [sympy.diff(L, p) for p in d.net.parameters()]
    elapsed = time.perf_counter() - t0
    queue.put((elapsed, sum(size(e) for e in out) if len(out) <= 200 else None))


def naive(spec, timeout: float):
    queue = mp.Queue()
    proc = mp.Process(target=_naive, args=(spec, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None, None
    return queue.get()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--naive-timeout", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the Markdown table here too")
    ap.add_argument("--cli-only", action="store_true", help="only the backprop derive commands")
    args = ap.parse_args(argv)
    if args.cli_only:
        cli_table(args.repeats)
        return 0
    rows = ["| network | params | memo build (ms) | ms/param | resolved formulas (ms) | ms/param "
            "| memo nodes | naive diff (ms) | naive nodes | naive / memo time |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    naive_dead = False
    for layers, acts, loss in NETWORKS:
        spec = make_spec(layers, acts, loss)
        n = spec.n_parameters
        memo_t = statistics.median(memoised(spec, False)[0] for _ in range(args.repeats))
        _, memo_nodes = memoised(spec, False)
        affordable = formula_terms(spec) <= 200_000
        res_t = statistics.median(memoised(spec, True)[0] for _ in range(args.repeats)) if affordable else None
        fmt = lambda v, f="{:.1f}": "—" if v is None else f.format(v)  # noqa: E731
        if naive_dead or n > 2000:
            nv_t = nv_nodes = None
            naive_cell = "not run (a smaller net already timed out)" if naive_dead else "not run"
        else:
            nv_t, nv_nodes = naive(spec, args.naive_timeout)
            naive_dead = nv_t is None
            naive_cell = f"> {args.naive_timeout:.0f} s (killed)" if naive_dead else fmt(nv_t * 1e3)
        rows.append(
            f"| {layers} | {n:,} | {memo_t * 1e3:.1f} | {memo_t * 1e3 / n:.4f} | "
            f"{fmt(res_t and res_t * 1e3)} | {fmt(res_t and res_t * 1e3 / n, '{:.4f}')} | {memo_nodes:,} | "
            f"{naive_cell} | {fmt(nv_nodes, '{:,}')} | {fmt(nv_t and nv_t / memo_t, '{:.0f}×')} |"
        )
        print(rows[-1], flush=True)
    t = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        v = vectorise(make_spec("784-1024-1024-10", "sigmoid,sigmoid,softmax", "cce"))
        v.text()
        t.append(time.perf_counter() - t0)
    vec = f"Vectorised form of 784-1024-1024-10 (sigmoid, sigmoid, softmax + cce), built and printed: {statistics.median(t) * 1e3:.0f} ms (median of {args.repeats})."
    header = (f"Machine: {platform.machine()}, {mp.cpu_count()} cores, Python {platform.python_version()}, "
              f"SymPy {sympy.__version__}. Medians of {args.repeats} runs; naive diff once, "
              f"killed after {args.naive_timeout:.0f} s.\n")
    print(vec)
    cli = cli_table(args.repeats)
    table = (header + "\n" + "\n".join(rows) + "\n\n" + vec + "\n\n"
             + "The command (`backprop derive`, a child process per run, stdout a pipe):\n\n"
             + "\n".join(cli) + "\n")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
