"""Pivotal tuning (PTI): the optimization, the compact tuned file, loading it anywhere, and ``latentlab tune``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import cli
from latentlab.io import CheckpointError, save_checkpoint
from latentlab.io.tuned import apply_tuned, read_tuned, save_tuned
from latentlab.nn.generator import model_fingerprint
from latentlab.perceptual import LPIPSLoss
from latentlab.projection.tune import TuneConfig, tune
from latentlab.registry import load_generator
from latentlab.validate import InvalidInput

from conftest import tiny_G


@pytest.fixture(scope="module")
def lpips_alex():
    return LPIPSLoss("alex", random_backbone=True, min_side=64)


def _setup(seed: int = 1):
    G = tiny_G().eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = G.mapping(torch.randn(2, G.z_dim, generator=g), None)
        target = G.synthesis(w[1:2], noise_mode="const")
    return G, target, w[:1, 0]


def test_tune_fits_the_target_and_leaves_the_base_alone(lpips_alex):
    G, target, pivot = _setup()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    r = tune(G, target, pivot, lpips_alex, TuneConfig(steps=40, lr=3e-3, lpips_threshold=0.0))
    assert r.steps == 40 and len(r.history) == 41
    first, last = r.history[0], r.history[-1]
    assert last[1] < 0.2 * first[1] and last[2] < 0.2 * first[2]  # LPIPS and MSE both fall 5x
    assert (r.lpips, r.l2) == (last[1], last[2])
    with torch.no_grad():
        out = r.G.synthesis(r.pivot, noise_mode="const")
    assert float(lpips_alex(out, lpips_alex.prepare(target))) == pytest.approx(r.lpips, rel=1e-4)
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
    # The mapping network is not tuned: its weights are the base's.
    for (k, a), b in zip(r.G.mapping.state_dict().items(), G.mapping.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not any(p.requires_grad for p in r.G.parameters())


def test_tuning_in_bfloat16_fits_as_float32_does_and_reports_float32_distances(lpips_alex):
    G, target, pivot = _setup()
    cfg = dict(steps=40, lr=3e-3, lpips_threshold=0.0)
    ref = tune(G, target, pivot, lpips_alex, TuneConfig(**cfg))
    bf = tune(G, target, pivot, lpips_alex, TuneConfig(precision="bf16", **cfg))
    assert bf.config.precision == "bf16" and bf.steps == 40 and len(bf.history) == 41
    assert bf.history[-1] == (40, bf.lpips, bf.l2)
    assert bf.l2 < 0.2 * bf.history[0][2]  # it fits
    assert bf.l2 == pytest.approx(ref.l2, rel=0.25) and bf.lpips == pytest.approx(ref.lpips, rel=0.25)
    with torch.no_grad():  # the reported distances are the float32 render's, the one every later use sees
        out = bf.G.synthesis(bf.pivot, noise_mode="const")
    assert float(torch.nn.functional.mse_loss(out, target)) == pytest.approx(bf.l2, rel=1e-5)
    assert bf.history[0][2] != ref.history[0][2]  # the first render ran in bfloat16
    for p in bf.G.parameters():
        assert p.dtype == torch.float32
    with pytest.raises(InvalidInput, match="precision"):
        TuneConfig(precision="fp64")


def test_tune_stops_at_the_lpips_threshold(lpips_alex):
    G, target, pivot = _setup()
    r = tune(G, target, pivot, lpips_alex, TuneConfig(steps=50, lr=3e-3, lpips_threshold=10.0))
    assert r.steps == 0  # already under the threshold: nothing to do
    full = tune(G, target, pivot, lpips_alex, TuneConfig(steps=40, lr=3e-3, lpips_threshold=0.0))
    threshold = full.history[10][1]  # the LPIPS reached after 10 steps
    first = next(step for step, d, _ in full.history if d <= threshold)  # the run is deterministic
    assert 0 < first <= 10
    r = tune(G, target, pivot, lpips_alex, TuneConfig(steps=40, lr=3e-3, lpips_threshold=threshold))
    assert r.steps == first and r.lpips <= threshold


def test_locality_regularization_keeps_the_neighbourhood(lpips_alex):
    G, target, pivot = _setup()
    cfg = dict(steps=40, lr=3e-3, lpips_threshold=0.0, locality_radius=3.0, locality_samples=2)
    plain = tune(G, target, pivot, lpips_alex, TuneConfig(**cfg))
    local = tune(G, target, pivot, lpips_alex, TuneConfig(locality=True, **cfg))
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        w = G.mapping(torch.randn(8, G.z_dim, generator=g), None, truncation_psi=0.5)
        ws = pivot[:, None] + 3.0 * (w - pivot[:, None]) / (w - pivot[:, None]).flatten(1).norm(dim=1)[:, None, None]
        ref = G.synthesis(ws, noise_mode="none")
        d_plain = (plain.G.synthesis(ws, noise_mode="none") - ref).square().mean()
        d_local = (local.G.synthesis(ws, noise_mode="none") - ref).square().mean()
    assert d_local < 0.8 * d_plain, (float(d_local), float(d_plain))
    assert local.lpips < 0.5 * local.history[0][1]  # and it still fits the target


def test_the_early_stop_follows_the_resolution():
    from latentlab.projection.tune import PTI_THRESHOLD, auto_lpips_threshold

    assert PTI_THRESHOLD == TuneConfig().lpips_threshold == 0.06  # the paper's code
    assert [auto_lpips_threshold(r) for r in (16, 64, 128, 256, 1024)] == [0.0, 0.0, 0.0, 0.06, 0.06]


def test_tune_refuses_bad_input(lpips_alex):
    G, target, pivot = _setup()
    with pytest.raises(InvalidInput, match="one target image"):
        tune(G, target.expand(2, -1, -1, -1), pivot, lpips_alex)
    with pytest.raises(InvalidInput, match="the pivot must be"):
        tune(G, target, torch.zeros(3, 7), lpips_alex)
    with pytest.raises(InvalidInput, match="NaN"):
        tune(G, target, torch.full((1, G.w_dim), float("nan")), lpips_alex)
    with pytest.raises(InvalidInput, match="lr"):
        TuneConfig(lr=0)


def test_tuned_file_is_compact_and_loads_anywhere(lpips_alex, tmp_path):
    G, target, pivot = _setup()
    base_path = save_checkpoint(tmp_path / "base.safetensors", G_ema=G)
    r = tune(G, target, pivot, lpips_alex, TuneConfig(steps=5, lr=3e-3, lpips_threshold=0.0))
    path = save_tuned(tmp_path / "t.safetensors", r.G, G, "base.safetensors", r.pivot, r.meta(), image="x.png")
    info, tensors = read_tuned(path)
    assert info["base"]["fingerprint"] == model_fingerprint(G) and info["image"] == "x.png"
    assert info["tune"]["steps"] == 5 and info["tune"]["config"]["lr"] == 3e-3
    assert "pivot" in tensors and not any("mapping" in k for k in tensors)
    changed = [k for k in tensors if k != "pivot"]
    weights = [k for k, p in G.synthesis.named_parameters()]
    assert sorted(changed) == sorted(f"G.synthesis.{k}" for k in weights)  # every weight moved, no buffer stored
    # The base is found beside the tuned file, by the relative path it records.
    G2 = load_generator(path, device="cpu")
    with torch.no_grad():
        np.testing.assert_array_equal(G2.synthesis(r.pivot, noise_mode="const").numpy(),
                                      r.G.synthesis(r.pivot, noise_mode="const").numpy())  # fmt: skip
    assert model_fingerprint(load_generator(base_path, device="cpu")) == model_fingerprint(G)
    # Directions fitted on the base edit the tuned model too; those of another model are still refused.
    from latentlab.edit.directions import Direction

    vec = torch.ones(G.w_dim)
    Direction(vec, "smile", "w", "svm", model="base", model_hash=model_fingerprint(G)).check_model(G2)
    with pytest.raises(ValueError, match="was fitted on model other"):
        Direction(vec, "smile", "w", "svm", model="other", model_hash="0" * 16).check_model(G2)
    # Another base: refused by fingerprint.
    with pytest.raises(CheckpointError, match="fingerprint"):
        apply_tuned(tiny_G(seed=3), path)
    save_checkpoint(base_path, G_ema=tiny_G(seed=3))  # the base file replaced by other weights
    with pytest.raises(CheckpointError, match="not the same weights"):
        load_generator(path, device="cpu")
    # `latentlab info` describes it: the base it needs, what changed, the tuning's record.
    r_info = CliRunner().invoke(cli, ["info", str(path), "--json"])
    assert r_info.exit_code == 0, r_info.output
    d = json.loads(r_info.output)
    assert d["format"] == "latentlab-tuned" and d["base"]["fingerprint"] == model_fingerprint(G)
    assert d["tensors"] == len(changed) and d["pivot"] == [1, G.num_ws, G.w_dim] and d["tune"]["steps"] == 5
    text = CliRunner().invoke(cli, ["info", str(path)]).output
    assert "base:      base.safetensors" in text and "tuning:    5 steps" in text
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + b" " * 14)
    with pytest.raises(CheckpointError):
        read_tuned(tmp_path / "junk.safetensors")


def test_tune_cli_end_to_end(real_weights, tiny_ckpt, tmp_path):
    path, _, G_ema, _ = tiny_ckpt
    with torch.no_grad():
        img = G_ema(torch.randn(1, G_ema.z_dim, generator=torch.Generator().manual_seed(4)), None, noise_mode="const")
    arr = ((img[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    Image.fromarray(arr).save(tmp_path / "face.png")
    r = CliRunner().invoke(cli, ["tune", str(tmp_path / "face.png"), "--network", str(path), "--outdir",
                                 str(tmp_path / "tuned"), "--steps", "8", "--pivot-steps", "10", "--pivot-loss", "mse",
                                 "--lpips-threshold", "0", "--no-progress", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "(pivot) ->" in r.output and "8 steps" in r.output
    out = tmp_path / "tuned"
    summary = json.loads((out / "summary.json").read_text())
    row = summary["rows"][0]
    assert row["steps"] == 8 and row["lpips"] < row["pivot_lpips"]
    assert {p.name for p in out.iterdir()} >= {"face.safetensors", "face.npz", "face.png", "face-compare.png"}
    r = CliRunner().invoke(cli, ["generate", "--network", str(out / "face.safetensors"), "--latents",
                                 str(out / "face.npz"), "--outdir", str(tmp_path / "gen"), "--noise-mode", "const",
                                 "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    again = np.asarray(Image.open(next((tmp_path / "gen").glob("*.png"))))
    np.testing.assert_array_equal(again, np.asarray(Image.open(out / "face.png")))


def test_tune_help_has_an_example():
    r = CliRunner().invoke(cli, ["tune", "--help"])
    assert r.exit_code == 0 and "latentlab tune aligned/me_0.png --network synthfaces-64" in r.output


def test_tune_to_folder_resumes_a_killed_job_and_refuses_other_settings(lpips_alex, tmp_path, monkeypatch):
    import latentlab.projection.tune as tune_mod
    from latentlab.data.targets import load_targets
    from latentlab.io import save_image
    from latentlab.io.images import to_uint8
    from latentlab.perceptual import MSELoss
    from latentlab.projection.tune import pivot_config, tune_to_folder

    G = tiny_G().eval().requires_grad_(False)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        imgs = G.synthesis(G.mapping(torch.randn(3, G.z_dim, generator=g), None), noise_mode="const")
    (tmp_path / "in").mkdir()
    paths = [tmp_path / "in" / f"{k}.png" for k in "abc"]
    for path, img in zip(paths, to_uint8(imgs), strict=True):
        save_image(path, img)
    targets = load_targets(paths, G.img_resolution)
    config, pivot = TuneConfig(steps=3, lpips_threshold=0), pivot_config(steps=4, loss="mse")
    kw = dict(lpips=lpips_alex, pivot_loss=MSELoss(), config=config, pivot=pivot, batch_size=1, progress=False)
    out = tmp_path / "out"
    full = tune_to_folder(G, targets, out, "tiny", **kw)
    first = {k: read_tuned(out / f"{k}.safetensors")[1] for k in "abc"}
    # killed: b's comparison never written, c never started
    (out / "b-compare.png").unlink()
    for suffix in (".safetensors", ".npz", ".png", "-compare.png"):
        (out / f"c{suffix}").unlink()
    calls = []
    real = tune_mod.tune
    monkeypatch.setattr(tune_mod, "tune", lambda G, target, *a, **k: calls.append(1) or real(G, target, *a, **k))
    rows = tune_to_folder(G, targets, out, "tiny", resume=True, **kw)
    assert len(calls) == 2  # b and c tuned again, a kept
    assert [r["image"] for r in rows] == [str(p) for p in paths]
    for r, f in zip(rows, full, strict=True):  # the resumed rows come from the files: the same figures
        assert {k: v for k, v in r.items() if k != "seconds"} == {k: v for k, v in f.items() if k != "seconds"}
    for k in "abc":  # the same tensors as the uninterrupted run
        again = read_tuned(out / f"{k}.safetensors")[1]
        assert again.keys() == first[k].keys() and all(torch.equal(again[n], first[k][n]) for n in again)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == 1 and len(summary["rows"]) == 3
    calls.clear()

    def figures(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert figures(tune_to_folder(G, targets, out, "tiny", resume=True, **kw)) == figures(summary["rows"])
    assert not calls  # all done: nothing tuned
    with pytest.raises(InvalidInput, match="steps 3 \\(now 4\\)"):
        tune_to_folder(G, targets, out, "tiny", resume=True, **{**kw, "config": TuneConfig(steps=4,
                                                                                            lpips_threshold=0)})
    with pytest.raises(InvalidInput, match="pivot steps 4 \\(now 5\\)"):
        tune_to_folder(G, targets, out, "tiny", resume=True, **{**kw, "pivot": pivot_config(steps=5, loss="mse")})
