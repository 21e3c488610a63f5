"""verify/ imports one way: its internal import graph (every import, at module level or inside a
function) has no cycle, and the verdict types import nothing of verify.  And the checker turns
only bad input into an "error" verdict: a bug of ours surfaces as its exception."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

VERIFY = Path(__file__).resolve().parent.parent / "verify"
PACKAGE = "backprop.verify"


def _modules() -> dict[str, Path]:
    """verify's modules by short name ('__init__' for the package itself)."""
    return {p.stem: p for p in sorted(VERIFY.glob("*.py"))}


def _target(name: str, modules: dict) -> str:
    """A dotted module inside verify ('' = the package) -> the module it runs."""
    head = name.split(".")[0]
    return head if head in modules else "__init__"


def _imports(path: Path, modules: dict) -> list[tuple[str, int, bool]]:
    """(verify module imported, line, inside a function?) for every import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        inner = id(node) in in_function
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module or ""
            elif node.level == 0 and (node.module or "").split(".")[:2] == PACKAGE.split("."):
                base = (node.module or "")[len(PACKAGE) + 1:]
            else:
                continue  # outside verify (a level-2 import would leave backprop.verify)
            if base:
                found.append((_target(base, modules), node.lineno, inner))
            else:  # from . import a, b: each name a module, or a name of the package
                found.extend((_target(a.name, modules), node.lineno, inner) for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                    found.append((_target(a.name[len(PACKAGE) + 1:], modules), node.lineno, inner))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {t for t, _, _ in _imports(path, modules) if t != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_reader_sees_function_level_imports(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("def f():\n    from .b import x\n    from backprop.verify import c\n")
    (tmp_path / "b.py").write_text("from . import a, thing\nimport backprop.verify.a\n")
    (tmp_path / "c.py").write_text("import re\nfrom backprop.derive import derive\n")
    monkeypatch.setattr(sys.modules[__name__], "VERIFY", tmp_path)
    assert import_graph() == {"a": {"b", "c"}, "b": {"a", "__init__"}, "c": set()}
    assert find_cycle(import_graph()) == ["a", "b", "a"]


def test_verify_imports_have_no_cycle():
    graph = import_graph()
    assert {"__init__", "checker", "delta_rule", "matrix_form", "report", "verdict"} <= set(graph)
    assert graph["checker"] >= {"delta_rule", "matrix_form", "verdict"}  # the edges that once looped back
    assert find_cycle(graph) is None, f"verify/ import cycle: {' -> '.join(find_cycle(graph))}"


def test_verdict_types_import_nothing_of_verify():
    assert import_graph()["verdict"] == set()
    assert "verdict" in import_graph()["report"] and "checker" not in import_graph()["report"]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_verify_modules_import_each_other_at_module_level(name):
    """No import of a verify module inside a function (the way a cycle used to be dodged)."""
    inner = [line for _, line, in_fn in _imports(_modules()[name], _modules()) if in_fn]
    assert inner == [], f"verify/{name}.py imports verify modules inside functions at lines {inner}"


# -- what becomes an "error" verdict ------------------------------------------------------------

D = r"\frac{\partial L}{\partial w^2_{11}}"


def _one(text: str):
    from backprop.verify import verify_text
    return verify_text(text).verdicts[0]


@pytest.mark.parametrize("text, message", [
    (D + " = (1 + ", "unparsable LaTeX"),  # the parser's refusal, with its column
    (D + " = q_{7}", "is not in the 2-2-1 network"),  # the reader's InputError
    ("% count: 0-1 total\n9", "layer widths must be positive integers"),  # a directive's UserError
    (D + " = " + "{" * 41 + "1" + "}" * 41, "nested more than 40 deep"),  # too deep to check
])
def test_bad_input_is_an_error_verdict(text, message):
    v = _one(text)
    assert v.verdict == "error" and message in v.message


@pytest.mark.parametrize("bug", [AttributeError, KeyError, TypeError, ValueError, IndexError, ZeroDivisionError])
def test_a_bug_in_the_checker_surfaces_as_its_exception(bug, monkeypatch):
    from backprop.verify.checker import Checker

    def broken(self, eq, base):
        raise bug("a bug of ours")

    monkeypatch.setattr(Checker, "_check", broken)
    with pytest.raises(bug, match="a bug of ours"):
        _one(D + r" = -2(y - \hat{y}) O_{11}")
    monkeypatch.undo()
    assert _one(D + r" = -2(y - \hat{y}) O_{11}").verdict == "correct"
