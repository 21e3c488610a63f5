r"""Known slips in hand-derived gradients: one table entry per slip (id, label, explanation).

A ``wrong`` verdict names the slip that, applied to the true derivation, reproduces the
claim (see :func:`label`).  The ids are shared with the labelled corpus and the matrix-form
checker, so they never change; a new slip is one new entry in :data:`SLIPS`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slip:
    """One known slip: ``id`` (stable), ``label`` (a few words), ``explanation`` (why it is wrong)."""

    id: str
    label: str
    explanation: str

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "explanation": self.explanation}


_ROWS = (
    ("missing_gprime", "missing g' factor",
     "the chain passes through an activation: every node on the path contributes its "
     "derivative g'(z) (for sigmoid O(1 - O), for tanh 1 - O^2), and the claim leaves one out"),
    ("gprime_at_output", "g' evaluated at the output instead of the pre-activation",
     "g'(z) is the activation's derivative at the pre-activation z; writing σ'(O) = "
     "σ(O)(1 - σ(O)) applies σ twice (O(1 - O) is already σ'(z))"),
    ("wrong_layer_weight", "a weight of the wrong layer",
     "the factor ∂z/∂O of a node is the weight of the layer that node feeds (w^{k+1}), not "
     "the weight of the layer being differentiated (or another layer)"),
    ("transposed_indices", "transposed weight indices",
     "w^k_{ij} goes from node i of layer k-1 to node j of layer k; the claim uses w^k_{ji}"),
    ("missing_path", "a missing path of the sum",
     "the parameter reaches the loss along several paths (through every node of the next "
     "layer, or every output); the gradient is the sum over all of them and the claim drops some"),
    ("missing_transpose", "missing transpose",
     "in matrix form the backward pass multiplies by the transposed weight matrix (δ W^T or "
     "W^T δ, by layout); the claim multiplies by W itself"),
    ("extra_transpose", "extra transpose",
     "the claim transposes a matrix that the matrix-form chain rule uses as it is"),
    ("hadamard_vs_matmul", "element-wise product confused with a matrix product",
     "g'(Z) multiplies the back-propagated error element by element (⊙), while the weights "
     "multiply it as a matrix product; the claim swaps the two"),
    ("missing_mean", "missing 1/n",
     "the loss is a mean over the n rows, so every gradient carries the factor 1/n"),
    ("extra_mean", "extra 1/n",
     "the loss is a sum (or one row), not a mean, so the gradient has no factor 1/n"),
    ("sign_error", "sign error",
     "∂L/∂ŷ of (y - ŷ)^2 is -2(y - ŷ): the inner derivative of y - ŷ is -1, and the claim "
     "has the opposite sign"),
    ("factor_two", "factor 2 vs 1/2 (loss convention)",
     "the derivative of (y - ŷ)^2 carries a 2, that of ½(y - ŷ)^2 does not: the claim uses the "
     "other loss convention"),
    ("extra_gprime_fused", "extra g' with sigmoid+bce or softmax+cce",
     "with a sigmoid output and binary cross-entropy (or softmax and categorical cross-entropy) "
     "∂L/∂z at the output is already ŷ - y; multiplying by g'(z) again counts it twice"),
    ("bias_extra_input", "bias gradient with an extra input factor",
     "∂z/∂b = 1: the bias gradient is the weight's gradient without the input (x or the "
     "previous layer's O) that the weight multiplies"),
    ("bias_not_summed", "bias gradient not summed over rows",
     "in matrix form the bias is shared by every row, so its gradient sums the per-row errors "
     "(a row vector), not the n-row matrix of them"),
)

#: id -> Slip, in the order above (the order slips are tried in when labelling a claim).
SLIPS: dict[str, Slip] = {row[0]: Slip(*row) for row in _ROWS}


def get(slip_id: str) -> dict:
    """The Verdict's ``misconception`` field for one slip id."""
    return SLIPS[slip_id].as_dict()
