"""Edit operations and directions: known answers on synthetic codes, shapes and errors, files."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from latentlab.edit import (
    Direction,
    condition,
    edit,
    fit_direction,
    fit_directions,
    interpolate,
    layer_indices,
    lerp,
    load_direction,
    mix,
    mix_grid,
    model_fingerprint,
    noise_variation,
    parse_alphas,
    pca_directions,
    replay_codes,
    sample_scores,
    save_direction,
    sefa_directions,
    slerp,
)
from latentlab.edit.directions import BLOCK, block_z, select_extremes, style_weights
from latentlab.validate import InvalidInput

from conftest import tiny_G


def _ws(n=3, num_ws=8, dim=16, seed=0):
    return torch.randn([n, num_ws, dim], generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------- layers


def test_layer_indices_names_ranges_and_errors():
    assert layer_indices("coarse", 10) == [0, 1, 2, 3]  # 4x4 and 8x8
    assert layer_indices("middle", 10) == [4, 5, 6, 7]  # 16 and 32
    assert layer_indices("fine", 10) == [8, 9]  # 64
    assert layer_indices("coarse+fine", 10) == [0, 1, 2, 3, 8, 9]
    assert layer_indices("0-2,5", 10) == [0, 1, 2, 5]
    assert layer_indices(None, 4) == layer_indices("all", 4) == [0, 1, 2, 3]
    assert layer_indices(slice(1, 3), 6) == [1, 2] and layer_indices([3, 1, 3], 6) == [1, 3]
    with pytest.raises(ValueError, match="out of range for a generator with 6"):
        layer_indices("4-7", 6)
    with pytest.raises(ValueError, match="unknown layer selection 'hair'"):
        layer_indices("hair", 6)
    with pytest.raises(ValueError, match="names no layer"):
        layer_indices("fine", 6)  # a 16x16 generator has no 64 px layers
    with pytest.raises(ValueError, match="runs backwards"):
        layer_indices("5-2", 8)


# ----------------------------------------------------------------------------------------------- ops


def test_edit_moves_exactly_the_chosen_layers_by_alpha():
    ws, n = _ws(), torch.nn.functional.normalize(torch.randn(16), dim=0)
    out = edit(ws, n, 2.5, layers="0-2")
    assert torch.allclose(out[:, :3] - ws[:, :3], (2.5 * n).expand(3, 3, 16), atol=1e-6)
    assert torch.equal(out[:, 3:], ws[:, 3:])
    per_code = edit(ws, n, torch.tensor([0.0, 1.0, -1.0]))
    assert torch.equal(per_code[0], ws[0]) and torch.allclose(per_code[2] - ws[2], -n.expand(8, 16), atol=1e-6)
    assert torch.allclose(edit(ws[:, 0], n, 1.0), ws[:, 0] + n)  # single codes [N, dim]
    with pytest.raises(ValueError, match="has 16 dimensions but the codes have 12"):
        edit(torch.zeros(2, 8, 12), n, 1.0)
    with pytest.raises(ValueError, match="alpha must be a number or"):
        edit(ws, n, torch.zeros(2))
    with pytest.raises(ValueError, match="layers= applies to W\\+ codes"):
        edit(ws[:, 0], n, 1.0, layers="coarse")


def test_edit_checks_the_direction_space_and_uses_its_layers():
    ws = _ws()
    z_dir = Direction(torch.randn(16), "smile", space="z", method="svm")
    with pytest.raises(ValueError, match="was fitted in Z and moves z codes"):
        edit(ws, z_dir, 1.0)
    one_layer = Direction(torch.randn(16), "smile", space="w+", method="svm", layers=[5])
    out = edit(ws, one_layer, 1.0)
    moved = (out - ws).abs().sum(dim=(0, 2)) > 0
    assert moved.tolist() == [i == 5 for i in range(8)]


def test_mix_takes_exactly_the_chosen_layers():
    a, b = _ws(seed=1), _ws(seed=2)
    m = mix(a, b, "middle")
    assert torch.equal(m[:, 4:8], b[:, 4:8]) and torch.equal(m[:, :4], a[:, :4])
    assert torch.equal(mix(a, b[:1], [0])[:, 0], b[:1, 0].expand(3, -1))  # one B broadcast
    g = mix_grid(a, b[:2], "coarse")
    assert g.shape == (2, 3, 8, 16)
    assert torch.equal(g[1, 2, :4], b[1, :4]) and torch.equal(g[1, 2, 4:], a[2, 4:])
    with pytest.raises(ValueError, match="different generators"):
        mix(a, torch.zeros(3, 6, 16), "coarse")
    with pytest.raises(ValueError, match="cannot pair"):
        mix(a, _ws(n=2), "coarse")


def test_slerp_stays_on_the_sphere_and_interpolate_hits_both_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 64, generator=g), torch.randn(5, 64, generator=g)
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)
    path = interpolate(a, b, 9, "slerp")
    assert path.shape == (9, 5, 64)
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=-1).expand(9, -1), rtol=1e-5)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    # the angle moves linearly: the midpoint is equally far from both ends
    mid = path[4]
    assert torch.allclose((mid * a).sum(-1), (mid * b).sum(-1), rtol=1e-4, atol=1e-4)
    lin = interpolate(a, b, 3, "lerp")
    assert torch.allclose(lin[1], (a + b) / 2)
    assert torch.allclose(slerp(a, a, torch.tensor(0.3)), a, atol=1e-5)  # parallel: no plane, no NaN
    with pytest.raises(ValueError, match="one shape"):
        interpolate(a, b[:2], 3)
    with pytest.raises(ValueError, match="'lerp' or 'slerp'"):
        interpolate(a, b, 3, "cubic")


def test_lerp_is_exact_at_both_ends():
    """``a + 1 * (b - a)`` rounds away from ``b`` for some floats; the editor's interpolation slider at t = 1
    must render the other code's pixels exactly."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(64, 10, 256, generator=g) * 3, torch.randn(64, 10, 256, generator=g) * 3
    assert not torch.equal(a + 1.0 * (b - a), b)  # the naive form does miss
    assert torch.equal(lerp(a, b, torch.tensor(1.0)), b) and torch.equal(lerp(a, b, 0.0), a)
    t = torch.tensor([0.0, 0.25, 1.0]).reshape(3, 1, 1, 1)
    out = lerp(a[:1], b[:1], t)
    assert torch.equal(out[0, 0], a[0]) and torch.equal(out[2, 0], b[0])
    assert torch.allclose(out[1, 0], a[0] + 0.25 * (b[0] - a[0]), atol=1e-6)


def test_parse_alphas():
    assert parse_alphas("-3:3:7") == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert parse_alphas("-2,0,2.5") == [-2.0, 0.0, 2.5]
    for bad in ("a:b", "1:2", "x", "1:2:3.5"):
        with pytest.raises(ValueError, match="start:stop:count"):
            parse_alphas(bad)
    for bad, why in [("0:1:0", "number of alphas must be >= 1"), ("-3:3:100000000", "<= 1000, got 100000000"),
                     ("nan:1:3", "alpha must be a finite number, got nan"), ("1,inf", "finite"),
                     ("1e38,0", "alpha must be >= -1000 and <= 1000")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=why):
            parse_alphas(bad)


def test_noise_variation_follows_the_chosen_layers():
    G = tiny_G()
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))
    images, std = noise_variation(G, ws, draws=6, layers="coarse", seed=1)
    assert images.shape == (2, 6, 3, 16, 16) and std.shape == (2, 16, 16)
    assert std.mean() > 1e-3
    again, _ = noise_variation(G, ws[1:], draws=6, layers="coarse", seed=2)  # code 1 alone, same generator
    assert torch.allclose(again[0], images[1], atol=1e-5)
    with torch.no_grad():
        for _, layer in G.synthesis.noise_layers():
            layer.noise_strength.zero_()
    _, flat = noise_variation(G, ws, draws=3)
    assert flat.abs().max() < 1e-6  # no noise strength, no variation


# ----------------------------------------------------------------------------------------------- fitting


def _linear_problem(n=4000, dim=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
    codes = torch.randn(n, dim, generator=g) * 0.7 + 0.3
    return codes, codes @ axis, axis


@pytest.mark.parametrize("method", ["svm", "logistic"])
def test_fitted_normal_matches_the_true_axis(method):
    codes, scores, axis = _linear_problem()
    d = fit_direction(codes, scores, attribute="t", ratio=0.1, method=method, seed=0)
    assert d.vector @ axis > 0.97  # positive: points towards higher scores
    assert d.accuracy == 1.0
    assert d.extra["positives"] == d.extra["negatives"] == 400
    assert abs(d.std - (codes @ d.vector).std().item()) < 1e-5
    labels = (scores > scores.median()).float()
    d2 = fit_direction(codes, labels, ratio=None, method=method)
    assert d2.vector @ axis > 0.97 and d2.accuracy > 0.95


def test_fit_direction_errors():
    codes, scores, _ = _linear_problem(n=50)
    with pytest.raises(ValueError, match="50 codes but 49 scores"):
        fit_direction(codes, scores[:49])
    with pytest.raises(ValueError, match="must be 0/1 labels"):
        fit_direction(codes, scores, ratio=None)
    with pytest.raises(ValueError, match="codes \\[N, dim\\]"):
        fit_direction(codes[None], scores)
    with pytest.raises(ValueError, match="at least 2 positives"):
        fit_direction(codes, torch.zeros(50).index_fill(0, torch.tensor([3]), 1), ratio=None)
    with pytest.raises(ValueError, match="method must be"):
        fit_direction(codes, scores, method="tree")


def test_select_extremes_takes_the_ends():
    s = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 0.0, 6.0, 4.0])
    pos, neg = select_extremes(s, 0.2)
    assert sorted(s[pos].tolist()) == [8.0, 9.0] and sorted(s[neg].tolist()) == [0.0, 1.0]


@pytest.mark.parametrize("k", [1, 3])
def test_conditional_direction_is_orthogonal_to_its_conditions(k):
    g = torch.Generator().manual_seed(k)
    n = Direction(torch.randn(32, generator=g), "smile", "w", "svm")
    conds = [Direction(torch.randn(32, generator=g), f"c{i}", "w", "svm") for i in range(k)]
    out = condition(n, conds)
    assert abs(out.vector.norm().item() - 1) < 1e-6
    for c in conds:
        assert abs(float(out.vector @ c.vector)) < 1e-5
    assert out.conditioned_on == tuple(f"c{i}" for i in range(k)) and out.name.startswith("smile|c0")
    if k == 1:  # InterFaceGAN's one-condition formula
        c = conds[0].vector
        expect = n.vector - (n.vector @ c) * c
        assert torch.allclose(out.vector, expect / expect.norm(), atol=1e-6)


def test_condition_errors():
    n = Direction(torch.tensor([1.0, 1.0, 0.0]), "a", "w", "svm")
    with pytest.raises(ValueError, match="lies in the span"):
        condition(n, [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])])
    with pytest.raises(ValueError, match="different spaces"):
        condition(n, [Direction(torch.tensor([0.0, 0.0, 1.0]), "b", "z", "svm")])
    with pytest.raises(ValueError, match="4 dimensions"):
        condition(n, [torch.ones(4)])


def test_conditional_fit_reduces_the_condition_component():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(6000, 16, generator=g)
    a, b = torch.zeros(16), torch.zeros(16)
    a[0], b[0], b[1] = 1.0, 0.8, 0.6  # the two attributes share code axis 0
    cond = fit_direction(codes, codes @ b, attribute="b", ratio=0.05)
    plain = fit_direction(codes, codes @ a, attribute="a", ratio=0.05)
    cond_a = fit_direction(codes, codes @ a, attribute="a", ratio=0.05, conditions=[cond])
    assert abs(float(cond_a.vector @ cond.vector)) < 1e-5 < abs(float(plain.vector @ cond.vector))
    assert cond_a.accuracy > 0.9 and cond_a.extra["accuracy_unconditioned"] == plain.accuracy


def test_sampling_is_memory_bounded_and_replays_exactly():
    G = tiny_G()
    seen = []

    def scorer(images):  # also records the images, to check the replayed codes render them
        seen.append(images)
        return {"bright": images.mean(dim=(1, 2, 3)), "red": images[:, 0].mean(dim=(1, 2))}

    scores = sample_scores(G, scorer, 150, seed=4, batch_size=64, progress=False)
    assert set(scores) == {"bright", "red"} and scores["bright"].shape == (150,)
    again = sample_scores(G, lambda im: im.mean(dim=(1, 2, 3)), 150, seed=4, batch_size=7, progress=False)
    assert torch.allclose(again["score"], scores["bright"], atol=1e-5)  # batch size does not matter
    idx = [149, 3, 77]
    w = replay_codes(G, idx, seed=4)
    with torch.no_grad():
        img = G.synthesis(w[:, None].repeat(1, G.num_ws, 1), noise_mode="const")
    assert torch.allclose(img.mean(dim=(1, 2, 3)), scores["bright"][idx], atol=1e-4)
    z = replay_codes(G, idx, seed=4, space="z")
    assert torch.equal(z[0], block_z(G.z_dim, 4, 0)[149]) and BLOCK > 149
    mixed = replay_codes(G, idx, seed=4, space="w+", layer=2)
    assert not torch.allclose(mixed, w)  # layer 2 comes from the second draw
    with pytest.raises(ValueError, match="give layer="):
        replay_codes(G, idx, space="w+")


def test_fit_directions_end_to_end_on_a_tiny_generator():
    G = tiny_G()
    scorer = lambda im: {"bright": im.mean(dim=(1, 2, 3)), "red": im[:, 0].mean(dim=(1, 2))}  # noqa: E731
    out = fit_directions(G, ["bright"], scorer, num_samples=1500, ratio=0.1, conditions={"bright": ["red"]},
                         model="tiny", progress=False)  # fmt: skip
    assert set(out) == {"bright", "bright|red"}
    d = out["bright"]
    assert d.accuracy > 0.85 and d.num_samples == 1500 and d.model_hash == model_fingerprint(G)
    assert abs(float(out["bright|red"].vector @ fit_directions(
        G, ["red"], scorer, num_samples=1500, ratio=0.1, progress=False)["red"].vector)) < 1e-5
    ws = G.mapping(torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(9)))
    with torch.no_grad():
        lo = G.synthesis(edit(ws, d, -2 * d.std), noise_mode="const").mean(dim=(1, 2, 3))
        hi = G.synthesis(edit(ws, d, 2 * d.std), noise_mode="const").mean(dim=(1, 2, 3))
    assert (hi > lo).float().mean() > 0.9  # the direction does what it was fitted for
    with pytest.raises(ValueError, match="gives no 'blue'"):
        fit_directions(G, ["blue"], scorer, num_samples=100, progress=False)


# ----------------------------------------------------------------------------------------------- unsupervised


def test_pca_matches_numpy_on_the_same_samples():
    G = tiny_G()
    comps = pca_directions(G, num_samples=3000, components=3, seed=5, batch_size=1000, progress=False)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        w = torch.cat([G.mapping(torch.randn(1000, G.z_dim, generator=gen))[:, 0] for _ in range(3)]).double()
    evals, evecs = np.linalg.eigh(np.cov(w.numpy().T))
    for k, d in enumerate(comps):
        ref = torch.from_numpy(evecs[:, -1 - k]).float()
        assert abs(float(d.vector @ ref)) > 0.999
        assert math.isclose(d.std, math.sqrt(evals[-1 - k]), rel_tol=1e-4)
        assert d.vector[d.vector.abs().argmax()] > 0  # fixed sign
    assert comps[0].extra["explained_variance"] > comps[1].extra["explained_variance"]


def test_sefa_is_the_eigenbasis_of_the_normalised_style_weights():
    G = tiny_G()
    idx, A = style_weights(G, "coarse")
    assert idx == [0, 1, 2, 3] and A.shape[0] == G.w_dim
    An = A / A.norm(dim=0, keepdim=True)
    dirs = sefa_directions(G, "coarse", components=4)
    energies = [float((An.T @ d.vector).norm() ** 2) for d in dirs]
    assert energies == sorted(energies, reverse=True)
    assert math.isclose(energies[0], dirs[0].extra["eigenvalue"], rel_tol=1e-4)
    assert math.isclose(energies[0], float(torch.linalg.eigvalsh(An.double() @ An.double().T)[-1]), rel_tol=1e-4)
    assert dirs[0].layers == (0, 1, 2, 3) and dirs[0].method == "sefa"
    raw = sefa_directions(G, "coarse", components=1, normalize=False)[0]
    assert raw.method == "sefa-raw" and abs(float(raw.vector @ dirs[0].vector)) < 0.9999
    _, all_layers = style_weights(G, None)  # the last code drives the last ToRGB
    assert all_layers.shape[1] == A.shape[1] + sum(
        G.synthesis.noise_layers()[i][1].affine.weight.shape[0] for i in range(4, G.num_ws - 1)
    ) + G.synthesis.blocks()[-1].torgb.affine.weight.shape[0]


# ----------------------------------------------------------------------------------------------- files


def test_direction_files_round_trip_and_bare_interfacegan_npy(tmp_path):
    G = tiny_G()
    d = Direction(torch.randn(G.w_dim), "smile", "w", "svm", model="tiny", model_hash=model_fingerprint(G),
                  num_samples=10, accuracy=0.97, conditioned_on=("glasses",), std=0.5, extra={"ratio": 0.02})
    path = save_direction(d, tmp_path / "smile")
    assert np.load(path).shape == (1, G.w_dim)  # InterFaceGAN's boundary layout
    back = load_direction(tmp_path / "smile.json")
    assert torch.equal(back.vector, d.vector) and back.meta() == d.meta()
    back.check_model(G)
    with pytest.raises(ValueError, match="was fitted on model tiny .* not on other"):
        back.check_model(tiny_G(seed=1), "other")
    np.save(tmp_path / "boundary.npy", np.ones((1, G.w_dim)))
    bare = load_direction(tmp_path / "boundary.npy")
    assert bare.space is None and bare.attribute == "boundary"
    assert math.isclose(bare.vector.norm().item(), 1, rel_tol=1e-6)
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_direction(tmp_path / "bad.npy")
    meta = json.loads((tmp_path / "smile.json").read_text())
    meta["dim"] = 3
    (tmp_path / "smile.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="says dim 3"):
        load_direction(tmp_path / "smile.npy")
    with pytest.raises(FileNotFoundError, match="no direction file"):
        load_direction(tmp_path / "none.npy")
    with pytest.raises(ValueError, match="non-zero"):
        Direction(torch.zeros(4), "x", "w", "svm")


def test_model_fingerprint_tracks_the_weights():
    G = tiny_G()
    same = copy.deepcopy(G)
    assert model_fingerprint(G) == model_fingerprint(same) != model_fingerprint(tiny_G(seed=1))
    with torch.no_grad():
        same.synthesis.noise_layers()[0][1].noise_strength.add_(1)
    assert model_fingerprint(G) != model_fingerprint(same)
