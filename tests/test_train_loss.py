"""The StyleGAN2 losses and schedule against direct computations on tiny networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from latentlab.train import World, ema_beta, lazy_adam_hparams, mix_styles, path_lengths, r1_penalty
from latentlab.train.loss import Inputs, StyleGAN2Loss

from conftest import tiny_D, tiny_G


def _tiny_D64(**kw):
    return tiny_D(resolution=8, channel_base=64, channel_max=8, **kw).double()


def test_r1_penalty_matches_finite_differences():
    D = _tiny_D64()
    x = torch.randn([4, 3, 8, 8], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    xr = x.clone().requires_grad_(True)
    got = r1_penalty(D(xr, channels_last=False), xr)
    assert got.shape == (4,)
    # Central differences of sum(D(x)) w.r.t. every pixel (the minibatch-stddev layer couples the samples,
    # so the gradient of the sum is what R1 takes, as in NVIDIA's code).
    eps = 1e-6
    grads = torch.zeros_like(x)
    flat, gflat = x.view(-1), grads.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            hi = D(x, channels_last=False).sum()
            flat[i] = old - eps
            lo = D(x, channels_last=False).sum()
            flat[i] = old
            gflat[i] = (hi - lo) / (2 * eps)
    want = grads.square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)
    assert want.min() > 0


def test_path_lengths_match_the_jacobian():
    G = tiny_G(resolution=8, channel_base=64, channel_max=8)  # synthesis runs in float32
    gen = torch.Generator().manual_seed(1)
    ws = torch.randn([2, G.num_ws, G.w_dim], generator=gen)
    noise = [torch.randn([2, 1, layer.resolution, layer.resolution], generator=gen)
             for _, layer in G.synthesis.noise_layers()]  # fmt: skip
    y = torch.randn([2, 3, 8, 8], generator=gen) / 8
    wr = ws.clone().requires_grad_(True)
    img = G.synthesis(wr, noise=noise)
    got = path_lengths(img, wr, y)
    for n in range(2):
        J = torch.autograd.functional.jacobian(
            lambda w, n=n: G.synthesis(w[None], noise=[t[n : n + 1] for t in noise])[0], ws[n]
        )  # [3, 8, 8, num_ws, w_dim]
        jty = torch.einsum("chw,chwik->ik", y[n], J)  # J^T y: [num_ws, w_dim]
        want = jty.square().sum(dim=1).mean().sqrt()
        torch.testing.assert_close(got[n], want, rtol=1e-4, atol=1e-6)


def test_path_length_phase_updates_the_running_mean_and_penalises_deviation():
    G, D = tiny_G(), tiny_D()
    loss = StyleGAN2Loss(G, D, World(), r1_gamma=1.0, pl_weight=2.0, pl_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    inp = Inputs(torch.randn([4, 32], generator=gen), torch.zeros([4, 0]), torch.randn([4, 32], generator=gen),
                 G.num_ws, [torch.randn([4, 1, layer.resolution, layer.resolution], generator=gen)
                            for _, layer in G.synthesis.noise_layers()])  # fmt: skip
    pl_noise = torch.randn([4, 3, 16, 16], generator=gen) / 16
    G.requires_grad_(True)
    stats = loss.G_reg(inp, pl_noise, gain=4)
    # The lengths, recomputed directly.
    ws = G.mapping(inp.z, None, update_w_avg=False).detach().requires_grad_(True)
    lengths = path_lengths(G.synthesis(ws, noise=inp.noise), ws, pl_noise).detach()
    assert loss.pl_mean.item() == pytest.approx(0.01 * lengths.mean().item(), rel=1e-5)  # lerp from 0
    want = (lengths - loss.pl_mean).square()
    torch.testing.assert_close(stats["Loss/pl_penalty"], want, rtol=1e-4, atol=1e-7)
    assert G.synthesis.b16.conv1.weight.grad is not None and G.synthesis.b16.conv1.weight.grad.abs().sum() > 0


def test_r1_phase_gradient_is_gain_times_gamma_half_times_mean_penalty():
    D = tiny_D()
    G = tiny_G()
    real = torch.randn([4, 3, 16, 16], generator=torch.Generator().manual_seed(2))
    loss = StyleGAN2Loss(G, D, World(), r1_gamma=3.0)
    D.requires_grad_(True)
    stats = loss.D_reg(real, torch.zeros([4, 0]), gain=16)
    got = D.b16.conv0.weight.grad.clone()
    D.zero_grad(set_to_none=True)
    x = real.clone().requires_grad_(True)
    pen = r1_penalty(D(x, channels_last=False), x)
    (pen.mean() * 1.5 * 16).backward()
    torch.testing.assert_close(got, D.b16.conv0.weight.grad)
    torch.testing.assert_close(stats["Loss/r1_penalty"], pen.detach())


def test_non_saturating_losses():
    G, D = tiny_G(), tiny_D()
    loss = StyleGAN2Loss(G, D, World(), r1_gamma=0)
    gen = torch.Generator().manual_seed(3)
    inp = Inputs(torch.randn([4, 32], generator=gen), torch.zeros([4, 0]), torch.randn([4, 32], generator=gen),
                 G.num_ws, [torch.zeros([4, 1, layer.resolution, layer.resolution])
                            for _, layer in G.synthesis.noise_layers()])  # fmt: skip
    real = torch.randn([4, 3, 16, 16], generator=gen)
    G.requires_grad_(True)
    s = loss.G_main(inp)
    torch.testing.assert_close(s["Loss/G/loss"], torch.nn.functional.softplus(-s["Loss/scores/fake"]))
    G.requires_grad_(False)
    D.requires_grad_(True)
    s = loss.D_main(inp, real, torch.zeros([4, 0]))
    with torch.no_grad():
        fake = G.synthesis(G.mapping(inp.z, None, update_w_avg=False), noise=inp.noise)
        want = torch.nn.functional.softplus(D(fake)) + torch.nn.functional.softplus(-D(real))
    torch.testing.assert_close(s["Loss/D/loss"], want, rtol=1e-5, atol=1e-6)


def test_style_mixing_and_w_avg_tracking():
    ws, ws2 = torch.zeros([2, 6, 4]), torch.ones([2, 6, 4])
    mixed = mix_styles(ws, ws2, 2)
    assert mixed[:, :2].sum() == 0 and (mixed[:, 2:] == 1).all()
    assert mix_styles(ws, ws2, 6) is ws
    G, D = tiny_G(), tiny_D()
    G.mapping.w_avg.zero_()
    loss = StyleGAN2Loss(G, D, World(), r1_gamma=0)
    z = torch.randn([4, 32], generator=torch.Generator().manual_seed(4))
    inp = Inputs(z, torch.zeros([4, 0]), -z, 3, [None] * (G.num_ws - 1))
    with torch.no_grad():
        img, ws_out = loss.run_G(inp)
        w = G.mapping(z, None, update_w_avg=False)[:, 0]
        w2 = G.mapping(-z, None, update_w_avg=False)[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, w.mean(0) * (1 - 0.995))  # only the first latents count
    torch.testing.assert_close(ws_out[:, 2], w)
    torch.testing.assert_close(ws_out[:, 3], w2)


def test_lazy_regularization_correction():
    lr, betas = lazy_adam_hparams(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17)
    assert betas == (0.0, pytest.approx(0.99 ** (16 / 17)))
    lr, betas = lazy_adam_hparams(0.0025, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.002) and betas[1] == pytest.approx(0.99**0.8)
    assert lazy_adam_hparams(0.0025, (0.0, 0.99), None) == (0.0025, (0.0, 0.99))


def test_ema_beta_rule():
    # Half-life 10 kimg at batch 32: 0.5 ** (32 / 10000); ramp-up caps the half-life at cur_nimg * 0.05.
    assert ema_beta(32, 10**6, 10, None) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(32, 10**6, 10, 0.05) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(32, 1000, 10, 0.05) == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(32, 0, 10, 0.05) == pytest.approx(0.0)  # the first step copies G


def test_ema_update_in_the_trainer(tmp_path):
    from PIL import Image

    from latentlab.train import TrainConfig, Trainer

    for i in range(4):
        Image.new("RGB", (16, 16), (i * 60, 0, 0)).save(tmp_path / f"{i}.png")
    t = Trainer(TrainConfig(data=str(tmp_path), outdir=str(tmp_path / "run"), preset="tiny", batch=4,
                            ema_kimg=0.01, ema_rampup=None))  # fmt: skip
    t.step()
    before_ema = copy.deepcopy(t.G_ema.state_dict())
    t.cur_nimg = 1000
    t.step()  # the update uses cur_nimg at the start of the step
    beta = 0.5 ** (4 / 10)
    name = "synthesis.b16.conv1.weight"
    want = t.G.state_dict()[name].lerp(before_ema[name], beta)
    torch.testing.assert_close(t.G_ema.state_dict()[name], want)
    assert torch.equal(t.G_ema.mapping.w_avg, t.G.mapping.w_avg)  # buffers are copied
    assert not math.isclose(beta, 1.0)
