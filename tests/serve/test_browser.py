"""`mixdepth serve` end to end in headless Chromium: the system's browser, driven by Selenium.

Skips, with the reason in the test report, only where no Chromium and ChromeDriver are
installed (Debian: apt-get install chromium chromium-driver).
"""

import io
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)

# The screenshot goes to the test's folder; MIXDEPTH_SCREENSHOT=docs/images/serve/page.png
# refreshes the one in the docs.
SCREENSHOT_ENV = "MIXDEPTH_SCREENSHOT"
BACKGROUND = (17, 19, 24)  # the 3D view's background, as in viewer.js
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1100,900",
)


def find_browser() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "NO BROWSER: chromium and chromedriver are not installed, so the serve page was "
            "NOT tested in a browser (Debian: apt-get install -y chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("NO SELENIUM: the serve page was NOT tested in a browser "
                    "(pip install -e '.[dev]')")
    return browser, driver


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    """`mixdepth serve --port 0` with one torch thread and its own TMPDIR; (process, url)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp))
    process = subprocess.Popen(
        [sys.executable, "-c", "from mixdepth.cli import main; main()", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if "http://" in line:
            return process, "http://" + line.split("http://")[1].split()[0]
    process.kill()
    pytest.fail("mixdepth serve did not print its URL")


def wait_for(driver, state: str, timeout: float = 30) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script("return document.body.dataset.state") == state
    )


def wait_for_file(path: Path, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and not path.with_name(path.name + ".crdownload").exists():
            return path.read_bytes()
        time.sleep(0.05)
    raise AssertionError(f"{path.name} was not downloaded")


def canvas_pixels(driver, element_id: str) -> np.ndarray:
    """The RGB pixels of a canvas on the page, (H, W, 3) uint8."""
    width, height, data = driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "return [c.width, c.height, btoa(Array.from(d, (v) => String.fromCharCode(v)).join(''))];",
        element_id,
    )
    import base64

    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width, 4)[..., :3]


def test_serve_page_in_headless_chromium(tmp_path):
    browser, chromedriver = find_browser()
    import skimage.data
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from typer.testing import CliRunner

    from mixdepth.cli import app

    # a 1-megapixel photo from scikit-image, and what `mixdepth predict` writes for it
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).resize((1024, 1024), Image.BICUBIC).save(
        photo, quality=92
    )
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    server, url = start_server(server_tmp)

    predicted = tmp_path / "predicted"
    run = CliRunner().invoke(app, ["predict", str(photo), "-o", str(predicted), "-f", "png16"])
    assert run.exit_code == 0, run.output
    expected = (predicted / "astronaut.png").read_bytes()

    downloads = tmp_path / "downloads"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    # with the driver's path given, Selenium does not run its manager, which could download one
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        driver.get(url)
        wait_for(driver, "ready")
        chooser = driver.find_element(By.ID, "file")

        # a file that is not an image: a message on the page, and the server goes on
        chooser.send_keys(str(not_an_image))
        wait_for(driver, "error")
        message = driver.find_element(By.ID, "message").text
        assert "notes.jpg" in message and "cannot decode" in message

        started = time.perf_counter()
        chooser.send_keys(str(photo))
        wait_for(driver, "done")
        waited = time.perf_counter() - started
        timing = driver.execute_script("return window.mixdepthTiming")
        print(f"\nupload to depth shown, 1024x1024 photo, one torch thread: "
              f"{timing['uploadToDepth']:.3f} s in the page ({waited:.3f} s from the test; "
              f"prediction {timing['prediction']:.3f} s)")

        depth = canvas_pixels(driver, "depth")
        assert depth.shape[:2] == (1024, 1024)
        assert depth.astype(int).sum(axis=2).std() > 10, "the depth image is constant"
        view = canvas_pixels(driver, "view")
        drawn = np.any(view != np.array(BACKGROUND, np.uint8), axis=2).mean()
        assert drawn > 0.05, f"the 3D view drew only {drawn:.1%} of its pixels"

        driver.find_element(By.ID, "download-png16").click()
        assert wait_for_file(downloads / "astronaut.png") == expected

        # a colour map switch redraws without asking the server
        before = depth
        driver.execute_script(
            "const s = document.getElementById('colormap'); s.value = 'turbo';"
            "s.dispatchEvent(new Event('change'));"
        )
        assert not np.array_equal(canvas_pixels(driver, "depth"), before)

        height, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, outerHeight - innerHeight]"
        )
        driver.set_window_size(1100, height + chrome)
        driver.execute_script("window.scrollTo(0, 0)")
        target = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "page.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        screenshot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        screenshot.quantize(256, dither=Image.Dither.NONE).save(target, optimize=True)
        print(f"screenshot: {target}")
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=20)
    assert code == 0
    assert not list(server_tmp.glob("mixdepth-serve-*")), "temporary files left behind"
