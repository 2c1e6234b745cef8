"""``latentlab serve``: the browser editor (:mod:`latentlab.serve`)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import device_option

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command("serve")
@click.option("--network", "networks", multiple=True,
              help="A registry name or checkpoint to offer (repeat for several); default: the embedded models.")
@click.option("--encoder", "encoders", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="An encoder file (latentlab encoder train) for the --network of the same position.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this machine warns (the editor has no log-in).")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port (0: any free one).")
@click.option("--pca-samples", type=click.IntRange(0, 10**7), default=20_000, show_default=True,
              help="Mapped samples for the PCA directions offered (0: none).")
@click.option("--max-jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Projections that may run at once (each in its own thread).")
@click.option("--max-upload-mb", type=click.IntRange(1, 1024), default=25, show_default=True,
              help="The largest upload accepted.")
@device_option
def serve_cmd(networks, encoders, host, port, pca_samples, max_jobs, max_upload_mb, device) -> None:
    """Edit generated faces and uploaded photos in the browser: seeds, blends, projections (encoder, optimizer,
    PTI), direction sliders on chosen layers, style mixing, truncation, noise, interpolation, exports.

    The page never names a file on the server: it offers the models given here (by name or by file stem).

    \b
    Example:
        latentlab serve                                   # the embedded synthfaces-64, http://127.0.0.1:7860
        latentlab serve --network my-G.pkl --encoder enc.safetensors --port 8000
    """
    import uvicorn

    from ..registry import list_models
    from ..serve import Editor, ServedModel, create_app, public_name
    from ..utils import resolve_device

    if len(encoders) > len(networks):
        raise click.UsageError("give one --encoder per --network, in the same order (more encoders than networks)")
    if not networks:
        from ..registry import MODELS, available_locally

        networks = tuple(n for n in list_models() if MODELS[n].url is None and available_locally(n))  # embedded
        if not networks:
            raise click.UsageError("no embedded model is present: give --network NAME_OR_FILE")
    if host not in LOCAL_HOSTS:
        click.echo(f"warning: listening on {host}: anyone who can reach this address can use the editor and "
                   f"upload images to it (it has no log-in)", err=True)  # fmt: skip
    dev = str(resolve_device(device))
    models = {}
    for i, net in enumerate(networks):
        name = public_name(net, set(models))
        click.echo(f"loading {name} ...", err=True)
        models[name] = ServedModel.load(net, name, device=dev, encoder=encoders[i] if i < len(encoders) else None,
                                        pca_samples=pca_samples)  # fmt: skip
    editor = Editor(models, max_jobs=max_jobs, max_upload_bytes=max_upload_mb * 2**20)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"latentlab editor: http://{shown}:{port}/  (Ctrl-C stops it)", err=True)
    uvicorn.run(create_app(editor), host=host, port=port, log_level="warning")
