"""Projection: schedules, regularization, the optimizer on tiny networks, losses, inputs, outputs and the CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentlab import Generator, get_preset, load_latents, save_checkpoint
from latentlab.cli import cli
from latentlab.io.images import from_uint8, to_uint8
from latentlab.perceptual import MultiScaleSSIMLoss, backbone_path
from latentlab.perceptual.pixels import psnr, ssim
from latentlab.projection import (
    LPIPSLoss,
    ProjectConfig,
    WeightsUnavailable,
    build_loss,
    learning_rate,
    load_targets,
    noise_regularization,
    normalize_noise_,
    project,
    project_batch,
    w_noise_scale,
    w_statistics,
)
from latentlab.validate import InvalidInput

from conftest import tiny_D, tiny_G

# ----------------------------------------------------------------------------- schedules and regularization


def test_learning_rate_schedule_matches_the_formula():
    steps = 1000
    for step in (0, 10, 49, 50, 300, 749, 750, 900, 999):
        t = step / steps
        expected = 0.1 * min(1.0, t / 0.05) * (0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / 0.25)))
        assert learning_rate(step, steps) == pytest.approx(expected, abs=1e-12)
    assert learning_rate(0, steps) == 0
    assert learning_rate(25, steps) == pytest.approx(0.05)  # halfway up the ramp
    assert learning_rate(400, steps) == pytest.approx(0.1)  # the plateau
    assert learning_rate(875, steps) == pytest.approx(0.05)  # halfway down the cosine
    assert learning_rate(999, steps) < 1e-4


def test_w_noise_scale_ramps_quadratically_to_zero():
    assert w_noise_scale(0, 100, w_std=2.0) == pytest.approx(0.1)
    assert w_noise_scale(375, 1000, w_std=2.0) == pytest.approx(0.1 * 0.25)  # (1 - 0.5)^2
    assert w_noise_scale(750, 1000, w_std=2.0) == 0
    assert w_noise_scale(900, 1000, w_std=2.0) == 0


def test_noise_regularization_known_answers():
    ones = torch.ones(2, 3, 16, 16)  # 3 layers; scales 16 and 8; two directions: 3 * 2 * 2 * 1^2
    assert torch.allclose(noise_regularization([ones]), torch.full([2], 12.0))
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 2.0 - 1  # neighbours multiply to -1
    assert torch.allclose(noise_regularization([checker.expand(1, 1, 8, 8)]), torch.tensor([2.0]))
    white = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert noise_regularization([white]).item() < 1e-2
    # Per image: image 0 does not see image 1.
    both = torch.stack([white[0], ones[0, :1, :8, :8].repeat(1, 8, 8)])
    assert noise_regularization([both])[0] == pytest.approx(noise_regularization([white])[0].item(), rel=1e-5)


def test_normalize_noise_per_image_and_layer():
    scale = torch.tensor([1.0, 5.0]).reshape(1, 2, 1, 1)
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * scale + 3
    normalize_noise_([x])
    assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(3, 2), atol=1e-5)
    assert torch.allclose(x.square().mean(dim=(2, 3)), torch.ones(3, 2), atol=1e-5)


def test_w_statistics_definition():
    G = tiny_G()
    mean, std = w_statistics(G, samples=500, seed=3)
    z = torch.randn([500, G.z_dim], generator=torch.Generator().manual_seed(3))
    w = G.mapping(z, None)[:, 0].double()
    assert torch.allclose(mean.double(), w.mean(0), atol=1e-5)
    assert std == pytest.approx(((w - w.mean(0)).square().sum() / 500).sqrt().item(), rel=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="space must be one of"):
        ProjectConfig(space="z")
    with pytest.raises(ValueError, match="steps=0 from w_avg projects nothing"):
        ProjectConfig(steps=0)
    assert ProjectConfig(steps=0, init="encoder").steps == 0  # the encoder alone
    # NVIDIA's code noise (0.05 w_std) from w_avg, none from an encoder's code; lr 0.1 but 0.03 for short refinements
    assert ProjectConfig().noise_factor == 0.05 and ProjectConfig(init="encoder").noise_factor == 0.0
    assert ProjectConfig().lr == 0.1 and ProjectConfig(init="encoder", steps=100).lr == 0.1
    assert ProjectConfig(init="encoder", steps=99).lr == 0.03  # a short refinement takes smaller steps
    assert ProjectConfig(init="encoder", noise_factor=0.05).noise_factor == 0.05
    with pytest.raises(ValueError, match="noise_factor must be >= 0"):
        ProjectConfig(noise_factor=-1)
    with pytest.raises(ValueError, match="init must be one of"):
        ProjectConfig(init="zeros")
    with pytest.raises(ValueError, match="lr_rampup must be > 0 and <= 1, got 0"):
        ProjectConfig(lr_rampup=0)
    for field, value, why in [("lr", float("inf"), "lr must be a finite number"),
                              ("noise_weight", float("nan"), "noise_weight must be a finite number, got nan"),
                              ("mse_weight", -1, "mse_weight must be >= 0"), ("steps", 2.5, "must be an integer"),
                              ("optimize_noise", "yes", "optimize_noise must be True or False")]:  # fmt: skip
        with pytest.raises(ValueError, match=why):
            ProjectConfig(**{field: value})


# ----------------------------------------------------------------------------- the optimizer


def _target(G, seed=7, n=1):
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z, None)
        return G.synthesis(ws, noise_mode="const"), ws


def _init_G(seed=0):
    """A tiny G with its ordinary initialisation: images of moderate range, a smooth landscape."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Generator(get_preset("tiny").G).eval()


def test_loss_falls_and_w_projection_recovers_a_generated_image():
    G = _init_G()
    target, ws_true = _target(G)
    first = []
    p = project_batch(G, target, build_loss("mse"), ProjectConfig(steps=300, optimize_noise=False, w_avg_samples=500),
                      on_step=lambda s, d: first.append(d.item()))
    assert p.losses.item() < 0.05 * first[0]
    assert psnr(target, p.images).item() > 30
    assert (p.ws - ws_true).norm() < 0.3 * ws_true.norm()
    start = psnr(target, G.synthesis(w_statistics(G, 500)[0].expand(1, G.num_ws, -1), noise_mode="const")).item()
    assert psnr(target, p.images).item() > start + 10
    assert p.ws.shape == (1, G.num_ws, G.w_dim)
    assert torch.equal(p.ws[:, 0], p.ws[:, -1])  # W: one code broadcast


def test_a_bfloat16_search_finds_what_float32_finds_and_renders_in_float32():
    from latentlab.render import render_codes

    G = _init_G()
    target, _ = _target(G)
    runs = {p: project_batch(G, target, build_loss("mse"), ProjectConfig(steps=150, w_avg_samples=500, precision=p))
            for p in ("fp32", "bf16")}  # fmt: skip
    a, b = runs["fp32"], runs["bf16"]
    assert b.config.precision == "bf16" and not torch.equal(a.ws, b.ws)  # the search did run in bfloat16
    assert psnr(target, b.images).item() > 25
    assert abs(psnr(target, b.images).item() - psnr(target, a.images).item()) < 1.5
    # the result is the float32 rendering of the codes found: it re-renders exactly with generate --latents
    assert torch.equal(b.images, render_codes(G, b.ws, b.noise))
    with pytest.raises(InvalidInput, match="precision"):
        ProjectConfig(precision="int8")
    with pytest.raises(ValueError, match="float16 synthesis needs a CUDA device"):
        project_batch(G, target, build_loss("mse"), ProjectConfig(steps=2, w_avg_samples=100, precision="fp16"))


def test_w_plus_fits_closer_than_w_and_has_per_layer_codes():
    G = tiny_G()
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1  # not G's image
    cfg = dict(steps=150, w_avg_samples=500)
    w = project(G, target, space="w", loss="mse", progress=False, **cfg)
    wp = project(G, target, space="w+", loss="mse", progress=False, **cfg)
    assert wp.losses.item() < w.losses.item()
    assert not torch.equal(wp.ws[:, 0], wp.ws[:, 1])


def test_batch_independence():
    G = tiny_G()
    targets, _ = _target(G, seed=3, n=3)
    cfg = ProjectConfig(steps=40, space="w+", w_avg_samples=500)
    together = project_batch(G, targets, build_loss("mse"), cfg)
    alone = project_batch(G, targets[1:2], build_loss("mse"), cfg)
    assert torch.allclose(together.ws[1:2], alone.ws, atol=1e-4)
    for a, b in zip(together.noise, alone.noise, strict=True):
        if a is not None:
            assert torch.allclose(a[1:2], b, atol=1e-4)
    # The same image twice in one batch gets the same result (its own generator, the same seed).
    twice = project_batch(G, targets[1:2].repeat(2, 1, 1, 1), build_loss("mse"), cfg)
    assert torch.allclose(twice.ws[0], twice.ws[1], atol=1e-5)


def test_noise_maps_are_normalised_and_g_is_left_alone():
    G = tiny_G()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    grads = [p.requires_grad for p in G.parameters()]
    p = project_batch(G, _target(G)[0], build_loss("mse"), ProjectConfig(steps=5, w_avg_samples=100))
    for x in p.noise:
        if x is not None:
            assert torch.allclose(x.mean(dim=(2, 3)), torch.zeros(1, 1), atol=1e-5)
            assert torch.allclose(x.square().mean(dim=(2, 3)), torch.ones(1, 1), atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert [p.requires_grad for p in G.parameters()] == grads


def test_targets_of_the_wrong_shape_are_refused():
    G = tiny_G()
    with pytest.raises(ValueError, match=r"targets must be \[N, 3, 16, 16\] for this generator, got \(1, 3, 32, 32\)"):
        project_batch(G, torch.zeros(1, 3, 32, 32), build_loss("mse"))
    bad = [(np.zeros((1, 3, 16, 16), np.float32), "got ndarray of float32; convert uint8"),
           (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "got Tensor of torch.uint8"),
           (torch.full((1, 3, 16, 16), float("nan")), "non-finite"),
           (torch.full((1, 3, 16, 16), 255.0), "were they 0..255 pixels"),
           (torch.zeros(0, 3, 16, 16), "is empty")]  # fmt: skip
    for images, why in bad:
        with pytest.raises(InvalidInput, match=why):
            project(G, images, steps=2, loss="mse", progress=False, w_avg_samples=10)


def test_video_frames_are_recorded():
    G = tiny_G()
    p = project_batch(G, _target(G, n=2)[0], build_loss("mse"), ProjectConfig(steps=12, w_avg_samples=100), frames=4)
    assert p.frames.shape == (4, 2, 16, 16, 3) and p.frames.dtype == np.uint8


# ----------------------------------------------------------------------------- losses and the offline policy


def test_ssim_and_psnr_known_values():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert ssim(x, -x).max() < 0.5
    y = x.clone()
    y[0] += 2 / 255  # one 8-bit level everywhere: MSE 1 -> 48.13 dB
    assert psnr(x, y)[0].item() == pytest.approx(10 * math.log10(255**2), abs=1e-3)
    assert math.isinf(psnr(x, y)[1].item())


def test_ms_ssim_loss_is_zero_for_identical_images_and_per_image():
    loss = MultiScaleSSIMLoss()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(loss(x, loss.prepare(x)), torch.zeros(2), atol=1e-6)
    y = x.clone()
    y[1] = 0
    out = loss(y, loss.prepare(x))
    assert out[0].abs() < 1e-6 and out[1] > 0.3


def test_d_features_loss_needs_d_and_is_per_image():
    with pytest.raises(ValueError, match="needs the model's discriminator"):
        build_loss("d-features")
    loss = build_loss("d-features", D=tiny_D())
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = x.flip(0)
    full = loss(y, loss.prepare(x))
    single = loss(y[1:2], loss.prepare(x[1:2]))
    assert full[1] == pytest.approx(single[0].item(), rel=1e-5)
    assert torch.allclose(loss(x, loss.prepare(x)), torch.zeros(3), atol=1e-6)


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown projection loss 'vgg'; known: auto, lpips-vgg"):
        build_loss("vgg")


def test_lpips_by_name_without_weights_names_the_file(tmp_path):
    with pytest.raises(WeightsUnavailable) as e:
        build_loss("lpips-vgg", download=False)
    msg = str(e.value)
    assert "vgg16-397923af.pth" in msg and str(backbone_path("vgg")) in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg


def test_auto_falls_back_with_one_line():
    lines = []
    loss = build_loss("auto", log=lines.append)  # downloads are off in tests
    assert loss.name == "ms-ssim"
    assert len(lines) == 1 and "vgg16-397923af.pth" in lines[0] and "offline loss 'ms-ssim'" in lines[0]


def _fake_vgg_file(path):
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.vgg16().state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's notice for the reference's pretrained=False
def test_lpips_loads_backbone_weights_from_the_cache_and_matches_the_package():
    import lpips

    state = _fake_vgg_file(backbone_path("vgg").parent / "mine.pth")  # a user's file: used as given
    loss = build_loss("auto", log=None, lpips_weights=backbone_path("vgg").parent / "mine.pth")
    assert isinstance(loss, LPIPSLoss) and loss.name == "lpips-vgg"
    assert torch.equal(getattr(loss.model.net.slice3, "10").weight, state["features.10.weight"])
    assert torch.equal(getattr(loss.model.net.slice5, "28").bias, state["features.28.bias"])
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    ref.net.load_state_dict(loss.model.net.state_dict())
    with torch.no_grad():
        expected = ref(x, y).flatten()
        got = loss(x, loss.prepare(y))
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_lpips_downsamples_large_images_to_256():
    loss = LPIPSLoss("alex", random_backbone=True)
    big = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0)) * 2 - 1
    small = torch.nn.functional.adaptive_avg_pool2d(big, 256)
    assert [f.shape[-1] for f in loss.prepare(big)] == [f.shape[-1] for f in loss.prepare(small)]
    assert torch.allclose(loss(big, loss.prepare(small)), torch.zeros(1), atol=1e-6)


def test_a_corrupt_backbone_file_is_reported():
    path = backbone_path("vgg")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x80not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="does not start with 397923af.*so it is not used"):
        build_loss("lpips-vgg", download=False)  # in the cache: checked against its name's SHA-256 prefix
    with pytest.raises(WeightsUnavailable, match="not a readable weight pickle|truncated or corrupt weight pickle"):
        build_loss("lpips-vgg", download=False, lpips_weights=path)  # named by the user: read, and refused


# ----------------------------------------------------------------------------- inputs


def _png(path, array, mode=None, **kw):
    Image.fromarray(array, mode).save(path, **kw) if mode else Image.fromarray(array).save(path, **kw)
    return path


def test_input_edge_cases(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    files = {
        "rgb": _png(tmp_path / "rgb.png", rgb),
        "rgba": _png(tmp_path / "rgba.png", np.dstack([rgb, np.full((40, 40), 0, np.uint8)])),
        "grey": _png(tmp_path / "grey.png", rgb[:, :, 0]),
        "sixteen": _png(tmp_path / "sixteen.png", (rgb[:, :, 0].astype(np.uint16) * 257)),
        "wide": _png(tmp_path / "wide.png", rng.integers(0, 256, (20, 60, 3), dtype=np.uint8)),
        "huge": tmp_path / "huge.jpg",
    }
    Image.fromarray(np.zeros((3000, 4000, 3), np.uint8)).save(files["huge"], quality=50)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes((tmp_path / "rgb.png").read_bytes()[:60])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _png(tmp_path / "tiny.png", rgb[:2, :2])
    _png(tmp_path / "sliver.png", rng.integers(0, 256, (1, 500, 3), dtype=np.uint8))
    Image.fromarray(np.full((20, 20), np.nan, np.float32), "F").save(tmp_path / "nan.tif")
    Image.fromarray(rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)).save(tmp_path / "small-wide.gif")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    bad = ["tiny.png", "sliver.png", "nan.tif", "loop.png"]
    t = load_targets([*files.values(), corrupt, text, tmp_path / "missing.png", *(tmp_path / b for b in bad),
                      tmp_path / "small-wide.gif"], resolution=16)  # fmt: skip
    assert [p.stem for p in t.paths] == [*files, "small-wide"]
    assert t.images.shape == (7, 3, 16, 16) and t.images.min() >= -1 and t.images.max() <= 1
    assert torch.all(t.images[1] == 1)  # fully transparent over white
    assert torch.equal(t.images[2][0], t.images[2][1])  # grey replicated
    assert torch.allclose(t.images[3], t.images[2], atol=2 / 255)  # 16-bit scaled to 8-bit
    reasons = dict((p.name, r) for p, r in t.skipped)
    assert set(reasons) == {"corrupt.png", "notes.txt", "missing.png", *bad}
    assert "not a readable image" in reasons["notes.txt"] and "no such file" in reasons["missing.png"]
    assert "too small to use (2x2" in reasons["tiny.png"] and "too small to use (500x1" in reasons["sliver.png"]
    assert "400 of 400 pixels NaN or infinite" in reasons["nan.tif"] and "a symlink loop" in reasons["loop.png"]
    assert t.notes == [(files["wide"], "the centre crop keeps 20x20 of 60x20"),
                       (tmp_path / "small-wide.gif", "the centre crop keeps 12x12 of 40x12")]
    none = load_targets([files["wide"]], resolution=16, crop="none")
    assert not none.paths and "not square (60x20)" in none.skipped[0][1]


def test_exif_rotation_is_applied(tmp_path):
    a = np.zeros((16, 32, 3), np.uint8)
    a[:, :16] = 255  # left half white
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display: the white half goes to the top
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    (tmp_path / "r.jpg").write_bytes(buf.getvalue())
    t = load_targets([tmp_path / "r.jpg"], resolution=16)
    img = t.images[0].mean(0)
    assert img[:4].mean() > 0.8 and img[-4:].mean() < -0.8


# ----------------------------------------------------------------------------- CLI and files


def test_cli_projects_writes_everything_and_re_renders_exactly(tmp_path):
    G = tiny_G(0)
    ck = save_checkpoint(tmp_path / "net.safetensors", G_ema=G, D=tiny_D())
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    target, _ = _target(G, seed=11, n=2)
    for i, px in enumerate(to_uint8(target)):
        Image.fromarray(px).save(imgs / f"face{i}.png")
    (imgs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    args = ["--space", "w+", "--steps", "30", "--batch", "1", "--video", "--frames", "5", "--no-progress"]
    r = CliRunner().invoke(cli, ["project", "--network", str(ck), str(imgs), "--outdir", str(out), *args])
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and "broken.png" in r.output
    assert "offline loss" not in r.output  # auto at 32 px is ms-ssim by choice (measured), not for lack of weights
    for stem in ("face0", "face1"):
        for suffix in (".npz", ".png", "-compare.png", ".mp4"):
            assert (out / f"{stem}{suffix}").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2 and summary["loss"] == "ms-ssim" and summary["space"] == "w+"
    assert summary["skipped"][0]["path"].endswith("broken.png")
    assert summary["results"][0]["lpips"] is None
    recon = from_uint8(np.asarray(Image.open(out / "face0.png")))
    expected = psnr(from_uint8(to_uint8(target[:1])), recon).item()
    assert summary["results"][0]["psnr"] == pytest.approx(expected, rel=1e-5)
    assert (out / "summary.csv").read_text().splitlines()[0] == "name,source,loss,psnr,ssim,lpips"
    codes = load_latents(out / "face1.npz")
    assert codes.w.shape == (1, G.num_ws, G.w_dim) and codes.meta["space"] == "w+"
    assert sorted(k for k in codes.arrays if k.startswith("noise_")) == sorted(
        f"noise_{n}" for n, _ in G.synthesis.noise_layers())
    assert not list(out.glob(".*tmp*"))
    compare = np.asarray(Image.open(out / "face1-compare.png"))
    assert compare.shape == (16, 32, 3) and np.array_equal(compare[:, :16], to_uint8(target)[1])

    re = tmp_path / "re"
    r = CliRunner().invoke(cli, ["generate", "--network", str(ck), "--latents", str(out / "face1.npz"),
                                 "--outdir", str(re)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(re / "code0000.png")), np.asarray(Image.open(out / "face1.png")))


def test_cli_errors(tmp_path):
    ck = save_checkpoint(tmp_path / "net.safetensors", G_ema=tiny_G())
    (tmp_path / "x.txt").write_text("no")
    base = ["project", "--network", str(ck), "--outdir", str(tmp_path / "o")]
    r = CliRunner().invoke(cli, [*base, str(tmp_path / "x.txt")])
    assert r.exit_code == 1 and "no readable images to project" in r.output
    _png(tmp_path / "ok.png", np.zeros((16, 16, 3), np.uint8))
    r = CliRunner().invoke(cli, [*base, str(tmp_path / "ok.png"), "--loss", "lpips-vgg"])
    assert r.exit_code == 1 and "Download https://download.pytorch.org/models/vgg16-397923af.pth to" in r.output
    assert not (tmp_path / "o").exists()  # nothing half-written
    r = CliRunner().invoke(cli, ["generate", "--network", str(ck), "--outdir", str(tmp_path / "o")])
    assert r.exit_code != 0 and "exactly one of --seeds and --latents" in r.output


def test_generate_latents_refuses_codes_of_another_network(tmp_path):
    from latentlab import save_latents

    ck = save_checkpoint(tmp_path / "net.safetensors", G_ema=tiny_G())
    save_latents(tmp_path / "c.npz", torch.zeros(3, 8))
    r = CliRunner().invoke(cli, ["generate", "--network", str(ck), "--latents", str(tmp_path / "c.npz"),
                                 "--outdir", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 1 and "do not fit this network, which wants [6, 32]" in r.output


def test_projection_from_uint8_roundtrip_is_stable():
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    assert torch.equal(from_uint8(to_uint8(from_uint8(to_uint8(x)))), from_uint8(to_uint8(x)))


@pytest.mark.parametrize("fixture", ["nvidia_tiny.pkl", "rosinality_tiny.pt"])
def test_cli_projects_with_foreign_models(tmp_path, fixture):
    from pathlib import Path

    from latentlab import load_generator

    net = Path(__file__).parent / "fixtures" / fixture
    G = load_generator(net, device="cpu")
    c = torch.eye(G.c_dim)[1:2] if G.c_dim else None  # NVIDIA's fixture is conditional (3 classes)
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), c, noise_mode="const")
    _png(tmp_path / "t.png", to_uint8(img)[0])
    out = tmp_path / "out"
    args = ["project", "--network", str(net), str(tmp_path / "t.png"), "--outdir", str(out), "--steps", "10",
            "--loss", "mse", "--no-progress"]  # fmt: skip
    if G.c_dim:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1 and "conditional (3 classes): give a class index (--class)" in r.output
        args += ["--class", "1"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert load_latents(out / "t.npz").w.shape == (1, G.num_ws, G.w_dim)


def test_top_level_function_and_subpackage_both_work():
    import latentlab
    import latentlab.projection.projector as projector_module

    G = tiny_G()
    p = latentlab.project(G, _target(G)[0], steps=3, loss="mse", progress=False, w_avg_samples=100)
    assert isinstance(p, latentlab.Projection) and p.ws.shape == (1, G.num_ws, G.w_dim)
    assert projector_module.SPACES == ("w", "w+") and latentlab.projection.OFFLINE_DEFAULT == "ms-ssim"


def test_project_refuses_an_empty_batch():
    with pytest.raises(ValueError, match=r"images is empty \(shape \(0, 3, 16, 16\)\)"):
        project(tiny_G(), torch.zeros(0, 3, 16, 16), loss="mse", progress=False)


def test_generate_latents_with_truncation(tmp_path):
    from latentlab import save_latents
    from latentlab.render import render_codes

    G = tiny_G()
    ck = save_checkpoint(tmp_path / "net.safetensors", G_ema=G)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), None).detach()
    save_latents(tmp_path / "c.npz", ws)
    r = CliRunner().invoke(cli, ["generate", "--network", str(ck), "--latents", str(tmp_path / "c.npz"),
                                 "--trunc", "0.5", "--trunc-cutoff", "2", "--outdir", str(tmp_path / "o")])  # fmt: skip
    assert r.exit_code == 0, r.output
    expected = ws.clone()
    expected[:, :2] = G.w_avg + 0.5 * (ws[:, :2] - G.w_avg)
    want = to_uint8(render_codes(G, expected))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "code0001.png")), want[1])


def test_project_to_folder_writes_every_image_once_whatever_the_chunking(tmp_path):
    from latentlab.io import save_image
    from latentlab.perceptual import MSELoss
    from latentlab.projection.outputs import project_to_folder, summary_lpips

    G = tiny_G()
    imgs, _ = _target(G, n=3)
    paths = [tmp_path / "in" / "a.png", tmp_path / "in" / "b.png", tmp_path / "in2" / "b.png"]  # two share a stem
    for p, img in zip(paths, to_uint8(imgs), strict=True):
        p.parent.mkdir(exist_ok=True)
        save_image(p, img)
    targets = load_targets(paths, G.img_resolution)
    config = ProjectConfig(steps=4, w_avg_samples=100, loss="mse")
    loss = MSELoss()
    assert summary_lpips(loss) is None  # no VGG16 file offline: no LPIPS column
    lp = LPIPSLoss("vgg", random_backbone=True)
    assert summary_lpips(lp) is lp  # an LPIPS loss scores its own summary

    rows = project_to_folder(G, targets, tmp_path / "by2", loss, config, network="tiny", batch_size=2, progress=False)
    assert [r["name"] for r in rows] == ["a", "b", "b-2"]
    assert [r["source"] for r in rows] == [str(p) for p in paths]
    summary = json.loads((tmp_path / "by2" / "summary.json").read_text())
    assert summary["images"] == 3 and [r["name"] for r in summary["results"]] == ["a", "b", "b-2"]
    assert summary["network"] == "tiny" and summary["loss"] == "mse" and summary["steps"] == 4
    for name in ("a", "b", "b-2"):
        assert (tmp_path / "by2" / f"{name}.png").is_file() and (tmp_path / "by2" / f"{name}-compare.png").is_file()
        assert load_latents(tmp_path / "by2" / f"{name}.npz").meta["network"] == "tiny"

    again = project_to_folder(G, targets, tmp_path / "by3", loss, config, network="tiny", batch_size=3, progress=False)
    for r2, r3 in zip(rows, again, strict=True):  # each image is projected independently of its chunk mates
        w2 = load_latents(tmp_path / "by2" / f"{r2['name']}.npz").w
        w3 = load_latents(tmp_path / "by3" / f"{r3['name']}.npz").w
        assert torch.allclose(w2, w3, atol=1e-3) and r2["loss"] == pytest.approx(r3["loss"], rel=1e-3, abs=1e-5)
    with pytest.raises(ValueError, match="no readable images to project"):
        project_to_folder(G, load_targets([], G.img_resolution), tmp_path / "none", loss, config, network="tiny")


def test_resume_skips_complete_outputs_and_redoes_the_rest(tmp_path, monkeypatch):
    from latentlab.io import save_image
    from latentlab.perceptual import MSELoss
    from latentlab.projection.outputs import project_to_folder

    G = tiny_G()
    imgs, _ = _target(G, n=4)
    paths = [tmp_path / "in" / f"{k}.png" for k in "abcd"]
    (tmp_path / "in").mkdir()
    for p, img in zip(paths, to_uint8(imgs), strict=True):
        save_image(p, img)
    targets = load_targets(paths, G.img_resolution)
    config = ProjectConfig(steps=4, w_avg_samples=100, loss="mse")
    out = tmp_path / "out"
    full = project_to_folder(G, targets, out, MSELoss(), config, network="tiny", batch_size=2, progress=False)
    # A killed run: c's reconstruction never written, d never started; a and b complete.
    (out / "c.png").unlink()
    for f in ("d.npz", "d.png", "d-compare.png"):
        (out / f).unlink()
    kept = {f: (out / f).stat().st_mtime_ns for f in ("a.npz", "b.npz", "a.png")}
    w_before = {k: load_latents(out / f"{k}.npz").w for k in "abc"}
    calls = []
    import latentlab.projection.outputs as outputs

    real = outputs.project_chunk

    def counting(G, images, *args, **kwargs):
        calls.append(images.shape[0])
        return real(G, images, *args, **kwargs)

    monkeypatch.setattr(outputs, "project_chunk", counting)
    rows = project_to_folder(G, targets, out, MSELoss(), config, network="tiny", batch_size=2, progress=False,
                             resume=True)  # fmt: skip
    assert calls == [2]  # only c and d were projected again
    assert {f: (out / f).stat().st_mtime_ns for f in kept} == kept  # a and b untouched
    assert [r["name"] for r in rows] == ["a", "b", "c", "d"]
    for r, f in zip(rows, full, strict=True):  # the same figures as the uninterrupted run
        assert r["psnr"] == pytest.approx(f["psnr"], abs=1e-3) and r["loss"] == pytest.approx(f["loss"], rel=1e-3)
    assert torch.equal(load_latents(out / "c.npz").w, w_before["c"])  # redone with the same batch mate: same bits
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == 2 and [r["name"] for r in summary["results"]] == ["a", "b", "c", "d"]
    # A folder written before ProjectConfig had `precision` was made in fp32: it resumes, nothing is redone.
    import latentlab.projection.projector as projector

    monkeypatch.setattr(outputs, "config_dict", lambda c: {k: v for k, v in projector.config_dict(c).items()
                                                            if k != "precision"})  # fmt: skip
    for f in ("d.npz", "d.png", "d-compare.png"):
        (out / f).unlink()
    project_to_folder(G, targets, out, MSELoss(), config, network="tiny", batch_size=2, progress=False, resume=True)
    monkeypatch.setattr(outputs, "config_dict", projector.config_dict)
    assert "precision" not in load_latents(out / "d.npz").meta["config"]
    calls.clear()
    project_to_folder(G, targets, out, MSELoss(), config, network="tiny", batch_size=2, progress=False, resume=True)
    assert calls == []
    with pytest.raises(InvalidInput, match="precision 'fp32' \\(now 'bf16'\\)"):
        project_to_folder(G, targets, out, MSELoss(), dataclasses.replace(config, precision="bf16"), network="tiny",
                          progress=False, resume=True)  # fmt: skip
    # Other settings in the same folder are refused, not mixed in.
    with pytest.raises(InvalidInput, match="made with other settings"):
        project_to_folder(G, targets, out, MSELoss(), ProjectConfig(steps=5, w_avg_samples=100, loss="mse"),
                          network="tiny", progress=False, resume=True)  # fmt: skip


def test_target_files_are_read_a_chunk_at_a_time_and_unreadable_ones_skipped(tmp_path, monkeypatch):
    from latentlab.data.targets import TargetFiles
    from latentlab.io import save_image
    from latentlab.perceptual import MSELoss
    from latentlab.projection.outputs import project_to_folder

    G = tiny_G()
    imgs, _ = _target(G, n=4)
    (tmp_path / "in").mkdir()
    paths = []
    for k, img in zip("abcd", to_uint8(imgs), strict=True):
        save_image(tmp_path / "in" / f"{k}.png", img)
        paths.append(tmp_path / "in" / f"{k}.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"not a png")
    paths.insert(1, tmp_path / "in" / "bad.png")  # a, bad | b, c | d
    files = TargetFiles(paths, G.img_resolution)
    reads = []
    real = TargetFiles.read
    monkeypatch.setattr(TargetFiles, "read", lambda self, idx: reads.append(list(idx)) or real(self, idx))
    config = ProjectConfig(steps=4, w_avg_samples=100, loss="mse")
    said = []
    rows = project_to_folder(G, files, tmp_path / "out", MSELoss(), config, network="tiny", batch_size=2,
                             progress=False, log=said.append)  # fmt: skip
    assert reads == [[0, 1], [2, 3], [4]]  # one chunk in memory at a time
    assert [r["name"] for r in rows] == ["a", "b", "c", "d"]
    assert said == [f"skipped {paths[1]}: not a readable image (UnidentifiedImageError: cannot identify image "
                    f"file '{paths[1]}')"]  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["path"] for s in summary["skipped"]] == [str(paths[1])] and summary["images"] == 4
    # the same codes as reading everything at once, when the batches hold the same images
    whole = load_targets([p for p in paths if p.name != "bad.png"], G.img_resolution)
    ref = project_to_folder(G, whole, tmp_path / "ref", MSELoss(), config, network="tiny", batch_size=1,
                            progress=False)  # fmt: skip
    lazy1 = project_to_folder(G, TargetFiles(paths, G.img_resolution), tmp_path / "lazy1", MSELoss(), config,
                              network="tiny", batch_size=1, progress=False)  # fmt: skip
    assert [r["loss"] for r in ref] == [r["loss"] for r in lazy1]
    for k in "abcd":
        assert (tmp_path / "ref" / f"{k}.npz").read_bytes() == (tmp_path / "lazy1" / f"{k}.npz").read_bytes()
    # resumed: the chunk (a, bad) is done (a complete, bad unreadable): nothing is projected again
    reads.clear()
    kept = (tmp_path / "out" / "a.npz").stat().st_mtime_ns
    again = project_to_folder(G, files, tmp_path / "out", MSELoss(), config, network="tiny", batch_size=2,
                              progress=False, resume=True)  # fmt: skip
    assert again == rows and (tmp_path / "out" / "a.npz").stat().st_mtime_ns == kept
    assert reads == [[1]]  # only the file without outputs in a chunk with finished ones was tried
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["resumed"] == 4 and [s["path"] for s in summary["skipped"]] == [str(paths[1])]
    # a kill that cut the chunk (a, bad, b) after a: the chunk is redone, and bad is listed once
    project_to_folder(G, files, tmp_path / "out3", MSELoss(), config, network="tiny", batch_size=3, progress=False)
    (tmp_path / "out3" / "b-compare.png").unlink()
    project_to_folder(G, files, tmp_path / "out3", MSELoss(), config, network="tiny", batch_size=3, progress=False,
                      resume=True)  # fmt: skip
    summary = json.loads((tmp_path / "out3" / "summary.json").read_text())
    assert summary["resumed"] == 2 and [s["path"] for s in summary["skipped"]] == [str(paths[1])]
    assert (tmp_path / "out3" / "b-compare.png").is_file() and summary["images"] == 4
    # nothing readable: nothing written
    with pytest.raises(ValueError, match="no images"):
        project_to_folder(G, TargetFiles([], 16), tmp_path / "none", MSELoss(), config, network="tiny")
    assert project_to_folder(G, TargetFiles([paths[1]], 16), tmp_path / "none", MSELoss(), config, network="tiny",
                             progress=False) == []  # fmt: skip
    assert not (tmp_path / "none").exists()
