"""More channels for a trained StyleGAN2 generator or discriminator, computing the same function.

A network's channel counts come from ``channel_base`` and ``channel_max`` (``min(channel_base // res,
channel_max)`` feature maps at resolution ``res``). :func:`widen` builds the network of a larger rule and
fills it from a trained one so that, before any training, it computes what the trained one computed
(Net2Net's function-preserving growth, Chen et al. 2016):

* every tensor keeps its trained values in its leading slice;
* a new *output* channel (a new row of a convolution or of a style affine, a new bias) gets the fresh
  network's initialisation: random weights, the usual biases;
* a new *input* channel (a new column of a convolution) gets zero weights, so whatever the new
  feature maps hold, the layers that read them ignore it. A gradient still reaches those zeros (it is the
  output's gradient times the new activations), so training puts the new channels to use;
* the equalized learning rate scales a weight by ``1 / sqrt(fan_in)`` at run time, so a weight whose
  fan-in grows is stored scaled by ``sqrt(new / old)`` to keep its effective value. (The demodulated
  convolutions would cancel the scale anyway; ToRGB and the discriminator's convolutions would not.)

The mapping network, the W+ layers and the noise buffers do not change, so codes, directions and
projections of the trained network stay valid for the widened one. StyleGAN v1 networks (AdaIN's styles
interleave scale and bias) are refused, and so is a discriminator whose 4x4 channels would grow (its
minibatch standard deviation averages over them).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .config import DiscriminatorConfig, GeneratorConfig
from .discriminator import Discriminator
from .generator import Generator

__all__ = ["widen", "widened_config"]


def widened_config(config: GeneratorConfig | DiscriminatorConfig, channel_base: int | None = None,
                   channel_max: int | None = None) -> GeneratorConfig | DiscriminatorConfig:  # fmt: skip
    """``config`` with a new channel rule, checked to have at least as many channels at every resolution.

    Raises:
        ValueError: a StyleGAN v1 config, or a rule that gives fewer channels somewhere (names the resolution).
    """
    if config.arch != "stylegan2":
        raise ValueError(f"widening is implemented for StyleGAN2 networks, not {config.arch}")
    new = dataclasses.replace(config, channel_base=channel_base or config.channel_base,
                              channel_max=channel_max or config.channel_max)  # fmt: skip
    resolutions = [2**i for i in range(2, int(math.log2(config.resolution)) + 1)]
    for res in resolutions:
        old_c, new_c = config.channels(res), new.channels(res)
        if new_c < old_c:
            raise ValueError(f"channel_base {new.channel_base} / channel_max {new.channel_max} gives {new_c} "
                             f"channels at {res}x{res}, fewer than the network's {old_c}; widening only adds "
                             "channels")  # fmt: skip
    if isinstance(config, DiscriminatorConfig) and new.channels(4) != config.channels(4):
        raise ValueError(f"the discriminator's 4x4 channels ({config.channels(4)}) cannot grow: its minibatch "
                         "standard deviation averages over them, so new ones would change its output; keep "
                         f"channel_base / 4 or channel_max at {config.channels(4)} there")  # fmt: skip
    return new


@torch.no_grad()
def widen(net: Generator | Discriminator, channel_base: int | None = None, channel_max: int | None = None,
          seed: int = 0) -> Generator | Discriminator:  # fmt: skip
    """A copy of ``net`` with the channel rule ``channel_base`` / ``channel_max`` (None = unchanged) that
    computes the same images (generator) or logits (discriminator) until it is trained.

    Args:
        net: a StyleGAN2 :class:`Generator` or :class:`Discriminator` (not modified).
        channel_base, channel_max: the new rule; at every resolution it must give at least the old count.
        seed: seeds the new output channels' random weights.
    Returns:
        A new network of the same class on ``net``'s device, in ``net``'s train/eval mode.
    Raises:
        ValueError: a StyleGAN v1 network, a rule that removes channels, or a layout this rule does not cover.
    """
    if isinstance(net, Generator):
        factory = Generator
    elif isinstance(net, Discriminator):
        factory = Discriminator
    else:
        raise TypeError(f"widen takes a Generator or a Discriminator, got {type(net).__name__}")
    config = widened_config(net.config, channel_base, channel_max)
    device = next(net.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = factory(config)
    out = out.to(device).train(net.training).requires_grad_(False)
    old_state = net.state_dict()
    new_state = out.state_dict()
    if set(old_state) != set(new_state):
        raise ValueError(f"widening changed the {factory.__name__}'s tensors: "
                         f"{sorted(set(old_state) ^ set(new_state))[:3]}")  # fmt: skip
    for name, new in new_state.items():
        old = old_state[name].to(device)
        if old.shape == new.shape:
            new.copy_(old)
            continue
        if old.ndim != new.ndim or any(o > n for o, n in zip(old.shape, new.shape, strict=True)):
            raise ValueError(f"{name}: cannot widen {tuple(old.shape)} to {tuple(new.shape)}")
        value = old
        if new.ndim >= 2 and new.shape[1] > old.shape[1]:  # a weight [out, in, ...] whose fan-in grows
            value = old * math.sqrt(new.shape[1] / old.shape[1])
            new[:, old.shape[1]:] = 0
        new[tuple(slice(0, s) for s in old.shape)] = value
    # new_state's tensors are ``out``'s own (state_dict shares their storage), so ``out`` now holds them.
    return out.requires_grad_(any(p.requires_grad for p in net.parameters()))
