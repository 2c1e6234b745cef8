"""Describe a checkpoint file: the library side of ``latentlab info``."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..nn.wplus import layer_table
from .checkpoint import refuse_directory
from .foreign import detect_format, load_any


def count_params(module: torch.nn.Module) -> int:
    """Number of trainable-parameter elements (buffers such as w_avg and noise maps excluded)."""
    return sum(p.numel() for p in module.parameters())


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-able summary of a checkpoint file: format, versions, configs, parameter counts, W+ layer table.

    Foreign files (NVIDIA ``.pkl``, rosinality ``.pt``) are converted in memory; ``"source"`` then holds the
    conversion details (original constructor arguments, ignored options, how ``w_avg`` was obtained), as it
    does for a native file that :func:`latentlab.io.foreign.convert` wrote. Registry names and URLs are
    resolved to a file above this layer (``latentlab info NAME`` does it with
    :func:`latentlab.registry.resolve`).

    Raises:
        FileNotFoundError, IsADirectoryError: ``path`` is not a file.
        CheckpointError: the file cannot be read.
    """
    from .tuned import FORMAT as TUNED
    from .tuned import is_tuned, read_tuned

    path = refuse_directory(path)
    if is_tuned(path):  # pivotal tuning's compact file: what changed, the pivot, and the base it needs
        info, tensors = read_tuned(path)
        weights = {k: v for k, v in tensors.items() if k != "pivot"}
        return {"file": str(path), "size_mb": round(path.stat().st_size / 2**20, 2), "format": TUNED,
                "base": {k: info["base"][k] for k in ("network", "fingerprint")}, "image": info.get("image", ""),
                "tune": info.get("tune", {}), "tensors": len(weights),
                "params": sum(v.numel() for v in weights.values()),
                "pivot": list(tensors["pivot"].shape) if "pivot" in tensors else None}  # fmt: skip
    fmt = detect_format(path)
    ckpt = load_any(path, device="cpu")
    meta = dict(ckpt.meta)
    source = meta.pop("source", None)
    out: dict[str, Any] = {"file": str(path), "size_mb": round(path.stat().st_size / 2**20, 2), "format": fmt,
                           "networks": [n for n in ("G_ema", "G", "D") if getattr(ckpt, n) is not None],
                           "versions": ckpt.versions, "meta": meta}  # fmt: skip
    if source is not None:
        out["source"] = source
    G = ckpt.generator
    if G is not None:
        out["G"] = {
            "config": G.config.to_dict(),
            "num_ws": G.num_ws,
            "params": {"mapping": count_params(G.mapping), "synthesis": count_params(G.synthesis),
                       "total": count_params(G)},  # fmt: skip
            "layers": layer_table(G),
        }
    if ckpt.D is not None:
        out["D"] = {"config": ckpt.D.config.to_dict(), "params": {"total": count_params(ckpt.D)}}
    return out


V1_UNUSED = ("architecture", "conv_clamp", "resample_filter")  # StyleGAN2 options a v1 config keeps at defaults


def _config_lines(cfg: dict[str, Any]) -> list[str]:
    """A G or D config as ``  name  value`` lines, without the StyleGAN2-only fields for a v1 network."""
    hidden = V1_UNUSED if cfg.get("arch") == "stylegan1" else ()
    return [f"  {k:<24} {v}" for k, v in cfg.items() if k not in hidden]


def format_description(d: dict[str, Any]) -> str:
    """Human-readable text for :func:`describe`'s dict."""
    if d.get("format") == "latentlab-tuned":
        t = d.get("tune", {})
        lines = [f"file:      {d['file']} ({d['size_mb']} MB)", "format:    latentlab-tuned (pivotal tuning, PTI)",
                 f"base:      {d['base']['network']} (fingerprint {d['base']['fingerprint']})",
                 f"image:     {d['image'] or '?'}", f"pivot:     {d['pivot']}",
                 f"tuned:     {d['tensors']} synthesis tensors, {d['params']:,} values"]  # fmt: skip
        if t:
            lines.append(f"tuning:    {t.get('steps')} steps, LPIPS {t.get('lpips', float('nan')):.4f}, "
                         f"{t.get('seconds', '?')} s")  # fmt: skip
        return "\n".join(lines)
    lines = [f"file:      {d['file']} ({d['size_mb']} MB)", f"format:    {d.get('format', 'latentlab')}",
             f"networks:  {', '.join(d['networks'])}"]
    if d.get("versions"):
        lines.append(f"written by latentlab {d['versions'].get('latentlab_version')}, "
                     f"torch {d['versions'].get('torch_version')}")  # fmt: skip
    if d.get("meta"):
        lines.append(f"meta:      {d['meta']}")
    if d.get("source"):
        lines += [""] + format_source(d["source"])
    if "G" in d:
        g = d["G"]
        cfg = g["config"]
        lines += ["", "generator config:"] + _config_lines(cfg)
        p = g["params"]
        lines += ["", f"generator parameters: {p['total']:,} (mapping {p['mapping']:,}, "
                      f"synthesis {p['synthesis']:,})",
                  f"num_ws: {g['num_ws']}", "", "  W+  res   channels  group   layers"]  # fmt: skip
        for row in g["layers"]:
            lines.append(f"  {row['index']:>3} {row['resolution']:>5}  {row['channels']:>8}  {row['group']:<7} "
                         f"{', '.join(row['layers'])}")  # fmt: skip
    if "D" in d:
        lines += ["", f"discriminator parameters: {d['D']['params']['total']:,}", "discriminator config:"]
        lines += _config_lines(d["D"]["config"])
    return "\n".join(lines)


def format_source(src: dict[str, Any]) -> list[str]:
    """Lines describing where a converted model came from (``meta["source"]``)."""
    lines = [f"converted from: {src.get('format')}" + (f" ({src['layout']})" if src.get("layout") else "")]
    if src.get("file"):
        lines.append(f"  file {src['file']}, sha256 {src.get('sha256', '?')}")
    if src.get("url"):
        verified = "verified against the registry" if src.get("checksum_verified") else "not verified (none published)"
        lines.append(f"  downloaded from {src['url']}; checksum {verified}")
    for name, net in (src.get("networks") or {}).items():
        head = f"  {name}: {net.get('class', '')}".rstrip()
        lines.append(head)
        if net.get("tf_options") is not None:  # a TensorFlow pickle: its options, then what they became
            lines.append(f"    TensorFlow options: {net['tf_options']}")
            if net.get("kwargs") and not net.get("class", "").endswith("V1"):  # v1's are the config below
                lines.append(f"    as NVIDIA's PyTorch arguments: {net['kwargs']}")
        elif net.get("kwargs"):
            lines.append(f"    original arguments: {net['kwargs']}")
        for note in net.get("notes", []):
            lines.append(f"    note: {note}")
    if src.get("skipped"):
        lines.append(f"  skipped entries: {', '.join(src['skipped'])}")
    if src.get("training_set_kwargs"):
        lines.append(f"  training set: {src['training_set_kwargs']}")
    if src.get("args"):
        lines.append(f"  training arguments: {src['args']}")
    return lines
