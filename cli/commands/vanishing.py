"""Show the vanishing gradient problem: per-layer gradient norms ‖∂L/∂W^k‖ of a deep network.

Trains the same deep network (hidden layers all with one activation, a linear output,
loss se) on one synthetic regression set, full-batch with its generated trainer, once per
hidden activation and initialisation, and records ‖∂L/∂W^k‖ for every layer after every
epoch.  Prints a table (norms at the initial weights and the first-layer / last-layer
ratio), a note for every run that collapsed to the mean (it predicts the targets' mean
for every row: it learned nothing from x), and, with --plot, one panel per run with a line
per layer on a log scale.  With
sigmoid the first layer gets orders of magnitude less gradient than the last; ReLU with He
initialisation keeps them of one size: the notes' remedies, measured.

examples:
  backprop vanishing --layers 2-8-8-8-8-8-1 --activations sigmoid --plot grads.png
  backprop vanishing --layers 2-8-8-8-8-8-8-8-1 --activations sigmoid,tanh,relu --init glorot,he,small
  backprop vanishing --layers 2-8-1 --activations sigmoid      # fewer layers: no vanishing
  backprop vanishing --layers 2-8-8-8-8-8-1 --activations sigmoid --compare residual,batch_norm
"""
from __future__ import annotations

from backprop.core.errors import UserError
from backprop.core import init_schemes
from backprop.train import vanishing
from backprop.train.data import split_names

from ..common import check_outputs, nonnegative_int, print_json

NAME = "vanishing"
HELP = "per-layer gradient norms of a deep net: sigmoid/tanh vs relu, two initialisations"
ORDER = 44
#: The activation every comparison includes: relu (with He initialisation) keeps the layers'
#: gradients of one size, the remedy the others are measured against.
REFERENCE = "relu"


def add_arguments(parser) -> None:
    parser.add_argument("--layers", default="2-8-8-8-8-8-1", metavar="W-W-...",
                        help="layer widths, input first (default 2-8-8-8-8-8-1)")
    parser.add_argument("--activations", metavar="NAME[,NAME...]",
                        help="hidden activations to compare (default "
                        f"{','.join(vanishing.DEFAULT_ACTIVATIONS)}); {REFERENCE} is always added as the reference")
    parser.add_argument("--init", metavar="NAME[,NAME...]", default=",".join(vanishing.DEFAULT_INITS),
                        help=f"initialisations to compare: {init_schemes.help_text(default=None)} "
                        f"(default {','.join(vanishing.DEFAULT_INITS)})")
    parser.add_argument("--compare", metavar="REMEDY[,REMEDY]",
                        help="also run each network with the notes' remedies on every hidden layer "
                        f"they fit: {', '.join(r for r in vanishing.REMEDIES if r != 'none')} "
                        "(residual: O_k = g(z_k) + O_{k-1}; batch_norm: z_k normalised over the batch)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs to record (default 20)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--rows", type=int, default=256, help="synthetic rows (default 256)")
    parser.add_argument("--seed", type=nonnegative_int, default=0,
                        help="seed for data and weights (default 0)")
    parser.add_argument("--plot", metavar="FILE", help="one panel per run, a line per layer (.png, .svg or .pdf)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing plot")


def run(args) -> int:
    check_outputs([], args.plot, args.force)
    acts = split_names(args.activations) or list(vanishing.DEFAULT_ACTIVATIONS)
    if REFERENCE not in acts:
        acts.append(REFERENCE)
    inits = split_names(args.init)
    if not inits:
        raise UserError("--init needs at least one initialisation, e.g. --init glorot,he")
    if args.rows < 2:
        raise UserError(f"--rows must be at least 2, got {args.rows}")
    remedies = ["none", *dict.fromkeys(split_names(args.compare) or [])]
    runs = vanishing.run_all(args.layers, acts, inits, epochs=args.epochs, lr=args.lr,
                             seed=args.seed, rows=args.rows, remedies=remedies)
    written = None
    if args.plot:
        from backprop.pictures.plots import plot_vanishing
        title = (f"gradient norm per layer per epoch, {args.layers} network, linear output, loss se, "
                 f"full batch, η = {args.lr:g}")
        written = plot_vanishing(runs, args.plot, title=title, force=args.force)
    notes = [n for n in map(vanishing.collapse_note, runs) if n]
    if args.json:
        print_json({"layers": args.layers, "epochs": args.epochs, "lr": args.lr,
                    "seed": args.seed, "runs": [r.row() for r in runs], "notes": notes,
                    "written": [str(written)] if written else []})
        return 0
    print(f"{args.layers} network, hidden activation as listed, linear output, loss se; "
          f"{args.rows} synthetic rows, full batch, {args.epochs} epochs, η = {args.lr:g}")
    print(vanishing.format_table(runs))
    print("(norms and ratio at the initial weights, before the first update; the plot shows every epoch)")
    for r in runs:
        print(vanishing.verdict(r))
    for note in notes:
        print(note)
    if written:
        print(f"wrote {written}")
    return 0
