"""One SGD step on one row as a self-contained HTML lesson page.

The page draws the network in SVG with the row's values; its buttons step through the
forward pass node by node, the loss, the backward pass node by node (each δ_kj and the
gradients of the weights into that node) and the update.  Clicking a weight (an edge) or a
bias shows its chain rule in the notes' notation, every factor's value, the product and the
update w - η ∂L/∂w.  Every number is `backprop step --json`'s for the same flags (embedded in
the page as JSON, <script id="lesson-data">, under "step"); formulas are MathML, so the page
needs no network.

The flags are step's, read by step's own code: --params may be a model file (without
network flags its own network is used and its standardisation applied to --x), --y may name
a class.  One row; networks of up to 40 nodes.

examples:
  backprop explain --x 80,8 --y 5 -o lesson.html                  # the notes' 2-2-1, w = 1, b = 0
  backprop explain --spec net.toml --params p.json --x 0.05,0.10 --y 0.01,0.99 --lr 0.5 -o lesson.html
  backprop explain --params iris.json --x 5.1,3.5,1.4,0.2 --y setosa -o iris.html
"""
from __future__ import annotations

import sys

from backprop.core import files
from backprop.core.errors import UserError
from backprop.train.onestep import DEFAULT_LR, SCHEMES, load_start, read_problem

from ..common import add_spec_arguments, network_given, nonnegative_int, spec_from_args

NAME = "explain"
HELP = "one step of backprop as an interactive, self-contained HTML page"
ORDER = 47


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--x", required=True, metavar="V,V,...", help="one input row, e.g. 0.05,0.10")
    parser.add_argument("--y", required=True, metavar="V,...",
                        help="its target(s), e.g. 0.01,0.99, or a class (cce, bce) as step takes it")
    parser.add_argument("--lr", type=float, default=None, metavar="η",
                        help=f"learning rate (default {DEFAULT_LR}, as step)")
    parser.add_argument("--params", metavar="FILE", help="starting parameters: a model file or JSON "
                        "{\"W1\": [[...]], \"b1\": [...], ...}")
    parser.add_argument("--init", choices=SCHEMES, help="starting parameters by scheme (default ones: w = 1, b = 0)")
    parser.add_argument("--seed", type=nonnegative_int, default=None, help="seed for --init glorot/he")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def run(args) -> int:
    if not args.output.lower().endswith((".html", ".htm")):
        raise UserError(f"-o {args.output}: the lesson is an HTML page; name it e.g. lesson.html")
    files.preflight([args.output], force=args.force)
    if args.params and args.init:
        raise UserError("give either --params FILE or --init SCHEME, not both")
    from backprop.explain.lesson import Lesson, check_size
    from backprop.explain.page import render

    if network_given(args):
        check_size(spec_from_args(args))  # before step's own checks and any file is read
    spec, model = load_start(args.params, spec_from_args(args), network_given(args))
    check_size(spec)
    problem = read_problem(spec, model, [args.x], [args.y], args.lr, args.params)
    if model is not None:
        params = model.params
    else:
        from backprop.codegen import load_trainer
        params = load_trainer(spec).init_params(seed=args.seed, scheme=args.init or "ones")
    lesson = Lesson(problem, params)
    for warning in lesson.d.warnings:
        print(f"backprop explain: warning: {warning}", file=sys.stderr)
    written = files.write(args.output, render(lesson), force=args.force)
    print(f"wrote {written}")
    return 0
