"""Layers: equalized learning rate, FIR resampling, modulated convolution."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from latentlab.nn import layers as L


def test_fully_connected_equalized_lr_known_answer():
    fc = L.FullyConnectedLayer(4, 3, lr_multiplier=0.01, bias_init=2.0)
    # Stored weights are randn / lr_mul; the effective weight is stored * lr_mul / sqrt(fan_in).
    with torch.no_grad():
        fc.weight.copy_(torch.arange(12.0).reshape(3, 4))
    x = torch.ones(1, 4)
    expected = torch.arange(12.0).reshape(3, 4).sum(1) * 0.01 / 2 + 2.0 * 0.01
    assert torch.allclose(fc(x)[0], expected)
    assert fc.weight_gain == pytest.approx(0.01 / 2) and fc.bias_gain == 0.01


def test_fully_connected_init_is_unit_scale_effective():
    torch.manual_seed(0)
    fc = L.FullyConnectedLayer(512, 512, lr_multiplier=0.01)
    # Stored at 1/lr_mul scale, so the effective weight has std 1/sqrt(fan_in).
    assert fc.weight.std().item() == pytest.approx(100, rel=0.02)
    eff = fc.weight * fc.weight_gain
    assert eff.std().item() == pytest.approx(1 / math.sqrt(512), rel=0.02)


def test_lrelu_gain_preserves_second_moment():
    torch.manual_seed(0)
    fc = L.FullyConnectedLayer(1024, 1024, activation="lrelu")
    x = torch.randn(256, 1024)
    y = fc(x)
    # sqrt(2) gain: E[y^2] = E[x^2] * (1 + 0.2^2) / 2 * 2 ~= 1.04
    assert y.square().mean().item() == pytest.approx(1.04, rel=0.05)


def test_conv2d_layer_weight_gain():
    conv = L.Conv2dLayer(8, 4, kernel_size=3)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(8 * 9))
    x = torch.randn(2, 8, 5, 5)
    ref = F.conv2d(x, conv.weight * conv.weight_gain, conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-6)


def test_setup_filter_is_normalised_binomial():
    f = L.setup_filter()
    assert f.shape == (4, 4)
    assert f.sum().item() == pytest.approx(1.0)
    assert torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    with pytest.raises(ValueError, match="taps"):
        L.setup_filter([])


def _upsample_reference(x: torch.Tensor, taps=(1.0, 3, 3, 1)) -> torch.Tensor:
    """Zero insertion, pad (2, 1), separable 4-tap filter with gain 2 per axis: the textbook FIR up-sampler."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, [2, 1, 2, 1])
    k = torch.tensor(taps) / sum(taps) * 2
    out = torch.zeros(n, c, 2 * h, 2 * w)
    for i in range(4):
        for j in range(4):
            out += k[3 - i] * k[3 - j] * up[:, :, i : i + 2 * h, j : j + 2 * w]
    return out


def test_upsample2d_matches_textbook_fir():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6)
    assert torch.allclose(L.upsample2d(x, L.setup_filter()), _upsample_reference(x), atol=1e-6)


def test_resampling_preserves_dc():
    x = torch.full((1, 2, 8, 8), 3.0)
    f = L.setup_filter()
    assert torch.allclose(L.upsample2d(x, f)[:, :, 2:-2, 2:-2], torch.tensor(3.0))
    assert torch.allclose(L.downsample2d(x, f)[:, :, 1:-1, 1:-1], torch.tensor(3.0))
    assert L.downsample2d(x, f).shape == (1, 2, 4, 4)


def test_fir_filter_asymmetric_pad_and_crop():
    x = torch.randn(1, 1, 6, 6)
    f = L.setup_filter()
    a = L.fir_filter(x, f, (2, 1, 2, 1))
    b = L.fir_filter(F.pad(x, [2, 1, 2, 1]), f, (0, 0, 0, 0))
    assert torch.equal(a, b)
    assert L.fir_filter(x, f, (-1, 0, 0, 0)).shape == (1, 1, 3, 2)


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1)])
def test_conv2d_resample_shapes_and_grouping(up, down, k):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    w = torch.randn(4, 3, k, k)
    out = L.conv2d_resample(x, w, L.setup_filter(), up=up, down=down, padding=k // 2, groups=2)
    assert out.shape == (2, 4, 8 * up // down, 8 * up // down)
    # Grouped = the two halves convolved separately.
    halves = [L.conv2d_resample(x[:, 3 * i : 3 * i + 3], w[2 * i : 2 * i + 2], L.setup_filter(), up=up,
                                down=down, padding=k // 2) for i in range(2)]  # fmt: skip
    assert torch.allclose(out, torch.cat(halves, 1), atol=1e-5)


def test_conv2d_resample_up_equals_conv_of_upsampled_in_the_interior():
    # Linear shift-invariant ops commute: transposed conv then blur == blur-upsample then (flipped) conv,
    # away from the borders.
    torch.manual_seed(0)
    x = torch.randn(1, 2, 10, 10)
    w = torch.randn(3, 2, 3, 3)
    f = L.setup_filter()
    a = L.conv2d_resample(x, w, f, up=2, padding=1)
    b = F.conv2d(L.upsample2d(x, f), w.flip([2, 3]), padding=1)
    assert torch.allclose(a[:, :, 3:-3, 3:-3], b[:, :, 3:-3, 3:-3], atol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_fused_and_nonfused_modconv_agree(up, demodulate, batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 6, 8, 8)
    weight = torch.randn(5, 6, 3, 3)
    styles = torch.randn(batch, 6)
    if not demodulate:  # scale as ToRGB does (1/sqrt(fan_in)) so outputs are O(1), like images
        styles = styles / math.sqrt(6 * 9)
    noise = torch.randn(batch, 1, 8 * up, 8 * up)
    bias = torch.randn(5)
    kw = dict(demodulate=demodulate, up=up, padding=1, resample_filter=L.setup_filter(), noise=noise, bias=bias,
              gain=1.7)  # fmt: skip
    a = L.modulated_conv2d(x, weight, styles, fused=True, **kw)
    b = L.modulated_conv2d(x, weight, styles, fused=False, **kw)
    c = L.modulated_conv2d(x.contiguous(memory_format=torch.channels_last), weight, styles, fused=False, **kw)
    assert a.shape == (batch, 5, 8 * up, 8 * up)
    assert (a - b).abs().max().item() < 1e-5
    assert (b - c).abs().max().item() < 1e-5


def test_modconv_definition_known_answer():
    # Straight from the paper's Eq. 1-3, built explicitly per sample.
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 6)
    weight = torch.randn(3, 4, 3, 3)
    styles = torch.randn(2, 4)
    out = L.modulated_conv2d(x, weight, styles, padding=1)
    for n in range(2):
        w1 = weight * styles[n].reshape(1, -1, 1, 1)
        w2 = w1 / (w1.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(out[n : n + 1], F.conv2d(x[n : n + 1], w2, padding=1), atol=1e-5)


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(0)
    x = torch.randn(64, 128, 8, 8)  # unit-variance i.i.d. input
    weight = torch.randn(96, 128, 3, 3)
    styles = torch.rand(64, 128) * 4 + 0.1  # strongly varying styles: without demodulation the scale explodes
    out = L.modulated_conv2d(x, weight, styles, padding=1)[:, :, 1:-1, 1:-1]  # interior: no zero padding
    per_channel = out.var(dim=(0, 2, 3))
    assert per_channel.mean().item() == pytest.approx(1.0, abs=0.05)
    assert per_channel.min().item() > 0.8 and per_channel.max().item() < 1.2
    raw = L.modulated_conv2d(x, weight, styles, padding=1, demodulate=False)
    assert raw.var().item() > 50  # the contrast case


def test_modconv_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"styles \(2, 5\)"):
        L.modulated_conv2d(torch.randn(2, 4, 4, 4), torch.randn(3, 4, 3, 3), torch.randn(2, 5))


def test_normalize_2nd_moment():
    x = torch.randn(5, 16) * 7
    y = L.normalize_2nd_moment(x)
    assert torch.allclose(y.square().mean(1), torch.ones(5), atol=1e-4)
