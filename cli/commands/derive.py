"""Derive every ∂L/∂w and ∂L/∂b of a network with the chain rule and memoisation.

For each parameter: the chain factorisation as the notes write it (each factor with its
value), the memoised form (δ · O), the formula in the notes' vocabulary and the fully
expanded formula; with --vectorised, the matrix form per layer.  Default network: the
notes' 2-2-1 linear network with loss (y - ŷ)².

Output streams: each gradient is written as it is derived (a counter on stderr when that is
a terminal; Ctrl-C stops cleanly).  Every form of every parameter is printed when it fits
and replaced by one line saying its size when it does not; the memoised form always fits.
A form named in --forms is printed even when large, up to a hard limit per parameter.

examples:
  backprop derive
  backprop derive --layers 5-4-3-2-1 --activations sigmoid,sigmoid,sigmoid,linear --loss se
  backprop derive --layers 5-4-3-2-1 --activations sigmoid --param w^1_11 --param b_21
  backprop derive --layers 5-4-3-2-1 --activations sigmoid --forms chain,formula
  backprop derive --layers 50-50-1 --activations sigmoid,linear     # 2 601 gradients, streamed
  backprop derive --layers 32-64-64-1 --activations sigmoid --format jsonl --forms memoised,chain
  backprop derive --spec net.toml --format latex --standalone -o grads.tex
  backprop derive --spec net.toml --format beamer -o slides.tex
  backprop derive --layers 784-256-128-10 --activations sigmoid,sigmoid,softmax --loss cce --vectorised
"""
from __future__ import annotations

import contextlib
import sys

from backprop.core.errors import UserError
from backprop.core.files import open_atomic
from backprop.derive import derive, vectorise
from backprop.derive import notation as nt
from backprop.derive.budget import VECTORISED_HINT, check_parameter_count
from backprop.derive.report import DEFAULT_FORMS, FORMS, STREAMS, Forms
from backprop.train.progress import Progress, _isatty

from ..common import add_spec_arguments, spec_from_args

NAME = "derive"
HELP = "derive every gradient (chain, memoised, formula, expanded, vectorised)"
ORDER = 10

#: The LaTeX document styles of backprop.derive.teaching, by how they are asked for.
DOCUMENTS = {"beamer": "beamer", "standalone": "standalone"}


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--format", choices=["text", "latex", "beamer", "json", "jsonl"], default="text",
                        help="output format (default text; json is one document, jsonl one object "
                        "a line; beamer is a slide deck, one frame per layer)")
    parser.add_argument("--json", action="store_const", const="json", dest="format",
                        help="same as --format json")
    parser.add_argument("--param", action="append", metavar="NAME[,NAME...]",
                        help="only these parameters, named as printed (w^1_11, b_21; w^{1}_{11} too); "
                        "repeatable")
    parser.add_argument("--forms", metavar="FORM[,FORM...]",
                        help=f"which forms to print, of {','.join(FORMS)} (default: all, each only "
                        "when it fits, LaTeX without expanded; a form named here is printed even "
                        "when large)")
    parser.add_argument("--standalone", action="store_true",
                        help="with --format latex, a whole article that compiles with pdflatex")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE (atomically: complete or not at all) instead of stdout")
    parser.add_argument("--force", action="store_true", help="with -o, replace an existing file")
    parser.add_argument("--vectorised", "--vectorized", action="store_true",
                        help="only the matrix (delta) form; works at any width")
    parser.add_argument("--per-parameter", action="store_true",
                        help="with --vectorised, also the per-parameter formulas")


def split_names(values: list[str] | None) -> list[str]:
    """--param values, commas split; a piece not starting with a letter continues the name
    before it (w^1_1,10 is one weight, w^1_11,b_21 two parameters)."""
    names: list[str] = []
    for value in values or []:
        for piece in value.split(","):
            piece = piece.strip()
            if names and piece and not piece[0].isalpha():
                names[-1] += "," + piece
            elif piece:
                names.append(piece)
    return names


def _valid_names(d) -> str:
    """w^1_11 … w^1_54, b_11 … b_14, ... (first and last of each layer's weights and biases)."""
    layers, depth = d.spec.layers, d.net.depth
    shown = list(range(1, depth + 1)) if depth <= 4 else [1, 2, depth]
    parts = []
    for k in shown:
        first, last = nt.weight(k, 1, 1), nt.weight(k, layers[k - 1], layers[k])
        parts.append(f"{nt.text_name(nt.parse(first))} … {nt.text_name(nt.parse(last))}")
        if d.spec.bias:
            parts.append(f"b_{k}1 … {nt.text_name(nt.parse(nt.bias(k, layers[k])))}")
    return ", ".join(parts) + (" (and the layers between)" if len(shown) < depth else "")


def select(d, values: list[str] | None) -> list | None:
    """The Gradients named by --param, in the order given (None: every parameter)."""
    names = split_names(values)
    if not names:
        return None
    chosen, seen = [], set()
    for name in names:
        try:
            g = d.gradient(name)
        except KeyError:
            raise UserError(f"{name!r} is not a parameter of the {d.spec.describe()}; "
                            f"name them as printed: {_valid_names(d)}") from None
        if g.parameter not in seen:
            seen.add(g.parameter)
            chosen.append(g)
    return chosen


class _Counted:
    """Gradients pulled one at a time; ``done`` counts those whose output was fully handed on
    (the consumer pulls the next only after writing the previous)."""

    def __init__(self, items):
        self.items, self.done, self._pulled = items, 0, 0

    def __iter__(self):
        for g in self.items:
            self.done = self._pulled
            self._pulled += 1
            yield g
        self.done = self._pulled


def _chunks(args, d, gradients, forms, vec, count):
    """The report's chunks: a teaching document (teaching.py) or one of report.STREAMS."""
    style = "beamer" if args.format == "beamer" else "standalone" if args.standalone else None
    if style is None:
        return STREAMS[args.format](d, gradients, forms, vec, count)
    from backprop.derive import teaching

    return teaching.document(d, gradients if gradients is not None else d.gradients, forms,
                             DOCUMENTS[style])


@contextlib.contextmanager
def _sink(args):
    """stdout, or -o FILE written atomically (refused up front if it exists without --force)."""
    if args.output:
        with open_atomic(args.output, args.force) as fh:
            yield fh
    else:
        yield sys.stdout
        sys.stdout.flush()


def run(args) -> int:
    spec = spec_from_args(args)
    forms = Forms.parse(args.forms, DEFAULT_FORMS.get(args.format, FORMS))
    if args.standalone and args.format != "latex":
        raise UserError("--standalone goes with --format latex (for slides use --format beamer)")
    if args.force and not args.output:
        raise UserError("--force replaces the file named by -o; give -o FILE")
    per_parameter = args.per_parameter or not args.vectorised or bool(args.param)
    if per_parameter:
        check_parameter_count(spec, VECTORISED_HINT)
    d = derive(spec)
    chosen = select(d, args.param)
    count = len(chosen) if chosen is not None else spec.n_parameters
    vec = vectorise(d) if args.vectorised else None
    for warning in d.warnings:
        print(f"backprop derive: warning: {warning}", file=sys.stderr)
    counted = _Counted(chosen if chosen is not None else d.gradients) if per_parameter else None
    bar = Progress(count, sys.stderr, quiet=not per_parameter, label="derive: parameter")
    try:
        with _sink(args) as out:
            shared = bar.enabled and not args.output and _isatty(out)
            for chunk in _chunks(args, d, counted, forms, vec, count):
                if shared:
                    bar.close()  # the counter shares the terminal: erase it before each write
                out.write(chunk)
                if out is sys.stdout:
                    out.flush()  # a reader behind a pipe sees each gradient as it is made
                if counted is not None:
                    bar.update(counted.done)
    except KeyboardInterrupt:
        bar.close()
        done = counted.done if counted is not None else 0
        print(f"backprop derive: interrupted after {done} of {count if per_parameter else 0} parameters"
              + (f"; {args.output} not written" if args.output else ""), file=sys.stderr)
        return 130
    finally:
        bar.close()
    if args.output:
        print(f"wrote {args.output}: {count if per_parameter else 0} gradient(s) of the {spec.describe()}")
    return 0
