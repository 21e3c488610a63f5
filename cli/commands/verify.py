r"""Check hand derivations: each equation is correct, wrong (with the correct formula, the
chain factor that differs and a numeric counterexample) or an error (what cannot be read:
the column, or the network names nearest to an unknown one).

INPUT is a LaTeX equation or a file of them (one per line, $...$ or $$...$$; % comments and
directives '% spec:', '% at:', '% count:', '% where:', '% vectors:' — see
`python -m pydoc backprop.verify`).  Besides ∂L/∂w equations it checks forward definitions
(O_{11} = ...), numeric claims, parameter counts, matrix forms (\delta^1 = (\delta^2
W^{2\top}) \odot g'(Z^1)) and the delta rule (W_{j,i} \leftarrow W_{j,i} + \alpha a_j
\Delta_i).  The network comes from the flags, else from the file's '% spec:' line, else the
notes' 2-2-1 linear network with loss (y - ŷ)².  Exit status: 0 all correct, 1 some
wrong, 2 bad input (an unreadable file or spec, or any equation with an 'error' verdict:
the report still lists every equation).

--notation reads another book's symbols (nielsen, ng, bishop, mazur; see
`python -m pydoc backprop.verify.notations`); a line that fails in the chosen notation but
reads in another says which.  Everywhere: \sigma'(z_{11}), g'(z), f'(z), h'(a) (the
layer's activation from the spec, evaluated AT its argument), w^{(2)}_{11}, w^{[2]}_{11},
\frac{dL}{dw}, \partial L/\partial w, ∂, \delta_{21} = ... (checked against the true δ),
\mathbb{1}[z>0], H(z), \theta(z), trailing \text{...} remarks (dropped with a note),
align/aligned blocks with &= rows, \sum_{j=1}^{2} and \sum_k over nodes, \|y - \hat{y}\|^2,
1.76e2 and 1.76 \times 10^{2} as numbers.  --explain prints each equation as it was read.

examples:
  backprop verify --layers 2-2-1 --activations linear --loss se \
      '\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}'
  backprop verify --spec net.toml derivations.tex
  backprop verify --spec net.toml derivations.tex --json
  backprop verify --notes                       # the three lecture notes, slips and all
  backprop verify --layers 2-2-1 --activations sigmoid --loss se --notation nielsen \
      '\delta^3_1 = \frac{\partial C}{\partial a^3_1} \sigma'"'"'(z^3_1)' --explain
  backprop derive --spec net.toml --format latex | backprop verify --spec net.toml -
  backprop verify verify/notes/note3_delta_rule.tex
  backprop verify --layers 2-3-2 --activations sigmoid,linear \
      '\frac{\partial L}{\partial W^2} = O^{1\top} \delta^2'
"""
from __future__ import annotations

import sys
from pathlib import Path

from backprop.core.errors import UserError
from backprop.core.userfile import size_text

from ..common import add_spec_arguments, print_json, spec_from_args

NAME = "verify"
HELP = "check hand derivations: correct, wrong (with counterexample) or error"
ORDER = 20


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="a LaTeX equation, a file of equations, or - for standard input")
    add_spec_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable verdicts")
    parser.add_argument("--notes", action="store_true",
                        help="verify the bundled transcriptions of the three lecture notes")
    from backprop.verify.notations import DEFAULT, NOTATIONS
    parser.add_argument("--notation", choices=list(NOTATIONS), default=DEFAULT,
                        help="whose symbols the equations use: notes (w^k_{ij}, O_{kj}, L; the default), "
                             "nielsen (a^l_j, z^l_j, w^l_{jk}, C), ng (a^{[l]}_j, W^{[l]}_{jk}, dz, J), "
                             "bishop (a_j pre-activation, z_j activation, w_{ji}, E_n, t_k), "
                             "mazur (net_{h1}, out_{o1}, w_1..w_8 of a 2-2-2 net, E_{total})")
    parser.add_argument("--explain", action="store_true",
                        help="show how each equation was read (printed back in the notes' notation) "
                             "before its verdict; in --json the field read_as")


def _looks_like_latex(arg: str) -> bool:
    return any(c in arg for c in "\\=^_{}") and not arg.endswith((".tex", ".txt", ".md"))


def _file_or_equation(arg: str) -> str:
    """'file', 'dir' or 'other': an argument too long for a path (over 255 bytes a name, or
    any OSError asking) is not a file, so it is read as an equation."""
    try:
        path = Path(arg)
        if path.is_dir():
            return "dir"
        return "file" if path.is_file() else "other"
    except (OSError, ValueError):
        return "other"


def _read_stdin(limit: int, too_big: str) -> str:
    """Standard input, at most ``limit`` bytes read (a text stream without a buffer: characters)."""
    stream = getattr(sys.stdin, "buffer", None)
    try:
        raw = stream.read(limit + 1) if stream is not None else sys.stdin.read(limit + 1).encode("utf-8")
        if len(raw) > limit:
            raise UserError(f"standard input is over {size_text(limit)}; {too_big}")
        return raw.decode("utf-8")
    except UnicodeError as exc:
        raise UserError(f"standard input is not UTF-8 text: {exc}") from None


def _progress(name: str):
    """A counter on stderr for long inputs, only on a terminal (scripts and pipes get none)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            end = "\n" if done == total else ""
            sys.stderr.write(f"\rverify {name}: {done}/{total} equations{end}")
            sys.stderr.flush()
    return show


#: Inputs with at least this many equations show a counter on a terminal.
PROGRESS_FROM = 20


def run(args) -> int:
    from backprop.verify import MAX_TEX_BYTES, NOTES, TOO_BIG, Report, check_document, notes_path, read_tex

    flags_given = any(getattr(args, f, None) for f in ("spec", "layers", "activations", "loss")) or args.no_bias
    spec = spec_from_args(args) if flags_given else None
    if not args.inputs and not args.notes:
        raise UserError("nothing to verify: give an equation, a file, - (standard input) or --notes")
    files = []

    def check(text: str, name: str):
        return check_document(text, name, spec, notation=args.notation, explain=args.explain,
                              progress=_progress(name))

    sources = [str(notes_path(n)) for n in NOTES] if args.notes else []
    for arg in [*sources, *args.inputs]:
        if arg == "-":
            files.append(check(_read_stdin(MAX_TEX_BYTES, TOO_BIG), "<stdin>"))
            continue
        kind = _file_or_equation(arg)
        if kind == "dir":
            raise UserError(f"{arg} is a directory; give a .tex file or an equation")
        if kind == "file":
            files.append(check(read_tex(arg), arg))
        elif _looks_like_latex(arg):
            files.append(check(arg, "<argument>"))
        else:
            raise UserError(f"{arg} is neither a file nor a LaTeX equation (an equation needs '=')")
    report = Report(files)
    if args.json:
        print_json(report.as_list())
    else:
        sys.stdout.write(report.text())
    return report.exit_code
