"""The editor's web app (Starlette): the page, its JSON API, uploads, projections as server-sent events, exports.

Routes (every body and answer is JSON unless it says otherwise; errors are ``{"error": message}`` with 400 for
bad input, 404 for unknown routes, 413 for an upload over the limit, 429 when too many projections run, and 500
for a failure of the server's own, which keeps serving):

========================  ====================================================================================
``GET /``                 the page (``static/index.html``); ``GET /static/<name>`` its script and style only
``GET /api/models``       the models offered: name, resolution, W+ layer table, directions, encoder or not
``POST /api/render``      an edit state (:mod:`latentlab.serve.state`) -> ``image/png``; ``X-Render-Ms``
``POST /api/export/png``  the same image as a download
``POST /api/export/codes`` the state's codes as ``.npz`` (``latentlab generate --latents`` reads it)
``POST /api/export/photo`` a state whose source is an aligned, projected upload -> the photo with the edit in it
``POST /api/export/sweep`` ``{"state", "direction": index into state.edits, "low", "high", "frames"}`` -> MP4
``POST /api/upload``      the raw image bytes (``?model=&align=0|1``) -> ``{"id", "preview", "aligned"}``
``POST /api/project``     a :class:`~latentlab.serve.jobs.ProjectRequest` -> ``text/event-stream``
``POST /api/samples``     ``{"model", "seed", "count", "psi"}`` -> thumbnails (data URLs) of those seeds
``POST /api/fit``         ``{"model", "name", "positive": [seeds], "negative": [seeds], "psi"}`` -> a new direction
``POST /api/export/direction`` ``{"model", "key"}`` -> a ``.zip`` of the direction's ``.npy`` and ``.json``
========================  ====================================================================================

No request names a file on the server: models are looked up by their public name, codes and uploads by the
random ids the server gave, static files from a fixed list, and every export is written into a fresh
temporary folder under a fixed name and sent back.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import queue
import tempfile
import threading
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..edit.codes import seed_codes
from ..io.images import from_uint8, to_8bit_mode, to_uint8
from ..render import render_codes
from ..validate import InvalidInput, number, string
from .jobs import ProjectionJob, Tools, parse_project_request
from .models import BoundedStore, CodeStore, ServedModel, Upload
from .state import compose, parse_state

STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}  # fmt: skip
MAX_UPLOAD_BYTES = 25 * 2**20
MAX_UPLOAD_PIXELS = 50_000_000  # checked from the header before any pixel is decoded
MAX_JSON_BYTES = 1 * 2**20
MAX_SAMPLES = 64
MAX_SWEEP_FRAMES = 240
PREVIEW_SIDE = 128  # models above 256 px show the skip architecture's 128-px partial image while a slider moves


def png_bytes(image: torch.Tensor) -> bytes:
    """``[1, C, R, R]`` in [-1, 1] -> PNG bytes."""
    arr = to_uint8(image)[0]
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def can_preview(G) -> bool:
    """Whether ``G`` gets the cheap preview: a StyleGAN2 skip generator above 256 px."""
    from ..nn.synthesis import SynthesisNetwork

    syn = G.synthesis
    return (type(syn) is SynthesisNetwork and G.img_resolution > 256
            and syn.blocks()[-1].architecture == "skip")  # fmt: skip


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Editor:
    """The server's state: the models offered and the bounded stores. One per app; no module-level state."""

    def __init__(self, models: dict[str, ServedModel], max_jobs: int = 2, loss: str = "auto",
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, max_upload_pixels: int = MAX_UPLOAD_PIXELS,
                 detector: Any = None):  # fmt: skip
        if not models:
            raise ValueError("the editor needs at least one model")
        self.models = models
        self.codes = CodeStore()
        self.uploads = BoundedStore(64, "upload")
        self.tools = Tools(loss)
        self.jobs = threading.BoundedSemaphore(max_jobs)
        self.max_jobs = max_jobs
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_pixels = max_upload_pixels
        self._detector = detector
        self._detector_lock = threading.Lock()

    def model(self, name: Any) -> ServedModel:
        name = string(name, "model")
        if name not in self.models:
            raise InvalidInput(f"unknown model {name!r:.80}; this server offers {', '.join(self.models)}")
        return self.models[name]

    def num_ws(self, name: str) -> int:
        return self.model(name).num_ws

    def render(self, payload: Any) -> tuple[torch.Tensor, Any, Any]:
        """``(image [1, C, R, R], composed codes, model)`` of an edit state."""
        state = parse_state(payload, self.num_ws)
        m = self.models[state.model]
        c = compose(m, state, self.codes)
        G = c.generator
        with torch.no_grad():
            dev = G.w_avg.device
            noise = None if c.noise is None else [None if x is None else x.to(dev) for x in c.noise]
            until = PREVIEW_SIDE if state.preview and can_preview(G) else None
            img = G.synthesis(c.ws.to(dev), noise_mode=c.noise_mode, noise=noise,
                              **({} if until is None else {"until": until})).cpu()  # fmt: skip
        return img, c, m

    def detector(self):
        """dlib's landmarks (built on first use), or None when the ``align`` extra is not installed."""
        with self._detector_lock:
            if self._detector is None:
                try:
                    from ..faces import DlibLandmarks

                    self._detector = DlibLandmarks()
                except Exception:  # noqa: BLE001 - no dlib or no model files: the page offers no alignment
                    self._detector = False
            return self._detector or None

    def read_upload(self, data: bytes, model: ServedModel, align: bool) -> Upload:
        """Decode an uploaded image into a uint8 target ``[R, R, C]`` at the model's resolution: aligned with the
        model's framing (FFHQ's procedure; ``ServedModel.alignment``) when asked, keeping what pasting the edit
        back needs, else centre-cropped to a square and resized. InvalidInput for non-images and oversized ones.
        (Targets are kept as uint8: a quarter of the memory of float ones.)"""
        if not data:
            raise InvalidInput("the upload is empty")
        try:
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > self.max_upload_pixels:
                    raise InvalidInput(f"the image is {w}x{h}, more than the server's limit of "
                                       f"{self.max_upload_pixels / 1e6:.0f} megapixels")  # fmt: skip
                rgb = np.asarray(to_8bit_mode(im, channels=3))
        except InvalidInput:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise InvalidInput(f"the upload is not a readable image ({str(e)[:200]})") from None
        res = model.G.img_resolution
        kp = tr = None
        if align:
            det = self.detector()
            if det is None:
                raise InvalidInput("face alignment needs the align extra (pip install 'latentlab[align]'); "
                                   "upload an aligned crop with alignment off")  # fmt: skip
            from ..edit.photo import find_face
            from ..faces import TEMPLATES
            from ..faces.ffhq import align_image

            kp, lm, box, score, _ = find_face(rgb, detector=det, name="the upload")
            crop, tr = align_image(rgb, kp, size=res, transform_size=max(4 * res, 256), landmarks=lm, box=box,
                                   score=score, template=TEMPLATES[model.alignment])  # fmt: skip
        else:
            s = min(rgb.shape[:2])
            y, x = (rgb.shape[0] - s) // 2, (rgb.shape[1] - s) // 2
            crop = np.asarray(Image.fromarray(rgb[y : y + s, x : x + s]).resize((res, res), Image.LANCZOS))
        if model.G.img_channels == 1:
            crop = np.asarray(Image.fromarray(crop).convert("L"))[..., None]
        return Upload(model.name, np.ascontiguousarray(crop), data if tr is not None else None, kp, tr)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request, limit: int = MAX_JSON_BYTES) -> Any:
    body = await _body(request, limit, "request")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"the request is not valid JSON ({e})") from None


class TooLarge(Exception):
    pass


async def _body(request: Request, limit: int, what: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the {what} is {int(declared) / 2**20:.1f} MiB, more than the limit of {limit / 2**20:.0f} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the {what} is more than the limit of {limit / 2**20:.0f} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _attachment(data: bytes, media: str, filename: str) -> Response:
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def create_app(editor: Editor) -> Starlette:
    """The Starlette app of ``editor`` (see the module docstring for its routes)."""
    run = asyncio.to_thread

    async def page(request: Request) -> Response:
        return _static("index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _error(404, "not found")
        return _static(name)

    def _static(name: str) -> Response:
        text = resources.files("latentlab.serve").joinpath("static", name).read_bytes()
        return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-store"})

    async def models(request: Request) -> Response:
        return JSONResponse({"models": [m.describe() for m in editor.models.values()],
                             "default": next(iter(editor.models)), "align": await run(editor.detector) is not None,
                             "max_upload_mb": editor.max_upload_bytes // 2**20})  # fmt: skip

    def _render_png(payload: Any) -> bytes:
        return png_bytes(editor.render(payload)[0])

    async def render(request: Request) -> Response:
        payload = await _json(request)
        t0 = time.perf_counter()
        png = await run(_render_png, payload)  # one trip to a worker thread
        ms = (time.perf_counter() - t0) * 1000
        return Response(png, media_type="image/png", headers={"X-Render-Ms": f"{ms:.1f}", "Cache-Control": "no-store"})

    async def export_png(request: Request) -> Response:
        payload = await _json(request)
        img, _, m = await run(editor.render, payload)
        return _attachment(await run(png_bytes, img), "image/png", f"{m.name}-edit.png")

    def _codes_npz(payload: Any) -> tuple[bytes, str]:
        from ..io.latents import noise_arrays, save_latents

        img, c, m = editor.render(payload)
        noise = c.noise
        if c.noise_mode == "none":  # zero maps: `generate --latents` renders it as shown without options
            noise = [None if not layer.use_noise else torch.zeros(1, 1, layer.resolution, layer.resolution)
                     for _, layer in m.G.synthesis.noise_layers()]  # fmt: skip
        arrays = {} if noise is None else noise_arrays(m.G, noise, 0)
        meta = {"network": m.name, "space": "w+", "source": "latentlab serve", "state": payload,
                "tuned": c.generator is not m.G}  # fmt: skip
        with tempfile.TemporaryDirectory() as d:
            path = save_latents(Path(d) / "codes.npz", c.ws[0].numpy(), meta=meta, **arrays)
            return path.read_bytes(), f"{m.name}-codes.npz"

    def _photo(payload: Any) -> tuple[bytes, str]:
        """The edited face put back into the uploaded photo (``edit_photo``'s delta blend)."""
        from ..edit.photo import paste_edit
        from ..faces import TEMPLATES

        img, c, m = editor.render(payload)
        entry = c.entry
        if entry is None or entry.upload is None or entry.upload.transform is None:
            raise InvalidInput("the photo export needs a projected photo that was uploaded with 'align the face' "
                               "on (the source of the state must be its code)")  # fmt: skip
        up = entry.upload
        recon = _render_entry(entry)
        with Image.open(io.BytesIO(up.data)) as im:
            photo = np.asarray(to_8bit_mode(im, channels=3))
        grey = img.shape[1] == 1
        edited, base = (to_uint8(x.expand(-1, 3, -1, -1) if grey else x)[0] for x in (img, recon))
        out = paste_edit(photo, up.keypoints, up.transform, base, edited, TEMPLATES[m.alignment], blend="delta")
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="PNG", compress_level=3)
        return buf.getvalue(), f"{m.name}-photo.png"

    async def export_photo(request: Request) -> Response:
        data, name = await run(_photo, await _json(request))
        return _attachment(data, "image/png", name)

    async def export_codes(request: Request) -> Response:
        data, name = await run(_codes_npz, await _json(request))
        return _attachment(data, "application/octet-stream", name)

    def _sweep(payload: Any) -> tuple[bytes, str]:
        from ..io.images import write_video

        if not isinstance(payload, dict):
            raise InvalidInput("the sweep request must be a JSON object")
        state = payload.get("state")
        if not isinstance(state, dict) or not isinstance(state.get("edits"), list) or not state["edits"]:
            raise InvalidInput("the sweep needs a state with at least one slider")
        k = int(number(payload.get("direction", 0), "direction", low=0, high=len(state["edits"]) - 1, integer=True))
        low = float(number(payload.get("low", -3), "low", low=-100, high=100))
        high = float(number(payload.get("high", 3), "high", low=-100, high=100))
        frames = int(number(payload.get("frames", 60), "frames", low=2, high=MAX_SWEEP_FRAMES, integer=True))
        out = []
        for a in np.linspace(low, high, frames):
            edits = [dict(e) for e in state["edits"]]
            edits[k]["alpha"] = float(a)
            img, _, m = editor.render({**state, "edits": edits})
            out.append(to_uint8(img)[0])
        with tempfile.TemporaryDirectory() as d:
            path = write_video(Path(d) / "sweep.mp4", np.stack(out))
            return path.read_bytes(), f"{m.name}-sweep.mp4"

    async def export_sweep(request: Request) -> Response:
        data, name = await run(_sweep, await _json(request))
        return _attachment(data, "video/mp4", name)

    async def upload(request: Request) -> Response:
        m = editor.model(request.query_params.get("model", next(iter(editor.models))))
        align = request.query_params.get("align", "0")
        if align not in ("0", "1"):
            raise InvalidInput("align must be 0 or 1")
        data = await _body(request, editor.max_upload_bytes, "upload")
        up = await run(editor.read_upload, data, m, align == "1")
        key = editor.uploads.put(up)
        return JSONResponse({"id": key, "preview": data_url(await run(png_bytes, from_uint8(up.target[None]))),
                             "aligned": up.transform is not None})  # fmt: skip

    async def project(request: Request) -> Response:
        req = parse_project_request(await _json(request), editor.model)
        up = editor.uploads.get(req.upload)
        if up.model != req.model:
            raise InvalidInput(f"the upload was made for model {up.model!r}, not {req.model!r}")
        if not editor.jobs.acquire(blocking=False):
            return _error(429, f"{editor.max_jobs} projections are running already; try again when one is done")
        job = ProjectionJob(editor.models[req.model], from_uint8(up.target[None]), req, editor.codes, editor.tools,
                            upload=up)  # fmt: skip
        try:
            job.start()
        except BaseException:
            editor.jobs.release()
            raise
        # the slot comes back when the worker ends, whether or not the stream below is ever read
        threading.Thread(target=_release_after, args=(job, editor.jobs), daemon=True).start()

        async def events():
            try:
                while True:
                    try:
                        ev = await run(job.events.get, True, 0.5)
                    except queue.Empty:  # nothing new yet
                        if await request.is_disconnected():
                            return
                        continue
                    if ev["event"] == "done":
                        entry = editor.codes.get(ev["code"])
                        img = await run(_render_entry, entry)
                        ev["image"] = data_url(await run(png_bytes, img))
                    yield f"event: {ev['event']}\ndata: {json.dumps(ev)}\n\n"
                    if ev["event"] in ("done", "error", "cancelled"):
                        return
            finally:
                job.cancel.set()  # the page went away, or the job is over: either way nothing more is wanted

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    def _render_entry(entry) -> torch.Tensor:
        return render_codes(entry.generator or editor.models[entry.model].G, entry.ws, entry.noise)

    def _samples(payload: Any) -> dict:
        if not isinstance(payload, dict):
            raise InvalidInput("the samples request must be a JSON object")
        m = editor.model(payload.get("model"))
        seed = int(number(payload.get("seed", 0), "seed", low=0, high=2**32 - 1 - MAX_SAMPLES, integer=True))
        n = int(number(payload.get("count", 24), "count", low=1, high=MAX_SAMPLES, integer=True))
        psi = float(number(payload.get("psi", 0.7), "psi", low=-2, high=2))
        seeds = list(range(seed, seed + n))
        imgs = render_codes(m.G, seed_codes(m.G, seeds, truncation_psi=psi).ws)
        return {"seeds": seeds, "images": [data_url(png_bytes(imgs[i : i + 1])) for i in range(n)]}

    async def samples(request: Request) -> Response:
        return JSONResponse(await run(_samples, await _json(request)))

    def _fit(payload: Any) -> dict:
        from ..edit.directions import fit_direction, model_fingerprint

        if not isinstance(payload, dict):
            raise InvalidInput("the fit request must be a JSON object")
        m = editor.model(payload.get("model"))
        name = string(payload.get("name", "marked"), "name")
        if len(name) > 40 or not all(c.isalnum() or c in "-_ " for c in name):
            raise InvalidInput("name must be at most 40 letters, digits, spaces, - or _")
        psi = float(number(payload.get("psi", 0.7), "psi", low=-2, high=2))
        sides = {}
        for side in ("positive", "negative"):
            seeds = payload.get(side)
            if not isinstance(seeds, list) or not 3 <= len(seeds) <= 1000:
                raise InvalidInput(f"{side} must list 3 to 1000 seeds the user marked "
                                   f"({'has it' if side == 'positive' else 'has not'})")  # fmt: skip
            sides[side] = [int(number(s, f"{side} seed", low=0, high=2**32 - 1, integer=True)) for s in seeds]
        if set(sides["positive"]) & set(sides["negative"]):
            raise InvalidInput("a seed is marked both 'has it' and 'has not'")
        seeds = sides["positive"] + sides["negative"]
        w = seed_codes(m.G, seeds, truncation_psi=psi).ws[:, 0]
        labels = torch.tensor([1.0] * len(sides["positive"]) + [0.0] * len(sides["negative"]))
        d = fit_direction(w, labels, attribute=name.replace(" ", "_"), space="w", ratio=None, split=0.75,
                          method="svm", seed=0, C=None, model=m.name, model_hash=model_fingerprint(m.G),
                          num_samples=len(seeds))  # fmt: skip
        d.std = float((m.w_samples() @ d.vector).std())
        key = m.add_fitted(d)
        return {"key": key, "label": d.attribute, "accuracy": d.accuracy, "kind": "fit", "layers": None}

    async def fit(request: Request) -> Response:
        return JSONResponse(await run(_fit, await _json(request)))

    def _direction_zip(payload: Any) -> tuple[bytes, str]:
        from ..edit.directions import save_direction

        if not isinstance(payload, dict):
            raise InvalidInput("the request must be a JSON object")
        m = editor.model(payload.get("model"))
        d = m.direction(string(payload.get("key"), "key"))
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in d.attribute)[:40] or "direction"
        with tempfile.TemporaryDirectory() as tmp:
            npy = save_direction(d, Path(tmp) / f"{stem}.npy")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for p in (npy, npy.with_suffix(".json")):
                    z.write(p, p.name)
        return buf.getvalue(), f"{m.name}-{stem}.zip"

    async def export_direction(request: Request) -> Response:
        data, name = await run(_direction_zip, await _json(request))
        return _attachment(data, "application/zip", name)

    async def bad_input(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def too_large(request: Request, exc: Exception) -> Response:
        return _error(413, str(exc))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, exc.detail if exc.status_code != 404 else "not found")

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"the server failed on this request ({type(exc).__name__}: {str(exc)[:300]}); it keeps "
                           "serving")  # fmt: skip

    routes = [
        Route("/", page), Route("/static/{name}", static), Route("/api/models", models),
        Route("/api/render", render, methods=["POST"]), Route("/api/export/png", export_png, methods=["POST"]),
        Route("/api/export/codes", export_codes, methods=["POST"]),
        Route("/api/export/photo", export_photo, methods=["POST"]),
        Route("/api/export/sweep", export_sweep, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]), Route("/api/project", project, methods=["POST"]),
        Route("/api/samples", samples, methods=["POST"]), Route("/api/fit", fit, methods=["POST"]),
        Route("/api/export/direction", export_direction, methods=["POST"]),
    ]  # fmt: skip
    handlers = {InvalidInput: bad_input, ValueError: bad_input, TooLarge: too_large, HTTPException: http_error,
                Exception: server_error}  # fmt: skip
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.editor = editor
    return app


def _release_after(job: ProjectionJob, sem: threading.BoundedSemaphore) -> None:
    job.finished.wait()
    sem.release()
