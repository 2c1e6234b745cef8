"""The photo figures of docs/photos.md: scikit-image's astronaut edited and pasted back (``edit_photo``).

Eileen Collins' NASA portrait (public domain, shipped in scikit-image's wheel) goes through dlib's detector
and landmarks, the alignment with the model's framing, W projection (1000 steps) and PTI (450-step pivot,
350 tuning steps), a +2 std smile, and both ways back into the photo. The embedded model draws SynthFaces
cartoons, so its reconstruction of a real face is a cartoon: the figure shows the pipeline and the two blends
(``replace`` pastes the model's face, ``delta`` only its change), not a photo-quality model.

Writes ``edit-photo-astronaut.png``: photo | aligned crop | W reconstruction | W + smile | PTI reconstruction
| PTI + smile (top, 128 px each), and the photo with each pasted back (bottom, crops of the face region).

    python benchmarks/figures_photos.py --outdir docs/images
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from latentlab import load_generator
from latentlab.edit.photo import edit_photo
from latentlab.faces import SYNTHFACES, DlibLandmarks, load_photo
from latentlab.io import save_image
from latentlab.pretrained import load_direction
from latentlab.projection.tune import TuneConfig


def _cell(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    out = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
    pad = np.full((side, side, 3), 255, np.uint8)
    pad[: out.shape[0], : out.shape[1]] = out
    return pad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--outdir", default="docs/images")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage import data as skimage_data

    photo = load_photo(Path(skimage_data.__file__).parent / "astronaut.png")
    G = load_generator(args.network, device="cpu")
    smile = load_direction("smile", model=args.network)
    det = DlibLandmarks()
    runs = {}
    for method, blend in (("w", "replace"), ("w", "delta"), ("tune", "replace"), ("tune", "delta")):
        t = time.perf_counter()
        cfg = TuneConfig(lpips_threshold=0.0)
        r = edit_photo(photo, G, smile, 2.0, method=method, blend=blend, detector=det, template=SYNTHFACES,
                       tune_config=cfg)  # fmt: skip
        runs[(method, blend)] = r
        print(json.dumps({"method": method, "blend": blend, "seconds": round(time.perf_counter() - t, 1),
                          "changed_pixels": int((r.photo != photo).any(-1).sum())}), flush=True)  # fmt: skip
    w, pti = runs[("w", "replace")], runs[("tune", "replace")]
    top = [_cell(photo, 192), _cell(w.crop, 192), _cell(w.reconstruction, 192), _cell(w.edited, 192),
           _cell(pti.reconstruction, 192), _cell(pti.edited, 192)]  # fmt: skip
    # The face region of the photo (the crop's quad's bounding box, a little larger) for the pasted results.
    q = w.transform.quad
    x0, y0 = np.maximum(q.min(0) - 20, 0).astype(int)
    x1, y1 = np.minimum(q.max(0) + 20, photo.shape[1::-1]).astype(int)
    bottom = [_cell(photo[y0:y1, x0:x1], 192)] + [_cell(runs[k].photo[y0:y1, x0:x1], 192) for k in runs] + [
        np.full((192, 192, 3), 255, np.uint8)]  # fmt: skip
    fig = np.concatenate([np.concatenate(top, 1), np.full((8, 192 * 6, 3), 255, np.uint8),
                          np.concatenate(bottom, 1)], 0)  # fmt: skip
    out = Path(args.outdir) / "edit-photo-astronaut.png"
    save_image(out, fig)
    print(json.dumps({"figure": str(out), "top": ["photo", "crop", "W", "W + smile", "PTI", "PTI + smile"],
                      "bottom": ["photo (face region)", "W replace", "W delta", "PTI replace", "PTI delta"]}))


if __name__ == "__main__":
    main()
