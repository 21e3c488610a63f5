"""Pieces every subcommand shares: the spec flags, argument types, JSON output."""
from __future__ import annotations

import argparse
import json
import sys

from backprop.core.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec, load_toml, make_spec


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """--spec FILE, or --layers/--activations/--loss/--no-bias (default: the notes' 2-2-1)."""
    g = parser.add_argument_group("network (default: the notes' 2-2-1 linear network, loss se)")
    g.add_argument("--spec", metavar="FILE", help="TOML spec: layers = [2, 2, 1], activations = "
                   '["linear", "linear"], loss = "se", bias = true')
    g.add_argument("--layers", metavar="W-W-...", help="layer widths, input first, e.g. 5-4-3-2-1")
    g.add_argument("--activations", metavar="NAME[,NAME...]",
                   help="one activation per non-input layer, or one name for all (default linear)")
    g.add_argument("--loss", metavar="NAME", help="se (default), half_se, mse, bce, cce, hinge")
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
