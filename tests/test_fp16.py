"""NVIDIA's float16 scheme (``num_fp16_res``): which blocks run in fp16, the overflow guard, and the error.

The synthesis refuses float16 on the CPU (its kernels there are slow), but they exist and compute float16,
so these tests lift that refusal to check the numerics anywhere; the ``gpu`` tests at the end run the real
path on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import latentlab.nn.synthesis as synthesis_module
from latentlab.io.foreign import load_any
from latentlab.nn.layers import modulated_conv2d

from conftest import tiny_G

NV_PKL = Path(__file__).parent / "fixtures" / "nvidia_tiny.pkl"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(4 / (a - b).square().mean(dim=(1, 2, 3)))


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """Let the synthesis run float16 on the CPU (the device check only; everything else is the real path)."""
    real = synthesis_module.activation_dtype

    def anywhere(dtype, device):
        return real(dtype, torch.device("cuda")) if device.type == "cpu" else real(dtype, device)

    monkeypatch.setattr(synthesis_module, "activation_dtype", anywhere)


@pytest.mark.parametrize("n, side, expected", [
    (1, 16, {4: "32", 8: "32", 16: "16"}),
    (2, 16, {4: "32", 8: "16", 16: "16"}),
    (3, 16, {4: "32", 8: "16", 16: "16"}),  # never below 8x8, as NVIDIA's max(..., 8)
    (2, 64, {4: "32", 8: "32", 16: "32", 32: "16", 64: "16"}),
    (5, 64, {4: "32", 8: "16", 16: "16", 32: "16", 64: "16"}),
])  # fmt: skip
def test_the_fp16_blocks_are_nvidias_highest_resolutions(n, side, expected):
    G = tiny_G(num_fp16_res=n, resolution=side)
    names = {torch.float32: "32", torch.float16: "16"}
    assert {r: names[d] for r, d in G.synthesis.block_dtypes(torch.float16).items()} == expected
    assert set(G.synthesis.block_dtypes(torch.bfloat16).values()) == {torch.bfloat16}  # bf16 runs every block


def test_fp16_is_refused_for_a_model_trained_without_fp16_layers(fp16_on_cpu):
    from latentlab.perceptual import MSELoss
    from latentlab.projection import ProjectConfig, project_batch
    from latentlab.render import generate_images

    G = tiny_G()
    config = ProjectConfig(steps=1, precision="fp16")
    for job in (lambda: generate_images(G, [0], precision="fp16"),
                lambda: project_batch(G, torch.zeros(1, 3, 16, 16), MSELoss(), config)):
        with pytest.raises(ValueError, match="num_fp16_res=0"):
            job()
    assert G.config.num_fp16_res == 0 and "num_fp16_res" not in G.config.to_dict()  # old files unchanged
    with pytest.raises(ValueError, match="num_fp16_res=0, so its activations may overflow.*use bf16"):
        G.synthesis.block_dtypes(torch.float16)
    assert tiny_G(num_fp16_res=9).synthesis.fp16_resolution == 8  # NVIDIA's rule: more than there are = all
    with pytest.raises(ValueError, match="num_fp16_res must be >= 0"):
        tiny_G(num_fp16_res=-1)


def test_num_fp16_res_changes_neither_the_parameters_nor_the_fingerprint():
    from latentlab.nn.generator import model_fingerprint

    a, b = tiny_G(seed=3), tiny_G(seed=3, num_fp16_res=2)
    assert b.config.to_dict()["num_fp16_res"] == 2
    assert model_fingerprint(a) == model_fingerprint(b)
    for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(ta, tb)


def test_the_overflow_guard_keeps_fp16_finite_where_the_plain_product_overflows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 8, 8, generator=g) * 30
    weight = torch.randn(16, 64, 3, 3, generator=g) * 40
    styles = torch.randn(2, 64, generator=g) * 3000
    assert ((x * styles[:, :, None, None]).half().isinf()).any()  # fp16 tops out at 65504
    ref = modulated_conv2d(x, weight, styles, padding=1)
    for fused in (False, True):
        out = modulated_conv2d(x.half(), weight, styles, padding=1, fused=fused)
        assert out.dtype == torch.float16 and torch.isfinite(out).all()
        rel = (out.float() - ref).norm() / ref.norm()
        assert rel < 2e-3, (fused, rel)


def test_fp16_synthesis_of_an_nvidia_pickle_follows_its_num_fp16_res(fp16_on_cpu):
    """NVIDIA's tiny conditional pickle (num_fp16_res=2, conv_clamp=256): the 8 and 16 blocks run fp16, the 4x4
    block fp32, the image comes back float32 and near the float32 render."""
    G = load_any(NV_PKL).G_ema.eval()
    assert G.config.num_fp16_res == 2
    seen = {}
    hooks = [b.register_forward_hook(lambda m, i, o: seen.__setitem__(m.resolution, (o[0].dtype, o[1].dtype)))
             for b in G.synthesis.blocks()]  # fmt: skip
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(4, G.z_dim, generator=g), torch.eye(G.config.c_dim)[[0, 1, 2, 0]]
    with torch.no_grad():
        ws = G.mapping(z, c)
        ref = G.synthesis(ws, noise_mode="const")
        half = G.synthesis(ws, noise_mode="const", dtype="fp16")
    for h in hooks:
        h.remove()
    assert seen == {4: (torch.float32, torch.float32), 8: (torch.float16, torch.float32),
                    16: (torch.float16, torch.float32)}  # fmt: skip
    assert half.dtype == torch.float32 and not torch.equal(half, ref)
    assert _psnr(half, ref).min() > 40


def test_fp16_is_refused_for_stylegan1_and_on_the_cpu():
    from latentlab import Generator, GeneratorConfig
    from latentlab.nn.config import get_preset

    G = tiny_G(num_fp16_res=2)
    ws = G.mapping(torch.randn(1, G.z_dim), None)
    with pytest.raises(ValueError, match="float16 synthesis needs a CUDA device"):
        G.synthesis(ws, dtype="fp16")
    with pytest.raises(ValueError, match="StyleGAN v1 generator has no fp16 layers"):
        GeneratorConfig(**{**get_preset("stylegan1-tiny").G.to_dict(), "num_fp16_res": 1})
    G1 = Generator(get_preset("stylegan1-tiny").G)
    assert G1.config.num_fp16_res == 0


# --- The same on CUDA, without lifting anything (benchmarks/gpu_check.sh runs these) ---------------------------


@pytest.mark.gpu
def test_cuda_fp16_and_bf16_synthesis_against_fp32():
    G = load_any(NV_PKL).G_ema.eval().to("cuda")
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(8, G.z_dim, generator=g).cuda(), torch.eye(G.config.c_dim)[[0, 1, 2, 0, 1, 2, 0, 1]].cuda()
    with torch.no_grad():
        ws = G.mapping(z, c)
        ref = G.synthesis(ws, noise_mode="const").cpu()
        ref_cpu = G.cpu().synthesis(ws.cpu(), noise_mode="const")
        G.cuda()
        # fp16 keeps 3 more mantissa bits than bf16: 50.7 and 29.9 dB on the CPU's kernels for this random network
        for dtype, floor in (("fp16", 40), ("bf16", 25)):
            out = G.synthesis(ws, noise_mode="const", dtype=dtype).cpu()
            assert out.dtype == torch.float32 and _psnr(out, ref).min() > floor, dtype
            fused = G.synthesis(ws[:1], noise_mode="const", dtype=dtype, fused=True).cpu()
            assert _psnr(fused, ref[:1]).min() > floor, dtype
    assert _psnr(ref, ref_cpu).min() > 45  # CUDA "fp32" agrees with the CPU (cuDNN may use TF32 for convolutions)


@pytest.mark.gpu
def test_cuda_fp16_gradient_to_the_codes():
    G = load_any(NV_PKL).G_ema.eval().to("cuda")
    c = torch.eye(G.config.c_dim)[[0, 1]].cuda()
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)).cuda(), c).detach()
    grads = []
    for dtype in ("fp32", "fp16", "bf16"):
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, noise_mode="const", dtype=dtype).square().mean().backward()
        grads.append(w.grad.flatten())
    cos = torch.nn.functional.cosine_similarity
    assert cos(grads[0], grads[1], dim=0) > 0.99 and cos(grads[0], grads[2], dim=0) > 0.99
