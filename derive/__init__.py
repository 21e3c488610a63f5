"""Symbolic backpropagation in the notes' notation.

    >>> from backprop.derive import derive, make_spec
    >>> d = derive(make_spec("2-2-1", "linear", "se"))
    >>> d.gradient("w^1_11")
    Gradient(∂L/∂w^1_11 = -2 (y - ŷ) w^2_11 x_i1)
    >>> len(d.gradients), d.gradients[0]
    (9, Gradient(∂L/∂w^2_11 = -2 (y - ŷ) O_11))

Data flows one way: :mod:`spec` → :mod:`network` (forward definitions) → :mod:`derivation`
(memoised δ, per-parameter forms) → :mod:`vectorised` (matrix form) → :mod:`printing`;
:mod:`advice` holds the tables of pairings that make no sense and of assumptions stated.
"""
from backprop.core.errors import UserError, UserTypeError  # public: what library callers catch

from .activations import ACTIVATIONS
from .derivation import FORMS, Derivation, Factor, Gradient, Gradients, derive, numeric_gradients
from .losses import LOSSES
from .network import Network
from .spec import NOTES_2_2_1, Spec, load_toml, make_spec
from .vectorised import VectorisedForm, vectorise

__all__ = [
    "ACTIVATIONS", "FORMS", "LOSSES", "NOTES_2_2_1", "Derivation", "Factor", "Gradient", "Gradients", "Network",
    "Spec", "UserError", "UserTypeError", "VectorisedForm", "derive", "load_toml", "make_spec",
    "numeric_gradients", "vectorise",
]
