"""Training data: the conversion rule, folder/zip/NVIDIA datasets, the index stream, dataset prepare."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import cli
from latentlab.data.datasets import DatasetError, ImageDataset, prepare_dataset, to_training_pixels
from latentlab.train.sampling import IndexStream


def _png(a: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="png")
    return buf.getvalue()


def _solid(color, size=(8, 8)) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, np.uint8), (size[1], size[0], len(color))).copy()


# --------------------------------------------------------------------------------------------------
# The conversion rule.


def test_rgba_is_composited_over_the_background():
    a = _solid((200, 0, 0, 0))  # fully transparent red
    a[:4, :, 3] = 255  # top half opaque
    im = Image.fromarray(a, "RGBA")
    out = to_training_pixels(im, None)
    assert out.shape == (3, 8, 8) and out.dtype == np.uint8
    assert out[:, 0, 0].tolist() == [200, 0, 0]  # opaque: its own colour
    assert out[:, 7, 0].tolist() == [255, 255, 255]  # transparent: white, not the hidden red
    out = to_training_pixels(im, None, background=(0, 0, 10))
    assert out[:, 7, 0].tolist() == [0, 0, 10]


def test_half_transparent_pixels_blend():
    im = Image.fromarray(_solid((0, 0, 0, 128)), "RGBA")
    v = to_training_pixels(im, None)[0, 0, 0]
    assert 125 <= v <= 128  # 50% black over white


def test_16bit_grey_is_scaled_to_8_bits_and_replicated():
    a = np.array([[0, 257 * 10], [65535, 257 * 128]], dtype=np.uint16)
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    out = to_training_pixels(im, None)
    assert out.shape == (3, 2, 2)
    assert out[0].tolist() == [[0, 10], [255, 128]]
    assert (out[0] == out[1]).all() and (out[1] == out[2]).all()
    # The same through a PNG file (Pillow opens 16-bit grey PNGs as mode I / I;16).
    with Image.open(io.BytesIO(_png(a))) as im2:
        assert to_training_pixels(im2, None)[0].tolist() == [[0, 10], [255, 128]]


def test_load_image_reads_16_bit_grey_and_transparency_as_training_does(tmp_path):
    from latentlab.io.images import load_image

    (tmp_path / "grey16.png").write_bytes(_png(np.array([[0, 257 * 10], [65535, 257 * 128]], dtype=np.uint16)))
    assert load_image(tmp_path / "grey16.png")[..., 1].tolist() == [[0, 10], [255, 128]]
    Image.fromarray(_solid((0, 0, 0, 0)), "RGBA").save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png")[0, 0].tolist() == [255, 255, 255]  # over white, not black


def test_grey_output_and_palette_transparency():
    rgb = _solid((255, 0, 0))
    assert to_training_pixels(Image.fromarray(rgb), None, channels=1)[0, 0, 0] == 76  # ITU-R 601-2 luma of red
    p = Image.new("P", (4, 4), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.info["transparency"] = 0
    assert to_training_pixels(p, None)[:, 0, 0].tolist() == [255, 255, 255]


def test_crop_and_resize():
    a = np.zeros((8, 16, 3), np.uint8)
    a[:, 4:12] = 255  # the centre square is white, the sides black
    im = Image.fromarray(a)
    with pytest.raises(ValueError, match=r"not square \(16x8\).*crop"):
        to_training_pixels(im, 4)
    out = to_training_pixels(im, 4, crop="center")
    assert out.shape == (3, 4, 4) and (out == 255).all()
    with pytest.raises(ValueError, match="crop must be one of"):
        to_training_pixels(im, 4, crop="middle")


# --------------------------------------------------------------------------------------------------
# Datasets.


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(_solid((255, 0, 0), (16, 16))).save(d / "a.png")
    Image.fromarray(_solid((0, 255, 0), (16, 16))).save(d / "b.jpg", quality=100)
    Image.fromarray(_solid((0, 0, 255, 255), (16, 16)), "RGBA").save(d / "sub" / "c.webp", lossless=True)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (d / "notes.txt").write_text("not an image")
    Image.fromarray(_solid((9, 9, 9), (16, 8))).save(d / "wide.png")
    return d


def test_folder_dataset_reads_and_skips_with_warnings(folder):
    with pytest.warns(UserWarning) as rec:
        ds = ImageDataset(folder, resolution=8)
    msgs = " ".join(str(r.message) for r in rec)
    assert "broken.png" in msgs and "wide.png" in msgs and "not square" in msgs
    assert ds.names == ["a.png", "b.jpg", "sub/c.webp"]
    assert [name for name, _ in ds.skipped] == ["broken.png", "wide.png"]
    imgs, labels = ds.batch([0, 1, 2])
    assert imgs.shape == (3, 3, 8, 8) and labels.shape == (3, 0)
    assert imgs[0, :, 0, 0].tolist() == [1.0, -1.0, -1.0]
    assert imgs[2, 2].mean() > 0.99  # blue
    assert ds.describe()["skipped"] == 2


def test_center_crop_keeps_non_square_images(folder):
    with pytest.warns(UserWarning, match="broken.png"):
        ds = ImageDataset(folder, resolution=8, crop="center")
    assert "wide.png" in ds.names


def test_resolution_defaults_to_the_first_image(tmp_path):
    Image.fromarray(_solid((1, 2, 3), (16, 16))).save(tmp_path / "x.png")
    assert ImageDataset(tmp_path).resolution == 16
    with pytest.raises(DatasetError, match="power of two"):
        ImageDataset(tmp_path, resolution=12)


def test_empty_and_missing_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        ImageDataset(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="no usable images"):
        ImageDataset(tmp_path)
    (tmp_path / "file.bin").write_bytes(b"abc")
    with pytest.raises(DatasetError, match="folder or a .zip"):
        ImageDataset(tmp_path / "file.bin")


def test_nvidia_zip_with_int_labels_is_one_hot(tmp_path):
    path = tmp_path / "ds.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(3):
            z.writestr(f"00000/img{i:08d}.png", _png(_solid((i * 100, 0, 0), (8, 8))))
        z.writestr("dataset.json", json.dumps({"labels": [[f"00000/img{i:08d}.png", i % 2] for i in range(3)]}))
    ds = ImageDataset(path)
    assert ds.c_dim == 2 and ds.labels.tolist() == [[1, 0], [0, 1], [1, 0]]
    imgs, labels = ds.batch([2, 1])
    assert labels.tolist() == [[1, 0], [0, 1]]
    assert imgs[0, 0, 0, 0].item() == pytest.approx(200 / 127.5 - 1)
    assert ImageDataset(path, use_labels=False).c_dim == 0


def test_float_labels_and_label_errors(tmp_path):
    path = tmp_path / "ds.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.png", _png(_solid((0, 0, 0))))
        z.writestr("dataset.json", json.dumps({"labels": [["a.png", [0.5, -1.0]]]}))
    assert ImageDataset(path).labels.tolist() == [[0.5, -1.0]]
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        z.writestr("a.png", _png(_solid((0, 0, 0))))
        z.writestr("b.png", _png(_solid((0, 0, 0))))
        z.writestr("dataset.json", json.dumps({"labels": [["a.png", 1]]}))
    with pytest.raises(DatasetError, match="no label for 'b.png'"):
        ImageDataset(tmp_path / "bad.zip")


def test_xflip_doubles_the_dataset(tmp_path):
    a = np.zeros((8, 8, 3), np.uint8)
    a[:, :4] = 255
    Image.fromarray(a).save(tmp_path / "half.png")
    ds = ImageDataset(tmp_path, xflip=True)
    assert len(ds) == 2 and ds.num_images == 1
    assert (ds.image(1) == ds.image(0)[:, :, ::-1]).all()
    assert ds.image(0)[0, 0, 0] == 255 and ds.image(1)[0, 0, 0] == 0


def test_image_corrupt_only_when_decoded_is_replaced_by_the_next(tmp_path):
    good = _png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))  # incompressible
    Image.fromarray(_solid((50, 60, 70), (64, 64))).save(tmp_path / "b.png")
    (tmp_path / "a.png").write_bytes(good[: len(good) // 2])  # the header reads, the pixels do not
    ds = ImageDataset(tmp_path)
    assert ds.num_images == 2  # the header check passed
    with pytest.warns(UserWarning, match="a.png"):
        first = ds.image(0)
    assert first[:, 0, 0].tolist() == [50, 60, 70]  # replaced by the next readable image
    assert ds.image(0)[:, 0, 0].tolist() == [50, 60, 70]  # and again, without a second warning


def test_index_stream_is_seeded_and_resumable():
    a = IndexStream(10, seed=3)
    first = a.take(25)
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:20].tolist()) == list(range(10))
    state = a.state_dict()
    rest = a.take(13)
    b = IndexStream(10, seed=3)
    b.load_state_dict(state)
    assert b.take(13).tolist() == rest.tolist()
    assert IndexStream(10, seed=3).take(25).tolist() == first.tolist()
    assert IndexStream(10, seed=4).take(10).tolist() != first[:10].tolist()
    with pytest.raises(ValueError, match="dataset of 10 items"):
        IndexStream(11, seed=3).load_state_dict(state)


# --------------------------------------------------------------------------------------------------
# dataset prepare.


def test_prepare_writes_nvidia_layout_and_reports_skips(folder, tmp_path):
    out = tmp_path / "out.zip"
    report = prepare_dataset(folder, out, resolution=4, crop="none", progress=False)
    assert report.written == 3
    reasons = dict(report.skipped)
    assert set(reasons) == {"broken.png", "wide.png", "notes.txt"}
    assert "not square" in reasons["wide.png"] and "not a readable image" in reasons["broken.png"]
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["00000/img00000000.png", "00000/img00000001.png",
                                        "00000/img00000002.png", "dataset.json"]  # fmt: skip
        assert json.loads(z.read("dataset.json")) == {"labels": None}
        with Image.open(io.BytesIO(z.read("00000/img00000002.png"))) as im:
            assert im.size == (4, 4) and im.mode == "RGB"
            assert np.asarray(im)[0, 0].tolist() == [0, 0, 255]
    ds = ImageDataset(out)
    assert ds.resolution == 4 and ds.num_images == 3 and not ds.skipped


def test_prepare_carries_labels_and_crops(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("x.png", "y.png"):
        Image.fromarray(_solid((0, 0, 0), (12, 6))).save(src / name)
    (src / "dataset.json").write_text(json.dumps({"labels": [["x.png", 1], ["y.png", 0]]}))
    out = tmp_path / "l.zip"
    report = prepare_dataset(src, out, resolution=4, crop="center", channels=1, progress=False)
    assert report.written == 2 and report.labels and not report.skipped
    with zipfile.ZipFile(out) as z:
        assert json.loads(z.read("dataset.json"))["labels"] == [["00000/img00000000.png", 1],
                                                                ["00000/img00000001.png", 0]]  # fmt: skip
    ds = ImageDataset(out, channels=1)
    assert ds.batch([0])[0].shape == (1, 1, 4, 4) and ds.c_dim == 2


def test_prepare_leaves_nothing_when_nothing_is_usable(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.png").write_bytes(b"nope")
    out = tmp_path / "out.zip"
    with pytest.raises(DatasetError, match="no usable images"):
        prepare_dataset(src, out, resolution=4, progress=False)
    assert list(tmp_path.iterdir()) == [src]
    with pytest.raises(ValueError, match="power of two"):
        prepare_dataset(src, out, resolution=6, progress=False)


def test_cli_dataset_prepare_and_info(folder, tmp_path):
    out = tmp_path / "cli.zip"
    r = CliRunner().invoke(cli, ["dataset", "prepare", str(folder), str(out), "--resolution", "8", "--crop", "center",
                                 "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 4 images at 8x8" in r.output and "skipped broken.png: not a readable image" in r.output
    r = CliRunner().invoke(cli, ["dataset", "info", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["images"] == 4
    r = CliRunner().invoke(cli, ["dataset", "prepare", str(folder), str(out), "--resolution", "8",
                                 "--background", "1,2"])  # fmt: skip
    assert r.exit_code != 0 and "three numbers" in r.output
    r = CliRunner().invoke(cli, ["dataset", "prepare", "--help"])
    assert "Example" in r.output and "latentlab dataset prepare" in r.output
