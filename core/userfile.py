"""Reading a file the user named, with every problem turned into a one-line UserError.

:func:`read_text` is the one reader for files that are small by nature (a spec, a params
file, a LaTeX derivation): give it ``max_bytes`` and it reads at most that much plus one
byte, so a 5 GB file costs no more memory than the limit, and says the limit in the error.
"""
from __future__ import annotations

import stat
from pathlib import Path

from .errors import UserError


def size_text(n_bytes: int) -> str:
    """100 kB, 2.5 MB: a limit as people read it (decimal units)."""
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.4g} kB"
    if n_bytes < 1_000_000_000:
        return f"{n_bytes / 1e6:.4g} MB"
    return f"{n_bytes / 1e9:.4g} GB"


def read_text(path: str | Path, what: str, max_bytes: int | None = None, too_big: str = "") -> str:
    """The UTF-8 text of ``path``; ``what`` ("spec file", "params file") names it in errors.
    A device or a pipe is refused before reading (/dev/zero would never end, a FIFO blocks),
    and so is a file over ``max_bytes``, with ``too_big`` saying why that is too much."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0  # missing or unreadable: open() below names the problem
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise UserError(f"{what} {path} is a device, not a file")
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise UserError(f"{what} {path} is a pipe, not a file; save it to a file first")
    try:
        with path.open("rb") as fh:
            raw = fh.read(-1 if max_bytes is None else max_bytes + 1)
        if max_bytes is not None and len(raw) > max_bytes:
            raise UserError(f"{what} {path} is over {size_text(max_bytes)}; {too_big}")
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} {path}: {exc}") from None
