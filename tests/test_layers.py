"""The folders import one way: core/ under everything, derive/ under the tools that use it, cli/
on top, and no CLI command reaching into another.  Every import statement of every module is
read with ``ast`` (those inside functions too), relative ones resolved to their full name."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> the package it installs as (pyproject.toml's package-dir).
PACKAGES = {"package": "backprop", "core": "backprop.core", "derive": "backprop.derive",
            "verify": "backprop.verify", "codegen": "backprop.codegen", "train": "backprop.train",
            "pictures": "backprop.pictures", "explain": "backprop.explain", "cli": "backprop.cli"}
#: What each folder may not import (a prefix of the imported module's full name).
FORBIDDEN = {
    "core": ("backprop",),  # all but backprop.core itself: see _broken
    "derive": ("backprop.train", "backprop.codegen", "backprop.verify", "backprop.cli",
               "backprop.explain", "backprop.pictures"),
    **{folder: ("backprop.cli",) for folder in ("codegen", "verify", "explain", "pictures")},
    # training computes; pictures draw what it computed (never the reverse)
    "train": ("backprop.cli", "backprop.pictures"),
}


def _package(path: Path) -> str:
    """backprop.cli.commands for cli/commands/step.py."""
    parts = path.relative_to(ROOT).parent.parts
    return ".".join([PACKAGES[parts[0]], *parts[1:]])


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports, by full name (``from . import x`` gives package.x)."""
    package = _package(path)
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def modules(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "templates" not in p.parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _broken(folder: str, name: str) -> bool:
    """Whether ``folder`` may not import ``name``."""
    if folder == "core" and _within(name, "backprop.core"):
        return False
    return any(_within(name, package) for package in FORBIDDEN[folder])


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_folder_imports_only_what_lies_below_it(folder):
    if not (ROOT / folder).is_dir():
        pytest.skip(f"no {folder}/ in this tree")
    found = modules(folder)
    assert found, f"no modules found in {folder}/"
    wrong = sorted({f"{p.relative_to(ROOT)} imports {name}" for p in found for name in imports(p)
                    if _broken(folder, name)})
    assert wrong == []


def test_no_cli_command_imports_another():
    commands = {p.stem for p in (ROOT / "cli" / "commands").glob("*.py") if p.stem != "__init__"}
    assert {"train", "step", "compare_gd", "explain"} <= commands
    wrong = sorted({f"{p.relative_to(ROOT)} imports {name}" for p in modules("cli/commands")
                    for name in imports(p)
                    if name.startswith("backprop.cli.commands.")
                    and name.split(".")[3] in commands and name.split(".")[3] != p.stem})
    assert wrong == []


def test_the_walker_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The check itself: a relative import inside a function is resolved and caught."""
    fake = ROOT / "cli" / "commands" / "step.py"
    source = "def run():\n    from .train import prepare\n    from ..common import x\n"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    names = imports(fake)
    assert "backprop.cli.commands.train" in names and "backprop.cli.common.x" in names
    assert _broken("train", "backprop.cli.common") and not _broken("core", "backprop.core.errors")
    assert _broken("core", "backprop.derive.spec") and not _broken("derive", "backprop.core.errors")
