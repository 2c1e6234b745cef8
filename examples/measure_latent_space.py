"""Is W better than Z? The StyleGAN paper's two latent-space claims on the embedded model, with the API.

Measures perceptual path length at the path endpoints and linear separability in W and in Z, plus DCI
informativeness of both, then prints a side-by-side table. The default distance is the offline stand-in
(LPIPS's formula on the SynthFaces classifier's stages); ``--lpips`` uses LPIPS-VGG, which needs
torchvision's VGG16 weights (downloaded when online). ``latentlab metrics`` is the command-line version.

Example:

    python examples/measure_latent_space.py --num 10000        # about 3 minutes on 2 CPU cores

Separability needs many more samples than W has dimensions (256): below about 5k it says nothing.
"""

from __future__ import annotations

import argparse

import latentlab as ll
from latentlab.metrics.ppl import classifier_distance, lpips_vgg_distance
from latentlab.metrics.registry import Context, compute
from latentlab.pretrained import load_classifier


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="synthfaces-64", help="a SynthFaces generator (registry name or file)")
    p.add_argument("--num", type=int, default=10_000, help="samples per metric")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lpips", action="store_true", help="PPL with LPIPS-VGG instead of the offline distance")
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    G = ll.load_generator(args.network, device=args.device)
    clf = load_classifier("synthfaces-64", device=args.device)
    ctx = Context(num=args.num, seed=args.seed, classifier=clf, progress=False)
    if args.lpips:
        ctx.distance, ctx.distance_name = lpips_vgg_distance(), "lpips-vgg"
    else:
        ctx.distance, ctx.distance_name = classifier_distance(clf), "classifier"
    report = compute(["ppl_wend", "ppl_zend", "ls_w", "ls_z", "dci", "dci_z"], G, ctx)
    r, tag = report["results"], "" if args.lpips else ":classifier"

    rows = [("PPL, endpoints (lower is smoother)", f"ppl_wend{tag}", f"ppl_zend{tag}"),
            ("linear separability (lower is better)", "ls_w", "ls_z"),
            ("DCI informativeness (higher is better)", "dci_informativeness", "dci_informativeness_z")]  # fmt: skip
    print(f"{args.num} samples, seed {args.seed}, PPL distance {ctx.distance_name}")
    print(f"{'':40} {'W':>10} {'Z':>10}")
    for label, w, z in rows:
        print(f"{label:40} {r[w]:10.3f} {r[z]:10.3f}")
    for label, w, z in rows:
        better = r[w] > r[z] if "higher" in label else r[w] < r[z]
        print(f"{label.split(' (')[0]}: W is {'better' if better else 'NOT better'} than Z")


if __name__ == "__main__":
    main()
