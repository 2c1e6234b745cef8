"""The ``latentlab`` command line: one click group, one module per family of verbs.

* :mod:`.models`: ``generate``, ``info``, ``convert``, ``init``, ``models``, ``download``, ``presets``;
* :mod:`.training`: ``train``, ``dataset prepare|synth|info``, ``classifier train``;
* :mod:`.projection`: ``project``, ``tune``;
* :mod:`.encoders`: ``encoder train|info``;
* :mod:`.photos`: ``align``;
* :mod:`.editing`: ``directions fit|pca|sefa|list``, ``edit``, ``mix``, ``interpolate``, ``noise``;
* :mod:`.metrics`: ``metrics``;
* :mod:`.demo`: ``demo``;
* :mod:`.serve`: ``serve`` (the browser editor).

Every command is a thin wrapper over one library function. This is the top layer: nothing in the library
imports it.
"""

from __future__ import annotations

import os

import click

from . import demo, editing, encoders, metrics, models, photos, projection, serve, training


class _Group(click.Group):
    """Turns expected errors (bad input, unreadable files) into one ``Error: ...`` line and exit code 1."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand; ``LATENTLAB_DEBUG=1`` lets errors through with their traceback."""
        from ..faces import LandmarksUnavailable
        from ..io.checkpoint import CheckpointError
        from ..parallel import ShardFailed
        from ..perceptual import WeightsUnavailable

        if os.environ.get("LATENTLAB_DEBUG") == "1":
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (CheckpointError, ValueError, KeyError, FileNotFoundError, IsADirectoryError, WeightsUnavailable,
                LandmarksUnavailable, ShardFailed) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise click.ClickException(str(msg)) from None
        except OSError as e:
            raise click.ClickException(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="latentlab")
def cli() -> None:
    """latentlab: StyleGAN2 inversion and latent-space editing.

    Run `latentlab COMMAND --help` for the options and an example of each command.
    """


def main() -> None:
    """Console-script entry point: tunes glibc's allocator for big tensors, then runs the CLI."""
    from ..utils import tune_allocator

    tune_allocator()
    cli(prog_name="latentlab")


for _command in (
    models.generate, projection.project, models.info, models.convert, models.init, models.models, models.download,
    models.presets, models.weights, training.train, training.dataset, training.classifier, demo.demo,
    editing.directions, editing.edit_cmd, editing.mix_cmd, editing.interpolate_cmd, editing.noise_cmd,
    metrics.metrics_cmd, photos.align_cmd, projection.tune_cmd, photos.edit_photo_cmd, photos.paste_cmd,
    encoders.encoder, serve.serve_cmd,
):  # fmt: skip
    cli.add_command(_command)
