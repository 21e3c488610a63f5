"""The IR (derive/graph.py): the backward ops derived from the forward ones, the updates'
places, accumulation where an array feeds two ops, and a printer that swaps array modules."""
import numpy as np
import pytest
import sympy

from backprop.codegen import load_trainer
from backprop.derive import make_spec
from backprop.derive.graph import (BACKWARD_RULES, ActivationBackward, Array, LossBackward, MatMul,
                                   SumRows, Update, _Backward, build)


def kinds(ops):
    return [(type(op).__name__, repr(op.out)) for op in ops]


def test_a_chain_backward_is_the_notes_recursion_output_layer_first():
    g = build(make_spec("2-3-1", "sigmoid,linear", "se"))
    assert kinds(g.backward()) == [
        ("LossBackward", "delta2"), ("SumRows", "db2"), ("MatMul", "dW2"), ("MatMul", "dO1"),
        ("ActivationBackward", "delta1"), ("SumRows", "db1"), ("MatMul", "dW1")]
    dW2 = g.backward()[2]
    assert (dW2.left, dW2.right, dW2.transpose) == (Array("O", 1), Array("delta", 2), "left")
    assert not any(op.out.kind == "dX" for op in g.backward())  # no gradient for the inputs


def test_each_update_follows_the_last_op_reading_its_parameter():
    """W^k changes only after δ^k W^kᵀ has used it: what makes the fused in-place step right."""
    ops = build(make_spec("2-3-3-1", "tanh,relu,linear", "se")).backward(updates=True)
    for k in (1, 2, 3):
        w = Array("W", k)
        update = next(i for i, op in enumerate(ops) if isinstance(op, Update) and op.out == w)
        readers = [i for i, op in enumerate(ops) if w in op.reads and not isinstance(op, Update)]
        assert all(i < update for i in readers)
        assert ops[update].grad == Array("dW", k)


def test_softmax_with_a_loss_other_than_cce_goes_through_dL_dyhat_and_the_jacobian():
    ops = build(make_spec("2-3", "softmax", "se")).backward()
    assert isinstance(ops[0], LossBackward) and not ops[0].fused and ops[0].out == Array("dO", 1)
    assert isinstance(ops[1], ActivationBackward) and ops[1].out == Array("delta", 1)
    fused = build(make_spec("2-3", "softmax", "cce")).backward()[0]
    assert fused.fused and fused.out == Array("delta", 1)


def test_an_array_read_by_two_ops_accumulates_their_gradients():
    """micrograd's +=: the second contribution to ∂L/∂O^1 is marked accumulate (a residual
    connection will read O^{k-1} twice)."""
    b = _Backward(make_spec("2-2-1", "linear", "se"), [])
    o1 = Array("O", 1)
    for z, w in ((Array("Z", 2), Array("W", 2)), (Array("Z", 3), Array("W", 3))):
        BACKWARD_RULES[MatMul](b, MatMul(z, o1, w))
    to_o1 = [op for op in b.ops if op.out == Array("dO", 1)]
    assert [op.accumulate for op in to_o1] == [False, True]


def test_no_bias_no_sum_rows():
    ops = build(make_spec("2-2-1", "linear", "se", bias=False)).backward(updates=True)
    assert not any(isinstance(op, SumRows) for op in ops)
    assert [op.out for op in ops if isinstance(op, Update)] == [Array("W", 2), Array("W", 1)]


@pytest.mark.parametrize("layers, acts, loss", [("2-3-1", "sigmoid,linear", "se"),
                                                ("3-4-3", "relu,softmax", "cce"),
                                                ("2-3-2", "tanh,softmax", "se")])
def test_the_buffered_step_printed_from_the_graph_equals_gradients_then_update(layers, acts, loss):
    """sgd_step (the graph's ops with its updates, printed in place) makes exactly the update
    that gradients() (the same ops without them) and w - η g make."""
    spec = make_spec(layers, acts, loss)
    t = load_trainer(spec)
    rng = np.random.default_rng(3)
    params = t.init_params(seed=1)
    X = rng.normal(size=(7, spec.layers[0]))
    Y = rng.random(size=(7, spec.layers[-1]))
    if loss == "cce":
        Y = np.eye(spec.layers[-1])[rng.integers(0, spec.layers[-1], 7)]
    grads = t.gradients(params, X, Y)
    expected = {k: v - 0.1 * grads[k] for k, v in params.items()}
    stepped = {k: v.copy() for k, v in params.items()}
    t.sgd_step(stepped, X, Y, 0.1)
    for k in params:
        np.testing.assert_allclose(stepped[k], expected[k], rtol=1e-12, atol=1e-15)


def test_the_printer_swaps_array_modules_as_sympys_jax_printer_does():
    """A backend is a printer with another _module: every name and the import line agree."""
    from backprop.codegen.printer import BackpropPrinter, JaxTrainerPrinter

    z = sympy.Symbol("Z")
    expr = sympy.tanh(z) + sympy.Max(z, 0) + sympy.Piecewise((z, z > 0), (z / 100, True))
    np_text, jax_text = BackpropPrinter().doprint(expr), JaxTrainerPrinter().doprint(expr)
    assert jax_text == np_text.replace("np.", "jnp.") and "np.tanh" in np_text
    printer = JaxTrainerPrinter()
    printer.doprint(expr)
    assert printer.imports() == ["import jax.numpy as jnp"]
