"""SynthFaces: determinism, what each factor changes (and what it leaves alone), the dataset zip."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import cli
from latentlab.data.synthfaces import FACTORS, Face, render, render_item, sample_factors, write_dataset
from latentlab.train import ImageDataset

R = 64
BASE = Face()  # frontal, no roll: the regions below are in its image coordinates


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[R, R]`` bool: pixels that differ by more than 2 levels in any channel."""
    return (np.abs(a.astype(int) - b.astype(int)) > 2).any(axis=2)


def _box(x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((R, R), bool)
    m[int(y0 * R) : int(np.ceil(y1 * R)), int(x0 * R) : int(np.ceil(x1 * R))] = True
    return m


MOUTH = _box(0.38, 0.53, 0.62, 0.70)
EYES = _box(0.25, 0.36, 0.75, 0.52)
CENTER = _box(0.45, 0.48, 0.55, 0.57)  # the nose: skin in every face


def test_deterministic_and_detail_only_from_the_seed():
    a = render(BASE, R, seed=3)
    assert a.shape == (R, R, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render(BASE, R, seed=3))
    b = render(BASE, R, seed=4)
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() > 0 and diff.mean() < 4  # detail moves a little, the face stays


@pytest.mark.parametrize(
    ("factor", "value", "region"),
    [("smile", 0.95, MOUTH), ("smile", 0.0, MOUTH), ("glasses", 1.0, EYES), ("eyes_open", 0.0, EYES)],
)
def test_local_factors_change_only_their_region(factor, value, region):
    a = render(BASE, R, seed=1)
    b = render(dataclasses.replace(BASE, **{factor: value}), R, seed=1)
    changed = _changed(a, b)
    assert changed.sum() >= 8, "the factor should visibly change the image"
    assert not (changed & ~region).any(), f"{factor} changed pixels outside its region"


def test_global_factors_change_what_they_should():
    a = render(BASE, R, seed=1)
    bg = render(dataclasses.replace(BASE, bg_hue=0.1), R, seed=1)
    assert _changed(a, bg)[:6, :6].all() and not _changed(a, bg)[CENTER].any()  # corners, not the face
    skin = render(dataclasses.replace(BASE, skin_tone=0.9), R, seed=1)
    assert _changed(a, skin)[CENTER].mean() > 0.9 and not _changed(a, skin)[:6, :6].any()
    assert skin[CENTER].mean() < a[CENTER].mean() - 60  # darker skin
    hair = render(dataclasses.replace(BASE, hair_color=0.8), R, seed=1)
    assert not _changed(a, hair)[CENTER].any() and _changed(a, hair).sum() > 100
    lit = render(dataclasses.replace(BASE, light_dir=1.0), R, seed=1)
    face = _box(0.3, 0.42, 0.7, 0.56)
    cols = face.any(axis=0).nonzero()[0]
    rows = face.any(axis=1).nonzero()[0]
    region = lit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(float)
    half = region.shape[1] // 2
    assert region[:, half:].mean() > region[:, :half].mean() + 15  # lit from the right


def test_pose_moves_the_face():
    a = render(BASE, R, seed=1)
    b = render(dataclasses.replace(BASE, yaw=1.0), R, seed=1)
    c = render(dataclasses.replace(BASE, roll=1.0), R, seed=1)
    assert _changed(a, b)[EYES].mean() > 0.2 and _changed(a, c)[EYES].mean() > 0.2
    assert not _changed(a, c)[-4:, :].any()  # roll turns the head, not the shoulders


def test_factors_sample_and_validate():
    faces = [sample_factors(np.random.default_rng(i)) for i in range(400)]
    v = np.stack([f.vector() for f in faces])
    assert v.shape == (400, len(FACTORS))
    assert set(np.unique(v[:, FACTORS.index("glasses")])) == {0.0, 1.0}
    assert 0.25 < v[:, FACTORS.index("glasses")].mean() < 0.45
    assert -1 <= v[:, 0].min() < -0.9 and 0.9 < v[:, 0].max() <= 1
    assert Face.from_mapping({"smile": 0.7}).attributes()["smiling"] is True
    with pytest.raises(ValueError, match="unknown SynthFaces factor"):
        Face.from_mapping({"beard": 1})
    with pytest.raises(ValueError, match="outside its range"):
        Face.from_mapping({"yaw": 2})


@pytest.mark.parametrize("res", [32, 128])
def test_other_resolutions(res):
    img = render(BASE, res, seed=0)
    assert img.shape == (res, res, 3)
    small = np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.BOX)).astype(int)
    assert np.abs(small - render(BASE, 32, seed=0).astype(int)).mean() < 6  # the same face at any size


def test_dataset_zip_round_trip(tmp_path):
    out = write_dataset(tmp_path / "sf.zip", 6, resolution=32, seed=5, workers=1, progress=False)
    with zipfile.ZipFile(out) as z:
        meta = json.loads(z.read("dataset.json"))
        assert meta["factors"] == list(FACTORS) and meta["synthfaces"] == {"seed": 5, "resolution": 32, "count": 6}
        name, vec = meta["labels"][4]
        assert name == "00000/img00000004.png"
        img, face = render_item(4, 32, seed=5)
        np.testing.assert_allclose(vec, face.vector(), atol=1e-6)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGB")), img)
    ds = ImageDataset(out, use_labels=True)
    assert ds.c_dim == len(FACTORS) and ds.resolution == 32 and ds.num_images == 6
    # A bigger dataset with the same seed extends the smaller one.
    out2 = write_dataset(tmp_path / "sf2.zip", 8, resolution=32, seed=5, workers=2, progress=False)
    with zipfile.ZipFile(out) as a, zipfile.ZipFile(out2) as b:
        assert a.read("00000/img00000005.png") == b.read("00000/img00000005.png")
    with pytest.raises(ValueError, match="32, 64, 128 or 256"):
        write_dataset(tmp_path / "x.zip", 2, resolution=48)


def test_cli_dataset_synth(tmp_path):
    r = CliRunner().invoke(cli, ["dataset", "synth", str(tmp_path / "s.zip"), "--count", "3", "--resolution", "32",
                                 "--workers", "1", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 3 SynthFaces at 32x32" in r.output
    assert ImageDataset(tmp_path / "s.zip").num_images == 3


def test_the_shipped_generator_renders_synthfaces():
    """Loose checks of the embedded model through the shipped classifier (the card has the full figures)."""
    import latentlab
    from latentlab.metrics import wasserstein_1d
    from latentlab.metrics.quality import generated_readout, real_readout
    from latentlab.pretrained import load_classifier

    ck = latentlab.load_checkpoint(latentlab.pretrained.resolve("synthfaces-64"))
    assert ck.G_ema.img_resolution == 64 and ck.D is not None and ck.meta["cur_nimg"] >= 120_000
    clf = load_classifier("synthfaces-64", device="cpu")
    gen, gfeat = generated_readout(ck.G_ema, clf, 200, seed=0)
    real, rfeat = real_readout(clf, 200, 64, dataset_seed=2)
    # Colours and roll are learnt first (interim model at 120 kimg: 0.02-0.05 of the range on 2k samples).
    for factor in ("hair_color", "skin_tone", "roll", "shirt_hue"):
        assert wasserstein_1d(gen[factor], real[factor]) < 0.12, factor
    assert abs((gen["eyes_open"] > 0.5).mean() - (real["eyes_open"] > 0.5).mean()) < 0.35
    assert np.isfinite(gfeat).all() and gfeat.shape == rfeat.shape
