"""What the classifier-feature Fréchet distance of a SynthFaces generator is made of (issue 25's target).

Renders ``--n`` real SynthFaces twice (disjoint, dataset seed ``--real-seed``), and ``--n`` images of each
``--network``, then prints one JSON object: the Fréchet distance to the first real set of

* the second real set (the floor), and of that set after small, nearly invisible changes: Gaussian blurs,
  a 3-tap ``[1, 2, 1] / 4`` smoothing along x or along y, lower saturation, added white or 2x2-block noise
  (the data's background grain is 2x2 blocks), 32x32 detail only;
* each generator's images as they are, with no noise inputs, and after the same changes.

For each set it also gives the part of the distance that is the means' difference, ``|mu_a - mu_b|^2``; the
rest is the covariance term. A change that moves a generator much closer says which detail the distance
is made of.

    python benchmarks/probe_embedded.py --network pretrained/synthfaces-64.safetensors --n 2000
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

import latentlab
from latentlab.data.classifier import render_batch
from latentlab.metrics.frechet import feature_statistics, frechet_distance
from latentlab.pretrained import load_classifier


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[N, C, H, W]`` (7 taps, reflected borders)."""
    k = torch.arange(-3, 4, dtype=x.dtype)
    g = torch.exp(-(k**2) / (2 * sigma**2))
    return _separable(x, g / g.sum(), "xy")


def smooth_121(x: torch.Tensor, axes: str) -> torch.Tensor:
    """``[1, 2, 1] / 4`` along ``axes`` ("x", "y" or "xy")."""
    return _separable(x, torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype), axes)


def _separable(x: torch.Tensor, taps: torch.Tensor, axes: str) -> torch.Tensor:
    c, r = x.shape[1], taps.numel() // 2
    if "x" in axes:
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    if "y" in axes:
        x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x


def changes(seed: int) -> dict[str, callable]:
    """The image changes probed, each ``[N, 3, H, W] -> [N, 3, H, W]`` in [-1, 1], seeded where random."""

    def noise(x, std, block):
        gen = torch.Generator().manual_seed(seed)
        n, _, h, w = x.shape
        z = torch.randn(n, 1, h // block, w // block, generator=gen) * std
        z = z.repeat_interleave(block, 2).repeat_interleave(block, 3)
        return (x + z).clamp(-1, 1)

    def desaturate(x, a):
        m = x.mean(1, keepdim=True)
        return m + a * (x - m)

    def detail_32(x):
        small = F.interpolate(x, scale_factor=0.5, mode="area")
        return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)

    return {
        "blur 0.4": lambda x: gaussian_blur(x, 0.4), "blur 0.5": lambda x: gaussian_blur(x, 0.5),
        "blur 0.6": lambda x: gaussian_blur(x, 0.6), "blur 0.8": lambda x: gaussian_blur(x, 0.8),
        "smooth x": lambda x: smooth_121(x, "x"), "smooth y": lambda x: smooth_121(x, "y"),
        "smooth xy": lambda x: smooth_121(x, "xy"), "saturation 0.9": lambda x: desaturate(x, 0.9),
        "white noise 0.02": lambda x: noise(x, 0.02, 1), "2x2 noise 0.03": lambda x: noise(x, 0.03, 2),
        "32x32 detail only": detail_32,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", action="append", default=[], help="generator (repeatable): name or checkpoint")
    ap.add_argument("--classifier", default="synthfaces-64")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1, help="the generated sets' latents and noise")
    ap.add_argument("--real-seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    clf = load_classifier(args.classifier).eval()

    def real(start):
        return torch.cat([render_batch(range(i, min(i + 250, start + args.n)), 64, args.real_seed)[0]
                          for i in range(start, start + args.n, 250)])  # fmt: skip

    @torch.no_grad()
    def stats(x):
        return feature_statistics(clf.predict_with_features(x)[1].numpy())

    ref = stats(real(0))

    def distance(x):
        mu, cov = stats(x)
        mean_part = float(((mu - ref[0]) ** 2).sum())
        return {"fd": round(frechet_distance(mu, cov, *ref), 2), "mean_part": round(mean_part, 2)}

    probes = changes(args.seed)
    other = real(args.n)
    out = {"n": args.n, "real_dataset_seed": args.real_seed, "real": {"as is": distance(other)}}
    out["real"].update({name: distance(f(other)) for name, f in probes.items()})
    for name in args.network:
        G = latentlab.load_generator(name).eval()

        @torch.no_grad()
        def render(mode, G=G):
            gen, imgs = torch.Generator().manual_seed(args.seed), []  # the same latents for every mode
            for i in range(0, args.n, 64):
                z = torch.randn(min(64, args.n - i), G.z_dim, generator=gen)
                noise = torch.Generator().manual_seed(args.seed * 1_000_003 + i)
                imgs.append(G(z, noise_mode=mode, generator=noise).clamp(-1, 1))
            return torch.cat(imgs)

        x = render("random")
        rows = {"as is": distance(x), "no noise inputs": distance(render("none"))}
        rows.update({k: distance(f(x)) for k, f in probes.items()})
        out[name] = rows
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
