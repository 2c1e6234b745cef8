"""The registry: names, URLs and downloads resolved to local files (embedded checkpoints, NVIDIA's StyleGAN2s).

This layer turns what a user types (a path, a registry name, an ``http(s)://`` URL, a shipped classifier or
direction name) into a local path; :mod:`latentlab.io` below it reads files given paths, and
:mod:`latentlab.pretrained` above it loads the named classifier and directions as objects.

* An **embedded** entry names a file shipped in a ``pretrained/`` folder (see :func:`pretrained_dirs`).
* A **remote** entry has a ``url``. The first :func:`fetch` downloads it with a progress bar into
  ``$LATENTLAB_HOME/downloads`` (default ``~/.cache/latentlab``), checks its size and SHA-256 where the
  entry knows them, converts it (nothing in the pickle is executed) and keeps only the native
  ``$LATENTLAB_HOME/models/<name>.safetensors``. Every file is written under a temporary name and renamed
  only once complete and verified, so an interrupted or corrupt download is never trusted later.
  For an entry without a published checksum the hash of what was downloaded is recorded in the
  converted file's metadata (``latentlab info`` shows it) and a warning says so.

``resolve(name_or_path)`` turns a path, a registry name or an ``http(s)://`` URL into a local file.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .io.atomic import atomic_path
from .io.checkpoint import (
    CheckpointError,
    check_generator_choice,
    load_generator_file,
    refuse_directory,
    save_checkpoint,
)
from .io.foreign import load_any
from .nn.generator import Generator
from .utils import bar_disable, resolve_device
from .validate import missing_message, path_text


class DownloadError(CheckpointError):
    """A download that failed, came back incomplete, or did not match its checksum; nothing was kept."""


@dataclass(frozen=True)
class PretrainedModel:
    """Metadata of a named model."""

    name: str  # registry name, e.g. "stylegan2-ffhq-1024"
    description: str  # one line
    filename: str  # the native file: inside pretrained/ (embedded) or $LATENTLAB_HOME/models (remote)
    resolution: int  # output side in pixels
    license: str = "MIT"  # licence of the weights
    source: str = "trained by latentlab"  # provenance
    sha256: str | None = None  # checksum of the file at `url` (remote) or of `filename` (embedded); None = unpublished
    url: str | None = None  # where a remote model is downloaded from; None = embedded
    size: int | None = None  # bytes at `url`, when known
    networks: tuple[str, ...] = ("G_ema",)  # what the cached conversion keeps
    alignment: str = "ffhq"  # the face framing its training images had (latentlab.faces.TEMPLATES)


_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_NVIDIA_LICENSE = "NVIDIA Source Code License-NC (non-commercial use only)"


def _nvidia(name: str, file: str, resolution: int, what: str) -> PretrainedModel:
    return PretrainedModel(name, f"NVIDIA's StyleGAN2 (config F) trained on {what}.", f"{name}.safetensors",
                           resolution, license=_NVIDIA_LICENSE, source="NVIDIA, stylegan3 repository (NGC)",
                           url=_NGC + file)  # fmt: skip


_TF_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"


def _nvidia_tf(name: str, file: str, resolution: int, what: str) -> PretrainedModel:
    return PretrainedModel(name, f"NVIDIA's StyleGAN2 (config F, the TensorFlow release) trained on {what}.",
                           f"{name}.safetensors", resolution, license=_NVIDIA_LICENSE,
                           source="NVIDIA, stylegan2 repository (TensorFlow pickle, read without TensorFlow)",
                           url=_TF_CDN + file, networks=("G_ema", "G", "D"))  # fmt: skip


_DRIVE = "https://drive.google.com/uc?id="


def _nvidia_v1(name: str, drive_id: str, resolution: int, what: str) -> PretrainedModel:
    return PretrainedModel(name, f"NVIDIA's StyleGAN (v1) trained on {what}.", f"{name}.safetensors", resolution,
                           license="CC BY-NC 4.0 (NVIDIA, non-commercial use only)",
                           source="NVIDIA, stylegan repository README (TensorFlow pickle on Google Drive, "
                                  "read without TensorFlow)", url=_DRIVE + drive_id,
                           networks=("G_ema", "G", "D"))  # fmt: skip


# NVIDIA's StyleGAN2 pickles as listed by the stylegan3 repository. NVIDIA publishes no checksums for
# them; the hash of each first download is recorded in the converted file (see the module docstring).
MODELS: dict[str, PretrainedModel] = {
    m.name: m
    for m in [
        _nvidia("stylegan2-ffhq-1024", "stylegan2-ffhq-1024x1024.pkl", 1024, "FFHQ at 1024x1024"),
        _nvidia("stylegan2-ffhq-512", "stylegan2-ffhq-512x512.pkl", 512, "FFHQ at 512x512"),
        _nvidia("stylegan2-ffhq-256", "stylegan2-ffhq-256x256.pkl", 256, "FFHQ at 256x256"),
        _nvidia("stylegan2-ffhqu-1024", "stylegan2-ffhqu-1024x1024.pkl", 1024, "unaligned FFHQ (FFHQ-U), 1024x1024"),
        _nvidia("stylegan2-ffhqu-256", "stylegan2-ffhqu-256x256.pkl", 256, "unaligned FFHQ (FFHQ-U), 256x256"),
        _nvidia("stylegan2-metfaces-1024", "stylegan2-metfaces-1024x1024.pkl", 1024, "MetFaces (ADA, from FFHQ)"),
        _nvidia("stylegan2-metfacesu-1024", "stylegan2-metfacesu-1024x1024.pkl", 1024, "unaligned MetFaces"),
        _nvidia("stylegan2-afhqv2-512", "stylegan2-afhqv2-512x512.pkl", 512, "AFHQv2 (cats, dogs, wild)"),
        _nvidia("stylegan2-afhqcat-512", "stylegan2-afhqcat-512x512.pkl", 512, "AFHQ Cat (ADA)"),
        _nvidia("stylegan2-afhqdog-512", "stylegan2-afhqdog-512x512.pkl", 512, "AFHQ Dog (ADA)"),
        _nvidia("stylegan2-afhqwild-512", "stylegan2-afhqwild-512x512.pkl", 512, "AFHQ Wild (ADA)"),
        _nvidia("stylegan2-brecahad-512", "stylegan2-brecahad-512x512.pkl", 512, "BreCaHAD (ADA)"),
        _nvidia("stylegan2-celebahq-256", "stylegan2-celebahq-256x256.pkl", 256, "CelebA-HQ at 256x256"),
        _nvidia("stylegan2-lsundog-256", "stylegan2-lsundog-256x256.pkl", 256, "LSUN Dog at 256x256"),
        _nvidia("stylegan2-cifar10-32", "stylegan2-cifar10-32x32.pkl", 32, "CIFAR-10, class-conditional (c_dim=10)"),
        # The TensorFlow originals (stylegan2 README, pretrained_networks.py): read as TensorFlow pickles.
        _nvidia_tf("stylegan2-tf-ffhq-1024", "stylegan2-ffhq-config-f.pkl", 1024, "FFHQ at 1024x1024"),
        _nvidia_tf("stylegan2-tf-car-512", "stylegan2-car-config-f.pkl", 512, "LSUN Car (512x384 in a 512 frame)"),
        _nvidia_tf("stylegan2-tf-cat-256", "stylegan2-cat-config-f.pkl", 256, "LSUN Cat at 256x256"),
        _nvidia_tf("stylegan2-tf-church-256", "stylegan2-church-config-f.pkl", 256, "LSUN Church at 256x256"),
        _nvidia_tf("stylegan2-tf-horse-256", "stylegan2-horse-config-f.pkl", 256, "LSUN Horse at 256x256"),
        # StyleGAN v1 (NVlabs/stylegan README, "networks"): Google Drive links, followed past its scan warning.
        _nvidia_v1("stylegan1-tf-ffhq-1024", "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ", 1024, "FFHQ at 1024x1024"),
        _nvidia_v1("stylegan1-tf-celebahq-1024", "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf", 1024, "CelebA-HQ, 1024x1024"),
        _nvidia_v1("stylegan1-tf-bedrooms-256", "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF", 256, "LSUN Bedroom, 256x256"),
        _nvidia_v1("stylegan1-tf-cars-512", "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3", 512, "LSUN Car, 512x384 in 512"),
        _nvidia_v1("stylegan1-tf-cats-256", "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ", 256, "LSUN Cat at 256x256"),
        PretrainedModel("synthfaces-64", "latentlab's embedded StyleGAN2, trained on SynthFaces at 64x64.",
                        "synthfaces-64.safetensors", 64, networks=("G_ema", "D"), alignment="synthfaces"),
    ]
}

_CHECKPOINT_SUFFIXES = (".safetensors", ".pkl", ".pt", ".pth")

# The model ``latentlab demo`` and the examples use, when its file is present (see default_model()).
DEFAULT_MODEL = "synthfaces-64"


def latentlab_home() -> Path:
    """The cache root: ``$LATENTLAB_HOME``, else ``$XDG_CACHE_HOME/latentlab``, else ``~/.cache/latentlab``."""
    if os.environ.get("LATENTLAB_HOME"):
        return Path(os.environ["LATENTLAB_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "latentlab"


def pretrained_dirs() -> list[Path]:
    """Folders searched for embedded files: ``$LATENTLAB_PRETRAINED``, the checkout's ``pretrained/``,
    and the copy installed inside the package."""
    here = Path(__file__).resolve().parent
    dirs = []
    if os.environ.get("LATENTLAB_PRETRAINED"):
        dirs.append(Path(os.environ["LATENTLAB_PRETRAINED"]))
    dirs += [here.parent / "pretrained", here / "_embedded"]  # a checkout, an installed wheel
    return dirs


def list_models(models: dict[str, PretrainedModel] | None = None) -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(MODELS if models is None else models)


def get(name: str, models: dict[str, PretrainedModel] | None = None) -> PretrainedModel:
    """The registry entry for ``name``; raises ``KeyError`` listing the known names otherwise."""
    models = MODELS if models is None else models
    try:
        return models[name]
    except KeyError:
        known = ", ".join(sorted(models)) or "none registered yet"
        raise KeyError(f"unknown model name {name!r}; known models: {known}") from None


def cached_path(entry: PretrainedModel) -> Path | None:
    """Where ``entry``'s native file is (or will be); None for an embedded entry that is not found."""
    if entry.url is not None:
        return latentlab_home() / "models" / entry.filename
    for d in pretrained_dirs():
        if (d / entry.filename).is_file():
            return d / entry.filename
    return None


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest`` atomically, checking the byte count and (if given) the SHA-256.

    The bytes go to a temporary file beside ``dest``, renamed only after every check passed; on any
    failure (network error, short read, checksum mismatch, Ctrl-C) the temporary is removed and
    ``dest`` is untouched.

    Returns:
        The hex SHA-256 of the downloaded bytes.
    Raises:
        DownloadError: HTTP/network failure, incomplete transfer, or size/checksum mismatch.
    """
    from tqdm import tqdm

    dest = Path(dest)
    h = hashlib.sha256()
    try:
        with atomic_path(dest) as tmp:
            with _open_file_response(url, timeout) as resp, open(tmp, "wb") as f:
                announced = resp.headers.get("Content-Length")
                total = int(announced) if announced and announced.isdigit() else size
                got = 0
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                          disable=bar_disable(progress), file=sys.stderr) as bar:  # fmt: skip
                    while block := resp.read(1 << 20):
                        f.write(block)
                        h.update(block)
                        got += len(block)
                        bar.update(len(block))
            if announced and announced.isdigit() and got != int(announced):
                raise DownloadError(f"{url}: incomplete download ({got} of {announced} bytes)")
            if size is not None and got != size:
                raise DownloadError(f"{url}: got {got} bytes, the registry expects {size}")
            digest = h.hexdigest()
            if sha256 is not None and digest != sha256.lower():
                raise DownloadError(f"{url}: SHA-256 mismatch (got {digest}, expected {sha256}); file discarded")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"{url}: cannot download ({e.reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"{url}: download failed ({type(e).__name__}: {e})") from None
    return digest


_PAGE_LIMIT = 1 << 20  # bytes of a web page read while looking for its download link


def _open_file_response(url: str, timeout: float, hops: int = 3):
    """The HTTP response carrying the file at ``url``. A web page where a file was expected is followed when it is
    Google Drive's "cannot scan this file for viruses" page (its download form or ``confirm=`` link: NVIDIA's
    StyleGAN v1 pickles are on Google Drive), else a :class:`DownloadError`."""
    current = url
    for _ in range(hops):
        req = urllib.request.Request(current, headers={"User-Agent": "latentlab"})
        resp = urllib.request.urlopen(req, timeout=timeout)
        if not resp.headers.get("Content-Type", "").lower().startswith("text/html"):
            return resp
        with resp:
            page = resp.read(_PAGE_LIMIT).decode("utf-8", "replace")
            where = resp.geturl()
        nxt = confirmed_download_url(page, where)
        if nxt is None:
            break
        current = nxt
    drive = "google" in urllib.parse.urlsplit(url).netloc
    hint = (" (Google Drive refuses downloads of a file over its daily quota: try later, or download it in a "
            "browser and give latentlab the file)") if drive else ""  # fmt: skip
    raise DownloadError(f"{url}: the server sent a web page, not the file{hint}")


def confirmed_download_url(page: str, page_url: str) -> str | None:
    """The URL behind the download button of Google Drive's virus-scan warning page ``page`` (fetched from
    ``page_url``), or None when the page has no such form or link. Reads the page as text; runs nothing in it."""
    forms = re.findall(r"<form\b[^>]*>.*?</form>", page, flags=re.S | re.I)
    for body in forms:
        tag = re.match(r"<form\b[^>]*>", body, flags=re.I).group(0)
        action = re.search(r'action="([^"]+)"', tag)
        if action is None or 'id="download-form"' not in tag:
            continue
        fields = []
        for inp in re.findall(r"<input\b[^>]*>", body, flags=re.I):
            name, value = re.search(r'name="([^"]*)"', inp), re.search(r'value="([^"]*)"', inp)
            if name and 'type="hidden"' in inp:
                fields.append((html.unescape(name.group(1)), html.unescape(value.group(1) if value else "")))
        target = urllib.parse.urljoin(page_url, html.unescape(action.group(1)))
        return target + ("&" if "?" in target else "?") + urllib.parse.urlencode(fields) if fields else target
    link = re.search(r'href="([^"]*[?&](?:amp;)?confirm=[^"]*)"', page)
    return urllib.parse.urljoin(page_url, html.unescape(link.group(1))) if link else None


def fetch(name: str, models: dict[str, PretrainedModel] | None = None, progress: bool = True) -> Path:
    """The native checkpoint of registry entry ``name``, downloading and converting it on first use.

    Raises:
        KeyError: unknown name (the message lists the known ones).
        FileNotFoundError: an embedded entry whose file is missing.
        DownloadError: see :func:`download`.
    """
    entry = get(name, models)
    if entry.url is None:
        path = cached_path(entry)
        if path is None:
            searched = ", ".join(str(d) for d in pretrained_dirs())
            raise FileNotFoundError(f"model {name!r}: file {entry.filename!r} not found in {searched}")
        return path
    native = latentlab_home() / "models" / entry.filename
    if native.is_file():
        return native
    return _download_and_convert(entry.url, native, sha256=entry.sha256, size=entry.size,
                                 networks=entry.networks, progress=progress, label=name)  # fmt: skip


def fetch_url(url: str, progress: bool = True) -> Path:
    """A network given by URL (e.g. NVIDIA's ``.pkl`` links), downloaded and converted once into the cache.

    There is no checksum to verify against; the hash of the download is recorded in the converted file.
    """
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    stem = Path(urllib.request.url2pathname(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])).stem or "model"
    native = latentlab_home() / "models" / f"url-{key}-{stem}.safetensors"
    if native.is_file():
        return native
    return _download_and_convert(url, native, networks=None, progress=progress, label=url)


def _download_and_convert(
    url: str,
    native: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    networks: tuple[str, ...] | None,
    progress: bool,
    label: str,
) -> Path:
    downloads = latentlab_home() / "downloads"
    suffix = Path(url.split("?")[0]).suffix or ".pkl"
    raw = downloads / f"{native.stem}{suffix}"
    digest = download(url, raw, sha256=sha256, size=size, progress=progress)
    try:
        ck = load_any(raw, networks=networks, sha256=digest)  # hashed while downloading
        ck.meta["source"].update(url=url, checksum_verified=sha256 is not None)
        save_checkpoint(native, G_ema=ck.G_ema, G=ck.G, D=ck.D, meta=ck.meta)
    finally:
        raw.unlink(missing_ok=True)
    if sha256 is None:
        warnings.warn(f"{label}: no published checksum to verify; the download's SHA-256 {digest} is recorded "
                      f"in {native}", stacklevel=3)  # fmt: skip
    return native


def load(name: str, device: str = "auto", models: dict[str, PretrainedModel] | None = None,
         progress: bool = True) -> Generator:
    """The generator of registry entry ``name`` (downloaded and converted once), ready to render.

    Example: ``G = latentlab.pretrained.load("stylegan2-ffhq-1024")``.
    """
    return load_generator_file(fetch(name, models, progress=progress), device=device)


def load_generator(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "auto",
    network: str = "auto",
) -> Generator:
    """A ready generator: eval mode, gradients off, ``w_avg`` present, on ``device``.

    Args:
        name_or_path: a latentlab ``.safetensors`` checkpoint, an NVIDIA ``.pkl``, a rosinality ``.pt``
            (converted on the fly, nothing in them is executed), a registry name (downloaded and converted once
            if it is a remote model), an ``http(s)://`` URL, or a tuned generator from ``latentlab tune``
            (its base model is loaded by the name or path it records and must have the recorded fingerprint).
        device: ``"auto"`` (cuda, mps, cpu), or a device.
        network: ``"G_ema"``, ``"G"``, or ``"auto"`` (G_ema when present, else G).
    Returns:
        A :class:`latentlab.nn.Generator`.
    Raises:
        ValueError: an unknown ``network``, or an unknown or unavailable ``device``.
        FileNotFoundError: neither a file nor a known name (the message lists the known names).
        CheckpointError: the file cannot be read as a generator checkpoint.
    """
    from .io.tuned import apply_tuned, base_reference, is_tuned, read_tuned

    check_generator_choice(network)
    dev = resolve_device(device)  # a bad device fails before anything is downloaded
    path = resolve(name_or_path)
    if is_tuned(path):  # pivotal tuning's compact file: the base model plus the tuned synthesis tensors
        loaded = read_tuned(path)
        base = load_generator(base_reference(path, loaded[0]), device=dev, network=network)
        return apply_tuned(base, path, loaded)
    return load_generator_file(path, device=dev, network=network)


def resolve(name_or_path: str | os.PathLike, models: dict[str, PretrainedModel] | None = None) -> Path:
    """A local checkpoint path for an existing path, a registry name, or an ``http(s)://`` URL.

    Remote names and URLs are downloaded and converted on first use (see :func:`fetch`).

    Raises:
        FileNotFoundError: neither an existing file nor a known name (the message lists the known names),
            or a known embedded name whose file is missing.
    """
    text = path_text(name_or_path, "the network")
    if text.startswith(("http://", "https://")):
        return fetch_url(text)
    p = Path(name_or_path)
    if p.is_file():
        return p
    refuse_directory(p)
    models = MODELS if models is None else models
    if text not in models:
        if "/" in text or os.sep in text or p.suffix in _CHECKPOINT_SUFFIXES or os.path.lexists(text):
            raise FileNotFoundError(missing_message(text))
        known = ", ".join(sorted(models)) or "none registered yet"
        raise FileNotFoundError(f"{text!r} is neither a file nor a known model name (known models: {known})")
    return fetch(text, models)


# Embedded attribute/factor classifiers, by name -> file in pretrained/.
CLASSIFIERS: dict[str, str] = {"synthfaces-64": "synthfaces-64-classifier.safetensors"}


def classifier_path(name_or_path: str | os.PathLike = "synthfaces-64") -> Path:
    """The file of an embedded classifier's name (``CLASSIFIERS``), or ``name_or_path`` itself when it is a file.

    Raises:
        FileNotFoundError: an unknown name, or a known one whose file is not in any ``pretrained/`` folder.
    """
    text = str(name_or_path)
    if Path(text).is_file():
        return Path(text)
    if text not in CLASSIFIERS:
        raise FileNotFoundError(f"{text!r} is neither a classifier file nor a known classifier "
                                f"(known: {', '.join(sorted(CLASSIFIERS))})")  # fmt: skip
    for d in pretrained_dirs():
        path = d / CLASSIFIERS[text]
        if path.is_file():
            return path
    raise FileNotFoundError(f"the embedded classifier {text!r} ({CLASSIFIERS[text]}) is in none of "
                            f"{', '.join(str(d) for d in pretrained_dirs())}; train one with "
                            "`latentlab classifier train`")  # fmt: skip


# Embedded encoders (latentlab encoder train), by the model name they belong to -> file in pretrained/.
ENCODERS: dict[str, str] = {"synthfaces-64": "synthfaces-64-encoder.safetensors"}


def encoder_path(network: str | os.PathLike, encoder: str | os.PathLike | None = None) -> Path:
    """The encoder file to use for ``network``: ``encoder`` when given, else the embedded one of a registry model
    (``ENCODERS``; for a tuned file, its base's).

    Raises:
        FileNotFoundError: ``encoder`` is not a file, or ``network`` has no embedded encoder (the message says how to
            train one).
    """
    if encoder is not None:
        path = Path(encoder)
        if not path.is_file():
            raise FileNotFoundError(f"no such encoder file: {str(encoder)!r}")
        return path
    from .io.tuned import base_reference, is_tuned

    text = str(network)
    if text not in ENCODERS and Path(text).is_file() and is_tuned(Path(text)):
        text = str(base_reference(Path(text)))
    if text in ENCODERS:
        for d in pretrained_dirs():
            if (d / ENCODERS[text]).is_file():
                return d / ENCODERS[text]
    raise FileNotFoundError(f"{network} has no embedded encoder (models with one: {', '.join(sorted(ENCODERS))}); "
                            f"train one with `latentlab encoder train --network {network} --out enc.safetensors` "
                            f"and pass --encoder enc.safetensors")  # fmt: skip


def alignment_of(name_or_path: str | os.PathLike) -> str:
    """The face framing a model expects (a key of :data:`latentlab.faces.TEMPLATES`): the registry's entry for
    a name, the base model's for a tuned file, else ``"ffhq"``."""
    from .io.tuned import base_reference, is_tuned

    text = str(name_or_path)
    if text in MODELS:
        return MODELS[text].alignment
    path = Path(text)
    if path.is_file() and is_tuned(path):
        base = base_reference(path)
        if str(base) != text:
            return alignment_of(base)
    return "ffhq"


def available_locally(name_or_path: str) -> bool:
    """True when ``name_or_path`` needs no network access: an existing file, an embedded model that is present,
    or a remote registry model already in the cache. URLs are never local."""
    if not isinstance(name_or_path, str) or not name_or_path or name_or_path.startswith(("http://", "https://")):
        return False
    entry = MODELS.get(name_or_path)
    if entry is None:
        return Path(name_or_path).is_file()
    path = cached_path(entry)
    return path is not None and path.is_file()


def default_model() -> str | None:
    """``DEFAULT_MODEL`` when its embedded file is in a ``pretrained/`` folder, else None."""
    entry = MODELS.get(DEFAULT_MODEL)
    return DEFAULT_MODEL if entry is not None and cached_path(entry) is not None else None


# Fitted directions of embedded models: pretrained/directions/<model>/<name>.npy + .json.
DIRECTIONS_DIR = "directions"


def list_directions(model: str | None = None) -> list[str]:
    """Names (``"model/attribute"``) of the shipped directions, of ``model`` only when given; sorted."""
    names = set()
    for d in pretrained_dirs():
        root = d / DIRECTIONS_DIR
        if root.is_dir():
            names |= {f"{p.parent.name}/{p.stem}" for p in root.glob("*/*.json")}
    return sorted(n for n in names if model is None or n.split("/")[0] == model)


def direction_path(name_or_path: str | os.PathLike, model: str | None = None) -> Path:
    """The ``.npy`` of a direction given by name (``"synthfaces-64/smile"``, or ``"smile"`` with ``model=``) or file.

    Args:
        name_or_path: a shipped direction's name, or a direction file (``.npy`` with its ``.json``, or a bare
            InterFaceGAN boundary ``.npy``; the ``.json`` or no suffix names the same file).
        model: the model whose shipped directions a bare attribute name refers to.
    Raises:
        FileNotFoundError: neither a file nor a shipped name (the message lists the shipped ones).
    """
    text = str(name_or_path)
    p = Path(text)
    is_file_name = p.suffix in (".npy", ".json")
    npy = p.with_suffix(".npy") if is_file_name else Path(text + ".npy")
    if npy.is_file():
        return npy
    if is_file_name:
        raise FileNotFoundError(f"no such direction file: {str(npy)!r}")
    name = text if "/" in text or model is None else f"{model}/{text}"
    for d in pretrained_dirs():
        path = d / DIRECTIONS_DIR / f"{name}.npy"
        if path.is_file():
            return path
    scope = f" for {model}" if model and "/" not in text else ""
    shipped = ", ".join(list_directions(model if "/" not in text else None)) or "none"
    raise FileNotFoundError(f"{text!r} is neither a direction file nor a shipped direction{scope} (shipped: {shipped})")
