"""Draw the network as the notes do: inputs x_i, nodes O_kj, edges w^k_ij, biases b_kj.

Without parameters the diagram shows the names only.  With --params (a `train
--params-out` or `step` JSON file) every edge shows its weight, coloured by sign and drawn
thicker when larger.  With one data row (--x, and --y for the gradients) every node shows
its value and every weight and bias its ∂L/∂w, computed by the spec's generated trainer:
one step of backprop on the picture.  Without --params, --x uses the notes' starting point
(all weights 1, biases 0) unless --init says otherwise.  Up to 40 nodes.

examples:
  backprop draw -o net.png                                   # the notes' 2-2-1 network
  backprop draw --x 80,8 --y 5 -o step.png                   # first student, w = 1, b = 0
  backprop draw --spec net.toml --params p.json --x 80,8 --y 5 -o net.png
  backprop draw --layers 5-4-3-2-1 --activations sigmoid -o deep.svg
"""
from __future__ import annotations

import numpy as np

from backprop.derive.errors import UserError
from backprop.train import draw, files, runner

from ..common import add_spec_arguments, nonnegative_int, spec_from_args
from ..params import load_params

NAME = "draw"
HELP = "draw the network (nodes O_kj, edges w^k_ij), with values and gradients of one row"
ORDER = 46


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--params", metavar="JSON", help="parameters to write on the edges")
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


def run(args) -> int:
    fmt = files.image_format(args.output)
    files.preflight([args.output], force=args.force)
    from backprop.train.plots import require_matplotlib
    require_matplotlib()
    spec = spec_from_args(args)
    draw.check_size(spec)
    if args.y is not None and args.x is None:
        raise UserError("--y needs the row's inputs too: give --x")
    x = _vector(args.x, spec.n_inputs, "--x") if args.x is not None else None
    y = _vector(args.y, spec.n_outputs, "--y") if args.y is not None else None
    values = draw.Values()
    if args.params or args.init or x is not None:
        trainer = runner.load_trainer(spec)
        if args.params:
            params = load_params(args.params, spec)
        else:
            params = runner.init_params(trainer, args.init or "ones", seed=args.seed)
        values = draw.compute(trainer, params, x, y)
    written = draw.draw(spec, values, args.output, fmt=fmt, force=args.force)
    print(f"wrote {written}")
    return 0
