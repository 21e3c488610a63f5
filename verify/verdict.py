"""The outcome of checking one equation: :class:`Verdict`, and :class:`Wrong` that carries a
wrong verdict out of nested checks.  Imports nothing of :mod:`backprop.verify`, so every checker
module (scalar, delta rule, matrix form) and the report can use it without a cycle."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Verdict:
    """The outcome for one equation (the JSON report is ``as_dict``)."""

    index: int
    source: str
    verdict: str  # correct | wrong | error
    parameter: str | None = None
    expected_latex: str | None = None
    counterexample: dict | None = None
    message: str = ""
    line: int = 0
    where: str = ""
    factor: str | None = None
    method: str = ""
    suggestions: list[str] = field(default_factory=list)
    column: int | None = None
    spec: str = ""
    #: for a wrong derivative: the known slip that reproduces the claim
    #: ({"id", "label", "explanation"} from :mod:`backprop.verify.misconceptions`), else None
    misconception: dict | None = None
    #: in a multi-line derivation: the line of the earlier wrong step this one carries on
    follows_from: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Wrong(Exception):
    """A wrong verdict raised from deep inside a check; ``kw`` are its Verdict fields."""

    def __init__(self, **kw):
        super().__init__(kw.get("message", ""))
        self.kw = kw
