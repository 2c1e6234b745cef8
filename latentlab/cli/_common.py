"""What every command family shares: the ``--device`` option."""

from __future__ import annotations

import click

from ..utils import DEVICE_CHOICES


def device_option(f):
    """``--device`` (default auto) on a command."""
    return click.option(
        "--device", default="auto", show_default=True,
        help=f"One of {', '.join(DEVICE_CHOICES)} (or e.g. cuda:1); auto = cuda, then mps, then cpu.",
    )(f)  # fmt: skip
