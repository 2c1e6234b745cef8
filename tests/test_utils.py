from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab import from_uint8, load_latents, make_grid, save_latents, to_uint8
from latentlab.io.images import load_image, save_image
from latentlab.utils import parse_int_list, resolve_device, tune_allocator


def test_parse_int_list():
    assert parse_int_list("0-3,12") == [0, 1, 2, 3, 12]
    assert parse_int_list(" 5 ") == [5]
    for bad, msg in [("", "empty"), ("3-1", "backwards"), ("a", "cannot parse"), ("1,,2", "cannot parse")]:
        with pytest.raises(ValueError, match=msg):
            parse_int_list(bad)
    with pytest.raises(ValueError, match="more than"):
        parse_int_list("0-1000000")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_uint8_conversion_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    x = from_uint8(pixels)
    assert x.shape == (1, 3, 16, 16) and x.min() == -1 and x.max() == 1
    assert np.array_equal(to_uint8(x), pixels)
    assert to_uint8(torch.tensor([-5.0, -1.0, 0.0, 1.0, 5.0]).reshape(1, 1, 1, 5))[0, 0, :, 0].tolist() == [
        0, 0, 128, 255, 255]  # fmt: skip
    with pytest.raises(ValueError, match="got shape"):
        to_uint8(torch.zeros(5))


def test_image_file_round_trip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    p = save_image(tmp_path / "a.png", a)
    assert np.array_equal(load_image(p), a)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "bad.png")


def test_make_grid():
    imgs = np.stack([np.full((2, 3, 3), i, np.uint8) for i in range(5)])
    g = make_grid(imgs, cols=3)
    assert g.shape == (4, 9, 3)
    assert g[0, 0, 0] == 0 and g[0, 3, 0] == 1 and g[2, 3, 0] == 4 and g[2, 6, 0] == 0


def test_latents_round_trip_and_nvidia_layout(tmp_path):
    w = torch.randn(3, 6, 8)
    p = save_latents(tmp_path / "c.npz", w, meta={"space": "w+"}, z=torch.randn(3, 4), seeds=[1, 2, 3])
    lat = load_latents(p)
    assert torch.equal(lat.w, w) and lat.meta == {"space": "w+"} and list(lat.arrays["seeds"]) == [1, 2, 3]
    np.savez(tmp_path / "nv.npz", w=np.zeros((1, 6, 8), np.float32))  # what NVIDIA's projector writes
    assert load_latents(tmp_path / "nv.npz").w.shape == (1, 6, 8)
    np.savez(tmp_path / "single.npz", w=np.zeros((6, 8), np.float32))
    assert load_latents(tmp_path / "single.npz").w.shape == (1, 6, 8)
    np.savez(tmp_path / "now.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="has no 'w' array"):
        load_latents(tmp_path / "now.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_latents(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="got shape"):
        save_latents(tmp_path / "bad.npz", torch.zeros(5))


def test_tune_allocator_is_optional(monkeypatch):
    monkeypatch.setenv("LATENTLAB_TUNE_MALLOC", "0")
    assert tune_allocator() is False


def test_progress_bars_stay_out_of_logs_that_are_not_a_terminal(tiny_ckpt, tmp_path):
    """`generate` shows its bar (progress on): tqdm draws it on a terminal only, so a log file gets none."""
    import subprocess
    import sys

    from latentlab.utils import bar_disable

    assert bar_disable(False) is True and bar_disable(True) is None  # None: tqdm's "only on a terminal"
    r = subprocess.run([sys.executable, "-m", "latentlab", "generate", "--network", str(tiny_ckpt[0]), "--seeds",
                        "0-3", "--outdir", str(tmp_path / "out"), "--device", "cpu"], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "generate:" not in r.stderr and "it/s" not in r.stderr and "img/s" not in r.stderr, r.stderr[-2000:]
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
