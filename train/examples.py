"""The notes' three student tables, built in so ``backprop train --example NAME`` needs no files.

Each entry names its CSV under ``train/examples/``, the target column and the settings that
reproduce the notes: their 2-2-1 linear network with loss (y - ŷ)², weights initialised to 1
and biases to 0, one student at a time (stochastic GD).  The features are always
standardised: with raw IQ-sized inputs (60 to 110) the very first update overshoots and the
loss grows without bound for any learning rate the notes use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backprop.derive.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec

from .data import Dataset, load_csv

FOLDER = Path(__file__).with_name("examples")


@dataclass(frozen=True)
class Example:
    """One built-in table and the training settings that reproduce the notes."""

    name: str
    target: str
    doc: str
    lr: float = 0.01
    epochs: int = 100
    gd: str = "sgd"
    init: str = "ones"

    def __repr__(self) -> str:
        return f"Example({self.name!r})"

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.csv"

    def spec(self) -> Spec:
        return Spec(**NOTES_2_2_1)

    def load(self) -> Dataset:
        """The table with standardised features (see the module docstring for why)."""
        ds = load_csv(self.path, self.target).standardise()
        ds.source = f"example {self.name}"
        return ds


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in [
        Example("notes-iq-cgpa", "package", "IQ, CGPA -> package (LPA): 3 students"),
        Example("notes-iq-gpa", "salary", "IQ, GPA -> salary (lakh): 3 students", lr=0.1),
        Example("notes-cgpa-resume", "salary", "CGPA, resume score -> salary (LPA): 4 students"),
    ]
}


def get(name: str) -> Example:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise UserError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}") from None
