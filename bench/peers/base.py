"""The Runner contract shared by all peers (see ``peers/__init__``)."""
from __future__ import annotations

import numpy as np


class Runner:
    """Base class: subclasses implement reset/epoch/params; sync is a no-op on the CPU."""

    name = "?"

    def reset(self) -> None:
        raise NotImplementedError

    def epoch(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        pass

    def warmup(self) -> None:
        """Run the first two batches and the last one (compiles, caches, page faults); not timed.

        Peers that loop over ``self.slices`` get this for free; others override it.
        """
        full = self.slices
        self.slices = full[:2] + full[-1:]
        try:
            self.epoch()
            self.sync()
        finally:
            self.slices = full

    def params(self) -> dict[str, np.ndarray]:
        raise NotImplementedError
