"""Built-in tables, so ``backprop train --example NAME`` needs no files: the notes' three student
tables and Fisher's iris.

Each entry names its CSV under ``train/examples/``, the target column, its network and the
settings that reproduce its documented result.  The notes' tables train the notes' way: their
2-2-1 linear network with loss (y - ŷ)², weights initialised to 1 and biases to 0, one student
at a time (stochastic GD).  Iris trains a 4-8-3 relu/softmax classifier with cce on 70 % of
the flowers (stratified split, seed 1) and is tested on the other 30 %.  The features are
always standardised (statistics from the training rows only): with raw IQ-sized inputs (60 to
110) the very first update overshoots and the loss grows without bound for any learning rate
the notes use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backprop.core.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec

from .data import Dataset, load_csv

FOLDER = Path(__file__).with_name("examples")

#: The iris classifier: 4 measurements -> 8 relu nodes -> 3 softmax outputs, one per species.
IRIS_4_8_3 = dict(layers=(4, 8, 3), activations=("relu", "softmax"), loss="cce", bias=True)


@dataclass(frozen=True)
class Example:
    """One built-in table, its network and the training settings of its documented result."""

    name: str
    target: str
    doc: str
    lr: float = 0.01
    epochs: int = 100
    gd: str = "sgd"
    init: str = "ones"
    network: tuple = tuple(NOTES_2_2_1.items())  # Spec(**dict(network)); a tuple keeps it frozen
    seed: int | None = None  # the documented seed (initial weights, shuffling, the split)
    test_split: float | None = None  # fraction of rows held out for testing

    def __repr__(self) -> str:
        return f"Example({self.name!r})"

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.csv"

    def spec(self) -> Spec:
        return Spec(**dict(self.network))

    def load(self, loss: str | None = None, dtype: str = "float64",
             classes: list[str] | None = None) -> Dataset:
        """The raw table (not yet standardised: the caller splits first, then standardises the
        training rows; see the module docstring).  ``loss`` decides whether the target is read
        as class labels (default: the example's own network's loss)."""
        ds = load_csv(self.path, self.target, loss=loss or self.spec().loss, dtype=dtype,
                      classes=classes)
        ds.source = f"example {self.name}"
        return ds


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in [
        Example("notes-iq-cgpa", "package", "IQ, CGPA -> package (LPA): 3 students"),
        Example("notes-iq-gpa", "salary", "IQ, GPA -> salary (lakh): 3 students", lr=0.1),
        Example("notes-cgpa-resume", "salary", "CGPA, resume score -> salary (LPA): 4 students"),
        Example("iris", "species", "Fisher's iris: 4 measurements (cm) -> setosa, versicolor, "
                "virginica: 150 flowers", lr=0.1, epochs=200, gd="minibatch", init="glorot",
                network=tuple(IRIS_4_8_3.items()), seed=1, test_split=0.3),
    ]
}


def get(name: str) -> Example:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise UserError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}") from None
