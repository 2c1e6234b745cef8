"""Writing projections to disk: per image codes, pictures and video; a summary of reconstruction quality.

Per target ``<name>`` (the file's stem, made unique when two inputs share one):

* ``<name>.npz``: ``w`` ``[num_ws, w_dim]`` (NVIDIA's ``--projected-w`` layout), one ``noise_<layer>``
  array ``[r, r]`` per noise layer (e.g. ``noise_b8.conv0``), and ``meta`` (network, space, loss, steps, ...);
* ``<name>.png``: the reconstruction; ``<name>-compare.png``: target | reconstruction;
* ``<name>.mp4`` (with a video): target | the optimization's renderings.

``summary.json`` and ``summary.csv`` list per-image PSNR, SSIM and LPIPS (when a pretrained LPIPS is at hand).
Every file is written atomically; a summary is rewritten after each chunk, so an interrupted run keeps what
was done. :func:`project_to_folder` does all of it for a batch of targets (``latentlab project`` wraps it).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.targets import TargetFiles, Targets
from ..io.atomic import atomic_path
from ..io.images import save_image, to_uint8, write_video
from ..io.latents import noise_arrays, save_latents
from ..nn.generator import Generator
from ..parallel import World, chunked, map_tasks
from ..perceptual.scores import quality_rows
from ..validate import count
from .projector import ProjectConfig, Projection, config_dict, project_chunk, w_statistics


def unique_names(paths: Sequence[Path]) -> list[str]:
    """Output stems for input paths: the file stem, with ``-2``, ``-3``, ... added where stems collide."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = p.stem or "image"
        k = seen.get(stem, 0) + 1
        seen[stem] = k
        out.append(stem if k == 1 else f"{stem}-{k}")
    return out


def write_projection(
    outdir: Path,
    G: Generator,
    names: Sequence[str],
    sources: Sequence[str],
    targets: torch.Tensor,
    proj: Projection,
    meta: dict[str, Any],
    lpips_loss: torch.nn.Module | None = None,
    video: bool = False,
) -> list[dict[str, Any]]:
    """Write one chunk's files (see the module docstring) and return its summary rows."""
    outdir.mkdir(parents=True, exist_ok=True)
    target_px, recon_px = to_uint8(targets), to_uint8(proj.images)
    rows = quality_rows(targets, proj.images, lpips_loss)
    for i, name in enumerate(names):
        file_meta = dict(meta, source=str(sources[i]), space=proj.config.space, loss=proj.loss_name,
                         steps=proj.config.steps, final_loss=float(proj.losses[i]),
                         config=config_dict(proj.config), **rows[i])  # fmt: skip
        save_latents(outdir / f"{name}.npz", proj.ws[i], meta=file_meta, **noise_arrays(G, proj.noise, i))
        save_image(outdir / f"{name}.png", recon_px[i])
        save_image(outdir / f"{name}-compare.png", np.concatenate([target_px[i], recon_px[i]], axis=1))
        if video and proj.frames is not None:
            frames = proj.frames[:, i]
            pairs = np.concatenate([np.broadcast_to(target_px[i], frames.shape), frames], axis=2)  # target | frame
            write_video(outdir / f"{name}.mp4", pairs)
        rows[i] = {"name": name, "source": str(sources[i]), "loss": float(proj.losses[i]), **rows[i]}
    return rows


def write_summary(outdir: Path, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """``summary.json`` (info + rows + means) and ``summary.csv`` (one row per image), atomically."""
    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])]
        return float(np.mean(vals)) if vals else None

    summary = dict(info, images=len(rows), mean={k: mean(k) for k in ("psnr", "ssim", "lpips", "loss")},
                   results=rows)  # fmt: skip
    with atomic_path(outdir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "source", "loss", "psnr", "ssim", "lpips"])
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in writer.fieldnames})
    with atomic_path(outdir / "summary.csv") as tmp:
        tmp.write_text(buf.getvalue())


def summary_lpips(loss: torch.nn.Module, weights: str | os.PathLike | None = None,
                  device: torch.device | str | None = None) -> torch.nn.Module | None:  # fmt: skip
    """The LPIPS that scores a projection's summary: ``loss`` itself when it is LPIPS, else LPIPS-VGG when its
    weights can be had without a download (``weights``, the torch hub cache or an installed package's file), else
    None (no LPIPS column).

    Raises:
        WeightsUnavailable: ``weights`` given and unusable (a file the user named is never silently dropped).
    """
    from ..perceptual import LPIPSLoss, WeightsUnavailable

    if isinstance(loss, LPIPSLoss):
        if loss.min_side is None and "alex" not in loss.name:
            return loss  # the column is LPIPS-VGG on the images as they are
        # a file named for the loss is that loss's backbone: VGG's is reused, AlexNet's is not the column's
        weights = None if "alex" in loss.name else loss.source
    if weights is not None:
        return LPIPSLoss("vgg", weights=weights).to(device)
    try:
        return LPIPSLoss("vgg", weights=weights).to(device)
    except WeightsUnavailable:
        return None


def _expected_files(outdir: Path, name: str, video: bool) -> list[Path]:
    files = [outdir / f"{name}.npz", outdir / f"{name}.png", outdir / f"{name}-compare.png"]
    return files + [outdir / f"{name}.mp4"] if video else files


def completed_rows(
    outdir: str | os.PathLike,
    names: Sequence[str],
    sources: Sequence[Path],
    config: ProjectConfig,
    network: str,
    video: bool = False,
) -> dict[int, dict[str, Any]]:
    """The summary rows of the targets whose outputs in ``outdir`` are complete, by target index (for resuming).

    A target is complete when all its files exist (``.npz``, ``.png``, ``-compare.png`` and, with ``video``,
    ``.mp4``) and its ``.npz`` records the same source file, network and projection settings. Files are written
    atomically and the ``.npz`` first, so a killed run leaves each target either complete or redone.

    Raises:
        InvalidInput: an ``.npz`` of one of these targets that was made with other settings or another network
            (resuming would mix two experiments in one folder).
    """
    from ..io.latents import load_latents
    from ..validate import InvalidInput

    outdir = Path(outdir)
    want = config_dict(config)
    done: dict[int, dict[str, Any]] = {}
    for i, (name, source) in enumerate(zip(names, sources, strict=True)):
        files = _expected_files(outdir, name, video)
        if not files[0].is_file():
            continue
        try:
            meta = load_latents(files[0]).meta
        except ValueError:
            continue  # unreadable: project it again (the new file replaces it atomically)
        if meta.get("source") != str(source):
            continue  # another input that happens to share the name; it is redone and overwritten
        had = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        differ = [f"network {meta.get('network')!r:.80} (now {str(network)!r:.80})"] \
            if meta.get("network") != str(network) else []  # fmt: skip
        had = {**ADDED_LATER, **had}  # a folder written before a field existed was made with its default
        differ += [f"{k} {had.get(k)!r:.40} (now {v!r:.40})" for k, v in want.items() if had.get(k) != v]
        if differ:
            raise InvalidInput(f"{files[0]}: made with other settings than this run: {', '.join(differ)}; use a new "
                               f"--outdir, or the same options to resume")  # fmt: skip
        if not all(f.is_file() for f in files):
            continue
        row = {"name": name, "source": str(source), "loss": meta.get("final_loss")}
        row.update({k: meta.get(k) for k in ("psnr", "ssim", "lpips")})
        done[i] = row
    return done


# ProjectConfig fields added after outputs were first written, with the value every earlier run used.
ADDED_LATER: dict[str, Any] = {"precision": "fp32", "encoder_iterations": None}


def project_to_folder(
    G: Generator,
    targets: Targets | TargetFiles,
    outdir: str | os.PathLike,
    loss: torch.nn.Module,
    config: ProjectConfig,
    *,
    network: str,
    batch_size: int = 8,
    frames: int = 0,
    lpips_metric: torch.nn.Module | None = None,
    progress: bool = True,
    resume: bool = False,
    encoder: torch.nn.Module | None = None,
    encoder_ref: str | None = None,
    world: World | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Project ``targets`` chunk by chunk and write each image's files and the summary (see the module docstring).

    Args:
        G: the generator (frozen; its device is used).
        targets: images in memory (:func:`~latentlab.projection.load_targets`; its ``skipped`` files are listed in
            the summary), or :class:`~latentlab.data.targets.TargetFiles`, read a chunk at a time (any number of
            files in the memory of one chunk; unreadable ones are skipped, listed and reported to ``log`` as their
            chunk comes up).
        outdir: the output folder (created).
        loss: the distance module (:func:`latentlab.perceptual.build_loss`).
        config: the schedule; ``config.loss`` should name ``loss``.
        network: what the codes' meta records as their network (a registry name or a path).
        batch_size: images optimized together (each independently).
        frames: frames of the ``<name>.mp4`` per image; 0 = no video.
        lpips_metric: the LPIPS column of the summary (:func:`summary_lpips`); None = no LPIPS column.
        progress: show a progress bar.
        resume: skip the targets whose outputs are already complete (:func:`completed_rows`); their summary rows
            come from their ``.npz``. Chunks are cut from all the targets and a chunk with an unfinished image is
            redone whole, and every image draws from its own identically seeded generator, so a resumed run with
            the same ``batch_size`` writes what an uninterrupted one would, bit for bit.
        encoder: start from this encoder's codes (``config.init == "encoder"``); ``encoder_ref`` (its file) is
            recorded in every code's meta and in the summary.
        world: the processes of a ``torchrun`` job (:func:`latentlab.parallel.init_world`); None = this one.
            Chunk ``k`` of ``batch_size`` images (after the resumed ones are left out) is projected and written by
            process ``k % size``; rank 0 writes the summary after every round and shows the one progress bar. A
            chunk computes what it computes in one process, so the files are bit-identical to a one-process run's
            with the same ``batch_size`` and threads. Every process must be given the same arguments and see the
            same ``outdir`` (a shared folder across machines).
        log: receives ``skipped PATH: reason`` and ``warning: PATH: note`` lines for files read lazily (rank 0).
    Returns:
        The summary rows, one per projected image in target order: ``{"name", "source", "loss", "psnr", "ssim",
        "lpips"}``.
    Raises:
        ValueError: no targets.
        ShardFailed: with several processes, when one failed (its rank and images are named); every finished
            image's files and the summary of them are kept, and ``resume`` continues the job.
    """
    files = targets if isinstance(targets, TargetFiles) else None
    if files is None and targets.images.shape[0] == 0:
        raise ValueError("no readable images to project")
    if files is not None and not files.paths:
        raise ValueError("no images to project")
    count(batch_size, "batch_size")
    count(frames, "frames", low=0)
    outdir = Path(outdir)
    paths = list(targets.paths)
    names = unique_names(paths)
    meta = {"network": str(network), "source_tool": "latentlab project"}
    if encoder is not None:
        meta["encoder"] = str(encoder_ref or "")
    skipped = [] if files is not None else list(targets.skipped)
    notes = [] if files is not None else list(targets.notes)
    info = {"network": str(network), "space": config.space, "loss": getattr(loss, "name", config.loss),
            "steps": config.steps, "seed": config.seed, "init": config.init}
    if encoder is not None:
        info["encoder"] = meta["encoder"]
    world = world if world is not None else World()
    every = chunked(len(names), batch_size)
    # Chunks are cut from all the targets, as in an uninterrupted run; one that a kill left unfinished is redone
    # whole, so every image is optimized with the same batch mates and the files are the same, bit for bit.
    # Rank 0 plans (the others wait for its plan, so nothing is written before every process has one).
    found, unreadable, unreadable_why = world.from_main(
        lambda: _resume_plan(outdir, names, paths, config, network, frames > 0, every, files)) \
        if resume else ({}, set(), [])  # fmt: skip
    skipped += unreadable_why
    chunks = [c for c in every if any(i not in found and i not in unreadable for i in c)]
    todo = [i for c in chunks for i in c]
    redone = set(todo)
    if resume:
        info["resumed"] = len(found.keys() - redone)
    if world.size > 1:
        info["processes"] = world.size
    rows = {i: r for i, r in found.items() if i not in redone}

    def summary() -> None:
        if world.is_main and (rows or outdir.exists()):  # nothing readable and nothing there: nothing is written
            write_summary(outdir, [rows[i] for i in sorted(rows)], {
                **info, "skipped": [{"path": str(p), "reason": why} for p, why in skipped],
                "warnings": [{"path": str(p), "note": note} for p, note in notes]})  # fmt: skip

    if not todo:
        summary()
        return [rows[i] for i in sorted(rows)]
    if encoder is not None:
        encoder.check_generator(G)
    w_stats = w_statistics(G, config.w_avg_samples, config.seed, class_idx=config.class_idx)
    steps = max(config.steps, 1)
    bar = tqdm(total=len(todo) * steps, desc="project", unit="img-step", disable=world.bar_disable(progress),
               dynamic_ncols=True)  # fmt: skip

    def run(k: int) -> dict[str, Any]:
        idx = chunks[k]
        if files is not None:
            kept, chunk, bad, said = files.read(idx)
        else:
            kept, chunk, bad, said = idx, targets.images[idx], [], []
        # rank 0's bar stands for the whole round: its chunk's steps count for every chunk of the round
        first = k - k % world.size
        in_round = sum(len(c) for c in chunks[first : first + world.size])
        text = f"images {sum(len(c) for c in chunks[: first + world.size])}/{len(todo)}"
        out = {"kept": kept, "rows": [], "skipped": bad, "notes": said}
        if not kept:
            bar.update(in_round * steps)
            return out

        def on_step(step: int, dist: torch.Tensor) -> None:
            bar.update(in_round)
            if step % 10 == 0 or step == config.steps - 1:
                bar.set_postfix_str(f"{text} step {step + 1}/{config.steps} loss {dist.mean().item():.4f}",
                                    refresh=False)  # fmt: skip

        proj = project_chunk(G, chunk, loss, config, w_stats, frames=frames, on_step=on_step, encoder=encoder)
        if config.steps == 0:
            bar.update(in_round)
        out["rows"] = write_projection(outdir, G, [names[i] for i in kept], [paths[i] for i in kept], chunk, proj,
                                       meta, lpips_metric, video=frames > 0)  # fmt: skip
        return out

    def on_round(done: dict[int, dict[str, Any]], fresh: list[int]) -> None:
        for k in fresh:
            rows.update(zip(done[k]["kept"], done[k]["rows"], strict=True))
            skipped.extend(done[k]["skipped"])
            notes.extend(done[k]["notes"])
            if log is not None and world.is_main:
                for p, why in done[k]["skipped"]:
                    log(f"skipped {p}: {why}")
                for p, note in done[k]["notes"]:
                    log(f"warning: {p}: {note}")
        summary()

    def describe(k: int) -> str:
        return "images " + ", ".join(str(paths[i]) for i in chunks[k])

    try:
        map_tasks(world, len(chunks), run, on_round=on_round, describe=describe)
    finally:
        bar.close()
    return [rows[i] for i in sorted(rows)]


def _resume_plan(outdir: Path, names: list[str], paths: list[Path], config: ProjectConfig, network: str, video: bool,
                 chunks: list[list[int]], files: TargetFiles | None):  # fmt: skip
    """``(complete rows by index, unreadable indices, their (path, reason))`` for a resumed job. A file read lazily
    that has no outputs is tried only in a chunk where something is complete: unreadable, the chunk is done."""
    found = completed_rows(outdir, names, paths, config, network, video)
    unreadable: set[int] = set()
    why: list[tuple[Path, str]] = []
    if files is not None:
        for c in chunks:
            missing = [i for i in c if i not in found]
            if missing and len(missing) < len(c):
                kept, _, bad, _ = files.read(missing)
                if not kept:  # all of them unreadable: the chunk is done (else it is redone, and says so then)
                    unreadable.update(missing)
                    why += bad
    return found, unreadable, why
