"""``latentlab demo``: the README's main job, a wrapper over :func:`latentlab.demo.run_demo`."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import device_option


@click.command()
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Where to write the demo's files.")
@device_option
def demo(outdir, device):
    """The main job on the embedded SynthFaces model: a report of what latentlab does with a generator.

    Renders a SynthFaces portrait the model never saw (the "photo"), projects it into W and W+ (and
    through the embedded encoder), edits it along the shipped smile and glasses directions (printing how
    far each edit moves every classifier reading), and renders samples, a truncation sweep and
    coarse/middle/fine style mixing; writes report.html and strip.png to --outdir. An installation
    without the embedded model uses an untrained synthfaces-64 network (coloured noise) and says so.

    Example:

        latentlab demo --outdir demo-out
    """
    from ..demo import run_demo

    for line in run_demo(outdir, device=device):
        click.echo(line)
