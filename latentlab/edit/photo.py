"""Photo in, edited photo out: align the face, invert it (W, W+ or PTI), edit the code, paste the face back.

:func:`edit_photo` is ``latentlab edit-photo``. The steps, each a function of its own elsewhere:

1. the photo is read (:func:`~latentlab.faces.load_photo`: EXIF, grey, CMYK, 16-bit, size bounded) and its
   faces found (:class:`~latentlab.faces.DlibLandmarks`) unless keypoints are given;
2. the chosen face is cut at the model's resolution with its transform (:func:`~latentlab.faces.align_image`,
   FFHQ's procedure with the model's framing);
3. the crop is inverted: projected into W or W+ (:func:`~latentlab.projection.project_batch`), or tuned
   around a W pivot (:func:`~latentlab.projection.tune.tune`, PTI);
4. the code moves along the direction (:func:`~latentlab.edit.ops.edit`) and is rendered with the inversion's
   own noise (or the tuned model's constant noise);
5. the edited face goes back into the photo through the inverse transform and a feathered face mask
   (:func:`~latentlab.faces.paste_back`): pixels outside the mask are the input's, bit for bit.

Two ways to put the face back (``blend``): ``"replace"`` pastes the edited rendering itself, the usual way
(PTI, e4e's notebooks), so the face is as sharp as the model; ``"delta"`` adds only what the edit changed
(edited minus unedited rendering, enlarged) to the photo's own face at the photo's resolution, which keeps
the photo's detail where the edit changes nothing: a low-resolution model can then edit a large photo.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..faces import FFHQ, AlignError, AlignTransform, Template, align_image, load_photo, paste_back
from ..faces.geometry import check_keypoints, ffhq_quad, keypoints_from_68
from ..faces.paste import FEATHER
from ..faces.photos import MAX_PIXELS
from ..io.images import from_uint8, to_uint8
from ..nn.generator import Generator
from ..validate import InvalidInput, number, string
from .directions import Direction
from .ops import edit

METHODS = ("w", "w+", "tune")
BLENDS = ("replace", "delta")
DELTA_MAX_SIDE = 1024  # the largest crop "delta" works at (the face's footprint in the photo, at most this)


@dataclass
class PhotoEdit:
    """The result of :func:`edit_photo`.

    Attributes:
        photo: uint8 ``[H, W, 3]`` the edited photo, the input's size.
        crop: uint8 ``[R, R, 3]`` the aligned face at the model's resolution (the inversion's target).
        reconstruction: uint8 ``[R, R, 3]`` the inversion's rendering (before the edit).
        edited: uint8 ``[R, R, 3]`` the edited rendering.
        transform: the crop's :class:`~latentlab.faces.AlignTransform` (``transform.save`` writes it).
        ws: ``[1, num_ws, w_dim]`` the inverted code; ``edited_ws`` the moved one (CPU).
        noise: the inversion's noise maps (one ``[1, 1, r, r]`` per layer or None), None for PTI.
        G: the generator the codes render on: the base, or the tuned copy with ``method="tune"``.
        faces: how many faces the photo has (the detector's count, or the keypoints given).
        meta: JSON-ready: the method, the direction, the alpha, the distances and seconds of each step.
    """

    photo: np.ndarray
    crop: np.ndarray
    reconstruction: np.ndarray
    edited: np.ndarray
    transform: AlignTransform
    ws: Tensor
    edited_ws: Tensor
    noise: list[Tensor | None] | None
    G: Generator
    faces: int
    meta: dict[str, Any] = field(default_factory=dict)


def find_face(
    image: np.ndarray, keypoints: Any = None, detector: Any = None, face: int = 0, name: str = "the photo"
) -> tuple[np.ndarray, np.ndarray | None, tuple | None, float | None, int]:
    """One face of a photo: ``(keypoints [4, 2], landmarks [68, 2] or None, box, score, faces found)``.

    Args:
        image: uint8 RGB ``[H, W, 3]``.
        keypoints: ``[4, 2]`` FFHQ keypoints or ``[68, 2]`` dlib landmarks of the face, or a list of such
            (one per face); None = find them with ``detector``.
        detector: a :class:`~latentlab.faces.DlibLandmarks` (built with defaults when None).
        face: which face, largest first (0 = the largest).
    Raises:
        AlignError: no face, or fewer than ``face + 1``.
    """
    if keypoints is not None:
        arr = np.asarray(keypoints, np.float64)
        given = [arr] if arr.ndim == 2 else list(arr)
        faces = []
        for a in given:
            lm = a if a.shape == (68, 2) else None
            kp = keypoints_from_68(a) if lm is not None else check_keypoints(a)
            pts = lm if lm is not None else kp
            faces.append((kp, lm, (*pts.min(0).tolist(), *pts.max(0).tolist()), None))
        faces.sort(key=lambda f: -ffhq_quad(f[0])[1])
    else:
        if detector is None:
            from ..faces import DlibLandmarks

            detector = DlibLandmarks()
        found, rejected = detector.detect(image)
        faces = [(d.keypoints, d.landmarks, d.box, d.score) for d in found]
        if not faces:
            low = f"; {len(rejected)} scored under min_score {detector.min_score:g}" if rejected else ""
            raise AlignError(f"no face found in {name} (dlib {detector.kind} detector{low}; profiles and faces "
                             f"under about 40 px are missed: try the cnn detector or give the landmarks)")  # fmt: skip
    if face >= len(faces):
        raise AlignError(f"{name} has {len(faces)} face(s); face {face} asked for (0 = the largest)")
    kp, lm, box, score = faces[face]
    return kp, lm, box, score, len(faces)


def invert(
    G: Generator,
    target: Tensor,
    method: str = "w",
    *,
    steps: int | None = None,
    loss: Any = "auto",
    lpips: Any = None,
    tune_config: Any = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Tensor, list[Tensor | None] | None, Generator, dict[str, Any]]:
    """Invert one aligned face: ``(ws [1, num_ws, w_dim], noise or None, the generator to render on, meta)``.

    Args:
        G: the generator.
        target: ``[1, C, R, R]`` in [-1, 1] at G's resolution.
        method: ``"w"`` / ``"w+"`` (the projector, 1000 steps, noise optimized) or ``"tune"`` (PTI: a W pivot
            of 450 steps at lr 5e-3 with G's constant noise, then :func:`~latentlab.projection.tune.tune`).
        steps: the projector's steps (default 1000, PTI's pivot 450).
        loss: the projector's distance (a name of :data:`~latentlab.perceptual.LOSSES` or a module).
        lpips: PTI's LPIPS module (default LPIPS-AlexNet, seen at 64 px or more).
        tune_config: a :class:`~latentlab.projection.tune.TuneConfig` (default: PTI's, with the early stop of
            :func:`~latentlab.projection.tune.auto_lpips_threshold` for G's resolution).
        seed: seeds the projector (and the locality samples unless ``tune_config`` says otherwise).
    """
    from ..perceptual import LPIPSLoss, build_loss
    from ..projection import ProjectConfig, project_batch
    from ..projection.tune import TuneConfig, auto_lpips_threshold, pivot_config, tune

    string(method, "method", choices=METHODS)
    device = G.w_avg.device
    loss_module = build_loss(loss, resolution=G.img_resolution, log=None) if isinstance(loss, str) else loss
    loss_module = loss_module.to(device)
    name = getattr(loss_module, "name", "loss")
    t0 = time.perf_counter()
    if method == "tune":
        pconfig = pivot_config(seed, 450 if steps is None else steps, loss=name)
    else:
        pconfig = ProjectConfig(space=method, steps=1000 if steps is None else steps, seed=seed, loss=name)
    proj = project_batch(G, target.to(device, torch.float32), loss_module, pconfig)
    meta: dict[str, Any] = {"method": method, "projector": {"space": pconfig.space, "steps": pconfig.steps,
                                                            "lr": pconfig.lr, "loss": name,
                                                            "seconds": round(time.perf_counter() - t0, 3)}}  # fmt: skip
    if method != "tune":
        return proj.ws, proj.noise, G, meta
    if lpips is None:
        lpips = LPIPSLoss("alex", min_side=64 if G.img_resolution < 64 else None)
    lpips = lpips.to(device)
    if tune_config is None:
        config = TuneConfig(seed=seed, lpips_threshold=auto_lpips_threshold(G.img_resolution))
    else:
        config = tune_config
    result = tune(G, target, proj.ws, lpips, config, progress=progress)
    meta["tune"] = {**result.meta(), "pivot_lpips": result.history[0][1], "pivot_l2": result.history[0][2]}
    return result.pivot, None, result.G, meta


def edit_photo(
    photo: str | os.PathLike | np.ndarray,
    G: Generator,
    direction: Direction,
    alpha: float,
    *,
    units: str = "std",
    layers: Any = None,
    method: str = "w",
    steps: int | None = None,
    loss: Any = "auto",
    lpips: Any = None,
    tune_config: Any = None,
    keypoints: Any = None,
    detector: Any = None,
    face: int = 0,
    template: Template = FFHQ,
    blend: str = "replace",
    feather: float = FEATHER,
    seed: int = 0,
    max_pixels: int = MAX_PIXELS,
    progress: bool = False,
) -> PhotoEdit:
    """Edit the face in a photo along ``direction`` and put it back (``latentlab edit-photo``).

    Args:
        photo: a file (any format Pillow reads) or uint8 RGB ``[H, W, 3]``.
        G: the generator (base or tuned; its device is used).
        direction: a W or W+ :class:`~latentlab.edit.directions.Direction` of this model (checked).
        alpha: the step along it, in ``units``.
        units: ``"std"`` = multiples of the direction's spread over the model's codes (the demo's units);
            ``"raw"`` = distance in W.
        layers: the W+ layers moved (:func:`~latentlab.edit.ops.layer_indices`); None = the direction's own.
        method: ``"w"``, ``"w+"`` or ``"tune"`` (PTI), see :func:`invert`.
        steps, loss, lpips, tune_config, seed: see :func:`invert`.
        keypoints: the face's ``[4, 2]`` keypoints or ``[68, 2]`` landmarks in the photo (a list for several
            faces); None = dlib finds them (``detector``).
        face: which face, largest first.
        template: the model's framing (:data:`~latentlab.faces.FFHQ` for FFHQ models,
            :data:`~latentlab.faces.SYNTHFACES` for the embedded one).
        blend: ``"replace"`` or ``"delta"`` (module docstring).
        feather: the face mask's soft edge (:func:`~latentlab.faces.face_mask`).
        max_pixels: photos with more pixels are refused unread.
    Returns:
        :class:`PhotoEdit`.
    Raises:
        AlignError: an unreadable or too large photo, no face.
        InvalidInput: a bad argument (a Z direction, a direction without std with ``units="std"``, ...).
    """
    string(units, "units", choices=("std", "raw"))
    string(blend, "blend", choices=BLENDS)
    string(method, "method", choices=METHODS)
    alpha = float(number(alpha, "alpha", low=-1e4, high=1e4))
    if direction.space == "z":
        raise InvalidInput(f"direction {direction.name!r} is a Z direction; a photo's code is in W: use a W or "
                           f"W+ direction")  # fmt: skip
    direction.check_model(G)
    if units == "std":
        if direction.std is None:
            raise InvalidInput(f"direction {direction.name!r} records no std; use units='raw' (--units raw)")
        step = alpha * direction.std
    else:
        step = alpha
    name = "the photo"
    if isinstance(photo, np.ndarray):
        image = photo
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInput(f"the photo must be uint8 RGB [H, W, 3], got dtype {image.dtype} "
                               f"shape {list(image.shape)}")  # fmt: skip
        source_file = ""
    else:
        name = str(photo)
        image = load_photo(photo, max_pixels)
        source_file = os.path.basename(name)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    kp, lm, box, score, n_faces = find_face(image, keypoints, detector, face, name)
    res = G.img_resolution
    crop, tr = align_image(image, kp, res, template=template, landmarks=lm, box=box, score=score,
                           source_file=source_file)  # fmt: skip
    timings["align"] = time.perf_counter() - t0
    target = from_uint8(crop)
    if G.img_channels == 1:
        target = target.mean(1, keepdim=True)
    ws, noise, Gr, meta = invert(G, target, method, steps=steps, loss=loss, lpips=lpips, tune_config=tune_config,
                                 seed=seed, progress=progress)  # fmt: skip
    ws = ws.detach().cpu()
    moved = edit(ws, direction, step, layers)
    device = Gr.w_avg.device
    with torch.no_grad():
        both = torch.cat([ws, moved]).to(device)
        kw: dict[str, Any] = {"noise_mode": "const"}
        if noise is not None:
            kw["noise"] = [None if n is None else n.to(device).expand(2, -1, -1, -1) for n in noise]
        imgs = Gr.synthesis(both, **kw)
        if imgs.shape[1] == 1:
            imgs = imgs.expand(-1, 3, -1, -1)
    recon, edited = to_uint8(imgs.cpu())
    t1 = time.perf_counter()
    out = paste_edit(image, kp, tr, recon, edited, template, feather, blend)
    timings["paste"] = time.perf_counter() - t1
    meta.update({"direction": direction.name, "alpha": alpha, "units": units, "step": step, "layers": layers,
                 "blend": blend, "faces": n_faces, "face": face,
                 "seconds": {k: round(v, 3) for k, v in timings.items()}})  # fmt: skip
    return PhotoEdit(out, crop, recon, edited, tr, ws, moved.detach().cpu(), noise, Gr, n_faces, meta)


def paste_edit(image: np.ndarray, kp: Any, tr: AlignTransform, recon: np.ndarray, edited: np.ndarray,
               template: Template = FFHQ, feather: float = FEATHER, blend: str = "delta") -> np.ndarray:  # fmt: skip
    """Put an edited crop back into its photo (``edit_photo``'s last step; the editor's photo export).

    Args:
        image: the photo, uint8 RGB ``[H, W, 3]``.
        kp: the face's ``[4, 2]`` keypoints in the photo; ``tr`` its crop's :class:`AlignTransform`.
        recon, edited: uint8 ``[R, R, 3]``: the model's rendering of the crop's code before and after the edit.
        blend: ``"replace"`` pastes ``edited`` itself; ``"delta"`` adds ``edited - recon`` (enlarged) to the
            photo's own crop at the face's size, so the photo's detail stays where the edit changes nothing.
    Returns:
        uint8 ``[H, W, 3]``; outside the face mask, the photo's own pixels.
    """
    string(blend, "blend", choices=BLENDS)
    if blend == "replace":
        return paste_back(image, edited, tr, feather=feather)
    return _paste_delta(image, kp, tr, recon, edited, template, feather)


def _paste_delta(image, kp, tr, recon, edited, template, feather) -> np.ndarray:
    """Add the edit (``edited - recon``, enlarged) to the photo's own crop at its footprint's size, paste that."""
    import cv2

    side = int(np.clip(round(tr.size / tr.scale), tr.size, DELTA_MAX_SIDE))  # the face square in photo pixels
    own, tr_hr = align_image(image, kp, side, template=template, landmarks=tr.landmarks, box=tr.box,
                             score=tr.score, source_file=tr.source_file)  # fmt: skip
    delta = edited.astype(np.float32) - recon.astype(np.float32)
    if side != delta.shape[0]:
        delta = cv2.resize(delta, (side, side), interpolation=cv2.INTER_CUBIC)
    moved = np.clip(np.rint(own.astype(np.float32) + delta), 0, 255).astype(np.uint8)
    return paste_back(image, moved, dataclasses.replace(tr_hr, size=side), feather=feather)
