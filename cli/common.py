"""Pieces every subcommand shares: the spec flags, argument types, JSON output."""
from __future__ import annotations

import argparse
import json
import sys

from backprop.core import init_schemes
from backprop.core.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec, load_toml, make_spec
from backprop.derive.activations import ACTIVATIONS
from backprop.derive.losses import LOSSES
from backprop.train import examples, metrics, runner
from backprop.train.prepare import CLASSIFIER_DEFAULTS, DEFAULTS


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """--spec FILE, or --layers/--activations/--loss/--no-bias (default: the notes' 2-2-1)."""
    g = parser.add_argument_group("network (default: the notes' 2-2-1 linear network, loss se)")
    g.add_argument("--spec", metavar="FILE", help="TOML spec: layers = [2, 2, 1], activations = "
                   '["linear", "linear"], loss = "se", bias = true')
    g.add_argument("--layers", metavar="W-W-...", help="layer widths, input first, e.g. 5-4-3-2-1")
    g.add_argument("--activations", metavar="NAME[,NAME...]",
                   help="one activation per non-input layer, or one name for all (default "
                   f"{NOTES_2_2_1['activations'][0]}): {', '.join(ACTIVATIONS)}")
    g.add_argument("--loss", metavar="NAME",
                   help=", ".join(f"{name} (default)" if name == NOTES_2_2_1["loss"] else name
                                  for name in LOSSES))
    g.add_argument("--no-bias", action="store_true", help="no bias terms")


#: The flags that name a network (with none of them the default, or a model file's own, is used).
NETWORK_FLAGS = ("spec", "layers", "activations", "loss", "no_bias")


def network_given(args: argparse.Namespace) -> bool:
    """Whether any flag names a network (--spec, --layers, --activations, --loss, --no-bias)."""
    return any(getattr(args, flag, None) for flag in NETWORK_FLAGS)


def spec_from_args(args: argparse.Namespace) -> Spec:
    """The Spec the flags describe; --spec may not be mixed with the other network flags."""
    flags = [f for f in ("layers", "activations", "loss") if getattr(args, f, None)]
    if getattr(args, "spec", None):
        if flags or getattr(args, "no_bias", False):
            raise UserError(f"--spec cannot be combined with --{', --'.join(flags or ['no-bias'])}")
        return load_toml(args.spec)
    if not flags and not getattr(args, "no_bias", False):
        return Spec(**NOTES_2_2_1)
    return make_spec(args.layers or "2-2-1", args.activations or "linear", args.loss or "se",
                     bias=not args.no_bias)


def add_data_arguments(parser) -> None:
    """--data/--target/--features/--example/--standardise, for train and compare-gd."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", metavar="CSV", help="CSV file with a header row of column names")
    g.add_argument("--target", metavar="COL", action="append",
                   help="target column(s); repeat or separate with commas")
    g.add_argument("--features", metavar="COL", action="append",
                   help="feature columns (default: every column that is not a target)")
    g.add_argument("--example", metavar="NAME", choices=sorted(examples.EXAMPLES),
                   help=f"a built-in table: {', '.join(examples.EXAMPLES)} (features "
                   "standardised; the notes' tables train the notes' 2-2-1 network, iris a 4-8-3 "
                   "classifier tested on 30 %% of the flowers)")
    g.add_argument("--standardise", "--standardize", action="store_true",
                   help="rescale every feature to mean 0, std 1 (needed for IQ-sized columns)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float type of the trainer and the data (default float64)")


def add_backend_argument(parser) -> None:
    """--backend: the generated trainer's engine (codegen/backends.py's table)."""
    from backprop.codegen.backends import BACKENDS, DEFAULT

    parser.add_argument("--backend", choices=list(BACKENDS), default=DEFAULT,
                        help="the generated trainer's engine: numpy (default), numba (the SGD "
                        "epoch compiled; pip install -e '.[numba]'), jax (jitted; '.[jax]'): the "
                        "same derived gradients, the same model file")


def add_run_arguments(parser, gd: bool = True, classifiers: bool = False) -> None:
    """--epochs/--lr/--gd/--batch-size/--seed/--init; ``classifiers``: the help names the
    classifier defaults too (train applies them, compare-gd does not)."""
    c = CLASSIFIER_DEFAULTS
    also = lambda key, fmt="": (f"; {c[key]:{fmt}} for {'/'.join(metrics.classifiers())} classifiers"
                                if classifiers else "")
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"passes over the data (default {DEFAULTS['epochs']}{also('epochs')})")
    g.add_argument("--lr", type=float, metavar="η",
                   help=f"learning rate (default {DEFAULTS['lr']:g}{also('lr', 'g')})")
    if gd:
        g.add_argument("--gd", choices=list(runner.GD_VARIANTS),
                       help=f"batch, sgd (one row per update) or minibatch (default "
                       f"{DEFAULTS['gd']}{also('gd')})")
    g.add_argument("--batch-size", type=int, metavar="B",
                   help="rows per mini-batch; implies --gd minibatch (default 32, or a quarter "
                   "of a small table)")
    g.add_argument("--seed", type=nonnegative_int,
                   help="seed for the initial weights, the shuffling and --test-split")
    g.add_argument("--init", choices=list(runner.INIT_SCHEMES),
                   help=f"initial weights: {init_schemes.help_text()}")


def nonnegative_int(text: str) -> int:
    """argparse type for seeds and counts that may be 0: an int >= 0 (NumPy refuses negative
    seeds with a traceback deep in the run); anything else is argparse's one-line error."""
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def print_json(obj) -> None:
    """Scripts read this: UTF-8, sorted keys, one document on stdout."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def check_outputs(outputs, plot: str | None, force: bool) -> None:
    """Before any work: the plot's format known by its suffix, every output writable and not
    there already (without --force), and matplotlib installed when a plot is asked for."""
    from backprop.core import files

    if plot:
        files.image_format(plot)
    files.preflight([*outputs, plot], force=force)
    if plot:
        from backprop.pictures.plots import require_matplotlib
        require_matplotlib()
