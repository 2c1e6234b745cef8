"""Photo in, edited photo out: ``latentlab.edit.photo.edit_photo`` and ``latentlab edit-photo``, and
``latentlab project --tune``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import cli
from latentlab.data import synthfaces as sf
from latentlab.edit.directions import Direction, save_direction
from latentlab.edit.photo import edit_photo
from latentlab.faces import SYNTHFACES, AlignError, paste_back
from latentlab.io import load_latents, save_checkpoint
from latentlab.nn.generator import model_fingerprint
from latentlab.perceptual import LPIPSLoss
from latentlab.projection.tune import TuneConfig
from latentlab.validate import InvalidInput

from conftest import tiny_G

M = np.array([[1.2, -0.35, 70.0], [0.35, 1.2, 40.0]])  # the similarity that puts the render into the photo


@pytest.fixture(scope="module")
def photo():
    """A SynthFaces render pasted, turned and enlarged, into a 330x300 striped photo, with its true keypoints."""
    face, detail = sf.item(2, seed=1000)
    render = sf.render(face, 128, detail)
    img = np.full((300, 330, 3), 70, np.uint8)
    img[::5] = 180
    img = cv2.warpAffine(render, M, (330, 300), dst=img, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)
    kp = sf.keypoints(face, 128) @ M[:, :2].T + M[:, 2]
    return img, kp


@pytest.fixture(scope="module")
def model():
    G = tiny_G(2).eval().requires_grad_(False)
    vec = torch.zeros(G.w_dim)
    vec[0] = 1.0
    d = Direction(vec, "smile", "w", "svm", model="tiny", model_hash=model_fingerprint(G), std=0.5)
    return G, d


def _footprint(img, transform):
    """True where a paste through ``transform`` may change the photo (the warped mask > 0)."""
    return paste_back(np.zeros_like(img), np.full((16, 16, 3), 255, np.uint8), transform).any(-1)


def test_edit_photo_edits_the_face_and_keeps_every_other_pixel(photo, model):
    img, kp = photo
    G, d = model
    r = edit_photo(img, G, d, 2.0, keypoints=kp, template=SYNTHFACES, steps=20, loss="mse")
    assert r.photo.shape == img.shape and r.photo.dtype == np.uint8 and r.faces == 1
    inside = _footprint(img, r.transform)
    assert 0.02 < inside.mean() < 0.5  # the face, not the photo
    np.testing.assert_array_equal(r.photo[~inside], img[~inside])  # bit for bit outside the mask
    assert (r.photo != img).any(-1).sum() > 100
    # The edit is 2 std along the direction on every layer, and the pasted face is the edited code's rendering.
    torch.testing.assert_close(r.edited_ws - r.ws, torch.full_like(r.ws, 0.0).index_fill_(2, torch.tensor([0]), 1.0))
    with torch.no_grad():
        again = G.synthesis(r.edited_ws, noise=r.noise, noise_mode="const")
    np.testing.assert_array_equal(((again[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).byte()).numpy(), r.edited)
    assert r.crop.shape == (16, 16, 3) and r.transform.size == 16
    assert r.meta["step"] == pytest.approx(1.0) and r.meta["method"] == "w" and r.meta["projector"]["steps"] == 20
    # Raw units: alpha is the distance itself.
    raw = edit_photo(img, G, d, 0.25, units="raw", keypoints=kp, template=SYNTHFACES, steps=5, loss="mse")
    torch.testing.assert_close((raw.edited_ws - raw.ws)[0, :, 0], torch.full((G.num_ws,), 0.25))


def test_delta_blend_keeps_the_photo_where_the_edit_changes_nothing(photo, model):
    img, kp = photo
    G, d = model
    r = edit_photo(img, G, d, 0.0, keypoints=kp, template=SYNTHFACES, steps=5, loss="mse", blend="delta")
    inside = _footprint(img, r.transform)
    np.testing.assert_array_equal(r.photo[~inside], img[~inside])
    # alpha 0 adds nothing: the face is the photo's own, resampled there and back (no 16-px model in it).
    err = np.abs(r.photo.astype(int) - img.astype(int))[inside]
    assert err.mean() < 6, err.mean()
    replaced = edit_photo(img, G, d, 0.0, keypoints=kp, template=SYNTHFACES, steps=5, loss="mse")
    assert np.abs(replaced.photo.astype(int) - img.astype(int))[inside].mean() > 3 * err.mean()


def test_edit_photo_with_pivotal_tuning(photo, model):
    img, kp = photo
    G, d = model
    lp = LPIPSLoss("alex", random_backbone=True, min_side=64)
    r = edit_photo(img, G, d, 1.0, method="tune", keypoints=kp, template=SYNTHFACES, steps=10, loss="mse", lpips=lp,
                   tune_config=TuneConfig(steps=15, lr=3e-3, lpips_threshold=0.0))  # fmt: skip
    assert r.G is not G and r.noise is None
    assert r.meta["tune"]["steps"] == 15 and r.meta["tune"]["l2"] < 0.7 * r.meta["tune"]["pivot_l2"]
    changed = [k for k, v in r.G.synthesis.state_dict().items() if not torch.equal(v, G.synthesis.state_dict()[k])]
    assert changed and all("mapping" not in k for k in changed)  # a tuned copy; the base is untouched
    inside = _footprint(img, r.transform)
    np.testing.assert_array_equal(r.photo[~inside], img[~inside])


def test_edit_photo_reads_files_and_refuses_bad_input(photo, model, tmp_path):
    img, kp = photo
    G, d = model
    grey = tmp_path / "grey.jpg"
    Image.fromarray(img.mean(-1).astype(np.uint8), "L").save(grey, quality=95)
    r = edit_photo(grey, G, d, 1.0, keypoints=kp, template=SYNTHFACES, steps=3, loss="mse")
    assert r.photo.shape == img.shape  # a grey photo comes back as RGB of its size
    assert r.transform.source_file == "grey.jpg"

    class NoFaces:
        kind, min_score = "hog", 0.3

        def detect(self, image):
            return [], [((1.0, 2.0, 30.0, 40.0), 0.1)]

    with pytest.raises(AlignError, match="no face found in the photo .*1 scored under min_score 0.3"):
        edit_photo(img, G, d, 1.0, detector=NoFaces())
    with pytest.raises(AlignError, match="has 1 face"):
        edit_photo(img, G, d, 1.0, keypoints=kp, face=1)
    with pytest.raises(InvalidInput, match="Z direction"):
        edit_photo(img, G, Direction(torch.ones(G.z_dim), "pc0", "z", "pca"), 1.0, keypoints=kp)
    with pytest.raises(InvalidInput, match="records no std"):
        edit_photo(img, G, Direction(torch.ones(G.w_dim), "x", "w", "given"), 1.0, keypoints=kp)
    with pytest.raises(ValueError, match="was fitted on model other"):
        edit_photo(img, G, Direction(torch.ones(G.w_dim), "x", "w", "svm", model="other", model_hash="0" * 16,
                                     std=1.0), 1.0, keypoints=kp)  # fmt: skip
    with pytest.raises(InvalidInput, match="uint8 RGB"):
        edit_photo(img.astype(np.float32), G, d, 1.0, keypoints=kp)
    with pytest.raises(InvalidInput, match="blend"):
        edit_photo(img, G, d, 1.0, keypoints=kp, blend="poisson")
    with pytest.raises(AlignError, match="megapixels"):
        edit_photo(grey, G, d, 1.0, keypoints=kp, max_pixels=1000)


def test_edit_photo_cli(photo, model, tmp_path):
    img, kp = photo
    G, d = model
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", G_ema=G)
    dpath = save_direction(d, tmp_path / "smile")
    Image.fromarray(img).save(tmp_path / "me.png")
    (tmp_path / "lm.json").write_text(json.dumps({"me.png": [kp.tolist()]}))
    out = tmp_path / "me-smile.png"
    opts = ["--network", str(ckpt), "--direction", str(dpath), "--alpha", "2", "--landmarks", str(tmp_path / "lm.json"),
            "--template", "synthfaces", "--steps", "10", "--loss", "mse", "--no-progress", "--device", "cpu"]
    args = ["edit-photo", str(tmp_path / "me.png"), *opts, "--out", str(out), "--keep", str(tmp_path / "work")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "face 0 of 1 projected into W, moved 2 std along smile" in r.output
    edited = np.asarray(Image.open(out))
    assert edited.shape == img.shape
    work = tmp_path / "work"
    assert {p.name for p in work.iterdir()} == {"crop.png", "crop.json", "compare.png", "codes.npz", "edited.npz",
                                                "edit.json"}  # fmt: skip
    from latentlab.faces import AlignTransform

    inside = _footprint(img, AlignTransform.load(work / "crop.json"))
    np.testing.assert_array_equal(edited[~inside], img[~inside])
    codes, moved = load_latents(work / "codes.npz"), load_latents(work / "edited.npz")
    step = np.broadcast_to(np.eye(G.w_dim)[0], codes.w.shape)  # 2 std of 0.5 along the first axis
    np.testing.assert_allclose((moved.w - codes.w).numpy(), step, atol=1e-6)
    assert any(k.startswith("noise_") for k in codes.arrays)  # the projection's noise maps travel with the codes
    # A photo the landmarks file does not know: one line, nothing written.
    Image.fromarray(img).save(tmp_path / "other.png")
    r = CliRunner().invoke(cli, ["edit-photo", str(tmp_path / "other.png"), *opts, "--out", str(tmp_path / "o.png")])
    assert r.exit_code == 1 and "has no entry for 'other.png'" in r.output
    assert not (tmp_path / "o.png").exists()
    r = CliRunner().invoke(cli, ["edit-photo", str(tmp_path / "me.png"), *opts, "--out", str(tmp_path / "x.gif")])
    assert r.exit_code == 2 and "--out must be a" in r.output
    r = CliRunner().invoke(cli, [*args, "--tune", "--space", "w+"])
    assert r.exit_code == 2 and "--tune tunes around a W pivot" in r.output


def test_edit_photo_cli_tune_keeps_a_tuned_model(real_weights, photo, model, tmp_path):
    img, kp = photo
    G, d = model
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", G_ema=G)
    dpath = save_direction(d, tmp_path / "smile")
    Image.fromarray(img).save(tmp_path / "me.png")
    (tmp_path / "lm.json").write_text(json.dumps({"me.png": [kp.tolist()]}))
    work = tmp_path / "work"
    r = CliRunner().invoke(cli, ["edit-photo", str(tmp_path / "me.png"), "--network", str(ckpt), "--direction",
                                 str(dpath), "--landmarks", str(tmp_path / "lm.json"), "--steps", "5", "--loss", "mse",
                                 "--tune", "--tune-steps", "4", "--keep", str(work),
                                 "--out", str(tmp_path / "e.jpg"), "--no-progress", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "tuned (PTI)" in r.output and Image.open(tmp_path / "e.jpg").size == (330, 300)
    meta = json.loads((work / "edit.json").read_text())
    # Below 256 px the early stop is off by default (auto_lpips_threshold): all 4 steps ran.
    assert meta["tune"]["steps"] == 4 and meta["tune"]["config"]["lpips_threshold"] == 0.0
    assert meta["network"].endswith("tuned.safetensors")
    # The kept codes render on the kept tuned model with the base's direction.
    r = CliRunner().invoke(cli, ["edit", str(work / "codes.npz"), "--network", str(work / "tuned.safetensors"),
                                 "--direction", str(dpath), "--alpha", "0,1", "--out", str(tmp_path / "strip.png"),
                                 "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output


def test_project_tune_cli(real_weights, model, tmp_path):
    G, _ = model
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", G_ema=G)
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)), None, noise_mode="const")
    for i, x in enumerate(img):
        Image.fromarray(((x.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()).save(
            tmp_path / f"f{i}.png")  # fmt: skip
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["project", str(tmp_path / "f0.png"), str(tmp_path / "f1.png"), "--network", str(ckpt),
                                 "--outdir", str(out), "--steps", "10", "--loss", "mse", "--space", "w+", "--tune",
                                 "--tune-steps", "3", "--tune-lpips-threshold", "0", "--batch", "2", "--no-progress",
                                 "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pivot"]["space"] == "w+" and summary["pivot"]["steps"] == 10
    assert summary["pivot"]["optimize_noise"] is False  # the tuning renders with G's constant noise
    assert [row["steps"] for row in summary["rows"]] == [3, 3]
    assert {"f0.safetensors", "f1.safetensors", "f0.npz", "f1-compare.png"} <= {p.name for p in out.iterdir()}
    pivot = load_latents(out / "f0.npz")
    assert pivot.meta["space"] == "w+" and not np.allclose(pivot.w[0, 0], pivot.w[0, -1])  # one code per layer
    r = CliRunner().invoke(cli, ["project", str(tmp_path / "f0.png"), "--network", str(ckpt), "--outdir", str(out),
                                 "--tune", "--video", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 2 and "--video applies to projections only" in r.output


def test_tune_names_repeated_stems_apart(real_weights, model, tmp_path):
    G, _ = model
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", G_ema=G)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.full((16, 16, 3), 90 if sub == "a" else 160, np.uint8)).save(tmp_path / sub / "x.png")
    r = CliRunner().invoke(cli, ["tune", str(tmp_path / "a"), str(tmp_path / "b"), "--network", str(ckpt), "--outdir",
                                 str(tmp_path / "t"), "--steps", "1", "--pivot-steps", "2", "--pivot-loss", "mse",
                                 "--no-progress", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert {"x.safetensors", "x-1.safetensors"} <= {p.name for p in (tmp_path / "t").iterdir()}


def test_edit_photo_help_has_an_example():
    r = CliRunner().invoke(cli, ["edit-photo", "--help"])
    assert r.exit_code == 0 and "latentlab edit-photo me.jpg --direction smile --alpha 2 --tune" in r.output


def test_paste_cli_puts_a_crop_back_and_refuses_a_bad_transform(photo, tmp_path):
    img, kp = photo
    Image.fromarray(img).save(tmp_path / "me.png")
    (tmp_path / "lm.json").write_text(json.dumps({"me.png": [kp.tolist()]}))
    r = CliRunner().invoke(cli, ["align", str(tmp_path / "me.png"), "--landmarks", str(tmp_path / "lm.json"),
                                 "--outdir", str(tmp_path / "al"), "--size", "64", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    crop = np.asarray(Image.open(tmp_path / "al" / "me_0.png"))
    Image.fromarray(255 - crop).save(tmp_path / "edited.png")  # an "edit" that changes every pixel of the crop
    out_path = tmp_path / "o.png"
    args = ["paste", str(tmp_path / "edited.png"), "--photo", str(tmp_path / "me.png"), "--out", str(out_path)]
    r = CliRunner().invoke(cli, [*args, "--transform", str(tmp_path / "al" / "me_0.json")])
    assert r.exit_code == 0, r.output
    from latentlab.faces import AlignTransform

    out = np.asarray(Image.open(tmp_path / "o.png"))
    inside = _footprint(img, AlignTransform.load(tmp_path / "al" / "me_0.json"))
    np.testing.assert_array_equal(out[~inside], img[~inside])
    assert (out != img).any(-1).sum() > 0.5 * inside.sum()
    for bad, message in [(tmp_path / "nope.json", "no alignment file"), (tmp_path / "lm.json", "lm.json: ")]:
        (tmp_path / "o.png").unlink(missing_ok=True)
        r = CliRunner().invoke(cli, [*args, "--transform", str(bad)])
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "o.png").exists()
    Image.fromarray(img[:-1]).save(tmp_path / "smaller.png")
    r = CliRunner().invoke(cli, ["paste", str(tmp_path / "edited.png"), "--photo", str(tmp_path / "smaller.png"),
                                 "--out", str(tmp_path / "o.png"), "--transform", str(tmp_path / "al" / "me_0.json")])
    assert r.exit_code == 1 and "not its photo" in r.output
    Image.fromarray(img).save(tmp_path / "resaved.png", compress_level=1)  # same pixels, other bytes
    r = CliRunner().invoke(cli, ["paste", str(tmp_path / "edited.png"), "--photo", str(tmp_path / "resaved.png"),
                                 "--out", str(tmp_path / "o.png"), "--transform", str(tmp_path / "al" / "me_0.json")])
    assert r.exit_code == 0 and "not byte for byte" in r.output
