"""Shared fixtures: the notes' 2-2-1 derivation, a CLI runner."""
import os

import pytest
from hypothesis import settings

from backprop.cli.main import main
from backprop.derive import derive, make_spec

# Property tests draw the same examples on every run and every machine: CI must not meet a
# new (possibly slow) network that no one has seen locally.  Fuzzing for new cases is a
# deliberate act: HYPOTHESIS_PROFILE=explore.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


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
