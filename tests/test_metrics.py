"""Latent-space metrics: known answers for PPL, linear separability and DCI / MIG / SAP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab.metrics import dci, disentanglement, linear_separability, mig, ppl, sap
from latentlab.metrics.disentanglement import dci_from_importance
from latentlab.metrics.ppl import box_downsample, face_crop, path_lengths, slerp_unit, summarize
from latentlab.metrics.separability import conditional_entropy, confusion, separability_entropy

from conftest import tiny_G

# ----------------------------------------------------------------------------------------------- PPL


class LinearG(torch.nn.Module):
    """A stand-in generator whose image is a fixed linear function of w = z: ``img = reshape(A @ w)``."""

    def __init__(self, dim=8, res=8, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.A = torch.randn(3 * res * res, dim, generator=g) * 0.1
        self.z_dim = self.w_dim = dim
        self.c_dim, self.num_ws, self.res = 0, 2, res
        self.register_buffer("_w_avg", torch.zeros(dim))

    @property
    def w_avg(self):
        return self._w_avg

    def mapping(self, z, c=None, truncation_psi=1.0):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        return (ws[:, 0] @ self.A.T).reshape(-1, 3, self.res, self.res)


def sq_distance(a, b):
    return (a - b).square().flatten(1).sum(1)


def test_ppl_of_a_linear_generator_is_known_in_w():
    G = LinearG()
    d = path_lengths(G, sq_distance, 40, space="w", sampling="full", crop=False, seed=3, batch_size=16,
                     progress=False)  # fmt: skip
    # by hand: the same draws, then ||A (w1 - w0)||² for every pair, whatever t
    gen = torch.Generator().manual_seed(3)
    z = torch.randn([2 * 40, 8], generator=gen)  # one chunk of draws: z for all 40 pairs, then t
    expect = ((z[1::2] - z[0::2]) @ G.A.T).square().sum(1)
    assert np.allclose(d, expect.numpy(), rtol=2e-3)
    s = summarize(d)
    kept = d[(d >= np.percentile(d, 1, method="lower")) & (d <= np.percentile(d, 99, method="higher"))]
    assert math.isclose(s["mean"], kept.mean()) and s["num_samples"] == 40


def test_ppl_variants_crop_and_registry_names():
    G = tiny_G()
    r = ppl(G, "ppl_zend", num_samples=8, distance=sq_distance, distance_name="sq", batch_size=4, progress=False)
    key = "ppl_zend:sq"  # another distance than LPIPS-VGG is named in the key
    assert set(r) == {key} | {f"{key}/{k}" for k in ("p1", "p50", "p99", "ci_lo", "ci_hi", "num_samples")}
    assert 0 < r[f"{key}/ci_lo"] <= r[key] <= r[f"{key}/ci_hi"]
    again = ppl(G, "ppl_zend", num_samples=8, distance=sq_distance, batch_size=8, progress=False)
    assert math.isclose(again["ppl_zend:custom"], r[key], rel_tol=1e-3)  # batch size does not matter
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(face_crop(img), img[:, :, 3:7, 2:6])
    big = torch.randn(1, 3, 512, 512)
    assert torch.allclose(box_downsample(big)[0, :, 0, 0], big[0, :, :2, :2].mean(dim=(1, 2)))
    with pytest.raises(ValueError, match="unknown PPL variant"):
        ppl(G, "ppl_xyz", distance=sq_distance)


def test_summarize_bootstrap_interval_covers_the_mean_with_the_expected_width():
    d = np.random.default_rng(0).normal(5.0, 1.0, 10_000)
    s = summarize(d)
    width = s["ci_hi"] - s["ci_lo"]
    # the trimmed mean's standard error is a little under 1/sqrt(n) = 0.01; a 95% interval is ~3.9 of them
    assert s["ci_lo"] < 5.0 < s["ci_hi"] and 0.03 < width < 0.045
    assert summarize(d, seed=0) == s  # seeded


def test_classifier_distance_is_lpips_formula_on_the_stages():
    from latentlab.data.classifier import ClassifierConfig, FactorClassifier
    from latentlab.metrics.ppl import classifier_distance

    torch.manual_seed(0)
    clf = FactorClassifier(ClassifierConfig(resolution=16, channels=(4, 8), feature_dim=8)).eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1, torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    dist = classifier_distance(clf)
    with torch.no_grad():
        got = dist(a, b)
        expect = torch.zeros(3)
        for stage in (1, 2):  # by hand: the trunk up to the end of each stage (6 modules per stage)
            fa, fb = clf.trunk[: 6 * stage](a), clf.trunk[: 6 * stage](b)
            assert fa.shape == (3, 4 * stage, 16 // 2**stage, 16 // 2**stage)
            fa, fb = fa / fa.norm(dim=1, keepdim=True), fb / fb.norm(dim=1, keepdim=True)
            expect += (fa - fb).square().sum(1).mean((1, 2))
        assert torch.allclose(got, expect, atol=1e-5)
        assert torch.allclose(dist(a, a), torch.zeros(3)) and torch.allclose(dist(b, a), got, atol=1e-6)
        # other sizes are resized to the classifier's resolution first
        assert torch.allclose(dist(a.repeat_interleave(2, -1).repeat_interleave(2, -2),
                                   b.repeat_interleave(2, -1).repeat_interleave(2, -2)), got, atol=1e-5)


def test_slerp_unit_is_on_the_sphere_and_hits_the_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    for t in (0.0, 0.3, 1.0):
        s = slerp_unit(a, b, torch.full([5, 1], t))
        assert torch.allclose(s.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.zeros(5, 1)), a / a.norm(dim=-1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp_unit(a, b, torch.ones(5, 1)), b / b.norm(dim=-1, keepdim=True), atol=1e-5)


# ----------------------------------------------------------------------------------------------- separability


def test_conditional_entropy_known_values():
    assert conditional_entropy(confusion([0, 0, 1, 1], [0, 0, 1, 1])) == 0.0  # the side gives the label
    assert math.isclose(conditional_entropy(np.ones((2, 2))), 1.0)  # independent fair coins: one bit
    assert math.isclose(conditional_entropy([[0.5, 0.0], [0.25, 0.25]]), 0.5)


def test_perfectly_separable_labels_have_zero_entropy_and_random_ones_one_bit():
    g = np.random.default_rng(0)
    codes = g.normal(size=(2000, 6))
    codes = codes[np.abs(codes[:, 2] - 0.1) > 0.3]  # a clear margin around the true plane
    assert separability_entropy(codes, codes[:, 2] > 0.1) == 0.0
    assert separability_entropy(codes, g.random(len(codes)) > 0.5) > 0.95


def test_linear_separability_end_to_end_on_a_tiny_generator():
    G = tiny_G()
    scorer = lambda im: {"bright": im.mean(dim=(1, 2, 3)) - 0.0, "noise": torch.randn(im.shape[0])}  # noqa: E731
    torch.manual_seed(0)  # the "noise" attribute draws from the global RNG; the metric itself does not
    r = linear_separability(G, scorer, num_samples=600, seed=1, progress=False)
    assert set(r) >= {"ls_z", "ls_w", "entropy_w/bright", "entropy_z/noise"}
    assert r["num_keep"] == 300
    assert r["entropy_w/bright"] < 0.6 < r["entropy_w/noise"]  # a real attribute separates, noise does not
    assert math.isclose(r["ls_w"], 2 ** (r["entropy_w/bright"] + r["entropy_w/noise"]))
    with pytest.raises(ValueError, match="num_keep"):
        linear_separability(G, scorer, num_samples=10, num_keep=20, progress=False)


# ----------------------------------------------------------------------------------------------- DCI / MIG / SAP


def _factors(n=3000, k=4, seed=0):
    g = np.random.default_rng(seed)
    return g.uniform(-1, 1, size=(n, k)), g


def test_a_latent_equal_to_the_factors_scores_near_one():
    f, _ = _factors()
    r = disentanglement(f, f)
    for key in ("dci_disentanglement", "dci_completeness", "dci_informativeness", "mig", "sap"):
        assert r[key] > 0.9, (key, r[key])


def test_a_random_latent_scores_near_zero():
    f, g = _factors()
    codes = g.normal(size=(f.shape[0], 6))
    r = disentanglement(codes, f)
    assert r["dci_informativeness"] < 0.05 and r["mig"] < 0.05 and r["sap"] < 0.05


def test_a_rotated_latent_is_informative_but_entangled():
    f, g = _factors(k=2)
    R = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    r = disentanglement(f @ R, f)
    assert r["dci_informativeness"] > 0.9
    assert r["dci_disentanglement"] < 0.3 and r["mig"] < 0.3 and r["sap"] < 0.1


def test_dci_importance_known_answers_and_errors():
    assert dci_from_importance(np.eye(3)) == {"dci_disentanglement": 1.0, "dci_completeness": 1.0}
    even = dci_from_importance(np.ones((3, 3)))
    assert even["dci_disentanglement"] < 1e-9 and even["dci_completeness"] < 1e-9
    with pytest.raises(ValueError, match="same N"):
        dci(np.zeros((20, 2)), np.zeros((19, 2)))
    with pytest.raises(ValueError, match="at least 10"):
        mig(np.zeros((5, 2)), np.zeros((5, 2)))
    f, _ = _factors(n=200, k=2)
    assert sap(f, f)["sap"] > 0.95


# ----------------------------------------------------------------------------------------------- registry + CLI


def test_cli_metrics_end_to_end_on_a_tiny_network(tiny_ckpt, tmp_path):
    import json

    from click.testing import CliRunner

    from latentlab.cli import cli
    from latentlab.data.classifier import ClassifierConfig, FactorClassifier, save_classifier

    torch.manual_seed(0)
    small = ClassifierConfig(resolution=16, channels=(8, 16), feature_dim=16)
    clf = save_classifier(tmp_path / "clf.safetensors", FactorClassifier(small))
    args = ["metrics", "--network", str(tiny_ckpt[0]), "--metrics", "ppl_wend,ppl_zend,ls_w,ls_z,dci,mig_z",
            "--num", "40", "--classifier", str(clf), "--random-lpips", "--json", str(tmp_path / "m.json"),
            "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "RANDOM VGG" in r.output and "ppl_wend:lpips-vgg-random" in r.output
    report = json.loads((tmp_path / "m.json").read_text())
    res = report["results"]
    for key in ("ppl_wend:lpips-vgg-random", "ppl_zend:lpips-vgg-random", "ls_w", "ls_z", "dci_disentanglement",
                "dci_completeness", "mig_z"):  # fmt: skip
        assert key in res and math.isfinite(res[key])
    assert res["ls_w"] >= 1 and res["ppl_wend:lpips-vgg-random"] > 0
    assert report["protocol"]["num"] == 40 and report["protocol"]["ppl_distance"] == "lpips-vgg-random"
    assert set(report["versions"]) >= {"latentlab", "torch", "scikit-learn"}
    stand_in = CliRunner().invoke(cli, ["metrics", "--network", str(tiny_ckpt[0]), "--metrics", "ppl_wend",
                                        "--num", "8", "--classifier", str(clf), "--ppl-distance", "classifier",
                                        "--json", str(tmp_path / "c.json"), "--no-progress"])  # fmt: skip
    assert stand_in.exit_code == 0, stand_in.output
    assert "offline stand-in" in stand_in.output
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["results"]["ppl_wend:classifier"] > 0 and report["protocol"]["ppl_distance"] == "classifier"
    both = CliRunner().invoke(cli, ["metrics", "--network", str(tiny_ckpt[0]), "--metrics", "ppl_wend",
                                    "--random-lpips", "--ppl-distance", "classifier"])  # fmt: skip
    assert both.exit_code != 0 and "does not combine" in both.output
    bad = CliRunner().invoke(cli, ["metrics", "--network", str(tiny_ckpt[0]), "--metrics", "fid50k"])
    assert bad.exit_code != 0 and "unknown metric 'fid50k'" in bad.output
    offline = CliRunner().invoke(cli, ["metrics", "--network", str(tiny_ckpt[0]), "--metrics", "ppl_wend",
                                       "--no-download"])  # fmt: skip
    assert offline.exit_code == 1 and "vgg16" in offline.output.lower()
    r = CliRunner().invoke(cli, ["metrics", "--help"])
    assert "Example" in r.output and "latentlab metrics" in r.output


def test_protocol_one_projects_renders_with_their_true_factors():
    from latentlab.data.synthfaces import render_item
    from latentlab.metrics.disentanglement import projected_factors

    G = tiny_G()
    codes, factors, names = projected_factors(G, 3, space="w+", steps=3, loss="mse", progress=False)
    assert codes.shape == (3, G.num_ws * G.w_dim) and factors.shape == (3, len(names)) == (3, 11)
    _, face = render_item(2, 16, seed=4242)
    assert np.allclose(factors[2], [getattr(face, n) for n in names])
    w, _, _ = projected_factors(G, 2, space="w", steps=3, loss="mse", progress=False)
    assert w.shape == (2, G.w_dim)


def test_reconstruction_of_a_projection_folder_matches_the_summary(tiny_ckpt, tmp_path):
    import json

    from click.testing import CliRunner
    from PIL import Image

    from latentlab.cli import cli

    g = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(g.integers(0, 255, (20, 16, 3), dtype=np.uint8)).save(tmp_path / f"img{k}.png")
    net = str(tiny_ckpt[0])
    r = CliRunner().invoke(cli, ["project", str(tmp_path / "img0.png"), str(tmp_path / "img1.png"), "--network", net,
                                 "--outdir", str(tmp_path / "proj"), "--steps", "5", "--loss", "mse", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["metrics", "--network", net, "--projections", str(tmp_path / "proj"), "--no-download",
                                 "--json", str(tmp_path / "rec.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "PSNR and SSIM only" in r.output and "mean of 2" in r.output
    rec = json.loads((tmp_path / "rec.json").read_text())
    summary = json.loads((tmp_path / "proj" / "summary.json").read_text())
    by_name = {row["name"]: row for row in summary["results"]}
    for row in rec["rows"]:
        want = by_name[row["name"]]
        assert math.isclose(row["psnr"], want["psnr"], rel_tol=1e-6) and math.isclose(row["ssim"], want["ssim"])
    r = CliRunner().invoke(cli, ["metrics", "--network", net, "--projections", str(tmp_path)])
    assert r.exit_code == 1 and "no projection codes" in r.output


# ----------------------------------------------------------------------------------------------- FID / KID


def test_fid_and_kid_are_zero_for_a_set_with_itself_and_grow_with_a_shift():
    from latentlab.metrics.fid import fid_from_features, kid_from_features

    x = np.random.default_rng(0).normal(size=(600, 16))
    assert fid_from_features(x, x) < 1e-6
    shifts = [fid_from_features(x, x + s) for s in (0.5, 1.0)]
    assert math.isclose(shifts[0], 16 * 0.25, rel_tol=1e-6) and math.isclose(shifts[1], 16.0, rel_tol=1e-6)
    y = np.random.default_rng(1).normal(size=(600, 16))
    same, moved = kid_from_features(x, y, num_subsets=10), kid_from_features(x, y + 1.0, num_subsets=10)
    assert abs(same) < 0.05 < moved


def test_fid_inception_loads_weights_from_a_file_and_checks_the_checksum(tmp_path):
    from latentlab.metrics.fid import features
    from latentlab.perceptual import FIDInception, WeightsUnavailable

    torch.manual_seed(0)
    net = FIDInception(random=True)
    imgs = torch.rand(2, 3, 32, 32) * 2 - 1
    f = features(net, [imgs[:1], imgs[1:]])
    assert f.shape == (2, 2048) and np.isfinite(f).all()
    from torchvision.models import inception_v3

    ref = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    with pytest.raises(WeightsUnavailable, match="does not start with 6726825d"):
        FIDInception(weights=tmp_path / "w.pth")
    loaded = FIDInception(weights=tmp_path / "w.pth", verify=False)
    assert torch.equal(loaded.layers[0].conv.weight, ref.Conv2d_1a_3x3.conv.weight)
    with pytest.raises(WeightsUnavailable, match="pt_inception-2015-12-05-6726825d.pth"):
        FIDInception()  # nothing in the (empty) torch hub cache of the tests


def test_fid_blocks_rewire_torchvisions_branches_exactly():
    import torch.nn.functional as F
    from torchvision.models.inception import InceptionA, InceptionC, InceptionE

    from latentlab.perceptual.inception import _FIDMixed

    torch.manual_seed(0)
    blocks = ((InceptionA(16, pool_features=8), 16), (InceptionC(24, channels_7x7=8), 24), (InceptionE(16), 16))
    for block, ch in blocks:
        block.eval()
        x = torch.randn(2, ch, 9, 9)
        same_pool = _FIDMixed(block, lambda t: F.avg_pool2d(t, 3, stride=1, padding=1))
        assert torch.allclose(same_pool(x), block(x), atol=1e-6)  # torchvision's own pool: identical output
        tf_pool = _FIDMixed(block, lambda t: F.avg_pool2d(t, 3, stride=1, padding=1, count_include_pad=False))
        assert not torch.allclose(tf_pool(x), block(x), atol=1e-6)  # the FID graph's pool differs at borders


def test_fid_kid_of_a_generator_against_a_folder_with_a_random_inception(tiny_ckpt, tmp_path):
    from PIL import Image

    from latentlab import load_generator
    from latentlab.metrics.registry import Context, compute
    from latentlab.perceptual import FIDInception

    g = np.random.default_rng(0)
    (tmp_path / "real").mkdir()
    for k in range(6):
        Image.fromarray(g.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "real" / f"{k}.png")
    G = load_generator(tiny_ckpt[0])
    torch.manual_seed(0)
    ctx = Context(num=6, batch_size=4, data=str(tmp_path / "real"), fid_model=FIDInception(random=True),
                  progress=False)  # fmt: skip
    r = compute(["fid", "kid"], G, ctx)["results"]
    assert r["fid"] > 0 and math.isfinite(r["kid"]) and r["fid/num_real"] == 6
    with pytest.raises(ValueError, match="--data"):
        compute(["fid"], G, Context(num=6, fid_model=ctx.fid_model, progress=False))


def test_fd_classifier_is_the_offline_stand_in_and_named_so():
    from latentlab.data.classifier import ClassifierConfig, FactorClassifier
    from latentlab.metrics.registry import Context, compute

    torch.manual_seed(0)
    clf = FactorClassifier(ClassifierConfig(resolution=16, channels=(8, 16), feature_dim=16)).eval()
    r = compute(["fd_classifier"], tiny_G(), Context(num=20, classifier=clf, progress=False))["results"]
    assert set(r) == {"fd_classifier", "fd_classifier/real_vs_real"}
    assert r["fd_classifier"] > r["fd_classifier/real_vs_real"] >= 0  # an untrained G is far from real renders


def test_metrics_with_the_real_weights_use_the_papers_distances(real_weights, tiny_ckpt, tmp_path):
    """With the packages' weights installed: PPL is LPIPS-VGG's (its key carries no stand-in's name), fid and kid
    run on the TF-FID Inception, and a projection folder's reconstruction reports LPIPS."""
    import json

    from click.testing import CliRunner
    from PIL import Image

    from latentlab.cli import cli

    g = np.random.default_rng(0)
    (tmp_path / "real").mkdir()
    for k in range(6):
        Image.fromarray(g.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "real" / f"{k}.png")
    net = str(tiny_ckpt[0])
    r = CliRunner().invoke(cli, ["metrics", "--network", net, "--metrics", "ppl_wend,fid,kid", "--num", "6",
                                 "--batch", "3", "--data", str(tmp_path / "real"), "--no-progress", "--json",
                                 str(tmp_path / "m.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "m.json").read_text())
    res = report["results"]
    assert "ppl_wend" in res and res["ppl_wend"] > 0 and report["protocol"]["ppl_distance"] == "lpips-vgg"
    assert res["fid"] > 0 and math.isfinite(res["kid"]) and res["fid/num_real"] == 6
    r = CliRunner().invoke(cli, ["project", str(tmp_path / "real" / "0.png"), "--network", net, "--outdir",
                                 str(tmp_path / "proj"), "--steps", "3", "--loss", "mse", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "proj" / "summary.json").read_text())
    assert 0 < summary["results"][0]["lpips"] < 2  # the summary's LPIPS column, from the package's VGG16
    r = CliRunner().invoke(cli, ["metrics", "--network", net, "--projections", str(tmp_path / "proj")])
    assert r.exit_code == 0 and "LPIPS" in r.output and "PSNR and SSIM only" not in r.output
    assert float(r.output.split("LPIPS ")[-1].split()[0]) == pytest.approx(summary["results"][0]["lpips"], abs=1e-3)
