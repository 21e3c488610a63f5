"""Draw the network as the notes do: inputs x_i, nodes O_kj, edges w^k_ij, biases b_kj.

Without parameters the diagram shows the names only.  With --params (a `train
--params-out` model file, or a `step` JSON file) every edge shows its weight, coloured by
sign and drawn thicker when larger.  A model file names its own network (no network flags
needed) and, when it was trained with --standardise, its mean and std are applied to --x
as in training (the title says so).  With one data row (--x, and --y for the gradients) every node shows
its value and every weight and bias its ∂L/∂w, computed by the spec's generated trainer:
one step of backprop on the picture.  Without --params, --x uses the notes' starting point
(all weights 1, biases 0) unless --init says otherwise.  Up to 40 nodes; no two labels
overlap: those that do not fit on the diagram go to a table beside it.

examples:
  backprop draw -o net.png                                   # the notes' 2-2-1 network
  backprop draw --x 80,8 --y 5 -o step.png                   # first student, w = 1, b = 0
  backprop draw --spec net.toml --params p.json --x 80,8 --y 5 -o net.png
  backprop draw --params iris.json --x 5.1,3.5,1.4,0.2 --y 1,0,0 -o iris.png   # a model file
  backprop draw --layers 5-4-3-2-1 --activations sigmoid -o deep.svg
"""
from __future__ import annotations

import numpy as np

from backprop.core.errors import UserError
from backprop.core import files
from backprop.pictures import draw, plots
from backprop.train import row, runner

from backprop.derive.spec import NOTES_2_2_1, Spec
from backprop.train.model import load_model

from ..common import add_spec_arguments, nonnegative_int, spec_from_args

NAME = "draw"
HELP = "draw the network (nodes O_kj, edges w^k_ij), with values and gradients of one row"
ORDER = 46


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--params", metavar="JSON", help="parameters to write on the edges: a model "
                        "file (its network and standardisation are used) or a plain params file")
    parser.add_argument("--init", choices=list(runner.INIT_SCHEMES), default=None,
                        help="parameters when --params is not given (with --x: default ones)")
    parser.add_argument("--seed", type=nonnegative_int, help="seed for --init")
    parser.add_argument("--x", metavar="V,V,...", help="one input row, e.g. 80,8")
    parser.add_argument("--y", metavar="V,...", help="its target, e.g. 5 (adds loss and gradients)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="image file: .png, .svg or .pdf")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def _vector(text: str, n: int, flag: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.replace(" ", "").split(",") if v], dtype=float)
    except ValueError:
        raise UserError(f"{flag} takes numbers separated by commas, got {text!r}") from None
    if len(values) != n:
        raise UserError(f"{flag} has {len(values)} value(s); the network needs {n}")
    if not np.isfinite(values).all():
        raise UserError(f"{flag} holds NaN or infinity: {text!r}")
    return values


def _network_flags(args) -> bool:
    return bool(args.spec or args.layers or args.activations or args.loss or args.no_bias)


def _model(args):
    """The --params file as a Model: checked against the network flags when given; else its
    own spec, or the notes' 2-2-1 for an old plain params file (which names no network)."""
    if _network_flags(args):
        return load_model(args.params, spec_from_args(args))
    return load_model(args.params, None, default=Spec(**NOTES_2_2_1))  # a plain file: the notes' net


def run(args) -> int:
    fmt = files.image_format(args.output)
    files.preflight([args.output], force=args.force)
    plots.require_matplotlib()
    model = _model(args) if args.params else None
    spec = model.spec if model is not None else spec_from_args(args)
    draw.check_size(spec)
    if args.y is not None and args.x is None:
        raise UserError("--y needs the row's inputs too: give --x")
    x = _vector(args.x, spec.n_inputs, "--x") if args.x is not None else None
    y = _vector(args.y, spec.n_outputs, "--y") if args.y is not None else None
    values = row.Values()
    if model is not None or args.init or x is not None:
        trainer = runner.load_trainer(spec)
        if model is not None:
            params = model.params
        else:
            params = runner.init_params(trainer, args.init or "ones", seed=args.seed)
        values = row.compute(trainer, params, x, y, model=model)
    written = draw.draw(spec, values, args.output, fmt=fmt, force=args.force)
    print(f"wrote {written}")
    return 0
