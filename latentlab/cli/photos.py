"""``latentlab align``: a wrapper over :func:`latentlab.faces.align_photos`."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import Finite


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
def align_cmd(photos, outdir, size, largest, template, detector, min_score, min_face, landmarks_file, predictor,
              transform_size, max_pixels, progress):  # fmt: skip
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
    det = None if lms is not None else DlibLandmarks(detector, predictor, min_score=min_score)
    report = align_photos(paths, outdir, size=size, largest=largest, detector=det, landmarks=lms, min_face=min_face,
                          transform_size=transform_size, max_pixels=max_pixels, template=TEMPLATES[template],
                          progress=(lambda xs: tqdm(xs, desc="align", unit="photo")) if progress else None)  # fmt: skip
    for src, why in report.skipped:
        click.echo(f"skipped {src}: {why}", err=True)
    if not report.crops:
        raise click.ClickException(f"no face aligned in {len(paths)} photo(s); see {outdir / 'align.json'}")
    click.echo(f"aligned {len(report.crops)} face(s) from {len({c.source for c in report.crops})} of {len(paths)} "
               f"photo(s) at {size}x{size}; wrote {outdir}")  # fmt: skip
