"""Batch vs stochastic vs mini-batch gradient descent from the same initial weights.

Trains the spec three times with its generated trainer, from one copy of the initial
weights each, and prints a table of updates per epoch, time per epoch, time per update,
final loss and the epochs and time each variant needed to reach L* (the worst final loss,
which all three reached), then checks the notes' two claims against it: "batch GD is
faster" (per epoch) and "SGD converges faster" (in epochs; and in wall time?).  --plot draws
loss vs epochs and loss vs wall time side by side.

--optimizers sgd,momentum,adam compares optimisers instead (the GD variant fixed: batch, or
minibatch with --batch-size): one run each from the same weights, a table of η, final loss and
epochs to L*, and --plot draws one loss curve per optimiser.  Each optimiser uses the spec's
settings when it is the spec's, else its defaults (PyTorch's); --lr sets η for all.

Data: --data/--target, --example NAME, or --rows N for a synthetic regression set of N
rows (X ~ N(0,1), y linear in X plus noise) that fits the spec's widths.

examples:
  backprop compare-gd --example notes-cgpa-resume --epochs 200 --plot gd.png
  backprop compare-gd --spec net.toml --data students.csv --target salary --plot gd.png
  backprop compare-gd --layers 8-16-1 --activations tanh,linear --rows 20000 --epochs 20
  backprop compare-gd --layers 8-16-1 --activations tanh,linear --rows 20000 --backend numba
  backprop compare-gd --example notes-cgpa-resume --optimizers sgd,momentum,adam --plot opt.png
"""
from __future__ import annotations

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive.losses import is_classification, names_where
from backprop.derive.optimizers import OPTIMIZERS
from backprop.train import compare, runner
from backprop.train.data import from_arrays
from backprop.train.prepare import network_and_data, settings
from backprop.train.progress import Progress

from ..common import (add_backend_argument, add_data_arguments, add_run_arguments, add_spec_arguments,
                      check_outputs, network_given, print_json, spec_from_args)

NAME = "compare-gd"
HELP = "batch vs SGD vs mini-batch from the same weights: table, claims checked, plot"
ORDER = 42


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument("--rows", type=int, metavar="N",
                        help="instead of --data: a synthetic regression set of N rows")
    add_run_arguments(parser, gd=False)
    add_backend_argument(parser)
    parser.add_argument("--optimizers", metavar="A,B,...",
                        help=f"compare these optimisers ({', '.join(OPTIMIZERS)}) instead of the GD "
                        "variants, e.g. sgd,momentum,adam")
    o = parser.add_argument_group("output")
    o.add_argument("--plot", metavar="FILE", help="loss vs epochs and loss vs wall time "
                   "(.png, .svg or .pdf)")
    o.add_argument("--json", action="store_true", help="print the table as JSON")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    o.add_argument("--force", action="store_true", help="replace an existing plot")


def run(args) -> int:
    check_outputs([], args.plot, args.force)
    if args.rows is not None:
        if args.data or args.example:
            raise UserError("--rows makes synthetic data; drop --data/--example")
        if args.rows < 2:
            raise UserError(f"--rows must be at least 2, got {args.rows}")
        spec = spec_from_args(args)
        if is_classification(spec.loss):
            raise UserError(f"--rows makes regression data; use --loss "
                            f"{'/'.join(names_where(task='regression'))} or give --data")
        X, Y = compare.synthetic(args.rows, spec.n_inputs, spec.n_outputs, seed=args.seed or 0)
        ds = from_arrays(X.astype(args.dtype), Y.astype(args.dtype),
                         source="synthetic regression data")
        ex = None
    else:
        spec, ds, ex = network_and_data(args, spec_from_args(args) if network_given(args) else None)
    args.gd = None
    cfg = settings(args, ex)
    trainer = runner.load_trainer(spec, dtype=args.dtype, backend=args.backend)
    params0 = runner.init_params(trainer, cfg["init"], seed=args.seed)

    bar = lambda gd: Progress(cfg["epochs"], quiet=args.quiet or args.json, label=f"{gd:>9}")
    if args.optimizers is not None:
        return _optimizers(args, spec, ds, cfg, trainer, params0, bar)
    runs = compare.compare(trainer, params0, ds.X, ds.Y, epochs=cfg["epochs"], lr=cfg["lr"],
                           batch_size=args.batch_size, seed=args.seed, progress_factory=bar)
    target = compare.target_loss(runs)
    rows = compare.table(runs)
    claims = compare.verdicts(rows, target)
    written = None
    if args.plot:
        from backprop.pictures.plots import plot_compare
        title = (f"{spec.describe()}\n{ds.source}, {ds.n_rows} rows, η = {cfg['lr']:g}, "
                 f"same initial weights ({cfg['init']})")
        written = plot_compare(runs, args.plot, title=title, force=args.force)

    if args.json:
        # a diverged variant's losses hold inf: null in JSON (see "diverged_at" in the table)
        print_json(files.json_safe({"network": spec.describe(), "data": ds.source, "rows": ds.n_rows,
                    "epochs": cfg["epochs"], "lr": cfg["lr"], "init": cfg["init"],
                    "seed": args.seed, "target_loss": target,
                    "table": [r.as_dict() for r in rows], "claims": claims,
                    "losses": {gd: h.losses for gd, h in runs.items()},
                    "written": [str(written)] if written else []}))
        return 0
    print(f"{spec.describe()}; {ds.source}, {ds.n_rows} rows; {cfg['epochs']} epochs, "
          f"η = {cfg['lr']:g}, init {cfg['init']}" + (f", seed {args.seed}" if args.seed is not None else ""))
    print(compare.format_table(rows, target))
    print("(times exclude the per-epoch loss evaluation; losses are measured at the end of each "
          "epoch, so \"time to L*\" is a whole number of epochs; L* = the worst final loss)")
    for claim in claims:
        print(claim)
    if written:
        print(f"wrote {written}")
    return 0


def _names(text: str) -> list[str]:
    """--optimizers 'sgd,momentum,adam' as names, each known and given once."""
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in OPTIMIZERS:
            raise UserError(f"--optimizers: unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    if len(set(names)) != len(names):
        raise UserError(f"--optimizers names an optimizer twice: {text}")
    return names


def _optimizers(args, spec, ds, cfg, trainer, params0, bar) -> int:
    """compare-gd --optimizers: one run per optimiser, the same weights, data and GD variant."""
    opts = [runner.optimizer_for(spec, name, args.lr) for name in _names(args.optimizers)]
    gd = "minibatch" if args.batch_size else "batch"
    runs = compare.compare_optimizers(trainer, params0, ds.X, ds.Y, optimizers=opts, epochs=cfg["epochs"],
                                      gd=gd, batch_size=args.batch_size, seed=args.seed, progress_factory=bar)
    target = compare.target_loss(runs)
    rows = compare.optimizer_table(runs)
    written = None
    if args.plot:
        from backprop.pictures.plots import plot_compare
        title = (f"{spec.describe()}\n{ds.source}, {ds.n_rows} rows, {gd} GD, "
                 f"same initial weights ({cfg['init']})")
        written = plot_compare(runs, args.plot, title=title, force=args.force)
    if args.json:
        print_json(files.json_safe({"network": spec.describe(), "data": ds.source, "rows": ds.n_rows,
                    "epochs": cfg["epochs"], "gd": gd, "init": cfg["init"], "seed": args.seed,
                    "optimizers": opts, "target_loss": target, "table": [r.as_dict() for r in rows],
                    "losses": {name: h.losses for name, h in runs.items()},
                    "written": [str(written)] if written else []}))
        return 0
    print(f"{spec.describe()}; {ds.source}, {ds.n_rows} rows; {cfg['epochs']} epochs of {gd} GD, "
          f"init {cfg['init']}" + (f", seed {args.seed}" if args.seed is not None else ""))
    print(compare.format_optimizer_table(rows, target))
    if written:
        print(f"wrote {written}")
    return 0
