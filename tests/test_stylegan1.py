"""StyleGAN v1's generator: a reference forward written from the paper's and NVIDIA's formulas (NumPy, loops where
it helps reading), known answers, the fused up-sampling form, progressive growing's blend, and the library's
jobs (checkpoint, projection, edits) on a v1 model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab.io import load_checkpoint, save_checkpoint
from latentlab.nn import Generator, get_preset
from latentlab.nn.config import GeneratorConfig
from latentlab.nn.generator import model_fingerprint
from latentlab.nn.stylegan1 import upscale_conv_fused


def v1(seed: int = 0, **overrides) -> Generator:
    cfg = get_preset("stylegan1-tiny").G
    if overrides:
        cfg = GeneratorConfig(**{**cfg.to_dict(), **overrides})
    torch.manual_seed(seed)
    G = Generator(cfg).eval()
    with torch.no_grad():  # trained-looking values: noise weights, biases and styles away from their zero init
        for name, p in G.named_parameters():
            if "noise_strength" in name or name.endswith(".bias"):
                p.copy_(torch.randn_like(p) * 0.3)
    return G


# --- the reference, from the formulas ------------------------------------------------------------------------

def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def conv3x3(x, w):
    """'SAME' 3x3 correlation of x [C, H, W] with w [O, C, 3, 3] (zero padding)."""
    c, h, wd = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((w.shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("oc,chw->ohw", w[:, :, dy, dx], p[:, dy : dy + h, dx : dx + wd])
    return out


def blur(x):
    k = np.array([1.0, 2.0, 1.0]) / 4
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h, w = x.shape[1:]
    out = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            out += k[dy] * k[dx] * p[:, dy : dy + h, dx : dx + w]
    return out


def reference_synthesis(G: Generator, ws: np.ndarray, lod: float = 0.0) -> np.ndarray:
    """One image: ws [num_ws, w_dim] -> [3, R, R], constant noise."""
    sd = {k: v.double().numpy() for k, v in G.synthesis.state_dict().items()}
    res_list = [4 * 2**k for k in range(int(math.log2(G.img_resolution)) - 1)]
    x, img, i = None, None, 0
    top = len(res_list) - 1
    for k, r in enumerate(res_list):
        for name in ("conv0", "conv1"):
            pre = f"b{r}.{name}."
            if r == 4 and name == "conv0":
                x = sd[pre + "const"].copy()  # the learned constant (ones at init)
            else:
                w = sd[pre + "weight"]
                w = w * math.sqrt(2) / math.sqrt(w.shape[1] * 9)  # He scale, gain sqrt(2)
                if name == "conv0":  # nearest x2, conv, blur
                    x = blur(conv3x3(x.repeat(2, axis=1).repeat(2, axis=2), w))
                else:
                    x = conv3x3(x, w)
            x = x + sd[pre + "noise_const"][None] * sd[pre + "noise_strength"][:, None, None]
            x = lrelu(x + sd[pre + "bias"][:, None, None])
            x = x - x.mean(axis=(1, 2), keepdims=True)
            x = x / np.sqrt((x**2).mean(axis=(1, 2), keepdims=True) + 1e-8)
            a = sd[pre + "affine.weight"]
            s = ws[i] @ (a / math.sqrt(a.shape[1])).T + sd[pre + "affine.bias"]  # dense, gain 1
            c = x.shape[0]
            x = x * (s[:c, None, None] + 1) + s[c:, None, None]
            i += 1
        wr = sd[f"b{r}.torgb.weight"][:, :, 0, 0] / math.sqrt(x.shape[0])
        y = np.einsum("oc,chw->ohw", wr, x) + sd[f"b{r}.torgb.bias"][:, None, None]
        if img is None:
            img = y
        else:
            t = min(max(lod - (top - k), 0.0), 1.0)
            img = img.repeat(2, axis=1).repeat(2, axis=2)
            img = y + (img - y) * t
    return img


def test_synthesis_matches_the_reference_forward():
    G = v1()
    ws = torch.randn(2, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = G.synthesis(ws, noise_mode="const").double().numpy()
    for n in range(2):
        ref = reference_synthesis(G, ws[n].double().numpy())
        np.testing.assert_allclose(out[n], ref, atol=2e-4, rtol=1e-4)  # float32 against float64
    assert out.std() > 0.1  # not a degenerate image


def test_the_constant_layer_is_its_style_bias_when_noise_is_off():
    # Instance norm of a constant map is 0, so the first layer's output is the style's bias half, by hand.
    # With the constant at its init (ones) and a bias of 1 every pre-norm value is exactly 2, so the mean is exact
    # too (a bias like 0.3 leaves ~1e-7 after the subtraction, which the normalization blows up to ~1e-3).
    G = v1()
    layer = G.synthesis.b4.conv0
    w = torch.randn(3, G.w_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        layer.bias.fill_(1.0)
        out = layer(None, w, noise_mode="none")
        s = w @ (layer.affine.weight / math.sqrt(G.w_dim)).T + layer.affine.bias
    c = layer.out_channels
    torch.testing.assert_close(out, s[:, c:, None, None].expand(-1, -1, 4, 4), rtol=0, atol=1e-6)


def test_fused_up_sampling_equals_nearest_then_conv():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 5, 7, 6, generator=g), torch.randn(4, 5, 3, 3, generator=g)
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    torch.testing.assert_close(upscale_conv_fused(x, w), torch.nn.functional.conv2d(up, w, padding=1), rtol=0,
                               atol=1e-5)  # fmt: skip


def test_progressive_growing_blends_the_levels():
    G = v1()
    ws = torch.randn(1, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for lod in (1.0, 0.5, 1.7):
            G.synthesis.lod.fill_(lod)
            out = G.synthesis(ws, noise_mode="const")[0].double().numpy()
            np.testing.assert_allclose(out, reference_synthesis(G, ws[0].double().numpy(), lod), atol=2e-4, rtol=1e-4)
        G.synthesis.lod.fill_(1.0)
        coarse = G.synthesis(ws, noise_mode="const")
    # lod 1 at 16 px: the 8-px image, nearest-upsampled (every 2x2 block one value)
    assert torch.equal(coarse[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2), coarse)


def test_v1_config_checkpoint_and_fingerprint(tmp_path):
    G = v1()
    assert G.config.to_dict()["arch"] == "stylegan1"
    assert "arch" not in get_preset("tiny").G.to_dict()  # StyleGAN2 files and fingerprints stay as they were
    path = save_checkpoint(tmp_path / "v1.safetensors", G_ema=G)
    G2 = load_checkpoint(path).G_ema
    assert G2.config.arch == "stylegan1" and model_fingerprint(G2) == model_fingerprint(G)
    with pytest.raises(ValueError, match="arch must be one of"):
        GeneratorConfig(resolution=16, arch="stylegan3")
    with pytest.raises(ValueError, match="no architecture, conv_clamp or resample_filter"):
        GeneratorConfig(resolution=16, arch="stylegan1", conv_clamp=256)
    assert [n for n, _ in G.synthesis.noise_layers()] == ["b4.conv0", "b4.conv1", "b8.conv0", "b8.conv1",
                                                          "b16.conv0", "b16.conv1"]  # fmt: skip


def test_projection_truncation_and_edits_run_on_v1():
    from latentlab.edit import edit, layer_indices
    from latentlab.nn.wplus import layer_table
    from latentlab.projection import ProjectConfig, build_loss, project_batch

    G = v1().requires_grad_(False)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        target = G(z, None, noise_mode="const")
    proj = project_batch(G, target, build_loss("mse"), ProjectConfig(space="w+", steps=30, lr=0.05, w_avg_samples=200))
    assert len(proj.noise) == G.num_ws and proj.losses.shape == (2,)
    assert float(proj.losses.mean()) < float(((target - target.mean()) ** 2).mean())  # it fits better than a flat image
    rows = layer_table(G)
    assert len(rows) == G.num_ws and rows[0]["layers"] == ["b4.conv0"]
    moved = edit(proj.ws, torch.ones(G.w_dim), 0.5, layers="coarse")  # 4x4 and 8x8: codes 0-3 of 6
    rest = [i for i in range(G.num_ws) if i not in layer_indices("coarse", G.num_ws)]
    assert rest and torch.equal(moved[:, rest], proj.ws[:, rest])
    with torch.no_grad():
        a = G(z, None, truncation_psi=0.0, noise_mode="none")
    assert torch.allclose(a[0], a[1], atol=1e-5)  # psi 0: every z renders w_avg


def test_nvidias_fused_op_is_nearest_then_conv_with_the_kernel_turned():
    # tf.nn.conv2d_transpose is the adjoint of TF's conv2d, as torch's conv_transpose2d is of torch's conv2d.
    # NVIDIA's fused upscale2d_conv2d: the [k, k, in, out] kernel padded, its four shifts summed, transposed-convolved.
    g = torch.Generator().manual_seed(6)
    x, w = torch.randn(1, 3, 5, 5, generator=g), torch.randn(2, 3, 3, 3, generator=g)  # w: [out, in, kh, kw]
    k = torch.nn.functional.pad(w, (1, 1, 1, 1))
    k = k[:, :, 1:, 1:] + k[:, :, :-1, 1:] + k[:, :, 1:, :-1] + k[:, :, :-1, :-1]
    nvidia = torch.nn.functional.conv_transpose2d(x, k.transpose(0, 1), stride=2, padding=1)
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    turned = torch.nn.functional.conv2d(up, w.flip(2, 3), padding=1)
    torch.testing.assert_close(nvidia, turned, rtol=0, atol=1e-5)


def reference_discriminator(D, imgs: np.ndarray, lod: float = 0.0) -> np.ndarray:
    """D_basic from the formulas: imgs [N, C, R, R] -> [N] logits (linear structure, mbstd group 4)."""
    sd = {k: v.double().numpy() for k, v in D.state_dict().items()}
    R = D.config.resolution

    def conv(x, name, k):  # act(apply_bias(conv2d(x, gain=sqrt2)))
        w = sd[name + ".weight"] * math.sqrt(2) / math.sqrt(sd[name + ".weight"][0].size)
        if k == 1:
            y = np.einsum("oc,chw->ohw", w[:, :, 0, 0], x)
        else:
            y = conv3x3(x, w)
        return y

    def pool(x):
        return 0.25 * (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2])

    def bias_act(x, name):
        return lrelu(x + sd[name + ".bias"][:, None, None])

    feats = []
    for img in imgs:
        x = bias_act(conv(img, f"b{R}.fromrgb", 1), f"b{R}.fromrgb")
        im = img
        for k, r in enumerate(D.block_resolutions):
            x = bias_act(conv(x, f"b{r}.conv0", 3), f"b{r}.conv0")
            x = bias_act(pool(conv(blur(x), f"b{r}.conv1", 3)), f"b{r}.conv1")
            im = pool(im)
            y = bias_act(conv(im, f"b{r // 2}.fromrgb", 1), f"b{r // 2}.fromrgb")
            x = x + (y - x) * min(max(lod - k, 0.0), 1.0)
        feats.append(x)
    x = np.stack(feats)  # [N, C, 4, 4]
    n = x.shape[0]
    g = min(4, n)
    grouped = x.reshape(g, n // g, *x.shape[1:])  # member i of group j is sample i * (n // g) + j
    sd_map = np.sqrt(((grouped - grouped.mean(0)) ** 2).mean(0) + 1e-8).mean(axis=(1, 2, 3))  # [n // g]
    x = np.concatenate([x, np.tile(sd_map, g)[:, None, None, None] * np.ones((n, 1, 4, 4))], axis=1)
    out = []
    for xi in x:
        h = bias_act(conv(xi, "b4.conv", 3), "b4.conv").reshape(-1)
        w = sd["b4.fc.weight"] * math.sqrt(2) / math.sqrt(h.size)
        h = lrelu(w @ h + sd["b4.fc.bias"])
        w = sd["b4.out.weight"] / math.sqrt(h.size)
        out.append((w @ h + sd["b4.out.bias"])[0])
    return np.array(out)


def test_discriminator_v1_matches_the_reference_forward():
    from latentlab.nn import Discriminator

    D = Discriminator(get_preset("stylegan1-tiny").D).eval()
    assert D.config.arch == "stylegan1"
    with torch.no_grad():
        for p in D.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    imgs = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    for lod in (0.0, 0.4, 1.0):
        with torch.no_grad():
            D.lod.fill_(lod)
            got = D(imgs)[:, 0].double().numpy()
        np.testing.assert_allclose(got, reference_discriminator(D, imgs.double().numpy(), lod), atol=1e-4, rtol=1e-4)


def test_a_v1_model_is_not_exported_to_rosinality(tmp_path):
    from latentlab.io import UnsupportedModelError, save_rosinality

    with pytest.raises(UnsupportedModelError, match="no rosinality layout"):
        save_rosinality(tmp_path / "x.pt", G_ema=v1(), force=True)
    assert not (tmp_path / "x.pt").exists()
