"""Apply a trained model file to new rows: predicted labels and class probabilities, or values.

The model file (`backprop train --params-out`) names the features it was trained on, so the
CSV's columns are found by name: other columns are ignored, order does not matter, and the
target column may be missing.  The stored standardisation is applied to the raw rows before the
network sees them.  Output (a CSV, to -o FILE or stdout): the data row number, the predicted
label and one probability column per class (cce; bce: the probability of the positive class,
the second label), or the predicted values (regression).  When the CSV holds the target column
too, the loss and (classifiers) accuracy, per-class precision/recall and the confusion matrix
are printed (on stderr when the predictions go to stdout).

An older plain params file ({"W1": ...} only) needs the network (--spec or --layers/
--activations/--loss) and takes every column but --target as the features, unscaled.

examples:
  backprop predict --params iris.json --data new_flowers.csv -o predictions.csv
  backprop predict --params iris.json --data flowers.csv --json
  backprop predict --params old.json --layers 2-2-1 --data students.csv --target package
"""
from __future__ import annotations

import csv
import io
import sys

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive.losses import LOSSES
from backprop.train import metrics, runner
from backprop.train.data import load_csv, load_features, read_header, split_names
from backprop.train.model import Model, load_model

from ..common import add_spec_arguments, print_json, spec_from_args

NAME = "predict"
HELP = "apply a trained model file to new CSV rows: labels and probabilities, or values"
ORDER = 41


def add_arguments(parser) -> None:
    parser.add_argument("--params", metavar="JSON", required=True,
                        help="the model file (backprop train --params-out), or an older plain "
                        "params file with --spec or --layers")
    parser.add_argument("--data", metavar="CSV", required=True,
                        help="rows to predict: a header row naming at least the model's features")
    parser.add_argument("-o", "--output", metavar="CSV",
                        help="write the predictions here (default: CSV on stdout)")
    parser.add_argument("--json", action="store_true",
                        help="print predictions and metrics as one JSON document on stdout")
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")
    old = parser.add_argument_group("older plain params files (no names or spec inside)")
    old.add_argument("--features", metavar="COL", action="append",
                     help="feature columns (default: every column that is not a --target)")
    old.add_argument("--target", metavar="COL", action="append",
                     help="target column(s), to leave out of the features and to score against")
    add_spec_arguments(parser)


def _model(args) -> Model:
    """The model file; with network flags the file must be that network (or a plain file)."""
    flags = any(getattr(args, f, None) for f in ("spec", "layers", "activations", "loss"))
    if flags or args.no_bias:
        return load_model(args.params, spec_from_args(args))
    return load_model(args.params)


def _columns(args, model: Model, header: list[str]) -> tuple[list[str], list[str]]:
    """(features, targets): the model file's names, or for a plain file the flags'."""
    if model.features is not None:
        for flag in ("features", "target"):
            if getattr(args, flag):
                raise UserError(f"--{flag} is for plain params files; {args.params} names its own "
                                f"({', '.join(model.features if flag == 'features' else model.targets or [])})")
        return list(model.features), list(model.targets or [])
    targets = split_names(args.target)
    features = split_names(args.features) or [c for c in header if c not in set(targets)]
    return features, targets


def run(args) -> int:
    if args.output:
        files.preflight([args.output], force=args.force)
    model = _model(args)
    spec = model.spec
    header = read_header(args.data)
    features, targets = _columns(args, model, header)
    missing = [f for f in features if f not in header]
    if missing:
        raise UserError(f"{args.data}: no column {missing[0]!r}, a feature the model was trained on "
                        f"(it needs {', '.join(features)}); the columns are {', '.join(header)}")
    if len(features) != spec.n_inputs:
        raise UserError(f"{args.data}: {len(features)} feature column(s) ({', '.join(features)}) but "
                        f"the {spec.describe()} takes {spec.n_inputs}; name them with --features")
    labelled = bool(targets) and all(t in header for t in targets)
    if labelled:
        ds = load_csv(args.data, targets, features, loss=spec.loss, classes=model.classes)
    else:
        ds = load_features(args.data, features, origin=f"the model file {args.params}")
    classes = model.classes or (ds.classes if labelled else None) or _default_classes(spec)
    X = model.scale(ds.X)
    trainer = runner.load_trainer(spec)
    P = trainer.forward(model.params, X)
    columns, rows = prediction_table(spec.loss, P, classes, targets)
    scores = None
    if labelled:
        if ds.Y.shape[1] != spec.n_outputs:
            raise UserError(f"{args.data}: the target column(s) {', '.join(targets)} give "
                            f"{ds.Y.shape[1]} outputs; the {spec.describe()} has {spec.n_outputs}")
        scores = metrics.evaluate(spec.loss, ds.Y, P, float(trainer.loss(model.params, X, ds.Y)),
                                  classes)
    written = []
    if args.output:
        written.append(files.write(args.output, to_csv(columns, rows), force=args.force))
    if args.json:
        print_json(files.json_safe({
            "model": args.params, "network": spec.describe(), "data": args.data,
            "rows": ds.n_rows, "features": features, "standardised": model.standardised,
            "classes": classes if metrics.is_classifier(spec.loss) else None,
            "columns": columns, "predictions": [dict(zip(columns, r)) for r in rows],
            "metrics": scores, "written": [str(p) for p in written]}))
        return 0
    report = []
    if scores is not None:
        report += metrics.format_metrics(f"{args.data} against its {', '.join(targets)}", scores)
    if args.output:
        report.append(f"wrote {args.output} ({ds.n_rows} rows)")
        print("\n".join(report))
    else:
        sys.stdout.write(to_csv(columns, rows))
        if report:
            print("\n".join(report), file=sys.stderr)
    return 0


def _default_classes(spec) -> list[str] | None:
    """Class names when nothing names them: the output index (cce) or 0 and 1 (bce)."""
    if not metrics.is_classifier(spec.loss):
        return None
    return [str(k) for k in range(metrics.n_classes(spec.loss, spec.n_outputs))]


def prediction_table(loss: str, P: np.ndarray, classes: list[str] | None,
                     targets: list[str]) -> tuple[list[str], list[list]]:
    """Column names and rows: data row number, then the predicted label and each class's
    probability (classifiers; bce: the positive class's only) or the predicted values."""
    n = len(P)
    numbers = list(range(1, n + 1))
    if metrics.is_classifier(loss):
        name = targets[0] if len(targets) == 1 else "class"
        labels = [classes[k] for k in metrics.class_indices(loss, P)]
        shown = classes if LOSSES[loss].one_hot else classes[1:]  # one output: the positive class
        columns = ["row", f"predicted_{name}"] + [f"p_{c}" for c in shown]
        return columns, [[i, label, *map(float, p)] for i, label, p in zip(numbers, labels, P)]
    names = targets if len(targets) == P.shape[1] else [f"y{j + 1}" for j in range(P.shape[1])]
    columns = ["row"] + [f"predicted_{t}" for t in names]
    return columns, [[i, *map(float, p)] for i, p in zip(numbers, P)]


def to_csv(columns: list[str], rows: list[list]) -> str:
    """The table as CSV text (floats written in full, shortest round-trip form)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[repr(v) if isinstance(v, float) else v for v in r] for r in rows])
    return buf.getvalue()
