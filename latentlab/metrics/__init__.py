"""Measuring generators and latent spaces. One file per metric; each returns a dict of floats.

* :mod:`.ppl`: perceptual path length (``ppl_zfull``, ``ppl_wfull``, ``ppl_zend``, ``ppl_wend``, ``ppl2_wend``);
* :mod:`.separability`: the StyleGAN paper's linear separability (``ls_z``, ``ls_w``);
* :mod:`.disentanglement`: DCI, MIG and SAP of codes against known factors;
* :mod:`.reconstruction`: PSNR and SSIM; :mod:`.frechet`: Fréchet and 1-D Wasserstein distances.
"""

from .disentanglement import dci, disentanglement, mig, sap
from .frechet import feature_statistics, frechet_distance, wasserstein_1d
from .ppl import VARIANTS as PPL_VARIANTS
from .ppl import ppl
from .separability import linear_separability

__all__ = [
    "PPL_VARIANTS",
    "dci",
    "disentanglement",
    "feature_statistics",
    "frechet_distance",
    "linear_separability",
    "mig",
    "ppl",
    "sap",
    "wasserstein_1d",
]
