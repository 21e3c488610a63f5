"""Verdicts laid out for people (text) and for scripts (JSON); nothing here checks anything.

Exit status of a report (``Report.exit_code``), grep-style: 0 every equation correct; 1 some
equation is wrong and every equation could be checked; 2 some equation could not be checked
(an ``error`` verdict: bad input), whatever the others say; the report still lists every
equation.  Bad input that stops everything (a missing file, a bad spec) never gets here:
the CLI prints it as one line and exits 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backprop.derive.spec import Spec

from .verdict import Verdict


@dataclass
class FileReport:
    """The verdicts of one input (a file or equations given on the command line)."""

    name: str
    spec: Spec
    verdicts: list[Verdict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"correct": 0, "wrong": 0, "error": 0}
        for v in self.verdicts:
            out[v.verdict] += 1
        return out


@dataclass
class Report:
    files: list[FileReport]

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for f in self.files for v in f.verdicts]

    @property
    def exit_code(self) -> int:
        kinds = {v.verdict for v in self.verdicts}
        if "error" in kinds:
            return 2
        if "wrong" in kinds:
            return 1
        return 0

    def as_list(self) -> list[dict]:
        """One object per equation: index, source, parameter, verdict, expected_latex,
        counterexample {point, claimed, actual}, message (plus file, line, where, factor,
        method, suggestions, column, misconception {id, label,
        explanation} for a wrong derivative)."""
        out = []
        for f in self.files:
            for v in f.verdicts:
                d = v.as_dict()
                d["file"] = f.name
                if getattr(v, "read_as", None) is not None:  # --explain
                    d["read_as"] = v.read_as
                out.append(d)
        return out

    def text(self) -> str:
        lines = []
        for f in self.files:
            lines.append(f"{f.name}:")
            spec = None
            for v in f.verdicts:
                if v.spec != spec:
                    spec = v.spec
                    lines.append(f"  network: {spec}")
                where = f" ({v.where})" if v.where else ""
                lines.append(f"  [{v.index}] line {v.line}{where}: {v.verdict.upper()}")
                lines.append(f"      {v.source}")
                if getattr(v, "read_as", None):  # --explain
                    lines.append(f"      read as: {v.read_as}")
                if v.verdict == "wrong":
                    if v.expected_latex:
                        lines.append(f"      expected: {v.expected_latex}")
                    if v.message:
                        lines.append(f"      why: {v.message}")
                    if v.misconception:
                        m = v.misconception
                        lines.append(f"      misconception ({m['id']}): {m['label']}: {m['explanation']}")
                    cx = v.counterexample
                    if cx:
                        point = ", ".join(f"{k}={val}" for k, val in cx["point"].items())
                        lines.append(f"      counterexample: at {point}: claimed {cx['claimed']}, "
                                     f"actual {cx['actual']}")
                elif v.verdict == "error":
                    lines.append(f"      error: {v.message}")
                elif v.message:
                    lines.append(f"      {v.message}")
            c = f.counts()
            lines.append(f"  {c['correct']} correct, {c['wrong']} wrong, {c['error']} error")
        return "\n".join(lines) + "\n"
