"""Hardening: no user text reaches eval/exec/sympify/parse_expr or a template unescaped.

Two kinds of proof:

* an AST walk over the package source that fails on any call that can turn text into code
  (``eval``, ``exec``, ``compile``, ``__import__``, ``parse_expr``, ``sympify``/``S`` without
  ``strict=True``, Jinja2 ``Template``/``from_string``, ``os.system``, ``subprocess``,
  ``pickle``), with a short allowlist of calls that run only the package's own text;
* behaviour: hostile names (CSV headers, ``--target``, ``-o`` module names, spec entries) give
  a working module or a one-line error, never executed text.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest

from backprop.codegen import BACKENDS, render_trainer
from backprop.derive import make_spec

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ["derive", "verify", "codegen", "train", "cli", "generated"]

#: A name that, pasted into Python source unquoted, would run a shell command.
PWN = 'x"); import os; os.system("touch PWNED'
PWN_NAMES = [
    PWN,
    "y'''; import os; os.system('touch PWNED') #",
    'z"""\nimport os\nos.system("touch PWNED")\n"""',
    "{{ 7*7 }}{% raw %}",
    "__import__('os').system('touch PWNED')",
    "ŷ unicode é",
]

#: Calls that turn text into code: any occurrence fails the walk (unless allowlisted below).
BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}  # bare names (re.compile is fine)
FORBIDDEN = {"parse_expr", "system", "popen", "Template", "from_string", "check_output", "Popen",
             "getoutput", "spawnl", "execv", "execvp"}
#: Module attributes that are forbidden as a whole.
FORBIDDEN_MODULES = {"subprocess", "pickle", "marshal"}
#: Calls that execute text the package itself wrote, never user text: (file, function, call).
ALLOWED = {
    # lambdify prints SymPy expressions built from the activation table / notation symbols
    ("derive/activations.py", "numpy_forward", "lambdify"),
    ("derive/activations.py", "numpy_derivative", "lambdify"),
    ("derive/derivation.py", "_compiled", "lambdify"),
    # the batch-norm backward and the optimiser rules: SymPy expressions of the tables, no text
    ("derive/batchnorm.py", "_compiled", "lambdify"),
    ("derive/optimizers.py", "trace", "lambdify"),
    # verify's batch-norm checker evaluates the tables' g, g', loss and the derived δ in mpmath
    ("verify/batch_norm_form.py", "_activation", "lambdify"),
    ("verify/batch_norm_form.py", "_loss_functions", "lambdify"),
    ("verify/batch_norm_form.py", "_bn_dz", "lambdify"),
    # slip candidates and a parsed claim: SymPy trees whose symbols are network names only (the
    # reader refuses any other name and any undefined function), never text
    ("verify/misconceptions.py", "values", "lambdify"),
    # the corpus generator differentiates derived truths (no user input at all)
    ("verify/corpus/build.py", "_differs", "lambdify"),
    # the generated trainer: validated identifiers and printed SymPy only (tests below)
    ("codegen/__init__.py", "import_source", "exec_module"),
    # subcommand discovery: module names from pkgutil over backprop.cli.commands
    ("cli/main.py", "build_parser", "import_module"),
    # numpy.random preloaded before the SIGTERM/SIGHUP handlers: a constant tuple of module names
    ("cli/main.py", "_signals_unwind", "import_module"),
}
WATCHED_ALLOWED = {call for _, _, call in ALLOWED}


def _calls(path: Path):
    """(enclosing function, call name, node) for every call in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    stack: list[str] = []

    class V(ast.NodeVisitor):
        def visit_FunctionDef(self, node):
            stack.append(node.name)
            self.generic_visit(node)
            stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if isinstance(f, ast.Attribute) and name in BUILTINS:
                name = f"<attribute {name}>"
            out.append((stack[-1] if stack else "<module>", name, node))
            self.generic_visit(node)

    out: list = []
    V().visit(tree)
    return tree, out


def _source_files():
    files = [p for d in PACKAGE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 30
    return files


def test_no_text_to_code_calls_in_the_package():
    problems = []
    seen_allowed = set()
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        tree, calls = _calls(path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any((m or "").split(".")[0] in FORBIDDEN_MODULES for m in mods):
                    problems.append(f"{rel}:{node.lineno}: imports {mods}")
        for func, name, node in calls:
            where = f"{rel}:{node.lineno} in {func}()"
            if name in FORBIDDEN or name in BUILTINS:
                problems.append(f"{where}: {name}(...)")
            elif name in ("sympify", "S"):
                strict = any(k.arg == "strict" and isinstance(k.value, ast.Constant) and k.value.value is True
                             for k in node.keywords)
                if not strict:
                    problems.append(f"{where}: {name}(...) without strict=True parses strings")
            elif name in WATCHED_ALLOWED:
                if (rel, func, name) in ALLOWED:
                    seen_allowed.add((rel, func, name))
                else:
                    problems.append(f"{where}: {name}(...) is not on the allowlist")
    assert problems == [], "\n".join(problems)
    # the allowlist stays honest: every entry still exists
    assert seen_allowed == ALLOWED, ALLOWED - seen_allowed


def test_only_parse_latex_reads_user_text_and_it_is_the_antlr_parser():
    """verify hands user LaTeX only to SymPy's ANTLR LaTeX parser (no eval inside)."""
    hits = []
    for path in _source_files():
        for func, name, node in _calls(path)[1]:
            if name == "parse_latex":
                hits.append(path.relative_to(ROOT).as_posix())
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("backend"), ast.Constant) and kw["backend"].value == "antlr"
    assert set(hits) <= {"verify/latex_input.py", "verify/delta_rule.py"}
    import sympy.parsing.latex._parse_latex_antlr as antlr_module

    src = Path(antlr_module.__file__).read_text(encoding="utf-8")
    assert "parse_expr(" not in src and "eval(" not in src and "sympify(" not in src


# -- names that end up in generated code ---------------------------------------------------------

@pytest.mark.parametrize("bad", PWN_NAMES)
def test_spec_names_are_table_keys_never_code(tmp_path, cli, bad):
    spec = tmp_path / "net.toml"
    spec.write_text(f"layers = [2, 1]\nactivations = [{json.dumps(bad)}]\nloss = \"se\"\n", encoding="utf-8")
    status, out, err = cli("generate", "--spec", str(spec), "-o", str(tmp_path / "t.py"))
    assert status == 2 and "unknown activation" in err and err.count("\n") == 1
    status, out, err = cli("generate", "--layers", "2-1", "--loss", bad, "-o", str(tmp_path / "t.py"))
    assert status == 2 and "unknown loss" in err and err.count("\n") == 1
    assert not (tmp_path / "t.py").exists() and not Path("PWNED").exists()


def _import(path: Path, name: str = "hardening_trainer"):
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stem", [n.replace("/", "_").replace("\x00", "") for n in PWN_NAMES])
def test_output_module_names_stay_in_comments(tmp_path, cli, monkeypatch, stem):
    """-o with quotes, newlines, triple quotes, Jinja syntax: the file is written, compiles,
    and the name appears only inside a comment (escaped when not one printable line)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"{stem}.py"
    status, stdout, err = cli("generate", "--layers", "2-2-1", "--activations", "sigmoid", "-o", str(out))
    assert status == 0, err
    source = out.read_text(encoding="utf-8")
    tree = ast.parse(source)  # valid Python
    # the module's top-level statements are imports, constants and defs, nothing else
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "Import", "ImportFrom", "Assign", "FunctionDef", "ClassDef", "If"}
    lines = source.splitlines()
    at = lines.index("# Regenerate with:") + 1
    parts = [lines[at]]
    while parts[-1].endswith(" \\"):  # a long command goes on over lines, as a shell reads it
        at += 1
        parts[-1] = parts[-1][:-2]
        parts.append(lines[at][6:].strip())
    command = " ".join(parts)
    assert command.startswith("#     ") and "backprop generate --layers 2-2-1" in command
    if str(out).isprintable():  # the recorded command runs again as written
        assert shlex.split(command[6:])[-2:] == ["-o", str(out)]
    assert all(line.startswith("#") for line in lines if "PWNED" in line or "7*7" in line)
    module = _import(out)
    assert module.LAYERS == (2, 2, 1)
    assert not (tmp_path / "PWNED").exists()


def test_command_line_in_header_is_one_comment_line():
    spec = make_spec("2-1", "linear", "se")
    for cmd in PWN_NAMES + ["a\nimport os", "b\r\nos.system('x')", "c\x0bd", "e\u2028f"]:
        src = render_trainer(spec, command=cmd)
        ast.parse(src)
        lines = src.splitlines()
        assert lines[1].startswith("# Spec (sha256")
        assert lines[lines.index("# Regenerate with:") + 1].startswith("#     ")


def _hostile_csv(tmp_path: Path) -> Path:
    header = [PWN, "b\"'\\", PWN_NAMES[2].replace("\n", " "), "target {{x}}"]
    rows = [[i % 3, (2 * i) % 5, (i * 7) % 4, (i % 3) + (2 * i) % 5] for i in range(12)]
    import csv

    path = tmp_path / "hostile.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_train_with_hostile_column_names(tmp_path, cli, monkeypatch):
    """Headers are data: train runs, the JSON summary repeats them verbatim, nothing runs."""
    monkeypatch.chdir(tmp_path)
    data = _hostile_csv(tmp_path)
    status, out, err = cli("train", "--data", str(data), "--target", "target {{x}}", "--layers", "3-2-1",
                           "--epochs", "3", "-q", "--json", "--params-out", "p.json")
    assert status == 0, err
    summary = json.loads(out)
    assert summary["features"][0] == PWN and summary["targets"] == ["target {{x}}"]
    assert not (tmp_path / "PWNED").exists()
    # the hostile name as the target: found by exact text, features are the other three
    status, out, err = cli("train", "--data", str(data), "--target", PWN, "--layers", "3-1",
                           "--epochs", "2", "-q", "--json")
    assert status == 0, err
    assert json.loads(out)["targets"] == [PWN]
    # an unknown hostile target: one line, exit 2
    status, out, err = cli("train", "--data", str(data), "--target", PWN + "!", "--layers", "3-1", "-q")
    assert status == 2 and err.count("\n") == 1 and not (tmp_path / "PWNED").exists()


def test_generated_module_main_with_hostile_names(tmp_path, monkeypatch, capsys):
    """The standalone trainer's own --target reads headers as data too."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "trainer.py"
    path.write_text(render_trainer(make_spec("3-2-1", "tanh", "se")), encoding="utf-8")
    module = _import(path, "hardening_trainer_main")
    data = _hostile_csv(tmp_path)
    assert module.main(["--data", str(data), "--target", "target {{x}}", "--epochs", "2",
                        "--out", "params.json"]) == 0
    assert set(json.loads((tmp_path / "params.json").read_text())["params"]) == {"W1", "b1", "W2", "b2"}
    with pytest.raises(SystemExit) as exc:
        module.main(["--data", str(data), "--target", PWN + "?", "--epochs", "1"])
    assert exc.value.code == 2
    assert "has no column" in capsys.readouterr().err
    # a cell past the csv module's limit: a usage error, not a csv.Error traceback
    huge = tmp_path / "huge.csv"
    huge.write_text("a,b,c,y\n1,2,3,\"" + "9" * 200_000 + "\"\n")
    with pytest.raises(SystemExit) as exc:
        module.main(["--data", str(huge), "--epochs", "1"])
    assert exc.value.code == 2 and "field limit" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("command", ["train", "compare-gd"])
def test_plot_titles_with_file_names_are_not_mathtext(tmp_path, cli, command):
    """A data file called d$\\frac$.csv ends up in the plot title: text, not a parse error."""
    pytest.importorskip("matplotlib")
    data = tmp_path / "d$\\frac$.csv"
    data.write_text("a,b,y\n1,2,3\n2,3,5\n3,1,4\n4,4,8\n")
    status, out, err = cli(command, "--data", str(data), "--target", "y", "--layers", "2-1",
                           "--epochs", "2", "--plot", str(tmp_path / "p.png"),
                           *(["-q"] if command == "train" else []))
    assert status == 0, err
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_generated_modules_import_only_numpy_and_stdlib():
    for path in sorted((ROOT / "generated").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        engine = next((b for b in BACKENDS.values() if path.stem.endswith(f"_{b.name}")), BACKENDS["numpy"])
        extra = set(engine.modules) - {"scipy"} | ({"math"} if engine.name == "numba" else set())
        assert mods <= {"argparse", "csv", "json", "os", "sys", "tempfile", "numpy"} | extra, (path, mods)
        names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not names & {"eval", "exec", "compile", "__import__"}, path
    assert "numpy" in sys.modules
