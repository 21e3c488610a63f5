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
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive import advice
from backprop.derive.spec import Spec
from backprop.train import examples, metrics, runner
from backprop.train.data import Dataset, load_csv, split
from backprop.train.model import Model, load_model
from backprop.train.progress import Progress, plural, seconds

from ..common import add_spec_arguments, nonnegative_int, print_json, spec_from_args
from ..params import params_to_json

NAME = "train"
HELP = "train a network on CSV data with its generated trainer (batch, SGD, mini-batch)"
ORDER = 40

#: Run settings when neither a flag nor the example gives one.
DEFAULTS = dict(epochs=100, lr=0.01, gd="batch", init="glorot")
#: A classifier's (bce, cce): 100 full-batch updates at η = 0.01 left a 4-8-3 iris network at
#: 49-93 % test accuracy (mean 72 % over 10 seeds); mini-batches (see
#: runner.default_batch_size) at η = 0.1 for 200 epochs reach 87-100 % (mean 95 % over 30
#: seeds, the spread being the 45-row test set's split).  η = 0.1 is safe there because
#: ∂L/∂z = ŷ - y of a sigmoid/softmax output lies in [-1, 1]; a regression's ∂L/∂ŷ grows with
#: the targets (y = 5 already diverges with sgd at η = 0.1), so regression keeps DEFAULTS.
CLASSIFIER_DEFAULTS = dict(epochs=200, lr=0.1, gd="minibatch", init="glorot")
DEFAULTS_BY_LOSS = {"bce": CLASSIFIER_DEFAULTS, "cce": CLASSIFIER_DEFAULTS}


def add_data_arguments(parser) -> None:
    """--data/--target/--features/--example/--standardise, shared with compare-gd."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", metavar="CSV", help="CSV file with a header row of column names")
    g.add_argument("--target", metavar="COL", action="append",
                   help="target column(s); repeat or separate with commas")
    g.add_argument("--features", metavar="COL", action="append",
                   help="feature columns (default: every column that is not a target)")
    g.add_argument("--example", metavar="NAME", choices=sorted(examples.EXAMPLES),
                   help=f"a built-in table: {', '.join(examples.EXAMPLES)} (features "
                   "standardised; the notes' tables train the notes' 2-2-1 network, iris a 4-8-3 "
                   "classifier tested on 30 %% of the flowers)")
    g.add_argument("--standardise", "--standardize", action="store_true",
                   help="rescale every feature to mean 0, std 1 (needed for IQ-sized columns)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float type of the trainer and the data (default float64)")


def add_run_arguments(parser, gd: bool = True, classifiers: bool = False) -> None:
    """--epochs/--lr/--gd/--batch-size/--seed/--init; ``classifiers``: the help names the
    classifier defaults too (train applies them, compare-gd does not)."""
    c = CLASSIFIER_DEFAULTS
    also = lambda key, fmt="": (f"; {c[key]:{fmt}} for bce/cce classifiers" if classifiers else "")
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"passes over the data (default {DEFAULTS['epochs']}{also('epochs')})")
    g.add_argument("--lr", type=float, metavar="η",
                   help=f"learning rate (default {DEFAULTS['lr']:g}{also('lr', 'g')})")
    if gd:
        g.add_argument("--gd", choices=list(runner.GD_VARIANTS),
                       help=f"batch, sgd (one row per update) or minibatch (default "
                       f"{DEFAULTS['gd']}{also('gd')})")
    g.add_argument("--batch-size", type=int, metavar="B",
                   help="rows per mini-batch; implies --gd minibatch (default 32, or a quarter "
                   "of a small table)")
    g.add_argument("--seed", type=nonnegative_int,
                   help="seed for the initial weights, the shuffling and --test-split")
    g.add_argument("--init", choices=list(runner.INIT_SCHEMES),
                   help="initial weights: glorot (default), he, ones (the notes: w=1, b=0), "
                   "zeros, small (N(0, 0.01²))")


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


# --------------------------------------------------------------------------- shared with compare-gd


@dataclass
class Prepared:
    """What the network and data flags resolve to, ready to train."""

    spec: Spec
    train: Dataset
    test: Dataset | None
    example: examples.Example | None
    resumed: Model | None  # the --resume file, read
    seed: int | None  # --seed, or the example's documented seed


def _network_flags(args) -> bool:
    given = any(getattr(args, f, None) for f in ("spec", "layers", "activations", "loss"))
    return given or bool(getattr(args, "no_bias", False))


def network_and_data(args):
    """(spec, dataset, example or None) from the network and data flags (compare-gd's view:
    every row, standardised when asked)."""
    prep = prepare(args, hold_out=False)
    return prep.spec, prep.train, prep.example


def prepare(args, hold_out: bool = True) -> Prepared:
    """Resolve the network, read the data, split off the test rows (unless not ``hold_out``),
    then standardise with the training rows' statistics (or a resumed model file's) and apply
    them to the test rows."""
    ex = examples.get(args.example) if args.example else None
    if ex is not None and (args.data or args.target or args.features):
        raise UserError("--example brings its own data; drop --data/--target/--features")
    if ex is None and not args.data:
        raise UserError("give --data FILE.csv --target COLUMN, or --example NAME "
                        f"({', '.join(examples.EXAMPLES)})")
    if ex is None and not args.target:
        raise UserError(f"name the target column of {args.data} with --target COLUMN")
    seed = args.seed if args.seed is not None else getattr(ex, "seed", None)
    flags = _network_flags(args)
    fallback = spec_from_args(args) if flags or ex is None else ex.spec()
    resumed = _resume(args, fallback if flags else None, fallback)
    spec = resumed.spec if resumed else fallback
    classes = resumed.classes if resumed else None
    if ex is not None:
        ds = ex.load(spec.loss, args.dtype, classes=classes)
    else:
        ds = load_csv(args.data, args.target, args.features, loss=spec.loss, dtype=args.dtype,
                      classes=classes)
    if resumed and resumed.features and resumed.features != ds.features:
        raise UserError(f"{args.resume} was trained on features {', '.join(resumed.features)}; "
                        f"{ds.source} gives {', '.join(ds.features)}: pick them with --features")
    ds, test = _test_set(args, ds, spec, ex, seed) if hold_out else (ds, None)
    if resumed and resumed.standardised:  # the parameters learnt on inputs scaled this way
        ds.apply_scaling(resumed.mean, resumed.std)
    elif args.standardise or ex is not None:
        ds.standardise()
    if test is not None and ds.mean is not None:
        test.apply_scaling(ds.mean, ds.std)
    for d in (ds, test):
        if d is not None:
            check_fits(spec, d)
            d.X = d.X.astype(args.dtype, copy=False)
            d.Y = d.Y.astype(args.dtype, copy=False)
    return Prepared(spec, ds, test, ex, resumed, seed)


def _resume(args, spec: Spec | None, fallback: Spec) -> Model | None:
    """The --resume file as a Model.  With network flags it must be that network; without, a
    model file brings its own and a plain params file is read as the fallback network."""
    path = getattr(args, "resume", None)
    if not path:
        return None
    if spec is not None:
        return load_model(path, spec, args.dtype)
    try:
        return load_model(path, None, args.dtype)
    except UserError:  # a plain file (no spec inside), or a broken model file: same error again
        return load_model(path, fallback, args.dtype)


def _test_set(args, ds: Dataset, spec: Spec, ex, seed) -> tuple[Dataset, Dataset | None]:
    """(training rows, test rows or None): --test-data read with the training set's columns and
    classes, or --test-split (the flag's, else the example's) drawn from ``ds`` with ``seed``."""
    test_data = getattr(args, "test_data", None)
    if test_data and getattr(args, "test_split", None) is not None:
        raise UserError("give --test-split or --test-data, not both")
    if test_data:
        return ds, load_csv(test_data, ds.target_columns, ds.features, loss=spec.loss,
                            dtype=args.dtype, classes=ds.classes)
    fraction = _fraction(args, ex)
    return (ds, None) if fraction is None else split(ds, fraction, seed)


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


def settings(args, ex, loss: str | None = None) -> dict:
    """Run settings: flags first, then the example's (its documented run), then the defaults
    for ``loss`` (:data:`DEFAULTS_BY_LOSS`, else :data:`DEFAULTS`)."""
    defaults = DEFAULTS_BY_LOSS.get(loss, DEFAULTS)
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
        out[key] = defaults[key] if value is None else value
    return out


# --------------------------------------------------------------------------- run


def run(args) -> int:
    if args.plot:
        files.image_format(args.plot)
    files.preflight([args.params_out, args.history, args.plot], force=args.force)
    if args.plot:
        from backprop.train.plots import require_matplotlib
        require_matplotlib()
    prep = prepare(args)
    spec, ds, test = prep.spec, prep.train, prep.test
    warned = advice.warnings(spec)  # before training: cce on a sigmoid output trains, to nothing
    for warning in warned:
        print(f"backprop train: warning: {warning}", file=sys.stderr)
    cfg = settings(args, prep.example, spec.loss)
    trainer = runner.load_trainer(spec, dtype=args.dtype)
    if prep.resumed:
        params = prep.resumed.params
        cfg["init"] = f"resumed from {args.resume}"
    else:
        params = runner.init_params(trainer, cfg["init"], seed=prep.seed)

    with Progress(cfg["epochs"], quiet=args.quiet or args.json) as bar:
        hist = runner.fit(trainer, params, ds.X, ds.Y, epochs=cfg["epochs"], lr=cfg["lr"],
                          gd=cfg["gd"], batch_size=args.batch_size, seed=prep.seed,
                          progress=bar, track_weights=bool(args.plot),
                          track_grads=args.grad_norms)

    P = trainer.forward(params, ds.X)
    scores = {"train": metrics.evaluate(spec.loss, ds.Y, P, hist.losses[-1], ds.classes)}
    if test is not None:
        P_test = trainer.forward(params, test.X)
        scores["test"] = metrics.evaluate(spec.loss, test.Y, P_test, trainer.loss(params, test.X, test.Y),
                                          ds.classes)
    run_info = {"data": ds.source, "test_data": test.source if test is not None else None,
                "test_split": _fraction(args, prep.example), "gd": cfg["gd"],
                "batch_size": hist.batch_size, "lr": cfg["lr"], "epochs": cfg["epochs"],
                "init": cfg["init"], "seed": prep.seed, "dtype": args.dtype}
    model = Model(spec, params, ds.mean, ds.std, list(ds.features), ds.target_columns, ds.classes,
                  extra=files.json_safe({"training": run_info, "metrics": scores}))
    jobs = []
    if args.params_out:
        jobs.append(lambda: files.write_json(args.params_out, model.to_json(), args.force))
    if args.history:
        jobs.append(lambda: files.write(args.history, hist.to_csv(), args.force))
    if args.plot:
        from backprop.train.plots import plot_training
        title = f"{spec.describe()}\n{ds.source}, {cfg['gd']}, η = {cfg['lr']:g}"
        shown = scores.get("test", scores["train"])
        confusion = None
        if "confusion" in shown:
            which = "test" if "test" in scores else "training"
            confusion = dict(matrix=shown["confusion"], classes=shown["classes"],
                             title=f"confusion matrix, {which} rows (accuracy {shown['accuracy']:.1%})")
        jobs.append(lambda: plot_training(hist, args.plot, title=title, force=args.force,
                                          confusion=confusion))
    written = files.write_each(jobs)

    summary = {
        "network": spec.describe(),
        "layers": list(spec.layers), "activations": list(spec.activations), "loss": spec.loss,
        "data": ds.source, "rows": ds.n_rows, "features": ds.features, "targets": ds.targets,
        "classes": ds.classes, "standardised": ds.scaling(),
        "test_data": run_info["test_data"], "test_split": run_info["test_split"],
        "test_rows": test.n_rows if test is not None else None,
        "gd": cfg["gd"], "batch_size": hist.batch_size, "updates_per_epoch": hist.updates_per_epoch,
        "lr": cfg["lr"], "epochs": cfg["epochs"], "init": cfg["init"], "seed": prep.seed,
        "dtype": args.dtype,
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


def _fraction(args, ex) -> float | None:
    """The --test-split in force (the flag, or the example's when no test file is given)."""
    if getattr(args, "test_split", None) is not None:
        return args.test_split
    if getattr(args, "test_data", None) or ex is None:
        return None
    return ex.test_split


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
        + f", {plural(s['updates_per_epoch'], 'update')}/epoch, η = {s['lr']:g}, {s['epochs']} epochs, "
        f"init {s['init']}" + (f", seed {s['seed']}" if s["seed"] is not None else ""),
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
