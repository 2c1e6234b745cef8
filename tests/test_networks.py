"""Generator and discriminator: golden outputs, shapes, determinism, truncation, style mixing, noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from latentlab.nn import (
    PRESETS,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    get_preset,
    num_ws_for,
    sample_z,
    use_fused_modconv,
)
from latentlab.nn.discriminator import minibatch_stddev

from conftest import tiny_D, tiny_G

GOLDEN = Path(__file__).parent / "fixtures" / "golden_nvidia_tiny.safetensors"


def _golden():
    with safe_open(str(GOLDEN), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return json.loads(meta["configs"]), tensors, meta["reference"]


@pytest.mark.parametrize("tag", ["uncond", "cond", "orig", "skipd"])
def test_golden_outputs_match_nvidia_reference(tag):
    """Weights in NVIDIA's naming load one-to-one and reproduce the reference implementation's outputs
    (tests/fixtures/golden_nvidia_tiny.safetensors: tensors produced by stylegan2-ada-pytorch itself)."""
    configs, t, reference = _golden()
    assert "stylegan2-ada-pytorch" in reference
    G = Generator(GeneratorConfig(**configs[tag]["G"])).eval()
    D = Discriminator(DiscriminatorConfig(**configs[tag]["D"])).eval()
    G.load_state_dict({k[len(tag) + 3 :]: v for k, v in t.items() if k.startswith(f"{tag}.G.")}, strict=True)
    D.load_state_dict({k[len(tag) + 3 :]: v for k, v in t.items() if k.startswith(f"{tag}.D.")}, strict=True)
    z, c = t[f"{tag}.z"], t.get(f"{tag}.c")
    with torch.no_grad():
        assert torch.allclose(G.mapping(z, c), t[f"{tag}.ws"], atol=1e-5)
        for fused in (True, False):
            for channels_last in (True, False):
                kw = dict(fused=fused, channels_last=channels_last)
                img = G(z, c, noise_mode="const", **kw)
                assert (img - t[f"{tag}.img_psi1_const"]).abs().max().item() <= 1e-4
                img = G(z, c, truncation_psi=0.7, noise_mode="const", **kw)
                assert (img - t[f"{tag}.img_psi07_const"]).abs().max().item() <= 1e-4
                img = G(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="none", **kw)
                assert (img - t[f"{tag}.img_psi05_cut2_none"]).abs().max().item() <= 1e-4
        logits = D(t[f"{tag}.img_psi1_const"], c)
        assert (logits - t[f"{tag}.logits"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("res", [4, 8, 16, 32, 64, 128, 256, 512, 1024])
def test_num_ws(res):
    assert num_ws_for(res) == {4: 2, 8: 4, 16: 6, 32: 8, 64: 10, 128: 12, 256: 14, 512: 16, 1024: 18}[res]


@pytest.mark.parametrize("res", [4, 8, 16, 32])
@pytest.mark.parametrize("arch", ["skip", "orig", "resnet"])
def test_generator_shapes(res, arch):
    cfg = GeneratorConfig(resolution=res, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8,
                          architecture=arch)  # fmt: skip
    G = Generator(cfg).eval()
    assert G.num_ws == num_ws_for(res)
    assert len(G.synthesis.noise_layers()) == G.num_ws - 1
    z = torch.randn(3, 8)
    ws = G.mapping(z)
    assert ws.shape == (3, G.num_ws, 8)
    img = G.synthesis(ws)
    assert img.shape == (3, 3, res, res) and img.dtype == torch.float32 and img.is_contiguous()


def test_grey_and_conditional_generator():
    G = Generator(GeneratorConfig(resolution=8, z_dim=4, w_dim=8, c_dim=5, img_channels=1, channel_base=64,
                                  channel_max=8, mapping_layers=2))  # fmt: skip
    img = G(torch.randn(2, 4), torch.eye(5)[:2])
    assert img.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"c \(labels\) must have shape \[N, 5\]"):
        G(torch.randn(2, 4))


def test_presets_build_and_validate():
    assert {"bench-a", "tiny", "stylegan2-1024"} <= set(PRESETS)
    a = get_preset("bench-a").G
    assert [a.channels(r) for r in (4, 8, 16, 32, 64)] == [128, 128, 128, 128, 64]
    assert (a.z_dim, a.w_dim, a.mapping_layers, a.resolution) == (512, 512, 8, 64)
    f = get_preset("stylegan2-1024").G
    assert [f.channels(r) for r in (32, 64, 128, 256, 512, 1024)] == [512, 512, 256, 128, 64, 32]
    with pytest.raises(KeyError, match="known presets: .*bench-a"):
        get_preset("nope")
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(resolution=48)
    with pytest.raises(ValueError, match="architecture"):
        GeneratorConfig(architecture="fancy")
    with pytest.raises(ValueError, match="resample_filter must be symmetric with an even number of taps"):
        GeneratorConfig(resample_filter=(1, 2, 1))
    with pytest.raises(ValueError, match="resample_filter must be symmetric"):
        DiscriminatorConfig(resample_filter=(1, 3))
    assert GeneratorConfig(resample_filter=[1, 1]).resample_filter == (1, 1)
    with pytest.raises(ValueError, match="unknown GeneratorConfig field"):
        GeneratorConfig.from_dict({"resolution": 16, "bogus": 1})
    assert GeneratorConfig.from_dict(a.to_dict()) == a


def test_determinism_for_a_seed(G):
    z1 = sample_z(G.z_dim, 4, seed=7)
    z2 = sample_z(G.z_dim, 4, seed=7)
    assert torch.equal(z1, z2)
    with torch.no_grad():
        a = G(z1, noise_mode="random", generator=torch.Generator().manual_seed(3))
        b = G(z2, noise_mode="random", generator=torch.Generator().manual_seed(3))
        c = G(z2, noise_mode="random", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3  # noise matters (strengths are non-zero)
    assert not torch.equal(sample_z(G.z_dim, 4, seed=8), z1)


def test_psi_zero_gives_the_w_avg_image(G):
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        img = G(z, truncation_psi=0, noise_mode="const")
        ref = G.synthesis(G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const")
    assert torch.allclose(img, ref.expand_as(img), atol=1e-5)


def test_truncation_formula_and_cutoff(G):
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z)
    t = G.mapping(z, truncation_psi=0.6, truncation_cutoff=3)
    assert torch.allclose(t[:, :3], G.w_avg + 0.6 * (ws[:, :3] - G.w_avg), atol=1e-5)
    assert torch.equal(t[:, 3:], ws[:, 3:])


def test_w_avg_tracks_the_mean_in_training():
    G = tiny_G()
    G.mapping.w_avg.zero_()
    G.train()
    z = torch.randn(64, G.z_dim)
    w = G.mapping(z)[:, 0]
    assert torch.allclose(G.w_avg, (1 - 0.995) * w.mean(0), atol=1e-5)
    G.eval()
    before = G.w_avg.clone()
    G.mapping(z)
    assert torch.equal(G.w_avg, before)


def test_style_mixing_uses_each_code_on_its_layers(G):
    """ws[:, i] must reach conv layer i (and the ToRGB before it) and nothing else."""
    a = G.mapping(torch.randn(2, G.z_dim))
    b = G.mapping(torch.randn(2, G.z_dim))
    mixed = a.clone()
    mixed[:, 3:] = b[:, 3:]
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in G.synthesis.named_modules():
        if name.endswith("affine"):
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, i[0])))
    with torch.no_grad():
        G.synthesis(mixed, noise_mode="const")
    for h in hooks:
        h.remove()
    for i, (layer_name, _) in enumerate(G.synthesis.noise_layers()):
        src = b if i >= 3 else a
        assert torch.equal(seen[f"{layer_name}.affine"], src[:, i]), layer_name
    # ToRGB of a block reads the next block's first code; the last ToRGB the last code.
    for block in G.synthesis.blocks():
        idx = {4: 1, 8: 3, 16: 5}[block.resolution]
        src = b if idx >= 3 else a
        assert torch.equal(seen[f"b{block.resolution}.torgb.affine"], src[:, idx])


def test_noise_modes_and_explicit_noise(G):
    ws = G.mapping(torch.randn(2, G.z_dim))
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        none = G.synthesis(ws, noise_mode="none")
        assert (const - none).abs().max() > 1e-3
        # Explicit maps equal to the stored ones reproduce "const"; zeros reproduce "none".
        stored = [layer.noise_const for _, layer in G.synthesis.noise_layers()]
        assert torch.allclose(G.synthesis(ws, noise=stored), const, atol=1e-6)
        zeros = [torch.zeros_like(n) for n in stored]
        assert torch.allclose(G.synthesis(ws, noise=zeros), none, atol=1e-6)
        # Per-sample maps: sample 1 gets different noise, sample 0 the stored maps.
        per_sample = [torch.stack([n, torch.randn_like(n)])[:, None] for n in stored]
        mixed = G.synthesis(ws, noise=per_sample)
        assert torch.allclose(mixed[0], const[0], atol=1e-6) and (mixed[1] - const[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G.synthesis(ws, noise_mode="loud")
    with pytest.raises(ValueError, match="must list 5 per-layer maps"):
        G.synthesis(ws, noise=stored[:2])
    bad = [torch.zeros(3, 1, *n.shape) for n in stored]  # batch 3 for a batch of 2
    with pytest.raises(ValueError, match=r"noise for a 4x4 layer must be \[2 or 1, 1, 4, 4\] .* got \(3, 1, 4, 4\)"):
        G.synthesis(ws, noise=bad)
    no_noise = tiny_G(use_noise=False)
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        no_noise.synthesis(ws, noise_mode="loud")


def test_synthesis_shape_error_states_shape(G):
    with pytest.raises(ValueError, match=r"ws of shape \[N, 6, 32\], got \(2, 5, 32\)"):
        G.synthesis(torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match=r"z must have shape \[N, 32\], got \(2, 3\)"):
        G(torch.randn(2, 3))


def test_generator_gradients_reach_ws_and_parameters(G):
    G.requires_grad_(True)
    ws = G.mapping(torch.randn(2, G.z_dim)).detach().requires_grad_(True)
    G.synthesis(ws, noise_mode="const").square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    for name, p in G.synthesis.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_discriminator_output_shape_and_gradients(D):
    D.requires_grad_(True)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = D(img)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_conditional_discriminator():
    D = tiny_D(c_dim=3)
    logits = D(torch.randn(4, 3, 16, 16), torch.eye(3)[[0, 1, 2, 0]])
    assert logits.shape == (4, 1)
    with pytest.raises(ValueError, match=r"images \[N, 3, 16, 16\], got \(4, 3, 8, 8\)"):
        D(torch.randn(4, 3, 8, 8))


def test_minibatch_stddev_known_answer():
    # Two groups of two (strided: samples 0,2 and 1,3). Sample values 0/2 -> std 1; 1/1 -> std 0.
    x = torch.tensor([0.0, 1.0, 2.0, 1.0]).reshape(4, 1, 1, 1).expand(4, 2, 2, 2).contiguous()
    y = minibatch_stddev(x, group_size=2)
    assert y.shape == (4, 3, 2, 2)
    assert torch.allclose(y[:, 2, 0, 0], torch.tensor([1.0, 1e-4, 1.0, 1e-4]), atol=1e-6)
    with pytest.raises(ValueError, match="does not divide"):
        minibatch_stddev(torch.randn(6, 2, 2, 2), group_size=4)


def test_channels_last_and_nchw_agree(G):
    ws = G.mapping(torch.randn(3, G.z_dim))
    with torch.no_grad():
        a = G.synthesis(ws, noise_mode="const", channels_last=True)
        b = G.synthesis(ws, noise_mode="const", channels_last=False)
    assert (a - b).abs().max().item() < 1e-5


def test_conv_clamp_limits_activations():
    G = tiny_G(conv_clamp=0.05)
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim), noise_mode="const")
    # Each ToRGB output is clamped to +-0.05 and the skip sum accumulates 3 of them (with FIR gain 1).
    assert img.abs().max().item() <= 0.05 * 3 + 1e-5


@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_synthesis_stays_channels_last(G, batch):
    """Every layer keeps channels-last activations on CPU, including for a batch of one, where oneDNN returns
    odd batch strides that used to send the transposed convolution (and everything after it) to NCHW."""
    formats = {}

    def record(name):
        def hook(module, inputs, output):
            formats[name] = output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous()

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in G.synthesis.named_modules()
               if n.endswith(("conv0", "conv1", "torgb"))]  # fmt: skip
    with torch.no_grad():
        G.synthesis(G.mapping(torch.randn(batch, G.z_dim)), noise_mode="const", channels_last=True)
    for h in handles:
        h.remove()
    assert formats and all(formats.values()), {k: v for k, v in formats.items() if not v}


def test_fused_rule():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_fused_modconv(1, cpu, needs_grad=False)
    assert not use_fused_modconv(8, cpu, needs_grad=False)
    assert not use_fused_modconv(1, cpu, needs_grad=True)  # projection: non-fused backward is faster
    assert use_fused_modconv(8, cuda, needs_grad=False) and not use_fused_modconv(8, cuda, needs_grad=True)


def test_synthesis_picks_nonfused_when_differentiating(G, monkeypatch):
    from latentlab.nn import layers

    seen = []
    real = layers.modulated_conv2d

    def spy(*args, **kwargs):
        seen.append(kwargs["fused"])
        return real(*args, **kwargs)

    monkeypatch.setattr("latentlab.nn.synthesis.modulated_conv2d", spy)
    G.requires_grad_(False)
    ws = G.mapping(torch.randn(1, G.z_dim))
    with torch.no_grad():
        G.synthesis(ws)
    assert seen and all(seen)  # batch of one, inference: fused
    seen.clear()
    G.synthesis(ws.clone().requires_grad_(True))
    assert seen and not any(seen)  # gradients to ws: non-fused


def test_conv_clamp_networks_backpropagate_to_ws_and_noise():
    from conftest import tiny_G

    G = tiny_G(conv_clamp=256)
    ws = G.mapping(torch.randn(2, G.z_dim), None).detach().requires_grad_(True)
    noise = [torch.randn(2, 1, layer.resolution, layer.resolution, requires_grad=True)
             for _, layer in G.synthesis.noise_layers()]  # fmt: skip
    G.synthesis(ws, noise=noise).square().sum().backward()  # clamps used to be in place and broke this
    assert ws.grad.abs().sum() > 0 and all(n.grad is not None for n in noise)


def test_tiny_networks_depend_on_their_seed_alone():
    torch.manual_seed(123)
    a = tiny_G(3).state_dict()
    torch.manual_seed(456)
    b = tiny_G(3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(tiny_D(1).b4.fc.weight, tiny_D(2).b4.fc.weight)


def test_synthesis_until_returns_the_partial_skip_image():
    G = tiny_G(seed=3)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    with torch.no_grad():
        full = G.synthesis(ws, noise_mode="const")
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const", until=16), full, rtol=0, atol=0)
        # the blocks one by one, through their own API: the image after the 8x8 block
        x = img = None
        w_idx = 0
        for block in G.synthesis.blocks()[:2]:
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), noise_mode="const",
                           fused=False, memory_format=torch.channels_last)  # fmt: skip
            w_idx += block.num_conv
        part = G.synthesis(ws, noise_mode="const", until=8)
    assert part.shape == (2, 3, 8, 8)
    torch.testing.assert_close(part, img.contiguous(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"until must be one of the block resolutions \[4, 8, 16\], got 12"):
        G.synthesis(ws, until=12)
    with pytest.raises(ValueError, match="needs the skip architecture"):
        tiny_G(seed=3, architecture="orig").synthesis(ws, until=8)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, images in [-1, 1] (peak-to-peak 2, so 4 over the MSE)."""
    return 10 * torch.log10(4 / (a - b).square().mean(dim=(1, 2, 3)))


def test_bfloat16_synthesis_of_the_embedded_model_is_within_40_db_of_float32():
    """The issue's bar: bf16 activations, float32 styles, demodulation and image; the result comes back float32
    and close to the float32 render, through either spelling of the dtype and either modulation form."""
    from latentlab.pretrained import load_generator

    G = load_generator("synthfaces-64", device="cpu")
    ws = G.mapping(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const")
        bf = G.synthesis(ws, noise_mode="const", dtype=torch.bfloat16)
        assert torch.equal(G.synthesis(ws, noise_mode="const", dtype="bf16"), bf)
        assert torch.equal(G.synthesis(ws, noise_mode="const", dtype="fp32"), ref)
        fused = G.synthesis(ws[:1], noise_mode="const", dtype=torch.bfloat16, fused=True)
    assert bf.dtype == torch.float32 and bf.shape == ref.shape and bf.is_contiguous()
    assert not torch.equal(bf, ref)  # it did run in bfloat16
    assert _psnr(bf, ref).min() > 40
    assert _psnr(fused, ref[:1]).min() > 40


def test_bfloat16_synthesis_keeps_the_gradient_to_the_codes():
    G = tiny_G()
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)), None).detach()
    ws.requires_grad_(True)
    G.synthesis(ws, noise_mode="const", dtype=torch.bfloat16).square().mean().backward()
    g_bf = ws.grad.clone()
    ws.grad = None
    G.synthesis(ws, noise_mode="const").square().mean().backward()
    assert g_bf.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(g_bf.flatten(), ws.grad.flatten(), dim=0)
    assert cos > 0.99


def test_synthesis_dtype_is_checked():
    G = tiny_G()
    ws = G.mapping(torch.randn(1, G.z_dim), None)
    with pytest.raises(ValueError, match="float16 synthesis needs a CUDA device"):
        G.synthesis(ws, dtype=torch.float16)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, got 'int8'"):
        G.synthesis(ws, dtype="int8")
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        G.synthesis(ws, dtype=torch.float64)


def test_bfloat16_synthesis_of_stylegan1_keeps_its_instance_norm_in_float32():
    cfg = get_preset("stylegan1-tiny").G
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(**cfg.to_dict())).eval()
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(2)), None)
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const")
        bf = G.synthesis(ws, noise_mode="const", dtype="bf16")
    assert bf.dtype == torch.float32 and not torch.equal(bf, ref)
    assert _psnr(bf, ref).min() > 35


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_bfloat16_synthesis_runs_every_architecture(architecture):
    G = tiny_G(architecture=architecture)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)), None)
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const")
        bf = G.synthesis(ws, noise_mode="const", dtype="bf16")
    assert bf.dtype == torch.float32 and not torch.equal(bf, ref)
    assert _psnr(bf, ref).min() > 33  # an untrained network's large activations: 37-45 dB measured
