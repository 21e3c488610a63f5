r"""The labelled verify corpus: hand-written textbook derivations plus generated ones.

Every entry is a dict (see :data:`FIELDS`): the network (``spec``), the ``notation`` it is
written in, its ``form`` (scalar, chain, multiline, matrix, numeric), the LaTeX ``text``, the
``expect``\ ed verdict (``correct`` / ``wrong``) and, for a wrong one, the ``label`` of the
slip (a :mod:`backprop.verify.misconceptions` id, or ``near_miss`` / ``crafted`` for the
adversarial claims of issue 18).

Generated entries are built from derived truths (:func:`backprop.derive.derive`): every
gradient is written as its chain-rule sum over paths, one factor per node, printed in each
notation's own symbols; wrong ones apply one slip to one factor.  Everything is seeded, so
``python -m backprop.verify.corpus.build`` rewrites ``generated.json`` byte for byte; the
in-memory ``claim`` (a SymPy expression in the notes' symbols, with ``GP_k_j`` standing for
g' of node (k, j)) lets the harness evaluate a claim independently of the checker.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import sympy

from backprop.derive import derive, make_spec
from backprop.derive import notation as nt
from backprop.derive.activations import ACTIVATIONS, derivative, derivative_at
from backprop.derive.losses import LOSSES, PREDICTION, TARGET, is_canonical_pair
from backprop.verify.misconceptions import SLIPS

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated.json"
HAND = HERE / "textbook.toml"

NOTATIONS = ("notes", "nielsen", "ng", "bishop", "mazur")
FORMS = ("scalar", "chain", "multiline", "matrix", "numeric")
ADVERSARIAL = ("near_miss", "crafted")
LABELS = tuple(SLIPS) + ADVERSARIAL
#: field -> (type, required)
FIELDS = {"id": (str, True), "spec": (dict, True), "notation": (str, True), "form": (str, True),
          "text": (str, True), "expect": (str, True), "label": (str, False),
          "parameter": (str, False), "source": (str, False), "note": (str, False)}
SEED = 20261201


# -- entries --------------------------------------------------------------------------------
def entry_problems(e: dict) -> list[str]:
    """Why ``e`` is not a valid corpus entry (empty when it is)."""
    bad = [f"missing {k}" for k, (_, req) in FIELDS.items() if req and k not in e]
    bad += [f"{k} is not a {t.__name__}" for k, (t, _) in FIELDS.items()
            if k in e and not isinstance(e[k], t)]
    bad += [f"unknown field {k}" for k in e if k not in FIELDS and k != "claim"]
    if bad:
        return bad
    if e["notation"] not in NOTATIONS:
        bad.append(f"notation {e['notation']!r} not in {NOTATIONS}")
    if e["form"] not in FORMS:
        bad.append(f"form {e['form']!r} not in {FORMS}")
    if e["expect"] not in ("correct", "wrong"):
        bad.append(f"expect {e['expect']!r}")
    if e["expect"] == "wrong" and e.get("label") not in LABELS:
        bad.append(f"wrong entry with label {e.get('label')!r} not in the slip table")
    if e["expect"] == "correct" and "label" in e:
        bad.append("a correct entry has no label")
    try:
        spec_of(e)
    except Exception as exc:  # noqa: BLE001 - any failure is a problem of the entry
        bad.append(f"spec: {exc}")
    if not e["text"].strip():
        bad.append("empty text")
    return bad


def spec_of(e: dict):
    s = e["spec"]
    return _spec(s["layers"], s["activations"], s["loss"], bool(s.get("bias", True)),
                 tuple(s.get("residual", ())))


@lru_cache(maxsize=None)
def _spec(layers, activations, loss, bias, residual=()):
    return make_spec(layers, activations, loss, bias, residual=residual)


def load_hand() -> list[dict]:
    """The hand-written textbook entries (``textbook.toml``)."""
    data = tomllib.loads(HAND.read_text(encoding="utf-8"))
    out = []
    for e in data["entry"]:
        e = dict(e)
        e.setdefault("source", "hand")
        out.append(e)
    return out


def load_corpus() -> list[dict]:
    """Every entry: the hand-written ones, then the generated ones from ``generated.json``."""
    gen = json.loads(GENERATED.read_text(encoding="utf-8"))
    return load_hand() + gen


# -- notations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """How one book writes the symbols of a network: names, loss letter, g' of a node."""

    name: str
    loss: str

    def names(self, spec) -> dict:
        return _NAMERS[self.name](spec)

    def gprime(self, spec, k: int, j: int) -> str | None:
        """g' of node (k, j) as the book writes it, or None to print it expanded."""
        act = spec.activations[k - 1]
        g = f"{ACTIVATIONS[act].latex or 'g'}'"  # the table's command: \sigma', \tanh'; else g'
        if self.name == "nielsen":  # his input layer is layer 1
            return rf"{g}(z^{{{k + 1}}}_{{{j}}})"
        if self.name == "ng":
            return rf"g^{{[{k}]\prime}}(z^{{[{k}]}}_{{{j}}})"
        if self.name == "bishop" and k < spec.depth:
            return rf"h'(a_{{{j}}})"
        return None


def _notes_names(spec) -> dict:
    net_syms = _all_symbols(spec)
    single = spec.n_outputs == 1
    return {s: nt.latex_name(nt.parse(s), single) for s in net_syms}


def _all_symbols(spec):
    out = []
    L = spec.depth
    for k in range(1, L + 1):
        for j in range(1, spec.layers[k] + 1):
            out += [nt.bias(k, j), nt.output(k, j, L), nt.preactivation(k, j)]
            out += [nt.weight(k, i, j) for i in range(1, spec.layers[k - 1] + 1)]
    out += [nt.feature(i) for i in range(1, spec.layers[0] + 1)]
    out += [nt.target(j) for j in range(1, spec.n_outputs + 1)]
    return out


def _book_names(spec, layer_fmt, out_name, target_name, input_name="x_{{{i}}}", shift=0) -> dict:
    """Names for the books that write w^l_{jk} (to-node first) and a per-layer letter."""
    L = spec.depth
    names = {}
    single = spec.n_outputs == 1
    for k in range(1, L + 1):
        lk = layer_fmt.format(k=k + shift)
        for j in range(1, spec.layers[k] + 1):
            names[nt.bias(k, j)] = f"b^{{{lk}}}_{{{j}}}"
            names[nt.preactivation(k, j)] = f"z^{{{lk}}}_{{{j}}}"
            names[nt.output(k, j, L)] = (out_name(k, j, single) if k == L else f"a^{{{lk}}}_{{{j}}}")
            for i in range(1, spec.layers[k - 1] + 1):
                names[nt.weight(k, i, j)] = f"w^{{{lk}}}_{{{j}{i}}}"
    for i in range(1, spec.layers[0] + 1):
        names[nt.feature(i)] = input_name.format(i=i)
    for j in range(1, spec.n_outputs + 1):
        names[nt.target(j)] = target_name(j, single)
    return names


def _nielsen(spec):
    """Nielsen numbers the input layer 1, so the notes' layer k is his layer k + 1."""
    L = spec.depth + 1
    return _book_names(spec, "{k}", lambda k, j, s: f"a^{{{L}}}_{{{j}}}",
                       lambda j, s: "y" if s else f"y_{{{j}}}", shift=1)


def _ng(spec):
    return _book_names(spec, "[{k}]", lambda k, j, s: r"\hat{y}" if s else rf"\hat{{y}}_{{{j}}}",
                       lambda j, s: "y" if s else f"y_{{{j}}}")


def _bishop(spec):
    """Bishop §5.3 for one hidden layer: x_i → a_j, z_j → y_k, targets t_k, w^{(l)}_{ji}."""
    names = {}
    for j in range(1, spec.layers[1] + 1):
        names[nt.bias(1, j)] = f"b^{{(1)}}_{{{j}}}"
        names[nt.preactivation(1, j)] = f"a_{{{j}}}"
        names[nt.output(1, j, 2)] = f"z_{{{j}}}"
        for i in range(1, spec.layers[0] + 1):
            names[nt.weight(1, i, j)] = f"w^{{(1)}}_{{{j}{i}}}"
    for k in range(1, spec.layers[2] + 1):
        names[nt.bias(2, k)] = f"b^{{(2)}}_{{{k}}}"
        names[nt.output(2, k, 2)] = f"y_{{{k}}}"
        names[nt.target(k)] = f"t_{{{k}}}"
        for j in range(1, spec.layers[1] + 1):
            names[nt.weight(2, j, k)] = f"w^{{(2)}}_{{{k}{j}}}"
    for i in range(1, spec.layers[0] + 1):
        names[nt.feature(i)] = f"x_{{{i}}}"
    return names


#: Mazur's 2-2-2 names: w1..w8 in his order (w1 i1→h1, w2 i2→h1, w3 i1→h2, ...).
MAZUR_WEIGHTS = {(1, 1, 1): 1, (1, 2, 1): 2, (1, 1, 2): 3, (1, 2, 2): 4,
                 (2, 1, 1): 5, (2, 2, 1): 6, (2, 1, 2): 7, (2, 2, 2): 8}


def _mazur(spec):
    names = {nt.weight(*k): f"w_{{{v}}}" for k, v in MAZUR_WEIGHTS.items()}
    for j in (1, 2):
        names[nt.output(1, j, 2)] = f"out_{{h{j}}}"
        names[nt.preactivation(1, j)] = f"net_{{h{j}}}"
        names[nt.output(2, j, 2)] = f"out_{{o{j}}}"
        names[nt.preactivation(2, j)] = f"net_{{o{j}}}"
        names[nt.feature(j)] = f"i_{{{j}}}"
        names[nt.target(j)] = f"target_{{o{j}}}"
    return names


_NAMERS = {"notes": _notes_names, "nielsen": _nielsen, "ng": _ng, "bishop": _bishop, "mazur": _mazur}
PROFILES = {p.name: p for p in (Profile("notes", "L"), Profile("nielsen", "C"),
                                Profile("ng", r"\mathcal{L}"), Profile("bishop", "E_n"),
                                Profile("mazur", "E_{total}"))}


# -- claims as sums of chain products --------------------------------------------------------
def gp_symbol(k: int, j: int) -> sympy.Symbol:
    """Placeholder for g' of node (k, j); :func:`resolve_gp` gives its value."""
    return sympy.Symbol(f"GP_{k}_{j}")


def gp_value(spec, k: int, j: int) -> sympy.Expr:
    return derivative_at(spec.activations[k - 1], nt.output(k, j, spec.depth), nt.preactivation(k, j))


def resolve_gp(spec, expr: sympy.Expr) -> sympy.Expr:
    """The claim with every g' placeholder replaced by the activation's derivative."""
    subs = {}
    for s in expr.free_symbols:
        if s.name.startswith("GP_"):
            k, j = map(int, s.name.split("_")[1:])
            subs[s] = gp_value(spec, k, j)
    return expr.xreplace(subs)


def _fused(spec) -> bool:
    """The output and loss are a canonical pair (sigmoid + bce, softmax + cce): δ = ŷ - y."""
    return is_canonical_pair(spec.activations[-1], spec.loss)


def _unit_gprime(name: str) -> bool:
    """g' = 1 (linear): leaving it out of a chain is no slip."""
    return ACTIVATIONS[name].elementwise and derivative(name)[0] == 1


def _gprime_moves(name: str) -> bool:
    """g' evaluated at the output O instead of z gives another value: a g' that is not a
    number and reads more than the sign, which O keeps (σ's, tanh's, softplus' move; relu's,
    linear's, step's do not)."""
    act = ACTIVATIONS[name]
    return act.elementwise and not act.keeps_sign and not derivative(name)[0].is_number


def _gp_layer(f: sympy.Symbol) -> int:
    """The layer k of a g' placeholder GP_k_j."""
    return int(f.name.split("_")[1])


def paths(spec, d, param) -> list[list[sympy.Expr]]:
    """∂L/∂param as a list of terms, each a list of factors (the chain along one path)."""
    name = nt.parse(param)
    k, j = name.indices[0], name.indices[-1]
    local = sympy.S.One if name.kind == "b" else (
        nt.feature(name.indices[1]) if k == 1 else nt.output(k - 1, name.indices[1], spec.depth))
    L = spec.depth
    routes = [[(k, j)]]
    for layer in range(k + 1, L + 1):
        routes = [r + [(layer, m)] for r in routes for m in range(1, spec.layers[layer] + 1)]
    terms = []
    for r in routes:
        last = r[-1][1]
        yh, y = nt.output(L, last, L), nt.target(last)
        if _fused(spec):
            factors = [yh - y]
        else:
            factors = [d.dL_dyhat[last - 1], gp_symbol(L, last)]
        for (ka, a), (kb, b) in reversed(list(zip(r, r[1:]))):
            if kb != L:
                factors.append(gp_symbol(kb, b))
            factors.append(nt.weight(kb, a, b))
        if k != L:
            factors.append(gp_symbol(k, j))
        factors.append(local)
        terms.append([f for f in factors if f != 1] or [sympy.S.One])
    return terms


def total(terms) -> sympy.Expr:
    return sympy.Add(*[sympy.Mul(*t) for t in terms])


# -- printing ---------------------------------------------------------------------------------
def _preactivation_of(arg: sympy.Expr, spec) -> sympy.Expr:
    """z_kj for a node output O_kj (z_Lj for ŷ_j), else ``arg`` itself."""
    name = nt.parse(arg) if isinstance(arg, sympy.Symbol) else None
    if name is not None and name.kind == "O":
        return nt.preactivation(*name.indices)
    if name is not None and name.kind == "yhat":
        return nt.preactivation(spec.depth, name.indices[-1])
    if isinstance(arg, sympy.Max) and sympy.S.Zero in arg.args and len(arg.args) == 2:
        return next(a for a in arg.args if a != 0)  # an expanded relu output max(0, z): z
    return arg


def _latex(expr, spec, profile: Profile) -> str:
    names = dict(profile.names(spec))
    gps = {s for s in expr.free_symbols if s.name.startswith("GP_")}
    for s in gps:
        k, j = map(int, s.name.split("_")[1:])
        text = profile.gprime(spec, k, j)
        if text is None:
            expr = expr.xreplace({s: gp_value(spec, k, j)})
        else:
            names[s] = text
    # relu' is θ(O_kj, 0): θ(O_kj) alone is NOT it (O_kj = 0 on all of z_kj < 0, where θ(0)
    # is not 0 by every convention); books write the one-argument step of z_kj, equal to it
    # away from the kink z_kj = 0
    expr = expr.replace(lambda e: isinstance(e, sympy.Heaviside) and len(e.args) == 2,
                        lambda e: sympy.Heaviside(_preactivation_of(e.args[0], spec)))
    return sympy.latex(expr, symbol_names=names)


def _wrap(text: str, expr: sympy.Expr) -> str:
    if isinstance(expr, sympy.Add) or text.startswith("-"):
        return rf"\left({text}\right)"
    return text


def render_terms(terms, spec, profile: Profile, rng: random.Random, sep: str | None = None,
                 shuffle: bool = True) -> str:
    """A sum of chain products in ``profile``'s symbols, factor order and product sign varied."""
    sep = sep if sep is not None else rng.choice([" ", r" \cdot ", r" \times ", r"\,"])
    out = []
    for t in terms:
        fs = [f for f in t if f != 1] or [sympy.S.One]
        coeff = sympy.S.One
        parts = []
        for f in fs:
            shown = resolve_gp(spec, f) if profile.name == "notes" else f
            if shown.is_number:
                coeff *= shown
                continue
            # a g' the profile writes out (Bishop's output layer: 1 - y^2) is a sum: bracket it
            spelled = any(profile.gprime(spec, *map(int, g.name.split("_")[1:])) is None
                          for g in f.free_symbols if g.name.startswith("GP_"))
            parts.append(_wrap(_latex(f, spec, profile), resolve_gp(spec, f) if spelled else shown))
        if shuffle:
            rng.shuffle(parts)
        if coeff != 1 or not parts:
            parts.insert(0, _wrap(sympy.latex(coeff), coeff))
        out.append(sep.join(parts))
    return " + ".join(out)


def lhs(spec, profile: Profile, param, num: str | None = None) -> str:
    names = profile.names(spec)
    return rf"\frac{{\partial {num or profile.loss}}}{{\partial {names[param]}}}"


# -- generation -------------------------------------------------------------------------------
#: The networks the generated entries are drawn on: every activation and loss appears.
NETWORKS = [
    ("2-1", "linear", "se"), ("2-1", "sigmoid", "bce"), ("2-1", "linear", "hinge"),
    ("2-2-1", "linear", "se"), ("2-2-1", "sigmoid,linear", "se"), ("2-3-1", "tanh,sigmoid", "bce"),
    ("2-2-1", "relu,linear", "half_se"), ("3-2-1", "leaky_relu,linear", "mse"),
    ("2-2-1", "softplus,sigmoid", "half_se"), ("2-2-2", "sigmoid,sigmoid", "half_se"),
    ("2-2-2", "tanh,softmax", "cce"), ("2-3-2", "relu,linear", "mse"),
    ("2-2-2-1", "sigmoid,tanh,linear", "se"), ("3-2-2", "softplus,tanh", "se"),
    ("2-2-1", "step,linear", "se"), ("2-3-2", "sigmoid,linear", "hinge"),
    ("2-2-2", "leaky_relu,sigmoid", "bce"), ("1-2-1", "tanh,linear", "half_se"),
]


def _spec_dict(spec) -> dict:
    return {"layers": "-".join(map(str, spec.layers)), "activations": ",".join(spec.activations),
            "loss": spec.loss, "bias": spec.bias}


def _pname(param) -> str:
    return nt.text_name(nt.parse(param))


def _elementwise(spec) -> bool:
    return all(ACTIVATIONS[a].elementwise for a in spec.activations)


def _correct_variants(spec, d, param, rng) -> list[dict]:
    """The ways one true gradient is written (each an entry without id)."""
    g = d.gradient(param)
    notes = PROFILES["notes"]
    out = []
    left = lhs(spec, notes, param)
    out.append(dict(notation="notes", form="scalar", text=f"{left} = {_latex(g.formula, spec, notes)}",
                    claim=g.formula, note="derive's formula"))
    if _elementwise(spec) or _fused(spec):
        terms = paths(spec, d, param)
        for prof in ("notes", "nielsen", "ng", "bishop"):
            p = PROFILES[prof]
            if prof == "bishop" and spec.depth != 2:
                continue
            text = render_terms(terms, spec, p, rng)
            out.append(dict(notation=prof, form="scalar", text=f"{lhs(spec, p, param)} = {text}",
                            claim=total(terms), note="chain sum over paths, factor order shuffled"))
        if len(terms) == 1 and spec.depth >= 2:
            out.append(_chain_entry(spec, d, param, terms, rng))
        if spec.n_parameters <= 9 and spec.depth <= 2 and sympy.count_ops(g.expanded) < 40:
            out.append(dict(notation="notes", form="scalar",
                            text=f"{left} = {_latex(g.expanded, spec, notes)}",
                            claim=g.expanded, note="expanded in x, w, b"))
    return out


def _chain_entry(spec, d, param, terms, rng) -> dict:
    """The notes' multi-line chain: ∂L/∂P = ∂L/∂ŷ ∂ŷ/∂O … = values, as an align block."""
    g = d.gradient(param)
    notes = PROFILES["notes"]
    names = notes.names(spec)
    paths = []
    for path in g.chain:  # every path: softmax couples the outputs, one path is not the chain
        fracs = []
        for f in path:
            num = "L" if str(f.numerator) == "L" else names[f.numerator]
            fracs.append(rf"\frac{{\partial {num}}}{{\partial {names[f.denominator]}}}")
        paths.append(fracs)
    values = render_terms(terms, spec, notes, rng, shuffle=False)
    sep = rng.choice([" ", r" \cdot "])
    chain = " + ".join(sep.join(fracs) for fracs in paths)
    text = (r"\begin{align*}" "\n" f"{lhs(spec, notes, param)} &= {chain} \\\\\n"
            f"&= {values}\n" r"\end{align*}")
    return dict(notation="notes", form="multiline", text=text, claim=g.formula,
                note="chain of factors, then their values")


# Slips: each takes (spec, terms, param, rng) and returns wrong terms or None when it does not apply.
def _slip_missing_gprime(spec, terms, param, rng):
    cands = [(ti, fi) for ti, t in enumerate(terms) for fi, f in enumerate(t)
             if isinstance(f, sympy.Symbol) and f.name.startswith("GP_")
             and not _unit_gprime(spec.activations[_gp_layer(f) - 1])]
    if not cands:
        return None
    _, fi = cands[rng.randrange(len(cands))]
    victim = terms[_][fi]
    return [[f for f in t if f != victim] or [sympy.S.One] for t in terms]


_zs = sympy.Symbol("zeta")


def _gprime_at(spec, k, arg):
    act = ACTIVATIONS[spec.activations[k - 1]]
    return sympy.diff(act.sym(_zs), _zs).subs(_zs, arg)


def _slip_gprime_at_output(spec, terms, param, rng):
    gps = sorted({f for t in terms for f in t if isinstance(f, sympy.Symbol) and f.name.startswith("GP_")
                  and _gprime_moves(spec.activations[_gp_layer(f) - 1])}, key=str)
    if not gps:
        return None
    v = gps[rng.randrange(len(gps))]
    k, j = map(int, v.name.split("_")[1:])
    wrong = _gprime_at(spec, k, nt.output(k, j, spec.depth))
    return [[wrong if f == v else f for f in t] for t in terms]


def _weights(terms):
    return sorted({f for t in terms for f in t if isinstance(f, sympy.Symbol)
                   and (nt.parse(f) and nt.parse(f).kind == "w")}, key=str)


def _exists(spec, k, i, j):
    return 1 <= k <= spec.depth and 1 <= i <= spec.layers[k - 1] and 1 <= j <= spec.layers[k]


def _swap_weight(spec, terms, rng, pick):
    opts = []
    for w in _weights(terms):
        k, i, j = nt.parse(w).indices
        new = pick(k, i, j)
        if new and _exists(spec, *new):
            opts.append((w, nt.weight(*new)))
    if not opts:
        return None
    old, new = opts[rng.randrange(len(opts))]
    return [[new if f == old else f for f in t] for t in terms]


def _slip_wrong_layer_weight(spec, terms, param, rng):
    return _swap_weight(spec, terms, rng, lambda k, i, j: (k - 1, i, j) if k > 1 else (k + 1, i, j))


def _slip_transposed_indices(spec, terms, param, rng):
    return _swap_weight(spec, terms, rng, lambda k, i, j: (k, j, i) if i != j else None)


def _slip_missing_path(spec, terms, param, rng):
    if len(terms) < 2:
        return None
    drop = rng.randrange(len(terms))
    return [t for n, t in enumerate(terms) if n != drop]


def _top(terms, fn):
    return [[fn(t[0])] + t[1:] for t in terms]


def _slip_sign_error(spec, terms, param, rng):
    return _top(terms, lambda f: -f)


def _carries_two(loss: str) -> bool:
    """∂ℓ/∂ŷ of the loss's square keeps its 2 ((y - ŷ)²: se, mse), not ½(y - ŷ)² (half_se)."""
    return sympy.diff(LOSSES[loss].term(TARGET, PREDICTION), PREDICTION, 2) == 2


def _slip_factor_two(spec, terms, param, rng):
    if not LOSSES[spec.loss].squared:
        return None
    return _top(terms, lambda f: f / 2 if _carries_two(spec.loss) else 2 * f)


def _slip_extra_gprime_fused(spec, terms, param, rng):
    if not _fused(spec) or not ACTIVATIONS[spec.activations[-1]].elementwise:  # sigmoid, not softmax
        return None
    L = spec.depth
    out = []
    for t in terms:
        j = nt.parse(t[0].free_symbols and sorted(t[0].free_symbols, key=str)[-1]).indices[-1]
        out.append([t[0], gp_symbol(L, j)] + t[1:])
    return out


def _slip_bias_extra_input(spec, terms, param, rng):
    name = nt.parse(param)
    if name.kind != "b":
        return None
    k = name.indices[0]
    i = rng.randrange(1, spec.layers[k - 1] + 1)
    extra = nt.feature(i) if k == 1 else nt.output(k - 1, i, spec.depth)
    return [t + [extra] for t in terms]


SCALAR_SLIPS = {
    "missing_gprime": _slip_missing_gprime, "gprime_at_output": _slip_gprime_at_output,
    "wrong_layer_weight": _slip_wrong_layer_weight, "transposed_indices": _slip_transposed_indices,
    "missing_path": _slip_missing_path, "sign_error": _slip_sign_error, "factor_two": _slip_factor_two,
    "extra_gprime_fused": _slip_extra_gprime_fused, "bias_extra_input": _slip_bias_extra_input,
}


def _differs(spec, a: sympy.Expr, b: sympy.Expr, rng: random.Random) -> bool:
    """True when claim a and truth b differ at a random point (forward values substituted)."""
    from backprop.derive import Network
    net = Network(spec)
    diff = net.expand(resolve_gp(spec, a - b))
    syms = sorted(diff.free_symbols, key=str)
    fn = sympy.lambdify(syms, diff, modules=["mpmath"])
    for _ in range(3):
        pt = [rng.uniform(-1.3, 1.3) for _ in syms]
        if nt.target(1) in syms and LOSSES[spec.loss].targets.kind == "sign":  # hinge: y is ±1
            pt[syms.index(nt.target(1))] = rng.choice([float(v) for v in LOSSES[spec.loss].targets.labels])
        if abs(complex(fn(*pt))) > 1e-9:
            return True
    return False


def _random_networks(rng, n):
    # The names drawn from, in a fixed order: the same draws (and generated.json) every run.
    acts = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softplus"]
    out = []
    for _ in range(n):
        depth = rng.choice([1, 2, 2, 3])
        widths = [rng.randint(1, 3)] + [rng.randint(2, 3) for _ in range(depth - 1)] + [rng.randint(1, 2)]
        a = [rng.choice(acts) for _ in range(depth - 1)]
        loss = rng.choice(["se", "half_se", "mse", "bce", "hinge", "cce"])
        drawn = rng.choice(["linear", "sigmoid", "tanh"])  # drawn for every loss: the same draws
        last = LOSSES[loss].canonical or drawn
        if LOSSES[loss].one_hot and widths[-1] < 2:
            widths[-1] = 2
        out.append(("-".join(map(str, widths)), ",".join(a + [last]), loss))
    return out


@lru_cache(maxsize=1)
def generate() -> list[dict]:
    """Every generated entry, with its in-memory ``claim`` (seeded: same list every run)."""
    rng = random.Random(SEED)
    entries = []
    nets = NETWORKS + _random_networks(rng, 10)
    for n, (layers, acts, loss) in enumerate(nets):
        spec = _spec(layers, acts, loss, True)
        d = derive(spec)
        params = list(d.net.parameters())
        rng.shuffle(params)
        for param in params[:3]:
            base = dict(spec=_spec_dict(spec), parameter=_pname(param), source="generated")
            for v in _correct_variants(spec, d, param, rng):
                entries.append({**base, **v, "expect": "correct"})
            if not (_elementwise(spec) or _fused(spec)):
                continue
            terms = paths(spec, d, param)
            truth = d.gradient(param).formula
            for label, slip in SCALAR_SLIPS.items():
                wrong = slip(spec, terms, param, rng)
                if wrong is None or not _differs(spec, total(wrong), truth, rng):
                    continue
                prof = PROFILES[rng.choice(["notes", "notes", "nielsen", "ng"]
                                           + (["bishop"] if spec.depth == 2 else []))]
                text = f"{lhs(spec, prof, param)} = {render_terms(wrong, spec, prof, rng)}"
                entries.append({**base, "notation": prof.name, "form": "scalar", "text": text,
                                "expect": "wrong", "label": label, "claim": total(wrong),
                                "note": f"{label} applied to the derived chain"})
    entries += _adversarial(rng)
    for n, e in enumerate(entries):
        e["id"] = f"gen-{n:04d}-{e['notation']}-{e.get('label', 'ok')}"
    return entries


def _adversarial(rng) -> list[dict]:
    """Issue 18's crafted claims: near misses, terms vanishing at integers, half-defined terms."""
    spec = _spec("2-2-1", "linear", "se", True)
    d = derive(spec)
    notes = PROFILES["notes"]
    names = notes.names(spec)
    out = []
    x1 = names[nt.feature(1)]
    for param in d.net.parameters():
        g = d.gradient(param)
        T = sympy.latex(g.formula, symbol_names=names)
        left = lhs(spec, notes, param)
        base = dict(spec=_spec_dict(spec), parameter=_pname(param), source="generated",
                    notation="notes", form="scalar", expect="wrong")
        eps = sympy.Rational(1, 10**9)
        out.append({**base, "label": "near_miss", "text": rf"{left} = {T} + 10^{{-9}}",
                    "claim": g.formula + eps, "note": "truth + 1e-9"})
        out.append({**base, "label": "near_miss", "text": rf"{left} = \left({T}\right) \cdot 1.000000001",
                    "claim": g.formula * (1 + eps), "note": "truth × (1 + 1e-9)"})
        x = nt.feature(1)
        out.append({**base, "label": "crafted",
                    "text": rf"{left} = {T} + \lfloor 100 {x1} + 0.5 \rfloor - 100 {x1}",
                    "claim": g.formula + sympy.floor(100 * x + sympy.Rational(1, 2)) - 100 * x,
                    "note": "a term that vanishes at integers and two-decimal points"})
        out.append({**base, "label": "crafted",
                    "text": rf"{left} = {T} + ({x1}^2-1)({x1}^2-4)({x1}^2-9)\sqrt{{{x1}^2-10}}",
                    "claim": g.formula + (x**2 - 1) * (x**2 - 4) * (x**2 - 9) * sympy.sqrt(x**2 - 10),
                    "note": "a term undefined on part of the domain"})
        out.append({**base, "label": "crafted", "text": rf"{left} = {T} + \sin(\pi {x1})",
                    "claim": g.formula + sympy.sin(sympy.pi * x), "note": "vanishes at every integer"})
    return out


def _json_ready(e: dict) -> dict:
    return {k: v for k, v in e.items() if k != "claim"}


def write(path: Path = GENERATED) -> int:
    """Write ``generated.json`` atomically; returns the number of entries."""
    entries = [_json_ready(e) for e in generate()]
    text = json.dumps(entries, indent=1, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(entries)


if __name__ == "__main__":
    print(f"wrote {write()} entries to {GENERATED}")
