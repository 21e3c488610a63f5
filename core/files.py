"""Output files, written atomically: checked before the work starts, written whole after it.

Every file goes through :func:`write_atomic` (temporary file in the same folder + rename),
so an interrupted run never leaves half a PNG or half a JSON behind.  :func:`preflight`
runs the same checks up front, so a long run does not end in "file exists": two outputs
that resolve to one file, a folder that is missing or cannot be written (a probe file is
created and removed in it).  When a write still fails after the work is done, :func:`write`
keeps the result in the system's temporary folder and the one-line error says where.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

from .errors import UserError

#: Image formats matplotlib writes, by file suffix.
IMAGE_FORMATS = ("png", "svg", "pdf")


class WriteFailed(UserError):
    """An output could not be written after the work was done; the result was kept elsewhere."""


def _identity(p: Path):
    """What makes two paths one file: the resolved path, and (device, inode) when it exists."""
    real = os.path.realpath(p)
    try:
        st = os.stat(real)
        return real, (st.st_dev, st.st_ino)
    except OSError:
        return real, None


def preflight(paths, force: bool = False) -> None:
    """Refuse now, not after training, an output that exists (without --force), two outputs
    that are one file (``p.json`` and ``sub/../p.json``, a link), a missing folder or one that
    cannot be written."""
    seen: dict = {}
    probed = set()
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        real, inode = _identity(p)
        for key in (real, inode):
            if key is not None and key in seen:
                raise UserError(f"{seen[key]} and {p} are the same file, named as two different "
                                "outputs; give each its own file")
        seen.update({key: p for key in (real, inode) if key is not None})
        if p.is_dir():
            raise UserError(f"{p} is a directory, not a file")
        if p.exists() and not force:
            raise UserError(f"{p} already exists; pass --force to replace it")
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise UserError(f"output folder {folder} does not exist")
        if os.path.realpath(folder) not in probed:
            probe(folder)
            probed.add(os.path.realpath(folder))


def probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only sure test that outputs can land there."""
    try:
        with tempfile.NamedTemporaryFile(prefix=".backprop-probe-", dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to output folder {folder}: {exc.strerror or exc}") from None


def image_format(path) -> str:
    """png, svg or pdf from the file's suffix; anything else is refused (never PNG bytes in x.svg)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise UserError(f"cannot tell the image format of {path}; end it in "
                        f"{', '.join('.' + f for f in IMAGE_FORMATS)}")
    return fmt


def write(path, data, force: bool = False) -> Path:
    """Atomic write with the permissions a plain ``open()`` gives: the project's one writer.

    A failure here comes after the work: the data is kept in the temporary folder and the
    error (:class:`WriteFailed`, one line) names the file it is in."""
    try:
        return write_atomic(path, data, force=force)
    except (OSError, UserError) as exc:
        reason = str(exc) if isinstance(exc, UserError) else (exc.strerror or str(exc))
        raise WriteFailed(f"cannot write {path}: {reason}; {keep(path, data)}") from None


def write_each(jobs) -> list[Path]:
    """Run every write in ``jobs`` (callables returning the path written) even when one fails,
    so one bad output does not cost the others; then one line for all that failed."""
    written, failed = [], []
    for job in jobs:
        try:
            written.append(job())
        except WriteFailed as exc:
            failed.append(str(exc))
    if failed:
        raise WriteFailed("; ".join(failed))
    return written


def keep(path, data) -> str:
    """Save ``data`` under the system's temporary folder; says where (or that it could not)."""
    p = Path(path)
    try:
        with tempfile.NamedTemporaryFile("wb", prefix=f"backprop-{p.stem}-", suffix=p.suffix,
                                         dir=tempfile.gettempdir(), delete=False) as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return f"the result is kept in {fh.name}"
    except OSError as exc:
        return f"it could not be kept either ({exc.strerror or exc})"


def json_safe(obj):
    """``obj`` with every NaN or infinity replaced by None: JSON has no such numbers, and the
    ``Infinity`` / ``NaN`` tokens Python writes by default are invalid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path, obj, force: bool = False) -> Path:
    """Strict JSON (a NaN or an infinity is an error, never the invalid token ``NaN``)."""
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise UserError(f"not writing {path}: it would hold a value that is not finite "
                        "(NaN or infinity)") from None
    return write(path, text + "\n", force=force)


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure rendered in memory (png, svg or pdf), ready for an atomic write."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=fig.dpi)
    return buf.getvalue()


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


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
