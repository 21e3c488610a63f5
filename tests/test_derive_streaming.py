"""derive at any size: the per-form size rule, --param/--forms, streaming order, JSON and JSON
lines, Ctrl-C, atomic -o.  Work is bounded by counts and sizes, never by the clock."""
from __future__ import annotations

import json

import pytest
import sympy

from backprop.cli.commands import derive as derive_cmd
from backprop.derive import derive, make_spec
from backprop.derive import report
from backprop.derive.budget import MAX_SHOWN_TERMS, form_terms

DEEP = ["--layers", "5-4-3-2-1", "--activations", "sigmoid,sigmoid,sigmoid,linear", "--loss", "se"]


def _blocks(out: str) -> dict[str, dict[str, str]]:
    """{parameter: {form: printed line}} from the text report."""
    blocks, current = {}, None
    for line in out.splitlines():
        if line.startswith("∂L/∂"):
            current = blocks.setdefault(line[4:], {})
        elif current is not None and line.startswith("  ") and line[2:].split(" ", 1)[0] in report.FORMS:
            form, text = line[2:].split(" ", 1)
            current[form] = text.strip()
    return blocks


# -- the per-form, per-parameter size rule -------------------------------------------------------

def test_expanded_size_estimate_tracks_the_built_form():
    """The estimate is arithmetic on the widths; it stays within 2x of the printed terms."""
    d = derive(make_spec("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se"))
    for name in ("w^4_11", "w^3_11", "w^1_11"):
        g = d.gradient(name)
        leaves = sum(1 for e in sympy.preorder_traversal(g.expanded) if e.is_Symbol)
        estimate = form_terms(d.spec, g.layer, "expanded")
        assert leaves / 2 <= estimate <= leaves * 2, (name, leaves, estimate)


def test_small_gradients_always_printed_big_form_replaced_by_its_line(cli):
    status, out, err = cli("derive", *DEEP)
    assert status == 0, err
    blocks = _blocks(out)
    assert len(blocks) == 50
    # the output layer's expanded form is small: printed in full, in inputs and weights only
    assert blocks["w^4_11"]["expanded"].startswith("-2 (y - ") and "x_i1" in blocks["w^4_11"]["expanded"]
    # layer 1's is not: one line with its own estimate, and how to ask for it
    line = blocks["w^1_11"]["expanded"]
    terms = form_terms(make_spec("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se"), 1, "expanded")
    assert terms > MAX_SHOWN_TERMS
    assert line == f"[expanded form: about {terms:.2g} terms, not printed; ask for it with --forms expanded]"
    # every other form of every parameter is printed in full
    for name, forms in blocks.items():
        assert set(forms) == set(report.FORMS), name
        for form in ("chain", "memoised", "formula"):
            assert "not printed" not in forms[form], (name, form)
    assert max(map(len, out.splitlines())) < 5000  # no 20 000-character lines


def test_a_form_asked_for_is_printed_even_when_large(cli):
    status, out, _ = cli("derive", *DEEP, "--param", "w^1_11", "--forms", "expanded")
    assert status == 0
    line = _blocks(out)["w^1_11"]["expanded"]
    assert "not printed" not in line and line.count("x_i5") > 10


def test_hard_cap_even_when_asked(cli):
    status, out, _ = cli("derive", "--layers", "8-16-16-16-16-1", "--activations", "sigmoid",
                         "--param", "w^1_11", "--forms", "expanded,memoised")
    assert status == 0
    blocks = _blocks(out)["w^1_11"]
    assert "even when asked for; not printed" in blocks["expanded"] and "--vectorised" in blocks["expanded"]
    assert blocks["memoised"] == "δ_11 x_i1"


def test_wide_network_is_no_longer_refused_the_memoised_form_fits(cli):
    """32-64-64-64-64-1 (14 657 parameters) was refused as ~170 GB; per parameter the memoised
    form is two symbols.  Asked for one deep parameter, it prints at once."""
    status, out, err = cli("derive", "--layers", "32-64-64-64-64-1", "--activations", "sigmoid,sigmoid,"
                           "sigmoid,sigmoid,linear", "--param", "w^1_11", "--format", "json")
    assert status == 0, err
    doc = json.loads(out)
    g = doc["gradients"][0]
    assert g["memoised"]["text"] == "δ_11 x_i1"
    assert g["chain"]["text"] == "∂L/∂z_11 · ∂z_11/∂w^1_11 = [δ_11] · [x_i1]"
    assert "omitted" in g["formula"] and g["formula"]["terms"] > MAX_SHOWN_TERMS
    assert "omitted" in g["expanded"]


def test_memoised_fast_path_equals_printing_the_product():
    for spec in (make_spec("3-2-2", "tanh,softmax", "cce"), make_spec("2-12-1", "sigmoid,linear", "se"),
                 make_spec("2-2-1", "relu,sigmoid", "bce")):
        d = derive(spec)
        for g in d.gradients:
            assert report.memoised_text(g) == d.printer.text(g.memoised)
            assert report.memoised_text(g, tex=True) == d.printer.latex(g.memoised)


# -- --param and --forms ----------------------------------------------------------------------

@pytest.mark.parametrize("args, names", [
    (["--param", "w^1_11", "--param", "b_21"], ["w^1_11", "b_21"]),
    (["--param", "w^{1}_{11},b_{21}"], ["w^1_11", "b_21"]),
    (["--param", "b_41,w^4_11,b_41"], ["b_41", "w^4_11"]),
])
def test_param_selects_in_the_order_given(cli, args, names):
    status, out, err = cli("derive", *DEEP, *args)
    assert status == 0, err
    assert list(_blocks(out)) == names


def test_two_digit_indices_keep_their_comma():
    assert derive_cmd.split_names(["w^1_1,10,b_21", "w^{2}_{3,12}"]) == ["w^1_1,10", "b_21", "w^{2}_{3,12}"]


def test_forms_chooses_the_lines(cli):
    status, out, _ = cli("derive", *DEEP, "--forms", "formula,chain", "--param", "w^2_11")
    assert status == 0
    assert list(_blocks(out)["w^2_11"]) == ["chain", "formula"]  # in the report's order


@pytest.mark.parametrize("args, message", [
    (["--param", "w^9_11"], "'w^9_11' is not a parameter of the 5-4-3-2-1"),
    (["--param", "w^1_11,q_1"], "name them as printed: w^1_11 … w^1_54, b_11 … b_14"),
    (["--forms", "chain,bogus"], "unknown form 'bogus' in --forms; forms: chain, memoised, formula, expanded"),
    (["--forms", ","], "unknown form"),
    (["--standalone"], "--standalone goes with --format latex"),
    (["--force"], "give -o FILE"),
])
def test_bad_param_or_forms_is_one_line_exit_2(cli, args, message):
    status, out, err = cli("derive", *DEEP, *args)
    assert status == 2 and out == ""
    assert message in err and err.count("\n") == 1


# -- streaming ------------------------------------------------------------------------------------

class _Recorder:
    """A stdout that records, in one list with the derivation's events, when text arrives."""

    def __init__(self, events):
        self.events, self.text = events, []

    def write(self, chunk):
        self.text.append(chunk)
        if "w^" in chunk or "b_" in chunk:
            self.events.append("written")

    def flush(self):
        pass

    def isatty(self):
        return False


@pytest.mark.parametrize("fmt", ["text", "latex", "json", "jsonl"])
def test_first_gradient_is_written_before_the_last_is_derived(cli, monkeypatch, fmt):
    events = []
    real = report.form_text

    def recording(g, form, tex=False):
        events.append(("derived", g.name))
        return real(g, form, tex)

    monkeypatch.setattr(report, "form_text", recording)
    monkeypatch.setattr("sys.stdout", _Recorder(events))
    status = derive_cmd.run(_args(["--layers", "4-8-1", "--activations", "sigmoid,linear",
                                   "--format", fmt, "--forms", "memoised,formula"]))
    assert status == 0
    derived = [i for i, e in enumerate(events) if e != "written"]
    first_write = events.index("written", derived[0])
    assert first_write < derived[-1]  # output began long before the derivation ended
    assert len({e[1] for e in events if e != "written"}) == 49


def _args(argv):
    from backprop.cli.main import build_parser

    return build_parser().parse_args(["derive", *argv])


def test_json_is_one_document_and_jsonl_one_object_a_line(cli):
    status, out, _ = cli("derive", *DEEP, "--format", "json")
    assert status == 0
    doc = json.loads(out)
    assert doc["n_gradients"] == 50 and len(doc["gradients"]) == 50 and len(doc["deltas"]) == 10
    assert doc["forms"] == list(report.FORMS)
    status, out, _ = cli("derive", *DEEP, "--format", "jsonl", "--param", "w^1_11,b_41")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["type"] for x in lines] == ["header"] + ["delta"] * 10 + ["gradient"] * 2 + ["end"]
    assert lines[0]["n_gradients"] == 2 and lines[-1]["n_gradients"] == 2
    assert [x["parameter"] for x in lines if x["type"] == "gradient"] == ["w^1_11", "b_41"]


def test_json_vectorised_only_has_no_gradients(cli):
    status, out, _ = cli("derive", "--layers", "3-2-1", "--vectorised", "--format", "json")
    doc = json.loads(out)
    assert status == 0 and doc["vectorised"] and "gradients" not in doc


# -- Ctrl-C and -o -----------------------------------------------------------------------------

def _interrupt_on(monkeypatch, n):
    """gradient_text / gradient_dict raise KeyboardInterrupt on the n-th parameter."""
    calls = [0]
    for name in ("gradient_text", "gradient_dict"):
        real = getattr(report, name)

        def raising(g, forms=report.Forms(), _real=real):
            calls[0] += 1
            if calls[0] == n:
                raise KeyboardInterrupt
            return _real(g, forms)

        monkeypatch.setattr(report, name, raising)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_ctrl_c_stops_cleanly(cli, monkeypatch, fmt):
    _interrupt_on(monkeypatch, 4)
    status, out, err = cli("derive", "--format", fmt)
    assert status == 130
    assert err == "backprop derive: interrupted after 3 of 9 parameters\n"
    if fmt == "text":
        assert list(_blocks(out)) == ["w^2_11", "w^2_21", "b_21"]
    else:
        assert out.count('{"parameter": ') == 3


def test_ctrl_c_with_output_leaves_no_file(cli, monkeypatch, tmp_path):
    _interrupt_on(monkeypatch, 5)
    target = tmp_path / "grads.txt"
    status, out, err = cli("derive", "-o", str(target))
    assert status == 130 and "interrupted after 4 of 9 parameters" in err and "not written" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_output_is_atomic_and_refuses_an_existing_file(cli, tmp_path):
    target = tmp_path / "grads.tex"
    status, out, err = cli("derive", "--format", "latex", "-o", str(target))
    assert status == 0 and out.startswith(f"wrote {target}: 9 gradient(s)")
    first = target.read_text()
    assert r"\end{align*}" in first
    status, out, err = cli("derive", "--layers", "3-1", "--format", "latex", "-o", str(target))
    assert status == 2 and "already exists; pass --force" in err
    assert target.read_text() == first
    status, _, _ = cli("derive", "--layers", "3-1", "--format", "latex", "-o", str(target), "--force")
    assert status == 0 and "w^{1}_{31}" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grads.tex"]


@pytest.mark.parametrize("params", ["w^1_11,b_51", "b_51,w^1_11"])
def test_latex_rows_end_without_a_trailing_break(cli, params):
    status, out, _ = cli("derive", "--layers", "8-16-16-16-16-1", "--activations", "sigmoid",
                         "--format", "latex", "--param", params)
    body = out.split(r"\begin{align*}")[1].split(r"\end{align*}")[0].strip().splitlines()
    rows = [r for r in body if not r.startswith("%")]
    assert not rows[-1].endswith("\\\\") and all(r.endswith("\\\\") for r in rows[:-1])
    assert any(r.startswith("% w^1_11: formula form: about") for r in body)
    assert r"\delta_{11} x_{i1}" in out  # the memoised form is always there


def test_teaching_documents_are_wired(cli):
    teaching = pytest.importorskip("backprop.derive.teaching")
    assert hasattr(teaching, "document")
    status, out, err = cli("derive", "--format", "beamer")
    assert status == 0, err
    assert r"\documentclass" in out and "beamer" in out and r"\end{document}" in out
    status, out, err = cli("derive", "--format", "latex", "--standalone")
    assert status == 0, err
    assert r"\documentclass" in out and r"\end{document}" in out


def test_stdout_is_flushed_after_every_gradient(monkeypatch):
    """A reader behind a pipe sees each gradient as it is made: block buffering held 8 KB
    back.  Every write of a gradient is followed by a flush before the next write."""
    import io
    import sys as _sys

    from backprop.cli.main import main as cli_main

    events = []

    class Recorder(io.StringIO):
        def write(self, text):
            events.append(("write", text))
            return super().write(text)

        def flush(self):
            events.append(("flush", ""))

    monkeypatch.setattr(_sys, "stdout", Recorder())
    assert cli_main(["derive", "--layers", "3-3-1", "--activations", "sigmoid,linear", "--forms", "memoised"]) == 0
    grads = [n for n, (kind, text) in enumerate(events) if kind == "write" and "∂L/∂" in text]
    assert len(grads) >= 16  # 3-3-1: 16 parameters
    for n in grads:
        assert ("flush", "") in events[n + 1:n + 2], events[n:n + 2]
