"""The SynthFaces factor classifier: targets and decoding, save/load, evaluation, and that training works."""

from __future__ import annotations

import math

import pytest
import torch

from latentlab.data.classifier import (
    ClassifierConfig,
    FactorClassifier,
    evaluate,
    load_classifier_file,
    render_batch,
    save_classifier,
    train_classifier,
)
from latentlab.data.synthfaces import FACTORS, write_dataset
from latentlab.io.checkpoint import CheckpointError

TINY = ClassifierConfig(resolution=32, channels=(8, 16, 32), feature_dim=32)


def test_targets_round_trip_through_decode():
    model = FactorClassifier(TINY)
    f = torch.rand([5, len(FACTORS)])
    f[:, FACTORS.index("yaw")] = f[:, FACTORS.index("yaw")] * 2 - 1
    t = model.targets(f)
    assert t.shape == (5, model.num_outputs) == (5, len(FACTORS) + 2)
    values = model.values(model.decode(t))
    for i, name in enumerate(FACTORS):
        if name in TINY.binary:
            assert torch.equal(values[name], f[:, i])  # logits pass through; the targets are 0/1 already
        else:
            torch.testing.assert_close(values[name], f[:, i], atol=1e-5, rtol=0)


def test_predict_units_and_resizing():
    model = FactorClassifier(TINY)
    out = model.predict(torch.rand([3, 3, 64, 64]) * 2 - 1)  # resized to 32
    assert set(out) == set(FACTORS) and all(v.shape == (3,) for v in out.values())
    assert all(((out[b] > 0) & (out[b] < 1)).all() for b in TINY.binary)
    assert ((out["bg_hue"] >= 0) & (out["bg_hue"] < 1)).all()
    assert model.features(torch.zeros([2, 3, 32, 32])).shape == (2, 32)
    with pytest.raises(ValueError, match="RGB images"):
        model.features(torch.zeros([2, 1, 32, 32]))


def test_travel_known_answers(monkeypatch):
    model = FactorClassifier(TINY)
    values = {"yaw": torch.tensor([-0.5, 0.5, 0.0]), "smile": torch.tensor([0.2, 0.2, 0.2]),
              "glasses": torch.tensor([0.1, 0.9, 0.5]), "bg_hue": torch.tensor([0.95, 0.05, 0.0])}  # fmt: skip
    monkeypatch.setattr(model, "predict", lambda images, batch=256: values)
    travel = model.travel(torch.zeros([3, 3, 32, 32]))
    assert travel["yaw"] == pytest.approx(0.5)  # 1.0 of a range of 2
    assert travel["smile"] == 0 and travel["glasses"] == pytest.approx(0.8)
    assert travel["bg_hue"] == pytest.approx(0.1)  # around the circle: 0.95 -> 0.05, not 0.9
    with pytest.raises(ValueError, match="at least 2 images"):
        model.travel(torch.zeros([1, 3, 32, 32]))


def test_save_load_round_trip(tmp_path):
    model = FactorClassifier(TINY).eval()
    path = save_classifier(tmp_path / "c.safetensors", model, {"note": "x"})
    back = load_classifier_file(path)
    x = torch.rand([2, 3, 32, 32]) * 2 - 1
    for k, v in model(x).items():
        torch.testing.assert_close(back(x)[k], v)
    assert back.meta == {"note": "x"} and back.config == TINY
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable classifier"):
        load_classifier_file(tmp_path / "bad.safetensors")


def test_evaluate_known_answers():
    class Oracle(FactorClassifier):
        def predict(self, images, batch=256):
            return {n: self._truth[:, i] for i, n in enumerate(FACTORS)}

    model = Oracle(TINY)
    f = torch.rand([50, len(FACTORS)])
    f[:, FACTORS.index("glasses")] = (f[:, FACTORS.index("glasses")] > 0.5).float()
    f[:, FACTORS.index("eyes_open")] = (f[:, FACTORS.index("eyes_open")] > 0.5).float()
    model._truth = f
    figs = evaluate(model, torch.zeros([50, 3, 32, 32]), f)
    assert figs["glasses/accuracy"] == 1.0 and figs["yaw/r2"] == pytest.approx(1.0)
    assert figs["bg_hue/mean_error_turns"] == 0.0
    model._truth = f.roll(1, dims=0)  # predictions unrelated to the truth
    figs = evaluate(model, torch.zeros([50, 3, 32, 32]), f)
    assert figs["yaw/r2"] < 0 and figs["bg_hue/mean_error_turns"] > 0.1
    assert math.isfinite(figs["smile/r2"])


def test_training_learns_the_easy_factors(tmp_path):
    data = write_dataset(tmp_path / "d.zip", 600, resolution=32, seed=3, workers=1, progress=False)
    model, figs = train_classifier(data, tmp_path / "c.safetensors", epochs=4, batch=32, lr=3e-3, eval_count=200,
                                   config=TINY, progress=False)  # fmt: skip
    # Colour factors are easy even for a tiny net trained briefly; chance would be R2 ~ 0, error ~ 0.25 turns.
    assert figs["skin_tone/r2"] > 0.6 and figs["bg_light/r2"] > 0.6
    assert figs["bg_hue/mean_error_turns"] < 0.08
    back = load_classifier_file(tmp_path / "c.safetensors")
    assert back.meta["held_out"]["skin_tone/r2"] == pytest.approx(figs["skin_tone/r2"])
    x, f = render_batch(range(4), 32, seed=9)
    assert x.shape == (4, 3, 32, 32) and f.shape == (4, len(FACTORS))


def test_load_classifier_by_path_and_name(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from latentlab import pretrained
    from latentlab.cli import cli

    path = save_classifier(tmp_path / "synthfaces-64-classifier.safetensors", FactorClassifier(TINY))
    assert pretrained.load_classifier(path, device="cpu").config == TINY
    with pytest.raises(FileNotFoundError, match="known: synthfaces-64"):
        pretrained.load_classifier("nope", device="cpu")
    monkeypatch.setattr("latentlab.registry.pretrained_dirs", lambda: [tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="latentlab classifier train"):
        pretrained.load_classifier("synthfaces-64", device="cpu")
    monkeypatch.setattr("latentlab.registry.pretrained_dirs", lambda: [tmp_path])
    assert pretrained.load_classifier("synthfaces-64", device="cpu").config == TINY
    data = write_dataset(tmp_path / "d.zip", 40, resolution=32, workers=1, progress=False)
    r = CliRunner().invoke(cli, ["classifier", "train", "--data", str(data), "--out", str(tmp_path / "c.safetensors"),
                                 "--epochs", "1", "--batch", "16", "--eval-count", "20", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "skin_tone/r2" in r.output and (tmp_path / "c.safetensors").is_file()


def test_the_shipped_classifier_reads_fresh_renders():
    from latentlab.pretrained import load_classifier

    clf = load_classifier("synthfaces-64", device="cpu")
    x, f = render_batch(range(120), 64, seed=5)  # a dataset seed it was neither trained nor evaluated on
    figs = evaluate(clf, x, f)
    # Chance is R2 ~ 0, accuracy ~ the majority rate (0.75 / 0.65), hue error ~ 0.25 turns.
    assert figs["glasses/accuracy"] > 0.95 and figs["eyes_open/accuracy"] > 0.95
    assert min(figs[f"{k}/r2"] for k in ("skin_tone", "hair_color", "bg_light", "light_dir", "roll")) > 0.9
    assert figs["yaw/r2"] > 0.7 and figs["smile/r2"] > 0.5
    assert figs["bg_hue/mean_error_turns"] < 0.03
