"""The weight initialisation schemes: ONE table, read by the generated trainer's init
functions (rendered from it), every --init flag (train, compare-gd, vanishing, draw, step,
explain) and their help.

An entry names a scheme and says in one line what it does (the trainer function's docstring).
``body`` is the NumPy body of the trainer's ``_NAME(rng, fan_in, fan_out)`` (float64 weights,
cast to the trainer's dtype after); an entry without one is not in the generated trainer:
backprop.train.runner draws its weights from N(0, ``std``²) over the trainer's zero start.
Biases always start at 0.  Adding a scheme is one entry (the committed trainers regenerate).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InitScheme:
    """One row: ``doc`` the trainer function's docstring, ``gloss`` the --init help's note."""

    name: str
    doc: str
    body: tuple[str, ...] | None = None
    std: float | None = None
    gloss: str = ""

    def __post_init__(self):
        if (self.body is None) == (self.std is None):
            raise ValueError(f"init scheme {self.name}: give the trainer's body or a std, one of them")


SCHEMES: dict[str, InitScheme] = {
    s.name: s
    for s in [
        InitScheme("glorot", "Uniform in ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio).",
                   ("limit = np.sqrt(6.0 / (fan_in + fan_out))",
                    "return rng.uniform(-limit, limit, size=(fan_in, fan_out))")),
        InitScheme("he", "Normal with standard deviation sqrt(2 / fan_in) (He et al.), for relu layers.",
                   ("return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))",)),
        InitScheme("ones", "Every weight 1: the notes' hand-worked start.",
                   ("return np.ones((fan_in, fan_out))",), gloss="the notes: w=1, b=0"),
        InitScheme("zeros", "Every weight 0 (hidden nodes then stay identical: for checks, not for "
                   "training).", ("return np.zeros((fan_in, fan_out))",)),
        InitScheme("small", "Normal with standard deviation 0.01: the classic vanishing case.",
                   std=0.01, gloss="N(0, 0.01²)"),
    ]
}

#: What a run starts from when no --init is given (step and explain: the notes' ones instead).
DEFAULT = "glorot"
#: The schemes the generated trainer's init_params(scheme=...) provides, in table order.
TRAINER = tuple(name for name, s in SCHEMES.items() if s.body is not None)


def help_text(names=None, default: str | None = DEFAULT) -> str:
    """'glorot (default), he, ones (the notes: w=1, b=0), ...' for an --init help."""
    def one(name: str) -> str:
        notes = ["default"] * (name == default) + [SCHEMES[name].gloss] * bool(SCHEMES[name].gloss)
        return f"{name} ({', '.join(notes)})" if notes else name
    return ", ".join(one(name) for name in (SCHEMES if names is None else names))


def trainer_context() -> dict:
    """The generated trainer's template fields for its init functions: ``init_schemes`` (the
    entries it defines), ``schemes`` (its SCHEMES tuple), ``scheme_set`` (the docstring's
    ``{"glorot", ...}``), ``initialisers`` (name -> function) and ``default_scheme``."""
    quoted = [f'"{name}"' for name in TRAINER]
    return {"init_schemes": [SCHEMES[name] for name in TRAINER],
            "schemes": f"({', '.join(quoted)}{',' * (len(quoted) == 1)})",
            "scheme_set": "{" + ", ".join(quoted) + "}",
            "initialisers": "{" + ", ".join(f"{q}: _{name}" for q, name in zip(quoted, TRAINER)) + "}",
            "default_scheme": DEFAULT}
