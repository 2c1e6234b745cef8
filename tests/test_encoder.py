"""Encoders: the network, its files, training (learning, exact resume, kill -9), projection and tuning from it."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file, save_file

from latentlab import save_checkpoint
from latentlab.cli import cli
from latentlab.io.checkpoint import CheckpointError
from latentlab.nn.generator import model_fingerprint
from latentlab.projection import ProjectConfig, project, project_batch
from latentlab.projection.encoder import Encoder, encode, encoder_config, load_encoder, new_encoder, save_encoder
from latentlab.projection.encoder_train import (
    EncoderTrainConfig,
    EncoderTrainer,
    batch_generator,
    read_encoder_state,
    sample_training_images,
    state_path,
    stats_path,
    train_encoder,
)
from latentlab.validate import InvalidInput

from conftest import SMALL_ENCODER, encoder_test_images, kill_9_when_flagged, small_encoder_config, tiny_G

REPO = Path(__file__).resolve().parents[1]
SMALL = SMALL_ENCODER
_config = small_encoder_config
_images = encoder_test_images


# --------------------------------------------------------------------------------------------------
# The network.


def test_encoder_codes_have_e4e_form_and_read_features_by_resolution(G):
    enc = new_encoder(G, "tiny", seed=0, **SMALL)
    c = enc.config
    assert (c.resolution, c.num_ws, c.w_dim, c.g_resolution) == (16, G.num_ws, G.w_dim, 16)
    assert [c.row_resolution(i) for i in range(G.num_ws)] == [4, 4, 8, 8, 8, 8]  # 16-px input: rows read <= 8
    x = _images(G, 3)
    ws, deltas = enc(x, parts=True)
    assert ws.shape == (3, G.num_ws, G.w_dim) and torch.equal(deltas[:, 0], torch.zeros_like(deltas[:, 0]))
    torch.testing.assert_close(ws - deltas, ws[:, :1].expand_as(ws))  # every row = row 0 + its delta
    w_only = enc(x, active=1)
    assert torch.equal(w_only, ws[:, :1].expand_as(ws))  # no deltas: one W code
    two = enc(x, active=3)
    assert torch.equal(two[:, :3], ws[:, :3]) and torch.equal(two[:, 3:], ws[:, :1].expand(3, 3, -1))
    # The same seed builds the same encoder; another seed another.
    assert torch.equal(new_encoder(G, "tiny", seed=0, **SMALL)(x), ws)
    assert not torch.equal(new_encoder(G, "tiny", seed=1, **SMALL)(x), ws)


def test_encoder_refuses_wrong_images(G):
    enc = new_encoder(G, "tiny", **SMALL)
    with pytest.raises(InvalidInput, match=r"must be \[N, 3, 16, 16\].*got \(1, 3, 32, 32\)"):
        enc(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InvalidInput, match=r"must be \[N, 3, 16, 16\].*got \(1, 1, 16, 16\)"):
        enc(torch.zeros(1, 1, 16, 16))
    with pytest.raises(InvalidInput, match="NaN|finite"):
        enc(torch.full((1, 3, 16, 16), float("nan")))


def test_large_generators_images_are_read_at_256(G):
    big = dataclasses.replace(encoder_config(G, **SMALL), g_resolution=1024, resolution=256)
    enc = Encoder(big)
    assert list(enc.features(torch.zeros(1, 3, 1024, 1024))) == [128, 64, 32, 16, 8, 4]
    assert enc(torch.zeros(2, 3, 1024, 1024)).shape == (2, G.num_ws, G.w_dim)


# --------------------------------------------------------------------------------------------------
# Files.


def test_encoder_file_round_trip_and_generator_check(tmp_path, G):
    enc = new_encoder(G, "tiny.safetensors", seed=3, **SMALL)
    path = save_encoder(tmp_path / "enc.safetensors", enc, {"step": 7})
    back = load_encoder(path, G=G)
    x = _images(G)
    torch.testing.assert_close(back(x), enc.eval()(x), atol=1e-5, rtol=0)  # loaded channels-last on the CPU
    assert back.fromrgb.weight.is_contiguous(memory_format=torch.channels_last)
    assert back.generator == {"network": "tiny.safetensors", "fingerprint": model_fingerprint(G)}
    assert back.meta == {"step": 7}
    other = tiny_G(9)
    with pytest.raises(InvalidInput, match=f"trained for tiny.safetensors \\(fingerprint {model_fingerprint(G)}\\)"):
        load_encoder(path, G=other, name="other.pkl")
    with pytest.raises(InvalidInput, match="64-px"):
        back.check_generator(tiny_G(0, resolution=64))


def test_bad_encoder_files_are_refused_with_their_reason(tmp_path, G):
    path = save_encoder(tmp_path / "enc.safetensors", new_encoder(G, **SMALL))
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="not a readable encoder file"):
        load_encoder(torn)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a latentlab encoder file"):
        load_encoder(foreign)
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        md = f.metadata()
    tensors["base.1.weight"] = tensors["base.1.weight"][:, :3].contiguous()
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=md)
    with pytest.raises(CheckpointError, match="base.1.weight has shape"):
        load_encoder(bad)
    del tensors["base.1.weight"]
    save_file(tensors, str(bad), metadata=md)
    with pytest.raises(CheckpointError, match="missing tensor encoder.base.1.weight"):
        load_encoder(bad)
    with pytest.raises(FileNotFoundError, match="no such encoder file"):
        load_encoder(tmp_path / "absent.safetensors")
    with pytest.raises(InvalidInput, match=".safetensors"):
        save_encoder(tmp_path / "enc.pt", new_encoder(G, **SMALL))


# --------------------------------------------------------------------------------------------------
# Training.


def test_training_samples_vary_truncation_and_noise_and_are_seeded(G):
    cfg = _config(psi_min=0.5, const_noise=0.5)
    a, wa = sample_training_images(G, 16, batch_generator(0, 5), cfg)
    b, wb = sample_training_images(G, 16, batch_generator(0, 5), cfg)
    assert torch.equal(a, b) and torch.equal(wa, wb)
    c, _ = sample_training_images(G, 16, batch_generator(0, 6), cfg)
    assert not torch.equal(a, c)
    # psi in [0.5, 1]: the codes' distance from w_avg, relative to untruncated ones from the same z, is psi.
    z = torch.randn([16, G.z_dim], generator=batch_generator(0, 5))
    full = G.mapping(z, None)
    ratio = ((wa - G.w_avg).norm(dim=2) / (full - G.w_avg).norm(dim=2))[:, 0]
    assert ratio.min() >= 0.5 - 1e-5 and ratio.max() <= 1 + 1e-5 and ratio.std() > 0.05
    # Some samples are rendered with the constant maps, some with random noise.
    const = G.synthesis(wa, noise_mode="const")
    same = [(const[i] - a[i]).abs().max().item() < 1e-5 for i in range(16)]
    assert 0 < sum(same) < 16


def test_learning_rate_and_progressive_schedules():
    cfg = EncoderTrainConfig(steps=100, lr=1e-3, lr_rampdown=0.25)
    assert [cfg.learning_rate(s) for s in (0, 50, 75)] == [1e-3, 1e-3, 1e-3]
    assert cfg.learning_rate(87.5) == pytest.approx(5e-4) and cfg.learning_rate(100) == 0
    assert EncoderTrainConfig(lr=1e-3, lr_rampdown=0).learning_rate(5999) == 1e-3
    e4e = EncoderTrainConfig(progressive_start=10, progressive_every=5)
    assert [e4e.active_rows(s, 6) for s in (0, 9, 10, 14, 15, 100)] == [1, 1, 2, 2, 3, 6]
    assert EncoderTrainConfig().active_rows(0, 6) is None
    with pytest.raises(InvalidInput, match="loss must be one of"):
        EncoderTrainConfig(loss="ssim")
    with pytest.raises(InvalidInput, match="psi_min"):
        EncoderTrainConfig(psi_min=1.5)


def test_an_encoder_learns_to_invert_the_generator(G):
    cfg = _config(steps=150, batch=16, lr=2e-3, held_out=32, psi_min=0.7)
    tr = EncoderTrainer(G, cfg, "tiny")
    before = tr.evaluate()
    for _ in range(cfg.steps):
        tr.step()
    after = tr.evaluate()
    assert after["w_error"] < 0.6 * before["w_error"], (before, after)
    assert after["psnr"] > before["psnr"] + 2, (before, after)


def test_the_encoder_in_bfloat16_gives_float32_codes_close_to_float32s(G):
    enc = new_encoder(G, "tiny", seed=0, **SMALL)
    x = _images(G, 4)
    ref = enc(x)
    bf, deltas = enc(x, dtype="bf16", parts=True)
    assert bf.dtype == deltas.dtype == torch.float32 and not torch.equal(bf, ref)
    assert (bf - ref).norm() < 0.02 * ref.norm()
    assert torch.equal(encode(enc, x, batch_size=2, precision="bf16"), torch.cat([enc(x[:2], dtype="bf16"),
                                                                                   enc(x[2:], dtype="bf16")]))
    with pytest.raises(ValueError, match="float16 synthesis needs a CUDA device"):
        enc(x, dtype="fp16")


def test_an_encoder_trained_in_bfloat16_learns_as_in_float32(G):
    cfg = _config(steps=60, batch=16, lr=2e-3, held_out=32, psi_min=0.7)
    runs = {}
    for precision in ("fp32", "bf16"):
        tr = EncoderTrainer(G, dataclasses.replace(cfg, precision=precision), "tiny")
        before = tr.evaluate()
        losses = [tr.step()["loss"] for _ in range(cfg.steps)]
        runs[precision] = (before, tr.evaluate(), losses)
    (b32, a32, l32), (b16, a16, l16) = runs["fp32"], runs["bf16"]
    assert b32 == b16  # the held-out figures are float32 renders of the same initial encoder
    assert l16[0] != l32[0]  # the first step did run in bfloat16
    assert a16["w_error"] < 0.8 * b16["w_error"]
    assert a16["w_error"] == pytest.approx(a32["w_error"], rel=0.1), (a32, a16)
    with pytest.raises(InvalidInput, match="precision"):
        _config(precision="int8")


def test_training_resumes_exactly_with_every_term(tmp_path, G, synth_zip):
    from latentlab.data.datasets import ImageDataset

    # lr_rampdown 0: a run extended before its ramp-down began is the run started with the larger count
    cfg = _config(steps=4, snap=2, delta_weight=1e-2, progressive_every=1, progressive_start=1, latent_d_weight=0.1,
                  lr_rampdown=0.0)  # fmt: skip
    data = ImageDataset(synth_zip, resolution=16, crop="center", use_labels=False)
    full = train_encoder(G, tmp_path / "full.safetensors", cfg, "tiny", dataset=data, progress=False)
    half = train_encoder(G, tmp_path / "run.safetensors", dataclasses.replace(cfg, steps=2), "tiny", dataset=data,
                         progress=False)  # fmt: skip
    assert half.step_idx == 2
    resumed = train_encoder(G, tmp_path / "run.safetensors", cfg, "tiny", dataset=data, resume=True, progress=False)
    a, b = load_file(str(tmp_path / "full.safetensors")), load_file(str(tmp_path / "run.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from latentlab.projection.encoder import read_encoder_meta

    assert read_encoder_meta(tmp_path / "run.safetensors")["meta"]["data"] == synth_zip.name  # a name, not a path
    assert resumed.latent_d is not None
    pairs = zip(full.latent_d.parameters(), resumed.latent_d.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)
    rows = [json.loads(line) for line in stats_path(tmp_path / "run.safetensors").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert read_encoder_state(state_path(tmp_path / "run.safetensors"))["step"] == 4


def test_resume_refuses_other_settings_data_or_generator(tmp_path, G, synth_zip):
    out = tmp_path / "enc.safetensors"
    train_encoder(G, out, _config(steps=2), "tiny", progress=False)
    with pytest.raises(InvalidInput, match="--resume"):
        train_encoder(G, out, _config(steps=4), "tiny", progress=False)
    with pytest.raises(InvalidInput, match="lr=0.0003, not 0.01"):
        train_encoder(G, out, _config(steps=4, lr=0.01), "tiny", resume=True, progress=False)
    with pytest.raises(InvalidInput, match="precision='fp32', not 'bf16'"):
        train_encoder(G, out, _config(steps=4, precision="bf16"), "tiny", resume=True, progress=False)
    old = read_encoder_state(state_path(out))  # a state from before the precision option resumes as fp32
    del old["config"]["precision"]
    torch.save(old, state_path(out))
    assert EncoderTrainer(G, _config(steps=4), "tiny").load_state_dict(old) is None
    with pytest.raises(InvalidInput, match="another generator"):
        train_encoder(tiny_G(4), out, _config(steps=4), "tiny", resume=True, progress=False)
    from latentlab.data.datasets import ImageDataset

    data = ImageDataset(synth_zip, resolution=16, crop="center", use_labels=False)
    with pytest.raises(InvalidInput, match="without real images"):
        train_encoder(G, out, _config(steps=4), "tiny", dataset=data, resume=True, progress=False)
    state_path(out).write_bytes(b"not a state")
    with pytest.raises(CheckpointError, match="not a readable encoder training state"):
        train_encoder(G, out, _config(steps=4), "tiny", resume=True, progress=False)


def test_a_training_can_start_from_an_encoders_weights(tmp_path, G):
    first = tmp_path / "first.safetensors"
    train_encoder(G, first, _config(steps=2), "tiny", progress=False)
    start = load_encoder(first, G=G)
    # the warm start begins at the file's weights exactly
    trainer = EncoderTrainer(G, _config(steps=2), "tiny")
    trainer.warm_start(first)
    for k, v in start.state_dict().items():
        torch.testing.assert_close(trainer.encoder.state_dict()[k], v, rtol=0, atol=0)
    # and fine-tunes from there; a resumed run must name the same start
    out = tmp_path / "tuned.safetensors"
    train_encoder(G, out, _config(steps=2), "tiny", progress=False, init=first)
    tuned = load_encoder(out, G=G)
    assert any((tuned.state_dict()[k] != v).any() for k, v in start.state_dict().items())
    with pytest.raises(InvalidInput, match="started from another --init than this run's"):
        train_encoder(G, out, _config(steps=4), "tiny", resume=True, progress=False)
    train_encoder(G, out, _config(steps=4), "tiny", resume=True, progress=False, init=first)  # same start: resumes
    assert read_encoder_state(state_path(out))["step"] == 4
    # the file names its start by SHA-256 (and a training from scratch names none)
    import hashlib

    from latentlab.projection.encoder import read_encoder_meta

    assert read_encoder_meta(out)["meta"]["init"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert read_encoder_meta(first)["meta"]["init"] is None
    r = CliRunner().invoke(cli, ["encoder", "info", str(out)])
    start_sha = read_encoder_meta(out)["meta"]["init"]
    assert r.exit_code == 0 and f"fine-tuned from the encoder with SHA-256 {start_sha[:16]}..." in r.output
    with pytest.raises(InvalidInput, match="only start a training"):
        trainer.step()
        trainer.warm_start(first)
    with pytest.raises(InvalidInput, match="channel_max=.*this training builds"):
        EncoderTrainer(G, _config(steps=2, channel_max=16), "tiny").warm_start(first)
    with pytest.raises(InvalidInput, match="another generator|fingerprint"):
        EncoderTrainer(tiny_G(4), _config(steps=2), "tiny").warm_start(first)
    with pytest.raises(InvalidInput, match="--init and --out are the same file"):
        train_encoder(G, first, _config(steps=2), "tiny", progress=False, init=first)


_KILL_SCRIPT = """
import sys, time, torch
import latentlab.projection.encoder_train as et
from latentlab.io.checkpoint import load_checkpoint
sys.path.insert(0, "tests")
from conftest import tiny_G

flag = sys.argv[1]
calls = {"n": 0}
write = et._write_state

def stall(obj, path):
    calls["n"] += 1
    if calls["n"] == 2:  # the second snapshot's state: half a file, tell the test, wait to be killed
        with open(path, "wb") as f:
            f.write(b"half a file" * 100)
            f.flush()
        open(flag, "w").close()
        time.sleep(120)
    return write(obj, path)

et._write_state = stall
et.train_encoder(tiny_G(), sys.argv[2], et.EncoderTrainConfig(**__CONFIG__), "tiny", progress=False)
"""


def test_kill_9_during_a_snapshot_leaves_a_resumable_training(tmp_path, G):
    cfg = _config(steps=6, snap=2)
    out = tmp_path / "enc.safetensors"
    flag = tmp_path / "saving"
    script = _KILL_SCRIPT.replace("__CONFIG__", repr(dataclasses.asdict(cfg)))
    kill_9_when_flagged([sys.executable, "-c", script, str(flag), str(out)], flag, REPO, "the training")
    assert [p for p in tmp_path.iterdir() if ".tmp-" in p.name], "the kill should have left a temporary file"
    assert read_encoder_state(state_path(out))["step"] == 2  # the last complete state
    train_encoder(G, out, cfg, "tiny", resume=True, progress=False)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    full = tmp_path / "full.safetensors"
    train_encoder(G, full, cfg, "tiny", progress=False)
    a, b = load_file(str(full)), load_file(str(out))
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------------
# Projection and tuning from an encoder.


def test_projection_from_the_encoder(G):
    from latentlab.perceptual import build_loss

    enc = new_encoder(G, "tiny", seed=2, **SMALL).eval()
    x = _images(G, 3)
    codes = encode(enc, x, batch_size=2)
    loss = build_loss("mse")
    alone = project(G, x, space="w+", steps=0, loss=loss, encoder=enc, progress=False)
    torch.testing.assert_close(alone.ws, codes, atol=1e-5, rtol=0)  # batch 8 here, 2 in encode: float rounding
    assert alone.config.init == "encoder"
    torch.testing.assert_close(alone.images, G.synthesis(codes, noise_mode="const"))  # the encoder's rendering
    in_w = project(G, x, space="w", steps=0, loss=loss, encoder=enc, progress=False)
    torch.testing.assert_close(in_w.ws, codes[:, :1].expand_as(codes), atol=1e-5, rtol=0)
    # Steps from the encoder move away from its code and lower the loss; each image is independent.
    cfg = ProjectConfig(space="w+", steps=20, init="encoder", loss="mse")
    refined = project_batch(G, x, loss, cfg, init=codes)
    assert (refined.losses < alone.losses).all()
    single = project_batch(G, x[1:2], loss, cfg, init=codes[1:2])
    torch.testing.assert_close(single.ws, refined.ws[1:2], atol=1e-5, rtol=0)
    with pytest.raises(InvalidInput, match="start codes must be"):
        project_batch(G, x, loss, cfg, init=codes[:, :2])
    with pytest.raises(InvalidInput, match="init is 'encoder' but start codes were not given"):
        project_batch(G, x, loss, cfg)
    with pytest.raises(InvalidInput, match="this encoder was trained for .* not for this generator"):
        project(G, x, steps=0, loss=loss, encoder=new_encoder(tiny_G(8), **SMALL), progress=False)


# --------------------------------------------------------------------------------------------------
# The command line.


@pytest.fixture
def synth_zip(tmp_path):
    from latentlab.data.synthfaces import write_dataset

    return write_dataset(tmp_path / "synth.zip", 12, resolution=32, seed=0, workers=1, progress=False)


def _photos(folder: Path, G, n=2) -> Path:
    folder.mkdir()
    from latentlab.io.images import to_uint8

    for i, img in enumerate(to_uint8(_images(G, n, seed=4))):
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_cli_trains_an_encoder_and_projects_and_tunes_from_it(tmp_path, G):
    net = save_checkpoint(tmp_path / "G.safetensors", G_ema=G)
    enc = tmp_path / "enc.safetensors"
    r = CliRunner().invoke(cli, ["encoder", "train", "--network", str(net), "--out", str(enc), "--steps", "3",
                                 "--batch", "2", "--loss", "mse", "--snap", "2", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "trained 3 steps" in r.output and enc.is_file() and state_path(enc).is_file()
    info = CliRunner().invoke(cli, ["encoder", "info", str(enc)])
    assert info.exit_code == 0 and f"fingerprint {model_fingerprint(G)}" in info.output
    assert "trained 3 steps" in info.output
    photos = _photos(tmp_path / "photos", G)
    out = tmp_path / "proj"
    r = CliRunner().invoke(cli, ["project", str(photos), "--network", str(net), "--init", "encoder", "--encoder",
                                 str(enc), "--steps", "0", "--loss", "mse", "--outdir", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "from the encoder" in r.output
    from latentlab.io.latents import load_latents

    codes = load_latents(out / "p0.npz")
    assert codes.meta["config"]["init"] == "encoder" and codes.meta["encoder"] == str(enc)
    want = encode(load_encoder(enc), _load_target(photos / "p0.png"))
    assert (torch.as_tensor(codes.w) - want[0, :1]).abs().max() < 1e-5  # W: row 0 of the encoder's code
    tuned = tmp_path / "tuned"
    r = CliRunner().invoke(cli, ["tune", str(photos / "p1.png"), "--network", str(net), "--init", "encoder",
                                 "--encoder", str(enc), "--pivot-steps", "0", "--pivot-loss", "mse", "--steps", "1",
                                 "--outdir", str(tuned), "--no-progress"])  # fmt: skip
    assert r.exit_code in (0, 1), r.output  # tuning needs LPIPS-AlexNet weights; offline tests may not have them
    if r.exit_code == 0:
        summary = json.loads((tuned / "summary.json").read_text())
        assert summary["pivot"]["init"] == "encoder" and summary["pivot"]["steps"] == 0


def _load_target(path):
    from latentlab.projection import load_target

    return torch.from_numpy(load_target(path, 16, 3)[None]).float() / 127.5 - 1


def test_cli_refuses_bad_encoder_input(tmp_path, G):
    net = save_checkpoint(tmp_path / "G.safetensors", G_ema=G)
    other = save_checkpoint(tmp_path / "other.safetensors", G_ema=tiny_G(6))
    enc = save_encoder(tmp_path / "enc.safetensors", new_encoder(G, str(net), **SMALL))
    photos = _photos(tmp_path / "photos", G, 1)

    def run(*args):
        return CliRunner().invoke(cli, [*args, "--no-progress"])

    base = ["project", str(photos), "--outdir", str(tmp_path / "o"), "--loss", "mse"]
    r = run(*base, "--network", str(net), "--steps", "0")
    assert r.exit_code == 2 and "--steps 0 projects nothing: it needs --init encoder" in r.output
    r = run(*base, "--network", str(other), "--init", "encoder", "--encoder", str(enc))
    assert r.exit_code == 1 and "this encoder was trained for" in r.output and "fingerprint" in r.output
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    r = run(*base, "--network", str(net), "--init", "encoder", "--encoder", str(corrupt))
    assert r.exit_code == 1 and "not a readable encoder file" in r.output
    r = run(*base, "--network", str(net), "--init", "encoder")
    assert r.exit_code == 1 and "has no embedded encoder" in r.output and "latentlab encoder train" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("encoder", "train", "--network", str(net), "--out", str(tmp_path / "e2.safetensors"), "--data",
            str(empty), "--loss", "mse", "--steps", "1")  # fmt: skip
    assert r.exit_code == 1 and "no usable images" in r.output
    (empty / "bad.png").write_bytes(b"not a png")
    r = run("encoder", "train", "--network", str(net), "--out", str(tmp_path / "e2.safetensors"), "--data",
            str(empty), "--loss", "mse", "--steps", "1")  # fmt: skip
    assert r.exit_code == 1 and "no usable images" in r.output and "bad.png" in r.output
    r = run("encoder", "train", "--network", str(net), "--out", str(tmp_path / "e2.pt"), "--loss", "mse")
    assert r.exit_code == 1 and ".safetensors" in r.output
    assert not (tmp_path / "e2.safetensors").exists() and not state_path(tmp_path / "e2.safetensors").exists()


def test_encoder_path_finds_the_embedded_encoder_or_says_how_to_train_one(tmp_path, monkeypatch, G):
    from latentlab.registry import ENCODERS, encoder_path

    monkeypatch.setenv("LATENTLAB_PRETRAINED", str(tmp_path))
    monkeypatch.setitem(ENCODERS, "toy", "toy-encoder.safetensors")
    with pytest.raises(FileNotFoundError, match="toy has no embedded encoder.*latentlab encoder train --network toy"):
        encoder_path("toy")
    save_encoder(tmp_path / "toy-encoder.safetensors", new_encoder(G, "toy", **SMALL))
    assert encoder_path("toy") == tmp_path / "toy-encoder.safetensors"
    mine = save_encoder(tmp_path / "mine.safetensors", new_encoder(G, **SMALL))
    assert encoder_path("toy", mine) == mine  # an explicit file wins
    with pytest.raises(FileNotFoundError, match="no such encoder file"):
        encoder_path("toy", tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="has no embedded encoder"):
        encoder_path(str(tmp_path / "G.safetensors"))


def test_an_encoder_trains_and_projects_on_a_stylegan1_generator(tmp_path):
    from test_stylegan1 import v1

    G = v1().requires_grad_(False)
    out = tmp_path / "v1-enc.safetensors"
    tr = train_encoder(G, out, _config(steps=2), "v1", progress=False)
    assert tr.step_idx == 2 and tr.history[-1]["psnr"] > 0
    enc = load_encoder(out, G=G)
    x = _images(G, 2)
    from latentlab.perceptual import build_loss

    p = project(G, x, space="w+", steps=2, loss=build_loss("mse"), encoder=enc, progress=False)
    assert p.ws.shape == (2, G.num_ws, G.w_dim) and torch.isfinite(p.ws).all()


def test_cli_e4e_flag_sets_e4e_terms_and_single_options_override(tmp_path, G):
    from latentlab.projection.encoder_train import E4E

    net = save_checkpoint(tmp_path / "G.safetensors", G_ema=G)
    for extra, want in (([], {"delta_weight": 0.0, "latent_d_weight": 0.0, "progressive_every": 0}),
                        (["--e4e"], E4E),
                        (["--e4e", "--latent-d-weight", "0"], {**E4E, "latent_d_weight": 0.0})):  # fmt: skip
        out = tmp_path / f"e{len(extra)}.safetensors"
        r = CliRunner().invoke(cli, ["encoder", "train", "--network", str(net), "--out", str(out), "--steps", "1",
                                     "--batch", "2", "--loss", "mse", "--no-progress", *extra])  # fmt: skip
        assert r.exit_code == 0, r.output
        saved = read_encoder_state(state_path(out))["config"]
        assert {k: saved[k] for k in want} == want


def test_a_diverging_training_stops_and_keeps_the_last_good_snapshot(tmp_path, G, monkeypatch):
    out = tmp_path / "enc.safetensors"
    train_encoder(G, out, _config(steps=2, snap=2), "tiny", progress=False)
    good = out.read_bytes()
    real = EncoderTrainer.evaluate

    def exploded(self):
        return {**real(self), "w_error": 1e6}

    monkeypatch.setattr(EncoderTrainer, "evaluate", exploded)
    with pytest.raises(InvalidInput, match="diverged at step 4.*last good snapshot \\(step 2\\).*lower --lr"):
        train_encoder(G, out, _config(steps=4, snap=2), "tiny", resume=True, progress=False)
    assert out.read_bytes() == good and read_encoder_state(state_path(out))["step"] == 2
