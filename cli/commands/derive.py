"""Derive every ∂L/∂w and ∂L/∂b of a network with the chain rule and memoisation.

For each parameter: the chain factorisation as the notes write it (each factor with its
value), the memoised form (δ · O), the formula in the notes' vocabulary and the fully
expanded formula; with --vectorised, the matrix form per layer.  Default network: the
notes' 2-2-1 linear network with loss (y - ŷ)².

examples:
  backprop derive
  backprop derive --layers 5-4-3-2-1 --activations sigmoid,sigmoid,sigmoid,linear --loss se
  backprop derive --spec net.toml --format latex
  backprop derive --layers 784-256-128-10 --activations sigmoid,sigmoid,softmax --loss cce --vectorised
"""
from __future__ import annotations

import sys

from backprop.derive import derive, vectorise
from backprop.derive.report import as_dict, as_latex, as_text

from ..common import add_spec_arguments, print_json, spec_from_args

NAME = "derive"
HELP = "derive every gradient (chain, formula, expanded, vectorised)"
ORDER = 10


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--format", choices=["text", "latex", "json"], default="text",
                        help="output format (default text)")
    parser.add_argument("--json", action="store_const", const="json", dest="format",
                        help="same as --format json")
    parser.add_argument("--vectorised", "--vectorized", action="store_true",
                        help="only the matrix (delta) form; works at any width")
    parser.add_argument("--per-parameter", action="store_true",
                        help="with --vectorised, also the per-parameter formulas")


def run(args) -> int:
    spec = spec_from_args(args)
    d = derive(spec)
    per_parameter = args.per_parameter or not args.vectorised
    vec = vectorise(d) if args.vectorised else None
    for warning in d.warnings:
        print(f"backprop derive: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        print_json(as_dict(d, vec, per_parameter))
    elif args.format == "latex":
        sys.stdout.write(as_latex(d, vec, per_parameter))
    else:
        sys.stdout.write(as_text(d, vec, per_parameter))
    return 0
