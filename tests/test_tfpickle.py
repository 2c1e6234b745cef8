"""NVIDIA's TensorFlow-era pickles: StyleGAN2 (configs E/F) and StyleGAN v1 generators converted without TensorFlow
or running anything; configs A-D named and refused; malicious, truncated and odd pickles refused."""

from __future__ import annotations

import builtins
import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tf_layout import (
    Network,
    tf_discriminator,
    tf_discriminator_v1,
    tf_generator,
    tf_generator_v1,
    write_tf_pickle,
)

from latentlab.cli import cli
from latentlab.io import CheckpointError, UnsafePickleError, UnsupportedModelError, load_any

from conftest import tiny_D, tiny_G


@pytest.fixture
def nets():
    return tiny_G(0), tiny_D(1), tiny_G(5)  # G, D, Gs (the EMA copy has other weights)


def _write(tmp_path, nets, name="tf.pkl", **kw):
    G, D, Gs = nets
    data = (tf_generator(G, "G", **kw), tf_discriminator(D), tf_generator(Gs, "Gs", **kw))
    return write_tf_pickle(tmp_path / name, data)


@pytest.mark.parametrize("protocol", [2, 4, 5])  # 5: NumPy pickles arrays with numeric._frombuffer
def test_stylegan2_tf_pickle_converts_exactly(tmp_path, nets, protocol):
    G, D, Gs = nets
    path = write_tf_pickle(tmp_path / "tf.pkl", (tf_generator(G, "G"), tf_discriminator(D), tf_generator(Gs, "Gs")),
                           protocol=protocol)  # fmt: skip
    ck = load_any(path)
    assert ck.meta["source"]["format"] == "nvidia-tf-pkl" and ck.meta["source"]["tf_version"] == 4
    for got, want in ((ck.G, G), (ck.G_ema, Gs), (ck.D, D)):
        assert got.config == want.config
        for k, v in want.state_dict().items():
            # Exact but for the modulation biases, stored as b - 1 and read back as (b - 1) + 1 in float32.
            torch.testing.assert_close(got.state_dict()[k], v, rtol=0, atol=1e-6 if "affine.bias" in k else 0, msg=k)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = ck.G_ema(z, None, noise_mode="const"), Gs(z, None, noise_mode="const")
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(ck.D(want, None), D(want, None), rtol=0, atol=0)  # D has no modulation


def test_tf_pickle_through_info_convert_and_network(tmp_path, nets):
    G = nets[0]
    path = _write(tmp_path, nets)
    r = CliRunner().invoke(cli, ["info", str(path), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["format"] == "nvidia-pkl" and d["source"]["format"] == "nvidia-tf-pkl"
    assert set(d["networks"]) == {"G_ema", "G", "D"}
    g_ema = d["source"]["networks"]["G_ema"]
    assert g_ema["tf_options"]["fmap_base"] == G.config.channel_base // 2 and g_ema["kwargs"]["z_dim"] == G.z_dim
    text = CliRunner().invoke(cli, ["info", str(path)]).output
    assert "TensorFlow options: {'latent_size'" in text and "as NVIDIA's PyTorch arguments: {'z_dim'" in text
    r = CliRunner().invoke(cli, ["convert", str(path), str(tmp_path / "g.safetensors"), "--what", "g_ema"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "o"),
                                 "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output


def test_other_architectures_are_named_and_refused(tmp_path, nets):
    G, D, Gs = nets
    v1 = Network("G", "training.networks_stylegan.G_style", {"resolution": 16}, [],
                 {"synthesis": Network("G_synthesis", "training.networks_stylegan.G_synthesis", {}, [], version=3)},
                 version=3)  # fmt: skip
    cases = [
        ((v1, tf_discriminator(D), v1), "a StyleGAN v1 network that is not G_style with mapping and synthesis"),
        ((tf_generator(G, extra_kwargs={"architecture": "orig"}), tf_discriminator(D), tf_generator(Gs)),
         "config B, C or D generator"),
        ((tf_generator(G, extra_kwargs={"synthesis_func": "G_synthesis_stylegan_revised"}), tf_discriminator(D),
          tf_generator(Gs)), "synthesis_func='G_synthesis_stylegan_revised'"),
        ((tf_generator(G, extra_kwargs={"fmap_decay": 0.5}), tf_discriminator(D), tf_generator(Gs)),
         "TensorFlow option fmap_decay=0.5 is not supported"),
        ((tf_generator(G),), r"a tuple of 1 TensorFlow Networks, expected \(G, D, Gs\)"),
    ]
    revised = tf_generator(G)
    revised.state["components"]["synthesis"].state["build_func_name"] = "G_synthesis_stylegan_revised"
    cases.append(((revised, tf_discriminator(D), tf_generator(Gs)), "a StyleGAN2 config A generator"))
    extra = tf_generator(G)
    extra.state["components"]["synthesis"].state["variables"].append(("64x64/Conv1/weight", np.zeros((3, 3, 4, 4))))
    cases.append(((extra, tf_discriminator(D), tf_generator(Gs)),
                  "'synthesis/64x64/Conv1/weight' has no place in a StyleGAN2 network"))  # fmt: skip
    missing = tf_generator(G)
    missing.state["components"]["synthesis"].state["variables"].pop()
    cases.append(((missing, tf_discriminator(D), tf_generator(Gs)), "the pickle has no variable"))
    for data, message in cases:
        path = write_tf_pickle(tmp_path / "bad.pkl", data)
        with pytest.raises(UnsupportedModelError, match=message):
            load_any(path)


class Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("where", ["kwargs", "variables", "top"])
def test_a_malicious_global_anywhere_is_refused_and_nothing_runs(tmp_path, nets, where):
    G, D, Gs = nets
    marker = tmp_path / "pwned"
    g = tf_generator(G)
    payload = Evil(os.system, f"touch {marker}")
    if where == "kwargs":
        g.state["components"]["synthesis"].state["static_kwargs"]["x"] = payload
        data = (g, tf_discriminator(D), tf_generator(Gs))
    elif where == "variables":
        g.state["components"]["mapping"].state["variables"].append(("Dense9/weight", Evil(builtins.exec, "1")))
        data = (g, tf_discriminator(D), tf_generator(Gs))
    else:
        data = (g, tf_discriminator(D), payload)
    path = write_tf_pickle(tmp_path / "evil.pkl", data)
    with pytest.raises(UnsafePickleError, match=r"refused to load global (posix|os|builtins)\.(system|exec)"):
        load_any(path)
    assert not marker.exists()


def test_truncated_and_single_network_pickles(tmp_path, nets):
    raw = _write(tmp_path, nets).read_bytes()
    (tmp_path / "cut.pkl").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_any(tmp_path / "cut.pkl")
    # A bare Network object (no state): named, not a traceback.
    (tmp_path / "one.pkl").write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(UnsupportedModelError, match="a single TensorFlow Network"):
        load_any(tmp_path / "one.pkl")
    bad = tf_generator(nets[0])
    bad.state["version"] = "4"
    with pytest.raises(UnsupportedModelError, match="without an integer version"):
        load_any(write_tf_pickle(tmp_path / "v.pkl", (bad, tf_discriminator(nets[1]), copy.deepcopy(bad))))


def test_a_registry_tf_model_downloads_over_loopback_and_converts(tmp_path, nets, monkeypatch):
    from latentlab import pretrained
    from latentlab.pretrained import PretrainedModel
    from latentlab.registry import MODELS

    from conftest import serve_files

    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "home"))
    raw = _write(tmp_path, nets).read_bytes()
    shipped = MODELS["stylegan2-tf-ffhq-1024"]
    assert shipped.url == "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl"
    with serve_files({"/stylegan2-ffhq-config-f.pkl": raw}) as (base, _):
        models = {"toy-tf": PretrainedModel("toy-tf", "a toy", "toy-tf.safetensors", 16,
                                            url=base + "/stylegan2-ffhq-config-f.pkl", networks=shipped.networks)}
        with pytest.warns(UserWarning, match="no published checksum"):
            path = pretrained.fetch("toy-tf", models, progress=False)
    ck = load_any(path)
    assert ck.meta["source"]["format"] == "nvidia-tf-pkl" and {ck.G is None, ck.D is None} == {False}
    z = torch.randn(2, nets[2].z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ck.G_ema(z, None, noise_mode="const"), nets[2](z, None, noise_mode="const"),
                                   rtol=0, atol=1e-5)  # fmt: skip


def test_a_stylegan_v1_tf_pickle_converts(tmp_path):
    from latentlab.nn import Discriminator, Generator
    from latentlab.nn.config import DiscriminatorConfig, GeneratorConfig

    # 128 px, so that one up-sampling layer is NVIDIA's fused (turned) kind; few channels keep it small.
    cfg = GeneratorConfig(arch="stylegan1", resolution=128, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256,
                          channel_max=16)  # fmt: skip
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():
        for n, p in G.named_parameters():
            if "noise_strength" in n or n.endswith(".bias"):
                p.copy_(torch.randn_like(p) * 0.3)
    D = Discriminator(DiscriminatorConfig(arch="stylegan1", resolution=128, channel_base=256, channel_max=16)).eval()
    with torch.no_grad():
        for p in D.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    data = (tf_generator_v1(G), tf_discriminator_v1(D), tf_generator_v1(G, "Gs"))
    path = write_tf_pickle(tmp_path / "v1.pkl", data)
    ck = load_any(path)
    assert ck.G_ema.config == cfg and ck.D.config == D.config and ck.meta["source"]["tf_version"] == 3
    for k, v in D.state_dict().items():
        torch.testing.assert_close(ck.D.state_dict()[k], v, rtol=0, atol=0, msg=k)
    for k, v in G.state_dict().items():
        torch.testing.assert_close(ck.G_ema.state_dict()[k], v, rtol=0, atol=1e-6, msg=k)  # b * sqrt2 / sqrt2
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(ck.G_ema(z, None, noise_mode="const"), G(z, None, noise_mode="const"), rtol=0,
                                   atol=1e-4)  # fmt: skip
    # G_style's own lod is the level it renders at (it assigns it to synthesis/lod before each run)
    gs = tf_generator_v1(G, "Gs")
    gs.state["variables"] = [(n, np.float32(1.5) if n == "lod" else v) for n, v in gs.state["variables"]]
    ck = load_any(write_tf_pickle(tmp_path / "lod.pkl", (tf_generator_v1(G), tf_discriminator_v1(D), gs)))
    assert float(ck.G_ema.synthesis.lod) == 1.5 and float(ck.G.synthesis.lod) == 0.0
    stray = tf_generator_v1(G, "Gs")
    stray.state["variables"].append(("Truncation/coefs", np.ones(4, np.float32)))
    with pytest.raises(UnsupportedModelError, match="'Truncation/coefs' has no place in a StyleGAN v1 network"):
        load_any(write_tf_pickle(tmp_path / "stray.pkl", (tf_generator_v1(G), tf_discriminator_v1(D), stray)))
    bad = tf_generator_v1(G, extra_kwargs={"use_pixel_norm": True})
    path = write_tf_pickle(tmp_path / "pn.pkl", (bad, tf_discriminator_v1(D), bad))
    with pytest.raises(UnsupportedModelError, match="use_pixel_norm=True is not supported"):
        load_any(path)


V1_PKL = Path(__file__).parent / "fixtures" / "stylegan1_tf_tiny.pkl"  # benchmarks/reference_v1_tf.py wrote it


def test_nvidia_v1_tf_code_renders_what_latentlab_renders():
    # A pickle written by NVIDIA's own Network class (NVlabs/stylegan 1e0d5c7 under TensorFlow 2.21's compat.v1,
    # protocol 5, its module source replaced) and the outputs NVIDIA's graph computed from it.
    ref = np.load(V1_PKL.parent / "golden_stylegan1_tf_tiny.npz")
    ck = load_any(V1_PKL)
    assert ck.meta["source"]["tf_version"] == 3 and ck.G_ema.config.resolution == 128
    G, D, crop = ck.G_ema, ck.D, np.s_[:, :, 48:80, 48:80]
    z = torch.from_numpy(ref["z"])

    def close(got, key, atol):  # images reach |x| ~ 7 with these random weights
        torch.testing.assert_close(got, torch.from_numpy(ref[key]), rtol=1e-5, atol=atol, msg=key)

    with torch.no_grad():
        close(G.mapping(z), "w", 1e-5)
        for lod in (0.0, 1.5):
            G.synthesis.lod.fill_(lod)
            close(G(z, noise_mode="const")[crop], f"img_lod{lod}", 1e-4)
        G.synthesis.lod.fill_(0.0)
        close(G(z, truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")[crop], "img_trunc", 1e-4)
        x = torch.from_numpy(np.random.RandomState(1).standard_normal([4, 3, 128, 128]).astype(np.float32))
        for lod in (0.0, 0.7):
            D.lod.fill_(lod)
            close(D(x), f"score_lod{lod}", 1e-5)
    text = CliRunner().invoke(cli, ["info", str(V1_PKL)]).output  # v1: the TF options and the v1 config only
    assert "TensorFlow options: {'num_channels': 3, 'use_noise': 1, 'latent_size': 32" in text
    assert "arch                     stylegan1" in text and "resample_filter" not in text and "arguments" not in text
    assert float(ref["img_lod0.0"].std()) > 0.5 and not np.allclose(ref["img_lod0.0"], ref["img_lod1.5"])


class _FromBuffer:
    """Pickles as NumPy's protocol-5 array rebuild with the given arguments."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        try:
            from numpy._core.numeric import _frombuffer
        except ImportError:  # NumPy 1.x
            from numpy.core.numeric import _frombuffer
        return _frombuffer, self.args


@pytest.mark.parametrize(("args", "message"), [
    ((b"\0" * 8, np.dtype(object), (1,), "C"), "numeric dtype"),
    ((b"\0" * 8, np.dtype("float32"), (2, -1), "C"), "malformed shape"),
    ((b"\0" * 8, np.dtype("float32"), (2,), "X"), "malformed shape or order"),
    ((b"\0" * 8, np.dtype("float32"), (2,), "CF"), "malformed shape or order"),
    ((b"\0" * 8, np.dtype("float32"), (2,), 3), "malformed shape or order"),
])  # fmt: skip
def test_a_numpy_buffer_rebuild_only_makes_plain_arrays(tmp_path, nets, args, message):
    G, D, Gs = nets
    g = tf_generator(G, "G")
    g.state["variables"] = [*g.state["variables"], ("odd", _FromBuffer(*args))]
    path = write_tf_pickle(tmp_path / "odd.pkl", (g, tf_discriminator(D), tf_generator(Gs, "Gs")), protocol=5)
    with pytest.raises(UnsafePickleError, match=message):
        load_any(path)


def test_a_v1_registry_model_downloads_past_a_drive_warning_page(tmp_path, monkeypatch):
    """NVIDIA's v1 pickles are on Google Drive, which answers large files with a virus-scan warning page whose form
    leads to the file. A loopback server plays both parts; a page without the form is one clear error."""
    from latentlab import pretrained
    from latentlab.nn import Discriminator, Generator
    from latentlab.pretrained import DownloadError, PretrainedModel
    from latentlab.registry import MODELS, confirmed_download_url

    from conftest import serve_files

    shipped = MODELS["stylegan1-tf-ffhq-1024"]
    assert shipped.url == "https://drive.google.com/uc?id=1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ"
    assert shipped.networks == ("G_ema", "G", "D") and "CC BY-NC 4.0" in shipped.license
    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    G = Generator(get_preset_g("stylegan1-tiny")).eval()
    D = Discriminator(get_preset_d("stylegan1-tiny")).eval()
    raw = write_tf_pickle(tmp_path / "v1.pkl", (tf_generator_v1(G), tf_discriminator_v1(D),
                                                tf_generator_v1(G, "Gs"))).read_bytes()  # fmt: skip
    page = ('<!DOCTYPE html><html><body><p>Google Drive can\'t scan this file for viruses.</p>'
            '<form id="download-form" action="/download" method="get">'
            '<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="XYZ">'
            '<input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">'
            '<input type="hidden" name="uuid" value="a&amp;1"></form></body></html>')  # fmt: skip
    assert confirmed_download_url(page, "http://h/uc?id=XYZ") == "http://h/download?id=XYZ&export=download&confirm=t&uuid=a%261"
    assert confirmed_download_url('<a href="/uc?export=download&amp;confirm=AbC&amp;id=XYZ">', "http://h/x") == (
        "http://h/uc?export=download&confirm=AbC&id=XYZ")  # the older page: a link
    assert confirmed_download_url("<html>Quota exceeded</html>", "http://h/x") is None
    files = {"/uc?id=XYZ": page.encode(), "/download?id=XYZ&export=download&confirm=t&uuid=a%261": raw,
             "/uc?id=QUOTA": b"<html><body>Too many users have viewed or downloaded this file recently.</body></html>"}
    with serve_files(files) as (base, handler):
        models = {"toy-v1": PretrainedModel("toy-v1", "a toy", "toy-v1.safetensors", 16, url=base + "/uc?id=XYZ",
                                            networks=shipped.networks),  # fmt: skip
                  "toy-quota": PretrainedModel("toy-quota", "a toy", "toy-quota.safetensors", 16,
                                               url=base + "/uc?id=QUOTA")}  # fmt: skip
        with pytest.warns(UserWarning, match="no published checksum"):
            path = pretrained.fetch("toy-v1", models, progress=False)
        assert handler.hits == ["/uc?id=XYZ", "/download?id=XYZ&export=download&confirm=t&uuid=a%261"]
        with pytest.raises(DownloadError, match=r"/uc\?id=QUOTA: the server sent a web page, not the file"):
            pretrained.fetch("toy-quota", models, progress=False)
    ck = load_any(path)
    assert ck.meta["source"]["tf_version"] == 3 and ck.G_ema.config.arch == "stylegan1" and ck.D is not None
    assert sorted(p.name for p in (tmp_path / "home").rglob("*") if p.is_file()) == ["toy-v1.safetensors"]


def get_preset_g(name):
    from latentlab.nn import get_preset

    return get_preset(name).G


def get_preset_d(name):
    from latentlab.nn import get_preset

    return get_preset(name).D
