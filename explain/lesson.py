"""The numbers and formulas of one lesson page: a forward pass, the loss, the backward pass
node by node, and every parameter's chain rule and update, for one row.

Every number is `backprop step`'s: :func:`backprop.train.onestep.step` runs the generated
trainer, :func:`~backprop.train.onestep.chain_values` evaluates the chain factors, and the
page embeds :func:`~backprop.train.onestep.as_json` of the result unchanged, so the page
and ``step --json`` cannot disagree.  Formulas are the derivation's own LaTeX as MathML.
"""
from __future__ import annotations

import re

import numpy as np
import sympy

from backprop.core.errors import UserError
from backprop.derive import Spec, derive
from backprop.derive import notation as nt
from backprop.derive.report import MAX_SPELLED_OUTPUTS, chain_text, loss_line, memoised_text
from backprop.train.onestep import Problem, as_json, chain_values, step, symbol_values

from .mathml import fmt, mathml, number, slot, tex_number

#: A diagram stays readable (and its page a few MB at most) up to this many nodes.
MAX_NODES = 40
#: Diagram geometry, in SVG user units.
LAYER_GAP, NODE_GAP, MARGIN, RADIUS = 210, 120, 70, 27

_LABEL = re.compile(r"^(?P<base>[^_^]+)(?:\^(?P<sup>[^_]+))?(?:_(?P<sub>.+))?$")
_SUP = str.maketrans("0123456789,", "⁰¹²³⁴⁵⁶⁷⁸⁹˒")
_SUB = str.maketrans("0123456789i,", "₀₁₂₃₄₅₆₇₈₉ᵢ‚")


def check_size(spec: Spec) -> None:
    """Refuse a network too big to draw, before any work."""
    n = sum(spec.layers)
    if n > MAX_NODES:
        raise UserError(f"the {'-'.join(map(str, spec.layers))} network has {n} nodes; a lesson page "
                        f"draws at most {MAX_NODES}: explain a smaller network of the same shape")


def label(text: str) -> str:
    """'w^1_11' -> 'w¹₁₁': the notes' name with Unicode indices, for an SVG label."""
    m = _LABEL.match(text)
    if not m:
        return text
    return m["base"] + (m["sup"] or "").translate(_SUP) + (m["sub"] or "").translate(_SUB)


def param_id(k: int, i: int | None, j: int) -> str:
    """Element id of a weight w^k_ij ('w-k-i-j') or a bias b_kj ('b-k-j')."""
    return f"b-{k}-{j}" if i is None else f"w-{k}-{i}-{j}"


def _rows(lhs: str, *sides: str) -> str:
    """``lhs = a``, then ``= b``, ``= c`` below it, as one equation of block formulas (a
    side equal to an earlier one is shown once)."""
    kept = [s for n, s in enumerate(sides) if s and s not in sides[:n]]
    lines = [f"{lhs} = {kept[0]}", *(f"= {s}" for s in kept[1:])]
    return '<div class="eq">' + "".join(mathml(line, block=True) for line in lines) + "</div>"


def _evaluate(expr: sympy.Expr, exact: dict) -> float:
    value = sympy.sympify(expr, strict=True).xreplace(exact).doit()
    return float(value) if value.is_extended_real else float("nan")


class Lesson:
    """One row's step, laid out for the page: :meth:`data` is the JSON the page embeds."""

    def __init__(self, problem: Problem, params: dict[str, np.ndarray]):
        """``problem``: step's own reading of the flags (one row, standardised, its target);
        ``params``: the parameters before the update."""
        spec = problem.spec
        check_size(spec)
        if len(problem.rows) != 1:
            raise UserError(f"a lesson page shows one row; got {len(problem.rows)}: give one --x and one --y")
        row = problem.rows[0]
        self.problem, self.spec, self.lr = problem, spec, problem.lr
        self.x, self.y = list(row.x), list(row.y)
        self.raw_x = list(row.typed) if problem.mean is not None else None
        self.label = row.label
        self.result = step(spec, self.x, self.y, self.lr, params)
        self.d = derive(spec)
        self.p = self.d.printer
        self.values = symbol_values(spec, self.x, self.y, self.result["params"], self.result["nodes"])
        self.exact = {s: sympy.Float(v) for s, v in self.values.items()}
        self.deltas = self._deltas()

    # -- numbers -----------------------------------------------------------------------------
    def _deltas(self) -> dict[tuple[int, int], float]:
        """δ_kj = ∂L/∂z_kj, output layer first, each from its memo definition and the δ above."""
        out = {}
        for k in range(self.spec.depth, 0, -1):
            for j in range(1, self.spec.layers[k] + 1):
                value = _evaluate(self.delta_expr(k, j), self.exact)
                out[k, j] = value
                self.exact[nt.delta(k, j)] = sympy.Float(value)
        return out

    def delta_expr(self, k: int, j: int) -> sympy.Expr:
        """δ_kj in y, ŷ, O, w and the next layer's δ (the recursion the notes teach)."""
        expr = self.d.delta_definition(k, j)
        if k < self.spec.depth:
            expr = expr.xreplace({nt.grad_output(k, m): self.d.grad_output_definition(k, m)
                                  for m in range(1, self.spec.layers[k] + 1)})
        return expr

    def _slotted(self, expr: sympy.Expr) -> str:
        """``expr`` in LaTeX with every symbol that has a value replaced by it, bracketed."""
        slots = {}
        for s in sympy.sympify(expr).free_symbols:
            name = nt.parse(s)
            if name is not None and s in self.exact:
                slots[name] = slot(float(self.exact[s]))
        return self.p.slotted(expr, True, slots)

    def tex(self, symbol) -> str:
        return self.p.latex(symbol)

    # -- the diagram -------------------------------------------------------------------------
    def diagram(self) -> dict:
        """Node, edge and bias positions and labels for the SVG."""
        spec, L = self.spec, self.spec.depth
        tallest = max(spec.layers)
        height = 2 * MARGIN + (tallest - 1) * NODE_GAP + 20
        width = 2 * MARGIN + L * LAYER_GAP + 150  # room for L = ... beside the outputs
        nodes, pos = [], {}
        for k, n in enumerate(spec.layers):
            top = MARGIN + 10 + (tallest - n) * NODE_GAP / 2
            for j in range(1, n + 1):
                cx, cy = MARGIN + 20 + k * LAYER_GAP, top + (j - 1) * NODE_GAP
                pos[k, j] = (cx, cy)
                sym = nt.feature(j) if k == 0 else nt.output(k, j, L)
                nodes.append({"id": f"n-{k}-{j}", "k": k, "j": j, "cx": cx, "cy": cy,
                              "label": label(self.p.text(sym)),
                              "value": fmt(self.x[j - 1] if k == 0 else self.values[sym]),
                              "delta": fmt(self.deltas[k, j]) if k else None})
        edges, biases = [], []
        for k in range(1, L + 1):
            W = self.result["params"][f"W{k}"]
            scale = max(float(np.max(np.abs(W))), 1e-12)
            for i in range(1, spec.layers[k - 1] + 1):
                for j in range(1, spec.layers[k] + 1):
                    w = float(W[i - 1, j - 1])
                    (x1, y1), (x2, y2) = pos[k - 1, i], pos[k, j]
                    edges.append({"id": param_id(k, i, j), "x1": x1 + RADIUS, "y1": y1,
                                  "x2": x2 - RADIUS, "y2": y2, "sign": "neg" if w < 0 else "pos",
                                  "width": round(1.2 + 3.3 * abs(w) / scale, 2),
                                  "title": f"{self.p.text(nt.weight(k, i, j))} = {fmt(w)}"})
            if spec.bias:
                for j in range(1, spec.layers[k] + 1):
                    cx, cy = pos[k, j]
                    b = float(self.result["params"][f"b{k}"][j - 1])
                    biases.append({"id": param_id(k, None, j), "x": cx - 14, "y": cy - RADIUS - 34,
                                   "cx": cx, "cy": cy, "label": label(self.p.text(nt.bias(k, j))),
                                   "title": f"{self.p.text(nt.bias(k, j))} = {fmt(b)}"})
        out_x, out_top = pos[L, 1]
        return {"width": width, "height": height, "radius": RADIUS, "nodes": nodes,
                "loss_x": out_x + RADIUS + 12, "loss_y": out_top - RADIUS - 18,
                "edges": edges, "biases": biases}

    # -- the frames the buttons step through ---------------------------------------------------
    def frames(self) -> list[dict]:
        return self._forward() + [self._loss()] + self._backward() + [self._update()]

    def _incoming(self, k: int, j: int) -> list[str]:
        ids = [param_id(k, i, j) for i in range(1, self.spec.layers[k - 1] + 1)]
        return ids + ([param_id(k, None, j)] if self.spec.bias else [])

    def _forward(self) -> list[dict]:
        out, L = [], self.spec.depth
        for k in range(1, L + 1):
            act = self.d.net.activation(k)
            for j in range(1, self.spec.layers[k] + 1):
                z, o = nt.preactivation(k, j), nt.output(k, j, L)
                g = (act.sym(z) if act.elementwise else
                     self.d.net.definition(k, j).xreplace({self.d.net.z(k, m): nt.preactivation(k, m)
                                                           for m in range(1, self.spec.layers[k] + 1)}))
                sources = [f"n-{k - 1}-{i}" for i in range(1, self.spec.layers[k - 1] + 1)]
                out.append({
                    "phase": "forward", "node": f"n-{k}-{j}",
                    "title": f"Forward pass · layer {k}, node {j}",
                    "text": f"Weighted sum of the inputs plus the bias, then the activation "
                            f"({self.spec.activations[k - 1]}).",
                    "highlight": [f"n-{k}-{j}", *sources, *self._incoming(k, j)],
                    "math": [_rows(self.tex(z), self.tex(self.d.net.z(k, j)), self._slotted(self.d.net.z(k, j)),
                                   tex_number(self.values[z])),
                             _rows(self.tex(o), self.p.latex(g), self._slotted(g), tex_number(self.values[o]))],
                })
        return out

    def _loss(self) -> dict:
        L = self.spec.depth
        numbers = self._slotted(self.d.net.loss) if self.spec.n_outputs <= MAX_SPELLED_OUTPUTS else ""
        return {"phase": "loss", "node": None, "title": f"Loss · {self.spec.loss}",
                "text": "How far the outputs are from the targets.",
                "highlight": [f"n-{L}-{j}" for j in range(1, self.spec.n_outputs + 1)],
                "math": [_rows("L", loss_line(self.d, tex=True), numbers, tex_number(float(self.result["loss"])))]}

    def _backward(self) -> list[dict]:
        out, L = [], self.spec.depth
        for k in range(L, 0, -1):
            for j in range(1, self.spec.layers[k] + 1):
                delta = nt.delta(k, j)
                expr = self.delta_expr(k, j)
                rows = [_rows(rf"{self.tex(delta)} = \frac{{\partial L}}{{\partial {self.tex(nt.preactivation(k, j))}}}",
                              self.p.latex(expr), self._slotted(expr), tex_number(self.deltas[k, j]))]
                for g in self._node_gradients(k, j):
                    name, index = g.key
                    source = [] if g.source is None else [slot(self.values[g.local])]
                    rows.append(_rows(rf"\frac{{\partial L}}{{\partial {self.tex(g.parameter)}}}",
                                      memoised_text(g, tex=True),
                                      " ".join([slot(self.deltas[k, j]), *source]),
                                      tex_number(float(self.result["grads"][name][index]))))
                above = ([] if k == L else
                         [f"n-{k + 1}-{m}" for m in range(1, self.spec.layers[k + 1] + 1)]
                         + [param_id(k + 1, j, m) for m in range(1, self.spec.layers[k + 1] + 1)])
                out.append({
                    "phase": "backward", "node": f"n-{k}-{j}",
                    "title": f"Backward pass · layer {k}, node {j}",
                    "text": ("δ of an output node: ∂L/∂z from the loss and the activation's derivative."
                             if k == L else "δ of a hidden node: the δ of the layer above, sent back "
                             "along this node's outgoing weights, times the activation's derivative.")
                            + " Each incoming weight's gradient is δ times the input on that edge.",
                    "delta": fmt(self.deltas[k, j]),
                    "highlight": [f"n-{k}-{j}", *above, *self._incoming(k, j)],
                    "math": rows,
                })
        return out

    def _node_gradients(self, k: int, j: int):
        return [self.d.gradient(nt.bias(k, j) if pid.startswith("b-") else
                                nt.weight(k, int(pid.split("-")[2]), j)) for pid in self._incoming(k, j)]

    def _update(self) -> dict:
        rows = [_rows(rf"{self.tex(g.parameter)} - \eta \frac{{\partial L}}{{\partial {self.tex(g.parameter)}}}",
                      *self._update_sides(g)) for g in self.d.gradients]
        rows.append(_rows(r"L_{\text{after}}", tex_number(float(self.result["loss_after"]))))
        return {"phase": "update", "node": None, "title": f"Update · η = {fmt(self.lr)}",
                "text": "Every parameter moves against its gradient: w ← w − η ∂L/∂w.",
                "highlight": [param_id(g.layer, g.source, g.node) for g in self.d.gradients], "math": rows}

    def _update_sides(self, g) -> list[str]:
        name, index = g.key
        old = float(self.result["params"][name][index])
        grad = float(self.result["grads"][name][index])
        new = float(self.result["updated"][name][index])
        return [rf"{tex_number(old)} - {number(self.lr)} \times {number(grad)}", tex_number(new)]

    # -- every parameter's chain rule, shown when its edge or bias is clicked -----------------------
    def parameters(self) -> dict[str, dict]:
        out = {}
        for g in self.d.gradients:
            name, index = g.key
            old = float(self.result["params"][name][index])
            grad = float(self.result["grads"][name][index])
            new = float(self.result["updated"][name][index])
            names, _, symbolic = chain_text(g, tex=True).partition(" = ")
            numbers = " + ".join(r" \cdot ".join(rf"\left[{tex_number(v)}\right]" for v in path)
                                 for path in chain_values(g, self.values))
            lhs = rf"\frac{{\partial L}}{{\partial {self.tex(g.parameter)}}}"
            out[param_id(g.layer, g.source, g.node)] = {
                "name": g.name, "key": [name, list(index)], "old": old, "grad": grad, "new": new,
                "shown": {"old": fmt(old), "grad": fmt(grad), "new": fmt(new)},
                "symbol": mathml(self.tex(g.parameter)),
                "chain": [_rows(lhs, names, symbolic, numbers, tex_number(grad))],
                "update": _rows(rf"{self.tex(g.parameter)} - \eta \, {lhs}", *self._update_sides(g)),
            }
        return out

    def data(self) -> dict:
        """Everything the page embeds; "step" is exactly what ``backprop step --json`` prints
        for the same flags."""
        return {
            "format": "backprop-lesson", "version": 1,
            "network": {"layers": list(self.spec.layers), "activations": list(self.spec.activations),
                        "loss": self.spec.loss, "bias": self.spec.bias, "describe": self.spec.describe()},
            "row": {"x": self.x, "y": self.y, "x_raw": self.raw_x, "class": self.label},
            "lr": self.lr,
            "step": as_json(self.result, self.problem),
            "deltas": {f"{k},{j}": v for (k, j), v in self.deltas.items()},
            "frames": self.frames(),
            "parameters": self.parameters(),
        }
