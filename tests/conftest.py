"""Shared fixtures: the notes' 2-2-1 derivation, a CLI runner."""
import pytest

from backprop.cli.main import main
from backprop.derive import derive, make_spec


@pytest.fixture(scope="session")
def notes_221():
    """The notes' worked network: 2-2-1, linear, L = (y - ŷ)²."""
    return derive(make_spec("2-2-1", "linear", "se"))


@pytest.fixture
def cli(capsys):
    """Run ``backprop ARGS`` in-process; returns (exit status, stdout, stderr)."""

    def run(*args):
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run
