"""Hardening: resource bounds.  A network whose per-parameter formulas would not fit in memory
or time (100000-100000-1: 10^10 parameters) is refused up front, with the estimate and the
hint --vectorised, by every command that would name each parameter (derive, verify, step);
the vectorised form and the generated trainer (matrix code) still work at that size; draw
refuses more than 40 nodes.  Every refusal is one line, exit 2, with bounded work (names built are counted, not seconds)."""
from __future__ import annotations

import ast

import pytest

from backprop.derive import make_spec
from backprop.derive import notation as nt
from backprop.derive.budget import MAX_TERMS, check_per_parameter, formula_terms
from backprop.core.errors import UserError

HUGE = ["--layers", "100000-100000-1", "--activations", "sigmoid", "--loss", "se"]
D = r"\frac{\partial L}{\partial w^2_{11}} = 1"


#: Names built per run: a 10^10-parameter network refused or vectorised up front builds a
#: handful; any per-parameter work would build billions.  Work is bounded, not timed.
WORK_BOUND = 100_000


def _counting_names():
    """A context: counts every network name built (w^k_ij, b_kj, O_kj, ...) inside it."""
    from contextlib import contextmanager

    @contextmanager
    def counting():
        real, calls = nt._symbol, [0]

        def counted(kind, indices):
            calls[0] += 1
            return real(kind, indices)

        nt._symbol = counted
        try:
            yield calls
        finally:
            nt._symbol = real
    return counting()


def _timed(cli, *args):
    """(status, stdout, stderr, names built): the work a command did, not its wall time."""
    with _counting_names() as calls:
        status, out, err = cli(*args)
    return status, out, err, calls[0]


def _refused_with_estimate(status, err, work, hint="--vectorised"):
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "10,000,200,001 parameters" in err and "would need about" in err and "GB" in err
    assert hint in err  # each command names a way out it actually has
    assert work < WORK_BOUND  # up front, not after building anything


@pytest.mark.parametrize("extra", [[], ["--per-parameter"], ["--format", "json"], ["--format", "latex"]])
def test_derive_per_parameter_refused_up_front(cli, extra):
    status, out, err, work = _timed(cli, "derive", *HUGE, *extra)
    _refused_with_estimate(status, err, work)
    assert out == ""


def test_derive_vectorised_works_at_that_size(cli):
    status, out, err, work = _timed(cli, "derive", *HUGE, "--vectorised")
    assert status == 0, err
    assert "∂L/∂W^1 = Xᵀ δ^1" in out and "δ^2" in out
    assert work < WORK_BOUND


def test_derive_vectorised_json_at_that_size(cli):
    import json

    status, out, err, work = _timed(cli, "derive", *HUGE, "--vectorised", "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    assert data["n_parameters"] == 10_000_200_001 and data["vectorised"]
    assert "gradients" not in data and work < WORK_BOUND


def test_verify_refused_up_front(cli, tmp_path):
    status, out, err, work = _timed(cli, "verify", *HUGE, D)
    _refused_with_estimate(status, err, work, hint="% mode: matrix")
    tex = tmp_path / "big.tex"
    tex.write_text("% spec: layers=100000-100000-1 activations=sigmoid loss=se\n" + D + "\n")
    status, out, err, work = _timed(cli, "verify", str(tex))
    _refused_with_estimate(status, err, work, hint="% mode: matrix")
    assert f"{tex}, line 2:" in err


def test_step_refused_before_reading_the_row(cli):
    status, out, err, work = _timed(cli, "step", *HUGE, "--x", "1", "--y", "1")
    _refused_with_estimate(status, err, work, hint="backprop generate")


def test_generate_huge_spec_writes_matrix_code(cli, tmp_path):
    """The trainer is vectorised: same size of source at any width, written quickly."""
    out = tmp_path / "huge.py"
    status, stdout, err, work = _timed(cli, "generate", *HUGE, "-o", str(out))
    assert status == 0, err
    assert work < WORK_BOUND
    small = tmp_path / "small.py"  # above the scalar fast path's size (codegen/scalar.py)
    assert cli("generate", "--layers", "10-10-1", "--activations", "sigmoid", "-o", str(small))[0] == 0
    source = out.read_text()
    tree = ast.parse(source)
    assert "LAYERS = (100000, 100000, 1)" in source
    assert "_sgd_step_scalar" not in source
    assert abs(len(source) - len(small.read_text())) < 200  # no per-parameter code
    assert any(isinstance(n, ast.FunctionDef) and n.name == "gradients" for n in tree.body)


def test_train_with_huge_spec_refused_by_the_data(cli, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n1,2,3\n2,3,5\n")
    status, out, err = cli("train", *HUGE, "--data", str(data), "--target", "y", "-q")
    assert status == 2 and err.count("\n") == 1
    assert "2 feature column(s)" in err and "100000" in err


def test_count_needs_no_formulas(cli):
    status, out, err, work = _timed(cli, "count", *HUGE)
    assert status == 0 and "10000200001" in out and work < WORK_BOUND


@pytest.mark.parametrize("layers, nodes", [("6-6-6-6-6-6-6-1", 43), ("100000-100000-1", 200001)])
def test_draw_refuses_more_than_40_nodes(cli, tmp_path, layers, nodes):
    out = tmp_path / "net.png"
    status, stdout, err, work = _timed(cli, "draw", "--layers", layers, "-o", str(out))
    assert status == 2 and err.count("\n") == 1
    assert f"{nodes} nodes" in err and "up to 40" in err
    assert not out.exists() and work < WORK_BOUND


def test_budget_is_arithmetic_only():
    """The estimate is a product of widths: instant at 10^10 parameters, exact at the boundary."""
    spec = make_spec("100000-100000-1", "sigmoid", "se")
    with _counting_names() as calls, pytest.raises(UserError, match="--vectorised"):
        check_per_parameter(spec)
    assert calls[0] == 0  # arithmetic on the widths: no name of the network is built
    # the notes' networks and the boundary
    check_per_parameter(make_spec("5-4-3-2-1", "sigmoid", "se"))
    width = 1
    while formula_terms(make_spec(f"{width}-{width}-1", "sigmoid", "se")) <= MAX_TERMS:
        width *= 2
    with pytest.raises(UserError):
        check_per_parameter(make_spec(f"{width}-{width}-1", "sigmoid", "se"))
    check_per_parameter(make_spec(f"{width // 2}-{width // 2}-1", "sigmoid", "se"))


def test_network_too_big_for_memory_is_one_line(tmp_path):
    """compare-gd on synthetic rows builds the 10^10 weights: NumPy's MemoryError becomes one
    line with the size it wanted (run under a 3 GB address-space limit, so no machine swaps)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    proc = subprocess.run([sys.executable, "-m", "backprop.cli.main", "compare-gd", *HUGE, "--rows", "10",
                           "--epochs", "1"], capture_output=True, text=True, preexec_fn=limit,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Unable to allocate" in proc.stderr and "smaller network" in proc.stderr
