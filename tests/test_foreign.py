"""NVIDIA .pkl and rosinality .pt: exactness against frozen reference outputs, round trips, refusals.

The fixtures were made once with the original code (which is not part of this repository):

* ``nvidia_tiny.pkl`` -- a stylegan2-ada-pytorch training snapshot (G, D, G_ema, augment_pipe,
  training_set_kwargs) of tiny randomised conditional networks with fp16 layers and conv_clamp=256,
  pickled by NVIDIA's own persistence code; the embedded module sources were replaced by a placeholder.
  ``golden_nvidia_pkl.safetensors`` holds NVIDIA's outputs for it (force_fp32=True, CPU).
* ``rosinality_tiny.pt`` -- a train.py-layout checkpoint (g, d, g_ema, optimiser states, args Namespace)
  of rosinality's model.py with its channel table shrunk to {4: 32, 8: 32, 16: 16};
  ``golden_rosinality_tiny.safetensors`` holds its outputs.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from latentlab import Generator, GeneratorConfig, load_generator
from latentlab.cli import cli
from latentlab.io.checkpoint import CheckpointError
from latentlab.io.foreign import convert, detect_format, load_any
from latentlab.io.nvidia import UnsafePickleError, UnsupportedModelError
from latentlab.io.rosinality import export_problems, load_torch_file, save_rosinality

from conftest import randomize_, tiny_D, tiny_G

FIXTURES = Path(__file__).parent / "fixtures"
NV_PKL = FIXTURES / "nvidia_tiny.pkl"
ROS_PT = FIXTURES / "rosinality_tiny.pt"
TOL = 1e-4


@pytest.fixture(scope="module")
def nv_gold():
    return load_file(FIXTURES / "golden_nvidia_pkl.safetensors")


@pytest.fixture(scope="module")
def ros_gold():
    return load_file(FIXTURES / "golden_rosinality_tiny.safetensors")


def maxdiff(a, b) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# --- NVIDIA pickles -------------------------------------------------------------------------------------


def test_nvidia_pickle_matches_reference(nv_gold):
    ck = load_any(NV_PKL)
    z, c = nv_gold["z"], nv_gold["c"]
    with torch.no_grad():
        for name in ("G_ema", "G"):
            G = getattr(ck, name)
            assert maxdiff(G.mapping(z, c), nv_gold[f"{name}.ws"]) <= TOL
            assert maxdiff(G(z, c, noise_mode="const"), nv_gold[f"{name}.img_psi1_const"]) <= TOL
            assert maxdiff(G(z, c, truncation_psi=0.7, noise_mode="const"), nv_gold[f"{name}.img_psi07_const"]) <= TOL
            out = G(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="none")
            assert maxdiff(out, nv_gold[f"{name}.img_psi05_cut2_none"]) <= TOL
        assert maxdiff(ck.D(nv_gold["G_ema.img_psi1_const"], c), nv_gold["D.logits"]) <= TOL
    # G and G_ema really differ, so the test would catch a swap.
    assert maxdiff(nv_gold["G.img_psi1_const"], nv_gold["G_ema.img_psi1_const"]) > 0.1


def test_nvidia_pickle_source_details():
    ck = load_any(NV_PKL)
    src = ck.meta["source"]
    assert src["format"] == "nvidia-pkl" and src["skipped"] == ["augment_pipe"]
    assert src["training_set_kwargs"]["resolution"] == 16
    g = src["networks"]["G_ema"]
    assert g["class"] == "Generator" and g["kwargs"]["synthesis_kwargs"]["conv_clamp"] == 256
    assert not any("num_fp16_res" in n for n in g["notes"])  # read, not ignored
    assert any("num_fp16_res=2: ignored" in n for n in src["networks"]["D"]["notes"])
    cfg = ck.G_ema.config
    assert (cfg.c_dim, cfg.z_dim, cfg.w_dim, cfg.conv_clamp, cfg.mapping_layers) == (3, 16, 24, 256, 2)
    assert cfg.num_fp16_res == 2 and ck.G_ema.synthesis.fp16_resolution == 8  # 16 px: the 8 and 16 blocks
    assert ck.D.config.mbstd_group_size == 2 and ck.D.config.c_dim == 3
    assert detect_format(NV_PKL) == "nvidia-pkl"


def test_nvidia_pickle_subset_and_generator_only():
    ck = load_any(NV_PKL, networks=("D",))
    assert ck.D is not None and ck.G is None and ck.G_ema is None
    G = load_generator(NV_PKL, device="cpu")
    assert isinstance(G, Generator) and not G.training
    assert all(not p.requires_grad for p in G.parameters())
    assert torch.equal(G.mapping.w_avg, load_any(NV_PKL, networks=("G_ema",)).G_ema.mapping.w_avg)


# A writer of NVIDIA-style pickles for refusal tests: objects whose reduce is NVIDIA's persistence hook.


def _fake_hook(meta):  # never called: only its name ends up in the pickle
    raise AssertionError("the reader must not call back into the writer's module")


@pytest.fixture
def nvidia_writer(monkeypatch):
    pkg = types.ModuleType("torch_utils")
    mod = types.ModuleType("torch_utils.persistence")
    _fake_hook.__module__, _fake_hook.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _fake_hook
    pkg.persistence = mod
    monkeypatch.setitem(sys.modules, "torch_utils", pkg)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)

    def write(path: Path, data) -> Path:
        with open(path, "wb") as f:
            pickle.dump(data, f)
        return path

    return write


class Rec:
    """Pickles like an NVIDIA persistent network object."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src="# test", class_name=self.class_name, state=self.state)
        return (_fake_hook, (meta,))


def as_record(module: torch.nn.Module, class_name: str, kwargs: dict | None = None) -> Rec:
    state = {
        "_parameters": OrderedDict((k, v.detach()) for k, v in module._parameters.items()),
        "_buffers": OrderedDict((k, v) for k, v in module._buffers.items()),
        "_modules": OrderedDict((k, as_record(m, type(m).__name__)) for k, m in module._modules.items()),
        "_non_persistent_buffers_set": set(),
        "_init_args": (),
        "_init_kwargs": kwargs or {},
    }
    return Rec(class_name, state)


def g_kwargs(G: Generator, **synthesis) -> dict:
    c = G.config
    return dict(z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, img_resolution=c.resolution, img_channels=3,
                mapping_kwargs=dict(num_layers=c.mapping_layers),
                synthesis_kwargs=dict(channel_base=c.channel_base, channel_max=c.channel_max, **synthesis))  # fmt: skip


def test_writer_builds_readable_pickles(tmp_path, nvidia_writer):
    """The test writer is faithful enough that a well-formed network round-trips (so refusals below are real)."""
    G = tiny_G(3)
    path = nvidia_writer(tmp_path / "ok.pkl", {"G_ema": as_record(G, "Generator", g_kwargs(G))})
    G2 = load_any(path).G_ema
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert maxdiff(G2(z, None, noise_mode="const"), G(z, None, noise_mode="const")) == 0


class Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("make", [
    lambda p: Evil(os.system, f"touch {p}"),
    lambda p: Evil(builtins.open, str(p), "w"),
    lambda p: Evil(builtins.exec, f"open({str(p)!r}, 'w').close()"),
    lambda p: Evil(builtins.eval, f"open({str(p)!r}, 'w').close()"),
])  # fmt: skip
def test_malicious_pickles_are_refused_without_running(tmp_path, nvidia_writer, make):
    marker = tmp_path / "pwned"
    G = tiny_G(0)
    rec = as_record(G, "Generator", g_kwargs(G))
    rec.state["_init_kwargs"]["mapping_kwargs"]["payload"] = make(marker)  # hidden deep inside a network
    for data in (make(marker), {"G": rec}):
        path = nvidia_writer(tmp_path / "evil.pkl", data)
        with pytest.raises(UnsafePickleError, match="refused to load global") as e:
            load_any(path)
        assert "nothing was run" in str(e.value)
        assert not marker.exists()
        r = CliRunner().invoke(cli, ["convert", str(path), str(tmp_path / "out.safetensors")])
        assert r.exit_code == 1 and "refused to load global" in r.output and not marker.exists()
        assert not (tmp_path / "out.safetensors").exists()


def test_unsupported_nvidia_networks_say_what(tmp_path, nvidia_writer):
    G = tiny_G(0)
    cases = [
        (as_record(G, "Generator", g_kwargs(G, activation="relu")), "activation='relu' is not supported"),
        (as_record(G, "Generator", g_kwargs(G, magnitude_ema_beta=0.99)), "magnitude_ema_beta=0.99 is not supported"),
        (as_record(G, "MappingNetwork"), "not a StyleGAN2 Generator"),
    ]
    sg3 = as_record(G, "Generator", g_kwargs(G))
    sg3.state["_modules"]["synthesis"].state["_modules"]["input"] = Rec("SynthesisInput", {"_parameters": {}})
    cases.append((sg3, "StyleGAN3"))
    for rec, message in cases:
        path = nvidia_writer(tmp_path / "bad.pkl", {"G_ema": rec})
        with pytest.raises(UnsupportedModelError, match=message):
            load_any(path)
    path = nvidia_writer(tmp_path / "list.pkl", [1, 2])
    with pytest.raises(UnsupportedModelError, match="expected NVIDIA's dict of networks"):
        load_any(path)


@pytest.mark.parametrize("src", [NV_PKL, ROS_PT])
def test_truncated_and_corrupt_files(tmp_path, src):
    raw = src.read_bytes()
    bad = tmp_path / f"half{src.suffix}"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_any(bad)
    # Zeroed bytes: in a pickle's opcodes (invalid opcode), in a zip's tensor data (CRC mismatch).
    flipped = bytearray(raw)
    at = 2 if src.suffix == ".pkl" else len(raw) // 3
    flipped[at : at + 64] = b"\x00" * 64
    (tmp_path / f"flip{src.suffix}").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_any(tmp_path / f"flip{src.suffix}")


def test_unknown_and_empty_files(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"hello world, not a pickle")
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a checkpoint latentlab can read.*something else"):
        load_any(tmp_path / "x.pkl")
    with pytest.raises(CheckpointError, match="the file is empty"):
        load_any(tmp_path / "e.pt")
    with pytest.raises(FileNotFoundError):
        load_any(tmp_path / "missing.pkl")


# --- rosinality -----------------------------------------------------------------------------------------


def test_rosinality_checkpoint_matches_reference(ros_gold):
    ck = load_any(ROS_PT)
    z = ros_gold["z"]
    with torch.no_grad():
        assert maxdiff(ck.G_ema.mapping(z, None)[:, 0], ros_gold["ws"]) <= TOL
        assert maxdiff(ck.G_ema(z, None, noise_mode="const"), ros_gold["img_psi1_const"]) <= TOL
        assert maxdiff(ck.G(z, None, noise_mode="const"), ros_gold["img_g_psi1_const"]) <= TOL
        assert maxdiff(ck.D(ros_gold["img_psi1_const"]), ros_gold["logits"]) <= TOL
    src = ck.meta["source"]
    assert src["layout"] == "train.py checkpoint" and src["args"]["size"] == 16
    assert any("w_avg estimated" in n for n in src["networks"]["G_ema"]["notes"])
    cfg = ck.G_ema.config
    assert (cfg.resolution, cfg.z_dim, cfg.mapping_layers, cfg.channel_base, cfg.channel_max) == (16, 32, 2, 256, 32)
    # w_avg was estimated from the mapping: close to the mean of fresh samples.
    with torch.no_grad():
        w = ck.G_ema.mapping(torch.randn(4000, 32, generator=torch.Generator().manual_seed(5)), None)[:, 0]
    assert maxdiff(ck.G_ema.mapping.w_avg, w.mean(0)) < 0.15 * w.std(0).max().item()


def _ros_variants(tmp_path, gold) -> dict[str, Path]:
    raw = load_torch_file(ROS_PT)
    g = raw["g_ema"]
    files = {
        "convert_weight": {"g_ema": g, "latent_avg": gold["latent_avg"]},
        "psp": {"state_dict": {**{f"decoder.{k}": v for k, v in g.items()}, "encoder.w": torch.zeros(3)},
                "latent_avg": gold["latent_avg"][None].repeat(6, 1), "opts": {"output_size": 16}},
        "bare": g,
        "ddp": {f"module.{k}": v for k, v in g.items()},
    }  # fmt: skip
    out = {}
    for name, obj in files.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        out[name] = tmp_path / f"{name}.pt"
    torch.save({"g_ema": g}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)  # pre-1.6 format
    out["legacy"] = tmp_path / "legacy.pt"
    return out


def test_rosinality_layouts(tmp_path, ros_gold):
    z = ros_gold["z"]
    for name, path in _ros_variants(tmp_path, ros_gold).items():
        G = load_any(path).G_ema
        with torch.no_grad():
            assert maxdiff(G(z, None, noise_mode="const"), ros_gold["img_psi1_const"]) <= TOL, name
            if name in ("convert_weight", "psp"):  # these carry latent_avg: truncation matches rosinality's
                out = G(z, None, truncation_psi=0.7, noise_mode="const")
                assert maxdiff(out, ros_gold["img_psi07_const"]) <= TOL, name
    g = {k: v for k, v in load_torch_file(ROS_PT)["g_ema"].items() if not k.startswith("noises.")}
    torch.save(g, tmp_path / "old.pt")  # early rosinality versions kept no constant noise maps
    ck = load_any(tmp_path / "old.pt")
    assert any("no constant noise maps" in n for n in ck.meta["source"]["networks"]["G_ema"]["notes"])
    with torch.no_grad():
        assert maxdiff(ck.G_ema(z, None, noise_mode="none"), load_any(ROS_PT).G_ema(z, None, noise_mode="none")) == 0
        assert ck.G_ema.synthesis.b16.conv1.noise_const.shape == (16, 16)
    d = load_torch_file(ROS_PT)["d"]
    torch.save(d, tmp_path / "d.pt")
    ck = load_any(tmp_path / "d.pt")
    assert ck.D is not None and ck.G_ema is None and ck.meta["source"]["layout"] == "discriminator state dict"


def test_rosinality_refusals(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"g_ema": Evil(os.system, f"touch {marker}")}, tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError, match="weights_only"):
        load_any(tmp_path / "evil.pt")
    assert not marker.exists()
    g = dict(load_torch_file(ROS_PT)["g_ema"])
    g["to_rgb1.conv.weight"] = torch.zeros(1, 12, 32, 1, 1)
    torch.save(g, tmp_path / "swagan.pt")
    with pytest.raises(UnsupportedModelError, match="SWAGAN"):
        load_any(tmp_path / "swagan.pt")
    g = dict(load_torch_file(ROS_PT)["g_ema"])
    g["convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    torch.save(g, tmp_path / "blur.pt")
    with pytest.raises(UnsupportedModelError, match="blur kernel"):
        load_any(tmp_path / "blur.pt")
    torch.save({"g_ema": load_torch_file(ROS_PT)["g_ema"], "latent_avg": torch.zeros(5)}, tmp_path / "avg.pt")
    with pytest.raises(UnsupportedModelError, match=r"latent_avg has shape \(5,\)"):
        load_any(tmp_path / "avg.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(UnsupportedModelError, match="not a rosinality StyleGAN2 checkpoint"):
        load_any(tmp_path / "other.pt")


def test_rosinality_export_round_trip_is_bit_exact(tmp_path):
    """rosinality -> latentlab -> rosinality gives back the very same tensors (buffers included)."""
    raw = load_torch_file(ROS_PT)
    ck, warnings = convert(ROS_PT, tmp_path / "a.safetensors")
    assert warnings == []
    _, warnings = convert(tmp_path / "a.safetensors", tmp_path / "b.pt", to="rosinality", force=True)
    assert any("channels" in w for w in warnings)  # the shrunk test table is not one of rosinality's
    back = load_torch_file(tmp_path / "b.pt")
    for key in ("g_ema", "g", "d"):
        assert set(back[key]) == set(raw[key]), key
        for name, t in raw[key].items():
            assert torch.equal(back[key][name], t), f"{key}.{name}"
    assert torch.equal(back["latent_avg"], ck.G_ema.mapping.w_avg)


def test_export_standard_layout_without_force(tmp_path):
    """A model in rosinality's own channel table exports without force and reloads to identical outputs."""
    cfg = GeneratorConfig(resolution=8, z_dim=16, w_dim=16, mapping_layers=2, channel_base=4096, channel_max=512)
    G = randomize_(Generator(cfg), 4).eval()
    assert export_problems(G, None) == []
    assert save_rosinality(tmp_path / "std.pt", G_ema=G) == []
    info = load_torch_file(tmp_path / "std.pt")["latentlab"]
    assert (info["size"], info["style_dim"], info["n_mlp"], info["channel_multiplier"]) == (8, 16, 2, 1)
    G2 = load_any(tmp_path / "std.pt").G_ema
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert maxdiff(G2(z, None, truncation_psi=0.6, noise_mode="const"),
                       G(z, None, truncation_psi=0.6, noise_mode="const")) <= 1e-5  # fmt: skip


def test_export_problems_are_errors(tmp_path):
    G = tiny_G(0, c_dim=2, architecture="resnet")
    with pytest.raises(UnsupportedModelError, match="c_dim=2.*|architecture 'resnet'"):
        save_rosinality(tmp_path / "x.pt", G_ema=G)
    assert not (tmp_path / "x.pt").exists()
    problems = export_problems(G, tiny_D(0, architecture="skip"))
    assert any("conditional" in p for p in problems) and any("'skip'" in p for p in problems)


# --- CLI and info ---------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_convert_and_info(tmp_path, nv_gold):
    out = tmp_path / "g.safetensors"
    r = run("convert", NV_PKL, out, "--what", "g_ema")
    assert r.exit_code == 0 and "converted G_ema from nvidia-pkl" in r.output
    G = load_generator(out, device="cpu")
    with torch.no_grad():
        assert maxdiff(G(nv_gold["z"], nv_gold["c"], noise_mode="const"), nv_gold["G_ema.img_psi1_const"]) <= TOL
    r = run("info", out)
    assert r.exit_code == 0 and "converted from: nvidia-pkl" in r.output and "num_fp16_res" in r.output
    r = run("info", ROS_PT)
    assert r.exit_code == 0 and "format:    rosinality" in r.output and "w_avg estimated" in r.output
    r = run("info", NV_PKL, "--json")
    assert r.exit_code == 0 and '"format": "nvidia-pkl"' in r.output
    r = run("convert", ROS_PT, tmp_path / "x.pt")
    assert r.exit_code == 1 and "--force" in r.output and not (tmp_path / "x.pt").exists()
    r = run("convert", ROS_PT, tmp_path / "x.pt", "--force")
    assert r.exit_code == 0 and "warning:" in r.output and (tmp_path / "x.pt").exists()
    r = run("convert", NV_PKL, tmp_path / "y.safetensors", "--what", "g_ema,gx")
    assert r.exit_code == 2 and "unknown network 'gx'" in r.output
    r = run("convert", NV_PKL, tmp_path / "y.bin")
    assert r.exit_code == 1 and "must end in .safetensors" in r.output and not (tmp_path / "y.bin").exists()
    r = run("generate", "--network", ROS_PT, "--seeds", "0-1", "--outdir", tmp_path / "imgs")
    assert r.exit_code == 0 and (tmp_path / "imgs" / "seed0001.png").is_file()


# --- Option translation across architectures, against NVIDIA's outputs in golden_nvidia_tiny -------------


def _nvidia_kwargs(g: dict, d: dict, flat: bool) -> tuple[dict, dict]:
    """NVIDIA's constructor arguments for the golden configs: ada's nested spelling or the stylegan3 repo's flat one."""
    synthesis = dict(channel_base=g["channel_base"], channel_max=g["channel_max"], architecture=g["architecture"],
                     conv_clamp=g["conv_clamp"], num_fp16_res=1, resample_filter=[1, 3, 3, 1])  # fmt: skip
    gk = dict(z_dim=g["z_dim"], c_dim=g["c_dim"], w_dim=g["w_dim"], img_resolution=g["resolution"], img_channels=3,
              mapping_kwargs=dict(num_layers=g["mapping_layers"]))  # fmt: skip
    if flat:
        gk.update(synthesis, fused_modconv_default="inference_only")
    else:
        gk["synthesis_kwargs"] = synthesis
    dk = dict(c_dim=d["c_dim"], img_resolution=d["resolution"], img_channels=3, architecture=d["architecture"],
              channel_base=d["channel_base"], channel_max=d["channel_max"], conv_clamp=d["conv_clamp"],
              num_fp16_res=1, block_kwargs=dict(freeze_layers=0), mapping_kwargs=dict(num_layers=d["mapping_layers"]),
              epilogue_kwargs=dict(mbstd_group_size=d["mbstd_group_size"]))  # fmt: skip
    return gk, dk


def _with_filters(rec: Rec, taps=(1, 3, 3, 1)) -> Rec:
    """Add NVIDIA's resample_filter buffers to the block records, as its pickles carry them."""
    from latentlab.nn.layers import setup_filter

    for name, child in rec.state["_modules"].items():
        if name.startswith("b") and name[1:].isdigit():
            child.state["_buffers"]["resample_filter"] = setup_filter(taps)
        _with_filters(child, taps)
    return rec


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("tag", ["uncond", "cond", "orig", "skipd"])
def test_nvidia_options_translate_for_every_architecture(tmp_path, nvidia_writer, tag, flat):
    import json

    from safetensors import safe_open

    from latentlab import Discriminator, DiscriminatorConfig

    with safe_open(str(FIXTURES / "golden_nvidia_tiny.safetensors"), framework="pt") as f:
        cfg = json.loads(f.metadata()["configs"])[tag]
        t = {k: f.get_tensor(k) for k in f.keys() if k.startswith(f"{tag}.")}
    G = Generator(GeneratorConfig(**cfg["G"])).eval()
    D = Discriminator(DiscriminatorConfig(**cfg["D"])).eval()
    G.load_state_dict({k[len(tag) + 3 :]: v for k, v in t.items() if k.startswith(f"{tag}.G.")})
    D.load_state_dict({k[len(tag) + 3 :]: v for k, v in t.items() if k.startswith(f"{tag}.D.")})
    gk, dk = _nvidia_kwargs(cfg["G"], cfg["D"], flat)
    data = {"G_ema": _with_filters(as_record(G, "Generator", gk)),
            "D": _with_filters(as_record(D, "Discriminator", dk))}  # fmt: skip
    ck = load_any(nvidia_writer(tmp_path / f"{tag}.pkl", data))
    assert ck.G_ema.config == dataclasses.replace(G.config, num_fp16_res=1) and ck.D.config == D.config
    notes = ck.meta["source"]["networks"]["G_ema"]["notes"]
    assert any("num_fp16_res=1: ignored" in n for n in ck.meta["source"]["networks"]["D"]["notes"])
    assert any("fused_modconv_default" in n for n in notes) == flat
    z, c = t[f"{tag}.z"], t.get(f"{tag}.c")
    with torch.no_grad():
        assert maxdiff(ck.G_ema(z, c, truncation_psi=0.7, noise_mode="const"), t[f"{tag}.img_psi07_const"]) <= TOL
        assert maxdiff(ck.D(t[f"{tag}.img_psi1_const"], c), t[f"{tag}.logits"]) <= TOL


def test_wrong_resample_filter_buffer_is_refused(tmp_path, nvidia_writer):
    G = tiny_G(0)
    rec = _with_filters(as_record(G, "Generator", g_kwargs(G)), taps=(1, 2, 1, 1))
    with pytest.raises(UnsupportedModelError, match="resample_filter.*does not match"):
        load_any(nvidia_writer(tmp_path / "f.pkl", {"G_ema": rec}))


@pytest.mark.parametrize("change,message", [
    (dict(z_dim=10**9), "z_dim must be >= 0 and <= 16384"),
    (dict(w_dim=2**17), "w_dim must be >= 1 and <= 16384"),
    (dict(img_resolution=2**20), "resolution must be >= 4 and <= 16384"),
    (dict(z_dim="big"), "z_dim must be an integer, got str"),
    (dict(mapping_kwargs=dict(num_layers=float("nan"))), "mapping_layers must be a finite number"),
])  # fmt: skip
def test_nvidia_pickles_with_absurd_sizes_are_refused_before_building(tmp_path, nvidia_writer, change, message):
    """A pickle's constructor arguments pass the same bounded config checks as a native file's config."""
    G = tiny_G(0)
    path = nvidia_writer(tmp_path / "absurd.pkl", {"G_ema": as_record(G, "Generator", {**g_kwargs(G), **change})})
    with pytest.raises(ValueError, match=message):
        load_any(path)
    r = CliRunner().invoke(cli, ["info", str(path)])
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code == 1 and len(errors) == 1 and message in errors[0], r.output
