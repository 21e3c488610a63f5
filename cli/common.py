"""Pieces every subcommand shares: the spec flags, JSON output, atomic file writes."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from backprop.core.errors import UserError
from backprop.derive.spec import NOTES_2_2_1, Spec, load_toml, make_spec


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """--spec FILE, or --layers/--activations/--loss/--no-bias (default: the notes' 2-2-1)."""
    g = parser.add_argument_group("network (default: the notes' 2-2-1 linear network, loss se)")
    g.add_argument("--spec", metavar="FILE", help="TOML spec: layers = [2, 2, 1], activations = "
                   '["linear", "linear"], loss = "se", bias = true')
    g.add_argument("--layers", metavar="W-W-...", help="layer widths, input first, e.g. 5-4-3-2-1")
    g.add_argument("--activations", metavar="NAME[,NAME...]",
                   help="one activation per non-input layer, or one name for all (default linear)")
    g.add_argument("--loss", metavar="NAME", help="se (default), half_se, mse, bce, cce, hinge")
    g.add_argument("--no-bias", action="store_true", help="no bias terms")


def spec_from_args(args: argparse.Namespace) -> Spec:
    """The Spec the flags describe; --spec may not be mixed with the other network flags."""
    flags = [f for f in ("layers", "activations", "loss") if getattr(args, f, None)]
    if getattr(args, "spec", None):
        if flags or getattr(args, "no_bias", False):
            raise UserError(f"--spec cannot be combined with --{', --'.join(flags or ['no-bias'])}")
        return load_toml(args.spec)
    if not flags and not getattr(args, "no_bias", False):
        return Spec(**NOTES_2_2_1)
    return make_spec(args.layers or "2-2-1", args.activations or "linear", args.loss or "se",
                     bias=not args.no_bias)


def nonnegative_int(text: str) -> int:
    """argparse type for seeds and counts that may be 0: an int >= 0 (NumPy refuses negative
    seeds with a traceback deep in the run); anything else is argparse's one-line error."""
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text[:40]!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def print_json(obj) -> None:
    """Scripts read this: UTF-8, sorted keys, one document on stdout."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def write_atomic(path: str | Path, data: str | bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename, so a
    crash or Ctrl-C never leaves a half-written file; refuse to replace a file unless forced."""
    with open_atomic(path, force, binary=isinstance(data, bytes)) as fh:
        fh.write(data)
    return Path(path)


@contextlib.contextmanager
def open_atomic(path: str | Path, force: bool = False, binary: bool = False):
    """A file to write ``path`` through, for output made piece by piece: a temporary file in the
    same folder, renamed to ``path`` when the block ends and removed if it raises (Ctrl-C
    included).  An existing ``path`` is refused up front, before any work, unless forced."""
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"{path} already exists; pass --force to replace it")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"output folder {folder} does not exist")
    mode = "wb" if binary else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8"})) as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; open() honours the umask
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _link_new(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if no file has it yet (a hard link fails when the name
    is taken), so of two runs writing one new file exactly one wins; check-then-rename let both
    report "wrote".  Where hard links are not supported, an O_EXCL placeholder claims the name."""
    taken = UserError(f"{path} already exists; pass --force to replace it")
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise taken from None
    except OSError:  # a file system without hard links (FAT, some network mounts)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise taken from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _umask() -> int:
    """The process umask (reading it means setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
