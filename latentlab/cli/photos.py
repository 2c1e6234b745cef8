"""``latentlab align``: a wrapper over :func:`latentlab.faces.align_photos`."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import SEED, Finite, check_output, device_option, tune_options


@click.command("align")
@click.argument("photos", nargs=-1, required=True)
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <stem>_<k>.png, its transform <stem>_<k>.json, and the report align.json.")
@click.option("--size", type=click.IntRange(8, 16384), default=1024, show_default=True,
              help="Crop side in pixels (FFHQ: 1024; use the model's resolution).")
@click.option("--largest", is_flag=True, help="Keep only the largest face of each photo.")
@click.option("--template", type=click.Choice(["ffhq", "synthfaces"]), default="ffhq", show_default=True,
              help="The framing: ffhq (every FFHQ model) or synthfaces (the embedded SynthFaces models).")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True,
              help="dlib's face detector: hog (fast, frontal) or cnn (slower, finds turned and small faces).")
@click.option("--flip-average", is_flag=True,
              help="Average dlib's landmarks with those of the mirrored photo (steadier; twice the landmark time).")
@click.option("--min-score", type=Finite(-10, 10), default=None,
              help="Skip detections scored below this (default: 0.3 for hog, 0 for cnn).")
@click.option("--min-face", type=Finite(0), default=64, show_default=True,
              help="Skip faces whose crop square is smaller than this many photo pixels.")
@click.option("--landmarks", "landmarks_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help='JSON {"photo.jpg": [face, ...]} with 68 (dlib order) or 4 (eyes, mouth corners) [x, y] points '
                   "per face, instead of the detector.")
@click.option("--predictor", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A dlib shape_predictor_68_face_landmarks.dat instead of the installed one.")
@click.option("--transform-size", type=click.IntRange(8, 16384), default=4096, show_default=True,
              help="FFHQ's intermediate quad-transform side before the final Lanczos resize.")
@click.option("--max-pixels", type=click.IntRange(1, 10**10), default=150_000_000, show_default=True,
              help="Skip photos with more pixels than this, unread.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def align_cmd(photos, outdir, size, largest, template, detector, flip_average, min_score, min_face, landmarks_file,
              predictor, transform_size, max_pixels, progress):  # fmt: skip
    """Align the faces in PHOTOS as NVIDIA aligned FFHQ (NVlabs/ffhq-dataset), one crop per face.

    PHOTOS are files or folders (searched recursively). Faces are found with dlib's detector and its
    68-point predictor (pip install 'latentlab[align]'), or read from --landmarks. Each face gives
    <stem>_<k>.png (k = 0 is the largest) and <stem>_<k>.json, the crop's transform, which
    `latentlab edit-photo` and latentlab.faces.paste_back need to put an edited crop back. Photos
    without a usable face (no face, too small, unreadable, too many pixels) are listed with the reason
    and skipped; align.json records the crops and the skips.

    Examples:

    \b
        latentlab align photos/ --outdir aligned/ --size 1024
        latentlab align group.jpg --outdir aligned/ --largest --detector cnn
        latentlab align render.png --landmarks points.json --outdir aligned/ --size 256
    """
    from tqdm.auto import tqdm

    from ..data.targets import expand_inputs
    from ..faces import TEMPLATES, DlibLandmarks, align_photos, read_landmarks_file

    paths = expand_inputs(photos)
    if not paths:
        raise click.ClickException("no photos found in " + ", ".join(photos))
    lms = read_landmarks_file(landmarks_file) if landmarks_file is not None else None
    det = None if lms is not None else DlibLandmarks(detector, predictor, min_score=min_score,
                                                     flip_average=flip_average)  # fmt: skip
    bar = (lambda xs: tqdm(xs, desc="align", unit="photo", disable=None)) if progress else None  # on a terminal
    report = align_photos(paths, outdir, size=size, largest=largest, detector=det, landmarks=lms, min_face=min_face,
                          transform_size=transform_size, max_pixels=max_pixels, template=TEMPLATES[template],
                          progress=bar)  # fmt: skip
    for src, why in report.skipped:
        click.echo(f"skipped {src}: {why}", err=True)
    if not report.crops:
        raise click.ClickException(f"no face aligned in {len(paths)} photo(s); see {outdir / 'align.json'}")
    click.echo(f"aligned {len(report.crops)} face(s) from {len({c.source for c in report.crops})} of {len(paths)} "
               f"photo(s) at {size}x{size}; wrote {outdir}")  # fmt: skip


@click.command("edit-photo")
@click.argument("photo", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--direction", required=True,
              help="A shipped direction's name (e.g. smile; see `latentlab directions list`) or a .npy file.")
@click.option("--alpha", type=Finite(-1e4, 1e4), default=2.0, show_default=True,
              help="The step along the direction, in --units.")
@click.option("--units", type=click.Choice(["std", "raw"]), default="std", show_default=True,
              help="std = multiples of the direction's spread over the model's codes; raw = distance in W.")
@click.option("--layers", default=None,
              help="W+ layers to move: all, coarse, middle, fine (join with +), or indices like 0-3.  "
                   "[default: the direction's own layers, else all]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The edited photo (.png, .jpg, .webp), the input's size.")
@click.option("--network", default=None, help="Registry name or checkpoint (default: the embedded model).")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="Where the face is projected (without --tune).")
@click.option("--tune", "tune_flag", is_flag=True,
              help="Pivotal tuning (PTI): a W pivot, then the generator tuned to render the face (keeps identity).")
@click.option("--steps", type=click.IntRange(1, 10**6), default=None,
              help="Projector steps [default: 1000; the PTI pivot 450].")
@tune_options
@click.option("--loss", type=click.Choice(["auto", "lpips-vgg", "lpips-alex", "lpips-vgg-256", "ms-ssim", "mse"]),
              default="auto", show_default=True, help="The projector's distance (auto: as `latentlab project`).")
@click.option("--blend", type=click.Choice(["replace", "delta"]), default="replace", show_default=True,
              help="replace = paste the edited rendering; delta = add only the edit's change to the photo's own "
                   "face (keeps its detail when the photo is sharper than the model).")
@click.option("--feather", type=Finite(0, 0.5), default=0.06, show_default=True,
              help="The face mask's soft edge, as a fraction of the crop's side.")
@click.option("--face", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Which face, largest first.")
@click.option("--template", type=click.Choice(["auto", "ffhq", "synthfaces"]), default="auto", show_default=True,
              help="The framing the model was trained with (auto: the registry's, FFHQ for files).")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True,
              help="dlib's face detector (cnn finds turned and small faces).")
@click.option("--flip-average", is_flag=True,
              help="Average dlib's landmarks with those of the mirrored photo (steadier; twice the landmark time).")
@click.option("--landmarks", "landmarks_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON of the face's 68 or 4 points (as `latentlab align --landmarks`) instead of the detector.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the crop, its transform, the renderings, the codes (and the tuned model) here.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the projector.")
@click.option("--max-pixels", type=click.IntRange(1, 10**10), default=150_000_000, show_default=True,
              help="Refuse photos with more pixels than this, unread.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@device_option
def edit_photo_cmd(photo, direction, alpha, units, layers, out, network, space, tune_flag, steps, tune_steps,
                   tune_lpips_threshold, locality, loss, blend, feather, face, template, detector, flip_average,
                   landmarks_file, keep, seed, max_pixels, progress, device):  # fmt: skip
    """Edit the face in a photo and put it back: align, project (or --tune), move, paste.

    The face is found (dlib, or --landmarks), aligned as the model's training faces were, inverted
    (W or W+ projection, or pivotal tuning with --tune), moved --alpha along --direction, rendered,
    and warped back into the photo through a feathered face mask. The result has the input's size;
    every pixel outside the mask is the input's, bit for bit. A photo without a face is an error that
    says so; nothing is written then.

    Examples:

    \b
        latentlab edit-photo me.jpg --direction smile --alpha 2 --tune --out me-smile.jpg
        latentlab edit-photo me.jpg --direction age --alpha -1.5 --blend delta --keep work/ --out younger.png
    """
    import json

    from ..edit.photo import edit_photo
    from ..faces import TEMPLATES, DlibLandmarks, read_landmarks_file
    from ..io import save_image, save_latents
    from ..io.atomic import atomic_path
    from ..projection.tune import TuneConfig, auto_lpips_threshold
    from ..registry import alignment_of, load_generator
    from ..utils import resolve_device
    from .editing import _load_direction, _network_name

    check_output(out, "--out")
    if tune_flag and space != "w":
        raise click.UsageError("--tune tunes around a W pivot (PTI); leave --space at w")
    network = _network_name(network)
    dev = resolve_device(device)
    G = load_generator(network, device=dev)
    d = _load_direction(direction, network, G)
    keypoints = None
    if landmarks_file is not None:
        lms = read_landmarks_file(landmarks_file)
        keypoints = lms.get(photo.name, lms.get(str(photo)))
        if keypoints is None:
            raise click.ClickException(f"{landmarks_file} has no entry for {photo.name!r}")
    tmpl = TEMPLATES[alignment_of(network) if template == "auto" else template]
    threshold = auto_lpips_threshold(G.img_resolution) if tune_lpips_threshold is None else tune_lpips_threshold
    tune_config = TuneConfig(steps=tune_steps, lpips_threshold=threshold, locality=locality, seed=seed)
    r = edit_photo(photo, G, d, alpha, units=units, layers=layers, method="tune" if tune_flag else space,
                   steps=steps, loss=loss, tune_config=tune_config, keypoints=keypoints,
                   detector=None if keypoints is not None else DlibLandmarks(detector, flip_average=flip_average),
                   face=face, template=tmpl, blend=blend, feather=feather, seed=seed, max_pixels=max_pixels,
                   progress=progress)  # fmt: skip
    if keep is not None:
        import numpy as np

        from ..io.latents import noise_arrays
        from ..io.tuned import save_tuned

        keep.mkdir(parents=True, exist_ok=True)
        save_image(keep / "crop.png", r.crop)
        r.transform.save(keep / "crop.json")
        save_image(keep / "compare.png", np.concatenate([r.crop, r.reconstruction, r.edited], axis=1))
        meta = {"network": network, "space": "w" if tune_flag else space, **r.meta}
        if tune_flag:
            record = {**r.meta["tune"], "pivot": r.meta["projector"]}  # as `latentlab tune` records it
            save_tuned(keep / "tuned.safetensors", r.G, G, network, r.ws.to(dev), record, image=str(photo))
            meta["network"] = str(keep / "tuned.safetensors")
        extras = noise_arrays(G, r.noise, 0) if r.noise is not None else {}
        save_latents(keep / "codes.npz", r.ws[0], meta=meta, **extras)
        save_latents(keep / "edited.npz", r.edited_ws[0], meta=meta, **extras)
        with atomic_path(keep / "edit.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=str) + "\n")
    save_image(out, r.photo)
    how = "tuned (PTI)" if tune_flag else f"projected into {space.upper()}"
    click.echo(f"{photo}: face {face} of {r.faces} {how}, moved {alpha:g} {units} along {d.name}; wrote {out}"
               + (f" and {keep}/" if keep is not None else ""))  # fmt: skip


@click.command("paste")
@click.argument("crop", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--transform", "transform_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The crop's transform, <stem>_<k>.json from `latentlab align`.")
@click.option("--photo", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The photo the crop was cut from.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The photo with the face put back (.png, .jpg, .webp).")
@click.option("--feather", type=Finite(0, 0.5), default=0.06, show_default=True,
              help="The face mask's soft edge, as a fraction of the crop's side.")
@click.option("--max-pixels", type=click.IntRange(1, 10**10), default=150_000_000, show_default=True,
              help="Refuse photos with more pixels than this, unread.")
def paste_cmd(crop, transform_file, photo, out, feather, max_pixels):
    """Put an edited crop back into its photo through the crop's transform and a feathered face mask.

    CROP is any square image: the aligned crop after editing, at any size (the model's resolution,
    say). The result has the photo's size; pixels outside the face mask are the photo's, bit for bit.
    A missing or corrupt transform, or a photo of another size than the one it was made from, is
    refused with one line. A photo whose bytes differ from the aligned one (re-saved, say) gets a
    warning.

    Examples:

    \b
        latentlab align me.jpg --outdir aligned/ --size 256
        latentlab paste edited.png --transform aligned/me_0.json --photo me.jpg --out me-edited.jpg
    """
    from ..faces import AlignTransform, load_photo, paste_back
    from ..io import save_image
    from ..io.foreign import file_sha256

    check_output(out, "--out")
    tr = AlignTransform.load(transform_file)
    image = load_photo(photo, max_pixels)
    edited = load_photo(crop, max_pixels)
    if edited.shape[0] != edited.shape[1]:
        raise click.ClickException(f"{crop}: the crop must be square, got {edited.shape[1]}x{edited.shape[0]}")
    if tr.source_sha256 and file_sha256(photo) != tr.source_sha256:
        click.echo(f"warning: {photo} is not byte for byte the file {tr.source_file or 'the transform'} was made "
                   f"from (same size, so it is pasted)", err=True)  # fmt: skip
    save_image(out, paste_back(image, edited, tr, feather=feather))
    click.echo(f"pasted {crop} ({edited.shape[0]} px) into {photo} ({image.shape[1]}x{image.shape[0]}); wrote {out}")
