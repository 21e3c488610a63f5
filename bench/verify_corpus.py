r"""Measure ``backprop verify`` on the labelled corpus (verify/corpus/): issue 11's figures.

    .venv/bin/python bench/verify_corpus.py [--json] [--limit N] [--only notes,nielsen]

Reports false ``correct`` on wrong input (target 0), false ``wrong``/``error`` on correct input
(target 0), the share of wrong ones labelled with the right misconception (target >= 90 %),
the share of counterexamples that really differ when re-evaluated here, independently of the
checker (target 100 %), and the p95 time per equation (target < 1 s); then a table per
notation and per label.  The independent truth is ∂L/∂P of the forward definitions
(``Network.loss_expanded``) differentiated numerically by mpmath at 40 digits; the claim is
the generator's own expression where known, else the checker's reported claimed value.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from collections import Counter, defaultdict

import mpmath
import sympy

from backprop.derive import Network
from backprop.derive import notation as nt
from backprop.verify import verify_text
from backprop.verify.corpus import build

#: The misconception ids a "wrong" entry may be labelled with, besides the slip table's.
ADVERSARIAL = build.ADVERSARIAL


def _verify_kwargs(entry: dict) -> dict:
    """``notation=`` where the API has it (it is being added while this corpus is written)."""
    if "notation" in inspect.signature(verify_text).parameters:
        return {"notation": entry["notation"]}
    return {}


def run_entry(entry: dict) -> dict:
    """Verify one entry; returns what the figures need (never raises)."""
    spec = build.spec_of(entry)
    t0 = time.perf_counter()
    try:
        report = verify_text(entry["text"], spec, **_verify_kwargs(entry))
        verdicts = [v.as_dict() for v in report.verdicts]
        crash = None
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the harness's end
        verdicts, crash = [], f"{type(exc).__name__}: {exc}"
    dt = time.perf_counter() - t0
    kinds = [v["verdict"] for v in verdicts]
    if crash or not kinds:
        overall = "error"
    elif "error" in kinds:
        overall = "error"
    elif "wrong" in kinds:
        overall = "wrong"
    else:
        overall = "correct"
    wrong = next((v for v in verdicts if v["verdict"] == "wrong"), None)
    mis = (wrong or {}).get("misconception") or {}
    msg = crash or next((v["message"] for v in verdicts if v["verdict"] != "correct"), "")
    return {"id": entry["id"], "verdict": overall, "seconds": dt, "n_equations": max(1, len(verdicts)),
            "label_found": mis.get("id") if isinstance(mis, dict) else None, "message": msg[:300],
            "counterexample": (wrong or {}).get("counterexample")}


# -- independent re-evaluation of a counterexample ----------------------------------------------
def _point_symbols(spec) -> dict:
    net = Network(spec)
    single = spec.n_outputs == 1
    syms = net.inputs + net.parameters() + net.targets
    return {nt.text_name(nt.parse(s), single): s for s in syms}


def _mp_function(expr, symbols):
    return sympy.lambdify(symbols, expr, modules=["mpmath", {"Heaviside": _heaviside}])


def _heaviside(x, h0=0):
    return mpmath.mpf(1) if x > 0 else (mpmath.mpf(h0) if x == 0 else mpmath.mpf(0))


def independent_values(entry: dict, claim: sympy.Expr | None, cx: dict) -> tuple[complex, complex, bool] | None:
    """(claim, truth) at the counterexample point, computed here: truth by mpmath's numerical
    derivative of the forward definitions, claim from its expression (or the reported value)."""
    param = entry.get("parameter")
    point = (cx or {}).get("point") if isinstance(cx, dict) else None
    if not param or not point:
        return None
    spec = build.spec_of(entry)
    names = _point_symbols(spec)
    try:
        values = {names[k]: mpmath.mpf(str(v)) for k, v in point.items() if k in names}
    except (TypeError, ValueError):
        return None
    net = Network(spec)
    # the network's own symbol (a plain Symbol of the same name is another symbol)
    target = next((s for s in names.values() if s.name == _symbol_name(param)), None)
    missing = [s for s in names.values() if s not in values]
    if missing or target not in values:
        return None
    mpmath.mp.dps = 40
    syms = list(values)
    loss = _mp_function(net.loss_expanded, syms)
    idx = syms.index(target)
    args = [values[s] for s in syms]

    def along(t):
        a = list(args)
        a[idx] = t
        return loss(*a)

    truth = mpmath.diff(along, values[target])
    if claim is not None:
        expr = net.expand(build.resolve_gp(spec, claim))
        c = _mp_function(expr, syms)(*args)
    else:
        c = (cx or {}).get("claimed")
        if not isinstance(c, (int, float)):
            return None
    return complex(c), complex(truth), claim is not None


def _symbol_name(text: str) -> str:
    """w^1_11 -> w_1_1_1, b_21 -> b_2_1 (the notes' symbol names)."""
    if text.startswith("w^"):
        k, ij = text[2:].split("_")
        return f"w_{k}_{ij[0]}_{ij[1:]}"
    if text.startswith("b_"):
        return f"b_{text[2]}_{text[3:]}"
    return text


def really_differs(pair) -> bool:
    """Relative to the truth (a near miss T·(1 + 1e-9) of a small T differs by 1e-13 in
    absolute terms); the checker's reported value has 12 digits, so it gets 1e-10."""
    c, t = pair[:2]
    exact = pair[2] if len(pair) > 2 else True
    if not (math.isfinite(abs(c)) and math.isfinite(abs(t))):
        return math.isfinite(abs(c)) != math.isfinite(abs(t))
    return abs(c - t) > (1e-12 if exact else 1e-10) * abs(t) + 1e-300


# -- figures ------------------------------------------------------------------------------------
def measure(entries: list[dict], claims: dict | None = None, progress=None) -> dict:
    """Run every entry and compute issue 11's figures (a JSON-ready dict)."""
    claims = claims or {}
    rows = []
    for n, e in enumerate(entries):
        r = run_entry(e)
        r.update(expect=e["expect"], label=e.get("label"), notation=e["notation"], form=e["form"],
                 source=e.get("source", ""))
        if e["expect"] == "wrong" and r["verdict"] == "wrong" and r["counterexample"]:
            pair = independent_values(e, claims.get(e["id"]), r["counterexample"])
            r["cx_checked"] = pair is not None
            r["cx_differs"] = bool(pair is not None and really_differs(pair))
        rows.append(r)
        if progress:
            progress(n + 1, len(entries), r)
    correct = [r for r in rows if r["expect"] == "correct"]
    wrong = [r for r in rows if r["expect"] == "wrong"]
    slips = [r for r in wrong if r["label"] not in ADVERSARIAL]
    cx = [r for r in wrong if r.get("cx_checked")]
    per_eq = sorted(r["seconds"] / r["n_equations"] for r in rows)
    p95 = per_eq[min(len(per_eq) - 1, int(math.ceil(0.95 * len(per_eq))) - 1)] if per_eq else 0.0
    figures = {
        "entries": len(rows), "correct_entries": len(correct), "wrong_entries": len(wrong),
        "false_correct": sum(r["verdict"] == "correct" for r in wrong),
        "false_wrong": sum(r["verdict"] == "wrong" for r in correct),
        "false_error": sum(r["verdict"] == "error" for r in correct),
        "wrong_called_error": sum(r["verdict"] == "error" for r in wrong),
        "labelled_right": sum(r["label_found"] == r["label"] for r in slips),
        "labelled_share": (sum(r["label_found"] == r["label"] for r in slips) / len(slips)) if slips else 1.0,
        "counterexamples_checked": len(cx),
        "counterexamples_differ": sum(r["cx_differs"] for r in cx),
        "counterexample_share": (sum(r["cx_differs"] for r in cx) / len(cx)) if cx else 1.0,
        "p95_seconds_per_equation": p95,
    }
    return {"figures": figures, "by_notation": _table(rows, "notation"), "by_label": _table(wrong, "label"),
            "by_form": _table(rows, "form"), "failures": _failures(rows), "rows": rows}


def _table(rows, key) -> dict:
    t = defaultdict(Counter)
    for r in rows:
        c = t[r[key] or "-"]
        c["n"] += 1
        c[f"{r['expect']}->{r['verdict']}"] += 1
        if r["expect"] == "wrong" and r["label"] not in ADVERSARIAL:
            c["labelled_right"] += r["label_found"] == r["label"]
    return {k: dict(v) for k, v in sorted(t.items())}


def _failures(rows) -> list[dict]:
    """Entries whose verdict (or label) is not the expected one, with the checker's message."""
    out = []
    for r in rows:
        bad_verdict = r["verdict"] != r["expect"]
        bad_label = (r["expect"] == "wrong" and r["verdict"] == "wrong" and r["label"] not in ADVERSARIAL
                     and r["label_found"] != r["label"])
        if bad_verdict or bad_label:
            out.append({"id": r["id"], "expect": r["expect"], "label": r["label"], "verdict": r["verdict"],
                        "label_found": r["label_found"], "message": r["message"]})
    return out


def corpus_with_claims(limit: int | None = None, only: set | None = None):
    """The corpus (from the files) and the generator's in-memory claims by id."""
    entries = build.load_corpus()
    gen = {e["id"]: e["claim"] for e in build.generate() if "claim" in e}
    if only:
        entries = [e for e in entries if e["notation"] in only]
    if limit:
        entries = entries[:limit]
    return entries, gen


def _print_text(result: dict) -> None:
    f = result["figures"]
    print(f"{f['entries']} entries ({f['correct_entries']} correct, {f['wrong_entries']} wrong)")
    print(f"false correct on wrong input:   {f['false_correct']}  (target 0)")
    print(f"false wrong on correct input:   {f['false_wrong']}  (target 0)")
    print(f"false error on correct input:   {f['false_error']}  (target 0)")
    print(f"wrong input called error:       {f['wrong_called_error']}")
    print(f"labelled with the right slip:   {f['labelled_share']:.1%}  (target >= 90 %)")
    print(f"counterexamples that differ:    {f['counterexamples_differ']}/{f['counterexamples_checked']}"
          f"  (target 100 %)")
    print(f"p95 time per equation:          {f['p95_seconds_per_equation']:.3f} s  (target < 1 s)")
    for title, key in (("notation", "by_notation"), ("form", "by_form"), ("label", "by_label")):
        print(f"\nby {title}:")
        for k, c in result[key].items():
            cells = ", ".join(f"{a} {b}" for a, b in sorted(c.items()) if a != "n")
            print(f"  {k:20s} n={c['n']:4d}  {cells}")
    print(f"\n{len(result['failures'])} entries not as expected:")
    for x in result["failures"]:
        print(f"  {x['id']}: expected {x['expect']}{'/' + x['label'] if x['label'] else ''}, got "
              f"{x['verdict']}{'/' + str(x['label_found']) if x['verdict'] == 'wrong' else ''}: {x['message'][:160]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the figures, tables and failures as JSON")
    ap.add_argument("--limit", type=int, default=None, help="only the first N entries")
    ap.add_argument("--only", default="", help="comma-separated notations to run")
    args = ap.parse_args(argv)
    entries, claims = corpus_with_claims(args.limit, set(filter(None, args.only.split(","))))

    def progress(n, total, r):
        if n % 50 == 0 or n == total:
            print(f"  {n}/{total}", file=sys.stderr, flush=True)

    result = measure(entries, claims, progress)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1, default=str))
    else:
        _print_text(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
