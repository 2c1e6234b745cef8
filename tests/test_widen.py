"""Widening a trained network (latentlab.nn.widen): the same function, trainable new channels, and the run option."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from latentlab import load_checkpoint, save_checkpoint
from latentlab.cli import cli
from latentlab.nn import get_preset
from latentlab.nn.widen import widen, widened_config
from latentlab.train import TrainConfig, Trainer, train
from latentlab.validate import InvalidInput

from conftest import random_pngs, randomize_, tiny_D, tiny_G


def _z(n: int = 8, dim: int = 32) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(0))


def test_widened_generator_and_discriminator_compute_the_same_function():
    G = randomize_(tiny_G()).eval()
    D = randomize_(tiny_D()).eval()
    G2, D2 = widen(G, channel_base=1024, channel_max=64), widen(D, channel_base=1024, channel_max=32)
    assert [G.config.channels(r) for r in (4, 8, 16)] == [32, 32, 16]
    assert [G2.config.channels(r) for r in (4, 8, 16)] == [64, 64, 64]
    assert G2.synthesis.b16.conv1.weight.shape == (64, 64, 3, 3) and D2.b16.fromrgb.weight.shape == (32, 3, 1, 1)
    with torch.no_grad():
        a, b = G(_z(), noise_mode="const"), G2(_z(), noise_mode="const")
        assert (a - b).abs().max() < 2e-5 * a.abs().max()
        ra, rb = G(_z(), noise_mode="random", generator=torch.Generator().manual_seed(1)), \
            G2(_z(), noise_mode="random", generator=torch.Generator().manual_seed(1))  # fmt: skip
        assert (ra - rb).abs().max() < 2e-5 * ra.abs().max()
        la, lb = D(a), D2(a)
        assert (la - lb).abs().max() < 2e-5 * la.abs().max()
    # The mapping (and so W, codes, directions) is untouched; the input does not change either.
    assert torch.equal(G.mapping.w_avg, G2.mapping.w_avg)
    assert all(torch.equal(p, q) for p, q in zip(G.mapping.parameters(), G2.mapping.parameters(), strict=True))
    # The original network is not modified, and the copy keeps its mode.
    assert G.synthesis.b16.conv1.weight.shape == (16, 16, 3, 3) and not G2.training


def test_new_channels_train_and_the_seed_decides_them():
    G = randomize_(tiny_G())
    G2 = widen(G, channel_base=512, seed=4)
    w = G2.synthesis.b16.conv1.weight  # [32, 32, 3, 3]: 16 old inputs and 16 new (zero) ones
    assert torch.count_nonzero(w[:, 16:]) == 0 and torch.count_nonzero(w[16:, :16]) == w[16:, :16].numel()
    G2.requires_grad_(True)
    G2(_z(), noise_mode="const").square().mean().backward()
    # The zero columns receive a gradient: training puts the new feature maps to use.
    assert w.grad[:, 16:].abs().sum() > 0
    # One seed gives the same new channels (G and G_ema start equal); another gives different ones.
    again, other = widen(G, channel_base=512, seed=4), widen(G, channel_base=512, seed=5)
    assert torch.equal(again.synthesis.b16.conv1.weight, w.detach())
    assert not torch.equal(other.synthesis.b16.conv1.weight, w.detach())


def test_widen_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"gives 16 channels at 8x8, fewer than the network's 32"):
        widen(tiny_G(), channel_base=128)
    with pytest.raises(ValueError, match="StyleGAN2 networks, not stylegan1"):
        widened_config(get_preset("stylegan1-tiny").G, channel_base=512)
    with pytest.raises(ValueError, match=r"discriminator's 4x4 channels \(32\) cannot grow"):
        widen(tiny_D(), channel_base=1024, channel_max=64)
    with pytest.raises(TypeError, match="Generator or a Discriminator"):
        widen(torch.nn.Linear(2, 2), channel_base=512)


def test_a_run_widens_its_init_networks_and_a_preset(tmp_path):
    data = random_pngs(tmp_path / "data", n=8)
    src = save_checkpoint(tmp_path / "init.safetensors", G_ema=randomize_(tiny_G()), G=randomize_(tiny_G(), 4),
                          D=randomize_(tiny_D()))  # fmt: skip
    base = dict(data=str(data), batch=4, kimg=0.004, snap=0.004, grid=2, progress=False, threads=1)
    res = train(TrainConfig(outdir=str(tmp_path / "run"), init=str(src), channel_base=512, lr_G=0.0, lr_D=0.0,
                            **base), log=None)  # fmt: skip
    out, init = load_checkpoint(res.snapshot), load_checkpoint(src)
    assert out.G.config.channel_base == 512 and out.D.config.channel_base == 512
    assert out.G.synthesis.b16.conv1.weight.shape == (32, 32, 3, 3)
    with torch.no_grad():  # lr 0: the run's networks are the widened init, computing what the init computed
        a, b = init.G(_z(), noise_mode="const"), out.G(_z(), noise_mode="const")
        assert (a - b).abs().max() < 2e-5 * a.abs().max()
        assert torch.allclose(init.D(a), out.D(a), atol=2e-5 * init.D(a).abs().max().item())
    # G and G_ema got the same new channels.
    assert torch.equal(out.G.synthesis.b16.conv1.weight[16:, :16], out.G_ema.synthesis.b16.conv1.weight[16:, :16])
    # Without init, the rule overrides the preset's.
    t = Trainer(TrainConfig(outdir=str(tmp_path / "p"), preset="tiny", channel_base=1024, channel_max=64, **base))
    assert t.G.synthesis.b16.conv1.weight.shape == (64, 64, 3, 3) and t.D.b16.fromrgb.weight.shape == (64, 3, 1, 1)
    # A narrower rule is refused with the file's name, before anything is written.
    with pytest.raises(InvalidInput, match=r"init\.safetensors: .*fewer than the network's 32"):
        train(TrainConfig(outdir=str(tmp_path / "n"), init=str(src), channel_base=128, **base), log=None)
    assert not (tmp_path / "n").exists() or not any((tmp_path / "n").iterdir())


def test_train_cli_widens(tmp_path):
    data = random_pngs(tmp_path / "data", n=8)
    src = save_checkpoint(tmp_path / "init.safetensors", G_ema=tiny_G(), D=tiny_D())
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "run"), "--init", str(src),
                                 "--channel-base", "512", "--kimg", "0.004", "--snap", "0.004", "--batch", "4",
                                 "--grid", "2", "--no-progress", "--threads", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    snap = sorted((tmp_path / "run").glob("network-snapshot-*.safetensors"))[-1]
    assert load_checkpoint(snap).G.config.channel_base == 512
    assert "--channel-base" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_a_widened_run_resumes(tmp_path):
    data = random_pngs(tmp_path / "data", n=8)
    src = save_checkpoint(tmp_path / "init.safetensors", G_ema=tiny_G(), D=tiny_D())
    base = dict(data=str(data), outdir=str(tmp_path / "run"), init=str(src), channel_base=512, batch=4, snap=0.004,
                grid=2, progress=False, threads=1)  # fmt: skip
    train(TrainConfig(kimg=0.004, **base), log=None)
    res = train(TrainConfig(kimg=0.008, resume="auto", **base), log=None)
    assert res.cur_nimg == 8 and load_checkpoint(res.snapshot).G.config.channel_base == 512
    # Another rule on resume is a different run.
    with pytest.raises(ValueError, match="channel_base: 512 -> 1024"):
        train(TrainConfig(kimg=0.012, resume="auto", **{**base, "channel_base": 1024}), log=None)
