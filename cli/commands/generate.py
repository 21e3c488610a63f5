"""Generate a standalone trainer module for a network: NumPy (imports only numpy), or the same
derivation compiled by numba or jitted by JAX (--backend).

The module is rendered from Jinja2 templates; every element-wise expression in it (the
activations, their derivatives through the outputs, the output δ, the loss) is printed by
SymPy from the derivation.  Its header names the spec (content and hash), the backprop and
SymPy versions and this command; regenerating gives the same bytes.  The file is written to
a temporary file and renamed, so an interrupted run never leaves half a module.

examples:
  backprop generate --spec net.toml -o trainer.py
  backprop generate --layers 4-8-3 --activations relu,softmax --loss cce -o clf.py --float32
  backprop generate --spec net.toml -o trainer.py --no-cli  # maths and training only
  backprop generate --spec net.toml --backend numba -o t.py # the SGD epoch compiled (@njit)
  backprop generate --spec net.toml --backend jax -o t.py   # jit + lax.scan; CPU, GPU or TPU
  backprop generate --spec net.toml -o trainer.py --check   # is trainer.py up to date?
  backprop generate --check                                  # are all of generated/ up to date?
  backprop generate --all --force                            # regenerate all of generated/
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import NamedTuple

from backprop.codegen import BACKENDS, render_trainer
from backprop.codegen.backends import DEFAULT
from backprop.core.errors import UserError
from backprop.core.files import write_atomic
from backprop.derive import load_toml

from ..common import add_spec_arguments, spec_from_args

NAME = "generate"
HELP = "generate a standalone trainer module (NumPy; or numba, JAX)"
ORDER = 30


def add_arguments(parser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="the module to write, e.g. trainer.py")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    parser.add_argument("--float32", action="store_true", help="make float32 the module's default dtype")
    parser.add_argument("--backend", choices=list(BACKENDS), default=DEFAULT,
                        help="the engine: " + "; ".join(f"{b.name}: {b.summary}" for b in BACKENDS.values())
                        + ". Generating needs none installed; running a numba or jax module needs "
                        "pip install -e '.[numba]' or '.[jax]'")
    parser.add_argument("--no-cli", action="store_true",
                        help="leave out the runtime (model files, CSV reading, the command line): "
                        "the module imports numpy (and its --backend's engine) only")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file differs from a fresh rendering "
                        "(without -o: check every trainer in generated/)")
    parser.add_argument("--all", action="store_true",
                        help="regenerate every generated/specs/NAME.toml into generated/NAME.py")


def generated_folder() -> Path:
    """The folder of the committed trainers (the backprop.generated package)."""
    import backprop.generated

    return Path(next(iter(backprop.generated.__path__)))


#: The committed trainers that also have a copy per backend (generated/NAME_BACKEND.py).
BACKEND_COPIES = {"notes_2_2_1": ("numba", "jax"), "notes_5_4_3_2_1": ("numba", "jax")}


class Committed(NamedTuple):
    """One committed trainer: its spec file, its module file, the command that regenerates it,
    and its backend."""

    spec: Path
    module: Path
    command: str
    backend: str = DEFAULT


def committed() -> list[Committed]:
    """Every committed trainer, by spec name: the NumPy one, then its backends' copies."""
    folder = generated_folder()
    out = []
    for spec_file in sorted((folder / "specs").glob("*.toml")):
        copies = [b for b in BACKEND_COPIES.get(spec_file.stem, ()) if b in BACKENDS]
        for backend in (DEFAULT, *copies):
            suffix = "" if backend == DEFAULT else f"_{backend}"
            flag = "" if backend == DEFAULT else f" --backend {backend}"
            module = folder / f"{spec_file.stem}{suffix}.py"
            command = (f"backprop generate --spec generated/specs/{spec_file.name}{flag} "
                       f"-o generated/{module.name}")
            out.append(Committed(spec_file, module, command, backend))
    return out


def _command(args) -> str:
    """The command recorded in the header: what to run to regenerate this file."""
    parts = ["backprop", "generate"]
    if args.spec:
        parts += ["--spec", args.spec]
    else:
        for flag in ("layers", "activations", "loss"):
            if getattr(args, flag):
                parts += [f"--{flag}", getattr(args, flag)]
        if args.no_bias:
            parts.append("--no-bias")
    parts += ["-o", args.output]
    if args.float32:
        parts.append("--float32")
    if args.no_cli:
        parts.append("--no-cli")
    if args.backend != DEFAULT:
        parts += ["--backend", args.backend]
    return shlex.join(parts)


def _check(path: Path, source: str) -> bool:
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{path}: missing (generate it without --check)", file=sys.stderr)
        return False
    if current != source:
        print(f"{path}: out of date; regenerate it (same command with --force)", file=sys.stderr)
        return False
    print(f"{path}: up to date")
    return True


def _run_all(args) -> int:
    if (args.output or args.spec or args.layers or args.activations or args.loss or args.no_cli
            or args.backend != DEFAULT):
        raise UserError("--all (or --check without -o) works on generated/ and takes no -o, --no-cli, "
                        "--backend or network flags")
    ok = True
    for spec_file, module, command, backend in committed():
        source = render_trainer(load_toml(spec_file), command=command, backend=backend)
        if args.check:
            ok &= _check(module, source)
        else:
            write_atomic(module, source, force=args.force)
            print(f"wrote {module}")
    return 0 if ok else 1


def run(args) -> int:
    if args.all or (args.check and not args.output):
        return _run_all(args)
    if not args.output:
        raise UserError("name the module to write with -o FILE (or use --check / --all for generated/)")
    out = Path(args.output)
    if out.suffix != ".py":
        raise UserError(f"{args.output}: the trainer must be a .py file, e.g. -o trainer.py")
    spec = spec_from_args(args)
    source = render_trainer(spec, dtype="float32" if args.float32 else "float64", command=_command(args),
                            cli=not args.no_cli, backend=args.backend)
    if args.check:
        return 0 if _check(out, source) else 1
    write_atomic(out, source, force=args.force)
    note = "" if out.stem.isidentifier() else f" (runs as a script; {out.stem!r} cannot be imported by name)"
    print(f"wrote {out}: {BACKENDS[args.backend].engine} trainer for the {spec.describe()}{note}")
    return 0
