"""The editor's app through Starlette's test client: every control against the library's own pipeline, the
exports re-read by the CLI, uploads, projections as server-sent events, fitting in the page, bad input."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from latentlab.cli import cli
from latentlab.edit import edit, mix, truncate
from latentlab.edit.directions import Direction, load_direction
from latentlab.io import load_latents, to_uint8
from latentlab.nn.generator import seed_to_z
from latentlab.serve import Editor, ServedModel, create_app
from latentlab.serve.jobs import ProjectionJob, ProjectRequest
from latentlab.serve.models import CodeStore, Entry

MODEL = "synthfaces-64"


@pytest.fixture(scope="module")
def served() -> ServedModel:
    return ServedModel.load(MODEL, MODEL, pca_samples=2000)


@pytest.fixture
def editor(served) -> Editor:
    return Editor({MODEL: served}, max_jobs=1)


@pytest.fixture
def client(editor) -> TestClient:
    return TestClient(create_app(editor), raise_server_exceptions=False)


def state(**kw) -> dict:
    return {"model": MODEL, "source": {"kind": "seed", "seed": 3}, **kw}


def png(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def reference(G, ws, noise_mode="const", noise=None) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(G.synthesis(ws, noise_mode=noise_mode, noise=noise))[0]


def seed_ws(G, seed: int) -> torch.Tensor:
    with torch.no_grad():
        return G.mapping(seed_to_z(G.z_dim, seed), None)


# ----------------------------------------------------------------------------- the page and the model list


def test_page_and_static_files_and_nothing_else(client):
    page = client.get("/")
    assert page.status_code == 200 and "latentlab editor" in page.text and "/static/app.js" in page.text
    assert "function render()" in client.get("/static/app.js").text
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    for path in ("/static/../app.py", "/static/..%2F..%2Fapp.py", "/static/%2e%2e/models.py", "/static/state.py",
                 "/api/../../etc/passwd", "/etc/passwd"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"error": "not found"}, path


def test_models_lists_layers_directions_and_encoder(client, served):
    info = client.get("/api/models").json()
    assert info["default"] == MODEL and info["max_upload_mb"] == 25
    (m,) = info["models"]
    assert (m["name"], m["resolution"], m["num_ws"], m["encoder"]) == (MODEL, 64, 10, True)
    assert [row["group"] for row in m["layers"]] == ["coarse"] * 4 + ["middle"] * 4 + ["fine"] * 2
    keys = [d["key"] for d in m["directions"]]
    assert {"shipped/smile", "shipped/glasses", "sefa/0", "sefa/9", "pca/0", "pca/9"} <= set(keys)
    smile = next(d for d in m["directions"] if d["key"] == "shipped/smile")
    assert smile["label"] == "smile" and 0.5 < smile["accuracy"] <= 1
    sefa = next(d for d in m["directions"] if d["key"] == "sefa/0")
    assert sefa["label"] == "SeFa 0" and sefa["layers"] is None  # fitted on every layer: the page offers "all"
    assert "/" not in json.dumps(info).replace("shipped/", "").replace("sefa/", "").replace("pca/", "")  # no paths


# ----------------------------------------------------------------------------- render: every control


def test_render_equals_the_library_pipeline(client, served):
    G = served.G
    sm = served.direction("shipped/smile")
    s = state(psi=0.7, cutoff=4, edits=[{"direction": "shipped/smile", "alpha": 2.0, "layers": "coarse"}])
    ws = truncate(seed_ws(G, 3), G.w_avg, 0.7, 4)
    ws = edit(ws, sm.vector, 2.0 * served.direction_std("shipped/smile"), layers="coarse")
    r = client.post("/api/render", json=s)
    assert float(r.headers["x-render-ms"]) > 0
    np.testing.assert_array_equal(png(r), reference(G, ws))
    # one slider unit is one std of W along the direction
    w = served.w_samples() @ sm.vector
    assert served.direction_std("shipped/smile") == pytest.approx(sm.std if sm.std else float(w.std()), rel=1e-6)


def test_each_control_changes_what_it_should(client, served):
    G = served.G
    base = png(client.post("/api/render", json=state()))
    np.testing.assert_array_equal(base, reference(G, seed_ws(G, 3)))

    def img(**kw):
        return png(client.post("/api/render", json=state(**kw)))

    e = {"direction": "shipped/smile", "alpha": 0.0, "layers": "all"}
    np.testing.assert_array_equal(img(edits=[e]), base)  # alpha 0 is no edit
    assert (img(edits=[{**e, "alpha": 3}]) != base).any()
    assert (img(edits=[{**e, "alpha": 3, "layers": "fine"}]) != img(edits=[{**e, "alpha": 3, "layers": [0, 1]}])).any()
    assert (img(psi=0.5) != base).any()
    np.testing.assert_array_equal(img(psi=0.0), reference(G, G.w_avg.expand(1, G.num_ws, -1).clone()))
    # style mixing takes the chosen rows from the second seed
    mixed = mix(seed_ws(G, 3), seed_ws(G, 10), "coarse")
    np.testing.assert_array_equal(img(mix={"source": {"kind": "seed", "seed": 10}, "layers": "coarse"}),
                                  reference(G, mixed))  # fmt: skip
    # a second code per layer group: coarse from seed 10, fine from seed 11
    two = mix(mixed, seed_ws(G, 11), "fine")
    np.testing.assert_array_equal(img(mix=[{"source": {"kind": "seed", "seed": 10}, "layers": "coarse"},
                                           {"source": {"kind": "seed", "seed": 11}, "layers": "fine"}]),
                                  reference(G, two))  # fmt: skip
    # interpolation: t = 0 is the start, t = 1 the other code
    other = {"kind": "seed", "seed": 20}
    np.testing.assert_array_equal(img(interp={"source": other, "t": 0.0}), base)
    np.testing.assert_array_equal(img(interp={"source": other, "t": 1.0}), reference(G, seed_ws(G, 20)))
    # a blend of seeds in W; [1, 0] is the first seed
    blend = {"kind": "blend", "seeds": [3, 5], "weights": [1.0, 0.0]}
    np.testing.assert_array_equal(img(source=blend), base)
    half = (seed_ws(G, 3) + seed_ws(G, 5)) / 2
    np.testing.assert_allclose(img(source={**blend, "weights": [0.5, 0.5]}).astype(int), reference(G, half), atol=1)
    # noise: random draws differ by seed and repeat for the same seed; off is noise_mode none
    r1, r1b = img(noise="random", noise_seed=1), img(noise="random", noise_seed=1)
    r2 = img(noise="random", noise_seed=2)
    np.testing.assert_array_equal(r1, r1b)
    assert (r1 != r2).any() and (r1 != base).any()
    np.testing.assert_array_equal(img(noise="none"), reference(G, seed_ws(G, 3), noise_mode="none"))


def test_preview_is_the_partial_image_for_large_models_only(client, served):
    from latentlab.serve.app import can_preview

    from conftest import tiny_G

    s = state(edits=[{"direction": "shipped/smile", "alpha": 1, "layers": "all"}])
    np.testing.assert_array_equal(png(client.post("/api/render", json={**s, "preview": True})),
                                  png(client.post("/api/render", json=s)))  # 64 px: always the full render
    assert not can_preview(served.G)
    big = ServedModel("big", tiny_G(seed=1, resolution=512, channel_base=512, channel_max=8), "big")
    big.directions["sefa/0"] = Direction(torch.ones(big.G.w_dim), "ones", "w", "given")
    app = TestClient(create_app(Editor({"big": big})))
    b = {"model": "big", "source": {"kind": "seed", "seed": 1}, "edits": [{"direction": "sefa/0", "alpha": 1}]}
    assert can_preview(big.G)
    assert png(app.post("/api/render", json={**b, "preview": True})).shape == (128, 128, 3)
    assert png(app.post("/api/render", json=b)).shape == (512, 512, 3)
    r = app.post("/api/render", json={**b, "preview": "yes"})
    assert r.status_code == 400 and "preview must be true or false" in r.json()["error"]


def test_two_tabs_keep_their_own_state(client):
    a, b = state(), state(source={"kind": "seed", "seed": 4}, psi=0.6)
    first_a, first_b = png(client.post("/api/render", json=a)), png(client.post("/api/render", json=b))
    for _ in range(2):  # interleaved requests from two tabs: each sees its own image
        np.testing.assert_array_equal(png(client.post("/api/render", json=b)), first_b)
        np.testing.assert_array_equal(png(client.post("/api/render", json=a)), first_a)


@pytest.mark.parametrize("bad, why", [
    ({"colour": 1}, "unknown state field"),
    ({"model": "../../etc/passwd"}, "unknown model"),
    ({"source": {"kind": "seed", "seed": -1}}, "source.seed must be >= 0 and <= 4294967295, got -1"),
    ({"source": {"kind": "seed", "seed": True}}, "source.seed must be an integer"),
    ({"source": {"kind": "file", "path": "/etc/passwd"}}, "source.kind must be one of"),
    ({"source": {"kind": "code", "id": "../../x"}}, "source.id must be a code id"),
    ({"source": {"kind": "code", "id": "abc"}}, "unknown code id"),
    ({"source": {"kind": "blend", "seeds": [1, 2], "weights": [1, -1]}}, "must not sum to 0"),
    ({"psi": "high"}, "psi must be a"),
    ({"cutoff": 11}, "cutoff must be >= 1 and <= 10, got 11"),
    ({"edits": [{"direction": "shipped/nose", "alpha": 1}]}, "has no direction 'shipped/nose'"),
    ({"edits": [{"direction": "shipped/smile", "alpha": 1, "layers": "fine2"}]}, "edits\\[0\\].layers"),
    ({"edits": [{"direction": "shipped/smile", "alpha": 1e9}]}, "alpha must be >= -100.* and <= 100"),
    ({"mix": {"source": {"kind": "seed", "seed": 1}, "layers": [12]}}, "mix.0..layers.0. must be >= 0 and <= 9"),
    ({"mix": [{"source": {"kind": "seed", "seed": 1}}] * 9}, "mix must be a list of at most 8"),
    ({"interp": {"source": {"kind": "seed", "seed": 1}, "t": 2}}, "interp.t must be >= 0 and <= 1, got 2"),
    ({"noise": "loud"}, "noise must be one of"),
])  # fmt: skip
def test_bad_states_are_refused_with_the_reason(client, bad, why):
    r = client.post("/api/render", json={**state(), **bad})
    assert r.status_code == 400
    assert re.search(why, r.json()["error"]), r.json()


def test_bad_bodies_and_failures_answer_json_and_the_server_keeps_serving(client, editor, monkeypatch):
    r = client.post("/api/render", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/render", content=b"x" * (2 * 2**20))
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = client.post("/api/render", content=json.dumps({**state(), "psi": float("nan")}))
    assert r.status_code == 400 and "psi" in r.json()["error"]

    def broken(payload):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(editor, "render", broken)
    r = client.post("/api/render", json=state())
    assert r.status_code == 500 and "RuntimeError: out of memory, say" in r.json()["error"]
    monkeypatch.undo()
    assert client.post("/api/render", json=state()).status_code == 200


# ----------------------------------------------------------------------------- exports


def test_exports_png_codes_and_sweep(client, served, tmp_path):
    s = state(psi=0.8, noise="random", noise_seed=5,
              edits=[{"direction": "shipped/glasses", "alpha": 1.5, "layers": "all"}])  # fmt: skip
    shown = png(client.post("/api/render", json=s))
    r = client.post("/api/export/png", json=s)
    assert r.headers["content-disposition"] == f'attachment; filename="{MODEL}-edit.png"'
    np.testing.assert_array_equal(png(r), shown)
    # the codes file, with its noise maps, re-renders the same image through `latentlab generate --latents`
    r = client.post("/api/export/codes", json=s)
    assert r.status_code == 200 and r.headers["content-disposition"].endswith('-codes.npz"')
    (tmp_path / "codes.npz").write_bytes(r.content)
    codes = load_latents(tmp_path / "codes.npz")
    assert codes.w.shape == (1, 10, served.G.w_dim) and codes.meta["network"] == MODEL and codes.meta["state"] == s
    out = CliRunner().invoke(cli, ["generate", "--network", MODEL, "--latents", str(tmp_path / "codes.npz"),
                                   "--outdir", str(tmp_path / "out")])  # fmt: skip
    assert out.exit_code == 0, out.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "code0000.png")), shown)
    # noise off is exported as zero maps, so the plain CLI renders it as shown too
    off = state(noise="none")
    (tmp_path / "off.npz").write_bytes(client.post("/api/export/codes", json=off).content)
    CliRunner().invoke(cli, ["generate", "--network", MODEL, "--latents", str(tmp_path / "off.npz"),
                             "--outdir", str(tmp_path / "off")])  # fmt: skip
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "off" / "code0000.png")),
                                  png(client.post("/api/render", json=off)))  # fmt: skip
    # the sweep: an MP4 of the first slider from low to high
    r = client.post("/api/export/sweep", json={"state": s, "direction": 0, "low": -2, "high": 2, "frames": 6})
    assert r.status_code == 200 and r.content[4:8] == b"ftyp"
    import cv2

    (tmp_path / "s.mp4").write_bytes(r.content)
    assert int(cv2.VideoCapture(str(tmp_path / "s.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    r = client.post("/api/export/sweep", json={"state": state(), "direction": 0})
    assert r.status_code == 400 and "at least one slider" in r.json()["error"]
    r = client.post("/api/export/sweep", json={"state": s, "direction": 3})
    assert r.status_code == 400 and "direction must be >= 0 and <= 0, got 3" in r.json()["error"]


# ----------------------------------------------------------------------------- uploads and projections


def _png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _upload(client, data: bytes, align: int = 0):
    return client.post(f"/api/upload?model={MODEL}&align={align}", content=data)


def _events(client, body: dict) -> list[dict]:
    with client.stream("POST", "/api/project", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_upload_checks_and_resizes(client, editor):
    target = reference(editor.models[MODEL].G, seed_ws(editor.models[MODEL].G, 8))
    r = _upload(client, _png_bytes(np.asarray(Image.fromarray(target).resize((128, 96)))))
    assert r.status_code == 200 and r.json()["aligned"] is False and r.json()["preview"].startswith("data:image/png")
    for data, why in [(b"", "the upload is empty"), (b"not an image at all", "not a readable image"),
                      (_png_bytes(target)[:200], "not a readable image")]:  # fmt: skip
        r = _upload(client, data)
        assert r.status_code == 400 and why in r.json()["error"], r.json()
    editor.max_upload_pixels = 1000  # a decompression bomb: its header is read, never its pixels
    r = _upload(client, _png_bytes(np.zeros((64, 64, 3), np.uint8)))
    assert r.status_code == 400 and "64x64, more than the server's limit" in r.json()["error"]
    editor.max_upload_bytes = 1000
    r = _upload(client, _png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    assert r.status_code == 413 and "upload" in r.json()["error"]
    assert client.post("/api/upload?model=nope", content=b"x").json()["error"].startswith("unknown model 'nope'")
    assert "align must be 0 or 1" in client.post(f"/api/upload?model={MODEL}&align=yes", content=b"x").text


def test_upload_aligns_a_photo_as_ffhq(served, dlib_landmarks, astronaut):
    client = TestClient(create_app(Editor({MODEL: served}, detector=dlib_landmarks)))
    assert client.get("/api/models").json()["align"] is True
    r = _upload(client, astronaut.read_bytes(), align=1)
    assert r.status_code == 200 and r.json()["aligned"] is True
    preview = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["preview"].split(",")[1]))))
    assert preview.shape == (64, 64, 3)
    # the same crop as the library's alignment of that photo
    from latentlab.edit.photo import find_face
    from latentlab.faces import TEMPLATES
    from latentlab.faces.ffhq import align_image
    from latentlab.faces.photos import load_photo

    assert served.alignment == "synthfaces"  # the embedded model's own framing, from the registry
    rgb = load_photo(astronaut)
    kp, lm, box, score, _ = find_face(rgb, detector=dlib_landmarks)
    want, _ = align_image(rgb, kp, size=64, transform_size=256, landmarks=lm, box=box, score=score,
                          template=TEMPLATES["synthfaces"])  # fmt: skip
    np.testing.assert_array_equal(preview, want)
    # project it, edit it, and put it back into the photo: outside the face the photo is kept bit for bit
    ev = _events(client, {"model": MODEL, "upload": r.json()["id"], "method": "encoder", "steps": 0})
    src = {"kind": "code", "id": ev[-1]["code"]}
    edit_state = state(source=src, edits=[{"direction": "shipped/smile", "alpha": 3, "layers": "all"}])
    out = client.post("/api/export/photo", json=edit_state)
    assert out.status_code == 200 and out.headers["content-disposition"].endswith('-photo.png"')
    photo = np.asarray(Image.open(io.BytesIO(out.content)))
    assert photo.shape == rgb.shape
    changed = (photo != rgb).any(2)
    assert changed.any() and changed.mean() < 0.25  # the face moved, the rest did not
    unedited = client.post("/api/export/photo", json=state(source=src)).content
    still = np.asarray(Image.open(io.BytesIO(unedited)))
    # with no edit only the resampling of the face's own pixels remains (measured 0.07 against 0.79 mean change)
    assert np.abs(still.astype(int) - rgb).mean() < 0.2 * np.abs(photo.astype(int) - rgb).mean()
    r = client.post("/api/export/photo", json=state())
    assert r.status_code == 400 and "needs a projected photo" in r.json()["error"]
    flat = _png_bytes(np.full((200, 200, 3), 128, np.uint8))  # no face in it
    r = _upload(client, flat, align=1)
    assert r.status_code == 400 and "no face found in the upload" in r.json()["error"]


def test_project_from_the_encoder_and_edit_the_result(client, editor):
    G = editor.models[MODEL].G
    target = reference(G, seed_ws(G, 8))
    up = _upload(client, _png_bytes(target)).json()
    ev = _events(client, {"model": MODEL, "upload": up["id"], "method": "encoder", "steps": 10, "space": "w+"})
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "progress" and kinds[-1] == "done" and "error" not in kinds
    steps = [e["step"] for e in ev if e["event"] == "progress" and e["stage"] == "optimize"]
    assert steps == [5, 10]
    done = ev[-1]
    assert done["method"] == "encoder" and done["steps"] == 10 and done["psnr"] > 22 and done["image"]
    # the code renders as the projection did, and edits like any other source
    src = {"kind": "code", "id": done["code"]}
    shown = png(client.post("/api/render", json=state(source=src)))
    mse = ((shown.astype(float) - target) / 127.5) ** 2
    assert 10 * np.log10(4 / mse.mean()) == pytest.approx(done["psnr"], abs=0.2)
    edited = png(client.post("/api/render", json=state(source=src, edits=[
        {"direction": "shipped/smile", "alpha": 2, "layers": "all"}])))  # fmt: skip
    assert (edited != shown).any()
    # a seed's face morphs into the photo: t = 1 is the projected code itself (with the seed's constant noise)
    morph = png(client.post("/api/render", json=state(interp={"source": src, "t": 1.0})))
    np.testing.assert_array_equal(morph, reference(G, editor.codes.get(done["code"]).ws))
    # the encoder alone, and optimization from w_avg
    ev = _events(client, {"model": MODEL, "upload": up["id"], "method": "encoder", "steps": 0})
    assert ev[-1]["event"] == "done" and ev[-1]["steps"] == 0
    ev = _events(client, {"model": MODEL, "upload": up["id"], "method": "optimize", "steps": 3, "space": "w"})
    assert ev[-1]["event"] == "done" and ev[-1]["method"] == "optimize"


@pytest.mark.parametrize("body, why", [
    ({"upload": "zzz"}, "unknown upload id"),
    ({"steps": 0, "method": "optimize"}, "at least 1 when optimizing"),
    ({"steps": 10**6}, "steps must be >= 0 and <= 5000"),
    ({"method": "magic"}, "method must be one of"),
    ({"pti": "yes"}, "pti must be true or false"),
    ({"model": "other"}, "unknown model"),
    ({"where": "/tmp"}, "unknown projection field"),
])  # fmt: skip
def test_bad_projection_requests(client, body, why):
    r = client.post("/api/project", json={"model": MODEL, "upload": "zzz", **body})
    assert r.status_code == 400 and why in r.json()["error"], r.json()


def test_a_cancelled_job_stops_and_frees_its_slot(client, editor):
    G = editor.models[MODEL].G
    target = torch.from_numpy(reference(G, seed_ws(G, 9))).permute(2, 0, 1)[None].float() / 127.5 - 1
    job = ProjectionJob(editor.models[MODEL], target, ProjectRequest(MODEL, "-", "optimize", 5000, "w"),
                        editor.codes, editor.tools, every=1).start()  # fmt: skip
    first = job.events.get(timeout=60)
    assert first["event"] == "progress"
    job.cancel.set()
    assert job.finished.wait(30)
    rest = []
    while not job.events.empty():
        rest.append(job.events.get())
    assert rest[-1] == {"event": "cancelled"} and len(editor.codes) == 0
    # through HTTP: the page closes the stream after the first event; the job is cancelled and its slot freed
    up = _upload(client, _png_bytes(reference(G, seed_ws(G, 9)))).json()
    with client.stream("POST", "/api/project", json={"model": MODEL, "upload": up["id"], "method": "optimize",
                                                     "steps": 5000}) as r:  # fmt: skip
        next(r.iter_lines())
    for _ in range(600):  # the slot comes back once the worker has seen the cancel
        if editor.jobs.acquire(timeout=0.1):
            editor.jobs.release()
            break
    else:
        pytest.fail("the cancelled projection kept its slot")


def test_too_many_projections_at_once_are_refused(client, editor):
    assert editor.jobs.acquire(blocking=False)  # max_jobs=1: one runs
    up = _upload(client, _png_bytes(np.zeros((64, 64, 3), np.uint8))).json()
    r = client.post("/api/project", json={"model": MODEL, "upload": up["id"], "steps": 1})
    assert r.status_code == 429 and "1 projections are running" in r.json()["error"]
    editor.jobs.release()


def test_renders_go_on_while_a_projection_runs(client, editor):
    G = editor.models[MODEL].G
    target = torch.zeros(1, 3, 64, 64)
    job = ProjectionJob(editor.models[MODEL], target, ProjectRequest(MODEL, "-", "optimize", 5000, "w"),
                        editor.codes, editor.tools).start()  # fmt: skip
    try:
        assert job.events.get(timeout=60)["event"] == "progress"
        for seed in range(3):  # each render answers while the job is still running
            np.testing.assert_array_equal(png(client.post("/api/render", json=state(source={"kind": "seed",
                                                                                              "seed": seed}))),
                                          reference(G, seed_ws(G, seed)))  # fmt: skip
            assert not job.finished.is_set()
    finally:
        job.cancel.set()
        job.finished.wait(30)


def test_pti_code_renders_with_its_tuned_generator(client, editor, real_weights):
    G = editor.models[MODEL].G
    target = reference(G, seed_ws(G, 11))
    up = _upload(client, _png_bytes(target)).json()
    ev = _events(client, {"model": MODEL, "upload": up["id"], "method": "encoder", "steps": 0, "pti": True,
                          "pti_steps": 3})  # fmt: skip
    assert ev[-1]["event"] == "done" and ev[-1]["pti"] is True
    assert [e["step"] for e in ev if e.get("stage") == "tune"][-1] <= 3
    entry = editor.codes.get(ev[-1]["code"], MODEL)
    assert entry.generator is not None and entry.generator is not G
    shown = png(client.post("/api/render", json=state(source={"kind": "code", "id": ev[-1]["code"]})))
    np.testing.assert_array_equal(shown, reference(entry.generator, entry.ws))
    assert (shown != reference(G, entry.ws)).any()  # the base generator renders it differently


def test_code_store_bounds_and_model_check():
    store = CodeStore(limit=3, tuned_limit=1)
    ids = [store.put(Entry("a", torch.zeros(1, 2, 3))) for _ in range(4)]
    with pytest.raises(ValueError, match="unknown code id"):
        store.get(ids[0])
    assert store.get(ids[3], "a").model == "a"
    with pytest.raises(ValueError, match="belongs to model 'a', not 'b'"):
        store.get(ids[3], "b")
    t1 = store.put(Entry("a", torch.zeros(1, 2, 3), generator=object()))
    t2 = store.put(Entry("a", torch.zeros(1, 2, 3), generator=object()))
    assert store.get(t2).generator is not None
    with pytest.raises(ValueError, match="unknown code id"):
        store.get(t1)  # only the newest tuned generator is kept


# ----------------------------------------------------------------------------- fitting a direction in the page


def test_fit_a_direction_from_marked_samples(client, served, tmp_path):
    r = client.post("/api/samples", json={"model": MODEL, "seed": 100, "count": 6, "psi": 0.7})
    out = r.json()
    assert out["seeds"] == list(range(100, 106)) and all(u.startswith("data:image/png") for u in out["images"])
    # mark as the shipped smile direction's side would: the fit must find that direction again
    G, smile = served.G, served.direction("shipped/smile").vector
    seeds = list(range(200, 260))
    with torch.no_grad():
        w = G.mapping(torch.cat([seed_to_z(G.z_dim, s) for s in seeds]), None, truncation_psi=0.7)[:, 0]
    side = (w - G.w_avg) @ smile
    pos = [s for s, v in zip(seeds, side, strict=True) if v > 0]
    neg = [s for s, v in zip(seeds, side, strict=True) if v <= 0]
    r = client.post("/api/fit", json={"model": MODEL, "name": "my smile", "positive": pos, "negative": neg})
    d = r.json()
    assert r.status_code == 200 and d["key"].startswith("fit/") and d["label"] == "my_smile"
    fitted = served.direction(d["key"])
    # a random unit vector scores about 1/sqrt(256) = 0.06; 60 marked samples gave 0.32-0.45 on three seed sets
    assert float(fitted.vector @ smile) > 0.3
    # used at once by a slider, and saved as a direction file latentlab reads
    e = {"direction": d["key"], "alpha": 2, "layers": "all"}
    assert client.post("/api/render", json=state(edits=[e])).status_code == 200
    r = client.post("/api/export/direction", json={"model": MODEL, "key": d["key"]})
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["my_smile.json", "my_smile.npy"]
        z.extractall(tmp_path)
    back = load_direction(tmp_path / "my_smile.npy")
    torch.testing.assert_close(back.vector, fitted.vector)
    assert back.model == MODEL and back.num_samples == 60
    for body, why in [({"positive": [1, 2], "negative": [3, 4, 5]}, "positive must list 3 to 1000"),
                      ({"positive": [1, 2, 3], "negative": [3, 4, 5]}, "marked both"),
                      ({"positive": [1, 2, 3], "negative": [4, 5, 6], "name": "../x"}, "name must be")]:  # fmt: skip
        r = client.post("/api/fit", json={"model": MODEL, **body})
        assert r.status_code == 400 and why in r.json()["error"], r.json()
    assert "has no direction" in client.post("/api/export/direction", json={"model": MODEL, "key": "fit/x"}).text


# ----------------------------------------------------------------------------- the command


def test_serve_cli_help_and_host_warning(monkeypatch):
    out = CliRunner().invoke(cli, ["serve", "--help"])
    assert out.exit_code == 0 and "latentlab serve --network my-G.pkl" in out.output
    seen = {}
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: seen.update(app=app, host=host, port=port))
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--pca-samples", "0"])
    assert out.exit_code == 0, out.output
    assert "warning: listening on 0.0.0.0" in out.output and "http://0.0.0.0:8123/" in out.output
    assert seen["port"] == 8123 and seen["app"].state.editor.models.keys() == {MODEL}
    out = CliRunner().invoke(cli, ["serve", "--pca-samples", "0"])
    assert "warning" not in out.output and "http://127.0.0.1:7860/" in out.output
    out = CliRunner().invoke(cli, ["serve", "--network", "no-such-model"])
    assert out.exit_code != 0 and "no-such-model" in out.output


def test_public_names_never_show_a_path():
    from latentlab.serve import public_name

    assert public_name(MODEL, set()) == MODEL
    assert public_name("/home/me/runs/ffhq snap\n\"x\".pkl", set()) == "ffhq-snap--x"
    assert public_name("/a/net.pkl", {"net"}) == "net-2" and public_name("/b/net.pkl", {"net", "net-2"}) == "net-3"
    assert public_name("/a/---.pkl", set()) == "model"
