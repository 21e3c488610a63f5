"""Every name the generated trainer uses, in one place (after tangent's ``naming.py``).

The names follow the notes: layer k has weights ``W{k}`` (``W{k}[i-1, j-1]`` is w^k_ij),
biases ``b{k}``, pre-activations ``Z{k}`` and outputs ``O{k}``; backprop keeps
``delta{k}`` = ∂L/∂Z^k and ``dO{k}`` = ∂L/∂O^k, and the gradients are ``dW{k}``, ``db{k}``.
The scalar fast path names one row's elements as the notes do, from 1: ``w1_12`` is
w^1_12, ``o1_1`` is O_11, ``x_1`` is x_i1 (:func:`element`, :func:`weight`).
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


def A(k: int) -> str:
    """A residual layer's activation g(Z^k), kept for g' (its output is O^k = A^k + O^{k-1})."""
    return f"A{int(k)}"


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


#: The scalar step's stem for an element of each array kind (the notes' z_kj, O_kj, δ_kj,
#: ∂L/∂O_kj, b_kj): node j of layer k is ``z1_1``, ``o1_1``, ``delta1_1``, ``dO1_1``, ``b1_1``.
ELEMENT_STEMS = {"Z": "z", "O": "o", "A": "a", "delta": "delta", "dO": "dO", "b": "b"}


def element(kind: str, k: int, j: int) -> str:
    """Node j (0-based) of layer k's array ``kind`` as a scalar local, numbered from 1 as the
    notes number nodes: element("O", 1, 0) is ``o1_1`` (O_11)."""
    return f"{ELEMENT_STEMS[kind]}{int(k)}_{int(j) + 1}"


def weight(k: int, i: int, j: int, fan_in: int, fan_out: int) -> str:
    """w^k_ij (i, j 0-based here) as a scalar local: ``w1_12`` for w^1_12; where a layer has 10
    nodes or more, every index of its weights is separated, ``w1_1_10``, so no name is
    ambiguous (w1_110 could be w^1_1,10 or w^1_11,0)."""
    i, j = int(i) + 1, int(j) + 1
    return f"w{int(k)}_{i}_{j}" if max(fan_in, fan_out) >= 10 else f"w{int(k)}_{i}{j}"


def inputs(n: int) -> list[str]:
    """One row's inputs as scalar locals: x_1, x_2, ... (the notes' x_i1, x_i2)."""
    return [f"x_{i + 1}" for i in range(int(n))]


def target(j: int) -> str:
    """Output j's target (0-based j) as a scalar local: y_1, y_2, ..."""
    return f"y_{int(j) + 1}"


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


#: Batch norm's arrays of layer k (derive.graph's kinds): μ^k, (σ^k)², X̂^k, Z̃^k, γ^k, β^k and
#: the gradients ∂L/∂Z̃^k, ∂L/∂γ^k, ∂L/∂β^k; eval mode's running statistics live in params.
BATCH_NORM_STEMS = {"mu": "mu", "var": "var", "Xhat": "Xhat", "Zn": "Zn", "gamma": "gamma",
                    "beta": "beta", "dZn": "dZn", "dgamma": "dgamma", "dbeta": "dbeta"}


def batch_norm(kind: str, k: int) -> str:
    """Layer k's batch-norm array ``kind``: mu1, var1, Xhat1, Zn1 (Z̃^1), gamma1, dgamma1, ..."""
    return f"{BATCH_NORM_STEMS[kind]}{int(k)}"


def running(stat: str, k: int) -> str:
    """The params key of layer k's running statistic (eval mode): running_mean1, running_var1."""
    return f"running_{identifier(stat)}{int(k)}"


def params_key(kind: str, k: int) -> str:
    """The key of a parameter matrix in the params / gradients dicts: "W1", "b1"."""
    return W(k) if kind == "W" else b(k)
