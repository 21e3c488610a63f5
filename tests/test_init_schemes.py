"""The initialisation schemes come from one table (backprop.core.init_schemes): the generated
trainer's functions and SCHEMES, runner's INIT_SCHEMES and "small", and the --init choices."""
import argparse

import numpy as np
import pytest

from backprop.cli.commands import step as step_command, train as train_command
from backprop.core import init_schemes
from backprop.core.init_schemes import SCHEMES, TRAINER, InitScheme
from backprop.derive import make_spec
from backprop.train import onestep, runner

SPEC = make_spec("3-40-30-2", "relu,relu,linear", "se")


@pytest.fixture(scope="module")
def trainer():
    return runner.load_trainer(SPEC)


def test_the_trainer_defines_exactly_the_tables_schemes(trainer):
    assert trainer.SCHEMES == TRAINER == ("glorot", "he", "ones", "zeros")
    assert tuple(runner.INIT_SCHEMES) == tuple(SCHEMES) == TRAINER + ("small",)
    assert onestep.SCHEMES == TRAINER
    for name in TRAINER:  # the function rendered from the entry, its docstring the entry's doc
        assert getattr(trainer, f"_{name}").__doc__ == SCHEMES[name].doc


def test_each_scheme_draws_what_its_entry_says(trainer):
    W = {name: runner.init_params(trainer, name, seed=3)["W1"] for name in SCHEMES}
    assert (W["ones"] == 1).all() and (W["zeros"] == 0).all()
    limit = np.sqrt(6.0 / (3 + 40))
    assert np.abs(W["glorot"]).max() <= limit and np.abs(W["glorot"]).max() > 0.9 * limit
    assert W["he"].std() == pytest.approx(np.sqrt(2.0 / 3), rel=0.25)
    # small: N(0, 0.01²) drawn over the trainer's zeros, weights in parameter order, biases 0
    rng = np.random.default_rng(3)
    small = runner.init_params(trainer, "small", seed=3)
    assert np.array_equal(small["W1"], 0.01 * rng.standard_normal((3, 40)))
    assert np.array_equal(small["W2"], 0.01 * rng.standard_normal((40, 30)))
    assert not small["b1"].any() and not small["b3"].any()
    assert np.array_equal(runner.init_params(trainer, "glorot", seed=3)["W2"],
                          trainer.init_params(seed=3, scheme="glorot")["W2"])


def test_an_unknown_scheme_is_one_line_naming_the_tables():
    with pytest.raises(Exception, match=r"unknown --init 'xavier'; choose glorot, he, ones, zeros, small"):
        runner.init_params(None, "xavier")


def _init_flag(command):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return next(a for a in parser._actions if a.dest == "init")


def test_the_cli_choices_and_help_read_the_table():
    train_init, step_init = _init_flag(train_command), _init_flag(step_command)
    assert list(train_init.choices) == list(SCHEMES) and list(step_init.choices) == list(TRAINER)
    assert init_schemes.help_text() in train_init.help
    assert init_schemes.help_text() == ("glorot (default), he, ones (the notes: w=1, b=0), zeros, "
                                        "small (N(0, 0.01²))")


def test_an_entry_is_in_the_trainer_or_drawn_by_runner_not_both():
    with pytest.raises(ValueError, match="one of them"):
        InitScheme("both", "doc", ("return 0",), std=0.1)
    with pytest.raises(ValueError, match="one of them"):
        InitScheme("neither", "doc")
