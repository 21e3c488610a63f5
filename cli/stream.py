"""``backprop train --stream``: the train command's flags and report, the data read in blocks
by :mod:`backprop.train.stream` (which knows nothing of argparse: the command lives here)."""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive import advice
from backprop.derive.spec import NOTES_2_2_1, Spec
from backprop.train import metrics, runner
from backprop.train.data import Dataset
from backprop.train.model import Model
from backprop.train.prepare import _resume, check_fits, settings
from backprop.train.progress import Progress, plural, seconds
from backprop.train.stream import (SHUFFLE_BUFFER, evaluate, fit, fix_classes, open_table, pyarrow_modules,
                                   scan, stream_metrics)

from .commands.train import write_outputs
from .common import network_given, print_json, spec_from_args
from .params import params_to_json


def train_command(args) -> int:
    """``backprop train --stream``: the in-memory command's flags, the data read in blocks."""
    if args.example:
        raise UserError("--stream reads a file given with --data; the built-in tables fit in "
                        "memory: drop --stream")
    if not args.data:
        raise UserError("--stream needs --data FILE (.csv, or .parquet) and --target COLUMN")
    if not args.target:
        raise UserError(f"name the target column of {args.data} with --target COLUMN")
    if args.test_split is not None:
        raise UserError("--test-split is not available with --stream (a stratified split needs every "
                        "row's class first); split the file, and give the test rows with --test-data")
    if getattr(args, "engine", "numpy") != "numpy":
        raise UserError("--stream reads the file in this process; --engine dask reads it on the "
                        "workers: pick one")
    if args.grad_norms:
        raise UserError("--grad-norms is not measured with --stream (it needs the rows in memory)")
    shuffle_buffer = SHUFFLE_BUFFER if args.shuffle_buffer is None else args.shuffle_buffer
    pyarrow_modules()
    network = spec_from_args(args) if network_given(args) else None
    resumed = _resume(args, network, network or Spec(**NOTES_2_2_1))
    spec = resumed.spec if resumed else (network or Spec(**NOTES_2_2_1))
    table = open_table(args.data, args.target, args.features, spec.loss, args.dtype,
                       resumed.classes if resumed else None)
    if resumed and resumed.features and resumed.features != table.features:
        raise UserError(f"{args.resume} was trained on features {', '.join(resumed.features)}; "
                        f"{table.name} gives {', '.join(table.features)}: pick them with --features")
    if resumed and resumed.standardised:
        table.mean, table.std = np.asarray(resumed.mean, float), np.asarray(resumed.std, float)
    for warning in (warned := advice.warnings(spec)):
        print(f"backprop train: warning: {warning}", file=sys.stderr)
    cfg = settings(args, None, spec.loss)
    named = bool(spec.optimizer) or args.optimizer is not None
    opt = runner.optimizer_for(spec, args.optimizer, args.lr if named else cfg["lr"])
    cfg["lr"] = opt["lr"]
    if named:
        spec = dataclasses.replace(spec, optimizer=tuple(sorted(opt.items())))
    trainer = runner.load_trainer(spec, dtype=args.dtype, backend=getattr(args, "backend", "numpy"))
    if resumed:
        params = resumed.params
        cfg["init"] = f"resumed from {args.resume}"
    else:
        params = runner.init_params(trainer, cfg["init"], seed=args.seed)
    state = runner.optimizer_state(trainer, params, opt, resumed.optimizer_state if resumed else None)

    def fits():  # the in-memory command's check, on an empty Dataset with the table's columns
        check_fits(spec, Dataset(X=np.empty((0, len(table.features))),
                                 Y=np.empty((0, len(table.output_names))), features=table.features,
                                 targets=table.output_names, source=table.name, classes=table.classes))

    if not table.labels:
        fits()  # before the scan: a wrong --layers is told at once, not after a pass
    early = not table.labels and table.mean is None and not args.standardise  # loss rides on the scan
    scanned = scan(table, trainer, params) if early else scan(table)
    if args.standardise and table.mean is None:
        table.mean, table.std = scanned.mean, scanned.std
    fits()
    test = None
    if args.test_data:
        test = open_table(args.test_data, table.targets, table.features, spec.loss, args.dtype,
                          table.classes)
        test.mean, test.std = table.mean, table.std
        if test.labels:
            fix_classes(test, set())  # the training classes, in their order

    unit, label = (1e6, "MB") if table.size * cfg["epochs"] >= 1e7 else (1e3, "kB")
    with Progress(math.ceil(max(table.size, 1) * cfg["epochs"] / unit), label=label,
                  quiet=args.quiet or args.json) as bar:
        hist = fit(trainer, params, table, epochs=cfg["epochs"], lr=cfg["lr"], gd=cfg["gd"],
                   batch_size=args.batch_size, n_rows=scanned.n_rows, seed=args.seed,
                   shuffle_buffer=shuffle_buffer, optimizer=opt, state=state,
                   initial_loss=scanned.loss, progress=bar, track_weights=bool(args.plot),
                   classes_count=len(table.classes) if table.classes else None, progress_unit=unit)

    scores = {"train": stream_metrics(table, hist.losses[-1], hist.confusion, scanned.n_rows)}
    if test is not None:
        scores["test"] = stream_metrics(test, *evaluate(trainer, params, test, len(table.classes or []) or None))
    run_info = {"data": table.name, "test_data": args.test_data, "test_split": None, "gd": cfg["gd"],
                "batch_size": hist.batch_size, "lr": cfg["lr"], "epochs": cfg["epochs"],
                "init": cfg["init"], "seed": args.seed, "dtype": args.dtype, "optimizer": opt,
                "stream": True, "shuffle_buffer": hist.shuffle_buffer,
                "backend": getattr(args, "backend", "numpy")}
    target_columns = [table.targets[0]] if table.labels else list(table.targets)
    model = Model(spec, params, table.mean, table.std, list(table.features), target_columns,
                  table.classes, extra=files.json_safe({"training": run_info, "metrics": scores}),
                  optimizer_state=hist.optimizer_state)
    title = f"{spec.describe()}\n{table.name}, {cfg['gd']}, {opt['name']}, η = {cfg['lr']:g}"
    written = write_outputs(args, model, hist, scores, title)
    shuffle_text = (f"shuffle buffer {hist.shuffle_buffer} rows" if hist.shuffle_buffer
                    else "file order (no shuffling)")
    summary = {
        "network": spec.describe(), "layers": list(spec.layers),
        "activations": list(spec.activations), "loss": spec.loss,
        "data": table.name, "rows": scanned.n_rows, "features": table.features,
        "targets": table.output_names, "classes": table.classes,
        "standardised": (None if table.mean is None else
                         {"features": list(table.features), "mean": table.mean.tolist(),
                          "std": table.std.tolist()}),
        "test_data": args.test_data, "test_split": None,
        "test_rows": scores["test"]["rows"] if test is not None else None,
        "stream": True, "shuffle_buffer": hist.shuffle_buffer,
        "gd": cfg["gd"], "batch_size": hist.batch_size, "updates_per_epoch": hist.updates_per_epoch,
        "lr": cfg["lr"], "optimizer": opt, "optimizer_steps": hist.optimizer_state["t"],
        "epochs": cfg["epochs"], "init": cfg["init"], "seed": args.seed, "dtype": args.dtype,
        "loss_initial": hist.losses[0], "loss_final": hist.losses[-1],
        "running_losses": hist.running,
        "accuracy": scores["train"].get("accuracy"),
        "test_loss": scores["test"]["loss"] if test is not None else None,
        "test_accuracy": scores["test"].get("accuracy") if test is not None else None,
        "metrics": scores, "seconds": hist.seconds[-1],
        "params": params_to_json(params), "written": [str(p) for p in written], "warnings": warned,
    }
    if args.json:
        print_json(files.json_safe(summary))
        return 0
    s = summary
    scaled = " (standardised in one streaming pass)" if s["standardised"] else ""
    lines = [
        f"network: {s['network']}",
        f"data:    {s['data']}: {plural(s['rows'], 'training row')} streamed, features "
        f"{', '.join(s['features'])}{scaled} -> {', '.join(s['targets'])}"
        + (f"; {plural(s['test_rows'], 'test row')} from {s['test_data']}" if test is not None else ""),
        f"run:     {s['gd']} GD" + (f", batch size {s['batch_size']}" if s["batch_size"] else "")
        + f", {plural(s['updates_per_epoch'], 'update')}/epoch, {shuffle_text}, "
        f"η = {s['lr']:g} ({opt['name']}), {s['epochs']} epochs, init {s['init']}"
        + (f", seed {s['seed']}" if s["seed"] is not None else ""),
        f"loss:    {s['loss_initial']:.6g} -> {s['loss_final']:.6g} in {seconds(s['seconds'])} "
        f"({seconds(s['seconds'] / s['epochs'])}/epoch; both over every row)",
    ]
    if s["accuracy"] is not None or test is not None:
        for which, m in scores.items():
            lines.extend(metrics.format_metrics(which, m))
    lines += [f"wrote {p}" for p in s["written"]]
    print("\n".join(lines))
    return 0
