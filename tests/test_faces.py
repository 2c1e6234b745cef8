"""FFHQ alignment, the crop transform file, paste-back, the dlib landmarks and ``latentlab align``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import cli
from latentlab.data import synthfaces as sf
from latentlab.faces import (
    FFHQ,
    AlignError,
    AlignTransform,
    Template,
    align_image,
    align_photos,
    face_mask,
    ffhq_quad,
    keypoints_from_68,
    load_photo,
    paste_back,
    read_landmarks_file,
)
from latentlab.validate import InvalidInput


def similarity(angle_deg: float, scale: float, t: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, t[0]], [s, c, t[1]]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]


# --- geometry -----------------------------------------------------------------------------------------------


def test_ffhq_quad_known_answer():
    # eyes (0,0) (2,0), mouth (0.5,2) (1.5,2): e2e (2,0), e2m (0,2); x = (2,0) - (2,0)*[-1,1] = (4,0), |x| =
    # max(2*2, 1.8*2) = 4; y = (0,4); c = (1,0) + 0.1*(0,2) = (1,0.2).
    quad, qsize = ffhq_quad([[0, 0], [2, 0], [0.5, 2], [1.5, 2]])
    np.testing.assert_allclose(quad, [[-3, -3.8], [-3, 4.2], [5, 4.2], [5, -3.8]])
    assert qsize == pytest.approx(8.0)
    # The mouth term wins when the face is long: |e2m| = 4 -> 1.8*4 = 7.2 > 2*2.
    _, qsize = ffhq_quad([[0, 0], [2, 0], [0.5, 4], [1.5, 4]])
    assert qsize == pytest.approx(14.4)
    quad, _ = ffhq_quad([[0, 0], [2, 0], [0.5, 2], [1.5, 2]], Template("x", 2.0, 0.5))
    np.testing.assert_allclose(quad.mean(0), [1.0, 1.0])  # centre shifted half an eye-to-mouth
    assert np.ptp(quad[:, 0]) == pytest.approx(16.0)


def test_ffhq_quad_is_similarity_equivariant():
    rng = np.random.default_rng(0)
    kp = np.array([[40.0, 50.0], [60.0, 52.0], [43.0, 75.0], [58.0, 76.0]])
    q0, s0 = ffhq_quad(kp)
    for _ in range(5):
        m = similarity(rng.uniform(-60, 60), rng.uniform(0.3, 4), tuple(rng.uniform(-100, 100, 2)))
        q1, s1 = ffhq_quad(apply(m, kp))
        np.testing.assert_allclose(q1, apply(m, q0), atol=1e-9)
        assert s1 == pytest.approx(s0 * math.hypot(*m[:, 0]))


def test_keypoints_from_68_uses_ffhq_points():
    lm = np.zeros((68, 2), np.int64)  # integers, as dlib reports them
    lm[36:42] = [[10, 20]] * 3 + [[12, 22]] * 3
    lm[42:48] = 30
    lm[48] = [15, 40]
    lm[54] = [25, 41]
    np.testing.assert_allclose(keypoints_from_68(lm), [[11, 21], [30, 30], [15, 40], [25, 41]])
    with pytest.raises(InvalidInput, match=r"\[68, 2\]"):
        keypoints_from_68(np.zeros((5, 2)))
    with pytest.raises(InvalidInput, match="degenerate"):
        ffhq_quad(np.zeros((4, 2)))
    with pytest.raises(InvalidInput, match="non-finite"):
        ffhq_quad([[0, 0], [np.nan, 0], [0, 1], [1, 1]])


def _dots_photo(h, w, pts, bg=40):
    img = np.full((h, w, 3), bg, np.uint8)
    for p in pts:
        cv2.circle(img, (int(round(p[0] * 16)), int(round(p[1] * 16))), 48, (255, 255, 255), -1, cv2.LINE_AA, 4)
    return img


def _centroid_errors(crop, tr, pts, bg=40):
    g = crop.astype(np.float64).mean(2) - bg
    errs = []
    for u, v in tr.crop_points(pts):
        r = 4 * tr.scale + 3
        u0, u1, v0, v1 = int(u - r), int(u + r) + 1, int(v - r), int(v + r) + 1
        if u0 < 0 or v0 < 0 or u1 > crop.shape[1] or v1 > crop.shape[0]:
            continue
        patch = np.clip(g[v0:v1, u0:u1], 0, None)
        yy, xx = np.mgrid[v0:v1, u0:u1]
        errs.append(math.hypot((patch * xx).sum() / patch.sum() - u, (patch * yy).sum() / patch.sum() - v))
    return errs


@pytest.mark.parametrize("case", ["plain", "shrink", "padding"])
def test_transform_maps_photo_points_to_crop_points(case):
    """Dots drawn at known photo points land where AlignTransform.crop_points says, through FFHQ's shrink
    (a large face), crop and padding (a face at the photo's edge)."""
    rng = np.random.default_rng(1)
    if case == "plain":
        h, w, kp = 900, 1200, np.array([[500.0, 400], [600, 410], [510, 520], [590, 528]])
    elif case == "shrink":  # qsize ~ 1300 px for a 128-px crop: shrink = 5
        h, w, kp = 2000, 2400, np.array([[900.0, 800], [1230, 830], [930, 1160], [1200, 1180]])
    else:  # the face at the top-left corner: the quad leaves the photo
        h, w, kp = 500, 600, np.array([[40.0, 30], [140, 36], [50, 140], [130, 146]])
    centre = kp.mean(0)
    span = np.ptp(kp, axis=0).max() * 1.6
    # Dots stay 50 px inside the photo: FFHQ's padding mirrors and blurs the pixels near its edge.
    lo, hi = np.maximum(centre - span, 50), np.minimum(centre + span, [w - 50, h - 50])
    grid = np.stack(np.meshgrid(np.linspace(0.05, 0.95, 4), np.linspace(0.05, 0.95, 4)), -1).reshape(-1, 2)
    pts = lo + (hi - lo) * (grid + rng.uniform(-0.04, 0.04, grid.shape))  # apart, so that dots never touch
    img = _dots_photo(h, w, pts)
    size = 128 if case == "shrink" else 256
    crop, tr = align_image(img, kp, size, transform_size=1024)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    errs = _centroid_errors(crop, tr, pts)
    assert len(errs) >= 4
    assert max(errs) < 0.15, errs
    # The quad's corners map to the crop's pixel edges, and the round trip is exact.
    np.testing.assert_allclose(tr.crop_points(tr.quad), [[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5] * 2,
                                                         [size - 0.5, -0.5]], atol=1e-9)  # fmt: skip
    np.testing.assert_allclose(tr.source_points(tr.crop_points(pts)), pts, atol=1e-9)


def test_synthfaces_photo_aligns_back_to_the_canonical_crop():
    """A render pasted into a larger photo by a known similarity aligns to the render's own crop: the same
    transform (to 1e-6 px) and the same pixels (the padding region aside)."""
    rng = np.random.default_rng(3)
    face = sf.Face(roll=0.4, yaw=-0.2, smile=0.7, eyes_open=1.0, glasses=1.0)
    render = sf.render(face, 256, 0)
    kp = sf.keypoints(face, 256)
    crop0, tr0 = align_image(render, kp, 256, transform_size=1024)
    for k in range(3):
        m = similarity(rng.uniform(-40, 40), rng.uniform(1.2, 2.5), (0, 0))
        corners = apply(m, [[0, 0], [256, 0], [0, 256], [256, 256]])
        m[:, 2] = -corners.min(0) + rng.uniform(50, 150, 2)
        hw = (apply(m, [[0, 0], [256, 0], [0, 256], [256, 256]]).max(0) + rng.uniform(50, 150, 2)).astype(int)
        bg = rng.integers(0, 256, (hw[1] // 8 + 1, hw[0] // 8 + 1, 3), dtype=np.uint8)
        photo = cv2.resize(bg, (hw[0], hw[1]), interpolation=cv2.INTER_NEAREST)
        photo = cv2.warpAffine(render, m, (hw[0], hw[1]), dst=photo, flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_TRANSPARENT)  # fmt: skip
        crop1, tr1 = align_image(photo, apply(m, kp), 256, transform_size=1024)
        # The recovered transform: photo -> crop composed with render -> photo equals render -> crop.
        corners = [[0, 0], [255, 0], [0, 255], [255, 255]]
        err = np.abs(tr1.crop_points(apply(m, tr0.source_points(corners))) - corners).max()
        assert err < 1e-6, (k, err)
        inner = (slice(40, 216), slice(40, 216))  # inside the render, away from its padded border
        diff = np.abs(crop1[inner].astype(int) - crop0[inner].astype(int))
        psnr = 10 * math.log10(255**2 / max((diff.astype(float) ** 2).mean(), 1e-9))
        assert psnr > 30, (k, psnr)


def test_synthfaces_template_recovers_the_render_frame():
    """The synthfaces template cuts the average face's render out of a photo as the renderer framed it."""
    from latentlab.faces import SYNTHFACES

    face = sf.Face(eyes_open=1.0)
    render = sf.render(face, 256, 2)
    kp = sf.keypoints(face, 256)
    crop, tr = align_image(render, kp, 256, transform_size=1024, template=SYNTHFACES)
    # The renderer draws 1/8 px (at 256: 0.125) off its frame's grid, hence the tolerance.
    np.testing.assert_allclose(tr.quad, [[-0.5, -0.5], [-0.5, 255.5], [255.5, 255.5], [255.5, -0.5]], atol=0.2)
    m = similarity(-25, 1.8, (300, 120))
    photo = np.full((800, 900, 3), 90, np.uint8)
    photo = cv2.warpAffine(render, m, (900, 800), dst=photo, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)
    back, _ = align_image(photo, apply(m, kp), 256, transform_size=1024, template=SYNTHFACES)
    inner = (slice(16, 240), slice(16, 240))
    mse = ((back[inner].astype(float) - render[inner].astype(float)) ** 2).mean()
    assert 10 * math.log10(255**2 / mse) > 30


def test_transform_file_round_trip_and_refusals(tmp_path):
    img = _dots_photo(300, 400, [])
    kp = np.array([[150.0, 120], [210, 125], [155, 190], [205, 193]])
    lm = np.zeros((68, 2))
    _, tr = align_image(img, kp, 64, transform_size=256, landmarks=lm, box=(1, 2, 3, 4), score=0.9,
                        source_file="a.jpg", source_sha256="ab" * 32)  # fmt: skip
    path = tr.save(tmp_path / "a_0.json")
    back = AlignTransform.load(path)
    np.testing.assert_array_equal(back.quad, tr.quad)
    np.testing.assert_array_equal(back.keypoints, tr.keypoints)
    assert (back.size, back.source_size, back.source_file, back.box, back.score) == (64, (400, 300), "a.jpg",
                                                                                     (1, 2, 3, 4), 0.9)  # fmt: skip
    assert back.template == FFHQ
    d = json.loads(path.read_text())
    cases = {
        "missing": (None, "no alignment file"),
        "not json": ("{oops", "unreadable alignment file"),
        "format": ({**d, "format": "other"}, "not a latentlab alignment file"),
        "version": ({**d, "version": 99}, "version 99"),
        "quad shape": ({**d, "quad": d["quad"][:3]}, "'quad' must be a list of 4 rows"),
        "quad nan": ({**d, "quad": [[float("nan"), 0]] + d["quad"][1:]}, "non-finite"),
        "degenerate": ({**d, "quad": [[1, 1]] * 4}, "degenerate"),
        "width": ({**d, "source": {**d["source"], "width": -3}}, "source.width"),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / f"{name}.json"
        if content is not None:
            p.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(AlignError, match=message):
            AlignTransform.load(p)


# --- paste-back ---------------------------------------------------------------------------------------------


def test_paste_back_keeps_every_pixel_outside_the_mask_and_restores_the_face():
    rng = np.random.default_rng(5)
    face = sf.Face(roll=-0.3, eyes_open=1.0)
    render = sf.render(face, 256, 1)
    m = similarity(12, 1.7, (90, 60))
    photo = rng.integers(0, 256, (640, 720, 3), dtype=np.uint8)
    photo = cv2.warpAffine(render, m, (720, 640), dst=photo, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)
    crop, tr = align_image(photo, apply(m, sf.keypoints(face, 256)), 256, transform_size=1024)
    # An edit: the crop's colours inverted, pasted at the model's resolution (64 px).
    edited = 255 - cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)
    out = paste_back(photo, edited, tr)
    mask64 = face_mask(tr, 64)
    assert out.shape == photo.shape and out.dtype == np.uint8
    changed = np.any(out != photo, axis=2)
    # Outside the mask's footprint nothing changed, bit for bit; inside it did.
    footprint = cv2.warpAffine(mask64, dataclasses_replace(tr, 64).to_crop(), (720, 640),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP) > 0  # fmt: skip
    assert not changed[~cv2.dilate(footprint.astype(np.uint8), np.ones((3, 3))).astype(bool)].any()
    assert changed.sum() > 0.5 * footprint.sum()
    # The unedited crop pasted back reproduces the photo where the mask is full.
    same = paste_back(photo, crop, tr)
    core = cv2.warpAffine(face_mask(tr, 256), tr.to_crop(), (720, 640), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    core = core > 0.99
    err = np.abs(same[core].astype(float) - photo[core].astype(float))
    psnr = 10 * math.log10(255**2 / (err**2).mean())
    assert psnr > 28, psnr
    # Refusals.
    with pytest.raises(AlignError, match="not its photo"):
        paste_back(photo[:-1], crop, tr)
    with pytest.raises(InvalidInput, match="square uint8"):
        paste_back(photo, crop[:, :-1], tr)
    with pytest.raises(InvalidInput, match="mask"):
        paste_back(photo, crop, tr, mask=np.ones((10, 10)))


def dataclasses_replace(tr, size):
    import dataclasses

    return dataclasses.replace(tr, size=size)


def test_face_mask_from_landmarks_and_keypoints():
    kp = np.array([[100.0, 100], [140, 100], [105, 140], [135, 140]])
    img = np.zeros((300, 300, 3), np.uint8)
    _, tr = align_image(img, kp, 128, transform_size=256)
    m = face_mask(tr)
    assert m.shape == (128, 128) and m.dtype == np.float32 and m.min() == 0.0 and m.max() == 1.0
    c = tr.crop_points(kp.mean(0, keepdims=True))[0].round().astype(int)
    assert m[c[1], c[0]] == 1.0 and m[0, 0] == 0.0 and m[-1, -1] == 0.0
    assert face_mask(tr, feather=0).max() == 1.0


# --- photos -------------------------------------------------------------------------------------------------


def test_load_photo_modes_exif_and_limits(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    Image.fromarray(rgb).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).save(tmp_path / "deep.png")
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: the viewer turns it clockwise
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    assert load_photo(tmp_path / "grey.png").shape == (20, 30, 3)
    cmyk = load_photo(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (20, 30, 3) and abs(int(cmyk[10, 2, 0]) - 255) < 12 and cmyk[10, 25].max() < 12
    deep = load_photo(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and deep[-1, -1, 0] == round(599 * 100 * 255 / 65535)
    rot = load_photo(tmp_path / "rotated.jpg")
    assert rot.shape == (30, 20, 3) and rot[2, 10, 0] > 200  # the red band is now on top
    with pytest.raises(AlignError, match="megapixels, more than the limit"):
        load_photo(tmp_path / "grey.png", max_pixels=100)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(AlignError, match="not a readable image"):
        load_photo(tmp_path / "bad.jpg")
    with pytest.raises(AlignError, match="no such photo"):
        load_photo(tmp_path / "nope.jpg")


def test_align_photos_with_landmarks_file(tmp_path):
    face = sf.Face(eyes_open=1.0)
    Image.fromarray(sf.render(face, 256, 0)).save(tmp_path / "big.png")
    Image.fromarray(sf.render(face, 64, 0)).save(tmp_path / "small.png")
    Image.fromarray(sf.render(face, 64, 0)).save(tmp_path / "unlisted.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    pts = {"big.png": [sf.keypoints(face, 256).tolist()], "small.png": [sf.keypoints(face, 64).tolist()],
           "broken.png": [sf.keypoints(face, 64).tolist()]}  # fmt: skip
    (tmp_path / "lm.json").write_text(json.dumps(pts))
    photos = [tmp_path / n for n in ("big.png", "small.png", "unlisted.png", "broken.png")]
    report = align_photos(photos, tmp_path / "out", size=64, landmarks=read_landmarks_file(tmp_path / "lm.json"),
                          min_face=100, transform_size=256)  # fmt: skip
    assert [Path(c.crop).name for c in report.crops] == ["big_0.png"]
    reasons = dict(report.skipped)
    assert "too small" in reasons[str(tmp_path / "small.png")]
    assert "no entry" in reasons[str(tmp_path / "unlisted.png")]
    assert "not a readable image" in reasons[str(tmp_path / "broken.png")]
    tr = AlignTransform.load(tmp_path / "out" / "big_0.json")
    assert tr.source_file == "big.png" and tr.size == 64 and len(tr.source_sha256) == 64
    saved = json.loads((tmp_path / "out" / "align.json").read_text())
    assert len(saved["crops"]) == 1 and len(saved["skipped"]) == 3
    for bad, message in (({"a.png": []}, "non-empty list"), ({"a.png": [[[1, 2]] * 5]}, "68 or 4"), ([], "object")):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(AlignError, match=message):
            read_landmarks_file(tmp_path / "bad.json")


# --- dlib on a real photo -----------------------------------------------------------------------------------


def test_dlib_aligns_the_astronaut_as_ffhq(dlib_landmarks, astronaut):
    img = load_photo(astronaut)
    faces, rejected = dlib_landmarks.detect(img)
    assert len(faces) == 1 and faces[0].score > 0.8
    assert [round(s, 2) for _, s in rejected] == [0.12]  # the mission patch on her suit, under min_score 0.3
    d = faces[0]
    assert 40 < d.eye_distance < 60 and d.box[0] < d.keypoints[0, 0] < d.box[2]
    crop, tr = align_image(img, d.keypoints, 256, landmarks=d.landmarks)
    kp = tr.crop_points(d.keypoints)
    # FFHQ's framing in the crop: the axis eye_to_eye - rot90(eye_to_mouth) horizontal, the point 0.1
    # eye-to-mouths below the eyes' middle at the centre, max(2|e2e|, 1.8|e2m|) half the side.
    e2e, e2m = kp[1] - kp[0], (kp[2] + kp[3]) / 2 - (kp[0] + kp[1]) / 2
    axis = e2e - np.flipud(e2m) * [-1, 1]
    assert abs(axis[1]) < 1e-6 and axis[0] > 0
    assert abs(kp[0, 1] - kp[1, 1]) < 2  # nearly level eyes
    np.testing.assert_allclose((kp[0] + kp[1]) / 2 + 0.1 * e2m, [127.5, 127.5], atol=1e-6)
    assert max(2 * math.hypot(*e2e), 1.8 * math.hypot(*e2m)) == pytest.approx(128.0, rel=1e-6)
    # The detector sees the same face in a turned, enlarged copy: the crops agree to a couple of pixels.
    m = similarity(15, 1.5, (120, -60))
    photo2 = cv2.warpAffine(img, m, (900, 800), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    faces2, _ = dlib_landmarks.detect(photo2)
    crop2, tr2 = align_image(photo2, faces2[0].keypoints, 256)
    corners = np.array([[0, 0], [255, 0], [0, 255], [255, 255]], np.float64)
    err = np.abs(tr2.crop_points(apply(m, tr.source_points(corners))) - corners).max()
    assert err < 4.0, err


def test_cnn_detector_finds_the_same_face(dlib_landmarks, astronaut):
    from latentlab.faces import DlibLandmarks

    img = load_photo(astronaut)
    hog, _ = dlib_landmarks.detect(img)
    cnn, rejected = DlibLandmarks("cnn", upsample=0).detect(img)
    assert len(cnn) == 1 and cnn[0].score > 0.5 and not rejected
    # The same face, so nearly the same FFHQ square (the predictor starts from a different box).
    assert np.abs(ffhq_quad(cnn[0].keypoints)[0] - ffhq_quad(hog[0].keypoints)[0]).max() < 6
    with pytest.raises(InvalidInput, match="unknown face detector"):
        DlibLandmarks("haar")


def test_align_cli_on_the_astronaut(dlib_landmarks, astronaut, tmp_path):
    grey = tmp_path / "grey.png"
    Image.new("RGB", (200, 160), (128, 128, 128)).save(grey)
    r = CliRunner().invoke(cli, ["align", str(astronaut), str(grey), "--outdir", str(tmp_path / "out"), "--size",
                                 "128", "--no-progress", "--transform-size", "512"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "aligned 1 face(s) from 1 of 2 photo(s) at 128x128" in r.output
    assert "grey.png: no face found" in r.output
    assert Image.open(tmp_path / "out" / "astronaut_0.png").size == (128, 128)
    tr = AlignTransform.load(tmp_path / "out" / "astronaut_0.json")
    assert tr.landmarks.shape == (68, 2) and tr.source_size == (512, 512)
    r = CliRunner().invoke(cli, ["align", str(grey), "--outdir", str(tmp_path / "none"), "--no-progress"])
    assert r.exit_code == 1 and "no face aligned in 1 photo(s)" in r.output


def test_align_help_has_an_example():
    r = CliRunner().invoke(cli, ["align", "--help"])
    assert r.exit_code == 0 and "latentlab align photos/ --outdir aligned/" in r.output


def test_model_file_checks(monkeypatch, tmp_path):
    from latentlab.faces import landmarks as lmod

    monkeypatch.setattr(lmod.metadata, "distribution", _raise_not_found)
    with pytest.raises(lmod.LandmarksUnavailable, match=r"pip install 'latentlab\[align\]'"):
        lmod.model_file("shape_predictor_68_face_landmarks.dat")
    with pytest.raises(lmod.LandmarksUnavailable, match="no such dlib model file"):
        lmod.model_file("shape_predictor_68_face_landmarks.dat", tmp_path / "x.dat")


def test_installed_model_file_is_verified(dlib_landmarks, monkeypatch):
    from latentlab.faces import landmarks as lmod

    name = "shape_predictor_68_face_landmarks.dat"
    assert lmod.model_file(name) == dlib_landmarks.predictor_path
    size, _ = lmod.MODEL_FILES[name]
    monkeypatch.setitem(lmod.MODEL_FILES, name, (size, "0" * 64))
    with pytest.raises(lmod.LandmarksUnavailable, match="altered"):
        lmod.model_file(name)
    monkeypatch.setitem(lmod.MODEL_FILES, name, (size + 1, "0" * 64))
    with pytest.raises(lmod.LandmarksUnavailable, match="truncated or replaced"):
        lmod.model_file(name)


def _raise_not_found(name):
    from importlib.metadata import PackageNotFoundError

    raise PackageNotFoundError(name)


def test_flip_averaged_landmarks_pair_the_mirror_points(dlib_landmarks, astronaut):
    from latentlab.faces import DlibLandmarks
    from latentlab.faces.landmarks import FLIP_68

    assert sorted(FLIP_68.tolist()) == list(range(68)) and (FLIP_68[FLIP_68] == np.arange(68)).all()
    assert FLIP_68[36] == 45 and FLIP_68[39] == 42 and FLIP_68[48] == 54 and FLIP_68[30] == 30  # eyes, mouth, nose
    img = load_photo(astronaut)
    plain = dlib_landmarks.detect(img)[0][0]
    both = DlibLandmarks(flip_average=True).detect(img)[0][0]
    assert both.box == plain.box
    # The average of two whole-pixel predictions: halves at most, and close to either alone.
    assert np.allclose((both.landmarks * 2) % 1, 0)
    assert np.abs(both.landmarks - plain.landmarks).max() < 3
    # By hand: the mirrored photo's prediction, mirrored back and re-paired, averaged with the plain one.
    h, w = img.shape[:2]
    b = plain.box
    m = dlib_landmarks._shape(np.ascontiguousarray(img[:, ::-1]), (w - 1 - b[2], b[1], w - 1 - b[0], b[3]))
    m[:, 0] = w - 1 - m[:, 0]
    np.testing.assert_array_equal(both.landmarks, (plain.landmarks + m[FLIP_68]) / 2)


def test_photo_crops_script_pastes_and_aligns_back_to_the_renders_own_crop(tmp_path):
    """benchmarks/photo_crops.py (the shipped encoder's fine-tuning data): each image is reproducible from
    (seed, index), and a photo-like crop shows the same face as the SynthFaces-template crop of the render
    itself; only the borders, where the photo's background shows, may differ."""
    import subprocess
    import sys

    bench = Path(__file__).parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        from photo_crops import photo_crop
    finally:
        sys.path.remove(str(bench))
    from latentlab.faces import SYNTHFACES

    a, b = photo_crop(3, 2000, 64, plain=0.0), photo_crop(3, 2000, 64, plain=0.0)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, photo_crop(4, 2000, 64, plain=0.0))
    face, detail = sf.item(3, seed=2000)
    direct, _ = align_image(sf.render(face, 256, detail), sf.keypoints(face, 256), 64, template=SYNTHFACES)
    centre = (slice(16, 48), slice(16, 48))
    mse = ((a[centre].astype(float) - direct[centre].astype(float)) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 28
    # plain=1: the render itself, in the generator's own framing
    assert np.array_equal(photo_crop(3, 2000, 64, plain=1.0), sf.render(face, 64, detail))
    r = subprocess.run([sys.executable, str(bench / "photo_crops.py"), "--count", "2", "--seed", "1000",
                        "--out", str(tmp_path)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode != 0 and "held-out" in r.stderr
