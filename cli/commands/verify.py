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

examples:
  backprop verify --layers 2-2-1 --activations linear --loss se \
      '\frac{\partial L}{\partial w^2_{11}} = -2(y - \hat{y}) O_{11}'
  backprop verify --spec net.toml derivations.tex
  backprop verify --spec net.toml derivations.tex --json
  backprop verify --notes                       # the three lecture notes, slips and all
  backprop verify verify/notes/note3_delta_rule.tex
  backprop verify --layers 2-3-2 --activations sigmoid,linear \
      '\frac{\partial L}{\partial W^2} = O^{1\top} \delta^2'
"""
from __future__ import annotations

import sys
from pathlib import Path

from backprop.derive import UserError

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


def _looks_like_latex(arg: str) -> bool:
    return any(c in arg for c in "\\=^_{}") and not arg.endswith((".tex", ".txt", ".md"))


def run(args) -> int:
    from backprop.verify import NOTES, Report, check_document, notes_path

    flags_given = any(getattr(args, f, None) for f in ("spec", "layers", "activations", "loss")) or args.no_bias
    spec = spec_from_args(args) if flags_given else None
    if not args.inputs and not args.notes:
        raise UserError("nothing to verify: give an equation, a file, - (standard input) or --notes")
    files = []
    sources = [str(notes_path(n)) for n in NOTES] if args.notes else []
    for arg in [*sources, *args.inputs]:
        if arg == "-":
            files.append(check_document(sys.stdin.read(), "<stdin>", spec))
            continue
        path = Path(arg)
        if path.is_dir():
            raise UserError(f"{arg} is a directory; give a .tex file or an equation")
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read {arg}: {exc}") from None
            files.append(check_document(text, arg, spec))
        elif _looks_like_latex(arg):
            files.append(check_document(arg, "<argument>", spec))
        else:
            raise UserError(f"{arg} is neither a file nor a LaTeX equation (an equation needs '=')")
    report = Report(files)
    if args.json:
        print_json(report.as_list())
    else:
        sys.stdout.write(report.text())
    return report.exit_code
