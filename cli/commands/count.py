"""Count trainable parameters per layer and in total: weights (width_{k-1} × width_k) plus
biases (width_k) for every non-input layer.

example:
  backprop count --layers 5-4-3-2-1        # 24 + 15 + 8 + 3 = 50
"""
from __future__ import annotations

from ..common import add_spec_arguments, print_json, spec_from_args

NAME = "count"
HELP = "count parameters per layer and in total"
ORDER = 15


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    spec = spec_from_args(args)
    rows = spec.parameter_counts()
    if args.json:
        print_json({"layers": [{"layer": k, "weights": w, "biases": b, "total": w + b}
                               for k, (w, b) in enumerate(rows, start=1)],
                    "total": spec.n_parameters})
        return 0
    for k, (w, b) in enumerate(rows, start=1):
        print(f"layer {k}: {spec.layers[k - 1]}×{spec.layers[k]} weights = {w:>8}"
              f"   biases = {b:>6}   total = {w + b:>8}")
    print(f"total: {' + '.join(str(w + b) for w, b in rows)} = {spec.n_parameters}")
    return 0
