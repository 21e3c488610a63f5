"""From the data and run flags of `backprop train` and `backprop compare-gd` to rows ready to train.

:func:`prepare` resolves the network (the flags', a resumed model file's or an example's),
reads the data, holds out the test rows and standardises with the training rows' statistics;
:func:`settings` picks epochs, η, GD variant and initialisation (flag, else the example's, else
the defaults for the loss).  ``args`` is the parsed flags: any object with their attributes.
"""
from __future__ import annotations

from dataclasses import dataclass

from backprop.core.errors import UserError
from backprop.derive.losses import LOSSES
from backprop.derive.spec import NOTES_2_2_1, Spec

from . import examples
from .data import Dataset, load_csv, split
from .metrics import is_classifier
from .model import Model, load_model

#: Run settings when neither a flag nor the example gives one.
DEFAULTS = dict(epochs=100, lr=0.01, gd="batch", init="glorot")
#: A classifier's (bce, cce: :func:`~backprop.train.metrics.is_classifier`): 100 full-batch
#: updates at η = 0.01 left a 4-8-3 iris network at 49-93 % test accuracy (mean 72 % over 10
#: seeds); mini-batches (see runner.default_batch_size) at η = 0.1 for 200 epochs reach
#: 87-100 % (mean 95 % over 30 seeds, the spread being the 45-row test set's split).  η = 0.1
#: is safe there because ∂L/∂z = ŷ - y of a sigmoid/softmax output lies in [-1, 1]; a
#: regression's ∂L/∂ŷ grows with the targets (y = 5 already diverges with sgd at η = 0.1), so
#: regression keeps DEFAULTS.
CLASSIFIER_DEFAULTS = dict(epochs=200, lr=0.1, gd="minibatch", init="glorot")


@dataclass
class Prepared:
    """What the network and data flags resolve to, ready to train."""

    spec: Spec
    train: Dataset
    test: Dataset | None
    example: examples.Example | None
    resumed: Model | None  # the --resume file, read
    seed: int | None  # --seed, or the example's documented seed


def network_and_data(args, network: Spec | None):
    """(spec, dataset, example or None) from the network and data flags (compare-gd's view:
    every row, standardised when asked)."""
    prep = prepare(args, network, hold_out=False)
    return prep.spec, prep.train, prep.example


def prepare(args, network: Spec | None, hold_out: bool = True) -> Prepared:
    """Resolve the network (``network``: the one the flags name, None when no flag names one),
    read the data, split off the test rows (unless not ``hold_out``), then standardise with the
    training rows' statistics (or a resumed model file's) and apply them to the test rows."""
    ex = examples.get(args.example) if args.example else None
    if ex is not None and (args.data or args.target or args.features):
        raise UserError("--example brings its own data; drop --data/--target/--features")
    if ex is None and not args.data:
        raise UserError("give --data FILE.csv --target COLUMN, or --example NAME "
                        f"({', '.join(examples.EXAMPLES)})")
    if ex is None and not args.target:
        raise UserError(f"name the target column of {args.data} with --target COLUMN")
    seed = args.seed if args.seed is not None else getattr(ex, "seed", None)
    fallback = network or (ex.spec() if ex is not None else Spec(**NOTES_2_2_1))
    resumed = _resume(args, network, fallback)
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
    fraction = test_fraction(args, ex)
    return (ds, None) if fraction is None else split(ds, fraction, seed)


def check_fits(spec, ds: Dataset) -> None:
    n_in, n_out = ds.X.shape[1], ds.Y.shape[1]
    if n_in != spec.n_inputs:
        raise UserError(f"{ds.source} has {n_in} feature column(s) ({', '.join(ds.features)}) "
                        f"but the {'-'.join(map(str, spec.layers))} network takes {spec.n_inputs} "
                        f"input(s); pick columns with --features or set --layers {n_in}-...")
    if n_out != spec.n_outputs:
        by_class = ds.classes and LOSSES[spec.loss].one_hot  # one output per class
        what = f"{n_out} classes ({', '.join(ds.classes)})" if by_class else f"{n_out} target column(s)"
        raise UserError(f"{ds.source} gives {what} but the {'-'.join(map(str, spec.layers))} "
                        f"network has {spec.n_outputs} output(s); set --layers ...-{n_out}")


def settings(args, ex, loss: str | None = None) -> dict:
    """Run settings: flags first, then the example's (its documented run), then the defaults
    for ``loss`` (a classifier's :data:`CLASSIFIER_DEFAULTS`, else :data:`DEFAULTS`)."""
    defaults = CLASSIFIER_DEFAULTS if is_classifier(loss) else DEFAULTS
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


def test_fraction(args, ex) -> float | None:
    """The --test-split in force (the flag, or the example's when no test file is given)."""
    if getattr(args, "test_split", None) is not None:
        return args.test_split
    if getattr(args, "test_data", None) or ex is None:
        return None
    return ex.test_split
