"""The printers' fast paths (issue 12's speed targets) print byte for byte what the general
path prints: symbols, products and sums of products spelled from cached spellings, a product
ending in a parameter's local input printed once per node, and a sigmoid's definition built
without evaluating exp term by term.  Over every activation and loss, every expression
derive prints: forward definitions, the δ table, ∂L/∂O sums, chain values and formulas."""
from __future__ import annotations

import pytest
import sympy

from backprop.derive import ACTIVATIONS, LOSSES, derive, make_spec
from backprop.derive import notation as nt
from backprop.derive.network import Network
from backprop.derive.printing import NotationPrinter

ELEMENTWISE = [a for a in ACTIVATIONS if ACTIVATIONS[a].elementwise]
NETWORKS = ([("3-4-2", f"{a},linear", "se") for a in ELEMENTWISE]
            + [("3-3-2", "tanh,softmax", "cce"), ("4-3-2", "leaky_relu,sigmoid", "bce"),
               ("2-2-1", "relu,linear", "hinge"), ("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se"),
               ("2-12-11-1", "sigmoid,tanh,linear", "se"), ("2-3-1", "sigmoid,sigmoid", "bce")]
            + [("2-2-2", "sigmoid,sigmoid", loss) for loss in LOSSES if loss not in ("cce",)])


def _printed(d):
    """Every expression derive prints for one network, in the order it prints them."""
    net = d.net
    for k in range(1, net.depth + 1):
        for j in range(1, d.spec.layers[k] + 1):
            yield net.O(k, j)
            yield net.definition(k, j)
            yield d.grad_output_definition(k, j)
    for sym, definition in d.deltas.items():
        yield sym
        yield definition
    for g in d.gradients:
        yield g.parameter
        yield g.memoised
        yield g.formula
        for path in g.chain:
            for f in path:
                yield f.numerator
                yield f.denominator
                yield f.value


@pytest.mark.parametrize("layers,acts,loss", NETWORKS)
def test_fast_paths_print_what_the_general_path_prints(layers, acts, loss):
    d = derive(make_spec(layers, acts, loss))
    fast = NotationPrinter(d)
    general = NotationPrinter(d)
    seen = 0
    for expr in _printed(d):
        for tex in (False, True):
            assert fast._fast(expr, tex) == general._general(expr, tex), (expr, tex)
            seen += 1
    # twice: the second time the remembered prefixes (_peeled) are used
    for expr in _printed(d):
        assert fast.text(expr) == general._general(expr, False), expr
        assert fast.latex(expr) == general._general(expr, True), expr
    assert seen > 50


def test_products_ending_in_a_local_input_reuse_their_prefix():
    d = derive(make_spec("3-4-1", "sigmoid,linear", "se"))
    p = NotationPrinter(d)
    texts = [p.text(g.formula) for g in d.gradients if g.layer == 1 and g.node == 1 and g.source]
    assert texts == ["-2 (y - ŷ) w^2_11 O_11 (1 - O_11) x_i1", "-2 (y - ŷ) w^2_11 O_11 (1 - O_11) x_i2",
                     "-2 (y - ŷ) w^2_11 O_11 (1 - O_11) x_i3"]
    assert sum(v is not None for v in p._prefixes.values()) >= 1


@pytest.mark.parametrize("act", ELEMENTWISE)
def test_definition_is_the_table_entry_of_the_weighted_sum(act):
    net = Network(make_spec("4-3-2", f"{act},linear", "se"))
    for j in (1, 2, 3):
        built = net.definition(1, j)
        direct = ACTIVATIONS[act].sym(net.z(1, j))
        assert built == direct and sympy.srepr(built) == sympy.srepr(direct)


def test_the_sum_of_memo_products_equals_sympys_add():
    d = derive(make_spec("2-5-7-1", "sigmoid,sigmoid,linear", "se"))
    for k, width in ((1, 7), (2, 1)):
        for j in range(1, d.spec.layers[k] + 1):
            expected = sympy.Add(*[nt.weight(k + 1, j, m) * nt.delta(k + 1, m) for m in range(1, width + 1)])
            got = d.grad_output_definition(k, j)
            assert got == expected and got.args == expected.args


TEMPLATED = NETWORKS + [("3-20-20-1", "sigmoid,tanh,linear", "se"), ("2-17-3", "relu,softmax", "cce")]


@pytest.mark.parametrize("layers, acts, loss", TEMPLATED)
@pytest.mark.parametrize("forms", ["memoised,chain", "chain", "memoised"])
def test_json_node_templates_print_what_gradient_dict_prints(monkeypatch, layers, acts, loss, forms):
    """Every weight's JSON filled from its node's template is byte for byte the dump of its
    gradient_dict, and the templates are used (no node fell back after its check)."""
    from backprop.derive import report

    filled, real_fill = [], report._NodeTemplate.fill
    monkeypatch.setattr(report._NodeTemplate, "fill", lambda self, g: filled.append(real_fill(self, g)) or filled[-1])
    for bias in (True, False):
        d = derive(make_spec(layers, acts, loss, bias=bias))
        chosen = report.Forms.parse(forms)
        lines = list(report._gradient_json(d.gradients, chosen, {"type": "gradient"}))
        assert lines == [report._dump({"type": "gradient", **report.gradient_dict(g, chosen)})
                         for g in d.gradients]
        weights = sum(1 for g in d.gradients if g.source is not None)
        assert len(filled) == weights and None not in filled
        filled.clear()


@pytest.mark.parametrize("layers, acts, loss", TEMPLATED + [("3-12-4-2", "leaky_relu,relu,sigmoid", "bce")])
def test_delta_rows_filled_per_layer_print_what_each_node_prints(layers, acts, loss):
    """A hidden layer's δ rows filled from its first node's are byte for byte each node's own
    rows, in text and LaTeX, and every element-wise hidden layer of 3 nodes or more is filled."""
    from backprop.derive import report

    d = derive(make_spec(layers, acts, loss))
    styles = (False, True)
    filled = [report._LayerRows(d, k, styles) for k in range(1, d.net.depth)]
    for rows in filled:
        assert [rows.row(j) for j in range(1, d.spec.layers[rows.k] + 1)] == \
            [report._delta_row(d, rows.k, j, styles) for j in range(1, d.spec.layers[rows.k] + 1)]
        assert (rows.parts is not None) == (d.spec.layers[rows.k] >= 3 and d.net.activation(rows.k).elementwise)


@pytest.mark.parametrize("layers, acts, loss", TEMPLATED + [("3-12-4-2", "leaky_relu,relu,sigmoid", "bce"),
                                                        ("2-3-12", "step,tanh", "mse")])
def test_forward_lines_filled_per_layer_print_what_each_node_prints(layers, acts, loss):
    """The forward pass filled from each layer's node 1 is byte for byte each node's own line,
    and every element-wise layer of 3 nodes or more is filled (not printed node by node)."""
    from backprop.derive import report

    for bias in (True, False):
        d = derive(make_spec(layers, acts, loss, bias=bias))
        p, net = d.printer, d.net
        assert list(report.forward_lines(d)) == [
            (p.text(net.O(k, j)), p.text(net.definition(k, j)))
            for k in range(1, net.depth + 1) for j in range(1, d.spec.layers[k] + 1)]
        for k in range(1, net.depth + 1):
            wide = d.spec.layers[k] >= 3 and net.activation(k).elementwise
            assert (report._forward_template(d, k) is not None) == wide
