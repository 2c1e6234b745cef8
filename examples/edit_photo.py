"""From a photo to an edited strip, a style-mixing grid and a video, with latentlab's Python API.

The photo is a fresh SynthFaces render the embedded model never saw (or your own image with --image). It is
projected into W, moved along a shipped direction, mixed with generated faces, and morphed into a seed.

Example:

    python examples/edit_photo.py --direction smile --steps 1000 --outdir edit-out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import latentlab as ll
from latentlab.data.synthfaces import render_item
from latentlab.edit import interpolate, mix_grid
from latentlab.edit.figures import edited_codes, grid, render_strip
from latentlab.pretrained import load_direction
from latentlab.projection import load_targets, project
from latentlab.render import render_codes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="synthfaces-64", help="registry name or checkpoint")
    p.add_argument("--image", default=None, help="your photo; default: a fresh SynthFaces render")
    p.add_argument("--direction", default="smile", help="a shipped direction's name or a .npy file")
    p.add_argument("--sigmas", default="-3,-1.5,0,1.5,3", help="edit sizes in multiples of the direction's std")
    p.add_argument("--steps", type=int, default=1000, help="projection steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--outdir", default="edit-out")
    args = p.parse_args()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)

    G = ll.load_generator(args.network, device=args.device)
    if args.image:
        photo = load_targets([args.image], G.img_resolution).images
    else:
        photo = ll.from_uint8(render_item(0, G.img_resolution, seed=2024)[0])
    proj = project(G, photo.to(G.w_avg.device), space="w", steps=args.steps, progress=True)
    ws, noise = proj.ws.cpu(), proj.noise

    # 1. the edit: one row, one column per size
    d = load_direction(args.direction, model=args.network)
    d.check_model(G, args.network)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    strip, _ = render_strip(G, edited_codes(G, d, [s * d.std for s in sigmas], ws), noise)
    ll.save_image(out / "edit.png", strip)

    # 2. style mixing: the photo's coarse, middle and fine styles given to four generated faces
    faces = ll.generate_images(G, [1, 2, 3, 4], truncation_psi=0.7).ws
    cells = torch.cat([faces] + [mix_grid(faces, ws, group)[0] for group in ("coarse", "middle", "fine")])
    ll.save_image(out / "mixing.png", grid(ll.to_uint8(render_codes(G, cells)), cols=4))

    # 3. a morph from the photo to seed 5 (lerp in W), as a video
    frames = interpolate(ws[0], faces[3], 60, "lerp")
    ll.io.write_video(out / "morph.mp4", ll.to_uint8(render_codes(G, frames)))
    print(f"{d.describe()}\nwrote {out / 'edit.png'}, {out / 'mixing.png'} and {out / 'morph.mp4'}")


if __name__ == "__main__":
    main()
