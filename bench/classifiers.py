"""Real classifiers, end to end: backprop's generated trainer against scikit-learn's MLPClassifier.

Three data sets that ship with scikit-learn (iris, digits, breast cancer), one network each,
trained the same way by both: the same hidden sizes and activation, plain SGD (no momentum, no
L2, constant learning rate), the same lr, epochs and batch size, rows shuffled every epoch,
features standardised with the training rows' mean and std, and the same 70/30 stratified
split (a fixed seed).  Each of ``--runs`` runs uses its own seed for the initial weights and
the shuffling (both trainers draw Glorot-uniform weights, each with its own generator); the
table shows the median over runs of the test accuracy and of the training time.

Why these settings: they are what makes the two compute the same updates.  sklearn's
multiclass output is softmax + log-loss (our softmax/cce) and its binary output one logistic
unit + log-loss (our sigmoid/bce); with ``alpha=0`` and ``momentum=0`` its step is
``W -= lr * mean-over-the-batch gradient``, ours too.  ``n_iter_no_change`` is set past the
epochs so sklearn never stops early (every run does all the epochs; checked).

Timed: from standardised arrays and integer labels to a trained model, what a user's code
waits for: ours one-hot encodes the labels, draws the initial weights and calls ``train``;
sklearn builds the estimator and calls ``fit`` (its input checks and label encoding are in).
Generating and importing our trainer (``load_trainer``: SymPy derivation, rendering) is paid
once per network per process and shown in its own column.  BLAS threads are limited to
``--threads`` (default 1) for both, through threadpoolctl.

    .venv/bin/pip install scikit-learn          # bench-only dependency
    nice .venv/bin/python bench/classifiers.py  # ~1-2 minutes on one core
    nice .venv/bin/python bench/classifiers.py --datasets iris --runs 1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Setup:
    """One data set's network and training settings (the same for both trainers)."""

    name: str
    loader: str  # sklearn.datasets function
    layers: tuple[int, ...]
    activations: tuple[str, str]
    loss: str
    lr: float
    epochs: int
    batch: int

    @property
    def architecture(self) -> str:
        return f"{'-'.join(map(str, self.layers))} {','.join(self.activations)}/{self.loss}"


SETUPS = {s.name: s for s in [
    Setup("iris", "load_iris", (4, 16, 3), ("relu", "softmax"), "cce", lr=0.05, epochs=200, batch=16),
    Setup("digits", "load_digits", (64, 64, 10), ("relu", "softmax"), "cce", lr=0.05, epochs=50, batch=32),
    Setup("breast_cancer", "load_breast_cancer", (30, 16, 1), ("relu", "sigmoid"), "bce", lr=0.05,
          epochs=100, batch=16),
]}

SPLIT_SEED = 0  # the 70/30 stratified split, the same for every run and both trainers
TEST_SIZE = 0.3
SK_ACTIVATION = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "linear": "identity"}


def load(setup: Setup):
    """(X_train, X_test, y_train, y_test), standardised with the training rows' statistics."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, setup.loader)(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float64), y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # digits has constant (all-zero) pixels: shift only
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test


def targets(setup: Setup, y: np.ndarray) -> np.ndarray:
    """Integer labels as the network's targets: one-hot rows (cce) or one 0/1 column (bce)."""
    if setup.loss == "cce":
        return np.eye(setup.layers[-1])[y]
    return y.reshape(-1, 1).astype(np.float64)


def run_backprop(setup: Setup, trainer, data, seed: int) -> tuple[float, float]:
    """(test accuracy, training seconds) of the generated trainer."""
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    Y = targets(setup, y_train)
    params = trainer.init_params(seed=seed, scheme="glorot")
    trainer.train(params, X_train, Y, setup.epochs, setup.lr, batch_size=setup.batch, shuffle=True, seed=seed)
    seconds = time.perf_counter() - start
    return trainer.accuracy(params, X_test, y_test), seconds


def run_sklearn(setup: Setup, data, seed: int) -> tuple[float, float]:
    """(test accuracy, training seconds) of MLPClassifier with the same network and SGD."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    est = MLPClassifier(hidden_layer_sizes=setup.layers[1:-1], activation=SK_ACTIVATION[setup.activations[0]],
                        solver="sgd", alpha=0.0, batch_size=setup.batch, learning_rate="constant",
                        learning_rate_init=setup.lr, momentum=0.0, nesterovs_momentum=False,
                        max_iter=setup.epochs, shuffle=True, random_state=seed, tol=0.0,
                        n_iter_no_change=setup.epochs + 1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: that is the plan
        est.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    if est.n_iter_ != setup.epochs:
        raise RuntimeError(f"sklearn stopped after {est.n_iter_} of {setup.epochs} epochs")
    return float(est.score(X_test, y_test)), seconds


def bench(setup: Setup, runs: int) -> dict:
    """Both trainers on one data set, ``runs`` seeds each, interleaved (ours, sklearn, ours, ...)."""
    from backprop.codegen import load_trainer
    from backprop.derive import make_spec

    data = load(setup)
    start = time.perf_counter()
    trainer = load_trainer(make_spec("-".join(map(str, setup.layers)), list(setup.activations), setup.loss))
    codegen_seconds = time.perf_counter() - start
    results = {"backprop": [], "sklearn": []}
    for seed in range(runs):
        results["backprop"].append(run_backprop(setup, trainer, data, seed))
        results["sklearn"].append(run_sklearn(setup, data, seed))
    out = {"setup": {**asdict(setup), "architecture": setup.architecture},
           "rows": {"train": len(data[0]), "test": len(data[1])}, "codegen_seconds": codegen_seconds}
    for who, pairs in results.items():
        accuracies, seconds = [a for a, _ in pairs], [s for _, s in pairs]
        out[who] = {"accuracy": accuracies, "seconds": seconds,
                    "median_accuracy": statistics.median(accuracies), "median_seconds": statistics.median(seconds)}
    return out


def table(results: list[dict]) -> str:
    """The results as a Markdown table."""
    lines = ["| data set | network | rows train/test | epochs, batch, lr | backprop acc | sklearn acc | "
             "backprop s | sklearn s | speed-up | codegen s (once) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s, ours, theirs = r["setup"], r["backprop"], r["sklearn"]
        lines.append(
            f"| {s['name']} | {s['architecture']} | {r['rows']['train']}/{r['rows']['test']} | "
            f"{s['epochs']}, {s['batch']}, {s['lr']:g} | {ours['median_accuracy']:.1%} | "
            f"{theirs['median_accuracy']:.1%} | {ours['median_seconds']:.3f} | {theirs['median_seconds']:.3f} | "
            f"{theirs['median_seconds'] / ours['median_seconds']:.1f}× | {r['codegen_seconds']:.2f} |")
    return "\n".join(lines)


def environment(threads: int) -> dict:
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "sklearn": sklearn.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "blas_threads": threads,
            "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(SETUPS), help=f"comma-separated: {', '.join(SETUPS)}")
    parser.add_argument("--runs", type=int, default=3, help="seeds per trainer; medians are shown (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETUPS]
    if unknown or args.runs < 1 or args.threads < 1:
        parser.error(f"unknown data set {unknown[0]!r}" if unknown else "--runs and --threads must be at least 1")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        parser.error("scikit-learn is not installed: .venv/bin/pip install scikit-learn")
    with threadpool_limits(limits=args.threads):
        results = [bench(SETUPS[n], args.runs) for n in names]
    report = {"environment": environment(args.threads), "runs": args.runs, "results": results}
    print(table(results))
    print()
    print(json.dumps(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
