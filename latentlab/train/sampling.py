"""Which dataset items each training iteration sees: an endless, seeded, resumable stream of indices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class IndexStream:
    """An endless, seeded sequence of dataset items, epoch by epoch, resumable from two integers.

    Epoch ``e`` is a permutation of ``range(size)`` drawn from ``seed`` and ``e`` only, so the stream
    continues exactly after a restart from ``(epoch, pos)`` and is the same in every process.
    """

    size: int
    seed: int
    epoch: int = 0
    pos: int = 0
    _perm: np.ndarray | None = field(default=None, repr=False)

    def _permutation(self) -> np.ndarray:
        if self._perm is None:
            rng = np.random.Generator(np.random.PCG64([self.seed, self.epoch]))
            self._perm = rng.permutation(self.size)
        return self._perm

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` item indices."""
        out = []
        while n > 0:
            perm = self._permutation()
            k = min(n, self.size - self.pos)
            out.append(perm[self.pos : self.pos + k])
            self.pos += k
            n -= k
            if self.pos == self.size:
                self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        return np.concatenate(out) if out else np.zeros([0], dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "pos", "size", "seed"}``."""
        return {"epoch": self.epoch, "pos": self.pos, "size": self.size, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from :meth:`state_dict`'s output; the dataset size and seed must match."""
        if int(state["size"]) != self.size or int(state["seed"]) != self.seed:
            raise ValueError(
                f"the training state was saved for a dataset of {state['size']} items (seed {state['seed']}), "
                f"but this dataset has {self.size} (seed {self.seed}); resume with the same data"
            )
        self.epoch, self.pos, self._perm = int(state["epoch"]), int(state["pos"]), None
