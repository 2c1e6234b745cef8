"""Hostile inputs through the CLI and the API: every bad input ends in one clean error, nothing else.

For each case the CLI must exit non-zero with exactly one ``Error:`` line (the one expected), no traceback,
no new file anywhere in the work folder, and no network connection attempted. API cases must raise the
documented exception type with the expected message. One case per family of the hostile-user report
(issue 17) and more; the ``slow`` set adds randomised latents files and option values, checked against a
predicate of what is valid (valid inputs must render finite, non-constant images).

``LATENTLAB_FUZZ_REPORT=path.json`` makes the run write its tally (inputs tried, clean errors, tracebacks,
accepted garbage) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from latentlab import load_generator, save_latents
from latentlab.cli import cli
from latentlab.edit import edit
from latentlab.edit.directions import Direction
from latentlab.io import init_checkpoint
from latentlab.io.checkpoint import CheckpointError
from latentlab.projection import project
from latentlab.render import render_codes
from latentlab.validate import InvalidInput

TALLY = {"inputs": 0, "clean_errors": 0, "tracebacks": 0, "accepted_garbage": 0, "valid_accepted": 0}


@pytest.fixture(scope="session", autouse=True)
def _report():
    yield
    path = os.environ.get("LATENTLAB_FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps(TALLY, indent=1) + "\n")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any connection attempt fails the case (a crafted file must never make latentlab send a request)."""
    attempts = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network access attempted during a fuzz case")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts
    assert not attempts, f"a connection was attempted: {attempts}"


# ------------------------------------------------------------------------------------------- the workspace


def _rewrite_metadata(src: Path, dst: Path, **changes: str) -> Path:
    """A copy of a checkpoint with some ``__metadata__`` strings replaced (tensors unchanged)."""
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(changes)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def _npz(path: Path, **arrays) -> str:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return str(path)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A work folder: a tiny network, good and bad codes, directions, checkpoints, datasets and images."""
    root = tmp_path_factory.mktemp("fuzz")
    net = init_checkpoint("tiny", root / "tiny.safetensors", seed=0)
    good_w = np.random.default_rng(0).standard_normal((1, 6, 32)).astype(np.float32)
    save_latents(root / "good.npz", good_w, meta={"network": str(net)})
    f = {"net": str(net), "good": str(root / "good.npz"), "root": root}
    bad_w = {"nan": good_w * np.nan, "inf": np.full_like(good_w, np.inf), "huge": np.full_like(good_w, 1e38),
             "int": good_w.astype(np.int32), "bool": good_w > 0, "complex": good_w.astype(np.complex64),
             "empty": np.zeros((0, 6, 32), np.float32), "flat": np.zeros((6,), np.float32),
             "shape": np.zeros((1, 5, 32), np.float32)}  # fmt: skip
    for k, w in bad_w.items():
        f[f"w_{k}"] = _npz(root / f"w_{k}.npz", w=w, meta=json.dumps({"network": str(net)}))
    metas = {"list": "[1, 2]", "number": "7", "string": '"net"', "badjson": "{", "nettype": '{"network": 5}'}
    for k, m in metas.items():
        f[f"meta_{k}"] = _npz(root / f"meta_{k}.npz", w=good_w, meta=m)
    f["meta_url"] = _npz(root / "meta_url.npz", w=good_w, meta=json.dumps({"network": "http://127.0.0.1:9/x.pkl"}))
    f["z_count"] = _npz(root / "z_count.npz", w=np.repeat(good_w, 2, 0), z=np.zeros((3, 32), np.float32))
    f["z_nan"] = _npz(root / "z_nan.npz", w=good_w, z=np.full((1, 32), np.nan, np.float32))
    np.save(root / "plain.npy", good_w)
    f["npy"] = str(root / "plain.npy")
    (root / "renamed.npz").write_bytes((root / "plain.npy").read_bytes())
    f["npy_as_npz"] = str(root / "renamed.npz")
    (root / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    f["garbage_npz"] = str(root / "garbage.npz")

    # Directions: a good vector with broken metadata.
    vec = np.random.default_rng(1).standard_normal((1, 32)).astype(np.float32)
    base = {"format": "latentlab-direction", "version": 1, "dim": 32, "attribute": "a", "space": "w",
            "method": "svm"}  # fmt: skip
    dirs = {"list": [1, 2, 3], "layers": {**base, "layers": 5}, "attribute": {**base, "attribute": 5},
            "std_str": {**base, "std": "big"}, "std_nan": {**base, "std": float("nan")},
            "space": {**base, "space": "q"}, "dim": {**base, "dim": "32"}}  # fmt: skip
    for k, meta in dirs.items():
        np.save(root / f"d_{k}.npy", vec)
        (root / f"d_{k}.json").write_text(json.dumps(meta))
        f[f"d_{k}"] = str(root / f"d_{k}.npy")
    np.save(root / "d_nanvec.npy", vec * np.nan)
    f["d_nanvec"] = str(root / "d_nanvec.npy")
    np.save(root / "d_int.npy", np.ones((1, 32), np.int64))
    f["d_int"] = str(root / "d_int.npy")

    # Checkpoints with bad metadata or absurd configs.
    cfg = json.loads(safe_open(str(net), framework="pt").metadata()["config"])
    for k, meta in {"str": '"5"', "list": "[1, 2]", "source": '{"source": [1, 2]}'}.items():
        f[f"ck_meta_{k}"] = str(_rewrite_metadata(net, root / f"ck_meta_{k}.safetensors", meta=meta))
    for k, change in {"z": {"z_dim": 10**9}, "w": {"w_dim": 2**17}, "res": {"resolution": 2**20},
                      "base": {"channel_base": 1}, "bool": {"z_dim": True}, "nan": {"w_avg_beta": float("nan")},
                      "big": {"resolution": 8192, "channel_base": 2**24, "channel_max": 16384}}.items():  # fmt: skip
        c = {**cfg, "G": {**cfg["G"], **change}}
        f[f"ck_cfg_{k}"] = str(_rewrite_metadata(net, root / f"ck_cfg_{k}.safetensors", config=json.dumps(c)))

    with safe_open(str(net), framework="pt") as fh:
        meta, tensors = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}
    key = next(k for k in tensors if k.startswith("G_ema.synthesis") and k.endswith("weight"))
    tensors[key] = tensors[key].clone().fill_(float("nan"))
    save_file(tensors, str(root / "ck_nan_weights.safetensors"), metadata=meta)
    f["ck_nan"], f["ck_nan_key"] = str(root / "ck_nan_weights.safetensors"), key
    (root / "labels_nan.csv").write_text("name,smile\ngood,nan\n")
    f["labels_nan"] = str(root / "labels_nan.csv")

    # Datasets: a folder of images with a dataset.json each.
    img = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for k, labels in {"huge": 10**9, "overflow": 10**30, "string": "cat", "negative": -1, "nan": float("nan"),
                      "ragged": None, "float": 1.5}.items():  # fmt: skip
        d = root / f"ds_{k}"
        d.mkdir()
        for i in range(2):
            Image.fromarray(img).save(d / f"{i}.png")
        pairs = [["0.png", [1.0, 2.0]], ["1.png", [1.0]]] if k == "ragged" else [["0.png", 0], ["1.png", labels]]
        (d / "dataset.json").write_text(json.dumps({"labels": pairs}))
        f[f"ds_{k}"] = str(d)
    d = root / "ds_notobj"
    d.mkdir()
    Image.fromarray(img).save(d / "0.png")
    (d / "dataset.json").write_text("[1, 2]")
    f["ds_notobj"] = str(d)

    # Images that cannot be projected.
    imgs = root / "imgs"
    imgs.mkdir()
    Image.fromarray(np.full((20, 20), np.nan, np.float32), "F").save(imgs / "nan.tif")
    Image.fromarray(np.zeros((1, 500, 3), np.uint8)).save(imgs / "sliver.png")
    f["imgs"] = str(imgs)
    (root / "loop.png").symlink_to(root / "loop.png")
    f["loop"] = str(root / "loop.png")
    (root / "notweights.pth").write_bytes(b"not a torch file")
    f["badweights"] = str(root / "notweights.pth")
    Image.fromarray(img).save(root / "photo.png")
    f["photo"] = str(root / "photo.png")
    return f


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _check_cli(ws, args: list[str], message: str):
    """Run one bad command line in the work folder and hold it to the rules."""
    root = ws["root"]
    before = _snapshot(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        r = CliRunner().invoke(cli, args)
    finally:
        os.chdir(cwd)
    TALLY["inputs"] += 1
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        TALLY["tracebacks"] += 1
        raise AssertionError(f"{args}: unhandled {type(r.exception).__name__}: {r.exception}") from r.exception
    if r.exit_code == 0:
        TALLY["accepted_garbage"] += 1
        raise AssertionError(f"{args}: accepted (exit 0):\n{r.output}")
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output
    assert message in errors[0], f"{args}: expected {message!r} in {errors[0]!r}"
    new = _snapshot(root) - before
    assert not new, f"{args}: left {sorted(new)}"
    TALLY["clean_errors"] += 1


n, g, out = "{net}", "{good}", ["--out", "o.png"]  # the tiny network, good codes, an image to write
GEN = ["generate", "--network", n, "--outdir", "g"]  # generate into g/ (with --latents or --seeds to add)
CASES: dict[str, tuple[list[str], str]] = {  # {key} = a path of the work folder (ws[key])
    # 1. meta that is not a JSON object, through every command that reads codes
    "edit meta list": (["edit", "{meta_list}", "--direction", "smile", *out],
                       "'meta' must be a JSON object"),
    "edit meta number": (["edit", "{meta_number}", "--direction", "smile", *out], "must be a JSON object"),
    "interpolate meta string": (["interpolate", "{meta_string}", g, "--out", "o.png"], "must be a JSON object"),
    "mix meta list": (["mix", "--rows", "{meta_list}", "--cols", g, "--out", "o.png"], "must be a JSON object"),
    "noise meta number": (["noise", "{meta_number}", "--out", "o.png"], "must be a JSON object"),
    "edit meta bad json": (["edit", "{meta_badjson}", "--direction", "smile", *out], "'meta' is not valid JSON"),
    "edit meta network type": (["edit", "{meta_nettype}", "--direction", "smile", *out],
                               "meta field 'network' must be a str"),
    # 2. checkpoint metadata of the wrong type
    "info meta str": (["info", "{ck_meta_str}"], "meta must be a JSON object"),
    "info meta list": (["info", "{ck_meta_list}"], "meta must be a JSON object"),
    "convert meta source": (["convert", "{ck_meta_source}", "c.safetensors"], "meta field 'source' must be"),
    # 3. absurd configs, refused before anything is allocated
    "info z_dim 1e9": (["info", "{ck_cfg_z}"], "z_dim must be >= 0 and <= 16384, got 1000000000"),
    "info w_dim 2^17": (["info", "{ck_cfg_w}"], "w_dim must be >= 1 and <= 16384"),
    "info resolution 2^20": (["info", "{ck_cfg_res}"], "resolution must be >= 4 and <= 16384"),
    "info channel_base 1": (["info", "{ck_cfg_base}"], "channel_base must be >= resolution"),
    "info z_dim true": (["info", "{ck_cfg_bool}"], "z_dim must be an integer, got bool"),
    "info beta nan": (["info", "{ck_cfg_nan}"], "w_avg_beta must be a finite number"),
    "generate nan weights": (["generate", "--network", "{ck_nan}", "--seeds", "0", "--outdir", "g"],
                             "tensor {ck_nan_key} holds"),
    "fit nan labels": (["directions", "fit", "--network", n, "--codes", g, "--labels", "{labels_nan}",
                        "--attribute", "smile", "--space", "w+", "--layer", "0", "--out", "dirs"],
                       "column 'smile' is NaN or infinite"),
    "generate huge net": (["generate", "--network", "{ck_cfg_big}", "--seeds", "0", "--outdir", "g"],
                          "parameters, more than latentlab builds"),
    # 4. counts, file kinds, empty codes
    "edit z count": (["edit", "{z_count}", "--direction", "smile", "--network", n, *out],
                     "'z' has 3 row(s) but 'w' has 2 code(s)"),
    "generate npy": ([*GEN, "--latents", "{npy}"],
                     "a single .npy array, not an .npz"),
    "generate npy named npz": ([*GEN, "--latents", "{npy_as_npz}"],
                               "a single .npy array"),
    "generate garbage npz": ([*GEN, "--latents", "{garbage_npz}"],
                             "not a readable .npz latents file"),
    "generate empty": ([*GEN, "--latents", "{w_empty}"],
                       "'w' is empty"),
    "generate flat w": ([*GEN, "--latents", "{w_flat}"],
                        "'w' must have 2 or 3 dimensions"),
    "generate wrong shape": ([*GEN, "--latents", "{w_shape}"],
                             "do not fit this network"),
    # 5. non-finite, huge and non-float codes
    "generate nan": ([*GEN, "--latents", "{w_nan}"],
                     "non-finite value(s) (NaN or Inf)"),
    "generate inf": ([*GEN, "--latents", "{w_inf}"], "non-finite"),
    "generate 1e38": ([*GEN, "--latents", "{w_huge}"],
                      "beyond +-10000"),
    "edit int": (["edit", "{w_int}", "--direction", "smile", *out], "must hold floating-point values"),
    "interpolate bool": (["interpolate", "{w_bool}", g, "--out", "o.png"], "floating-point"),
    "mix complex": (["mix", "--rows", "{w_complex}", "--cols", g, "--out", "o.png"], "floating-point"),
    "noise nan": (["noise", "{w_nan}", "--out", "o.png"], "non-finite"),
    "edit z nan": (["edit", "{z_nan}", "--direction", "smile", "--network", n, *out], "'z' holds"),
    # 6. direction files of the wrong types
    "direction list": (["edit", g, "--direction", "{d_list}", *out], "metadata must be a JSON object"),
    "direction layers 5": (["edit", g, "--direction", "{d_layers}", *out], "layers must be a list of integers"),
    "direction attribute 5": (["edit", g, "--direction", "{d_attribute}", *out],
                              "attribute must be a non-empty string"),
    "direction std str": (["edit", g, "--direction", "{d_std_str}", *out], "std must be a number"),
    "direction std nan": (["edit", g, "--direction", "{d_std_nan}", *out], "std must be a finite number"),
    "direction space": (["edit", g, "--direction", "{d_space}", *out], "space must be one of z, w, w+"),
    "direction dim str": (["edit", g, "--direction", "{d_dim}", *out], "says dim '32'"),
    "direction nan vector": (["edit", g, "--direction", "{d_nanvec}", *out], "non-finite"),
    "direction int vector": (["edit", g, "--direction", "{d_int}", *out], "a direction is a float vector"),
    # 7. truncation and alphas
    "generate latents trunc nan": ([*GEN, "--latents", g, "--trunc", "nan"],
                                   "must be a finite number, got nan"),
    "generate trunc inf": ([*GEN, "--seeds", "0", "--trunc", "inf"],
                           "finite"),
    "generate latents trunc 2.5": ([*GEN, "--latents", g, "--trunc", "2.5"],
                                   "must be >= -1 and <= 2, got 2.5"),
    "generate cutoff -5": ([*GEN, "--latents", g, "--trunc", "0.5", "--trunc-cutoff", "-5"],
                           "-5 is not in the range x>=0"),
    "generate latents cutoff 99": ([*GEN, "--latents", g, "--trunc", "0.5", "--trunc-cutoff", "99"],
                                   "truncation cutoff must be >= 0 and <= 6"),
    "mix trunc nan": (["mix", "--row-seeds", "1", "--col-seeds", "2", "--trunc", "nan", "--network", n, "--out",
                       "o.png"], "finite"),
    "edit alpha nan": (["edit", g, "--direction", "smile", "--alpha", "nan:1:3", *out], "alpha must be a finite"),
    "edit alpha unbounded": (["edit", g, "--direction", "smile", "--alpha", "-3:3:100000000", *out],
                             "number of alphas must be >= 1 and <= 1000"),
    "edit alpha huge": (["edit", g, "--direction", "smile", "--alpha", "1e300", *out], "alpha must be >= -1000"),
    "generate seeds huge": ([*GEN, "--seeds", "0-999999"],
                            "more than 100000 values"),
    "generate seed 2^32": ([*GEN, "--seeds", "4294967296"],
                           "outside 0..4294967295"),
    # 8. projection options
    "project lr inf": (["project", "{photo}", "--network", n, "--outdir", "p", "--lr", "inf"], "finite"),
    "project noise-weight nan": (["project", "{photo}", "--network", n, "--outdir", "p", "--noise-weight", "nan"],
                                 "finite number, got nan"),
    "project mse nan": (["project", "{photo}", "--network", n, "--outdir", "p", "--mse", "nan"], "finite"),
    "project mse negative": (["project", "{photo}", "--network", n, "--outdir", "p", "--mse", "-1"], ">= 0"),
    "project seed negative": (["project", "{photo}", "--network", n, "--outdir", "p", "--seed", "-1"],
                              "is not in the range"),
    # 9. dataset labels and training options
    "dataset info label 1e9": (["dataset", "info", "{ds_huge}"], "class must be >= 0 and <= 99999"),
    "dataset info label 1e30": (["dataset", "info", "{ds_overflow}"], "class must be >= 0 and <= 99999"),
    "dataset info not object": (["dataset", "info", "{ds_notobj}"], "dataset.json must be a JSON object"),
    "train cond label 1e9": (["train", "--data", "{ds_huge}", "--outdir", "t", "--preset", "tiny", "--cond",
                              "--kimg", "0.001"], "class must be >= 0"),
    "prepare string label": (["dataset", "prepare", "{ds_string}", "d.zip", "--resolution", "16"],
                             "class must be an integer, got str"),
    "prepare negative label": (["dataset", "prepare", "{ds_negative}", "d.zip", "--resolution", "16"],
                               "class must be >= 0"),
    "prepare ragged labels": (["dataset", "prepare", "{ds_ragged}", "d.zip", "--resolution", "16"],
                              "equal-length lists"),
    "prepare nan label": (["dataset", "prepare", "{ds_nan}", "d.zip", "--resolution", "16"],
                          "class must be a finite number"),
    "prepare fractional label": (["dataset", "prepare", "{ds_float}", "d.zip", "--resolution", "16"],
                                 "class must be an integer, got 1.5"),
    "train gamma nan": (["train", "--data", "{imgs}", "--outdir", "t", "--gamma", "nan"], "finite"),
    "train threads 0": (["train", "--data", "{imgs}", "--outdir", "t", "--threads", "0"], "is not in the range"),
    "train kimg -1": (["train", "--data", "{imgs}", "--outdir", "t", "--kimg", "-1"], "must be > 0"),
    # 10. devices
    "generate device meta": ([*GEN, "--seeds", "0", "--device", "meta"],
                             "device 'meta' is not one latentlab runs on"),
    "generate device cuda:7": ([*GEN, "--seeds", "0", "--device", "cuda:7"],
                               "device 'cuda:7' asked for"),
    "project device bogus": (["project", "{photo}", "--network", n, "--outdir", "p", "--device", "npu"],
                             "unknown device 'npu'"),
    # 11. a file's network is never fetched
    "edit network url in file": (["edit", "{meta_url}", "--direction", "smile", *out],
                                 "give --network to use it (latentlab fetches nothing"),
    "noise network url in file": (["noise", "{meta_url}", "--out", "o.png"], "fetches nothing"),
    # 12. smaller ones
    "project bad lpips weights": (["project", "{photo}", "--network", n, "--outdir", "p", "--lpips-weights",
                                   "{badweights}"], "neither a torch.save file, a TorchScript archive nor a pickle"),
    "project missing lpips weights": (["project", "{photo}", "--network", n, "--outdir", "p", "--lpips-weights",
                                       "nope.pth"], "lpips-vgg weights file 'nope.pth': no such file"),
    "edit unknown extension": (["edit", g, "--direction", "smile", "--out", "e.xyz"], "--out must be a"),
    "interpolate video extension": (["interpolate", "1", "2", "--network", n, "--video", "v.avi"],
                                    "--video must be a .mp4 file"),
    "generate network loop": (["generate", "--network", "{loop}", "--seeds", "0", "--outdir", "g"],
                              "a symlink loop"),
    "generate network empty": (["generate", "--network", "", "--seeds", "0", "--outdir", "g"],
                               "the network is empty"),
    "project only bad images": (["project", "{imgs}", "--network", n, "--outdir", "p", "--steps", "1"],
                                "no readable images to project"),
    "info unknown name": (["info", "no-such-model"], "neither a file nor a known model name"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_bad_command_line(ws, name):
    args, message = CASES[name]
    _check_cli(ws, [a.format(**ws) for a in args], message.format(**ws))


def test_zip_entries_are_sized_before_they_are_read(ws, monkeypatch):
    import latentlab.data.datasets as datasets

    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 5000)  # stands for 256 MiB: the same check, a small file
    path = ws["root"] / "big.zip"
    try:
        with zipfile.ZipFile(path, "w") as z:
            z.write(ws["photo"], "0.png")
            z.writestr("dataset.json", json.dumps({"labels": None}) + " " * 6000)
        _check_cli(ws, ["dataset", "info", str(path)], "dataset.json is 6,016 bytes, more than the 5,000 latentlab")
    finally:
        path.unlink()


# ------------------------------------------------------------------------------------------- the API

API_CASES = {  # name: (call(c), exception type, message); c is the `api` fixture (G, good, d, ws)
    "load_generator cuda on cpu": (lambda c: load_generator(c.ws["net"], device=torch.device("cuda")), InvalidInput,
                                   "CUDA is not available"),
    "load_generator meta": (lambda c: load_generator(c.ws["net"], device=torch.device("meta")), InvalidInput,
                            "not one latentlab runs on"),
    "load_generator None": (lambda c: load_generator(None), InvalidInput, "must be a path or a name"),
    "load_generator 5": (lambda c: load_generator(5), InvalidInput, "got int"),
    "load_generator bad meta": (lambda c: load_generator(c.ws["ck_meta_list"]), CheckpointError, "JSON object"),
    "project numpy": (lambda c: project(c.G, np.zeros((1, 3, 16, 16), np.float32), steps=1, loss="mse"),
                      InvalidInput, "convert uint8"),
    "project uint8": (lambda c: project(c.G, torch.zeros(1, 3, 16, 16, dtype=torch.uint8), steps=1, loss="mse"),
                      InvalidInput, "torch.uint8"),
    "project nan": (lambda c: project(c.G, torch.full((1, 3, 16, 16), float("nan")), steps=1, loss="mse"),
                    InvalidInput, "non-finite"),
    "project 0..255": (lambda c: project(c.G, torch.full((1, 3, 16, 16), 200.0), steps=1, loss="mse"), InvalidInput,
                       "0..255 pixels"),
    "project lr nan": (lambda c: project(c.G, torch.zeros(1, 3, 16, 16), steps=1, loss="mse", lr=float("nan")),
                       InvalidInput, "lr must be a finite number"),
    "edit int ws": (lambda c: edit(c.good.to(torch.int64), c.d, 1.0), InvalidInput, "floating-point tensor"),
    "edit nan alpha": (lambda c: edit(c.good, c.d, float("nan")), InvalidInput, "alpha must be a finite number"),
    "render nan": (lambda c: render_codes(c.G, c.good * float("nan")), InvalidInput, "non-finite"),
    "Direction nan std": (lambda c: Direction(c.d, "a", "w", "svm", std=float("nan")), InvalidInput, "std"),
    "Direction int layers": (lambda c: Direction(c.d, "a", "w", "svm", layers=5), InvalidInput, "list of integers"),
    "save_latents nan": (lambda c: save_latents(c.ws["root"] / "x.npz", c.good * float("nan")), InvalidInput,
                         "non-finite"),
    "truncate nan": (lambda c: c.G.mapping(torch.zeros(1, 32), None, truncation_psi=float("nan")), InvalidInput,
                     "truncation psi must be a finite number"),
}  # fmt: skip


@pytest.fixture(scope="module")
def api(ws):
    """What the API cases call with: the tiny generator, good codes ``[1, 6, 32]``, a unit direction, the files."""
    good = torch.from_numpy(np.load(ws["good"])["w"])
    return SimpleNamespace(G=load_generator(ws["net"], device="cpu"), good=good,
                           d=torch.nn.functional.normalize(torch.ones(32), dim=0), ws=ws)  # fmt: skip


@pytest.mark.parametrize("name", list(API_CASES))
def test_bad_api_call(ws, api, name):
    if name == "load_generator cuda on cpu" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    call, kind, message = API_CASES[name]
    before = _snapshot(ws["root"])
    TALLY["inputs"] += 1
    try:
        call(api)
    except kind as e:
        assert message in str(e), f"{name}: expected {message!r} in {e}"
        TALLY["clean_errors"] += 1
    except Exception as e:  # noqa: BLE001
        TALLY["tracebacks"] += 1
        raise AssertionError(f"{name}: {type(e).__name__} instead of {kind.__name__}: {e}") from e
    else:
        TALLY["accepted_garbage"] += 1
        raise AssertionError(f"{name}: accepted")
    assert _snapshot(ws["root"]) == before


# ------------------------------------------------------------------------------------------- randomised (slow)

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.bool_, np.complex64]
SPECIALS = [0.0, np.nan, np.inf, -np.inf, 1e38, 2e4, -5.0]


def _random_latents(rng, path: Path) -> bool:
    """Write a random (often broken) latents file; return whether it is valid for the tiny network."""
    n = int(rng.integers(0, 3))
    shape = [(n, 6, 32), (6, 32), (n, 5, 32), (n, 6, 31), (32,)][int(rng.integers(0, 5))]
    dtype = DTYPES[int(rng.integers(0, len(DTYPES)))]
    w = rng.standard_normal(shape)
    if rng.random() < 0.4 and w.size:
        w.flat[int(rng.integers(0, w.size))] = SPECIALS[int(rng.integers(0, len(SPECIALS)))]
    with np.errstate(invalid="ignore", over="ignore"):
        w = w.astype(dtype)
    meta = ['{}', '[1]', '"x"', '{"network": 3}', "{", '{"space": "w"}'][int(rng.integers(0, 6))]
    _npz(path, w=w, meta=meta)
    wf = np.asarray(w)
    ok_shape = (wf.ndim == 3 and wf.shape[1:] == (6, 32) and wf.shape[0] >= 1) or wf.shape == (6, 32)
    ok_values = wf.dtype.kind == "f" and wf.size > 0 and bool(np.isfinite(wf.astype(np.float64)).all()) and \
        float(np.abs(wf.astype(np.float64)).max()) <= 1e4  # fmt: skip
    return ok_shape and ok_values and meta in ('{}', '{"space": "w"}')


def _run_either(ws, args: list[str], valid: bool, outputs: list[Path]) -> None:
    """A valid input must succeed with finite, non-constant images; an invalid one must fail cleanly."""
    if not valid:
        _check_cli(ws, args, "")
        return
    cwd = os.getcwd()
    os.chdir(ws["root"])
    try:
        r = CliRunner().invoke(cli, args)
    finally:
        os.chdir(cwd)
    TALLY["inputs"] += 1
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        TALLY["tracebacks"] += 1
        raise AssertionError(f"{args}: unhandled {type(r.exception).__name__}: {r.exception}")
    assert r.exit_code == 0, f"{args}: a valid input was refused:\n{r.output}"
    for p in outputs:
        a = np.asarray(Image.open(ws["root"] / p))
        if a.std() == 0:
            TALLY["accepted_garbage"] += 1
            raise AssertionError(f"{args}: wrote a constant image {p}")
    TALLY["valid_accepted"] += 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(300))
def test_random_latents_files(ws, seed):
    rng = np.random.default_rng(1000 + seed)
    path = ws["root"] / f"rand{seed}.npz"
    valid = _random_latents(rng, path)
    try:
        out = ws["root"] / f"rand{seed}"
        _run_either(ws, ["generate", "--network", ws["net"], "--latents", str(path), "--outdir", str(out)], valid,
                    [out / "code0000.png"] if valid else [])  # fmt: skip
    finally:
        path.unlink()
        if (ws["root"] / f"rand{seed}").exists():
            for p in (ws["root"] / f"rand{seed}").iterdir():
                p.unlink()
            (ws["root"] / f"rand{seed}").rmdir()


OPTION_VALUES = ["nan", "inf", "-inf", "1e309", "", "abc", "-1", "0", "0.7", "1", "2", "2.5", "1e38", " 1 ", "0x10"]


@pytest.mark.slow
@pytest.mark.parametrize("value", OPTION_VALUES)
@pytest.mark.parametrize("option", ["--trunc", "--trunc-cutoff", "--seeds", "--batch"])
def test_random_option_values(ws, option, value):
    out = ws["root"] / "opt"
    args = ["generate", "--network", ws["net"], "--outdir", str(out)]
    args += [option, value] if option == "--seeds" else ["--seeds", "0", option, value]
    try:
        x = float(value)
    except ValueError:
        x = None
    if option == "--trunc":
        valid = x is not None and -1 <= x <= 2
    elif option == "--seeds":
        valid = value.strip().isdigit() and int(value) <= 2**32 - 1
    else:
        valid = value.strip().isdigit() and (option == "--trunc-cutoff" and int(value) <= 6 or int(value) >= 1)
    try:
        _run_either(ws, args, valid, [out / f"seed{int(value) if option == '--seeds' else 0:04d}.png"] if valid else [])
    finally:
        if out.exists():
            for p in out.iterdir():
                p.unlink()
            out.rmdir()
