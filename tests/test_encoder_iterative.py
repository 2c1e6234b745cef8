"""Iterative encoders (ReStyle): the correction step, inversion in several passes, training, files and the CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from latentlab import save_checkpoint
from latentlab.cli import cli
from latentlab.projection import ProjectConfig, build_loss, project
from latentlab.projection.encoder import encode, load_encoder, new_encoder, read_encoder_meta, save_encoder
from latentlab.projection.encoder_train import EncoderTrainer, train_encoder
from latentlab.validate import InvalidInput

from conftest import SMALL_ENCODER as SMALL
from conftest import encoder_test_images as _images
from conftest import small_encoder_config as _config


def _iterative(G, seed=1, iterations=2):
    enc = new_encoder(G, "tiny", seed=seed, iterations=iterations, **SMALL).eval()
    assert enc.fromrgb.weight.shape[1] == 2 * G.img_channels  # target and rendering (random weights for both)
    return enc


def test_a_correction_vanishes_where_the_rendering_is_the_target(G):
    x = _images(G, 3)
    for enc in (new_encoder(G, "tiny", seed=1, **SMALL).eval(), _iterative(G)):
        with torch.no_grad():
            step = enc.correction(x, x)
        assert step.shape == (3, G.num_ws, G.w_dim)
        assert step.abs().max() < 1e-6
        # and it does not vanish for another rendering
        with torch.no_grad():
            assert enc.correction(x, x.flip(0)).abs().max() > 1e-3


def test_invert_is_the_first_pass_then_its_corrections(G):
    x = _images(G, 3)
    single = new_encoder(G, "tiny", seed=1, **SMALL).eval()
    with torch.no_grad():
        first = single(x)
        torch.testing.assert_close(single.invert(x, G), first, rtol=0, atol=0)  # default: one pass, no G needed
        torch.testing.assert_close(single.invert(x, None, iterations=0), first, rtol=0, atol=0)
        trace = []
        ws = single.invert(x, G, iterations=2, trace=trace)
        # the fixed-point step by hand: w <- w + E(x) - E(G(w))
        w1 = first + single(x) - single(G.synthesis(first, noise_mode="const"))
        w2 = w1 + single(x) - single(G.synthesis(w1, noise_mode="const"))
    assert len(trace) == 3
    torch.testing.assert_close(trace[0], first, rtol=0, atol=0)
    torch.testing.assert_close(trace[1], w1, rtol=0, atol=1e-5)
    torch.testing.assert_close(ws, w2, rtol=0, atol=1e-5)
    # in W every pass keeps one code per image: row 0 of the first pass and of each correction
    with torch.no_grad():
        w0 = first[:, :1].expand_as(first)
        w1 = w0 + (single(x) - single(G.synthesis(w0, noise_mode="const")))[:, :1]
        in_w = single.invert(x, G, iterations=1, space="w")
    torch.testing.assert_close(in_w, w1, rtol=0, atol=1e-5)
    assert (in_w - in_w[:, :1]).abs().max() == 0
    with pytest.raises(InvalidInput, match="space"):
        single.invert(x, G, space="z")
    it = _iterative(G)
    with torch.no_grad():
        a = it.invert(x, G)  # its own default: 2 corrections
        b = it.invert(x, G, iterations=2)
        c = it.invert(x, G, iterations=1)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-4
    with pytest.raises(InvalidInput, match="iterations need the generator"):
        single.invert(x, None, iterations=1)
    with pytest.raises(InvalidInput, match="iterations must be >= 0"):
        single.invert(x, G, iterations=-1)
    with pytest.raises(InvalidInput, match="iterations need the generator"):
        encode(it, x)
    torch.testing.assert_close(encode(it, x, G=G, batch_size=2), a, rtol=0, atol=1e-5)


def test_an_iterative_encoder_checks_its_rendering(G):
    x = _images(G, 2)
    it, single = _iterative(G), new_encoder(G, "tiny", seed=1, **SMALL).eval()
    with pytest.raises(InvalidInput, match="single-pass one; it reads no rendering"):
        single(x, rendering=x)
    with pytest.raises(InvalidInput, match="2 renderings for 1 images"):
        it(x[:1], rendering=x)
    with pytest.raises(InvalidInput, match="rendering"):
        it(x, rendering=x[:, :, :8, :8])
    with pytest.raises(InvalidInput, match="rendering"):
        it(x, rendering=torch.full_like(x, float("nan")))


def test_a_single_pass_encoder_starts_an_iterative_one_exactly(tmp_path, G):
    single = tmp_path / "single.safetensors"
    train_encoder(G, single, _config(steps=2), "tiny", progress=False)
    start = load_encoder(single, G=G)
    tr = EncoderTrainer(G, _config(steps=2, iterations=2), "tiny")
    tr.warm_start(single)
    enc = tr.encoder.eval()
    x = _images(G, 3, seed=5)
    with torch.no_grad():
        # the rendering's input weights start at zero: the first pass is the old encoder's, and a correction is the
        # old encoder's fixed-point step
        torch.testing.assert_close(enc(x), start(x), rtol=0, atol=1e-5)
        y = G.synthesis(start(x), noise_mode="const")
        torch.testing.assert_close(enc.correction(x, y), start.correction(x, y), rtol=0, atol=1e-5)
    assert enc.fromrgb.weight[:, G.img_channels :].abs().max() == 0
    # an iterative encoder cannot start a single-pass one; the rest of the shape must match
    it_file = tmp_path / "it.safetensors"
    save_encoder(it_file, enc)
    with pytest.raises(InvalidInput, match="is iterative .* cannot start a single-pass one"):
        EncoderTrainer(G, _config(steps=2), "tiny").warm_start(it_file)
    with pytest.raises(InvalidInput, match="channel_max=.*this training builds"):
        EncoderTrainer(G, _config(steps=2, iterations=1, channel_max=16), "tiny").warm_start(single)
    # an iterative file to another default count is fine (the weights are the same shape)
    other = EncoderTrainer(G, _config(steps=2, iterations=3), "tiny")
    other.warm_start(it_file)
    assert other.encoder.config.iterations == 3


def test_an_iterative_training_corrects_its_first_pass(G):
    """Trained with 2 corrections, the corrections improve on its own first pass on held-out images."""
    cfg = _config(steps=120, batch=16, lr=2e-3, held_out=32, psi_min=0.7, iterations=2)
    tr = EncoderTrainer(G, cfg, "tiny")
    before = tr.evaluate()
    for _ in range(cfg.steps):
        stats = tr.step()
    assert {"lpips_first", "mse", "latent", "loss"} <= stats.keys()
    after = tr.evaluate()  # with its 2 corrections
    assert after["psnr"] > before["psnr"] + 2, (before, after)
    images, w_true = tr.held_out
    enc = tr.encoder.eval()
    with torch.no_grad():
        errors = []
        for n in (0, 2):
            ws = enc.invert(images, G, iterations=n)
            errors.append(float((G.synthesis(ws, noise_mode="const") - images).square().mean()))
    assert errors[1] < 0.9 * errors[0], errors  # measured: 1.82 -> 1.49


def test_an_iterative_training_resumes_exactly_and_records_its_passes(tmp_path, G):
    cfg = _config(steps=4, snap=2, lr_rampdown=0.0, iterations=2, latent_d_weight=0.1, delta_weight=1e-2)
    train_encoder(G, tmp_path / "full.safetensors", cfg, "tiny", progress=False)
    train_encoder(G, tmp_path / "run.safetensors", dataclasses.replace(cfg, steps=2), "tiny", progress=False)
    train_encoder(G, tmp_path / "run.safetensors", cfg, "tiny", resume=True, progress=False)
    a, b = load_file(str(tmp_path / "full.safetensors")), load_file(str(tmp_path / "run.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["fromrgb.weight"].shape[1] == 2 * G.img_channels
    meta = read_encoder_meta(tmp_path / "run.safetensors")
    assert meta["config"]["iterations"] == 2 and meta["meta"]["train"]["iterations"] == 2
    assert load_encoder(tmp_path / "run.safetensors", G=G).config.iterations == 2
    with pytest.raises(InvalidInput, match="iterations=2, not 1"):
        train_encoder(G, tmp_path / "run.safetensors", dataclasses.replace(cfg, steps=6, iterations=1), "tiny",
                      resume=True, progress=False)  # fmt: skip


def test_projection_from_an_iterative_encoder_and_its_config(G):
    from latentlab.perceptual import build_loss

    x = _images(G, 3)
    enc = _iterative(G, iterations=1)
    loss = build_loss("mse")
    alone = project(G, x, space="w+", steps=0, loss=loss, encoder=enc, progress=False)
    with torch.no_grad():
        want = enc.invert(x, G)
    torch.testing.assert_close(alone.ws, want, rtol=0, atol=1e-5)
    assert alone.config.encoder_iterations is None  # the encoder's own default
    more = project(G, x, space="w+", steps=0, loss=loss, encoder=enc, progress=False, encoder_iterations=3)
    with torch.no_grad():
        torch.testing.assert_close(more.ws, enc.invert(x, G, iterations=3), rtol=0, atol=1e-5)
    assert more.config.encoder_iterations == 3
    in_w = project(G, x, space="w", steps=0, loss=loss, encoder=enc, progress=False, encoder_iterations=2)
    with torch.no_grad():
        torch.testing.assert_close(in_w.ws, enc.invert(x, G, iterations=2, space="w"), rtol=0, atol=1e-5)
    with pytest.raises(InvalidInput, match="encoder_iterations is for init='encoder'"):
        ProjectConfig(encoder_iterations=1)
    with pytest.raises(InvalidInput, match="encoder_iterations"):
        ProjectConfig(init="encoder", steps=0, encoder_iterations=-1)


def test_cli_trains_an_iterative_encoder_and_projects_with_its_corrections(tmp_path, G):
    from latentlab.io.images import to_uint8
    from latentlab.io.latents import load_latents

    net = save_checkpoint(tmp_path / "G.safetensors", G_ema=G)
    enc = tmp_path / "enc.safetensors"
    r = CliRunner().invoke(cli, ["encoder", "train", "--network", str(net), "--out", str(enc), "--steps", "2",
                                 "--batch", "2", "--loss", "mse", "--snap", "2", "--iterations", "2",
                                 "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    info = CliRunner().invoke(cli, ["encoder", "info", str(enc)])
    assert "iterative (ReStyle): 2 corrections after the first pass by default" in info.output
    photos = tmp_path / "photos"
    photos.mkdir()
    x = _images(G, 1, seed=4)
    Image.fromarray(to_uint8(x)[0]).save(photos / "p0.png")
    out = tmp_path / "proj"
    args = ["project", str(photos), "--network", str(net), "--init", "encoder", "--encoder", str(enc), "--steps",
            "0", "--loss", "mse", "--space", "w+", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(cli, [*args, "--outdir", str(out), "--encoder-iterations", "1"])
    assert r.exit_code == 0, r.output
    codes = load_latents(out / "p0.npz")
    assert codes.meta["config"]["encoder_iterations"] == 1
    e = load_encoder(enc, G=G)
    target = torch.from_numpy(load_latents_target(photos / "p0.png"))
    with torch.no_grad():
        want = e.invert(target, G, iterations=1)
    assert (torch.as_tensor(codes.w) - want[0]).abs().max() < 1e-4
    # resuming with another count is refused; the option needs --init encoder
    r = CliRunner().invoke(cli, [*args, "--outdir", str(out), "--encoder-iterations", "2", "--resume"])
    assert r.exit_code != 0 and "encoder_iterations 1 (now 2)" in r.output
    r = CliRunner().invoke(cli, ["project", str(photos), "--network", str(net), "--encoder-iterations", "1",
                                 "--outdir", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code == 2 and "--encoder-iterations is used with --init encoder" in r.output
    # tune: the pivot from the encoder with its corrections (the tuning itself needs LPIPS-AlexNet weights)
    from latentlab.projection.tune import pivot_config, project_pivots

    pivots = project_pivots(G, target.float(), build_loss("mse"), pivot_config(steps=0, init="encoder",
                            encoder_iterations=1), encoder=e)  # fmt: skip
    assert (pivots[0] - e.invert(target.float(), G, iterations=1, space="w")[0]).abs().max() < 1e-5
    assert pivot_config().encoder_iterations is None
    r = CliRunner().invoke(cli, ["tune", str(photos), "--network", str(net), "--encoder-iterations", "1",
                                 "--outdir", str(tmp_path / "t")])  # fmt: skip
    assert r.exit_code == 2 and "--encoder-iterations is used with --init encoder" in r.output


def load_latents_target(path):
    from latentlab.projection import load_target

    return load_target(path, 16, 3)[None].astype("float32") / 127.5 - 1
