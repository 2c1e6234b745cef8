"""The editor's latency: a slider change rendered and shown (issue 21's bar: under 100 ms at 64² on 2 cores).

* server side: ``Editor.render`` + PNG encoding of an edit state with three sliders, median of ``--repeats``,
  and the same through the HTTP app (Starlette's test client: JSON parsing, routing, response);
* page side: headless Chromium (selenium) against a real uvicorn server; the slider is moved by key presses and
  each move waits for the image to be shown; the page's own ``lastRenderMs`` (from the input event to the image's
  ``load``) is recorded, median and 90th percentile;
* ``--screenshot docs/images/serve.png`` saves the page after a projection and a few edits.

    python benchmarks/bench_serve.py --repeats 50 --screenshot docs/images/serve.png
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_encoder import run_times  # noqa: E402

from latentlab.serve import Editor, ServedModel, create_app  # noqa: E402
from latentlab.serve.app import png_bytes  # noqa: E402

STATE = {"model": "synthfaces-64", "source": {"kind": "seed", "seed": 7}, "psi": 0.8,
         "edits": [{"direction": "shipped/smile", "alpha": 1.0, "layers": "all"},
                   {"direction": "shipped/glasses", "alpha": 0.5, "layers": "all"},
                   {"direction": "sefa/0", "alpha": -1.0, "layers": "coarse"}]}  # fmt: skip


def median_ms(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """``(median, 90th percentile)`` in ms of ``repeats`` calls of ``fn()`` (bench_encoder's timer)."""
    times = [t * 1000 for t in run_times(fn, repeats, warmup)]
    return statistics.median(times), float(np.percentile(times, 90))


def server_side(editor: Editor, repeats: int) -> dict:
    from starlette.testclient import TestClient

    def direct():
        img, _, _ = editor.render(STATE)
        png_bytes(img)

    client = TestClient(create_app(editor))
    k = iter(range(10**9))

    def http():
        s = json.loads(json.dumps(STATE))
        s["edits"][0]["alpha"] = (next(k) % 50) / 10  # a new value each time, as a dragged slider sends
        assert client.post("/api/render", json=s).status_code == 200

    d50, d90 = median_ms(direct, repeats)
    h50, h90 = median_ms(http, repeats)
    return {"mode": "server", "threads": torch.get_num_threads(), "render_png_ms_median": round(d50, 1),
            "render_png_ms_p90": round(d90, 1), "http_ms_median": round(h50, 1),
            "http_ms_p90": round(h90, 1)}  # fmt: skip


def page_side(editor: Editor, repeats: int, screenshot: str | None) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    from test_serve_browser import chromium, start_server, wait

    url, stop = start_server(create_app(editor))
    driver = chromium()
    try:
        driver.get(url)
        wait(driver, "window.latentlab && window.latentlab.renders >= 1")
        for key in ("shipped/smile", "shipped/glasses", "sefa/0"):
            Select(driver.find_element(By.ID, "direction-pick")).select_by_value(key)
            driver.find_element(By.ID, "direction-add").click()
        slider = driver.find_element(By.CSS_SELECTOR, "#sliders .slider input[type=range]")
        times = []
        for i in range(repeats + 2):
            n = driver.execute_script("return window.latentlab.renders;")
            slider.send_keys(Keys.ARROW_RIGHT if (i // 20) % 2 == 0 else Keys.ARROW_LEFT)
            wait(driver, f"window.latentlab.renders > {n} && !window.latentlab.inFlight && !window.latentlab.pending")
            if i >= 2:
                times.append(driver.execute_script("return window.latentlab.lastRenderMs;"))
        out = {"mode": "page", "moves": len(times), "page_ms_median": round(statistics.median(times), 1),
               "page_ms_p90": round(float(np.percentile(times, 90)), 1), "browser": driver.capabilities.get(
                   "browserVersion")}  # fmt: skip
        if screenshot:
            _screenshot(driver, editor, screenshot)
        return out
    finally:
        driver.quit()
        stop()


def _screenshot(driver, editor: Editor, path: str) -> None:
    """The page after projecting a fresh SynthFaces render from the encoder and moving a few sliders."""
    import tempfile

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from test_serve_browser import wait

    from latentlab.data.synthfaces import render_item

    with tempfile.TemporaryDirectory() as d:
        face = Path(d) / "face.png"
        Image.fromarray(render_item(3, 64, seed=4242)[0]).save(face)
        if driver.find_element(By.ID, "align").is_selected():
            driver.find_element(By.ID, "align").click()
        driver.find_element(By.ID, "upload").send_keys(str(face))
        wait(driver, "window.latentlab.upload !== null")
        driver.find_element(By.ID, "project").click()
        wait(driver, "window.latentlab.code !== null && !window.latentlab.inFlight", 300)
    sliders = driver.find_elements(By.CSS_SELECTOR, "#sliders .slider input[type=range]")
    for s, presses in zip(sliders, (15, 0, 0), strict=True):
        for _ in range(presses):
            s.send_keys(Keys.ARROW_RIGHT)
    wait(driver, "!window.latentlab.inFlight && !window.latentlab.pending")
    time.sleep(0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    png = driver.get_screenshot_as_png()
    Image.open(io.BytesIO(png)).convert("RGB").save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--screenshot", default=None)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    editor = Editor({"synthfaces-64": ServedModel.load("synthfaces-64", "synthfaces-64")})
    print(json.dumps(server_side(editor, args.repeats)), flush=True)
    if not args.no_browser:
        print(json.dumps(page_side(editor, args.repeats, args.screenshot)), flush=True)


if __name__ == "__main__":
    main()
