"""Progressive growing as StyleGAN v1 trains (Karras et al., ICLR 2018, Sec. 3; NVlabs/stylegan ``training_loop.py``).

Training starts at ``lod_initial_resolution`` (8x8 in StyleGAN) and doubles it after every phase of
``lod_training_kimg`` thousand images at a stable resolution followed by ``lod_transition_kimg`` fading the next
resolution in. The *level of detail* ``lod`` counts resolutions below the network's: ``lod = 0`` is the full
network, ``log2(R) - log2(r)`` shows ``r x r`` images; during a fade it moves linearly to the next integer.

The networks always take and give ``R x R`` images (NVIDIA's "linear" structure); the generator up-samples its
``r x r`` output by repetition, and the real images are processed to match (:func:`process_reals`): box-filtered
down to ``r x r``, cross-faded with their own 2x2 box average by the fraction of ``lod``, and repeated back up.
Minibatch size and learning rate may depend on the current resolution (``batch_dict``, ``lr_dict``), and the
optimizers start afresh whenever ``floor(lod)`` or ``ceil(lod)`` changes (:func:`lod_changed`), that is at the
start of every fade and of every stable phase.

NVIDIA recomputes the schedule every 4 minibatches (``minibatch_repeats``); latentlab recomputes it for every
minibatch from the images shown so far, so a run's schedule is a function of ``cur_nimg`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Phase:
    """What one minibatch trains with."""

    lod: float  # level of detail: 0 = the full network
    resolution: int  # the resolution being trained, ``R / 2**floor(lod)``
    batch: int  # global minibatch
    lr_G: float  # Adam learning rates (before the lazy-regularization correction)
    lr_D: float

    def layers_in_use(self, num_ws: int) -> int:
        """Synthesis layers that reach the image in a network of ``num_ws``: ``num_ws - 2 floor(lod)`` (the style
        mixing cut-off is drawn below this, as NVIDIA's ``G_style`` does)."""
        return num_ws - 2 * int(math.floor(self.lod))


def growing_lod(cur_nimg: int, resolution: int, initial_resolution: int, training_kimg: float,
                transition_kimg: float) -> float:  # fmt: skip
    """The level of detail after ``cur_nimg`` images (NVIDIA's ``TrainingSchedule``).

    Args:
        cur_nimg: real images shown so far (>= 0).
        resolution: the network's resolution ``R`` (a power of two).
        initial_resolution: the resolution training starts at (a power of two, ``4 <= r <= R``).
        training_kimg, transition_kimg: thousands of images per stable phase and per fade (>= 0).
    Returns:
        ``lod`` in ``[0, log2(R / initial_resolution)]``.
    """
    kimg = cur_nimg / 1000.0
    phase_dur = training_kimg + transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = math.log2(resolution) - math.floor(math.log2(initial_resolution)) - phase_idx
    if transition_kimg > 0:
        lod -= max(phase_kimg - training_kimg, 0.0) / transition_kimg
    return max(lod, 0.0)


def lod_changed(prev_lod: float | None, lod: float) -> bool:
    """Whether the optimizers start afresh: ``floor`` or ``ceil`` of ``lod`` differs from the previous one's."""
    if prev_lod is None:
        return True
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def process_reals(img: Tensor, lod: float) -> Tensor:
    """Real images ``[N, C, R, R]`` as the network sees them at ``lod`` (NVIDIA's ``process_reals``).

    Box-filtered to ``R / 2**floor(lod)``, faded towards their 2x2 box average by ``lod - floor(lod)``, and
    repeated back to ``R x R``. ``lod = 0`` returns ``img`` itself.
    """
    if lod <= 0:
        return img
    level = int(math.floor(lod))
    x = img
    for _ in range(level):
        x = F.avg_pool2d(x, 2)
    frac = lod - level
    if frac > 0:
        y = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
        x = torch.lerp(x, y, frac)
    if level > 0:
        x = F.interpolate(x, scale_factor=float(2**level), mode="nearest")
    return x
