"""Output files of the training commands: checked before a run starts, written atomically after.

Every file goes through :func:`backprop.cli.common.write_atomic` (temporary file + rename),
so an interrupted run never leaves half a PNG or half a JSON behind.  :func:`preflight`
runs the same checks up front, so a long run does not end in "file exists".
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from backprop.derive.errors import UserError


def preflight(paths, force: bool = False) -> None:
    """Refuse now, not after training, an output that exists (without --force) or has no folder."""
    seen = set()
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        if p in seen:
            raise UserError(f"{p} is named as two different outputs; give each its own file")
        seen.add(p)
        if p.is_dir():
            raise UserError(f"{p} is a directory, not a file")
        if p.exists() and not force:
            raise UserError(f"{p} already exists; pass --force to replace it")
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise UserError(f"output folder {folder} does not exist")


def write(path, data, force: bool = False) -> Path:
    """Atomic write with the permissions a plain ``open()`` gives: the project's one writer."""
    from backprop.cli.common import write_atomic

    return write_atomic(path, data, force=force)


def write_json(path, obj, force: bool = False) -> Path:
    return write(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n", force=force)


def history_csv(hist) -> str:
    """epoch,loss,seconds[,grad_norm_W1,...] with epoch 0 the state before training."""
    cols = ["epoch", "loss", "seconds"]
    n_layers = len(hist.grad_norms[0]) if hist.grad_norms else 0
    cols += [f"grad_norm_W{k}" for k in range(1, n_layers + 1)]
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    for epoch, loss in enumerate(hist.losses):
        row = [str(epoch), repr(float(loss)), f"{(hist.seconds[epoch - 1] if epoch else 0.0):.6f}"]
        if n_layers:
            row += [repr(float(v)) for v in hist.grad_norms[epoch]]
        buf.write(",".join(row) + "\n")
    return buf.getvalue()


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure rendered in memory (png, svg or pdf), ready for an atomic write."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=fig.dpi)
    return buf.getvalue()


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"

