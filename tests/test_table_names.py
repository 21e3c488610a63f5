"""Per-name decisions live in the tables: no ``if loss == "bce"`` outside them.

Scans every source folder (core/, derive/, codegen/, verify/, train/, pictures/, explain/,
cli/, package/) with ``ast`` for comparisons
whose one side is an activation or loss name (``== "bce"``, ``!= "linear"``,
``in ("bce", "cce")``, and ``in NAMES`` where NAMES is a module-level tuple/list/set of such
names) and names each one as ``path:line: source``.  The two tables themselves
(derive/activations.py, derive/losses.py) are where such decisions belong and are not scanned.

``test_no_name_tests_outside_the_tables`` holds every scanned folder to it; its failure
message lists every offender as ``path:line: source``.
"""
from __future__ import annotations

import ast
from pathlib import Path

from backprop.derive.activations import ACTIVATIONS
from backprop.derive.losses import LOSSES

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("core", "derive", "codegen", "verify", "train", "pictures", "explain", "cli", "package")
TABLES = {"derive/activations.py", "derive/losses.py"}
NAMES = frozenset(ACTIVATIONS) | frozenset(LOSSES)


def _names_in(node: ast.AST) -> set[str]:
    """Table names a literal holds: a string, or a tuple/list/set of strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names_in(e) for e in node.elts)) if node.elts else set()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in ("frozenset", "set", "tuple") and len(node.args) == 1:
        return _names_in(node.args[0])
    return set()


def _module_constants(tree: ast.Module) -> dict[str, set[str]]:
    """Module-level NAME = ("bce", "cce") assignments whose value holds table names."""
    out = {}
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) and stmt.value is not None else []
        for t in targets:
            if isinstance(t, ast.Name) and (found := _names_in(stmt.value)):
                out[t.id] = found
    return out


def _constant_name(node: ast.AST) -> str | None:
    """NAMES or module.NAMES: the name a membership test reads."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def name_tests(path: Path, shared: dict[str, set[str]] | None = None) -> list[tuple[str, int, str]]:
    """(relative path, line, source) of every comparison against a table name in one file;
    ``shared``: name constants of other modules (``metrics.CLASSIFIER_LOSSES``)."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    constants = {**(shared or {}), **_module_constants(tree)}
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        hit = any(_names_in(s) for s in sides) or any(
            isinstance(op, (ast.In, ast.NotIn)) and _constant_name(s) in constants
            for op, s in zip(node.ops, node.comparators))
        if hit:
            found.append((rel, node.lineno, ast.get_source_segment(text, node) or ""))
    return found


def _sources() -> list[Path]:
    return [path for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))
            if path.relative_to(ROOT).as_posix() not in TABLES]


def offenders() -> list[tuple[str, int, str]]:
    """Every name test outside the tables, over all scanned files."""
    paths = _sources()
    shared: dict[str, set[str]] = {}
    for path in paths:
        shared.update(_module_constants(ast.parse(path.read_text(encoding="utf-8"))))
    return [hit for path in paths for hit in name_tests(path, shared)]


def test_the_scanner_finds_what_it_should():
    """The scanner itself, on a crafted module: each spelling of a name test is found, and a
    comparison with a string that is no table name is not."""
    src = ('LOSSY = ("bce", "cce")\n'
           'def f(loss, act):\n'
           '    if loss == "bce": pass\n'
           '    if act in ("relu", "elu"): pass\n'
           '    if loss not in LOSSY: pass\n'
           '    if "sigmoid" != act: pass\n'
           '    if loss == "other": pass\n')
    path = ROOT / "tests" / "_scanner_probe.py"
    path.write_text(src, encoding="utf-8")
    try:
        lines = [line for _, line, _ in name_tests(path)]
    finally:
        path.unlink()
    assert lines == [3, 4, 5, 6]


def test_the_scan_covers_every_folder():
    """The scan reads the files that used to decide by name (so an empty result means clean,
    not unread), and leaves out only the two tables."""
    scanned = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"train/onestep.py", "train/data.py", "cli/commands/predict.py", "derive/advice.py",
            "verify/corpus/build.py", "codegen/render.py"} <= scanned
    assert not scanned & TABLES


def test_no_name_tests_outside_the_tables():
    """Every folder asks the tables' columns (LOSSES[name].targets,
    .one_hot, .canonical, .kink; ACTIVATIONS' elementwise, keeps_sign, latex commands,
    by_spelling); a new ``== "name"`` anywhere there fails here."""
    found = [f"{p}:{line}: {src}" for p, line, src in offenders()]
    assert not found, "per-name decisions outside the tables:\n" + "\n".join(found)
