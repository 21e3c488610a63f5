r"""Verdicts: is each equation right for the network, and if not, why and where.

One :class:`Verdict` per equation:

* ``correct``: every segment of the equation equals its left side, checked with the forward
  definitions substituted (so ``O_{11}`` and ``w^1_{11} x_{i1} + w^1_{21} x_{i2} + b_{11}`` are
  the same thing): symbolically within a work budget, at seeded continuous random points and
  at and around every kink (:mod:`backprop.verify.equivalence`; ``method`` says which);
* ``wrong``: a segment differs at some point: ``expected_latex`` is the truth in the claim's
  own vocabulary (O and ŷ if the claim uses them, else x, w, b only), ``factor`` names the
  chain factor that differs where the truth is a single chain product, and
  ``counterexample`` is the point (x, y, w, b) with the claimed and actual values;
* ``error``: the equation cannot be checked (unparsable LaTeX with its column, a name that is
  not in the network with the nearest names, a left side that is not a derivative of L, a
  node output or L); ``message`` says which.

What a left side means: ``\frac{\partial L}{\partial P}`` is the derivative the tool derives
(:mod:`backprop.derive`); ``\frac{\partial A}{\partial B}`` for node outputs A (ŷ, O_kj) is the
total derivative through the network (for adjacent layers, the notes' local factor);
``O_{kj}``/``\hat{y}`` is the node's forward definition; ``L`` is the loss.  A middle step
``\frac{\partial (E)}{\partial B}`` claims two things: that E *is* the numerator of the left
side (checked) and that its derivative is the next segment.

Directives (``% at:``, ``% count:``) switch an equation to numeric or count checking, and
the delta-rule syntax goes to :mod:`backprop.verify.delta_rule`; see :mod:`backprop.verify`.
"""
from __future__ import annotations

import re

import sympy
from sympy.parsing.latex.errors import LaTeXParsingError

from backprop.derive import UserError, derive
from backprop.derive.budget import check_per_parameter
from backprop.derive import notation as nt
from backprop.derive.activations import softmax_jacobian
from backprop.derive.losses import LOSSES
from backprop.derive.spec import Spec, parse_layers

from . import batch_norm_form
from . import delta_rule
from . import equivalence
from . import matrix_form
from . import misconceptions
from .latex_input import (LOSS, Aliases, Derivative, Equation, InputError, Reader, Text, Unknown,
                          check_balanced, clean_layout, split_relations)
from .verdict import Verdict, Wrong

#: Longest equation read (characters) and deepest {([ nesting: beyond them the parser and
#: SymPy take seconds to minutes or recurse too deep; the notes' longest is 274 and 2 deep.
MAX_EQUATION_CHARS = 3000
MAX_NESTING = 40
#: Longest run of digits in one number (the LaTeX parser is quadratic in it; 1e308 is 309).
MAX_DIGITS = 330


def _check_size(source: str) -> None:
    """Refuse (InputError) an equation too long or too deeply nested to check in seconds."""
    if len(source) > MAX_EQUATION_CHARS:
        raise InputError(f"equation too long to check: {len(source):,} characters (at most "
                         f"{MAX_EQUATION_CHARS:,}); split it into shorter equations")
    depth = 0
    for i, c in enumerate(source):
        if c in "{([":
            depth += 1
            if depth > MAX_NESTING:
                raise InputError(f"brackets nested more than {MAX_NESTING} deep at column {i + 1}: "
                                 "too deep to check; remove brackets", i)
        elif c in "})]":
            depth = max(depth - 1, 0)
    long_number = re.search(r"\d{%d,}" % (MAX_DIGITS + 1), source)
    if long_number:
        raise InputError(f"a number at column {long_number.start() + 1} has {len(long_number.group()):,} "
                         f"digits (at most {MAX_DIGITS}): too long to check", long_number.start())


def _fmt(v) -> float | str:
    """A number (float or SymPy) for a report."""
    if v is None:
        return "None"
    return equivalence.show(v if isinstance(v, sympy.Basic) else equivalence.exact(v))


class Checker:
    """Checks equations against one network spec."""

    def __init__(self, spec: Spec):
        # names every parameter: refuse up front what cannot fit
        check_per_parameter(spec, hint="verify derivations on a smaller network with the "
                            "same layer pattern, or check the matrix form (% mode: matrix)")
        self.spec = spec
        self.d = derive(spec)
        self.net = self.d.net
        self.printer = self.d.printer
        self.reader = Reader(spec)
        self.loss = LOSSES[spec.loss]
        self._partials: dict = {}
        self.eq = equivalence.Equivalence(self.net, self.loss, self.printer)
        self.last_note = ""

    def __repr__(self) -> str:
        return f"Checker({self.spec.describe()})"

    # -- entry point -------------------------------------------------------------------------
    def check(self, eq: Equation) -> Verdict:
        """The verdict for one equation; bad input is an "error" verdict, a bug an exception."""
        base = dict(index=eq.index, source=eq.source, line=eq.line, where=eq.where)
        try:
            _check_size(eq.source)
            if eq.mode == "delta" or delta_rule.looks_like_delta_rule(eq.source):
                return delta_rule.check(self, eq, base)
            if eq.count is None and eq.at is None and eq.mode != "scalar" and (
                    eq.mode == "matrix" or self.net.batch_norm or matrix_form.looks_like_matrix_form(eq.source)):
                # a batch-normalised net's rows couple: checked on concrete batches
                return (batch_norm_form if self.net.batch_norm else matrix_form).check(self, eq, base)
            if eq.count is not None:
                return self._check_count(eq, base)
            return self._check(eq, base)
        except InputError as exc:
            return Verdict(**base, verdict="error", message=exc.message, suggestions=exc.suggestions,
                           column=exc.column)
        except Wrong as w:
            return Verdict(**base, verdict="wrong", **w.kw)
        except UserError as exc:  # a directive's bad value (% count: 0-1)
            return Verdict(**base, verdict="error", message=str(exc))
        except LaTeXParsingError as exc:  # the parser refused the text (the reader says where)
            return Verdict(**base, verdict="error", message=f"unparsable LaTeX: {str(exc).splitlines()[0]}")
        except (RecursionError, MemoryError) as exc:
            # too large or too deep for the machine: the input's size, not a bug
            return Verdict(**base, verdict="error", message=f"this equation is too large or too deeply nested to "
                           f"check ({type(exc).__name__}); split it into shorter equations")
        # anything else is a bug of ours and surfaces as an exception, not as an "error" verdict

    def parse(self, source: str):
        """(relations, segments as SymPy, aliases, warnings) of one equation."""
        t = clean_layout(Text.of(source))
        check_balanced(t)
        parts = split_relations(t)
        aliases = Aliases()
        unknowns: list[Unknown] = []
        exprs = []
        for _, seg in parts:
            found: list[Unknown] = []
            exprs.append(self.reader.parse_segment(seg, aliases, found))
            unknowns.extend(found)
        if unknowns:
            unknowns.sort(key=lambda x: x.column)
            u = unknowns[0]
            seen = {u.text}
            others = ""
            for o in unknowns[1:]:
                if o.text not in seen:
                    seen.add(o.text)
                    others += f"; also {o.text} (column {o.column + 1})"
            sugg = f"; did you mean {', '.join(u.suggestions)}?" if u.suggestions else ""
            why = f" ({u.why})" if u.why else ""
            raise InputError(f"{u.text} at column {u.column + 1} is not in the "
                             f"{'-'.join(map(str, self.spec.layers))} network{why}{sugg}{others}",
                             u.column, u.suggestions)
        warnings = [o.warning for o in aliases.table.values() if isinstance(o, Derivative) and o.warning]
        return [r for r, _ in parts], exprs, aliases, warnings

    # -- derivatives -------------------------------------------------------------------------
    def true_partial(self, num, den) -> sympy.Expr:
        """∂num/∂den through the network, in the notes' vocabulary."""
        key = (num, den)
        if key not in self._partials:
            self._partials[key] = self._partial(num, den)
        return self._partials[key]

    def _kind(self, sym):
        name = nt.parse(sym) if isinstance(sym, sympy.Symbol) else None
        return name

    def _layer_of(self, sym) -> int | None:
        """Layer whose output ``sym`` is (0 for x), or None."""
        name = self._kind(sym)
        if name is None:
            return None
        if name.kind == "x":
            return 0
        if name.kind == "O":
            return name.indices[0]
        if name.kind == "yhat":
            return self.net.depth
        return None

    def _partial(self, num, den) -> sympy.Expr:
        dname = self._kind(den)
        if dname is None or dname.kind in ("y", "delta", "dO"):
            raise InputError(f"cannot differentiate with respect to {den}: not a parameter or node of the network")
        if num is LOSS:
            if dname.kind in ("w", "b"):
                return self.d.gradient(den).formula
            if dname.kind == "yhat":
                return self.d.dL_dyhat[dname.indices[0] - 1]
            if dname.kind == "O":
                return self.d.resolved_dO(*dname.indices)
            if dname.kind == "z":
                return self.d.resolved_delta(*dname.indices)
            return sympy.Add(*[self.d.dL_dyhat[j - 1] * self.true_partial(self.net.O(self.net.depth, j), den)
                               for j in range(1, self.spec.n_outputs + 1)])
        nname = self._kind(num)
        if nname is not None and nname.kind == "z":
            return self._partial_of_z(*nname.indices, den, dname)
        k = self._layer_of(num)
        if k is None:
            raise InputError(f"the left side differentiates {self.printer.text(num)}: only L and node outputs "
                             "(ŷ, O_kj) and pre-activations (z_kj) are differentiated")
        if num == den:
            return sympy.S.One
        j = nname.indices[-1]
        if k == 0:
            return sympy.S.Zero
        act = self.net.activation(k)
        if dname.kind in ("w", "b"):
            kp = dname.indices[0]
            if kp > k:
                return sympy.S.Zero
            if kp == k:
                target = dname.indices[-1]
                local = self.net.O(k - 1, dname.indices[1]) if dname.kind == "w" else sympy.S.One
                if act.elementwise:
                    if target != j:
                        return sympy.S.Zero
                    return self.net.slope(k, j) * local
                return softmax_jacobian(self.d.activated_outputs(k), j - 1, target - 1) * local
        elif dname.kind == "z":
            kp, target = dname.indices
            if kp > k:
                return sympy.S.Zero
            if kp == k:
                if act.elementwise:
                    return self.net.slope(k, j) if target == j else 0
                return softmax_jacobian(self.d.activated_outputs(k), j - 1, target - 1)
        else:
            kp = self._layer_of(den)
            if kp is None or kp >= k:
                return sympy.S.Zero
            if kp == k - 1:
                return self.d.node_factor(k, j, den)
        return sympy.Add(*[self.d.node_factor(k, j, self.net.O(k - 1, m)) *
                           self.true_partial(self.net.O(k - 1, m), den)
                           for m in range(1, self.spec.layers[k - 1] + 1)])

    def _partial_of_z(self, k: int, j: int, den, dname) -> sympy.Expr:
        """∂z_kj/∂den, z_kj = Σ_m w^k_mj O_{k-1,m} + b_kj (Mazur's ∂net_{o1}/∂w_5)."""
        if den == nt.preactivation(k, j):
            return sympy.S.One
        if dname.kind in ("w", "b") and dname.indices[0] == k:
            if dname.indices[-1] != j:
                return sympy.S.Zero
            return self.net.O(k - 1, dname.indices[1]) if dname.kind == "w" else sympy.S.One
        return sympy.Add(*[nt.weight(k, m, j) * self.true_partial(self.net.O(k - 1, m), den)
                           for m in range(1, self.spec.layers[k - 1] + 1)])

    # -- values --------------------------------------------------------------------------------
    def resolve(self, expr: sympy.Expr, aliases: Aliases, head_num=None, head_den=None,
                implicit: list | None = None) -> sympy.Expr:
        """Give every alias its true value: L the loss, ∂A/∂B the true partial, ∂(E)/∂B the
        total derivative of E (the nodes inside E depend on B through the forward
        definitions), recording each (Derivative, E) in ``implicit``: E must be some node."""
        rep = {}
        for sym in expr.free_symbols:
            obj = aliases.table.get(sym.name)
            if obj is LOSS:
                rep[sym] = self.net.loss
            elif isinstance(obj, Derivative):
                if obj.num is not None:
                    rep[sym] = self.true_partial(obj.num, obj.den)
                else:
                    inner = self.resolve(obj.expr, aliases)
                    if implicit is not None:
                        implicit.append((obj, inner))
                    rep[sym] = self.total_derivative(inner, obj.den)
        expr = expr.xreplace(rep)
        deltas = {s: self.d.resolved_delta(*nt.parse(s).indices) for s in expr.free_symbols
                  if nt.parse(s) and nt.parse(s).kind == "delta"}
        return expr.xreplace(deltas) if deltas else expr

    def total_derivative(self, expr: sympy.Expr, den) -> sympy.Expr:
        """dE/d(den) = ∂E/∂den + Σ_N ∂E/∂N · dN/d(den) over the node outputs N (O, ŷ, z) in E."""
        zs = {s: self.net.z(*nt.parse(s).indices) for s in expr.free_symbols
              if nt.parse(s) and nt.parse(s).kind == "z"}
        expr = expr.xreplace(zs) if zs else expr
        out = sympy.diff(expr, den)
        for s in expr.free_symbols:
            if s != den and self._layer_of(s) not in (None, 0):
                through = self.true_partial(s, den)
                if through != 0:
                    out += sympy.diff(expr, s) * through
        return out

    def _nodes(self, head_num=None) -> list:
        """(name, expression, layer) of everything a ∂(E)/∂P may differentiate: the left
        side's numerator first, then L, the outputs ŷ, every O_kj and every z_kj."""
        out = [("L", self.net.loss, None)]
        for k in range(self.net.depth, 0, -1):
            for j in range(1, self.spec.layers[k] + 1):
                node = self.net.O(k, j)
                out += [(self.printer.text(node), node, k), (f"z_{k}{j}", self.net.z(k, j), k)]
        if head_num is not None:
            first = "L" if head_num is LOSS else self.printer.text(head_num)
            out.sort(key=lambda o: o[0] != first)
        return out

    def _node_of(self, inner: sympy.Expr, seed: str, head_num=None):
        """The (name, expression) of the node ``inner`` is (forward definitions substituted),
        or None; nodes before the last layer whose parameters ``inner`` uses are skipped."""
        params = [nt.parse(s).indices[0] for s in inner.free_symbols
                  if nt.parse(s) and nt.parse(s).kind in ("w", "b")]
        for name, node, layer in self._nodes(head_num):
            if layer is not None and params and max(params) > layer:
                continue
            cx, _ = self.compare(inner, node, f"{seed}#node")
            if cx is None:
                return name, node
        return None

    def points(self, seed_text: str, n: int = equivalence.N_POINTS) -> list[dict]:
        """Seeded random points over x, w, b and y (see :mod:`backprop.verify.equivalence`)."""
        return self.eq.points(seed_text, n)

    def value(self, expr: sympy.Expr, point: dict, full: dict | None = None) -> sympy.Expr:
        """expr at one point, exactly where it is rational (node outputs from a forward pass)."""
        full = full if full is not None else self.eq.eval.forward(point)
        try:
            return self.eq.eval.value(expr, full)
        except KeyError as exc:
            raise InputError(f"no value for {self.printer.text(exc.args[0])}") from None

    def compare(self, claim: sympy.Expr, truth: sympy.Expr, seed: str):
        """(counterexample, None) where claim and truth differ, else (None, how it was shown);
        the kink note of the last comparison is kept in ``self.last_note``."""
        out = self.eq.compare(claim, truth, seed)
        if out.method == "undefined":
            raise InputError(f"could not evaluate the equation at any of {equivalence.N_POINTS} random points: "
                             "it is undefined there (a log or a division by zero, e.g. y/ŷ at a dead relu output)")
        self.last_note = out.note
        return out.counterexample, (None if out.counterexample else out.method)

    # -- printing in the claim's vocabulary ---------------------------------------------------
    def vocabulary(self, claim: sympy.Expr) -> str:
        """'expanded' when the claim spells node outputs out (x's, or weights of two layers,
        and no O or ŷ), else 'formula' (the notes' y, ŷ, O, x, w)."""
        names = [nt.parse(s) or nt.Name("?", ()) for s in claim.free_symbols]
        kinds = {n.kind for n in names}
        if kinds & {"O", "yhat", "delta", "?"}:
            return "formula"
        layers = {n.indices[0] for n in names if n.kind in ("w", "b")}
        return "expanded" if "x" in kinds or len(layers) > 1 else "formula"

    def latex(self, expr) -> str:
        return self.printer.latex(expr)

    def frac(self, num, den) -> str:
        n = "L" if num is LOSS or (isinstance(num, sympy.Symbol) and num.name == "L") else self.latex(num)
        return rf"\frac{{\partial {n}}}{{\partial {self.latex(den)}}}"

    # -- derivative and definition equations --------------------------------------------------
    def _check(self, eq: Equation, base: dict) -> Verdict:
        rels, exprs, aliases, warnings = self.parse(eq.source)
        if eq.at is not None:
            return self._check_numeric(eq, base, rels, exprs, aliases)
        if len(exprs) < 2:
            raise InputError("not an equation: no '=' (write left side = right side)")
        head = exprs[0]
        obj = aliases.table.get(head.name) if isinstance(head, sympy.Symbol) else None
        parameter = None
        head_num = head_den = None
        if isinstance(obj, Derivative) and obj.num is not None:
            head_num, head_den = obj.num, obj.den
            truth = self.true_partial(obj.num, obj.den)
            if obj.num is LOSS:
                parameter = self.printer.text(obj.den)
        elif isinstance(obj, Derivative) and obj.expr is not None:
            inner = self.resolve(obj.expr, aliases)
            node = self._check_stands_for(1, obj, inner, None, None, None, eq.source)
            truth = self.total_derivative(inner, obj.den)
            if node[0] == "L" and nt.parse(obj.den) and nt.parse(obj.den).kind in ("w", "b"):
                head_num, head_den, parameter = LOSS, obj.den, self.printer.text(obj.den)
        elif obj is LOSS:
            truth, head_num = self.net.loss, LOSS
        elif isinstance(head, sympy.Symbol) and self._layer_of(head) not in (None, 0):
            truth = head
        else:
            raise InputError("the left side is not a derivative of L (\\frac{\\partial L}{\\partial w^{2}_{11}}), "
                             "a derivative of a node output, a node output (O_{11}, \\hat{y}) or L")
        for n, (rel, expr) in enumerate(zip(rels[1:], exprs[1:]), start=2):
            implicit: list = []
            claim = self.resolve(expr, aliases, head_num, head_den, implicit)
            for d_obj, inner in implicit:
                self._check_stands_for(n, d_obj, inner, head_num, head_den, parameter, eq.source)
            cx, method = self.compare(claim, truth, eq.source)
            if cx is not None:
                raise Wrong(**self._explain_wrong(n, expr, claim, truth, aliases, head_num, head_den,
                                                  parameter, cx))
        message = "; ".join([*warnings, *([self.last_note] if self.last_note else [])])
        return Verdict(**base, verdict="correct", parameter=parameter, method=method,
                       message=("note: " + message) if message else "")

    def _check_stands_for(self, n, d_obj, inner, head_num, head_den, parameter, seed) -> tuple:
        """A factor ∂(E)/∂P is right only where E is the expression of a node (L, ŷ, O_kj,
        z_kj): returns (name, expression) of that node; otherwise Wrong, naming the node it
        should be (the left side's numerator when P is the left side's denominator)."""
        found = self._node_of(inner, seed + "#inner", head_num)
        if found is not None:
            return found
        numerator = head_num if head_num is not None and d_obj.den == head_den else None
        if numerator is None:
            raise Wrong(parameter=parameter, counterexample=None, method="numeric",
                        message=f"segment {n} differentiates {self.printer.text(inner)}, which is not "
                                "the expression of any node of the network (L, ŷ, O_kj or z_kj)")
        target = self.net.loss if numerator is LOSS else numerator
        cx, _ = self.compare(inner, target, seed)
        shown = "L" if numerator is LOSS else self.printer.text(numerator)
        right = self.net.loss if numerator is LOSS else self._definition_of(numerator)
        extra = ""
        if numerator is not LOSS and numerator in inner.free_symbols:
            extra = (f"; it contains {shown} itself (O_{self.net.depth}1 is ŷ in the "
                     f"{'-'.join(map(str, self.spec.layers))} network)")
        raise Wrong(parameter=parameter, expected_latex=self.latex(right), counterexample=cx,
                    message=f"segment {n} differentiates {self.printer.text(inner)}, which is not "
                            f"{shown} = {self.printer.text(right)}{extra}",
                    method="numeric")

    def _definition_of(self, sym) -> sympy.Expr:
        name = nt.parse(sym)
        k = self._layer_of(sym)
        return self.net.definition(k, name.indices[-1])

    def _explain_wrong(self, n, expr, claim, truth, aliases, head_num, head_den, parameter, cx) -> dict:
        """expected LaTeX in the claim's vocabulary, and which factor differs."""
        derivs = [aliases.table[s.name] for s in expr.free_symbols
                  if isinstance(aliases.table.get(s.name), Derivative)]
        factor = slip = None
        # explaining factors means factor/cancel of the claim: only within the work budget
        small = sympy.count_ops(claim) <= equivalence.OPS_BUDGET // 10 and \
            equivalence.expansion_terms(claim) <= equivalence.TERM_BUDGET // 10
        if small and head_num is LOSS and head_den is not None and nt.parse(head_den).kind in ("w", "b"):
            slip = misconceptions.label(self.d, head_den, claim, seed=str(expr))
        if derivs and all(d.num is not None for d in derivs) and head_num is LOSS and \
                nt.parse(head_den).kind in ("w", "b"):
            g = self.d.gradient(head_den)
            chain = " + ".join(r" \cdot ".join(self.frac(f.numerator, f.denominator) for f in path)
                               for path in g.chain)
            true_pairs = {(f.numerator, f.denominator) for path in g.chain for f in path}
            bad = [d for d in derivs if ((sympy.Symbol("L") if d.num is LOSS else d.num), d.den) not in true_pairs]
            if bad:
                factor = "; ".join(f"{self.frac(d.num, d.den)} is not a factor of the chain" for d in bad)
            else:
                factor = "a factor of the chain is missing"
            expected = f"{chain} = {self.latex(truth)}"
        else:
            form = self.vocabulary(claim)
            shown_truth = self.net.expand(truth) if form == "expanded" else truth
            expected = self.latex(shown_truth)
            if slip is not None:
                factor = slip[1]
            elif not small:
                factor = "the claim is too large to compare factor by factor"
            elif head_num is LOSS and head_den is not None and nt.parse(head_den).kind in ("w", "b"):
                factor = self._factor_diff(claim, self.d.gradient(head_den))
        lhs = self.frac(head_num, head_den) if head_den is not None else None
        msg = f"segment {n} differs from {lhs}" if lhs else f"segment {n} differs from the left side"
        if factor:
            msg += f": {factor}"
        if slip is not None:
            msg += f" ({slip[0].label})"
        return dict(parameter=parameter, expected_latex=expected, counterexample=cx, message=msg,
                    factor=factor, method="numeric", misconception=slip[0].as_dict() if slip else None)

    def _factor_diff(self, claim: sympy.Expr, g) -> str | None:
        """For a single-path chain: the one factor whose replacement turns truth into claim."""
        if len(g.chain) != 1:
            return f"the truth is a sum over {len(g.chain)} chain paths"
        factors = g.chain[0]
        best = None
        for i, f in enumerate(factors):
            rest = sympy.Mul(*[h.value for k, h in enumerate(factors) if k != i])
            if rest == 0:
                continue
            implied = sympy.factor(sympy.cancel(claim / rest))
            num, den = sympy.fraction(sympy.together(implied))
            if den.free_symbols or implied.has(sympy.zoo, sympy.nan, sympy.oo):
                continue
            ops = sympy.count_ops(implied)
            if best is None or ops < best[0]:
                best = (ops, f, implied)
        if best is None:
            return self._missing_parts(claim, g)
        _, f, implied = best
        name = rf"{self.frac(f.numerator, f.denominator)}"
        if implied == 1:
            return f"the factor {name} = {self.latex(f.value)} is missing"
        return f"the factor {name} should be {self.latex(f.value)}, the claim has {self.latex(implied)}"

    def _missing_parts(self, claim: sympy.Expr, g) -> str | None:
        """Several factors off: the parts of chain factors the claim lacks (or has extra)."""
        if g.formula == 0:
            return "the truth is 0 (no gradient reaches this parameter)"
        ratio = sympy.factor(sympy.cancel(claim / g.formula))
        num, den = sympy.fraction(ratio)
        found = []
        for f in g.chain[0]:
            lacking = []
            for part in sympy.Mul.make_args(f.value):
                if part.is_number:
                    continue
                if not sympy.fraction(sympy.cancel(den / part))[1].free_symbols:
                    lacking.append(part)
            if lacking:
                missing = sympy.Mul(*lacking)
                found.append(f"{self.latex(missing)} of {self.frac(f.numerator, f.denominator)}")
        if found:
            return "missing " + ", ".join(found)
        return f"the claim is the truth times {self.latex(ratio)}"

    # -- numeric claims ('% at:') ---------------------------------------------------------------
    def _check_numeric(self, eq: Equation, base: dict, rels, exprs, aliases) -> Verdict:
        """Claims at the '% at:' point, in exact arithmetic: '=' must hold exactly (overflow and
        rounding cannot make two numbers agree); only \\approx allows the digits written."""
        point, overrides = self._at_point(eq.at)
        full: dict = {}
        if all(s in point for s in self.net.inputs + self.net.parameters()):
            full = self.eq.eval.forward(point)
        full.update(point)
        full.update(overrides)
        values = []
        for expr in exprs:
            resolved = equivalence.rationalise(self.resolve(expr, aliases))
            missing = [s for s in resolved.free_symbols if s not in full]
            if missing:
                raise InputError(f"no value for {', '.join(sorted(self.printer.text(s) for s in missing))} in "
                                 f"'% at: {eq.at['text']}' (line {eq.at['line']})")
            values.append(self.eq.eval.value(resolved, full))
        head = values[0]
        seg_texts = [seg.s for _, seg in split_relations(clean_layout(Text.of(eq.source)))]
        shown_point = {self.printer.text(s): _fmt(v) for s, v in {**point, **overrides}.items()}
        for n, (rel, v, text) in enumerate(zip(rels[1:], values[1:], seg_texts[1:]), start=2):
            decimals = _decimals(text)
            ok = equivalence.agree(v, head)
            if rel == "≈" and ok is not None:
                half_unit = sympy.Rational(1, 2) * sympy.Rational(10) ** -(decimals or 0)
                tol = half_unit if decimals is not None else sympy.Rational(1, 100) * max(1, abs(head))
                ok = equivalence.is_finite_real(v) and equivalence.is_finite_real(head) and abs(v - head) <= tol
            if not ok:
                left = seg_texts[0]
                msg = f"at this point {left} = {_fmt(head)}, not {text}" if text.strip() != str(_fmt(v)) else \
                    f"at this point {left} = {_fmt(head)}, not {_fmt(v)}"
                if text.strip() != str(_fmt(v)):
                    msg += f" (segment {n}, {text}, is {_fmt(v)})"
                if not equivalence.is_finite_real(head):
                    msg += " (the left side is not a finite real number at this point)"
                elif rel == "=" and decimals is not None and equivalence.is_finite_real(v) and \
                        abs(v - head) <= sympy.Rational(1, 2) * sympy.Rational(10) ** -decimals:
                    msg += rf"; {text} is {_fmt(head)} rounded: write \approx {text} if rounding is meant"
                raise Wrong(expected_latex=_num_latex(head), counterexample={
                    "point": shown_point, "claimed": _fmt(v), "actual": _fmt(head)}, message=msg,
                    method="exact" if rel == "=" else "numeric")
        return Verdict(**base, verdict="correct", method="exact (at the given point)",
                       message=f"= {_fmt(head)}")

    def _at_point(self, at: dict) -> tuple[dict, dict]:
        """'% at: x_1=80 x_2=8 y=5 w=1 b=0 yhat=17' -> (point, overrides of node outputs), exact."""
        point, over = {}, {}
        for name, val in re.findall(r"([^\s=,]+)\s*=\s*([-+0-9.eE]+)", at["text"]):
            try:
                num = sympy.Rational(val)
            except (ValueError, TypeError, sympy.SympifyError):
                raise InputError(f"'% at:' value {val!r} for {name} is not a number") from None
            clean = name.replace("{", "").replace("}", "").replace("\\hat", "hat").replace(" ", "")
            if clean == "w":
                point.update({p: num for p in self.net.parameters() if nt.parse(p).kind == "w"})
            elif clean == "b":
                point.update({p: num for p in self.net.parameters() if nt.parse(p).kind == "b"})
            elif clean in ("y", "yhat", "haty", "ŷ") and self.spec.n_outputs == 1:
                (point if clean == "y" else over)[nt.target(1) if clean == "y" else nt.prediction(1)] = num
            else:
                sym = _symbol_from_name(clean)
                if sym is None or (sym not in self.net.inputs + self.net.parameters() + self.net.targets
                                   and sym not in self.net.predictions and nt.parse(sym).kind != "O"):
                    raise InputError(f"'% at:' names {name}, which is not in the "
                                     f"{'-'.join(map(str, self.spec.layers))} network")
                (over if nt.parse(sym).kind in ("O", "yhat") else point)[sym] = num
        return point, over

    # -- parameter counts ('% count:') ----------------------------------------------------------
    def _check_count(self, eq: Equation, base: dict) -> Verdict:
        words = eq.count.split()
        spec_layers = self.spec.layers
        what = "auto"
        for w in words:
            if re.fullmatch(r"[0-9]+([-,][0-9]+)+", w):
                spec_layers = parse_layers(w)
            elif w in ("per-layer", "total", "weights", "biases"):
                what = w
            else:
                raise InputError(f"'% count: {eq.count}': expected LAYERS (5-4-3-2-1) and one of "
                                 "per-layer, total, weights, biases")
        rows = [(spec_layers[k - 1] * spec_layers[k], spec_layers[k] if self.spec.bias else 0)
                for k in range(1, len(spec_layers))]
        t = clean_layout(Text.of(eq.source))
        check_balanced(t)
        parts = split_relations(t)
        terms = []
        for _, seg in parts:
            pieces = re.split(r"\+", seg.s)
            nums = []
            for p in pieces:
                p = p.strip()
                if not re.fullmatch(r"[0-9]+", p):
                    raise InputError(f"'{seg.s}' is not a sum of whole numbers (a parameter count)", seg.col(0))
                nums.append(int(p))
            terms.append(nums)
        layers_txt = "-".join(map(str, spec_layers))
        per_layer = [w + b for w, b in rows]
        total = sum(per_layer)
        truth = {"total": total, "weights": sum(w for w, _ in rows), "biases": sum(b for _, b in rows)}
        if what == "auto":
            what = "per-layer" if any(len(ts) == len(rows) and len(rows) > 1 for ts in terms) else "total"
        problems = []
        if what == "per-layer":
            for ts in terms:
                if len(ts) == len(rows):
                    for k, (got, want, (w, b)) in enumerate(zip(ts, per_layer, rows), start=1):
                        if got != want:
                            problems.append(f"layer {k} has {spec_layers[k - 1]}×{spec_layers[k]} = {w} weights "
                                            f"+ {b} biases = {want}, not {got}")
                elif len(ts) == 1 and ts[0] != total:
                    problems.append(f"the total is {total}, not {ts[0]}")
            sums = [sum(ts) for ts in terms]
            if len(set(sums)) > 1:
                problems.append("the arithmetic does not add up: " + " vs ".join(map(str, sums)))
            expected = " + ".join(map(str, per_layer)) + f" = {total}"
        else:
            want = truth[what]
            for ts in terms:
                if sum(ts) != want:
                    problems.append(f"the {layers_txt} network has {want} {what if what != 'total' else 'parameters'}, "
                                    f"not {sum(ts)}")
            expected = str(want)
        if problems:
            claimed = sum(terms[-1])
            return Verdict(**base, verdict="wrong", expected_latex=expected, message="; ".join(problems),
                           counterexample={"point": {"layers": layers_txt}, "claimed": claimed,
                                           "actual": truth["total"] if what in ("per-layer", "total") else truth[what]},
                           method="count")
        return Verdict(**base, verdict="correct", expected_latex=expected, method="count",
                       message=f"{layers_txt}: {expected}")


def _decimals(text: str) -> int | None:
    m = re.fullmatch(r"\s*-?[0-9]+(?:\.([0-9]+))?\s*", text)
    if not m:
        return None
    return len(m.group(1) or "")


def _num_latex(v: float) -> str:
    return str(_fmt(v))


def _symbol_from_name(clean: str):
    """x_1, x_i1, y_1, yhat_1, w^2_11, w_2_1_1, b_21, O_11 -> symbol."""
    name = nt.parse(clean)
    if name:
        return name.symbol
    m = re.fullmatch(r"x_i?([0-9]+)", clean)
    if m:
        return nt.feature(int(m.group(1)))
    m = re.fullmatch(r"(y|yhat|haty)_([0-9]+)", clean)
    if m:
        return (nt.target if m.group(1) == "y" else nt.prediction)(int(m.group(2)))
    m = re.fullmatch(r"w\^([0-9]+)_([0-9])([0-9])", clean) or re.fullmatch(r"w_([0-9])([0-9])\^([0-9]+)", clean)
    if m:
        g = m.groups()
        k, i, j = (g[0], g[1], g[2]) if clean.startswith("w^") else (g[2], g[0], g[1])
        return nt.weight(int(k), int(i), int(j))
    m = re.fullmatch(r"([bO])_([0-9])([0-9])", clean)
    if m:
        return (nt.bias if m.group(1) == "b" else nt.output)(int(m.group(2)), int(m.group(3)))
    return None
