"""The table of bad inputs: every one gives exit status 2 and one line on stderr.

One list, two users: ``tests/test_hardening_inputs.py`` runs every case and checks the
status, the single line and the expected words; ``python tests/bad_inputs.py --markdown``
runs them too and prints the Markdown table that ``docs/TROUBLESHOOTING.md`` holds (a test
checks the file is up to date, so the docs cannot drift from what the tool says).

A case: a name, the files it needs (name -> text or bytes), the command line (relative
paths, run in a scratch folder) and words the message must contain.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

GOOD_SPEC = 'layers = [2, 1]\nactivations = ["linear"]\nloss = "se"\n'
GOOD_CSV = "a,b,y\n1,2,3\n2,3,5\n3,1,4\n"
TRAIN = ["train", "--layers", "2-1", "--data", "d.csv", "--target", "y", "--epochs", "1", "-q"]
RESUME = ["train", "--layers", "2-1", "--data", "d.csv", "--target", "y", "--epochs", "1", "-q",
          "--resume", "p.json"]


#: The file each kind of case is about.
KIND_FILE = {"TOML": "net.toml", "CSV": "d.csv", "JSON": "p.json"}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # TOML, CSV or JSON
    files: dict = field(default_factory=dict)
    argv: tuple = ()
    expect: tuple = ()  # words the one-line message contains
    shown: str = ""  # what the table shows as the input, when it is not a file of the case

    def shown_input(self) -> str:
        """The bad file's contents, short, for the table."""
        if self.shown:
            return self.shown
        value = self.files.get(KIND_FILE[self.kind])
        if value is None:
            return "(no such file)"
        if isinstance(value, bytes):
            value = "".join(chr(b) if 32 <= b < 127 or b == 10 else f"\\x{b:02x}" for b in value)
        if value == "":
            return "(empty file)"
        text = value if len(value) <= 60 else value[:57] + "…"
        return "`" + text.replace("\n", "⏎").replace("|", "\\|").replace("`", "'") + "`"


def toml(name, text, *expect):
    return Case(name, "TOML", {"net.toml": text}, ("derive", "--spec", "net.toml"), expect)


def csv(name, text, *expect, argv=TRAIN):
    return Case(name, "CSV", {"d.csv": text}, tuple(argv), expect)


def params(name, text, *expect):
    return Case(name, "JSON", {"d.csv": GOOD_CSV, "p.json": text}, tuple(RESUME), expect)


CASES: list[Case] = [
    # -- TOML specs
    toml("not TOML", "layers = [2, 2, 1\n", "not valid TOML"),
    toml("unknown key", 'layer = [2, 1]\nactivations = ["linear"]\nloss = "se"\n', "unknown key(s) layer"),
    toml("missing key", 'layers = [2, 1]\nactivations = ["linear"]\n', "missing key 'loss'"),
    toml("layers not a list", 'layers = "2-1"\nactivations = ["linear"]\nloss = "se"\n', "'layers' must be a list"),
    toml("zero width", 'layers = [2, 0, 1]\nactivations = ["linear"]\nloss = "se"\n', "positive integers"),
    toml("unknown activation", 'layers = [2, 1]\nactivations = ["sigmoidd"]\nloss = "se"\n',
         "unknown activation 'sigmoidd'"),
    toml("too many activations", 'layers = [2, 1]\nactivations = ["tanh", "tanh"]\nloss = "se"\n',
         "2 activation(s) given for 1"),
    toml("softmax of one node", 'layers = [2, 1]\nactivations = ["softmax"]\nloss = "cce"\n', "width 1"),
    toml("bias not a boolean", GOOD_SPEC + 'bias = "yes"\n', "bias must be true or false"),
    toml("unknown loss", 'layers = [2, 1]\nactivations = ["linear"]\nloss = "xent"\n', "unknown loss 'xent'"),
    toml("residual across widths", 'layers = [2, 3, 1]\nactivations = ["relu", "linear"]\nloss = "se"\n'
         'residual = [true]\n', "residual on layer 1", "widths must match"),
    toml("residual flags miscounted", 'layers = [2, 2, 2, 1]\nactivations = "relu"\nloss = "se"\n'
         'residual = [true]\n', "1 flag(s) for 2 hidden layer(s)"),
    toml("unknown optimizer", GOOD_SPEC + '[optimizer]\nname = "adamw"\n', "unknown optimizer 'adamw'"),
    toml("optimizer setting it lacks", GOOD_SPEC + '[optimizer]\nname = "sgd"\nbeta1 = 0.9\n',
         "sgd takes lr, weight_decay, not beta1"),
    toml("nested 20 000 deep", "layers = " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    toml("spec of 200 kB", "# a comment\n" * 20_000, "over 100 kB"),
    Case("spec is a device", "TOML", {}, ("derive", "--spec", "/dev/zero"), ("is a device",), "`/dev/zero`"),
    Case("spec not UTF-8", "TOML", {"net.toml": b"\xff\xfe\x00layers"}, ("derive", "--spec", "net.toml"),
         ("cannot read spec file",)),
    Case("spec file missing", "TOML", {}, ("derive", "--spec", "net.toml"), ("does not exist",)),
    # -- CSV data
    csv("empty file", "", "is empty"),
    csv("header only", "a,b,y\n", "no data rows"),
    csv("no header row", "1,2,3\n2,3,5\n", "looks like numbers"),
    csv("ragged row", "a,b,y\n1,2,3\n2,3\n", "line 3", "cells"),
    csv("text in a number column", "a,b,y\n1,2,3\n2,abc,5\n", "'abc' is not a number"),
    csv("empty cell", "a,b,y\n1,2,3\n2,,5\n", "empty cell"),
    csv("NaN value", "a,b,y\n1,2,3\n2,nan,5\n", "not a finite number"),
    csv("infinite value", "a,b,y\n1,2,3\n2,inf,5\n", "not a finite number"),
    csv("duplicate column", "a,a,y\n1,2,3\n2,3,5\n", "appear twice"),
    csv("missing target column", "a,b,z\n1,2,3\n2,3,5\n", "no target column 'y'"),
    csv("semicolon-separated", "a;b;y\n1;2;3\n2;3;5\n", "no target column 'y'"),
    csv("not UTF-8", b"a,b,y\n1,2,3\n\xff\xfe,3,5\n", "d.csv"),
    csv("features do not fit the network", "a,b,c,y\n1,2,3,4\n2,3,4,5\n", "3 feature column(s)", "2-1"),
    Case("data is a device", "CSV", {}, tuple(TRAIN[:3]) + ("--data", "/dev/zero") + tuple(TRAIN[5:]),
         ("not a regular file",), "`/dev/zero`"),
    csv("a cell of 200 000 characters", "a,b,y\n1,2,\"" + "9" * 200_000 + "\"\n", "cannot read it as a CSV table"),
    csv("bce target with three classes", "a,b,y\n1,2,3\n2,3,5\n3,1,4\n", "bce needs two classes",
        argv=["train", "--layers", "2-1", "--activations", "sigmoid", "--loss", "bce", "--data", "d.csv",
              "--target", "y", "-q"]),
    # -- JSON parameters (--resume, the shape --params-out writes)
    params("params not JSON", "{W1: [[1], [2]]}", "not valid JSON"),
    params("params not an object", "[1, 2, 3]", "p.json", "object"),
    params("params missing a matrix", '{"W1": [[1], [1]]}', "p.json", "b1"),
    params("params of the wrong shape", '{"W1": [[1, 1]], "b1": [0]}', "p.json", "W1", "(1, 2)", "(2, 1)"),
    params("params with text", '{"W1": [["one"], [1]], "b1": [0]}', "p.json", "W1", "number"),
    params("params with NaN", '{"W1": [[NaN], [1]], "b1": [0]}', "p.json", "W1", "finite"),
    params("params nested 100 000 deep", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    Case("params are a device", "JSON", {"d.csv": GOOD_CSV}, tuple(RESUME[:-1]) + ("/dev/zero",),
         ("is a device",), "`/dev/zero`"),
    Case("params file missing", "JSON", {"d.csv": GOOD_CSV}, tuple(RESUME), ("does not exist",)),
    csv("quoted line break in the header", '"a\nb",c,y\n1,2,3\n2,3,5\n', "line 1", "runs onto the next line"),
    Case("params file of 2 MB", "JSON", {"d.csv": GOOD_CSV, "p.json": " " * 2_000_000 + "{}"}, tuple(RESUME),
         ("over 1.001 MB", "is this the right file"), "2 MB of spaces, then `{}`"),
    # -- command-line flags (kind "flags": no file, the bad value is on the command line)
    Case("width in superscript digits", "flags", {}, ("derive", "--layers", "2-²-1"), ("digits 0-9",),
         "`--layers 2-²-1`"),
    Case("a width of 101 digits", "flags", {}, ("count", "--layers", "2-" + "9" * 101 + "-1"),
         ("101 digits", "at most 100 digits"), "`--layers 2-99…9-1` (101 nines)"),
    Case("size estimate past a float", "flags", {}, ("derive", "--layers", "2-" + "-".join(["9" * 80] * 4) + "-1"),
         ("3e+160 parameters", "at most 1,000,000 parameters", "--vectorised"), "four widths of 80 nines"),
    Case("negative seed", "flags", {}, ("vanishing", "--seed", "-1"), ("whole number >= 0",), "`--seed -1`"),
]


def run_case(case: Case) -> tuple[int, str]:
    """(exit status, stderr) of the case, run in-process in a fresh scratch folder."""
    from backprop.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        for name, content in case.files.items():
            path = Path(tmp) / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        old = os.getcwd()
        err, out = io.StringIO(), io.StringIO()
        try:
            os.chdir(tmp)
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    status = main(list(case.argv))
                except SystemExit as exc:  # argparse usage errors
                    status = exc.code
        finally:
            os.chdir(old)
    return status, err.getvalue()


def markdown() -> str:
    """The table for docs/TROUBLESHOOTING.md, from running every case now."""
    lines = [
        "| # | Kind | Bad input | Command | Exit | Message (stderr, one line) |",
        "|---|------|-----------|---------|------|----------------------------|",
    ]
    for n, case in enumerate(CASES, start=1):
        status, err = run_case(case)
        message = err.strip().replace("|", "\\|").replace("`", "'")
        lines.append(f"| {n} | {case.kind} | {case.name}: {case.shown_input()} | "
                     f"`backprop {' '.join(case.argv)}` | {status} | {message} |")
    return "\n".join(lines) + "\n"


HEADER = """# Troubleshooting: bad input files

Every bad spec (TOML), data table (CSV) or parameter file (JSON) stops `backprop` with **exit
status 2** and **one line** on stderr naming the file, where the problem is and, where it can,
the fix; never a traceback.  The table below is generated by running each case
(`python tests/bad_inputs.py --markdown`); `tests/test_hardening_inputs.py` runs the same
cases and fails when this file is out of date.

"""


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python tests/bad_inputs.py --markdown  (prints docs/TROUBLESHOOTING.md)")
    sys.stdout.write(HEADER + markdown())
