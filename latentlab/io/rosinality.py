"""rosinality/stylegan2-pytorch checkpoints (``.pt``): read safely, and write for the encoder tools.

Files read (always with ``torch.load(weights_only=True)``; ``argparse.Namespace`` is the one extra class
allowed, because ``train.py`` stores its arguments as one):

* ``train.py`` checkpoints ``{"g", "d", "g_ema", "g_optim", "d_optim", "args"}``;
* ``convert_weight.py`` output ``{"g_ema", "latent_avg"}`` (optionally with ``"g"``, ``"d"``);
* pSp / e4e / ReStyle checkpoints ``{"state_dict": {"decoder.*", "encoder.*"}, "latent_avg", "opts"}``
  (the decoder is the generator);
* a bare generator or discriminator state dict (also behind a ``module.`` DDP prefix).

The architecture maps one-to-one onto NVIDIA's (which latentlab follows). Both PyTorch ports run the
upsampling convs as transposed convolutions with the same (unflipped) kernels -- each flipped TF's when
converting -- so weights copy as they are. What differs: rosinality keeps noise strengths and biases as
``[1]`` / ``[1, C, 1, 1]`` tensors, a leading batch axis on conv weights and the constant input, blur
kernels as buffers, and no ``w_avg`` inside the network (``latent_avg`` travels beside it, or is
re-estimated). The mapping's learning-rate multiplier (``lr_mlp``, default 0.01) is a constructor
argument that no file records.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..nn.config import DiscriminatorConfig, GeneratorConfig
from ..nn.discriminator import Discriminator
from ..nn.generator import Generator
from ..nn.layers import setup_filter
from .atomic import atomic_path
from .checkpoint import CheckpointError
from .nvidia import UnsafePickleError, UnsupportedModelError

LR_MLP = 0.01  # rosinality's Generator(lr_mlp=0.01) default; not stored in any file
_BLUR = (1, 3, 3, 1)  # Generator(blur_kernel=[1, 3, 3, 1]) default
W_AVG_SAMPLES = 10_000  # z samples used to estimate w_avg when the file has no latent_avg


def rosinality_channels(resolution: int, channel_multiplier: int = 2) -> dict[int, int]:
    """The channel counts rosinality's Generator and Discriminator hard-code, for resolutions 4..``resolution``."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {r: c * (channel_multiplier if r >= 64 else 1) for r, c in table.items() if r <= resolution}


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with ``argparse.Namespace`` allowed, and one-line errors.

    Raises:
        UnsafePickleError: the file names a global outside torch's weights-only allow-list (not executed).
        CheckpointError: truncated or corrupt file.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):  # torch's zip reader skips the CRCs; check them so bit rot is not loaded
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(f"{path}: truncated or corrupt torch file ({e})") from None
        if bad is not None:
            raise CheckpointError(f"{path}: corrupt torch file (CRC mismatch in {bad})")
    safe = getattr(torch.serialization, "safe_globals", None)
    ctx = safe([argparse.Namespace]) if safe is not None else contextlib.nullcontext()
    try:
        with ctx:
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"(?:Unsupported global: GLOBAL|Unsupported operand)\s*([\w.]+)", str(e))
        what = f"global {m.group(1)}" if m else "an object outside the weights-only allow-list"
        raise UnsafePickleError(
            f"{path}: refused to load {what} (read with weights_only=True; nothing was run)"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, IndexError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: truncated or corrupt torch file ({text})") from None


@dataclass
class RosinalityStates:
    """The state dicts found in a rosinality-style file, keyed ``g_ema``, ``g``, ``d``."""

    states: dict[str, dict[str, torch.Tensor]]
    latent_avg: torch.Tensor | None = None
    layout: str = ""  # which file layout was recognised
    extras: dict[str, Any] = field(default_factory=dict)


def _is_state_dict(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(k, str) and torch.is_tensor(v) for k, v in x.items())


def _strip_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def find_states(obj: Any, where: str) -> RosinalityStates:
    """Recognise the layouts listed in the module docstring."""
    if _is_state_dict(obj) and all(k.startswith("module.") for k in obj):
        obj = _strip_prefix(obj, "module.")
    if isinstance(obj, dict) and any(_is_state_dict(obj.get(k)) for k in ("g_ema", "g", "d")):
        states = {k: obj[k] for k in ("g_ema", "g", "d") if _is_state_dict(obj.get(k))}
        layout = "train.py checkpoint" if "args" in obj or "g_optim" in obj else "convert_weight.py output"
        extras = {}
        if isinstance(obj.get("args"), argparse.Namespace):
            extras["args"] = {k: v for k, v in vars(obj["args"]).items() if isinstance(v, (int, float, str, bool))}
        return RosinalityStates(states, obj.get("latent_avg"), layout, extras)
    if isinstance(obj, dict) and _is_state_dict(obj.get("state_dict")):
        dec = _strip_prefix(obj["state_dict"], "decoder.")
        if not dec:
            raise UnsupportedModelError(f"{where}: a state_dict without decoder.* tensors (not pSp/e4e/ReStyle)")
        return RosinalityStates({"g_ema": dec}, obj.get("latent_avg"), "pSp/e4e/ReStyle checkpoint (decoder)")
    if _is_state_dict(obj):
        if "input.input" in obj:
            return RosinalityStates({"g_ema": obj}, None, "generator state dict")
        if "final_linear.0.weight" in obj:
            return RosinalityStates({"d": obj}, None, "discriminator state dict")
    keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
    raise UnsupportedModelError(f"{where}: not a rosinality StyleGAN2 checkpoint (top level: {keys})")


def _check_blur(sd: dict[str, torch.Tensor], where: str) -> None:
    expected = setup_filter(_BLUR)
    for k, t in sd.items():
        if k.endswith(".kernel"):
            t = t.float()
            if t.shape != expected.shape or not torch.allclose(t / t.sum(), expected, atol=1e-6):
                raise UnsupportedModelError(f"{where}: {k} is not the [1, 3, 3, 1] blur kernel; unsupported")


def _channel_rule(channels: dict[int, int], where: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` reproducing ``channels`` with ``min(base // r, max)``."""
    cmax = max(channels.values())
    top = max(channels)
    candidates = [c * r for r, c in channels.items() if c < cmax] + [cmax * top]
    for base in sorted(candidates):
        if all(min(base // r, cmax) == c for r, c in channels.items()):
            return base, cmax
    raise UnsupportedModelError(f"{where}: channel counts {channels} follow no min(base // r, max) rule")


def _need(sd: dict[str, torch.Tensor], key: str, where: str) -> torch.Tensor:
    if key not in sd:
        raise UnsupportedModelError(f"{where}: missing tensor {key!r} (not a rosinality StyleGAN2 network)")
    return sd[key]


def generator_from_state(
    sd: dict[str, torch.Tensor], where: str, lr_mlp: float = LR_MLP
) -> tuple[GeneratorConfig, dict[str, torch.Tensor], list[str]]:
    """Config, latentlab-named tensors (without ``mapping.w_avg``) and notes for a rosinality generator state dict.

    Early rosinality versions did not store the constant noise maps (``noises.noise_i``); they are then
    drawn from a seeded normal distribution (seed 0) and a note says so.
    """
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    if any(k.startswith(("dwt", "iwt")) or ".iwt." in k or ".dwt." in k for k in sd):
        raise UnsupportedModelError(f"{where}: a SWAGAN (wavelet) generator; only StyleGAN2 is supported")
    const = _need(sd, "input.input", where)
    rgb_channels = _need(sd, "to_rgb1.conv.weight", where).shape[1]
    if rgb_channels != 3:
        raise UnsupportedModelError(f"{where}: ToRGB makes {rgb_channels} channels (SWAGAN?); expected 3")
    _check_blur(sd, where)
    n_mlp = sum(1 for k in sd if re.fullmatch(r"style\.\d+\.weight", k))
    if n_mlp == 0:
        raise UnsupportedModelError(f"{where}: no mapping layers style.N.weight")
    style_dim = sd["style.1.weight"].shape[1]
    n_up = sum(1 for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    resolution = 4 * 2**n_up
    out: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    noise_gen = torch.Generator().manual_seed(0)

    def noise_map(index: int, size: int) -> torch.Tensor:
        if f"noises.noise_{index}" in sd:
            return sd[f"noises.noise_{index}"][0, 0]
        if not notes:
            notes.append("the file stores no constant noise maps (noises.noise_i): drawn with seed 0")
        return torch.randn([size, size], generator=noise_gen)
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = _need(sd, f"style.{i + 1}.weight", where)
        out[f"mapping.fc{i}.bias"] = _need(sd, f"style.{i + 1}.bias", where)
    out["synthesis.b4.const"] = const[0]

    def styled(src: str, dst: str, noise: int, res: int) -> None:
        out[f"{dst}.weight"] = _need(sd, f"{src}.conv.weight", where)[0]
        out[f"{dst}.affine.weight"] = _need(sd, f"{src}.conv.modulation.weight", where)
        out[f"{dst}.affine.bias"] = _need(sd, f"{src}.conv.modulation.bias", where)
        out[f"{dst}.noise_strength"] = _need(sd, f"{src}.noise.weight", where).reshape([])
        out[f"{dst}.bias"] = _need(sd, f"{src}.activate.bias", where)
        out[f"{dst}.noise_const"] = noise_map(noise, res)

    def torgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = _need(sd, f"{src}.conv.weight", where)[0]
        out[f"{dst}.affine.weight"] = _need(sd, f"{src}.conv.modulation.weight", where)
        out[f"{dst}.affine.bias"] = _need(sd, f"{src}.conv.modulation.bias", where)
        out[f"{dst}.bias"] = _need(sd, f"{src}.bias", where).reshape(-1)

    styled("conv1", "synthesis.b4.conv1", 0, 4)
    torgb("to_rgb1", "synthesis.b4.torgb")
    channels = {4: const.shape[1]}
    for k in range(n_up):
        res = 8 * 2**k
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1, res)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2, res)
        torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        channels[res] = out[f"synthesis.b{res}.conv1.weight"].shape[0]
    base, cmax = _channel_rule(channels, where)
    try:
        config = GeneratorConfig(resolution=resolution, z_dim=style_dim, w_dim=style_dim, mapping_layers=n_mlp,
                                 mapping_lr_multiplier=lr_mlp, channel_base=base, channel_max=cmax,
                                 architecture="skip", resample_filter=_BLUR)  # fmt: skip
    except ValueError as e:
        raise UnsupportedModelError(f"{where}: {e}") from None
    return config, out, notes


def discriminator_from_state(
    sd: dict[str, torch.Tensor], where: str
) -> tuple[DiscriminatorConfig, dict[str, torch.Tensor]]:
    """Config and latentlab-named tensors of a rosinality discriminator state dict."""
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    _check_blur(sd, where)
    n_blocks = sum(1 for k in sd if re.fullmatch(r"convs\.\d+\.conv1\.0\.weight", k))
    resolution = 4 * 2**n_blocks
    out: dict[str, torch.Tensor] = {
        f"b{resolution}.fromrgb.weight": _need(sd, "convs.0.0.weight", where),
        f"b{resolution}.fromrgb.bias": _need(sd, "convs.0.1.bias", where),
    }
    channels = {}
    for j in range(1, n_blocks + 1):
        res = resolution // 2 ** (j - 1)
        out[f"b{res}.conv0.weight"] = _need(sd, f"convs.{j}.conv1.0.weight", where)
        out[f"b{res}.conv0.bias"] = _need(sd, f"convs.{j}.conv1.1.bias", where)
        out[f"b{res}.conv1.weight"] = _need(sd, f"convs.{j}.conv2.1.weight", where)
        out[f"b{res}.conv1.bias"] = _need(sd, f"convs.{j}.conv2.2.bias", where)
        out[f"b{res}.skip.weight"] = _need(sd, f"convs.{j}.skip.1.weight", where)
        channels[res] = out[f"b{res}.conv0.weight"].shape[0]
    final = _need(sd, "final_conv.0.weight", where)
    channels[4] = final.shape[0]
    out["b4.conv.weight"] = final
    out["b4.conv.bias"] = _need(sd, "final_conv.1.bias", where)
    for i, name in enumerate(("fc", "out")):
        out[f"b4.{name}.weight"] = _need(sd, f"final_linear.{i}.weight", where)
        out[f"b4.{name}.bias"] = _need(sd, f"final_linear.{i}.bias", where)
    base, cmax = _channel_rule(channels, where)
    try:
        config = DiscriminatorConfig(resolution=resolution, channel_base=base, channel_max=cmax, architecture="resnet",
                                     mbstd_group_size=4, mbstd_num_channels=final.shape[1] - channels[4],
                                     resample_filter=_BLUR)  # fmt: skip
    except ValueError as e:
        raise UnsupportedModelError(f"{where}: {e}") from None
    return config, out


def estimate_w_avg(G: Generator, n: int = W_AVG_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Mean of ``G.mapping`` over ``n`` standard-normal z (seeded), ``[w_dim]``; for files without ``latent_avg``."""
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(G.config.w_dim, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n, 1000):
            z = torch.randn([min(1000, n - start), G.config.z_dim], generator=gen)
            total += G.mapping(z.to(G.mapping.w_avg.device), None, truncation_psi=1.0)[:, 0].double().sum(0).cpu()
    return (total / n).float()


# --- Export ---------------------------------------------------------------------------------------------


def export_problems(G: Generator | None, D: Discriminator | None) -> list[str]:
    """Reasons a rosinality ``Generator(size, style_dim, n_mlp, channel_multiplier)`` / ``Discriminator``
    would not reproduce these networks exactly (empty = exact)."""
    problems = []
    if G is not None:
        c = G.config
        problems += _common_problems("G", c, "skip")
        if c.z_dim != c.w_dim or (c.mapping_layer_features or c.w_dim) != c.w_dim:
            problems.append(f"z_dim={c.z_dim}, w_dim={c.w_dim}, mapping width must all equal style_dim")
        if not c.use_noise:
            problems.append("G has no noise inputs (rosinality always has them)")
        if c.mapping_lr_multiplier != LR_MLP:
            problems.append(f"mapping_lr_multiplier={c.mapping_lr_multiplier}: build rosinality's Generator with "
                            f"lr_mlp={c.mapping_lr_multiplier}")  # fmt: skip
    if D is not None:
        c = D.config
        problems += _common_problems("D", c, "resnet")
        if (c.mbstd_group_size, c.mbstd_num_channels) != (4, 1):
            problems.append(f"D minibatch-stddev {c.mbstd_group_size}/{c.mbstd_num_channels} (rosinality: 4/1)")
    return problems


def _common_problems(what: str, c: GeneratorConfig | DiscriminatorConfig, architecture: str) -> list[str]:
    problems = []
    if c.architecture != architecture:
        problems.append(f"{what} architecture {c.architecture!r} (rosinality has only {architecture!r})")
    if c.c_dim:
        problems.append(f"{what} is conditional (c_dim={c.c_dim}); rosinality is unconditional")
    if c.img_channels != 3:
        problems.append(f"{what} img_channels={c.img_channels} (rosinality is RGB only)")
    if c.conv_clamp is not None:
        problems.append(f"{what} conv_clamp={c.conv_clamp} (rosinality does not clamp)")
    if tuple(c.resample_filter) != _BLUR:
        problems.append(f"{what} resample_filter={list(c.resample_filter)} (rosinality's default is {list(_BLUR)})")
    return problems + _layout_problems(what, {r: c.channels(r) for r in _resolutions(c.resolution)}, c.resolution)


def _resolutions(resolution: int) -> list[int]:
    return [2**i for i in range(2, int(math.log2(resolution)) + 1)]


def channel_multiplier_for(channels: dict[int, int], resolution: int) -> int | None:
    """The ``channel_multiplier`` whose hard-coded table equals ``channels``, or None."""
    for cm in (1, 2, 4, 8):
        if rosinality_channels(resolution, cm) == channels:
            return cm
    return None


def _layout_problems(what: str, channels: dict[int, int], resolution: int) -> list[str]:
    if resolution > 1024:
        return [f"{what} resolution {resolution} > 1024 (rosinality's table stops at 1024)"]
    if channel_multiplier_for(channels, resolution) is None:
        return [f"{what} channels {channels} match no rosinality channel_multiplier (its table: "
                f"{rosinality_channels(resolution, 2)} for channel_multiplier=2)"]  # fmt: skip
    return []


def generator_state(G: Generator) -> dict[str, torch.Tensor]:
    """``G`` as a rosinality ``Generator`` state dict (buffers included, so ``load_state_dict`` is strict-clean)."""
    sd = {k: v.detach().cpu().float() for k, v in G.state_dict().items()}
    c = G.config
    blur4 = setup_filter(_BLUR) * 4  # rosinality keeps the upsampling gain (factor**2) in the kernel buffer
    out: dict[str, torch.Tensor] = {}
    for i in range(c.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def styled(src: str, dst: str, noise: int, up: bool = False) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        if up:
            out[f"{dst}.conv.blur.kernel"] = blur4.clone()
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        out[f"noises.noise_{noise}"] = sd[f"{src}.noise_const"][None, None]

    def torgb(src: str, dst: str, upsample: bool) -> None:
        if upsample:
            out[f"{dst}.upsample.kernel"] = blur4.clone()
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)

    styled("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1", upsample=False)
    for k, res in enumerate(_resolutions(c.resolution)[1:]):
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}", 2 * k + 1, up=True)
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}", upsample=True)
    return out


def discriminator_state(D: Discriminator) -> dict[str, torch.Tensor]:
    """``D`` as a rosinality ``Discriminator`` state dict (blur kernel buffers included)."""
    sd = {k: v.detach().cpu().float() for k, v in D.state_dict().items()}
    r = D.config.resolution
    blur = setup_filter(_BLUR)
    out = {"convs.0.0.weight": sd[f"b{r}.fromrgb.weight"], "convs.0.1.bias": sd[f"b{r}.fromrgb.bias"]}
    for j, res in enumerate(D.config.block_resolutions, start=1):
        out[f"convs.{j}.conv1.0.weight"] = sd[f"b{res}.conv0.weight"]
        out[f"convs.{j}.conv1.1.bias"] = sd[f"b{res}.conv0.bias"]
        out[f"convs.{j}.conv2.0.kernel"] = blur.clone()
        out[f"convs.{j}.conv2.1.weight"] = sd[f"b{res}.conv1.weight"]
        out[f"convs.{j}.conv2.2.bias"] = sd[f"b{res}.conv1.bias"]
        out[f"convs.{j}.skip.0.kernel"] = blur.clone()
        out[f"convs.{j}.skip.1.weight"] = sd[f"b{res}.skip.weight"]
    out["final_conv.0.weight"] = sd["b4.conv.weight"]
    out["final_conv.1.bias"] = sd["b4.conv.bias"]
    for i, name in enumerate(("fc", "out")):
        out[f"final_linear.{i}.weight"] = sd[f"b4.{name}.weight"]
        out[f"final_linear.{i}.bias"] = sd[f"b4.{name}.bias"]
    return out


def save_rosinality(
    path: str | os.PathLike,
    *,
    G_ema: Generator | None = None,
    G: Generator | None = None,
    D: Discriminator | None = None,
    force: bool = False,
) -> list[str]:
    """Write a rosinality-layout ``.pt`` (``g_ema``/``g``/``d`` state dicts plus ``latent_avg``) atomically.

    The file loads with rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` and
    ``Discriminator(size, channel_multiplier)``; the ``"latentlab"`` entry records those arguments.

    Args:
        force: write even when :func:`export_problems` finds differences (they are returned as warnings).
    Returns:
        The problems that ``force`` overrode (empty when the export is exact).
    Raises:
        UnsupportedModelError: the networks cannot be expressed exactly and ``force`` is False.
    """
    gens = [g for g in (G_ema, G) if g is not None]
    if not gens and D is None:
        raise ValueError("save_rosinality needs at least one of G_ema=, G=, D=")
    if any(n.config.arch != "stylegan2" for n in (*gens, *([D] if D is not None else []))):
        raise UnsupportedModelError("a StyleGAN v1 network has no rosinality layout (rosinality's code is StyleGAN2); "
                                    "keep it as a latentlab .safetensors file (--force does not apply)")  # fmt: skip
    problems = export_problems(gens[0] if gens else None, D)
    if problems and not force:
        raise UnsupportedModelError(
            "rosinality's code cannot reproduce this model exactly: " + "; ".join(problems)
            + " (force=True / --force writes it anyway)"
        )
    ckpt: dict[str, Any] = {}
    info: dict[str, Any] = {}
    if G_ema is not None:
        ckpt["g_ema"] = generator_state(G_ema)
    if G is not None:
        ckpt["g"] = generator_state(G)
    if gens:
        c = gens[0].config
        ckpt["latent_avg"] = gens[0].mapping.w_avg.detach().cpu().float().clone()
        chans = {r: c.channels(r) for r in _resolutions(c.resolution)}
        info.update(size=c.resolution, style_dim=c.w_dim, n_mlp=c.mapping_layers, lr_mlp=c.mapping_lr_multiplier,
                    channel_multiplier=channel_multiplier_for(chans, c.resolution))  # fmt: skip
    if D is not None:
        ckpt["d"] = discriminator_state(D)
        info.setdefault("size", D.config.resolution)
    info["written_by"] = f"latentlab {__version__}"
    ckpt["latentlab"] = info
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return problems
