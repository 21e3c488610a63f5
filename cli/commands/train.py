"""Train a network on a CSV file (or on a built-in table) with its generated trainer.

The trainer is the NumPy module `backprop generate` writes for the spec; this command only
feeds it data and watches: the loss over all rows after every epoch, a progress bar on
stderr (only on a terminal, never with --quiet), metrics on the training rows and on held-out
test rows (--test-split or --test-data: loss, and for classifiers accuracy, per-class
precision/recall/F1 and the confusion matrix), and on request the model file (parameters,
spec, standardisation, names and classes, which `backprop predict` and every --params flag
read), the loss history as CSV and a PNG with the loss, a few weights per epoch (flat weight
lines = vanishing gradients) and a classifier's confusion matrix.

Gradient descent variants: --gd batch (all rows, one update per epoch), --gd sgd (one row
at a time, n updates per epoch, the notes' way), --gd minibatch --batch-size B.
Defaults: batch GD, η = 0.01, 100 epochs; for classifiers (bce, cce) mini-batches, η = 0.1,
200 epochs (see CLASSIFIER_DEFAULTS for why).

Optimiser: the spec's [optimizer] table (sgd, momentum, nesterov, rmsprop, adam; PyTorch's
defaults), or --optimizer NAME; --lr replaces its learning rate.  The model file keeps the
optimiser's state (step count, moments), so --resume continues the run exactly.

With a test set the standardisation's mean and std come from the training rows only and are
applied, unchanged, to the test rows (and stored in the model file for new rows).

examples:
  backprop train --example notes-iq-cgpa --gd sgd --epochs 100
  backprop train --example iris                     # 4-8-3 classifier, 30 % held out, seed 1
  backprop train --spec net.toml --data students.csv --target salary --epochs 500 \\
      --gd minibatch --batch-size 2 --lr 0.01 --seed 0 --plot loss.png
  backprop train --layers 4-8-3 --activations relu,softmax --loss cce \\
      --data iris.csv --target species --standardise --test-split 0.3 --seed 1 --params-out iris.json
  backprop train --example notes-iq-gpa --resume p.json --params-out p2.json
  backprop train --example iris --optimizer adam --lr 0.01
  backprop train --example notes-iq-cgpa --gd sgd --backend numba   # the epoch compiled
  backprop train --spec net.toml --data huge.csv --target y --gd minibatch --batch-size 256 --stream
  backprop train --spec net.toml --data 'parts/*.csv' --target y --engine dask --workers 2
"""
from __future__ import annotations

import sys

import numpy as np

import dataclasses

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive import advice
from backprop.derive.optimizers import OPTIMIZERS
from backprop.train import metrics, runner
from backprop.train.data import Dataset
from backprop.train.model import Model
from backprop.train.prepare import prepare, settings, test_fraction
from backprop.train.progress import Progress, plural, seconds

from ..common import (add_backend_argument, add_data_arguments, add_run_arguments, add_spec_arguments,
                      check_outputs, network_given, print_json, spec_from_args)
from ..params import params_to_json

NAME = "train"
HELP = "train a network on CSV data with its generated trainer (batch, SGD, mini-batch)"
ORDER = 40


def add_test_arguments(parser) -> None:
    g = parser.add_argument_group("testing")
    g.add_argument("--test-split", type=float, metavar="F",
                   help="hold out this fraction of the rows (e.g. 0.3) as a test set; "
                   "classifiers keep each class's share (stratified); same --seed, same split")
    g.add_argument("--test-data", metavar="CSV", help="test rows from another CSV with the same "
                   "feature and target columns")


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    add_data_arguments(parser)
    add_run_arguments(parser, classifiers=True)
    add_test_arguments(parser)
    s = parser.add_argument_group("streaming (files bigger than memory; needs pip install -e '.[stream]')")
    s.add_argument("--stream", action="store_true",
                   help="read --data (CSV, or .parquet) in blocks with PyArrow instead of loading it: "
                   "memory stays flat; one scan pass (checks, row count, --standardise statistics, "
                   "class labels), one per epoch, one for the final loss; epochs between the first "
                   "and last report the running loss; --test-split is refused (give --test-data)")
    s.add_argument("--shuffle-buffer", type=int, metavar="N",
                   help="with --stream: rows mixed at a time for mini-batch shuffling (default 65536); "
                   "0 keeps the file order, the same batches as in-memory training without shuffling")
    d = parser.add_argument_group("data-parallel on Dask (needs pip install -e '.[dask]')")
    d.add_argument("--engine", choices=["numpy", "dask"], default="numpy",
                   help="numpy (default): one process; dask: every worker reads its partitions of "
                   "--data (a glob such as 'parts/*.csv', one file per partition, or one CSV cut "
                   "into row ranges) and sums its share of each batch's gradient: the same updates")
    d.add_argument("--workers", type=int, metavar="N", default=None,
                   help="with --engine dask: worker processes of the local cluster (default 2), "
                   "or how many of --scheduler's workers to use (default all)")
    d.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: join the cluster at "
                   "this scheduler (tcp://host:8786) instead of starting a local one")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), metavar="NAME",
                        help=f"optimiser ({', '.join(OPTIMIZERS)}; default: the spec's [optimizer], "
                        "else sgd), with its default settings unless the spec sets them; --lr "
                        "replaces its learning rate")
    add_backend_argument(parser)
    parser.add_argument("--resume", metavar="JSON", help="start from a model file (--params-out) "
                        "or a plain params file instead of fresh parameters; a model file's "
                        "network, classes and standardisation are kept")
    o = parser.add_argument_group("output")
    o.add_argument("--params-out", metavar="JSON", help="write the model file: parameters, spec, "
                   "standardisation, feature/target names and classes (read by predict, step, "
                   "draw and --resume)")
    o.add_argument("--history", metavar="CSV", help="write epoch,loss,seconds per epoch")
    o.add_argument("--plot", metavar="FILE", help="plot loss per epoch, weights per epoch and, "
                   "for classifiers, the confusion matrix (test set if any) (.png, .svg or .pdf)")
    o.add_argument("--grad-norms", action="store_true",
                   help="record ‖∂L/∂W^k‖ per layer each epoch (in --history, --plot, --json)")
    o.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    o.add_argument("--force", action="store_true", help="replace existing output files")


# --------------------------------------------------------------------------- run


def run(args) -> int:
    check_outputs([args.params_out, args.history], args.plot, args.force)
    if args.stream:  # the data read in blocks: train/stream.py runs the whole command
        from ..stream import train_command
        return train_command(args)
    if args.shuffle_buffer is not None:
        raise UserError("--shuffle-buffer applies to --stream only")
    if args.engine == "dask":  # data-parallel: cli/distributed.py runs the whole command
        from ..distributed import train_command as dask_command
        summary, text = dask_command(args, spec_from_args(args) if network_given(args) else None)
        print_json(summary) if args.json else print(text)
        return 0
    if args.workers is not None or args.scheduler:
        raise UserError("--workers and --scheduler apply to --engine dask only")
    prep = prepare(args, spec_from_args(args) if network_given(args) else None)
    spec, ds, test = prep.spec, prep.train, prep.test
    warned = advice.warnings(spec)  # before training: cce on a sigmoid output trains, to nothing
    for warning in warned:
        print(f"backprop train: warning: {warning}", file=sys.stderr)
    cfg = settings(args, prep.example, spec.loss)
    named = bool(spec.optimizer) or args.optimizer is not None  # else plain sgd at train's η
    opt = runner.optimizer_for(spec, args.optimizer, args.lr if named else cfg["lr"])
    cfg["lr"] = opt["lr"]
    if named:  # the model file's spec says which optimiser trained it
        spec = dataclasses.replace(spec, optimizer=tuple(sorted(opt.items())))
    trainer = runner.load_trainer(spec, dtype=args.dtype, backend=args.backend)
    if prep.resumed:
        params = prep.resumed.params
        cfg["init"] = f"resumed from {args.resume}"
    else:
        params = runner.init_params(trainer, cfg["init"], seed=prep.seed)
    state = runner.optimizer_state(trainer, params, opt, prep.resumed.optimizer_state if prep.resumed else None)

    with Progress(cfg["epochs"], quiet=args.quiet or args.json) as bar:
        hist = runner.fit(trainer, params, ds.X, ds.Y, epochs=cfg["epochs"], lr=cfg["lr"],
                          gd=cfg["gd"], batch_size=args.batch_size, seed=prep.seed,
                          progress=bar, track_weights=bool(args.plot),
                          track_grads=args.grad_norms, optimizer=opt, state=state)

    P = trainer.forward(params, ds.X)
    scores = {"train": metrics.evaluate(spec.loss, ds.Y, P, hist.losses[-1], ds.classes)}
    if test is not None:
        P_test = trainer.forward(params, test.X)
        scores["test"] = metrics.evaluate(spec.loss, test.Y, P_test, trainer.loss(params, test.X, test.Y),
                                          ds.classes)
    run_info = {"data": ds.source, "test_data": test.source if test is not None else None,
                "test_split": test_fraction(args, prep.example), "gd": cfg["gd"],
                "batch_size": hist.batch_size, "lr": cfg["lr"], "epochs": cfg["epochs"],
                "init": cfg["init"], "seed": prep.seed, "dtype": args.dtype, "optimizer": opt,
                "backend": args.backend}
    model = Model(spec, params, ds.mean, ds.std, list(ds.features), ds.target_columns, ds.classes,
                  extra=files.json_safe({"training": run_info, "metrics": scores}),
                  optimizer_state=hist.optimizer_state)
    title = f"{spec.describe()}\n{ds.source}, {cfg['gd']}, {opt['name']}, η = {cfg['lr']:g}"
    written = write_outputs(args, model, hist, scores, title)

    summary = {
        "network": spec.describe(),
        "layers": list(spec.layers), "activations": list(spec.activations), "loss": spec.loss,
        "data": ds.source, "rows": ds.n_rows, "features": ds.features, "targets": ds.targets,
        "classes": ds.classes, "standardised": ds.scaling(),
        "test_data": run_info["test_data"], "test_split": run_info["test_split"],
        "test_rows": test.n_rows if test is not None else None,
        "gd": cfg["gd"], "batch_size": hist.batch_size, "updates_per_epoch": hist.updates_per_epoch,
        "lr": cfg["lr"], "optimizer": opt, "optimizer_steps": hist.optimizer_state["t"],
        "epochs": cfg["epochs"], "init": cfg["init"], "seed": prep.seed,
        "dtype": args.dtype, "backend": args.backend,
        "loss_initial": hist.losses[0], "loss_final": hist.losses[-1],
        "accuracy": scores["train"].get("accuracy"),
        "test_loss": scores["test"]["loss"] if test is not None else None,
        "test_accuracy": scores["test"].get("accuracy") if test is not None else None,
        "metrics": scores,
        "seconds": hist.seconds[-1],
        "grad_norms_final": hist.grad_norms[-1] if hist.grad_norms else None,
        "params": params_to_json(params),
        "written": [str(path) for path in written],
        "warnings": warned,
    }
    if args.json:
        print_json(files.json_safe(summary))
    else:
        print(_text(summary, ds, P))
    return 0


def write_outputs(args, model: Model, hist: runner.History, scores: dict, title: str) -> list:
    """The files a run asked for, each written atomically, none if one cannot be: the model
    file (--params-out), the loss history (--history) and the plot (--plot: loss, weights
    and, for a classifier, the confusion matrix of the test rows if any, else the training
    rows).  Returns the paths written.  The in-memory and the --stream commands share it."""
    jobs = []
    if args.params_out:
        jobs.append(lambda: files.write_json(args.params_out, model.to_json(), args.force))
    if args.history:
        jobs.append(lambda: files.write(args.history, hist.to_csv(), args.force))
    if args.plot:
        from backprop.pictures.plots import plot_training
        shown = scores.get("test", scores["train"])
        confusion = None
        if "confusion" in shown:
            which = "test" if "test" in scores else "training"
            confusion = dict(matrix=shown["confusion"], classes=shown["classes"],
                             title=f"confusion matrix, {which} rows (accuracy {shown['accuracy']:.1%})")
        jobs.append(lambda: plot_training(hist, args.plot, title=title, force=args.force,
                                          confusion=confusion))
    return files.write_each(jobs)


def _text(s: dict, ds: Dataset, P: np.ndarray) -> str:
    scaled = " (standardised)" if s["standardised"] else ""
    held = ""
    if s["test_rows"] is not None:
        how = (f"--test-split {s['test_split']:g}" + (f", seed {s['seed']}" if s["seed"] is not None
                                                      else ", unseeded")
               if s["test_split"] is not None else s["test_data"])
        held = f"; {plural(s['test_rows'], 'test row')} held out ({how})"
    lines = [
        f"network: {s['network']}",
        f"data:    {s['data']}: {plural(s['rows'], 'training row')}{held}, features "
        f"{', '.join(s['features'])}{scaled} -> {', '.join(s['targets'])}",
        f"run:     {s['gd']} GD"
        + (f", batch size {s['batch_size']}" if s["batch_size"] else "")
        + f", {plural(s['updates_per_epoch'], 'update')}/epoch, {_optimizer_text(s['optimizer'])}, "
        f"{s['epochs']} epochs, "
        f"init {s['init']}" + (f", seed {s['seed']}" if s["seed"] is not None else "")
        + (f", {s['backend']} backend" if s["backend"] != "numpy" else ""),
        f"loss:    {s['loss_initial']:.6g} -> {s['loss_final']:.6g} in {seconds(s['seconds'])} "
        f"({seconds(s['seconds'] / s['epochs'])}/epoch)",
    ]
    if s["grad_norms_final"] is not None:
        norms = ", ".join(f"W{k}: {v:.3g}" for k, v in enumerate(s["grad_norms_final"], start=1))
        lines.append(f"‖∂L/∂W‖: {norms} (after the last epoch)")
    if s["accuracy"] is not None or s["test_rows"] is not None:
        for name, m in s["metrics"].items():
            lines.extend(metrics.format_metrics(name, m))
    if ds.n_rows <= 10 and s["classes"] is None:
        pairs = ", ".join(f"{y:.4g}→{p:.4g}" for y, p in zip(ds.Y[:, 0], P[:, 0]))
        lines.append(f"y→ŷ:     {pairs}")
    if s["standardised"] and any(str(p).endswith(".json") for p in s["written"]):
        lines.append("note:    the model file keeps the standardisation (mean, std of the training "
                     "rows); backprop predict applies it to raw rows")
    for path in s["written"]:
        lines.append(f"wrote {path}")
    return "\n".join(lines)


def _optimizer_text(opt: dict) -> str:
    """'η = 0.01' for plain sgd (as before optimisers), else 'adam (η = 0.001, beta1 = 0.9, ...)'."""
    rest = {k: v for k, v in opt.items() if k not in ("name", "lr")}
    if opt["name"] == "sgd" and not opt["weight_decay"]:
        return f"η = {opt['lr']:g}"
    return f"{opt['name']} (η = {opt['lr']:g}, " + ", ".join(f"{k} = {v:g}" if not isinstance(v, bool)
                                                            else f"{k} = {str(v).lower()}"
                                                            for k, v in rest.items()) + ")"
