"""Every name the generated trainer uses, in one place (after tangent's ``naming.py``).

The names follow the notes: layer k has weights ``W{k}`` (``W{k}[i-1, j-1]`` is w^k_ij),
biases ``b{k}``, pre-activations ``Z{k}`` and outputs ``O{k}``; backprop keeps
``delta{k}`` = ∂L/∂Z^k and ``dO{k}`` = ∂L/∂O^k, and the gradients are ``dW{k}``, ``db{k}``.
Element-wise activation functions are called by their table key (``sigmoid``) and their
derivatives ``<key>_derivative``; anything internal starts with an underscore (``_t0``).
Same spec in, same names out.  Only validated identifiers reach the generated source:
:func:`identifier` refuses anything else, so no user text can become code.
"""
from __future__ import annotations

import keyword

#: Names the generated module defines itself; an activation may not shadow them.
MODULE_API = frozenset({
    "LAYERS", "ACTIVATIONS", "LOSS", "BIAS", "DTYPE", "SCHEMES", "init_params", "forward",
    "nodes", "loss", "gradients", "loss_and_gradients", "sgd_step", "train", "main", "np",
    "argparse", "csv", "json", "os", "sys", "tempfile",
})

#: The batch arrays and scalars every function body uses.
X = "X"
Y = "Y"
N_ROWS = "n_rows"
PARAMS = "params"
LR = "lr"
#: sgd_step's preallocated arrays (a dict keyed by node name: "Z1", "dO1", "dW1", ...).
BUFFERS = "B"


def identifier(text: str) -> str:
    """``text`` if it is a plain Python identifier (ASCII, not a keyword), else ValueError."""
    if not (text.isascii() and text.isidentifier()) or keyword.iskeyword(text):
        raise ValueError(f"{text!r} cannot be used as a name in generated code")
    return text


def W(k: int) -> str:
    """Weights into layer k: W1, W2, ..."""
    return f"W{int(k)}"


def b(k: int) -> str:
    """Biases of layer k: b1, b2, ..."""
    return f"b{int(k)}"


def Z(k: int) -> str:
    """Pre-activations of layer k (the notes' z_kj, one column per node)."""
    return f"Z{int(k)}"


def O(k: int) -> str:
    """Outputs of layer k (the notes' O_kj); ``O0`` is never used: layer 0 is ``X``."""
    return X if int(k) == 0 else f"O{int(k)}"


def delta(k: int) -> str:
    """δ^k = ∂L/∂Z^k."""
    return f"delta{int(k)}"


def dO(k: int) -> str:
    """∂L/∂O^k, what layer k+1 sends back."""
    return f"dO{int(k)}"


def dW(k: int) -> str:
    return f"dW{int(k)}"


def db(k: int) -> str:
    return f"db{int(k)}"


def temporary(i: int) -> str:
    """Common subexpressions: _t0, _t1, ..."""
    return f"_t{int(i)}"


def activation(name: str) -> str:
    """The generated function computing activation ``name`` (its table key)."""
    name = identifier(name)
    return f"{name}_activation" if name in MODULE_API else name


def derivative(name: str) -> str:
    """The generated function computing the derivative of activation ``name``."""
    return f"{identifier(name)}_derivative"


def backward(name: str) -> str:
    """The generated function for a row-wise activation's backward step (softmax_backward)."""
    return f"{identifier(name)}_backward"


def params_key(kind: str, k: int) -> str:
    """The key of a parameter matrix in the params / gradients dicts: "W1", "b1"."""
    return W(k) if kind == "W" else b(k)
