"""The droplet measure (metrics/droplets.py): spike ratios with known answers, a planted droplet found where it is,
both families' hook points, the registry name and bad input."""

from __future__ import annotations

import pytest
import torch

from latentlab.metrics.droplets import activation_layers, droplets, magnitude_maps, spike_ratio
from latentlab.metrics.registry import METRICS, Context
from latentlab.nn import Generator, get_preset


def _G(preset: str) -> Generator:
    torch.manual_seed(0)
    return Generator(get_preset(preset).G).eval()


def test_spike_ratio_known_answers():
    m = torch.ones(3, 4, 4)
    m[1, 2, 3] = 20.0
    m[2] = torch.arange(16.0).reshape(4, 4) + 1  # median of 1..16 (torch: the lower middle) = 8
    torch.testing.assert_close(spike_ratio(m), torch.tensor([1.0, 20.0, 2.0]))


@pytest.mark.parametrize("preset", ["stylegan1-tiny", "tiny"])
def test_hook_points_are_the_layers_at_16px_and_up(preset):
    G = _G(preset)
    names = [n for n, _ in activation_layers(G, 16)]
    assert names == ["b16.conv0", "b16.conv1"]
    assert [n for n, _ in activation_layers(G, 4)][:1] == (["b4.conv0"] if preset == "stylegan1-tiny" else ["b4.conv1"])
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)), None)
    maps = magnitude_maps(G, ws)
    assert set(maps) == {"b16.conv0", "b16.conv1"} and maps["b16.conv1"].shape == (2, 16, 16)
    assert (maps["b16.conv1"] >= 0).all()
    assert not G.synthesis.b16.conv1._forward_hooks  # the hooks are gone afterwards


def test_a_planted_droplet_is_found_in_its_images_and_layer():
    G = _G("stylegan1-tiny")
    clean = droplets(G, num_samples=8, batch_size=4, progress=False)
    assert clean["droplets"] == 0.0 and clean["droplets/p99_ratio/16"] < 10

    def plant(_m, _inp, out):
        out = out.clone()
        out[::2, :, 3, 5] = 1000.0  # every other image of each batch
        return out

    handle = G.synthesis.b16.conv1.pre_norm.register_forward_hook(plant)
    try:
        r = droplets(G, num_samples=8, batch_size=4, progress=False)
    finally:
        handle.remove()
    assert r["droplets"] == 0.5 and r["droplets/share/16"] == 0.5
    assert r["droplets/p99_ratio/16"] > 100


def test_registry_name_and_errors():
    G = _G("tiny")
    r = METRICS["droplets"](G, Context(num=4, batch_size=4, progress=False))
    assert set(r) == {"droplets", "droplets/median_ratio/16", "droplets/p99_ratio/16", "droplets/share/16"}
    with pytest.raises(ValueError, match="no synthesis layer at 32 px or above \\(the network is 16 px\\)"):
        droplets(G, num_samples=4, min_resolution=32, progress=False)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        droplets(G, num_samples=0, progress=False)
