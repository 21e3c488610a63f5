"""A one-line progress bar with the running loss, drawn on stderr for people, never for pipes.

It draws only when the stream is a terminal and ``--quiet`` is off, redraws at most ten
times a second (so a million tiny epochs cost nothing), and erases itself when closed so the
summary that follows starts on a clean line.
"""
from __future__ import annotations

import sys
import time

_WIDTH = 24


class Progress:
    """``with Progress(total) as bar: bar.update(epoch, loss)``."""

    def __init__(self, total: int, stream=None, quiet: bool = False, label: str = "epoch",
                 interval: float = 0.1):
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.interval = interval
        self.enabled = not quiet and _isatty(self.stream)
        self._start = time.perf_counter()
        self._last = 0.0
        self._drawn = False

    def __repr__(self) -> str:
        return f"Progress(total={self.total}, enabled={self.enabled})"

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, done: int, loss: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.interval and done < self.total:
            return
        self._last = now
        self.stream.write("\r" + self.line(done, loss, now - self._start))
        self.stream.flush()
        self._drawn = True

    def line(self, done: int, loss: float | None, elapsed: float) -> str:
        """The text of the bar: 'epoch  120/500 [#####-----]  24% loss 0.01234 eta 3s'."""
        frac = min(done / self.total, 1.0)
        filled = int(round(frac * _WIDTH))
        eta = elapsed / done * (self.total - done) if done else 0.0
        text = (f"{self.label} {done:>{len(str(self.total))}}/{self.total} "
                f"[{'#' * filled}{'-' * (_WIDTH - filled)}] {frac:4.0%}")
        if loss is not None:
            text += f" loss {loss:.6g}"
        return text + f" eta {_duration(eta)}"

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def seconds(t: float | None) -> str:
    """A short time in the unit that keeps it readable: 24.4 µs, 4.89 ms, 1.64 s."""
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.3g} µs"
    if t < 1:
        return f"{t * 1e3:.3g} ms"
    return f"{t:.3g} s"


def plural(n: int, word: str) -> str:
    """'1 update', '4 updates'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
