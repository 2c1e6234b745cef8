"""Native checkpoints: bit-exact round trips, strict loading with named errors, atomic writes; registry."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from latentlab import CheckpointError, load_checkpoint, load_generator, pretrained, save_checkpoint
from latentlab.io import checkpoint as ckpt_mod

from conftest import tiny_G


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_round_trip_is_bit_exact(tiny_ckpt):
    path, G, G_ema, D = tiny_ckpt
    ck = load_checkpoint(path)
    for a, b in ((ck.G, G), (ck.G_ema, G_ema), (ck.D, D)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert a.config == b.config and not a.training
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        assert torch.equal(ck.G_ema(z, noise_mode="const"), G_ema(z, noise_mode="const"))
        img = torch.randn(4, 3, 16, 16)
        assert torch.equal(ck.D(img), D(img))
    assert ck.meta == {"note": "test"}
    assert ck.generator is ck.G_ema


def test_file_layout(tiny_ckpt):
    path, *_ = tiny_ckpt
    tensors, meta = _tensors(path)
    assert meta["format"] == "latentlab-checkpoint" and meta["format_version"] == "1"
    config = json.loads(meta["config"])
    assert config["G"]["resolution"] == 16 and config["D"]["architecture"] == "resnet"
    assert "G_ema.mapping.w_avg" in tensors and "G.synthesis.b4.const" in tensors
    assert "D.b4.out.weight" in tensors
    assert not any(k.endswith("resample_filter") for k in tensors)  # derived from the config, not stored


def test_load_generator_is_ready(tiny_ckpt):
    path, G, G_ema, _ = tiny_ckpt
    g = load_generator(path, device="cpu")
    assert not g.training and not any(p.requires_grad for p in g.parameters())
    assert torch.equal(g.w_avg, G_ema.w_avg)
    g2 = load_generator(path, device="cpu", network="G")
    assert torch.equal(g2.w_avg, G.w_avg)


def test_load_only_some_networks(tmp_path):
    path = save_checkpoint(tmp_path / "g.safetensors", G=tiny_G())
    ck = load_checkpoint(path)
    assert ck.G is not None and ck.G_ema is None and ck.D is None
    assert load_generator(path).img_resolution == 16  # falls back to G
    with pytest.raises(CheckpointError, match="has no D"):
        load_checkpoint(path, networks=("D",))


def test_discriminator_only_checkpoint(tmp_path):
    from latentlab.io.checkpoint import stored_networks

    from conftest import tiny_D

    path = save_checkpoint(tmp_path / "d.safetensors", D=tiny_D())
    assert stored_networks(path) == ["D"]
    with pytest.raises(CheckpointError, match="holds no generator .only D."):
        load_generator(path)
    with pytest.raises(ValueError, match="network must be 'G_ema', 'G' or 'auto'"):
        load_generator(path, network="D")
    with pytest.raises(ValueError, match="unknown network 'E'"):
        load_checkpoint(path, networks=("E",))


def _rewrite(path, out, drop=None, add=None, reshape=None, metadata=None):
    tensors, meta = _tensors(path)
    if drop:
        del tensors[drop]
    if add:
        tensors[add] = torch.zeros(3)
    if reshape:
        tensors[reshape] = torch.zeros(2, 2)
    save_file(tensors, str(out), metadata=metadata if metadata is not None else meta)
    return out


def test_strict_errors_name_the_tensor(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    with pytest.raises(CheckpointError, match=r"missing tensor G_ema\.synthesis\.b8\.conv0\.weight"):
        load_checkpoint(_rewrite(path, tmp_path / "a.safetensors", drop="G_ema.synthesis.b8.conv0.weight"))
    with pytest.raises(CheckpointError, match=r"unexpected tensor D\.b4\.extra"):
        load_checkpoint(_rewrite(path, tmp_path / "b.safetensors", add="D.b4.extra"))
    with pytest.raises(CheckpointError, match=r"G\.mapping\.fc0\.bias has shape \(2, 2\), the config wants \(32,\)"):
        load_checkpoint(_rewrite(path, tmp_path / "c.safetensors", reshape="G.mapping.fc0.bias"))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'E\.x'"):
        load_checkpoint(_rewrite(path, tmp_path / "d.safetensors", add="E.x"))


def test_corrupt_and_foreign_files(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable .safetensors checkpoint"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a latentlab checkpoint"):
        load_checkpoint(foreign)
    _, meta = _tensors(path)
    future = _rewrite(path, tmp_path / "future.safetensors", metadata={**meta, "format_version": "99"})
    with pytest.raises(CheckpointError, match="format version '99' is not supported"):
        load_checkpoint(future)
    badcfg = _rewrite(path, tmp_path / "badcfg.safetensors", metadata={**meta, "config": '{"G": {"resolution": 48}}'})
    with pytest.raises(CheckpointError, match="bad config in metadata .*power of two"):
        load_checkpoint(badcfg, networks=("G",))
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_save_is_atomic(tiny_ckpt, tmp_path, monkeypatch):
    path, G, _, _ = tiny_ckpt
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(ckpt_mod, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, G=tiny_G(9))
    assert path.read_bytes() == before  # the last good checkpoint is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"]  # no temp file left
    assert load_checkpoint(path).G is not None


def test_save_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        save_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_checkpoint(tmp_path / "x.pt", G=tiny_G())
    with pytest.raises(ValueError, match="different configs"):
        save_checkpoint(tmp_path / "x.safetensors", G=tiny_G(), G_ema=tiny_G(w_avg_beta=0.9))
    assert not list(tmp_path.iterdir())


def test_registry_unknown_name_lists_known(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="neither a file nor a known model name"):
        load_generator("no-such-model", device="cpu")
    with pytest.raises(FileNotFoundError, match="no such file: 'runs/missing.safetensors'"):
        load_generator("runs/missing.safetensors", device="cpu")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_generator(tmp_path, device="cpu")
    models = {"toy": pretrained.PretrainedModel("toy", "a toy", "toy.safetensors", resolution=16)}
    with pytest.raises(KeyError, match="known models: toy"):
        pretrained.get("nope", models)
    with pytest.raises(FileNotFoundError, match="known models: toy"):
        pretrained.resolve("nope", models)
    with pytest.raises(FileNotFoundError, match="file 'toy.safetensors' not found"):
        pretrained.resolve("toy", models)
    save_checkpoint(tmp_path / "toy.safetensors", G_ema=tiny_G())
    monkeypatch.setenv("LATENTLAB_PRETRAINED", str(tmp_path))
    assert pretrained.resolve("toy", models) == tmp_path / "toy.safetensors"
    assert pretrained.list_models(models) == ["toy"]


def test_loading_does_not_move_the_callers_random_state(tiny_ckpt, tmp_path):
    from pathlib import Path

    from latentlab import load_any
    from latentlab.data.classifier import ClassifierConfig, FactorClassifier, load_classifier_file, save_classifier

    clf = save_classifier(tmp_path / "clf.safetensors", FactorClassifier(ClassifierConfig(resolution=16,
                                                                                          channels=(4,))))  # fmt: skip
    rosinality = Path(__file__).parent / "fixtures" / "rosinality_tiny.pt"
    for load in (lambda: load_checkpoint(tiny_ckpt[0]), lambda: load_any(rosinality),
                 lambda: load_classifier_file(clf)):  # fmt: skip
        torch.manual_seed(0)
        expect = torch.rand(3)
        torch.manual_seed(0)
        load()
        assert torch.equal(torch.rand(3), expect)
