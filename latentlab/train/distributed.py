"""The training loop's processes: :class:`~latentlab.parallel.World` and :func:`~latentlab.parallel.init_world`,
re-exported from :mod:`latentlab.parallel` (where every sharded job finds them)."""

from __future__ import annotations

from ..parallel import World, init_world

__all__ = ["World", "init_world"]
