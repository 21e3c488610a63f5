"""``backprop train --engine dask``: the train command's flags and report, the training run by
:mod:`backprop.train.distributed` on Dask workers (which knows nothing of argparse: the
command lives here, as the --stream one does in :mod:`backprop.cli.stream`)."""
from __future__ import annotations

import dataclasses

import numpy as np

from backprop.core import files
from backprop.core.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec
from backprop.train import runner
from backprop.train import distributed
from backprop.train.distributed import WorkerLost, connect
from backprop.train.model import Model
from backprop.train.prepare import _resume, settings
from backprop.train.progress import Progress, plural, seconds

#: Flags of `backprop train` that --engine dask does not take, and why.
NOT_WITH_DASK = {
    "example": "the built-in tables are small: train them with --engine numpy",
    "test_split": "hold out test rows in files of their own and evaluate with backprop predict",
    "test_data": "evaluate the model file with backprop predict",
    "plot": "write --history and plot it, or train with --engine numpy",
    "grad_norms": "it needs the rows on the client; train with --engine numpy",
}


def train_command(args, network) -> tuple[dict, str]:
    """`backprop train --engine dask`: (the JSON summary, the text report).  ``network``: the
    Spec the flags name, or None.  With --params-out the model file is written atomically
    after every epoch, so a run that stops (a lost worker) leaves the last finished epoch's."""
    for flag, why in NOT_WITH_DASK.items():
        if getattr(args, flag, None):
            raise UserError(f"--{flag.replace('_', '-')} is not available with --engine dask; {why}")
    if getattr(args, "backend", None) not in (None, "numpy"):
        raise UserError(f"--engine dask runs the NumPy trainer on every worker; drop --backend "
                        f"{args.backend}")
    if not args.data:
        raise UserError("--engine dask trains on files: give --data FILE.csv or --data 'parts/*.csv' "
                        "and --target COLUMN")
    if not args.target:
        raise UserError(f"name the target column of {args.data} with --target COLUMN")
    resumed = _resume(args, network, network or Spec(**NOTES_2_2_1))
    spec = resumed.spec if resumed else (network or Spec(**NOTES_2_2_1))
    cfg = settings(args, None, spec.loss)
    named = bool(spec.optimizer) or args.optimizer is not None  # as the numpy engine's run()
    opt = runner.optimizer_for(spec, args.optimizer, args.lr if named else cfg["lr"])
    if named:
        spec = dataclasses.replace(spec, optimizer=tuple(sorted(opt.items())))
    trainer = runner.load_trainer(spec, dtype=args.dtype)
    params = (resumed.params if resumed else
              runner.init_params(trainer, cfg["init"], seed=args.seed))
    state = runner.optimizer_state(trainer, params, opt,
                                   resumed.optimizer_state if resumed else None)
    scaling = (resumed.mean, resumed.std) if resumed and resumed.standardised else None
    info = {"engine": "dask", "data": args.data, "gd": cfg["gd"], "lr": opt["lr"],
            "epochs": cfg["epochs"], "init": f"resumed from {args.resume}" if resumed else cfg["init"],
            "seed": args.seed, "dtype": args.dtype, "optimizer": opt,
            "scheduler": args.scheduler, "workers": None}
    saved = {"epoch": None, "path": args.params_out}

    def model(run, metrics=None) -> Model:
        extra = {"training": {**info, "workers": len(run.workers)}}
        if metrics:
            extra["metrics"] = {"train": metrics}
        return Model(spec, params, run.mean, run.std, list(run.features), run.target_columns,
                     run.classes, extra=files.json_safe(extra),
                     optimizer_state=run.history.optimizer_state)

    def save(run, metrics=None) -> None:
        files.write_json(args.params_out, model(run, metrics).to_json(),
                         args.force or saved["epoch"] is not None)

    with Progress(cfg["epochs"], quiet=args.quiet or args.json) as bar:
        def callback(epoch, run):
            bar.update(epoch, run.history.losses[-1])
            if args.params_out:
                save(run)
                saved["epoch"] = epoch

        try:
            with connect(2 if args.workers is None else args.workers, args.scheduler) as client:
                run = distributed.fit(spec, params, args.data, args.target, client=client,
                                      features=args.features, epochs=cfg["epochs"], lr=opt["lr"],
                                      gd=cfg["gd"], batch_size=args.batch_size, seed=args.seed,
                                      optimizer=opt, state=state, standardise=args.standardise,
                                      scaling=scaling, classes=resumed.classes if resumed else None,
                                      dtype=args.dtype, callback=callback,
                                      n_workers=args.workers if args.scheduler else None)
        except WorkerLost as exc:
            kept = (f"; {args.params_out} holds the model after epoch {saved['epoch']} "
                    f"(--resume {args.params_out} to go on)" if saved["epoch"] is not None else
                    "; no model file was written")
            raise WorkerLost(f"{exc}{kept}") from None
    hist = run.history
    metrics = {"loss": hist.losses[-1], "accuracy": run.accuracy}
    written = []
    if args.params_out:
        save(run, metrics)
        written.append(args.params_out)
    if args.history:
        written.append(str(files.write(args.history, hist.to_csv(), args.force)))
    steps = run.step_seconds
    summary = files.json_safe({
        "engine": "dask", "network": spec.describe(), "layers": list(spec.layers),
        "activations": list(spec.activations), "loss": spec.loss,
        "data": args.data, "partitions": [p.name for p in run.parts],
        "workers": run.workers, "scheduler": args.scheduler, "rows": hist.n_rows,
        "features": run.features, "targets": run.targets, "classes": run.classes,
        "standardised": None if run.mean is None else {"features": run.features,
                                                       "mean": run.mean.tolist(),
                                                       "std": run.std.tolist()},
        "gd": cfg["gd"], "batch_size": hist.batch_size,
        "updates_per_epoch": hist.updates_per_epoch, "lr": opt["lr"], "optimizer": opt,
        "optimizer_steps": hist.optimizer_state["t"], "epochs": cfg["epochs"],
        "init": info["init"], "seed": args.seed, "dtype": args.dtype,
        "loss_initial": hist.losses[0], "loss_final": hist.losses[-1], "accuracy": run.accuracy,
        "seconds": hist.seconds[-1], "load_seconds": run.load_seconds,
        "step_seconds_median": float(np.median(steps)) if steps else None,
        "params": {k: np.asarray(v).tolist() for k, v in params.items()},
        "written": written,
    })
    lines = [
        f"network: {summary['network']}",
        f"data:    {args.data}: {plural(hist.n_rows, 'row')} in {plural(len(run.parts), 'partition')}"
        f" on {plural(len(run.workers), 'Dask worker')}, features {', '.join(run.features)}"
        + (" (standardised)" if run.mean is not None else "") + f" -> {', '.join(run.targets)}",
        f"run:     {cfg['gd']} GD" + (f", batch size {hist.batch_size}" if hist.batch_size else "")
        + f", {plural(hist.updates_per_epoch, 'update')}/epoch, {opt['name']} η = {opt['lr']:g}, "
        f"{cfg['epochs']} epochs, init {info['init']}"
        + (f", seed {args.seed}" if args.seed is not None else ""),
        f"loss:    {hist.losses[0]:.6g} -> {hist.losses[-1]:.6g} in {seconds(hist.seconds[-1])} "
        f"({seconds(summary['step_seconds_median'])}/update, median; loading {seconds(run.load_seconds)})",
    ]
    if run.accuracy is not None:
        lines.append(f"accuracy: {run.accuracy:.1%} of the training rows")
    lines += [f"wrote {path}" for path in written]
    return summary, "\n".join(lines)
