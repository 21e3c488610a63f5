"""LaTeX for teaching (derive/teaching.py, `backprop step --format latex`).

The 5-4-3-2-1 sigmoid network's layer-1 formulas are ~570 characters of LaTeX on one line;
broken by aligned_rows they must fit the row budget, read back as the same maths, stay
balanced row by row, and still verify as correct.  Documents compile with pdflatex where it
is installed (with no overfull box), and are checked structurally everywhere.
"""
import re
import shutil
import subprocess

import pytest

from backprop.derive import derive, make_spec
from backprop.derive.report import FORMS
from backprop.derive.teaching import (A4_WIDTH, SLIDE_WIDTH, aligned_rows, document, gradient_rows,
                                      rendered_width, row_width)
from backprop.verify import verify_text
from backprop.verify.latex_input import block_rows

DEEP = make_spec("5-4-3-2-1", "sigmoid,sigmoid,sigmoid,linear", "se")
NOTES_ARGS = ["--layers", "2-2-1", "--activations", "linear", "--loss", "se",
              "--x", "80,8", "--y", "5", "--init", "ones", "--lr", "0.1"]


@pytest.fixture(scope="module")
def deep():
    return derive(DEEP)


def _lhs(g):
    return rf"\frac{{\partial L}}{{\partial {g.derivation.printer.latex(g.parameter)}}}"


def _longest(d, n=4):
    """The n widest printed formulas (layer 1), with their left-hand sides."""
    layer1 = [g for g in d.gradients if g.layer == 1][:n]
    return [(_lhs(g), d.printer.latex(g.formula)) for g in layer1]


def _joined(rows):
    r"""Rows back to one string: & \\ \quad dropped, the \right. \left. pairs removed."""
    text = " ".join(r.rstrip().removesuffix("\\\\") for r in rows)
    text = re.sub(r"\\right\.|\\left\.|&|\\quad(?![a-zA-Z])", " ", text)
    return re.sub(r"\s+", "", text)


def _balanced(row):
    body = row.rstrip().removesuffix("\\\\")
    depth = 0
    for m in re.finditer(r"\\[{}]|[{}]", body):
        if m.group() in "{}":
            depth += 1 if m.group() == "{" else -1
            assert depth >= 0, row
    assert depth == 0, row
    assert len(re.findall(r"\\left(?![a-zA-Z])", body)) == len(re.findall(r"\\right(?![a-zA-Z])", body)), row


@pytest.mark.parametrize("width", [A4_WIDTH, SLIDE_WIDTH, 30])
def test_long_formulas_fit_and_join_back(deep, width):
    for lhs, rhs in _longest(deep):
        assert rendered_width(rhs) > 2.5 * A4_WIDTH  # the case the module exists for
        rows = aligned_rows(lhs, rhs, width)
        assert len(rows) >= 3
        assert all(row_width(lhs, r) <= width for r in rows), [row_width(lhs, r) for r in rows]
        assert _joined(rows) == re.sub(r"\s+", "", f"{lhs} = {rhs}")
        for r in rows:
            _balanced(r)
        assert rows[0].startswith(f"{lhs} &= ") and all(r.startswith(r"&\quad ") for r in rows[1:])
        assert all(r.endswith(r" \\") for r in rows)


def test_breaks_only_at_the_top_level():
    lhs, rhs = "a", r"\frac{b + c + d + e}{f} + \left(g + h\right) x_{i1} + w^{2}_{11} \cdot O_{11}"
    rows = aligned_rows(lhs, rhs, 12)
    assert _joined(rows) == re.sub(r"\s+", "", f"{lhs} = {rhs}")
    assert any(r"\frac{b + c + d + e}{f}" in r for r in rows)  # never broken inside braces
    for r in rows:
        _balanced(r)


def test_a_short_equation_is_one_row():
    assert aligned_rows("z_{11}", r"w^{1}_{11} x_{i1} + b_{11}") == [r"z_{11} &= w^{1}_{11} x_{i1} + b_{11} \\"]


def test_width_estimate():
    # letters, scripts stacked, operators with their spacing, fractions by the wider part
    assert rendered_width("a") < rendered_width("a + b") < rendered_width("a + b + c")
    assert rendered_width("w^{2}_{11}") == rendered_width("w_{11}^{2}") < rendered_width("w^{211}")
    assert rendered_width(r"\frac{1}{x + y}") == pytest.approx(rendered_width("x + y") + 0.5)
    assert rendered_width(r"\left. x \right.") == rendered_width("x")


def test_a_form_too_wide_to_typeset_is_a_note(deep):
    g = next(g for g in deep.gradients if g.layer == 1)
    rows = gradient_rows(g, FORMS, A4_WIDTH)
    notes = [r for r in rows if r"\text{" in r]
    assert len(notes) == 1 and "expanded form" in notes[0]
    assert all(row_width(_lhs(g), r) <= A4_WIDTH for r in rows)


def _doc(d, style, gradients=None, forms=FORMS):
    return "".join(document(d, d.gradients if gradients is None else gradients, forms, style))


def _environments_match(tex):
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, name
    assert not stack


@pytest.fixture(scope="module")
def docs(deep):
    return {style: _doc(deep, style) for style in ("standalone", "beamer")}


def test_standalone_document(docs):
    tex = docs["standalone"]
    _environments_match(tex)
    assert tex.count(r"\begin{document}") == 1 and r"\documentclass[a4paper]{article}" in tex
    assert r"\usepackage{amsmath}" in tex and r"\usepackage{amssymb}" in tex
    forward, deltas, grads = (tex.index(s) for s in ("Forward pass", "Deltas", "Gradients"))
    assert forward < deltas < grads
    assert r"z_{11} &= w^{1}_{11} x_{i1}" in tex and r"O_{11} &= \frac{1}{1 + e^{- z_{11}}}" in tex
    assert r"L &= \left(y - \hat{y}\right)^{2}" in tex
    assert tex.count(r"\frac{\partial L}{\partial w^{1}_{11}} &=") == 1
    assert tex.count(r"\begin{align*}") == 2 + DEEP.n_parameters


def test_beamer_one_frame_per_layer(docs):
    tex = docs["beamer"]
    _environments_match(tex)
    assert r"\documentclass[aspectratio=43]{beamer}" in tex
    titles = re.findall(r"\\begin\{frame\}\[t\]\{([^}]*)\}", tex)
    first = [t for t in titles if "continued" not in t]
    assert first == [f"Layer {k} of 4" for k in (4, 3, 2, 1)]  # output layer first
    assert all(re.fullmatch(r"Layer \d of 4( \(continued\))?", t) for t in titles)
    for frame in re.findall(r"\\begin\{frame\}.*?\\end\{frame\}", tex, re.S):
        _environments_match(frame)
    layer4 = tex[tex.index("{Layer 4 of 4}"):tex.index("{Layer 3 of 4}")]
    assert layer4.index("Forward pass") < layer4.index("Deltas") < layer4.index(r"\partial w^{4}_{11}}")
    assert r"\hat{y} &= z_{41}" in layer4 and r"L &= \left(y - \hat{y}\right)^{2}" in layer4
    for row in re.findall(r"^.*&.*$", tex, re.M):  # every maths row fits a slide
        assert rendered_width(row.replace("&", "")) <= SLIDE_WIDTH + rendered_width(
            r"\frac{\partial L}{\partial w^{1}_{11}}"), row


def test_small_network_has_exactly_one_frame_per_layer():
    d = derive(make_spec("1-1-1", "linear", "se"))
    tex = _doc(d, "beamer", forms=["memoised"])
    assert re.findall(r"\\begin\{frame\}\[t\]\{([^}]*)\}", tex) == ["Layer 2 of 2", "Layer 1 of 2"]
    # all four forms do not fit one slide: the layer goes on in "(continued)" frames
    titles = re.findall(r"\\begin\{frame\}\[t\]\{([^}]*)\}", _doc(d, "beamer"))
    assert titles[0] == "Layer 2 of 2" and "Layer 2 of 2 (continued)" in titles and "Layer 1 of 2" in titles


def test_a_subset_and_some_forms(deep):
    picked = [deep.gradient("w^1_11"), deep.gradient("b_21")]
    tex = _doc(deep, "standalone", picked, ["memoised", "formula"])
    grads = tex[tex.index("{Gradients}"):]
    assert grads.count(r"\frac{\partial L}{\partial") == 2 and r"\delta_{11} x_{i1}" in tex
    assert r"\cdot \frac{\partial" not in tex  # no chain form
    with pytest.raises(ValueError, match="chain, memoised, formula, expanded"):
        _doc(deep, "standalone", picked, ["bogus"])
    with pytest.raises(ValueError, match="standalone, beamer"):
        _doc(deep, "poster", picked)


def _gradient_blocks(tex):
    blocks = re.findall(r"\\begin\{align\*\}.*?\\end\{align\*\}", tex, re.S)
    return [b for b in blocks if b.split("\n")[1].startswith(r"\frac{\partial L}")]


@pytest.mark.parametrize("spec, forms", [
    (DEEP, ["memoised", "formula"]),
    (make_spec("2-2-1", "sigmoid,linear", "se"), FORMS),
    (make_spec("3-2-2", "tanh,softmax", "cce"), FORMS),
])
def test_standalone_gradients_verify_correct(spec, forms):
    d = derive(spec)
    blocks = _gradient_blocks(_doc(d, "standalone", forms=forms))
    assert len(blocks) == spec.n_parameters
    if spec is DEEP:  # the point: the broken rows are the ones read back
        assert sum(r"&\quad" in b for b in blocks) >= 20
    verdicts = verify_text("\n".join(blocks), spec).verdicts
    assert len(verdicts) == spec.n_parameters
    bad = [(v.verdict, v.source[:80], v.message) for v in verdicts if v.verdict != "correct"]
    assert not bad, bad


def test_verify_joins_quad_rows_to_the_row_above():
    rows = block_rows([r"\begin{align*}", r"a &= b \\", r"&\quad + c \\", r"&= d", r"\end{align*}"], 1)
    assert [re.sub(r"\s+", " ", src) for src, _ in rows] == [r"a &= b + c &= d"]
    # A = B,\quad C = D on one row is still two equations
    assert len(block_rows([r"a = b,\quad c = d"], 1)) == 2


def _compile(tmp_path, name, tex):
    (tmp_path / f"{name}.tex").write_text(tex)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / f"{name}.log").read_text(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
    return log


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not on PATH (install texlive to compile)")
def test_documents_compile_without_overfull_boxes(docs, tmp_path, cli):
    for style, tex in docs.items():
        log = _compile(tmp_path, style, tex)
        assert "Overfull" not in log, (style, re.findall(r"Overfull.*", log)[:5])  # wide or tall
    status, out, _ = cli("step", *NOTES_ARGS, "--format", "latex", "--standalone")
    assert status == 0
    assert "Overfull \\hbox" not in _compile(tmp_path, "step", out)


# ---------------------------------------------------------------------------------------------
# backprop step --format latex
# ---------------------------------------------------------------------------------------------
def _numbers(pattern, text):
    return [float(x) for x in re.findall(pattern, text)]


def test_step_latex_matches_the_text_output(cli):
    status, text, _ = cli("step", *NOTES_ARGS)
    assert status == 0
    status, tex, err = cli("step", *NOTES_ARGS, "--format", "latex")
    assert status == 0 and err == ""
    assert tex.count(r"\begin{align*}") == 1 and tex.count(r"\end{align*}") == 1
    assert r"\documentclass" not in tex
    # forward values, loss, gradients, updates: the same numbers as the text
    assert r"z_{11} &= 88,\quad O_{11} = 88" in tex and r"\hat{y} = 176" in tex
    assert r"L &= \left(y - \hat{y}\right)^{2} = 29241" in tex
    assert _numbers(r"\n +=\s(-?[\d.]+)\n", text) == _numbers(r"\n&= (-?[\d.]+) \\\\", tex) == \
        [30096, 30096, 342, 27360, 2736, 342, 27360, 2736, 342]
    assert _numbers(r"= [^\n]* × [^\n]* = (-?[\d.]+)\n", text) == \
        _numbers(r"\\cdot [^\n]* = (-?[\d.]+)", tex) == [-3008.6, -3008.6, -34.2, -2735, -272.6, -34.2,
                                                          -2735, -272.6, -34.2]
    assert r"\delta_{21} &= 342" in tex  # δ = ∂L/∂b: the deltas are the bias gradients
    assert r"&= \left[342\right] \cdot \left[1\right] \cdot \left[80\right] \\" in tex
    assert r"w^{1}_{11} &= 1 - 0.1 \cdot 27360 = -2735" in tex


def test_step_standalone_and_flags(cli):
    status, out, _ = cli("step", *NOTES_ARGS, "--format", "latex", "--standalone")
    assert status == 0
    _environments_match(out)
    assert out.count(r"\begin{document}") == 1 and r"\usepackage{amsmath}" in out
    status, _, err = cli("step", *NOTES_ARGS, "--standalone")
    assert status == 2 and "--format latex" in err and len(err.strip().splitlines()) == 1
    status, out, _ = cli("step", *NOTES_ARGS, "--format", "json")
    assert status == 0 and out.lstrip().startswith("{")


def test_step_large_numbers_in_latex(cli):
    status, tex, _ = cli("step", *NOTES_ARGS, "--format", "latex")
    assert r"L_{\text{after}} &= 1.76861 \times 10^{18}" in tex
