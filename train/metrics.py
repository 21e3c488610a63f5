"""Classifier metrics as pure functions: confusion matrix, accuracy, per-class precision/recall/F1.

Everything here works on class indices (0..k-1), so it is the same for cce (one output per
class, the prediction is the arg max) and bce (one output, class 1 when ŷ ≥ ½): the loss
table's entry decides (:meth:`backprop.derive.losses.Loss.decide`).  The values
follow scikit-learn's definitions (rows of the confusion matrix are the true classes, columns
the predicted ones; a precision or recall whose denominator is 0 is 0, sklearn's
``zero_division=0``), so they can be checked against ``sklearn.metrics``.
"""
from __future__ import annotations

import numpy as np

from backprop.derive.losses import LOSSES


def is_classifier(loss: str | None) -> bool:
    """Whether training treats ``loss`` as a classifier (class labels in the data, accuracy and
    a confusion matrix reported): a classification loss of the table whose targets are 0/1
    class indicators, bce's 0/1 column or cce's one-hot rows, so the outputs are probabilities.
    hinge's ±1 targets are read and reported as numbers, as the generated trainer does."""
    entry = LOSSES.get(loss)
    return entry is not None and entry.classification and entry.targets.labels == (0, 1)


def classifiers() -> tuple[str, ...]:
    """The losses :func:`is_classifier` accepts, in table order (for help and error text)."""
    return tuple(name for name in LOSSES if is_classifier(name))


def class_indices(loss: str, Y: np.ndarray) -> np.ndarray:
    """The class of every row of a target or prediction matrix, as the loss's table entry
    reads it: arg max of one-hot rows (cce), ŷ ≥ ½ of the first output (bce)."""
    if not is_classifier(loss):
        raise ValueError(f"{loss} is not a classifier loss")
    return LOSSES[loss].decide(Y)


def n_classes(loss: str, n_outputs: int) -> int:
    """Classes a network with ``n_outputs`` outputs tells apart (bce: 2 from one output)."""
    return LOSSES[loss].n_classes(n_outputs)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: entry [i, j] is the number of rows of true class i predicted as j."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(true, dtype=int), np.asarray(pred, dtype=int)), 1)
    return cm


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0 where den is 0 (a class never predicted has precision 0, as sklearn)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision TP/(TP+FP), recall TP/(TP+FN), F1 (their harmonic mean) and support."""
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0)  # column sums: rows predicted as the class
    support = cm.sum(axis=1)  # row sums: rows truly of the class
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def accuracy(cm: np.ndarray) -> float:
    """Fraction of rows on the diagonal (classified right); 0 for no rows."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def evaluate(loss: str, Y: np.ndarray, P: np.ndarray, loss_value: float,
             classes: list[str] | None = None) -> dict:
    """One set's metrics as JSON: rows and loss for every network; for classifiers also
    accuracy, the confusion matrix and per-class precision/recall/F1 with the class names."""
    out = {"rows": int(len(Y)), "loss": float(loss_value)}
    if not is_classifier(loss):
        return out
    k = n_classes(loss, Y.shape[1])
    names = list(classes) if classes and len(classes) == k else [str(i) for i in range(k)]
    cm = confusion_matrix(class_indices(loss, Y), class_indices(loss, P), k)
    per = precision_recall_f1(cm)
    out.update({
        "accuracy": accuracy(cm),
        "classes": names,
        "confusion": cm.tolist(),
        "per_class": [{"class": name, "precision": float(per["precision"][i]),
                       "recall": float(per["recall"][i]), "f1": float(per["f1"][i]),
                       "support": int(per["support"][i])} for i, name in enumerate(names)],
    })
    return out


def format_metrics(name: str, m: dict) -> list[str]:
    """Text lines for one set: a summary line, then (classifiers) a per-class table and the
    confusion matrix with the class names on both axes."""
    head = f"{name} ({m['rows']} rows): loss {m['loss']:.6g}"
    if "accuracy" not in m:
        return [head]
    lines = [f"{head}, accuracy {m['accuracy']:.1%}"]
    names = m["classes"]
    width = max(8, *(len(c) for c in names))
    lines.append(f"  {'class':<{width}}  precision  recall     f1  support")
    for row in m["per_class"]:
        lines.append(f"  {row['class']:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
                     f"{row['f1']:5.3f}  {row['support']:7d}")
    cell = max(5, *(len(c) for c in names), len(str(max(max(r) for r in m["confusion"]))))
    lines.append("  confusion (rows: true class, columns: predicted)")
    lines.append(f"  {'':<{width}}  " + " ".join(f"{c:>{cell}}" for c in names))
    for label, row in zip(names, m["confusion"]):
        lines.append(f"  {label:<{width}}  " + " ".join(f"{v:>{cell}d}" for v in row))
    return lines
