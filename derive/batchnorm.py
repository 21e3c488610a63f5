r"""Batch normalisation derived over a batch: the one place where the rows of a batch couple.

Node j of a batch-normalised layer k is normalised over the n rows of the batch (PyTorch's
``nn.BatchNorm1d`` in training mode, after the layer's affine map, before its activation).
The notes' per-row notation gains a batch index, as ``x_ij`` already has the row i: for one
node (k, j fixed), ``z_i`` is its weighted sum in row i = 1..n and::

    μ = (1/n) Σ_m z_m          σ² = (1/n) Σ_m (z_m - μ)²      (biased, over the rows)
    x̂_i = (z_i - μ) / √(σ² + ε)     z̃_i = γ x̂_i + β            O_i = g(z̃_i)

Every z̃_m depends on every z_i through μ and σ², so ∂L/∂z_i = Σ_m g_m ∂z̃_m/∂z_i with
g_m = ∂L/∂z̃_m.  :func:`derivation` differentiates these definitions with SymPy (Indexed rows
over a symbolic n, KroneckerDelta, Sum), sifts the deltas, names the batch means it finds
(mean(g), mean(g x̂): their definitions solved for the sums) and writes z_i back as
μ + √(σ² + ε) x̂_i; nothing of the result is typed in.  Running statistics (eval mode) follow
PyTorch: momentum 0.1, the unbiased variance n/(n-1) σ².
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy
from sympy.concrete.delta import deltasummation

#: PyTorch's defaults for nn.BatchNorm1d: ε in √(σ² + ε), and the running statistics' momentum.
EPS = 1e-5
MOMENTUM = 0.1

# -- the symbols of one node over a batch ---------------------------------------------------
n = sympy.Symbol("n", integer=True, positive=True)
i, m, l = sympy.symbols("i m l", integer=True, positive=True)  # i: the row differentiated; m, l: summed
z = sympy.IndexedBase("z", real=True)
g = sympy.IndexedBase("g", real=True)  # g_m = ∂L/∂z̃_m, what the activation sends back
gamma, beta = sympy.symbols("γ β", real=True)
eps = sympy.Symbol("ε", positive=True)
mu = sympy.Symbol("μ", real=True)
var = sympy.Symbol("σ²", nonnegative=True)
xhat_i = sympy.Symbol("x̂_i", real=True)
g_i = sympy.Symbol("g_i", real=True)
mean_g = sympy.Symbol("mean(g)", real=True)
mean_gx = sympy.Symbol("mean(g x̂)", real=True)
#: √(σ² + ε): the standard deviation the rows are divided by.
std = sympy.sqrt(var + eps)

#: LaTeX spellings of the symbols above.
LATEX_NAMES = {gamma: r"\gamma", beta: r"\beta", eps: r"\varepsilon", mu: r"\mu", var: r"\sigma^{2}",
               xhat_i: r"\hat{x}_{i}", g_i: "g_{i}", mean_g: r"\overline{g}",
               mean_gx: r"\overline{g\,\hat{x}}"}


def _mu_of(rows) -> sympy.Expr:
    return sympy.Sum(z[rows], (rows, 1, n)) / n


#: The forward definitions over a batch, as SymPy expressions in the rows z_1..z_n.
MU_DEF = _mu_of(l)
VAR_DEF = sympy.Sum((z[l] - MU_DEF) ** 2, (l, 1, n)) / n


def xhat_def(row) -> sympy.Expr:
    """x̂_row = (z_row - μ) / √(σ² + ε), μ and σ² written out over the batch."""
    return (z[row] - MU_DEF) / sympy.sqrt(VAR_DEF + eps)


def out_def(row) -> sympy.Expr:
    """z̃_row = γ x̂_row + β."""
    return gamma * xhat_def(row) + beta


def _sift(e: sympy.Expr) -> sympy.Expr:
    """Σ_m f(m) KroneckerDelta(m, i) = f(i) for 1 <= i <= n (the row i is in the batch)."""
    if isinstance(e, sympy.Sum):
        body = _sift(e.function)
        (v, lo, hi), = e.limits
        if body.has(sympy.KroneckerDelta):
            return _sift(deltasummation(sympy.expand(body), (v, lo, hi), no_piecewise=True))
        return sympy.Sum(body, (v, lo, hi))
    return e.func(*[_sift(a) for a in e.args]) if e.args else e


def _split(e: sympy.Expr) -> sympy.Expr:
    """Sums made linear: Σ (a + b) = Σ a + Σ b, and factors free of the index moved out."""
    if isinstance(e, sympy.Sum):
        (v, lo, hi), = e.limits
        out = []
        for term in sympy.Add.make_args(sympy.expand(_split(e.function))):
            factors = sympy.Mul.make_args(term)
            dep = [f for f in factors if f.has(v)]
            rest = sympy.Mul(*[f for f in factors if not f.has(v)])
            out.append(rest * (sympy.Sum(sympy.Mul(*dep), (v, lo, hi)) if dep else hi - lo + 1))
        return sympy.Add(*out)
    return e.func(*[_split(a) for a in e.args]) if e.args else e


def _named_statistics(e: sympy.Expr) -> sympy.Expr:
    """σ² and μ by name: the variance's definition first (it contains μ's), then Σ_l z_l = n μ."""
    e = e.xreplace({VAR_DEF: var})
    return e.replace(lambda s: isinstance(s, sympy.Sum) and s.function == z[s.limits[0][0]]
                     and s.limits[0][1:] == (1, n), lambda s: n * mu)


def _batch_means(e: sympy.Expr) -> sympy.Expr:
    """The sums left over g written as the batch means that define them: mean(g) = (1/n) Σ g_m
    and mean(g x̂) = (1/n) Σ g_m (z_m - μ)/√(σ² + ε), solved for Σ g_m and Σ g_m z_m."""
    sum_g, sum_gz = sympy.Sum(g[m], (m, 1, n)), sympy.Sum(g[m] * z[m], (m, 1, n))
    definitions = [sympy.Eq(mean_g, sum_g / n), sympy.Eq(mean_gx, (sum_gz - mu * sum_g) / (n * std))]
    solved, = sympy.solve(definitions, [sum_g, sum_gz], dict=True)
    return e.xreplace(solved)


@dataclass(frozen=True)
class BatchNormGradients:
    """The derived gradients of one node over a batch: ``dz`` = ∂L/∂z_i (in g_i, x̂_i, the
    batch means, γ, σ², ε), ``dgamma`` = ∂L/∂γ and ``dbeta`` = ∂L/∂β (sums over the rows m of
    g_m x̂_m and g_m); ``dz_direct``: ∂L/∂z_i straight from SymPy's diff, before any rewriting."""

    dz: sympy.Expr
    dgamma: sympy.Expr
    dbeta: sympy.Expr
    dz_direct: sympy.Expr

    def factored(self) -> tuple[sympy.Expr, sympy.Expr]:
        """(γ/√(σ² + ε), the bracket): dz as the known result's two factors, the bracket
        being dz divided by the first, simplified."""
        scale = gamma / std
        return scale, sympy.expand(sympy.simplify(self.dz / scale))

    def text(self) -> list[str]:
        """The derived result, printed: the three gradients of one node."""
        scale, bracket = self.factored()
        return [f"∂L/∂z_i = {_text(scale)} ({_text(bracket)})",
                f"∂L/∂γ = {_text(self.dgamma)}",
                f"∂L/∂β = {_text(self.dbeta)}"]

    def latex(self) -> list[str]:
        scale, bracket = self.factored()
        return [rf"\frac{{\partial L}}{{\partial z_{{i}}}} = {_latex(scale)} \left({_latex(bracket)}\right)",
                rf"\frac{{\partial L}}{{\partial \gamma}} = {_latex(self.dgamma)}",
                rf"\frac{{\partial L}}{{\partial \beta}} = {_latex(self.dbeta)}"]


def _rows_as_symbols(e: sympy.Expr, tex: bool) -> sympy.Expr:
    """g[m], x̂[m] as plain symbols g_m, x̂_m (LaTeX: g_{m}, \\hat{x}_{m}) for printing."""
    spell = {g: ("g_{}", "g_{{{}}}"), XHAT: ("x̂_{}", r"\hat{{x}}_{{{}}}")}
    return e.replace(lambda s: isinstance(s, sympy.Indexed),
                     lambda s: sympy.Symbol(spell[s.base][tex].format(s.indices[0]), real=True))


def _text(e: sympy.Expr) -> str:
    """Plain text: a sum over the rows as Σ_m (body), √ for sqrt, juxtaposition for *."""
    if isinstance(e, sympy.Sum):
        (v, _, _), = e.limits
        return f"Σ_{v} {_text(e.function)}"
    out = sympy.sstr(_rows_as_symbols(e, False), order="none")
    return out.replace("**", "^").replace("*", " ").replace("sqrt", "√")


def _latex(e: sympy.Expr) -> str:
    return sympy.latex(_rows_as_symbols(e, True), symbol_names=LATEX_NAMES, order="none")


@lru_cache(maxsize=None)
def derivation() -> BatchNormGradients:
    """∂L/∂z_i, ∂L/∂γ, ∂L/∂β of one batch-normalised node, derived over a symbolic batch.

    L depends on the node through z̃_1..z̃_n; its linearisation Σ_m g_m z̃_m has the same
    derivatives (g_m = ∂L/∂z̃_m held fixed), so each gradient is SymPy's diff of that sum."""
    through = sympy.Sum(g[m] * out_def(m), (m, 1, n))
    direct = sympy.diff(through, z[i])
    dz = _named_statistics(direct)
    dz = _split(_sift(dz))
    dz = _named_statistics(dz)  # the splitting frees more Σ_l z_l
    dz = _batch_means(dz)
    x = _solve_z(i)
    dz = sympy.simplify(dz.xreplace({z[i]: x, g[i]: g_i}))
    dgamma = _named_statistics(sympy.diff(through, gamma))
    dgamma = dgamma.xreplace({z[m]: _solve_z(m).xreplace({xhat_i: XHAT[m]})})
    dgamma = sympy.Sum(sympy.simplify(dgamma.function), *dgamma.limits)
    dbeta = sympy.diff(through, beta)
    return BatchNormGradients(dz, dgamma, dbeta, direct)


#: x̂ of row m as an Indexed (for the sums over the rows in ∂L/∂γ).
XHAT = sympy.IndexedBase("x̂", real=True)


def _solve_z(row) -> sympy.Expr:
    """z_row from x̂'s definition, x̂_row = (z_row - μ)/√(σ² + ε), solved with SymPy."""
    solved, = sympy.solve(sympy.Eq(xhat_i, (z[row] - mu) / std), z[row])
    return solved


# -- numbers: the definitions and the derived result evaluated with NumPy --------------------
def forward(Z: np.ndarray, gamma_: np.ndarray, beta_: np.ndarray, eps_: float = EPS):
    """(Z̃, X̂, μ, σ²) of a batch Z (n × width), training mode: the batch's own statistics."""
    mean = Z.mean(axis=0)
    variance = ((Z - mean) ** 2).mean(axis=0)
    xhat = (Z - mean) / np.sqrt(variance + eps_)
    return gamma_ * xhat + beta_, xhat, mean, variance


def inference(Z: np.ndarray, gamma_: np.ndarray, beta_: np.ndarray, running_mean: np.ndarray,
              running_var: np.ndarray, eps_: float = EPS) -> np.ndarray:
    """Z̃ in eval mode: the running statistics in place of the batch's."""
    return gamma_ * (Z - running_mean) / np.sqrt(running_var + eps_) + beta_


def running(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray, variance: np.ndarray,
            n_rows: int, momentum: float = MOMENTUM):
    """The running statistics after one training batch, as PyTorch keeps them: the unbiased
    variance n/(n-1) σ² (σ² itself for one row, which PyTorch refuses in training)."""
    unbiased = variance * n_rows / (n_rows - 1) if n_rows > 1 else variance
    return ((1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * unbiased)


@lru_cache(maxsize=None)
def _compiled():
    d = derivation()
    args = [g_i, xhat_i, mean_g, mean_gx, gamma, var, eps]
    return sympy.lambdify(args, d.dz, "numpy")


def backward(G: np.ndarray, xhat: np.ndarray, gamma_: np.ndarray, variance: np.ndarray, eps_: float = EPS):
    """(∂L/∂Z, ∂L/∂γ, ∂L/∂β) from G = ∂L/∂Z̃: the derived ∂L/∂z_i evaluated column-wise
    (lambdified, its batch means taken over the rows), and the two sums over the rows."""
    dz = _compiled()(G, xhat, G.mean(axis=0), (G * xhat).mean(axis=0), gamma_, variance, eps_)
    return dz, (G * xhat).sum(axis=0), G.sum(axis=0)
