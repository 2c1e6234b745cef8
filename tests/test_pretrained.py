"""The registry's download path, against an HTTP server on 127.0.0.1 (nothing leaves the machine)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from latentlab import pretrained
from latentlab.cli import cli
from latentlab.io.foreign import load_any
from latentlab.pretrained import DownloadError, PretrainedModel

from conftest import serve_files

FIXTURES = Path(__file__).parent / "fixtures"
NV_PKL = FIXTURES / "nvidia_tiny.pkl"
SHA = hashlib.sha256(NV_PKL.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "home"))
    files = {"/model.pkl": NV_PKL.read_bytes(), "/junk.pkl": b"\x80junk"}
    with serve_files(files, truncated={"/short.pkl": "/model.pkl"}) as (base, handler):
        yield base, handler


def entry(url: str, sha256: str | None = SHA, size: int | None = None) -> dict[str, PretrainedModel]:
    return {"toy-remote": PretrainedModel("toy-remote", "a toy", "toy-remote.safetensors", 16,
                                          url=url, sha256=sha256, size=size)}  # fmt: skip


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_download_verify_convert_and_cache(server, tmp_path):
    base, handler = server
    models = entry(base + "/model.pkl", size=NV_PKL.stat().st_size)
    G = pretrained.load("toy-remote", device="cpu", models=models, progress=False)
    ref = load_any(NV_PKL, networks=("G_ema",)).G_ema
    z, c = torch.randn(2, 16), torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode="const"), ref(z, c, noise_mode="const"))
    home = tmp_path / "home"
    assert leftovers(home) == ["toy-remote.safetensors"]  # the pickle itself is not kept
    ck = load_any(home / "models" / "toy-remote.safetensors")
    src = ck.meta["source"]
    assert src["url"] == base + "/model.pkl" and src["sha256"] == SHA and src["checksum_verified"] is True
    assert ck.G is None and ck.D is None  # the registry keeps G_ema only
    pretrained.load("toy-remote", device="cpu", models=models, progress=False)
    assert handler.hits == ["/model.pkl"]  # second load came from the cache


def test_checksum_mismatch_is_refused(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match=f"SHA-256 mismatch \\(got {SHA}, expected 0{{64}}\\)"):
        pretrained.fetch("toy-remote", entry(base + "/model.pkl", sha256="0" * 64), progress=False)
    assert leftovers(tmp_path / "home") == []


def test_size_mismatch_short_read_and_http_errors(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match="the registry expects 5 bytes|got .* bytes, the registry expects 5"):
        pretrained.fetch("toy-remote", entry(base + "/model.pkl", sha256=None, size=5), progress=False)
    with pytest.raises(DownloadError, match="incomplete download|download failed"):
        pretrained.fetch("toy-remote", entry(base + "/short.pkl", sha256=None), progress=False)
    with pytest.raises(DownloadError, match="HTTP 404"):
        pretrained.fetch("toy-remote", entry(base + "/missing.pkl"), progress=False)
    assert leftovers(tmp_path / "home") == []


def test_unverifiable_download_warns_and_records_hash(server, tmp_path):
    base, _ = server
    with pytest.warns(UserWarning, match=f"no published checksum.*{SHA}"):
        path = pretrained.fetch("toy-remote", entry(base + "/model.pkl", sha256=None), progress=False)
    assert load_any(path).meta["source"]["checksum_verified"] is False
    r = CliRunner().invoke(cli, ["info", str(path)])
    assert r.exit_code == 0 and "checksum not verified (none published)" in r.output and SHA in r.output


def test_download_that_does_not_convert_leaves_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(Exception, match="truncated or corrupt"):
        pretrained.fetch("toy-remote", entry(base + "/junk.pkl", sha256=None), progress=False)
    assert leftovers(tmp_path / "home") == []


def test_urls_and_cli(server, tmp_path):
    base, handler = server
    url = base + "/model.pkl"
    with pytest.warns(UserWarning):
        path = pretrained.resolve(url)
    assert path.parent == tmp_path / "home" / "models" and path.name.endswith("-model.safetensors")
    r = CliRunner().invoke(cli, ["generate", "--network", url, "--seeds", "0", "--class", "1",
                                 "--outdir", str(tmp_path / "out")])  # fmt: skip
    assert r.exit_code == 0 and (tmp_path / "out" / "seed0000.png").is_file()
    assert handler.hits == ["/model.pkl"]
    r = CliRunner().invoke(cli, ["download", base + "/missing.pkl"])
    assert r.exit_code == 1 and "HTTP 404" in r.output


def test_registry_entries_are_well_formed():
    names = pretrained.list_models()
    assert "stylegan2-ffhq-1024" in names
    for name in names:
        m = pretrained.get(name)
        assert m.filename == f"{name}.safetensors"
        if m.url is None:  # embedded: latentlab's own, MIT
            assert name == pretrained.DEFAULT_MODEL and m.license == "MIT"
            continue
        assert m.url.startswith("https://") and m.resolution in (32, 256, 512, 1024)
        if m.url.startswith("https://drive.google.com/uc?id="):  # the StyleGAN v1 releases: Drive file ids
            assert name.startswith("stylegan1-tf-") and len(m.url.rsplit("=", 1)[1]) == 33
        else:
            assert m.url.endswith(".pkl")
            assert str(m.resolution) in m.url or m.url.endswith("-config-f.pkl")
        assert "non-commercial" in m.license


def test_default_model_only_when_its_file_is_present(monkeypatch, tmp_path):
    monkeypatch.setattr("latentlab.registry.pretrained_dirs", lambda: [tmp_path])
    assert pretrained.default_model() is None
    (tmp_path / "synthfaces-64.safetensors").write_bytes(b"x")
    assert pretrained.default_model() == "synthfaces-64"
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0 and "stylegan2-ffhq-1024" in r.output and "remote" in r.output


def test_home_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENTLAB_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert pretrained.latentlab_home() == tmp_path / "latentlab"
    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "x"))
    assert pretrained.latentlab_home() == tmp_path / "x"
