"""Writes the StyleGAN v1 fixture that NVIDIA's own TensorFlow code made (issue 22's exactness check).

Nothing of NVIDIA's is in latentlab: this imports their code from a checkout the user supplies
(github.com/NVlabs/stylegan; the fixture was made from 1e0d5c7) and runs it in an environment with TensorFlow
(2.x runs the TF1 code through ``tf.compat.v1``; its oneDNN CPU kernels take NCHW):

    python -m venv tfenv && tfenv/bin/pip install tensorflow-cpu tensorboard
    tfenv/bin/python benchmarks/reference_v1_tf.py tf --stylegan ~/src/stylegan --out tests/fixtures

It builds ``G_style`` and ``D_basic`` at 128x128 with few channels (so the fused transposed and strided
convolutions NVIDIA uses from 128 px are exercised), replaces every variable by seeded random values of its
initial spread (TF's initialization leaves biases, noise strengths, styles' biases and W's average at zero,
which would hide mistakes), and writes ``stylegan1_tf_tiny.pkl`` - the ``(G, D, Gs)`` tuple pickled by NVIDIA's
``Network`` class at the highest protocol, as their ``misc.save_pkl`` does, with the embedded module source
replaced by a placeholder - and ``golden_stylegan1_tf_tiny.npz``: latents, W, the centre 32x32 of the images
at ``lod`` 0 and 1.5 and with ``Gs.run``'s default truncation (psi 0.7 on 8 layers, constant noise), and D's
scores for :func:`d_input` at ``lod`` 0 and 0.7. ``tests/test_tfpickle.py`` reads the pickle with latentlab's
safe reader (nothing in it runs) and checks every output against these.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

KW = dict(latent_size=32, dlatent_size=32, mapping_fmaps=32, resolution=128, fmap_base=256, fmap_max=16)
N_G, N_D = 2, 4  # D's batch: one minibatch-stddev group
LODS_G, LODS_D = (0.0, 1.5), (0.0, 0.7)
CROP = np.s_[:, :, 48:80, 48:80]  # the images' centre, to keep the fixture small
PICKLE, GOLDEN = "stylegan1_tf_tiny.pkl", "golden_stylegan1_tf_tiny.npz"
PLACEHOLDER = "# NVlabs/stylegan training/networks_stylegan.py was here; latentlab never runs or ships it\n"


def d_input() -> np.ndarray:
    """D's input ``[4, 3, 128, 128]``: seeded normal noise (NumPy's legacy generator, stable across releases)."""
    return np.random.RandomState(1).standard_normal([N_D, 3, KW["resolution"], KW["resolution"]]).astype(np.float32)


def cmd_tf(args) -> None:
    import tensorflow as real_tf

    tf = real_tf.compat.v1
    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf  # NVIDIA's modules say "import tensorflow as tf" and use the TF1 API
    sys.path.insert(0, str(args.stylegan))
    import dnnlib.tflib as tflib

    # soft placement: Network.run pins its graph to /gpu:0, which a CPU build does not have
    tflib.init_tf({"rnd.np_random_seed": args.seed, "rnd.tf_random_seed": args.seed, "allow_soft_placement": True})
    # use_noise=1, not True: NVIDIA puts it in a shape list, and TF 2 refuses a bool there
    G = tflib.Network("G", func_name="training.networks_stylegan.G_style", num_channels=3, use_noise=1, **KW)
    D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", num_channels=3,
                      **{k: KW[k] for k in ("resolution", "fmap_base", "fmap_max")})  # fmt: skip
    rng = np.random.RandomState(args.seed)
    for net in (G, D):
        values = {}
        for name, var in net.vars.items():
            if name.endswith("lod"):
                continue
            init = tflib.run(var)  # the spread TF drew with (100 for the mapping's lrmul 0.01), or 0.2 for zeros
            spread = float(init.std()) if init.size > 1 and init.std() > 0 else 0.2
            values[var] = (rng.standard_normal(init.shape) * spread).astype(np.float32)
        tflib.set_vars(values)
    Gs = G.clone("Gs")
    z = rng.standard_normal([N_G, KW["latent_size"]]).astype(np.float32)
    out = {"z": z, "w": Gs.components.mapping.run(z, None)}
    for lod in LODS_G:
        Gs.set_var("lod", lod)  # G_style copies its lod into synthesis/lod
        out[f"img_lod{lod}"] = Gs.run(z, None, truncation_psi=None, randomize_noise=False)[CROP]
    Gs.set_var("lod", 0.0)
    out["img_trunc"] = Gs.run(z, None, randomize_noise=False)[CROP]  # the defaults: psi 0.7, cutoff 8
    for lod in LODS_D:
        D.set_var("lod", lod)
        out[f"score_lod{lod}"] = D.run(d_input(), None)
    D.set_var("lod", 0.0)
    for net in (G, D, Gs, *G.components.values(), *Gs.components.values()):
        net._build_module_src = PLACEHOLDER  # NVIDIA's source is not redistributed with the fixture
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / PICKLE, "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=pickle.HIGHEST_PROTOCOL)  # as NVIDIA's misc.save_pkl does
    np.savez(args.out / GOLDEN, **out)
    print(f"wrote {args.out / PICKLE} and {GOLDEN} (TensorFlow {real_tf.__version__})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tf", help="run NVIDIA's TF code (needs tensorflow and a stylegan checkout)")
    t.add_argument("--stylegan", type=Path, required=True, help="a checkout of github.com/NVlabs/stylegan")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(fn=cmd_tf)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
