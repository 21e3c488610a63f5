"""Reading a file the user named, with every problem turned into a one-line UserError."""
from __future__ import annotations

from pathlib import Path

from .errors import UserError


def read_text(path: str | Path, what: str, max_bytes: int | None = None, too_big: str = "") -> str:
    """The UTF-8 text of ``path``; ``what`` ("spec file", "params file") names it in errors.
    A device is refused before reading (/dev/zero would never end), and so is a file over
    ``max_bytes``, with ``too_big`` saying why that is too much."""
    path = Path(path)
    if path.is_char_device() or path.is_block_device():
        raise UserError(f"{what} {path} is a device, not a file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(-1 if max_bytes is None else max_bytes + 1)
        if max_bytes is not None and len(raw) > max_bytes:
            raise UserError(f"{what} {path} is over {max_bytes // 1000} kB; {too_big}")
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} {path}: {exc}") from None
