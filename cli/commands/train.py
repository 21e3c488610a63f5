"""Train a network on a CSV file (or on one of the notes' tables) with its generated trainer.

The trainer is the NumPy module `backprop generate` writes for the spec; this command only
feeds it data and watches: the loss over all rows after every epoch, a progress bar on
stderr (only on a terminal, never with --quiet), and on request the final parameters as
JSON (the shape `backprop step --json` uses), the loss history as CSV and a PNG with the
loss per epoch and a few weights per epoch (flat weight lines = vanishing gradients).

Gradient descent variants: --gd batch (all rows, one update per epoch), --gd sgd (one row
at a time, n updates per epoch, the notes' default), --gd minibatch --batch-size B.

examples:
  backprop train --example notes-iq-cgpa --gd sgd --epochs 100
  backprop train --spec net.toml --data students.csv --target salary --epochs 500 \\
      --gd minibatch --batch-size 2 --lr 0.01 --seed 0 --plot loss.png
  backprop train --layers 4-8-3 --activations relu,softmax --loss cce \\
      --data iris.csv --target species --standardise --params-out p.json
  backprop train --example notes-iq-gpa --resume p.json --params-out p2.json
"""
from __future__ import annotations

import sys

import numpy as np

from backprop.derive import advice
from backprop.derive.errors import UserError
from backprop.train import examples, files, runner
from backprop.train.data import Dataset, accuracy, load_csv
from backprop.train.progress import Progress, plural, seconds

from ..common import add_spec_arguments, nonnegative_int, print_json, spec_from_args
from ..params import load_params, params_to_json

NAME = "train"
HELP = "train a network on CSV data with its generated trainer (batch, SGD, mini-batch)"
ORDER = 40

DEFAULTS = dict(epochs=100, lr=0.01, gd="batch", init="glorot")


def add_data_arguments(parser) -> None:
    """--data/--target/--features/--example/--standardise, shared with compare-gd."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", metavar="CSV", help="CSV file with a header row of column names")
    g.add_argument("--target", metavar="COL", action="append",
                   help="target column(s); repeat or separate with commas")
    g.add_argument("--features", metavar="COL", action="append",
                   help="feature columns (default: every column that is not a target)")
    g.add_argument("--example", metavar="NAME", choices=sorted(examples.EXAMPLES),
                   help=f"one of the notes' tables: {', '.join(examples.EXAMPLES)} "
                   "(features standardised, the notes' 2-2-1 network)")
    g.add_argument("--standardise", "--standardize", action="store_true",
                   help="rescale every feature to mean 0, std 1 (needed for IQ-sized columns)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float type of the trainer and the data (default float64)")


def add_run_arguments(parser, gd: bool = True) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, metavar="N", help="passes over the data (default 100)")
    g.add_argument("--lr", type=float, metavar="η", help="learning rate (default 0.01)")
    if gd:
        g.add_argument("--gd", choices=list(runner.GD_VARIANTS),
                       help="batch (default), sgd (one row per update) or minibatch")
    g.add_argument("--batch-size", type=int, metavar="B",
                   help="rows per mini-batch; implies --gd minibatch (default 32, or a quarter "
                   "of a small table)")
    g.add_argument("--seed", type=nonnegative_int, help="seed for the initial weights and the shuffling")
    g.add_argument("--init", choices=list(runner.INIT_SCHEMES),
                   help="initial weights: glorot (default), he, ones (the notes: w=1, b=0), "
                   "zeros, small (N(0, 0.01²))")


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    add_data_arguments(parser)
    add_run_arguments(parser)
    parser.add_argument("--resume", metavar="JSON", help="start from these parameters "
                        "(a --params-out file) instead of fresh ones")
    o = parser.add_argument_group("output")
    o.add_argument("--params-out", metavar="JSON", help="write the trained parameters")
    o.add_argument("--history", metavar="CSV", help="write epoch,loss,seconds per epoch")
    o.add_argument("--plot", metavar="FILE", help="plot loss per epoch and weights per epoch "
                   "(.png, .svg or .pdf)")
    o.add_argument("--grad-norms", action="store_true",
                   help="record ‖∂L/∂W^k‖ per layer each epoch (in --history, --plot, --json)")
    o.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    o.add_argument("--force", action="store_true", help="replace existing output files")


# --------------------------------------------------------------------------- shared with compare-gd


def network_and_data(args):
    """(spec, dataset, example or None) from the network and data flags."""
    network_flags = any(getattr(args, f, None) for f in ("spec", "layers", "activations", "loss"))
    network_flags = network_flags or getattr(args, "no_bias", False)
    if args.example:
        if args.data or args.target or args.features:
            raise UserError("--example brings its own data; drop --data/--target/--features")
        ex = examples.get(args.example)
        spec = spec_from_args(args) if network_flags else ex.spec()
        ds = ex.load()
    else:
        if not args.data:
            raise UserError("give --data FILE.csv --target COLUMN, or --example NAME "
                            f"({', '.join(examples.EXAMPLES)})")
        if not args.target:
            raise UserError(f"name the target column of {args.data} with --target COLUMN")
        ex = None
        spec = spec_from_args(args)
        ds = load_csv(args.data, args.target, args.features, loss=spec.loss, dtype=args.dtype)
        if args.standardise:
            ds.standardise()
    check_fits(spec, ds)
    ds.X = ds.X.astype(args.dtype, copy=False)
    ds.Y = ds.Y.astype(args.dtype, copy=False)
    return spec, ds, ex


def check_fits(spec, ds: Dataset) -> None:
    n_in, n_out = ds.X.shape[1], ds.Y.shape[1]
    if n_in != spec.n_inputs:
        raise UserError(f"{ds.source} has {n_in} feature column(s) ({', '.join(ds.features)}) "
                        f"but the {'-'.join(map(str, spec.layers))} network takes {spec.n_inputs} "
                        f"input(s); pick columns with --features or set --layers {n_in}-...")
    if n_out != spec.n_outputs:
        what = (f"{n_out} classes ({', '.join(ds.classes or [])})" if ds.classes and spec.loss == "cce"
                else f"{n_out} target column(s)")
        raise UserError(f"{ds.source} gives {what} but the {'-'.join(map(str, spec.layers))} "
                        f"network has {spec.n_outputs} output(s); set --layers ...-{n_out}")


def settings(args, ex) -> dict:
    """Run settings: flags first, then the example's (the notes'), then the defaults."""
    out = {}
    gd = getattr(args, "gd", None)
    if getattr(args, "batch_size", None) is not None:
        if gd in ("batch", "sgd"):
            raise UserError(f"--batch-size only applies to --gd minibatch, not --gd {gd}")
        args.gd = "minibatch"
    for key in ("epochs", "lr", "gd", "init"):
        value = getattr(args, key, None)
        if value is None and ex is not None:
            value = getattr(ex, key)
        out[key] = DEFAULTS[key] if value is None else value
    return out


# --------------------------------------------------------------------------- run


def run(args) -> int:
    if args.plot:
        files.image_format(args.plot)
    files.preflight([args.params_out, args.history, args.plot], force=args.force)
    if args.plot:
        from backprop.train.plots import require_matplotlib
        require_matplotlib()
    spec, ds, ex = network_and_data(args)
    warned = advice.warnings(spec)  # before training: cce on a sigmoid output trains, to nothing
    for warning in warned:
        print(f"backprop train: warning: {warning}", file=sys.stderr)
    cfg = settings(args, ex)
    trainer = runner.load_trainer(spec, dtype=args.dtype)
    if args.resume:
        params = load_params(args.resume, spec, dtype=args.dtype)
        cfg["init"] = f"resumed from {args.resume}"
    else:
        params = runner.init_params(trainer, cfg["init"], seed=args.seed)

    with Progress(cfg["epochs"], quiet=args.quiet or args.json) as bar:
        hist = runner.fit(trainer, params, ds.X, ds.Y, epochs=cfg["epochs"], lr=cfg["lr"],
                          gd=cfg["gd"], batch_size=args.batch_size, seed=args.seed,
                          progress=bar, track_weights=bool(args.plot),
                          track_grads=args.grad_norms)

    P = trainer.forward(params, ds.X)
    acc = accuracy(spec.loss, ds.Y, P)
    jobs = []
    if args.params_out:
        jobs.append(lambda: files.write_json(args.params_out, params_to_json(params), args.force))
    if args.history:
        jobs.append(lambda: files.write(args.history, files.history_csv(hist), args.force))
    if args.plot:
        from backprop.train.plots import plot_training
        title = f"{spec.describe()}\n{ds.source}, {cfg['gd']}, η = {cfg['lr']:g}"
        jobs.append(lambda: plot_training(hist, args.plot, title=title, force=args.force))
    written = files.write_each(jobs)

    summary = {
        "network": spec.describe(),
        "layers": list(spec.layers), "activations": list(spec.activations), "loss": spec.loss,
        "data": ds.source, "rows": ds.n_rows, "features": ds.features, "targets": ds.targets,
        "classes": ds.classes, "standardised": ds.scaling(),
        "gd": cfg["gd"], "batch_size": hist.batch_size, "updates_per_epoch": hist.updates_per_epoch,
        "lr": cfg["lr"], "epochs": cfg["epochs"], "init": cfg["init"], "seed": args.seed,
        "dtype": args.dtype,
        "loss_initial": hist.losses[0], "loss_final": hist.losses[-1],
        "accuracy": acc, "seconds": hist.seconds[-1],
        "grad_norms_final": hist.grad_norms[-1] if hist.grad_norms else None,
        "params": params_to_json(params),
        "written": [str(p) for p in written],
        "warnings": warned,
    }
    if args.json:
        print_json(files.json_safe(summary))
    else:
        print(_text(summary, ds, P))
    return 0


def _text(s: dict, ds: Dataset, P: np.ndarray) -> str:
    scaled = " (standardised)" if s["standardised"] else ""
    lines = [
        f"network: {s['network']}",
        f"data:    {s['data']}: {s['rows']} rows, features {', '.join(s['features'])}{scaled} "
        f"-> {', '.join(s['targets'])}",
        f"run:     {s['gd']} GD"
        + (f", batch size {s['batch_size']}" if s["batch_size"] else "")
        + f", {plural(s['updates_per_epoch'], 'update')}/epoch, η = {s['lr']:g}, {s['epochs']} epochs, "
        f"init {s['init']}" + (f", seed {s['seed']}" if s["seed"] is not None else ""),
        f"loss:    {s['loss_initial']:.6g} -> {s['loss_final']:.6g} in {seconds(s['seconds'])} "
        f"({seconds(s['seconds'] / s['epochs'])}/epoch)",
    ]
    if s["accuracy"] is not None:
        lines.append(f"accuracy: {s['accuracy']:.1%}")
    if s["grad_norms_final"] is not None:
        norms = ", ".join(f"W{k}: {v:.3g}" for k, v in enumerate(s["grad_norms_final"], start=1))
        lines.append(f"‖∂L/∂W‖: {norms} (after the last epoch)")
    if ds.n_rows <= 10 and s["classes"] is None:
        pairs = ", ".join(f"{y:.4g}→{p:.4g}" for y, p in zip(ds.Y[:, 0], P[:, 0]))
        lines.append(f"y→ŷ:     {pairs}")
    if s["standardised"] and any(str(p).endswith(".json") for p in s["written"]):
        lines.append("note:    the parameters expect standardised inputs (x - mean) / std; "
                     "--json gives mean and std")
    for path in s["written"]:
        lines.append(f"wrote {path}")
    return "\n".join(lines)
