"""CPU time per equation of `backprop verify` on the equations the verify tests check (p50/p95/max).

    python bench/verify_equation_times.py record OUT.json tests/test_verify.py ...
        runs those tests once and keeps every document they verify (text, spec, notation);
    python bench/verify_equation_times.py time OUT.json
        verifies each kept document again, timing every equation (Checker.check).

To compare with an older version, export it (``git archive COMMIT | tar -x -C DIR``), make
``DIR2/backprop/{derive,verify}`` links to ``DIR/{derive,verify}`` and run ``time`` with
``PYTHONPATH=DIR2``: the plain path finder comes before the editable install's.
"""
from __future__ import annotations

import json
import statistics
import sys
import time


def record(out: str, tests: list[str]) -> None:
    import pytest

    import backprop.verify as v

    docs: list = []
    real = v.check_document

    def recording(text, name="<input>", spec=None, notation=v.DEFAULT, explain=False):
        docs.append({"text": text, "spec": None if spec is None else
                     {"layers": list(spec.layers), "activations": list(spec.activations),
                      "loss": spec.loss, "bias": spec.bias}, "notation": notation})
        return real(text, name, spec, notation, explain)

    class Plugin:
        @staticmethod
        def pytest_configure(config):
            v.check_document = recording

    pytest.main(["-q", "-p", "no:cacheprovider", *tests], plugins=[Plugin()])
    with open(out, "w", encoding="utf-8") as f:
        json.dump(docs, f)
    print(f"{len(docs)} documents kept in {out}")


def timed(path: str) -> None:
    import backprop.verify as v
    from backprop.derive.spec import Spec
    from backprop.verify.checker import Checker

    times: list[float] = []
    real = Checker.check

    def timing(self, eq):
        t0 = time.process_time()
        try:
            return real(self, eq)
        finally:
            times.append(time.process_time() - t0)

    Checker.check = timing
    with open(path, encoding="utf-8") as f:
        docs = json.load(f)
    for d in docs:
        spec = None if d["spec"] is None else Spec(layers=tuple(d["spec"]["layers"]),
                                                     activations=tuple(d["spec"]["activations"]),
                                                     loss=d["spec"]["loss"], bias=d["spec"]["bias"])
        try:
            notation = d.get("notation", "notes")  # older versions read the notes' notation only
            v.check_document(d["text"], "<bench>", spec, *([notation] if notation != "notes" else []))
        except Exception as exc:  # noqa: BLE001 - an older version may refuse some input
            print(f"skipped one document: {type(exc).__name__}: {str(exc)[:80]}", file=sys.stderr)
    if not times:
        raise SystemExit("no equation was checked")
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(f"{len(times)} equations: p50 {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
          f"max {times[-1]:.3f} s, total {sum(times):.1f} s")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3:])
    else:
        timed(sys.argv[2])
