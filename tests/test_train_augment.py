"""Adaptive discriminator augmentation: exact transforms, colour invariants, gradients, the p heuristic."""

from __future__ import annotations

import pytest
import torch

from latentlab.train.augment import BGC, AdaptiveP, AugmentPipe


def _rand(seed: int = 0, n: int = 8):
    g = torch.Generator().manual_seed(seed)

    def rand(kind, *shape):
        return (torch.rand if kind == "uniform" else torch.randn)([n, *shape], generator=g)

    return rand


def _images(n=8, c=3, seed=1):
    return torch.rand([n, c, 8, 8], generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_zero_p_is_the_identity_and_draws_nothing():
    x = _images()

    def no_draws(*_):
        raise AssertionError("p = 0 must not draw")

    assert AugmentPipe(p=0.0)(x, no_draws) is x


def test_flips_and_quarter_turns_are_exact():
    x = _images()
    out = AugmentPipe(p=1.0, transforms=("xflip",))(x, _rand())
    kinds = []
    for a, b in zip(out, x, strict=True):
        if torch.allclose(a, b, atol=1e-6):
            kinds.append("same")
        else:
            torch.testing.assert_close(a, b.flip(-1), atol=1e-6, rtol=0)
            kinds.append("flip")
    assert set(kinds) == {"same", "flip"}
    out = AugmentPipe(p=1.0, transforms=("rotate90",))(x, _rand(2))
    for a, b in zip(out, x, strict=True):
        assert any(torch.allclose(a, torch.rot90(b, k, dims=(1, 2)), atol=1e-6) for k in range(4))


def test_integer_translation_moves_whole_pixels():
    x = _images(n=16)
    out = AugmentPipe(p=1.0, transforms=("xint",))(x, _rand(3, 16))
    shifted = 0
    for a, b in zip(out, x, strict=True):
        # Some whole-pixel shift (|dx|, |dy| <= 1 at 8 px) reproduces the interior exactly.
        inner = a[:, 1:-1, 1:-1]
        hits = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                if torch.allclose(inner, torch.roll(b, (dy, dx), dims=(1, 2))[:, 1:-1, 1:-1], atol=1e-6)]  # fmt: skip
        assert hits, "not a whole-pixel shift"
        shifted += hits[0] != (0, 0)
    assert shifted > 0


def test_colour_transforms():
    x = _images()
    out = AugmentPipe(p=1.0, transforms=("brightness",))(x, _rand())
    d = out - x
    assert (d - d.mean(dim=[1, 2, 3], keepdim=True)).abs().max() < 1e-6  # one offset per image
    assert d.mean(dim=[1, 2, 3]).abs().max() > 1e-3
    grey = _images(c=1).expand(-1, 3, -1, -1).contiguous()  # luma-axis colours: hue leaves them alone
    torch.testing.assert_close(AugmentPipe(p=1.0, transforms=("hue", "saturation"))(grey, _rand()), grey)
    coloured = AugmentPipe(p=1.0, transforms=("hue",))(x, _rand())
    assert (coloured - x).abs().max() > 1e-2
    torch.testing.assert_close(coloured.mean(dim=1), x.mean(dim=1), atol=1e-5, rtol=0)  # hue keeps luma (mean)
    single = AugmentPipe(p=1.0, transforms=("contrast", "brightness"))(_images(c=1), _rand())
    assert single.shape == (8, 1, 8, 8)


def test_full_pipeline_is_finite_differentiable_and_seeded():
    x = _images().requires_grad_(True)
    pipe = AugmentPipe(p=0.8)
    assert pipe.transforms == BGC
    out = pipe(x, _rand(5))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (out - x).abs().mean() > 0.05
    (g,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    torch.testing.assert_close(pipe(x, _rand(5)), out)
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentPipe(transforms=("xflip", "blur"))


def test_adaptive_p_heuristic():
    pipe = AugmentPipe(p=0.0)
    ada = AdaptiveP(pipe, target=0.6, interval=4, ada_kimg=500)
    for batch_idx in range(1, 5):
        ada.observe(real_signs_sum=0.9 * 32, count=32)  # D is over-confident on reals
        ada.maybe_adjust(batch_idx, batch=32)
    assert pipe.p == pytest.approx(32 * 4 / 500_000)
    state = ada.state_dict()
    for batch_idx in range(5, 9):
        ada.observe(real_signs_sum=0.1 * 32, count=32)
        ada.maybe_adjust(batch_idx, batch=32)
    assert pipe.p == 0.0  # back down, and never below 0
    ada.observe(-1.0, 1)
    ada2 = AdaptiveP(AugmentPipe(), target=0.6, interval=4)
    ada2.load_state_dict(state)
    assert ada2.pipe.p == pytest.approx(32 * 4 / 500_000) and ada2.sign_count == 0
