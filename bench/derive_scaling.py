"""Memoised derivation vs naive ``sympy.diff`` of the nested loss, over growing networks.

Run:  python bench/derive_scaling.py [--naive-timeout 60] [--out bench/derive_scaling.md]

For each network, in one run: the time to build the memo table and every per-parameter
formula (memoised form δ·O, and the resolved formula in the notes' vocabulary where it is
affordable), the total expression size (SymPy tree nodes), ms per parameter, and the same for
naive per-parameter ``sympy.diff`` of the fully nested loss (in a subprocess with a timeout,
since it explodes).  Last, the vectorised form of 784-1024-1024-10.  Medians of --repeats.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
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
    args = ap.parse_args(argv)
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
    table = header + "\n" + "\n".join(rows) + "\n\n" + vec + "\n"
    print(vec)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
