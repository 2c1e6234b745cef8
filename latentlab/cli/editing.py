"""The editing commands of the ``latentlab`` CLI: ``directions``, ``edit``, ``mix``, ``interpolate``, ``noise``.

Each is a thin wrapper over :mod:`latentlab.edit`; they are registered on the main group by :mod:`latentlab.cli`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import SEED, Finite, check_output, join_world

_NETWORK_HELP = "Registry name or checkpoint; default: the codes' own network, else the embedded model."


def _network_name(network: str | None, metas: list[dict] | None = None) -> str:
    """--network, else the network recorded with the codes, else the embedded default model.

    A network named by a codes file is used only when it is on this machine (a file, an embedded or cached
    registry model): a crafted file never makes latentlab send a request or start a download.
    """
    from ..registry import available_locally, default_model

    if network is not None:
        return network
    for m in metas or []:
        named = m.get("network")
        if named:
            if available_locally(named):
                return named
            raise click.UsageError(f"the codes name their network {named!r:.120}, which is not a local file or a "
                                   f"model in the cache; give --network to use it (latentlab fetches nothing on a "
                                   f"file's say-so)")  # fmt: skip
    default = default_model()
    if default is None:
        raise click.UsageError("give --network (no embedded model ships in this installation)")
    return default


def _peek_metas(paths) -> list[dict]:
    from ..edit.codes import expand_code_paths
    from ..io import load_latents

    return [load_latents(p).meta for p in expand_code_paths(list(paths))]


def _load_direction(text: str, network: str, G):
    """A direction file or shipped name (under the network's registry name), checked against ``G``."""
    from ..pretrained import load_direction
    from ..registry import MODELS, default_model

    model = network if network in MODELS else default_model()
    d = load_direction(text, model=model)
    d.check_model(G, network)
    return d


def _dir_filename(d) -> str:
    name = d.attribute
    if d.conditioned_on:
        name += "_conditioned_on_" + "_".join(d.conditioned_on)
    if d.space == "z":
        name += "_z"
    elif d.space == "w+" and d.layers:
        name += f"_wp{d.layers[0]}"
    return name


def _save_all(directions, out: Path) -> None:
    from ..edit.directions import save_direction

    for d in directions:
        path = save_direction(d, out / _dir_filename(d))
        click.echo(f"{d.describe()}\n    -> {path}")


# --------------------------------------------------------------------------------------------- directions


@click.group()
def directions() -> None:
    """Find latent directions: InterFaceGAN (fit), GANSpace (pca), SeFa (sefa); list shipped ones."""


@directions.command("fit")
@click.option("--network", default=None, help="Registry name or checkpoint.  [default: the embedded model]")
@click.option("--attribute", "attributes", required=True,
              help="Classifier output(s) to fit, comma-separated, e.g. smile,glasses (or a --labels column).")
@click.option("--condition", "conditions", default=None,
              help="Attribute(s) whose directions are projected out of each fitted one, comma-separated.")
@click.option("--samples", type=click.IntRange(2, 10**8), default=50_000, show_default=True,
              help="Codes to sample and label.")
@click.option("--ratio", type=Finite(0, 0.5, low_open=True), default=0.02, show_default=True,
              help="Top and bottom fraction of the scores kept as positives and negatives.")
@click.option("--split", type=Finite(0, 1, low_open=True, high_open=True), default=0.7, show_default=True,
              help="Training fraction; the rest gives the validation accuracy.")
@click.option("--method", type=click.Choice(["svm", "logistic"]), default="svm", show_default=True)
@click.option("--space", type=click.Choice(["w", "z", "w+"]), default="w", show_default=True,
              help="Space of the codes; w+ fits one layer (--layer).")
@click.option("--layer", type=click.IntRange(min=0), default=None, help="The W+ layer for --space w+.")
@click.option("--trunc", "psi", type=Finite(-1, 2), default=1.0, show_default=True,
              help="Truncation of the sampled codes.")
@click.option("--classifier", default="synthfaces-64", show_default=True,
              help="Labeller: an embedded classifier's name or a classifier .safetensors file.")
@click.option("--codes", "codes", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Fit on these labelled codes (.npz files or folders, e.g. projections) instead of sampling; "
                   "repeatable; needs --labels.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with a column per attribute (0/1 labels or scores) and a 'name' column matching the "
                   "codes' file names (or rows in order).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the sampling, the split and the solver.")
@click.option("--batch", type=click.IntRange(1, 65536), default=64, show_default=True, help="Images per forward pass.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for NAME.npy + NAME.json per direction.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def directions_fit(network, attributes, conditions, samples, ratio, split, method, space, layer, psi, classifier,
                   codes, labels, seed, batch, out, progress, device):
    """Fit attribute directions with linear classifiers on latent codes (InterFaceGAN).

    Samples --samples codes, renders them, labels every image with the classifier, keeps the top and
    bottom --ratio per attribute, fits a linear SVM on 70% and reports the accuracy on the rest. With
    --condition the condition's direction is projected out (InterFaceGAN's conditional editing). With
    --codes and --labels it fits your own labelled codes (e.g. projected photos) instead.

    Examples:

    \b
        latentlab directions fit --attribute smile,glasses --samples 50000 --out dirs/
        latentlab directions fit --attribute smile --condition yaw --out dirs/
        latentlab directions fit --codes proj/ --labels labels.csv --attribute smiling --out dirs/
        torchrun --nproc_per_node 4 -m latentlab directions fit --attribute smile --samples 500000 --out dirs/

    Under torchrun the sampling and labelling are shared out over the processes (docs/scaling.md); the
    directions equal a one-process run's and rank 0 writes them.
    """
    from ..edit.directions import classifier_scorer, fit_direction, fit_directions, model_fingerprint
    from ..pretrained import load_classifier
    from ..registry import load_generator

    attrs = [a.strip() for a in attributes.split(",") if a.strip()]
    conds = [c.strip() for c in (conditions or "").split(",") if c.strip()]
    if (space == "w+") != (layer is not None):
        raise click.UsageError("--space w+ needs --layer (and --layer needs --space w+)")
    network = _network_name(network)
    world, dev = join_world(device, "directions fit")
    G = load_generator(network, device=dev)
    if codes:
        from ..edit.codes import load_codes, read_labels

        if labels is None:
            raise click.UsageError("--codes needs --labels")
        if conds:
            raise click.UsageError("--condition works with sampled codes; fit the conditions from --codes first")
        c = load_codes(list(codes), G)
        if space == "z" and c.z is None:
            raise ValueError("--space z needs codes files with a 'z' array (latentlab generate writes one)")
        if space == "w" and not (c.ws == c.ws[:, :1]).all():
            raise ValueError("these are W+ codes whose layers differ (e.g. W+ projections): fit one layer with "
                             "--space w+ --layer K, or project into W")  # fmt: skip
        x = c.z if space == "z" else c.ws[:, layer if layer is not None else 0]
        found = []
        for a in attrs:
            y = read_labels(labels, a, c.names)
            binary = bool(((y == 0) | (y == 1)).all())
            found.append(fit_direction(x, y, attribute=a, space=space, ratio=None if binary else ratio, split=split,
                                       method=method, seed=seed, layers=None if layer is None else [layer],
                                       model=network, model_hash=model_fingerprint(G)))  # fmt: skip
        if world.is_main:  # a fit of given codes is not shared out: every process makes the same one
            _save_all(found, out)
        return
    scorer = classifier_scorer(load_classifier(classifier, device=dev), [*attrs, *conds])
    result = fit_directions(G, attrs, scorer, num_samples=samples, seed=seed, ratio=ratio, split=split, method=method,
                            space=space, layer=layer, truncation_psi=psi,
                            conditions={a: conds for a in attrs if a not in conds} if conds else None,
                            batch_size=batch, model=network, progress=progress, world=world)  # fmt: skip
    if world.is_main:  # every process fitted the same directions; rank 0 writes them
        _save_all(result.values(), out)


@directions.command("condition")
@click.argument("direction")
@click.option("--on", "on", default=None,
              help="Directions to project out, comma-separated (shipped names or .npy files), or 'others' for "
                   "every other shipped direction of the network.")
@click.option("--layers", default=None,
              help="W+ layers the result is meant for (an edit moves these by default): all, coarse, middle, "
                   "fine (join with +), or indices like 5-9.  [default: the direction's own]")
@click.option("--network", default=None, help="Registry name or checkpoint.  [default: the embedded model]")
@click.option("--samples", type=click.IntRange(2, 10**8), default=10_000, show_default=True,
              help="Sampled codes the result's std is measured on (as the fit drew them).")
@click.option("--name", default=None,
              help="File name (without .npy).  [default: ATTRIBUTE_conditioned_on_A_B[_layersL]]")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for NAME.npy + NAME.json.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def directions_condition(direction, on, layers, network, samples, name, out, device):
    """Condition a fitted direction on others, or restrict it to W+ layers, without refitting it.

    InterFaceGAN's conditional manipulation after the fit: the components along the --on directions are
    projected out, so an edit along the result no longer moves those attributes to first order. --layers
    records the W+ layers the direction is meant for; `latentlab edit` and the editor move only those.
    The result's std is re-measured on the network's samples, so --units std sizes stay comparable. Use
    `latentlab directions fit --condition` to refit instead (it also re-measures the accuracy).

    Examples:

    \b
        latentlab directions condition smile --on glasses --out dirs/
        latentlab directions condition glasses --on others --layers 2-9 --name glasses_clean --out dirs/
        latentlab directions condition dirs/smile.npy --on dirs/yaw.npy --network run/snap.safetensors --out dirs/
    """
    from ..edit.directions import _ranges, refine_direction, save_direction
    from ..pretrained import list_directions
    from ..registry import MODELS, default_model, load_generator

    if not on and layers is None:
        raise click.UsageError("give --on (directions to project out) and/or --layers; nothing would change")
    network = _network_name(network)
    G = load_generator(network, device=device)
    d = _load_direction(direction, network, G)
    names = [c.strip() for c in (on or "").split(",") if c.strip()]
    if "others" in names:
        if names != ["others"]:
            raise click.UsageError("--on others stands alone (every other shipped direction)")
        # Every shipped plain direction of this network's space, other than the direction's own attribute.
        model = network if network in MODELS else default_model()
        shipped = [_load_direction(n, network, G) for n in list_directions(model)]
        conds = [c for c in shipped if c.attribute != d.attribute and not c.conditioned_on and c.layers is None
                 and c.space == d.space]  # fmt: skip
        if not conds:
            raise click.UsageError(f"--on others: {model} ships no other {d.space or '?'} directions")
    else:
        conds = [_load_direction(c, network, G) for c in names]
    result = refine_direction(d, G, conds, layers=layers, num_samples=samples)
    if name is None:
        name = _dir_filename(result)
        if layers is not None and result.layers is not None and result.space == "w":
            name += "_layers" + _ranges(result.layers).replace(",", "_")  # 0-3_7: no commas in file names
    path = save_direction(result, out / name)
    click.echo(f"{result.describe()}\n    -> {path}")


@directions.command("pca")
@click.option("--network", default=None, help="Registry name or checkpoint.  [default: the embedded model]")
@click.option("--samples", type=click.IntRange(2, 10**9), default=1_000_000, show_default=True,
              help="Mapped samples (GANSpace used 10^6).")
@click.option("--components", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for pc0.npy/.json, pc1, ...")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def directions_pca(network, samples, components, seed, out, progress, device):
    """Principal components of W (GANSpace), each with its standard deviation.

    Example:

        latentlab directions pca --samples 1000000 --components 10 --out dirs/pca
    """
    from ..edit.directions import pca_directions
    from ..registry import load_generator

    network = _network_name(network)
    G = load_generator(network, device=device)
    _save_all(pca_directions(G, samples, components, seed=seed, model=network, progress=progress), out)


@directions.command("sefa")
@click.option("--network", default=None, help="Registry name or checkpoint.  [default: the embedded model]")
@click.option("--layers", default="all", show_default=True,
              help="W+ layers whose style weights are factorised: all, coarse, middle, fine, or indices like 0-3.")
@click.option("--components", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--raw", is_flag=True, help="Skip SeFa's column normalisation of the weights.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for sefa0.npy/.json, sefa1, ...")
def directions_sefa(network, layers, components, raw, out):
    """Closed-form directions from the style weights (SeFa); no sampling.

    Example:

        latentlab directions sefa --layers coarse --components 5 --out dirs/sefa-coarse
    """
    from ..edit.directions import sefa_directions
    from ..registry import load_generator

    network = _network_name(network)
    G = load_generator(network, device="cpu")
    _save_all(sefa_directions(G, layers, components, normalize=not raw, model=network), out)


@directions.command("list")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
def directions_list(folders):
    """List the shipped directions and those in FOLDERS.

    Examples:

    \b
        latentlab directions list
        latentlab directions list dirs/
    """
    from ..edit.directions import load_direction as load_file
    from ..pretrained import list_directions, load_direction

    for name in list_directions():
        click.echo(f"{name:<32} {load_direction(name).describe()}")
    for folder in folders:
        for path in sorted(folder.glob("*.npy")):
            click.echo(f"{str(path):<32} {load_file(path).describe()}")


# --------------------------------------------------------------------------------------------- edits


@click.command("edit")
@click.argument("codes", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--direction", required=True,
              help="A shipped direction's name (e.g. smile; see `latentlab directions list`) or a .npy file.")
@click.option("--alpha", "alphas", default="-3:3:7", show_default=True,
              help="Steps along the direction: start:stop:count or a list like -2,0,2.")
@click.option("--units", type=click.Choice(["raw", "std"]), default="raw", show_default=True,
              help="raw = distance in code space (InterFaceGAN); std = multiples of the codes' spread along it.")
@click.option("--layers", default=None,
              help="W+ layers to move: all, coarse, middle, fine (join with +), or indices like 0-3.  "
                   "[default: the direction's own layers, else all]")
@click.option("--network", default=None, help=_NETWORK_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The strip (.png); the edited codes go beside it as .npz.")
@click.option("--video", is_flag=True, help="Also write a video sweeping alpha (same name, .mp4).")
@click.option("--frames", type=click.IntRange(2, 10_000), default=60, show_default=True, help="Video frames each way.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def edit_cmd(codes, direction, alphas, units, layers, network, out, video, frames, device):
    """Move codes along a direction and render a strip: one row per code, one column per alpha.

    Codes from `latentlab project` render with their own noise maps, so alpha 0 is the projection itself.
    A Z direction moves the z of codes from `latentlab generate`.

    Examples:

    \b
        latentlab edit proj/photo.npz --direction smile --alpha -3:3:7 --out smile.png --video
        latentlab edit codes.npz --direction dirs/pc0.npy --units std --alpha -2:2:5 --layers coarse --out pc0.png
    """
    import numpy as np

    from ..edit.codes import load_codes
    from ..edit.figures import edited_codes, render_strip
    from ..edit.ops import parse_alphas
    from ..io import save_image, save_latents, write_video
    from ..registry import load_generator
    from ..validate import float_tensor

    check_output(out, "--out")
    steps = parse_alphas(alphas)
    network = _network_name(network, _peek_metas(codes))
    G = load_generator(network, device=device)
    c = load_codes(list(codes), G)
    d = _load_direction(direction, network, G)
    if units == "std":
        if d.std is None:
            raise ValueError(f"direction {d.name!r} records no std; use --units raw")
        steps = [a * d.std for a in steps]
    noise = c.noise if d.space != "z" else None  # a moved z makes a new image: its own noise no longer fits
    ws = edited_codes(G, d, steps, c.ws, c.z, layers)
    float_tensor(ws, "the edited codes")  # checked before anything is written: they are saved beside the strip
    strip, _ = render_strip(G, ws, noise, progress=True)
    save_image(out, strip)
    meta = {"network": network, "direction": d.name, "direction_space": d.space, "alphas": steps,
            "layers": layers, "codes": c.names, "source": "latentlab edit"}  # fmt: skip
    save_latents(out.with_suffix(".npz"), ws.flatten(0, 1), meta=meta)
    click.echo(f"{d.describe()}\nwrote {out} ({len(c.names)} codes x {len(steps)} alphas: "
               f"{', '.join(f'{a:g}' for a in steps)}) and {out.with_suffix('.npz')}")  # fmt: skip
    if video:
        lo, hi = min(steps), max(steps)
        there_and_back = [*np.linspace(lo, hi, frames), *np.linspace(hi, lo, frames)]
        _, px = render_strip(G, edited_codes(G, d, there_and_back, c.ws, c.z, layers), noise, progress=True)
        frames_px = np.concatenate(list(px), axis=2)  # [T, R, N*R, 3]: the codes side by side
        click.echo(f"wrote {write_video(out.with_suffix('.mp4'), frames_px)}")


@click.command("mix")
@click.option("--rows", default=None, help="Source B: .npz files, comma-separated (each adds all its codes).")
@click.option("--cols", default=None, help="Source A: .npz files, comma-separated.")
@click.option("--row-seeds", default=None, help="Source B from seeds instead, e.g. 1,2,5-6.")
@click.option("--col-seeds", default=None, help="Source A from seeds instead.")
@click.option("--styles", multiple=True, default=None,
              help="Layers copied from B, one block of rows each: coarse, middle, fine, or indices; repeatable.  "
                   "[default: each of coarse, middle, fine that the network has]")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation for seed codes.")
@click.option("--network", default=None, help=_NETWORK_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The grid (.png).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def mix_cmd(rows, cols, row_seeds, col_seeds, styles, psi, network, out, device):
    """Style-mixing grid as in the StyleGAN paper's Figure 3: sources A with the styles of sources B.

    Each cell is its column's source A with its row's source B codes on the chosen layers (one block of
    rows per --styles).

    Examples:

    \b
        latentlab mix --rows a.npz,b.npz --cols c.npz,d.npz --styles coarse --out grid.png
        latentlab mix --row-seeds 1-3 --col-seeds 10-15 --trunc 0.7 --out mixing.png
    """
    from ..edit.codes import load_codes, seed_codes
    from ..edit.figures import mixing_figure
    from ..io import save_image
    from ..registry import load_generator
    from ..utils import parse_int_list

    if (rows is None) == (row_seeds is None) or (cols is None) == (col_seeds is None):
        raise click.UsageError("give one of --rows and --row-seeds, and one of --cols and --col-seeds")
    check_output(out, "--out")
    files = [p for p in (rows or "").split(",") + (cols or "").split(",") if p]
    network = _network_name(network, _peek_metas(files) if files else None)
    G = load_generator(network, device=device)

    def source(files_text, seeds_text):
        if seeds_text is not None:
            return seed_codes(G, parse_int_list(seeds_text), psi)
        return load_codes([p for p in files_text.split(",") if p], G)

    if not styles:
        from ..edit.ops import GROUPS
        from ..nn.wplus import layer_group

        styles = [g for g in GROUPS if any(layer_group(i) == g for i in range(G.num_ws))]
    b, a = source(rows, row_seeds), source(cols, col_seeds)
    save_image(out, mixing_figure(G, a.ws, b.ws, styles, progress=True))
    click.echo(f"wrote {out}: {len(a.names)} columns ({', '.join(a.names)}) x {len(b.names)} rows "
               f"({', '.join(b.names)}) x styles {', '.join(styles)}")  # fmt: skip


def _split_endpoint(text: str) -> tuple[str, int]:
    """``"a.npz:3"`` -> ``("a.npz", 3)``; ``"a.npz"`` -> ``("a.npz", 0)``."""
    path, sep, k = text.rpartition(":")
    return (path, int(k)) if sep and k.isdigit() and path.endswith(".npz") else (text, 0)


def _endpoint(text: str, G, psi: float):
    """An interpolation end: an integer seed, or an .npz file's first code (FILE.npz:K picks code K)."""
    from ..edit.codes import load_codes, seed_codes

    if text.isdigit():
        return seed_codes(G, [int(text)], psi), f"seed {text}"
    path, i = _split_endpoint(text)
    c = load_codes([path], G)
    if not 0 <= i < c.ws.shape[0]:
        raise ValueError(f"{path} has {c.ws.shape[0]} codes; index {i} is out of range")
    c.ws, c.z = c.ws[i : i + 1], None if c.z is None else c.z[i : i + 1]
    return c, c.names[i]


@click.command("interpolate")
@click.argument("a")
@click.argument("b")
@click.option("--steps", type=click.IntRange(2, 10_000), default=60, show_default=True,
              help="Frames, both ends included.")
@click.option("--space", type=click.Choice(["auto", "w", "z"]), default="auto", show_default=True,
              help="z = slerp the latents of two seeds; w = lerp the W+ codes; auto = z for two seeds, else w.")
@click.option("--method", type=click.Choice(["auto", "lerp", "slerp"]), default="auto", show_default=True,
              help="auto = slerp in Z, lerp in W.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation for seed codes.")
@click.option("--network", default=None, help=_NETWORK_HELP)
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write an .mp4.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a strip of 8 evenly spaced frames (.png).")
@click.option("--fps", type=click.IntRange(1, 240), default=30, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def interpolate_cmd(a, b, steps, space, method, psi, network, video, out, fps, device):
    """Interpolate between two codes: A and B are .npz files (FILE.npz:K picks code K) or seeds.

    Examples:

    \b
        latentlab interpolate proj/photo.npz proj/other.npz --steps 60 --video morph.mp4
        latentlab interpolate 3 7 --space z --video seeds.mp4 --out seeds.png
    """
    import numpy as np

    from ..edit.figures import grid, interpolation_frames
    from ..io import save_image, write_video
    from ..registry import load_generator

    if video is None and out is None:
        raise click.UsageError("give --video and/or --out")
    check_output(video, "--video", (".mp4",))
    check_output(out, "--out")
    files = [_split_endpoint(x)[0] for x in (a, b) if not x.isdigit()]
    network = _network_name(network, _peek_metas(files) if files else None)
    G = load_generator(network, device=device)
    (ca, na), (cb, nb) = _endpoint(a, G, psi), _endpoint(b, G, psi)
    if space == "auto":
        space = "z" if ca.z is not None and cb.z is not None and a.isdigit() and b.isdigit() else "w"
    if method == "auto":
        method = "slerp" if space == "z" else "lerp"
    if space == "z":
        if ca.z is None or cb.z is None:
            raise ValueError("--space z needs two seeds or codes files with z arrays (latentlab generate)")
        frames = interpolation_frames(G, ca.z[0], cb.z[0], steps, method, "z", psi, progress=True)
    else:
        frames = interpolation_frames(G, ca.ws[0], cb.ws[0], steps, method, "w", progress=True)
    if video is not None:
        click.echo(f"wrote {write_video(video, frames, fps=fps)}")
    if out is not None:
        pick = np.linspace(0, steps - 1, min(8, steps)).round().astype(int)
        click.echo(f"wrote {save_image(out, grid(frames[pick], cols=len(pick)))}")
    click.echo(f"{na} -> {nb}: {steps} frames, {method} in {space.upper()}")


@click.command("noise")
@click.argument("codes", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--draws", type=click.IntRange(2, 10_000), default=32, show_default=True, help="Noise draws per code.")
@click.option("--shown", type=click.IntRange(1, 1000), default=4, show_default=True, help="Draws shown per row.")
@click.option("--layers", "layer_sets", multiple=True, default=("all",), show_default=True,
              help="Layers that get noise (the rest get none): all, coarse, middle, fine, indices; repeatable, one "
                   "row each.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--network", default=None, help=_NETWORK_HELP)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The figure (.png).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def noise_cmd(codes, draws, shown, layer_sets, seed, network, out, device):
    """Stochastic variation as in the StyleGAN paper's Figures 4-5: many noise draws per code.

    Each row shows some draws and the per-pixel standard deviation over all of them as a heat map (one
    shared scale), with noise on the --layers given and none on the others.

    Examples:

    \b
        latentlab noise codes.npz --draws 32 --out noise.png
        latentlab noise codes.npz --layers all --layers coarse --layers fine --out noise-layers.png
    """
    from ..edit.codes import load_codes
    from ..edit.figures import noise_figure
    from ..io import save_image
    from ..registry import load_generator

    check_output(out, "--out")
    network = _network_name(network, _peek_metas(codes))
    G = load_generator(network, device=device)
    c = load_codes(list(codes), G)
    fig, means = noise_figure(G, c.ws, draws=draws, shown=shown, layer_sets=list(layer_sets), seed=seed)
    save_image(out, fig)
    click.echo(f"wrote {out}; mean per-pixel std over {draws} draws: "
               + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))  # fmt: skip
