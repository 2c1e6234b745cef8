"""The example scripts run and produce what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentlab import load_generator
from latentlab.io.images import load_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def test_style_mixing_example(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    out = tmp_path / "mix.png"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "style_mixing.py"), "--network", str(path),
                        "--rows", "1,2", "--cols", "5-7", "--styles", "coarse", "--out", str(out), "--device", "cpu"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert load_image(out).shape == (3 * 16, 4 * 16, 3)


def test_style_mixing_grid_cells(tiny_ckpt):
    from style_mixing import style_mixing_grid

    path, *_ = tiny_ckpt
    G = load_generator(path, device="cpu")
    coarse = style_mixing_grid(G, [1], [5, 6], "coarse", psi=1.0)
    assert coarse.shape == (6, 3, 16, 16)
    assert torch.all(coarse[0] == -1)  # the empty corner
    assert (coarse[4] - coarse[1]).abs().max() > 1e-3
    # tiny is 16x16: no "fine" codes exist (codes 0-3 coarse, 4-5 middle), which is an error, not a no-op
    with pytest.raises(ValueError, match="names no layer"):
        style_mixing_grid(G, [1], [5, 6], "fine", psi=1.0)


def test_convert_and_render_example(tmp_path):
    fixtures = ROOT / "tests" / "fixtures"
    for src, extra in ((fixtures / "rosinality_tiny.pt", []), (fixtures / "nvidia_tiny.pkl", ["--class", "2"])):
        native, out = tmp_path / f"{src.stem}.safetensors", tmp_path / f"{src.stem}.png"
        r = subprocess.run([sys.executable, str(ROOT / "examples" / "convert_and_render.py"), "--network", str(src),
                            "--native", str(native), "--seeds", "0-2", "--trunc", "0.7", "--out", str(out), *extra],
                           capture_output=True, text=True)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "renders identically" in r.stdout
        h, w, ch = load_image(out).shape
        assert ch == 3 and h % 16 == 0 and w % 16 == 0 and (h // 16) * (w // 16) >= 3
        assert load_generator(native, device="cpu").img_resolution == 16


def test_train_shapes_example(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_shapes.py"), "--workdir", str(tmp_path),
                        "--images", "24", "--preset", "tiny", "--kimg", "0.064", "--batch", "8", "--device", "cpu"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "prepared 24 images at 16px (0 skipped)" in r.stdout
    assert "resuming from" in r.stdout and "trained to 0.064 kimg" in r.stdout
    assert load_image(tmp_path / "samples.png").shape == (4 * 16, 4 * 16, 3)
    assert (tmp_path / "run" / "network-snapshot-000000.064.safetensors").is_file()


def test_project_and_compare_example(tmp_path):
    out = tmp_path / "cmp.png"
    args = ["--count", "2", "--steps", "30", "--out", str(out), "--device", "cpu"]
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "project_and_compare.py"), *args],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert load_image(out).shape == (2 * 64 + 2, 3 * 64 + 4, 3)
    assert "W+: PSNR" in r.stdout and (tmp_path / "cmp-wplus.npz").is_file()


def test_edit_photo_example(tmp_path):
    from latentlab.pretrained import default_model

    if default_model() is None:
        pytest.skip("the embedded model is not in this installation")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "edit_photo.py"), "--steps", "20", "--device", "cpu",
                        "--outdir", str(tmp_path)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_image(tmp_path / "edit.png").shape == (64, 5 * 64 + 4 * 2, 3)
    assert load_image(tmp_path / "mixing.png").shape == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2, 3)
    assert (tmp_path / "morph.mp4").stat().st_size > 0 and "smile" in r.stdout


def test_measure_latent_space_example():
    from latentlab.pretrained import default_model

    if default_model() is None:
        pytest.skip("the embedded model is not in this installation")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "measure_latent_space.py"), "--num", "200",
                        "--device", "cpu"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "200 samples, seed 0, PPL distance classifier" in r.stdout
    # the shipped model's endpoint PPL is ~16 in W and ~74 in Z (docs/metrics.md); 200 pairs resolve that
    assert "PPL, endpoints: W is better than Z" in r.stdout
    assert "linear separability" in r.stdout and "DCI informativeness" in r.stdout
