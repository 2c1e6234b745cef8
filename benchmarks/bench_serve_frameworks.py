"""Which web framework for the editor: one slider change's round trip through Starlette, FastAPI and Gradio.

Each framework serves the same function (the editor's render of a state with three sliders, as a PNG) over
real HTTP on 127.0.0.1 under uvicorn, and a client changes the first slider's value before each request:

* Starlette: latentlab's own app (``POST /api/render``), called with httpx;
* FastAPI: one ``POST`` route around the same function, called with httpx;
* Gradio: a ``gr.Interface`` with a slider and an image, called with its own client (``gradio_client``), which is
  how its page talks to it (a call, its event stream, then the image file).

Gradio and FastAPI are not latentlab dependencies. Run it in a separate environment that has them and sees
latentlab's environment behind its own packages (benchmarks/RESULTS.md, "The editor", says how it was run):

    python benchmarks/bench_serve_frameworks.py --repeats 50
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_serve import STATE, median_ms  # noqa: E402

from latentlab.serve import Editor, ServedModel, create_app  # noqa: E402
from latentlab.serve.app import png_bytes  # noqa: E402

from conftest import free_port  # noqa: E402


def serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(400):
        if server.started:
            return server
        time.sleep(0.05)
    raise RuntimeError("the server did not start")


def timed(fn, repeats: int) -> dict:
    """``fn(i)`` with a new ``i`` on every call (a new slider value), 3 untimed calls first: median and p90 in ms."""
    calls = itertools.count()
    median, p90 = median_ms(lambda: fn(next(calls)), repeats, warmup=3)
    return {"ms_median": round(median, 1), "ms_p90": round(p90, 1)}


def state(i: int) -> dict:
    s = json.loads(json.dumps(STATE))
    s["edits"][0]["alpha"] = (i % 50) / 10
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import httpx

    editor = Editor({"synthfaces-64": ServedModel.load("synthfaces-64", "synthfaces-64", pca_samples=0)})

    def render_png(alpha: float) -> bytes:
        s = state(0)
        s["edits"][0]["alpha"] = float(alpha)
        return png_bytes(editor.render(s)[0])

    rows = [{"framework": "direct call", **timed(lambda i: render_png((i % 50) / 10), args.repeats)}]

    port = free_port()
    serve(create_app(editor), port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        rows.append({"framework": "starlette", **timed(lambda i: c.post("/api/render", json=state(i)).content,
                                                       args.repeats)})  # fmt: skip

    try:
        import fastapi
        from fastapi import Body, FastAPI
        from fastapi.responses import Response

        fa = FastAPI()

        @fa.post("/render")
        def fa_render(payload: dict = Body(...)) -> Response:  # noqa: B008 (FastAPI's idiom)
            return Response(png_bytes(editor.render(payload)[0]), media_type="image/png")

        port = free_port()
        serve(fa, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            rows.append({"framework": f"fastapi {fastapi.__version__}",
                         **timed(lambda i: c.post("/render", json=state(i)).content, args.repeats)})  # fmt: skip
    except ImportError as e:
        rows.append({"framework": "fastapi", "skipped": str(e)})

    try:
        import gradio as gr
        from gradio_client import Client
        from PIL import Image

        def gr_render(alpha: float):
            return Image.open(io.BytesIO(render_png(alpha)))

        demo = gr.Interface(gr_render, gr.Slider(-5, 5, value=0, step=0.1), gr.Image(type="pil", format="png"),
                            api_name="predict")
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        call = lambda i: client.predict((i % 50) / 10, api_name="/predict")  # noqa: E731
        rows.append({"framework": f"gradio {gr.__version__}", **timed(call, args.repeats)})
        demo.close()
    except ImportError as e:
        rows.append({"framework": "gradio", "skipped": str(e)})
    for r in rows:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
