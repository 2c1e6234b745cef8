"""The editor end to end in headless Chromium (Debian's chromium and chromium-driver, driven by selenium).

`.ci/run` installs the browser; where it cannot be installed the test skips and says why. Timings are not
asserted here (benchmarks/bench_serve.py measures the page-side latency); this test checks that the page
works: it loads, a dragged slider changes the image, an upload is projected and shown, a bad upload shows an
error in the page, and the server keeps serving.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or DRIVER is None) and os.environ.get("LATENTLAB_REQUIRE_BROWSER") != "1",
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does this)",
)


def start_server(app):
    """A real uvicorn server for ``app`` on a free local port, in a thread: ``(url, stop)``."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)

    def stop():
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}/", stop


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def image_pixels(driver) -> np.ndarray:
    """The shown image's pixels, read back through a canvas."""
    url = driver.execute_script("""
        const img = document.getElementById('image');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext('2d').drawImage(img, 0, 0);
        return c.toDataURL('image/png');""")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def wait(driver, condition: str, timeout: float = 60):
    """Wait until the JavaScript expression ``condition`` is true; fails with the page's error box otherwise."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if driver.execute_script(f"return Boolean({condition});"):
            return
        time.sleep(0.05)
    err = driver.execute_script("return document.getElementById('error').textContent;")
    pytest.fail(f"timed out waiting for {condition!r}; the page's error box says {err!r}")


@pytest.fixture(scope="module")
def page():
    from latentlab.serve import Editor, ServedModel, create_app

    model = ServedModel.load("synthfaces-64", "synthfaces-64", pca_samples=2000)
    url, stop = start_server(create_app(Editor({"synthfaces-64": model})))
    driver = chromium()
    try:
        driver.get(url)
        wait(driver, "window.latentlab && window.latentlab.renders >= 1")
        yield driver, model
    finally:
        driver.quit()
        stop()


def test_slider_drag_changes_the_image(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, model = page
    before = image_pixels(driver)
    assert before.shape == (64, 64, 3)
    Select(driver.find_element(By.ID, "direction-pick")).select_by_value("shipped/smile")
    driver.find_element(By.ID, "direction-add").click()
    slider = driver.find_element(By.CSS_SELECTOR, "#sliders .slider input[type=range]")
    n = driver.execute_script("return window.latentlab.renders;")
    ActionChains(driver).click_and_hold(slider).move_by_offset(60, 0).release().perform()  # drag right
    wait(driver, f"window.latentlab.renders > {n} && !window.latentlab.inFlight && !window.latentlab.pending")
    alpha = float(driver.execute_script("return document.querySelector('#sliders .slider output').textContent;"))
    assert alpha > 0
    after = image_pixels(driver)
    assert (after != before).any()
    # what the page shows is the server's rendering of that state
    from latentlab.edit import edit
    from latentlab.io import to_uint8
    from latentlab.nn.generator import seed_to_z

    G = model.G
    with torch.no_grad():
        ws = edit(G.mapping(seed_to_z(G.z_dim, 0), None), model.direction("shipped/smile").vector,
                  alpha * model.direction_std("shipped/smile"))  # fmt: skip
        want = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    np.testing.assert_array_equal(after, want)
    assert driver.execute_script("return window.latentlab.lastRenderMs;") > 0
    assert "ms (server" in driver.find_element(By.ID, "latency").text
    # undo brings the start back
    driver.find_element(By.ID, "undo").click()
    driver.find_element(By.ID, "undo").click()
    wait(driver, "document.querySelectorAll('#sliders .slider').length === 0 && !window.latentlab.inFlight")
    time.sleep(0.3)
    wait(driver, "!window.latentlab.inFlight && !window.latentlab.pending")
    np.testing.assert_array_equal(image_pixels(driver), before)
    # style mixing: the coarse rows from seed 10 (the box's default), then undo
    n = driver.execute_script("return window.latentlab.renders;")
    driver.find_element(By.ID, "mix-coarse-on").click()
    wait(driver, f"window.latentlab.renders > {n} && !window.latentlab.inFlight && !window.latentlab.pending")
    from latentlab.edit import mix

    with torch.no_grad():
        mixed = mix(G.mapping(seed_to_z(G.z_dim, 0), None), G.mapping(seed_to_z(G.z_dim, 10), None), "coarse")
        want = to_uint8(G.synthesis(mixed, noise_mode="const"))[0]
    np.testing.assert_array_equal(image_pixels(driver), want)
    driver.find_element(By.ID, "undo").click()
    wait(driver, "!document.getElementById('mix-coarse-on').checked")
    wait(driver, "!window.latentlab.inFlight && !window.latentlab.pending")


def test_upload_projects_and_bad_upload_shows_an_error(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver, model = page
    G = model.G
    from latentlab.io import to_uint8
    from latentlab.nn.generator import seed_to_z

    with torch.no_grad():
        face = to_uint8(G.synthesis(G.mapping(seed_to_z(G.z_dim, 42), None), noise_mode="const"))[0]
    Image.fromarray(face).save(tmp_path / "face.png")
    (tmp_path / "notes.png").write_bytes(b"this is not a picture")
    if driver.find_element(By.ID, "align").is_selected():
        driver.find_element(By.ID, "align").click()  # a generated crop is aligned already
    before = image_pixels(driver)
    driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "face.png"))
    wait(driver, "window.latentlab.upload !== null")
    driver.find_element(By.ID, "steps").clear()
    driver.find_element(By.ID, "steps").send_keys("20")
    driver.find_element(By.ID, "project").click()
    wait(driver, "window.latentlab.code !== null && !window.latentlab.inFlight && !window.latentlab.pending", 120)
    assert driver.find_element(By.ID, "source-code").is_selected()
    assert driver.find_element(By.ID, "project-status").text.startswith("done: encoder + 20 steps")
    shown = image_pixels(driver)
    assert (shown != before).any()
    psnr = 10 * np.log10(4 / (((shown.astype(float) - face) / 127.5) ** 2).mean())
    assert psnr > 25, psnr  # the projection of a generated face is close to it
    # a file that is not an image: the page says so, and goes on working
    driver.find_element(By.ID, "upload").send_keys(str(tmp_path / "notes.png"))
    wait(driver, "document.getElementById('error').textContent.includes('not a readable image')")
    driver.find_element(By.ID, "psi").send_keys("\ue012")  # arrow left: a new render clears the error
    wait(driver, "document.getElementById('error').hidden")
