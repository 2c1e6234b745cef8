"""Encoders: images to W+ codes in one forward pass (pSp, Richardson et al. 2021; e4e, Tov et al. 2021).

latentlab's encoder keeps pSp's idea and e4e's output form on a backbone sized for the generator:

* **a residual pyramid** (residual blocks like the discriminator's, without its blur and minibatch-std): the
  image, at G's resolution up to 256 (pSp's input size; larger models' images are resized), is brought to
  ``channels(R)`` by a 1x1 conv, then halved by residual blocks down to 4x4, keeping the feature map of every
  resolution ``f_r``;
* **map to style by resolution**: W+ row ``i`` drives the generator's layers at ``r_i = 2**(i//2 + 2)``
  (coarse rows pose and shape, fine rows colour); as in pSp's feature pyramid, it is read from the encoder's
  features of the same resolution (``f_{min(r_i, R/2)}``), pooled to 4x4 and mapped by a linear head;
* **e4e's form** ``ws[:, 0] = w_avg + base``, ``ws[:, i] = ws[:, 0] + delta_i``: ``base`` comes from the
  4x4 features through a two-layer head; a W projection starts from ``ws[:, 0]``, a W+ projection from all
  rows. ``active`` (e4e's progressive training) zeroes the deltas of rows ``>= active``;
* **iterative encoders** (ReStyle, Alaluf et al. 2021, with ``EncoderConfig.iterations > 0``): the network reads
  the target beside a rendering (``2 C`` input channels) and :meth:`Encoder.invert` corrects its code that many
  times, ``ws <- ws + E(x, G(ws)) - E(G(ws), G(ws))``, starting from ``E(x, x)``. ReStyle adds ``E(x, G(ws))``
  alone; the difference of two passes is zero when the rendering equals the target, so a correction never
  moves a code that is already exact. It also lets a single-pass encoder start one
  (:meth:`~latentlab.projection.encoder_train.EncoderTrainer.warm_start`: the rendering's input weights start
  at zero, where the correction is the plain fixed-point step ``E(x) - E(G(ws))``).

Why not pSp's own backbone: its IR-SE50 ResNet (trained from ArcFace weights) costs ~24 GFLOP per 256-px
image and needs weights nothing here can download; for the 64-px embedded model this pyramid costs 0.23 GMAC
per image (8.2 M parameters; its speed: ``benchmarks/bench_encoder.py --mode speed``).

Encoder files (:func:`save_encoder`, :func:`load_encoder`) are ``.safetensors`` with ``format =
"latentlab-encoder"`` metadata holding the config and the generator they belong to: its name or path and its
*fingerprint* (:func:`~latentlab.nn.generator.model_fingerprint`). :meth:`Encoder.check_generator` refuses
another generator.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from .._version import __version__
from ..io.atomic import atomic_path
from ..io.checkpoint import CheckpointError
from ..nn.generator import Generator, accepts_fingerprint, model_fingerprint
from ..nn.synthesis import activation_dtype
from ..utils import short_error
from ..validate import InvalidInput, image_batch, number_fields, string

FORMAT = "latentlab-encoder"
FORMAT_VERSION = 1
MAX_INPUT = 256  # pSp's input side; larger generators' images are resized to it


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder's shape; :func:`encoder_config` derives it from a generator."""

    resolution: int  # the input side (G's resolution, at most 256)
    img_channels: int
    num_ws: int
    w_dim: int
    g_resolution: int  # the generator's resolution (its images are resized to ``resolution``)
    channel_base: int = 2048  # channels at resolution r: min(channel_max, channel_base // r)
    channel_max: int = 256
    iterations: int = 0  # ReStyle's corrections after the first pass by default; 0 = a single-pass encoder

    @property
    def iterative(self) -> bool:
        """Whether the encoder reads a rendering beside the target (ReStyle)."""
        return self.iterations > 0

    def __post_init__(self) -> None:
        from ..validate import Bound

        number_fields(self, {
            "resolution": Bound(8, MAX_INPUT, integer=True), "img_channels": Bound(1, 4, integer=True),
            "num_ws": Bound(2, 64, integer=True), "w_dim": Bound(1, 4096, integer=True),
            "g_resolution": Bound(8, 65536, integer=True), "channel_base": Bound(16, 2**20, integer=True),
            "channel_max": Bound(4, 4096, integer=True), "iterations": Bound(0, 100, integer=True),
        }, "EncoderConfig")  # fmt: skip
        for name in ("resolution", "g_resolution"):
            r = getattr(self, name)
            if r & (r - 1):
                raise InvalidInput(f"EncoderConfig: {name} must be a power of two, got {r}")

    def channels(self, r: int) -> int:
        """Feature channels at resolution ``r``."""
        return max(8, min(self.channel_max, self.channel_base // r))

    def row_resolution(self, i: int) -> int:
        """The feature resolution W+ row ``i`` is read from: ``min(2**(i//2 + 2), resolution / 2)``."""
        return min(2 ** (i // 2 + 2), self.resolution // 2)


def encoder_config(G: Generator, **options: Any) -> EncoderConfig:
    """The :class:`EncoderConfig` for generator ``G`` (``options``: ``channel_base``, ``channel_max``)."""
    c = G.config
    return EncoderConfig(resolution=min(c.resolution, MAX_INPUT), img_channels=c.img_channels, num_ws=G.num_ws,
                         w_dim=c.w_dim, g_resolution=c.resolution, **options)  # fmt: skip


class _Down(nn.Module):
    """A residual block halving the resolution: ``(conv3x3 -> lrelu -> conv3x3/2 -> lrelu + avgpool-1x1) / sqrt2``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=2)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.conv1(F.leaky_relu(self.conv0(x), 0.2)), 0.2)
        return (y + self.skip(F.avg_pool2d(x, 2))) * (1 / math.sqrt(2))


class Encoder(nn.Module):
    """Images ``[N, C, R, R]`` in [-1, 1] (R = the generator's resolution) -> W+ codes ``[N, num_ws, w_dim]``.

    Attributes:
        config: :class:`EncoderConfig`.
        w_avg: ``[w_dim]``, the generator's mean W the codes are offsets from (a buffer, saved with the weights).
        generator: ``{"network": name or path, "fingerprint": ...}`` of the generator it was made for.
    """

    def __init__(self, config: EncoderConfig, w_avg: Tensor | None = None, generator: dict[str, str] | None = None):
        super().__init__()
        self.config = c = config
        self.generator = dict(generator or {})
        self.meta: dict[str, Any] = {}  # what the file recorded (training settings and results)
        self.register_buffer("w_avg", torch.zeros([c.w_dim]) if w_avg is None else w_avg.detach().float().clone())
        r = c.resolution
        self.fromrgb = nn.Conv2d(c.img_channels * (2 if c.iterative else 1), c.channels(r), 1)
        self.blocks = nn.ModuleDict()
        while r > 4:
            self.blocks[str(r // 2)] = _Down(c.channels(r), c.channels(r // 2))
            r //= 2
        self.base = nn.Sequential(nn.Flatten(), nn.Linear(16 * c.channels(4), c.w_dim), nn.LeakyReLU(0.2),
                                  nn.Linear(c.w_dim, c.w_dim))  # fmt: skip
        self.deltas = nn.ModuleList(
            nn.Linear(16 * c.channels(c.row_resolution(i)), c.w_dim) for i in range(1, c.num_ws)
        )  # fmt: skip
        for head in self.deltas:  # deltas start near zero: a new encoder begins as a W encoder (e4e)
            nn.init.normal_(head.weight, std=0.1 / math.sqrt(head.in_features))
            nn.init.zeros_(head.bias)

    def features(self, images: Tensor) -> dict[int, Tensor]:
        """``{r: [N, channels(r), r, r]}`` for every resolution from ``resolution / 2`` down to 4 (``images``: the
        network's input, ``[N, 2 C, R, R]`` (target, rendering) for an iterative encoder)."""
        c = self.config
        x = images
        if x.shape[-1] != c.resolution:
            x = F.interpolate(x, size=(c.resolution, c.resolution), mode="area")
        if self.fromrgb.weight.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
            x = x.contiguous(memory_format=torch.channels_last)  # see load_encoder
        x = F.leaky_relu(self.fromrgb(x), 0.2)
        out = {}
        for r, block in self.blocks.items():
            x = block(x)
            out[int(r)] = x
        return out

    def forward(self, images: Tensor, active: int | None = None, parts: bool = False, check: bool = True,
                dtype: torch.dtype | str | None = None, rendering: Tensor | None = None,
                ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
        """Encode ``images`` ``[N, C, R, R]`` in [-1, 1] at the generator's resolution: one pass (an iterative
        encoder's first, ``E(x, x)``; :meth:`invert` adds its corrections).

        Args:
            images: the images (checked: channels, resolution, finite values).
            active: rows with a delta (e4e's progressive training): rows ``>= active`` equal row 0;
                None = all.
            parts: also return the deltas.
            check: check ``images`` (shape, finite values in range); training passes False for its own samples.
            dtype: the convolutions' and linear layers' type under autocast: None / ``"fp32"`` (default),
                ``"bf16"`` (CPUs with AVX-512 BF16 or AMX, CUDA) or ``"fp16"`` (CUDA); the weights, ``w_avg`` and
                the returned codes stay float32.
            rendering: an iterative encoder's second input ``[N, C, R, R]`` (a rendering of the current code);
                None = ``images`` itself (the first pass). A single-pass encoder refuses one.
        Returns:
            ``ws [N, num_ws, w_dim]`` float32; with ``parts``, ``(ws, deltas [N, num_ws, w_dim])`` (row 0 of
            deltas is 0).
        """
        c = self.config
        if check:
            image_batch(images, "images", channels=c.img_channels, resolution=c.g_resolution)
            if rendering is not None:
                image_batch(rendering, "rendering", channels=c.img_channels, resolution=c.g_resolution)
                if rendering.shape[0] != images.shape[0]:
                    raise InvalidInput(f"{rendering.shape[0]} renderings for {images.shape[0]} images")
        if rendering is not None and not c.iterative:
            raise InvalidInput("this encoder is a single-pass one; it reads no rendering (iterations=0)")
        if c.iterative:
            images = torch.cat([images, images if rendering is None else rendering], dim=1)
        dtype = activation_dtype(dtype, images.device)
        if dtype != torch.float32:
            with torch.autocast(images.device.type, dtype=dtype):
                ws, deltas = self._encode(images, active)
            ws, deltas = ws.float(), deltas.float()
        else:
            ws, deltas = self._encode(images, active)
        return (ws, deltas) if parts else ws

    def correction(self, images: Tensor, rendering: Tensor, active: int | None = None, check: bool = True,
                   dtype: torch.dtype | str | None = None) -> Tensor:
        """The step ``E(x, y) - E(y, y)`` ``[N, num_ws, w_dim]`` for targets ``images`` ``x`` and renderings ``y`` of
        the current codes (both ``[N, C, R, R]`` in [-1, 1]); add it to the codes. A single-pass encoder's is the
        fixed-point step ``E(x) - E(y)``: it moves a code until the encoder reads its rendering as it reads the
        target."""
        pair = torch.cat([rendering, rendering]) if self.config.iterative else None
        both = self(torch.cat([images, rendering]), active=active, check=check, dtype=dtype, rendering=pair)
        return both[: len(images)] - both[len(images) :]

    def invert(self, images: Tensor, G: nn.Module, iterations: int | None = None, check: bool = True,
               dtype: torch.dtype | str | None = None, trace: list | None = None, space: str = "w+") -> Tensor:
        """W+ codes ``[N, num_ws, w_dim]`` float32 for ``images`` ``[N, C, R, R]`` in [-1, 1]: the first pass, then
        ``iterations`` :meth:`correction` steps (None = ``config.iterations``, 0 for a single-pass encoder; with 0
        no ``G`` is needed).

        Args:
            G: the generator (its synthesis renders each code with the constant noise, in ``dtype``).
            trace: when a list, receives the codes after each pass (``iterations + 1`` tensors).
            space: ``"w+"``; or ``"w"``: every pass keeps one code per image, row 0 of the first pass and of each
                correction, broadcast to all rows (what a W projection starts from).
        """
        string(space, "space", where="Encoder.invert", choices=("w", "w+"))
        c = self.config
        n = c.iterations if iterations is None else int(iterations)
        if n < 0:
            raise InvalidInput(f"iterations must be >= 0, got {n}")
        if n and G is None:
            raise InvalidInput(f"{n} encoder iterations need the generator to render each code")
        ws = self(images, check=check, dtype=dtype)
        if space == "w":
            ws = ws[:, :1].expand_as(ws)
        if trace is not None:
            trace.append(ws)
        for _ in range(n):
            rendering = G.synthesis(ws, noise_mode="const", dtype=dtype)
            step = self.correction(images, rendering.float(), check=False, dtype=dtype)
            ws = ws + (step[:, :1] if space == "w" else step)
            if trace is not None:
                trace.append(ws)
        return ws

    def _encode(self, images: Tensor, active: int | None) -> tuple[Tensor, Tensor]:
        c = self.config
        feats = self.features(images)
        base = self.w_avg + self.base(feats[4])
        rows = [torch.zeros_like(base)]
        for i, head in enumerate(self.deltas, start=1):
            if active is not None and i >= active:
                rows.append(torch.zeros_like(base))
                continue
            f = feats[c.row_resolution(i)]
            if f.shape[-1] > 4:
                f = F.adaptive_avg_pool2d(f, 4)
            rows.append(head(f.flatten(1)))
        deltas = torch.stack(rows, dim=1)
        return base[:, None] + deltas, deltas

    def check_generator(self, G: Generator, name: str | None = None) -> None:
        """Refuse a generator other than the one this encoder was trained for (by fingerprint or shape)."""
        c = self.config
        if (G.num_ws, G.w_dim, G.img_resolution, G.img_channels) != (c.num_ws, c.w_dim, c.g_resolution,
                                                                      c.img_channels):  # fmt: skip
            raise InvalidInput(
                f"this encoder makes {c.num_ws}x{c.w_dim} W+ codes for {c.g_resolution}-px {c.img_channels}-channel "
                f"images; {name or 'the generator'} has {G.num_ws}x{G.w_dim} codes and {G.img_resolution}-px "
                f"{G.img_channels}-channel images")  # fmt: skip
        want = self.generator.get("fingerprint")
        if want is None:
            return
        if not accepts_fingerprint(G, want):
            raise InvalidInput(
                f"this encoder was trained for {self.generator.get('network') or '?'} (fingerprint {want}), not "
                f"for {name or 'this generator'} (fingerprint {model_fingerprint(G)}); train one for it with "
                f"`latentlab encoder train --network ...`")  # fmt: skip


def new_encoder(G: Generator, network: str = "", seed: int = 0, **options: Any) -> Encoder:
    """A freshly initialised encoder for ``G`` (seeded), recording ``G``'s fingerprint and ``network`` (its name)."""
    config = encoder_config(G, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        enc = Encoder(config, G.w_avg.detach().cpu(), {"network": str(network), "fingerprint": model_fingerprint(G)})
    return enc.to(G.w_avg.device)


def save_encoder(path: str | os.PathLike, encoder: Encoder, meta: dict[str, Any] | None = None) -> Path:
    """Write ``encoder`` to a ``.safetensors`` file atomically, with its config, generator and ``meta``."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InvalidInput(f"encoder files are .safetensors files, got {str(path)!r}")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in encoder.state_dict().items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "latentlab_version": __version__,
                "config": json.dumps(asdict(encoder.config)), "generator": json.dumps(encoder.generator),
                "meta": json.dumps(meta or {})}  # fmt: skip
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_encoder_meta(path: str | os.PathLike) -> dict[str, Any]:
    """An encoder file's metadata: ``{"config", "generator", "meta"}`` as objects (no tensors read)."""
    return _read(Path(path), tensors=False)[0]


def _read(path: Path, tensors: bool = True) -> tuple[dict[str, Any], dict[str, Tensor]]:
    if not path.is_file():
        raise FileNotFoundError(f"no such encoder file: {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            if md.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a latentlab encoder file (format {md.get('format')!r}; "
                                      f"train one with `latentlab encoder train`)")  # fmt: skip
            if md.get("format_version") != str(FORMAT_VERSION):
                raise CheckpointError(f"{path}: encoder format version {md.get('format_version')!r} is not "
                                      f"supported (this latentlab reads version {FORMAT_VERSION})")  # fmt: skip
            info = {k: json.loads(md.get(k, "")) for k in ("config", "generator", "meta")}
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable encoder file ({short_error(e)})") from None
    for k in ("config", "generator", "meta"):
        if not isinstance(info[k], dict):
            raise CheckpointError(f"{path}: the encoder's {k} metadata is not a JSON object")
    return info, data


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu", G: Generator | None = None,
                 name: str | None = None) -> Encoder:  # fmt: skip
    """Rebuild an encoder from its file (strictly: every tensor present, none extra, shapes equal).

    On a CPU its convolutions run channels-last (oneDNN's faster layout for them: 1.5x at batch 64 on the
    embedded model's encoder, ``benchmarks/bench_encoder.py``); the codes are the same up to float rounding.

    Args:
        path: a file from :func:`save_encoder` (``latentlab encoder train``).
        device: where to put it.
        G: when given, the encoder must belong to it (:meth:`Encoder.check_generator`).
        name: ``G``'s name, for that message.
    Raises:
        FileNotFoundError, CheckpointError (a corrupt or foreign file), InvalidInput (another generator's encoder).
    """
    from ..io.checkpoint import assign_strict

    path = Path(path)
    info, tensors = _read(path)
    try:
        config = EncoderConfig(**info["config"])
    except (TypeError, InvalidInput) as e:
        raise CheckpointError(f"{path}: bad encoder config ({short_error(e)})") from None
    enc = Encoder(config, generator={str(k): str(v) for k, v in info["generator"].items()})
    assign_strict(enc, tensors.keys(), tensors.__getitem__, str(path), "encoder")
    enc.meta = info["meta"]
    enc.eval().requires_grad_(False)
    if G is not None:
        enc.check_generator(G, name)
    enc = enc.to(device)
    if torch.device(device).type == "cpu":
        enc = enc.to(memory_format=torch.channels_last)
    return enc


@torch.no_grad()
def encode(encoder: Encoder, images: Tensor, batch_size: int = 64, precision: str = "fp32", G: nn.Module | None = None,
           iterations: int | None = None) -> Tensor:  # fmt: skip
    """W+ codes ``[N, num_ws, w_dim]`` float32 (on the CPU) for ``images`` ``[N, C, R, R]`` in [-1, 1], in batches;
    ``precision`` as :meth:`Encoder.forward`'s ``dtype``; ``iterations`` corrections follow the first pass
    (:meth:`Encoder.invert`; None = the encoder's default, 0 for a single-pass one), rendered by ``G``.

    Raises:
        InvalidInput: iterations without ``G``.
    """
    device = encoder.w_avg.device
    out = [encoder.invert(images[i : i + batch_size].to(device, torch.float32), G, iterations,
                          dtype=precision).cpu()
           for i in range(0, len(images), batch_size)]  # fmt: skip
    return torch.cat(out) if out else torch.zeros([0, encoder.config.num_ws, encoder.config.w_dim])
