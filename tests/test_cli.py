"""The command line, end to end on tiny networks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentlab import load_checkpoint, load_generator, load_latents
from latentlab.cli import cli
from latentlab.io.images import load_image
from latentlab.nn import seed_to_z

SUBCOMMANDS = ["generate", "info", "init", "presets", "demo"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_help_with_example(cmd):
    r = run(cmd, "--help")
    assert r.exit_code == 0
    assert "Example" in r.output and f"latentlab {cmd}" in r.output


def test_generate_end_to_end(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    out = tmp_path / "out"
    r = run("generate", "--network", path, "--seeds", "0-2,9", "--trunc", "0.7", "--outdir", out, "--grid",
            "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["codes.npz", "grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0009.png"]
    assert load_image(out / "seed0009.png").shape == (16, 16, 3)
    assert load_image(out / "grid.png").shape == (32, 32, 3)
    codes = load_latents(out / "codes.npz")
    G = load_generator(path, device="cpu")
    assert codes.w.shape == (4, G.num_ws, G.w_dim)
    assert list(codes.arrays["seeds"]) == [0, 1, 2, 9]
    assert codes.meta["truncation_psi"] == 0.7
    # z is NVIDIA generate.py's: RandomState(seed).randn(1, z_dim).
    assert torch.equal(torch.from_numpy(codes.arrays["z"][3]), seed_to_z(G.z_dim, 9)[0])
    # The stored W+ codes re-render the PNG exactly.
    with torch.no_grad():
        img = G.synthesis(codes.w[3:4], noise_mode="const")
    from latentlab import to_uint8

    assert np.array_equal(to_uint8(img)[0], load_image(out / "seed0009.png"))


def test_generate_is_deterministic_and_batch_independent(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    for name, batch in (("a", 1), ("b", 4)):
        assert run("generate", "--network", path, "--seeds", "3-5", "--noise-mode", "random",
                   "--batch", batch, "--outdir", tmp_path / name).exit_code == 0  # fmt: skip
    for s in (3, 4, 5):
        a = load_image(tmp_path / "a" / f"seed{s:04d}.png").astype(int)
        b = load_image(tmp_path / "b" / f"seed{s:04d}.png").astype(int)
        assert np.abs(a - b).max() <= 1  # same image whatever the batch (float rounding at most)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--seeds", "5-1"], "runs backwards"),
        (["--seeds", "1,x"], "cannot parse 'x'"),
        (["--seeds", "0", "--trunc", "3"], "Invalid value for '--trunc': must be >= -1 and <= 2, got 3"),
        (["--seeds", "0", "--trunc", "nan"], "Invalid value for '--trunc': must be a finite number, got nan"),
        (["--seeds", "0", "--trunc-cutoff", "99"], "truncation cutoff must be >= 0 and <= 6, got 99"),
        (["--seeds", "99999999999"], "seeds: '99999999999' is outside 0..4294967295"),
        (["--seeds", "0", "--class", "1"], "unconditional"),
        (["--seeds", "0", "--device", "tpu"], "unknown device 'tpu'"),
        (["--seeds", "0", "--precision", "fp16", "--device", "cpu"], "float16 synthesis needs a CUDA device"),
        (["--seeds", "0", "--precision", "int8"], "'int8' is not one of 'fp32', 'bf16', 'fp16'"),
    ],
)
def test_generate_bad_input_is_one_clear_line(tiny_ckpt, tmp_path, args, message):
    path, *_ = tiny_ckpt
    r = CliRunner().invoke(cli, ["generate", "--network", str(path), "--outdir", str(tmp_path / "o"), *args])
    assert r.exit_code != 0
    assert message in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error:")]) == 1, r.output
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_generate_in_bfloat16_is_close_to_float32_and_says_so(tiny_ckpt, tmp_path):
    path, *_ = tiny_ckpt
    for p in ("fp32", "bf16"):
        r = run("generate", "--network", path, "--seeds", "0-3", "--precision", p, "--outdir", tmp_path / p,
                "--device", "cpu")  # fmt: skip
        assert r.exit_code == 0, r.output
    assert load_latents(tmp_path / "bf16" / "codes.npz").meta["precision"] == "bf16"
    a = np.stack([load_image(tmp_path / "fp32" / f"seed{s:04d}.png") for s in range(4)]).astype(float)
    b = np.stack([load_image(tmp_path / "bf16" / f"seed{s:04d}.png") for s in range(4)]).astype(float)
    assert (a != b).any()  # it did run in bfloat16
    assert 10 * np.log10(255**2 / ((a - b) ** 2).mean()) > 35
    # the codes are float32 and the same either way
    assert torch.equal(load_latents(tmp_path / "bf16" / "codes.npz").w, load_latents(tmp_path / "fp32" / "codes.npz").w)
    # --latents re-renders in the precision asked for; one image at a time, and bfloat16 rounds differently from
    # the batch of 4 (float32 differs by an ulp, bfloat16 by a few grey levels on this untrained network)
    r = run("generate", "--network", path, "--latents", tmp_path / "bf16" / "codes.npz", "--precision", "bf16",
            "--outdir", tmp_path / "again", "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output
    again = load_image(tmp_path / "again" / "code0002.png").astype(float)
    assert 10 * np.log10(255**2 / ((again - b[2]) ** 2).mean()) > 40


def test_generate_conditional_network(tmp_path):
    from latentlab import save_checkpoint

    from conftest import tiny_G

    path = save_checkpoint(tmp_path / "cond.safetensors", G_ema=tiny_G(c_dim=3))
    for k in (0, 2):
        r = run("generate", "--network", path, "--seeds", "4", "--class", k, "--outdir", tmp_path / f"c{k}")
        assert r.exit_code == 0, r.output
    a = load_image(tmp_path / "c0" / "seed0004.png").astype(int)
    b = load_image(tmp_path / "c2" / "seed0004.png").astype(int)
    assert np.abs(a - b).max() > 10  # the label changes the image
    r = CliRunner().invoke(cli, ["generate", "--network", str(path), "--seeds", "4", "--outdir", str(tmp_path / "x")])
    assert r.exit_code == 1 and "conditional (3 classes): give a class index" in r.output
    r = CliRunner().invoke(cli, ["generate", "--network", str(path), "--seeds", "4", "--class", "3",
                                 "--outdir", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code == 1 and "class index must be in [0, 3)" in r.output


def test_bad_network_files(tmp_path):
    (tmp_path / "corrupt.safetensors").write_bytes(b"\xff" * 100)
    for network, message in [(tmp_path / "corrupt.safetensors", "not a readable .safetensors checkpoint"),
                             ("no-such-thing", "neither a file nor a known model name")]:  # fmt: skip
        for argv in (["info", network], ["generate", "--network", network, "--seeds", "0", "--outdir", tmp_path]):
            r = CliRunner().invoke(cli, [str(a) for a in argv])
            assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output


def test_info(tiny_ckpt):
    path, *_ = tiny_ckpt
    r = run("info", path)
    assert r.exit_code == 0
    assert "num_ws: 6" in r.output and "b16.torgb" in r.output and "discriminator parameters" in r.output
    r = run("info", path, "--json")
    import json

    d = json.loads(r.output)
    assert d["G"]["num_ws"] == 6 and [row["group"] for row in d["G"]["layers"]] == ["coarse"] * 4 + ["middle"] * 2
    assert d["G"]["params"]["total"] == d["G"]["params"]["mapping"] + d["G"]["params"]["synthesis"]


def test_init_and_presets(tmp_path):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.safetensors"
        assert run("init", "--preset", "tiny", "--seed", seed, paths[name]).exit_code == 0
    a, b, c = (load_generator(paths[n], device="cpu").state_dict() for n in "abc")
    assert next(iter(load_checkpoint(paths["a"]).G.state_dict().values())).shape  # G is stored too
    assert all(torch.equal(a[k], b[k]) for k in a)  # the seed fixes the initialisation
    assert not torch.equal(a["synthesis.b4.const"], c["synthesis.b4.const"])
    assert load_checkpoint(paths["a"]).D is not None
    r = CliRunner().invoke(cli, ["init", "--preset", "huge", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 1 and "unknown preset 'huge'" in r.output
    assert "bench-a" in run("presets").output


def test_demo(tmp_path):
    r = run("demo", "--outdir", tmp_path / "demo", "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tmp_path / "demo"
    assert load_image(out / "samples.png").shape == (64, 8 * 64 + 7 * 2, 3)
    assert load_image(out / "photo.png").shape == (64, 64, 3)
    assert load_image(out / "truncation.png").shape == (64, 4 * 64 + 3 * 2, 3)
    assert load_image(out / "mixing.png").shape == (64, 5 * 64 + 4 * 2, 3)
    assert load_image(out / "strip.png").shape[1] == 8 * 64 + 7 * 2
    assert load_image(out / "projection.png").shape == (64, 3 * 64 + 2 * 2, 3)
    psnrs = dict(re.findall(r"projected the photo into (W\+?) \(.*\): PSNR ([\d.]+) dB", r.output))
    assert float(psnrs["W+"]) > 22 and float(psnrs["W"]) > 18, r.output  # a fresh render, 1000 steps
    assert "(ms-ssim" in r.output and "offline loss" not in r.output  # auto at 64 px: ms-ssim, by measurement
    codes = load_latents(out / "photo-wplus.npz")
    assert codes.w.shape == (1, 10, 256) and "noise_b64.conv1" in codes.arrays
    # The embedded encoder: alone, then 100 steps, beside the 1000-step W+ projection.
    assert load_image(out / "encoder.png").shape == (64, 4 * 64 + 3 * 2, 3)
    enc = re.search(r"encoded the photo into W\+: the encoder alone ([\d.]+) dB in [\d.]+ s; encoder \+ 100 steps "
                    r"([\d.]+) dB in [\d.]+ s; 1000 steps from the mean ([\d.]+) dB", r.output)  # fmt: skip
    assert enc is not None, r.output
    alone, refined, full = map(float, enc.groups())
    assert alone > 18 and refined > alone and abs(full - float(psnrs["W+"])) < 0.06, r.output
    assert load_latents(out / "photo-encoder.npz").meta["init"] == "encoder"
    page = (out / "report.html").read_text()
    assert all(f"src='{n}.png'" in page for n in ("photo", "projection", "encoder", "samples", "truncation", "mixing"))
    assert "&quot;smile&quot;" in page and "classifier reading vs truth" in page  # true factors, classifier
    assert "embedded default model: synthfaces-64" in r.output and "UNTRAINED" not in page
    # Each edit row says how far the classifier's readings travel: the target's and the most-moved other's.
    travel = re.findall(r"readings over the strip: (\w+) ([\d.]+), most-moved other: (\w+) ([\d.]+) \(([\d.]+)x\)",
                        r.output)  # fmt: skip
    assert [t[0] for t in travel] == ["smile", "glasses"], r.output
    for target, t, other, o, ratio in travel:
        assert other != target and 0 < float(t) <= 1 and 0 <= float(o) <= 1
        assert abs(float(ratio) - float(t) / max(float(o), 1e-6)) <= 0.05 + 0.15 * float(ratio)  # printed rounded
    assert "How far the classifier&#x27;s readings travel" in page and "glasses: glasses " in page
    r = CliRunner().invoke(cli, ["demo", "--outdir", str(tmp_path / "d2"), "--device", "tpu"])
    assert r.exit_code == 1 and "unknown device" in r.output and not (tmp_path / "d2").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    exe = shutil.which("latentlab") or str(__import__("pathlib").Path(sys.executable).parent / "latentlab")
    ok = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and "version" in ok.stdout
    bad = subprocess.run([exe, "info", str(tmp_path / "missing.safetensors")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error:") and "Traceback" not in bad.stderr
    assert "no such file" in bad.stderr
    module = subprocess.run([sys.executable, "-m", "latentlab", "presets"], capture_output=True, text=True)
    assert module.returncode == 0 and "bench-a" in module.stdout


def test_demo_without_the_embedded_model_says_so(tmp_path, monkeypatch):
    from latentlab import registry

    monkeypatch.setattr(registry, "default_model", lambda: None)
    monkeypatch.setattr("latentlab.demo.PROJECT_STEPS", 20)
    r = CliRunner().invoke(cli, ["demo", "--outdir", str(tmp_path / "d"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "UNTRAINED" in r.output and "UNTRAINED" in (tmp_path / "d" / "report.html").read_text()


def _commands(group, prefix=()):
    import click

    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_command_has_help_with_an_example_and_a_docs_section():
    from pathlib import Path

    from latentlab.cli import cli

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    missing = []
    for path in _commands(cli):
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        if "Example" not in r.output or f"latentlab {' '.join(path)}" not in r.output:
            missing.append(" ".join(path) + " (help)")
        if f"latentlab {' '.join(path)}" not in docs:
            missing.append(" ".join(path) + " (docs/cli.md)")
        # A backslash-newline inside a docstring joins two example lines with a run of spaces; examples outside a
        # \b block are rewrapped by click, so an option starts a line with no continuation before it.
        prev = ""
        for line in r.output.splitlines():
            if line.lstrip().startswith("latentlab ") and "        " in line.split("#")[0].strip():
                missing.append(" ".join(path) + f" (an example line was joined: {line.strip()[:60]}...)")
            if line.lstrip().startswith("--") and prev.lstrip().startswith("latentlab ") and not prev.endswith("\\"):
                missing.append(" ".join(path) + f" (an example was rewrapped: {prev.strip()[:60]}...)")
            prev = line
    assert not missing, missing
