"""The `mixdepth serve` HTTP API against a live server in this process, and the command."""

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixdepth.cli import app
from mixdepth.inference import Predictor, to_rgb_array
from mixdepth.io import read_pfm
from mixdepth.outputs import COLORMAPS, colormap_lut, minmax_normalize
from mixdepth.serve import DepthService
from mixdepth.serve.app import STATIC, create_app, make_server
from mixdepth.serve.service import example_png

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def live():
    service = DepthService(Predictor())
    ready = threading.Event()
    ports = []
    server = make_server(create_app(service), "127.0.0.1", 0,
                         lambda port: (ports.append(port), ready.set()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", timeout=60) as client:
        yield SimpleNamespace(client=client, service=service, port=ports[0])
    server.should_exit = True
    thread.join(20)
    assert not service.folder.exists(), "the temporary folder outlived the server"


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, data: bytes, name: str) -> httpx.Response:
    return client.post("/api/predict", params={"name": name}, content=data)


def test_page_info_and_colormaps(live):
    page = live.client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "viewer.js", "style.css"):
        assert live.client.get(f"/static/{name}").status_code == 200
    # everything the page loads is its own: no address of another host in its files
    for path in STATIC.iterdir():
        assert "://" not in path.read_text(), path.name
    info = live.client.get("/api/info").json()
    assert info["model"] == live.service.predictor.config.name
    assert info["max_bytes"] == 20 * 2**20 and info["max_pixels"] == 50_000_000
    assert {"inferno", "turbo", "spectral", "gray"} <= set(info["colormaps"])
    tables = live.client.get("/api/colormaps").json()
    for name in COLORMAPS:
        assert tables[name] == colormap_lut(name).ravel().tolist()
    near = tables["spectral"][-3:]
    assert near[0] > near[2], "spectral: near must be warm, as in the other maps"
    for name in info["examples"]:
        example = live.client.get(f"/api/examples/{name}")
        assert example.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(example.content)).size[0] > 100


def test_downloads_are_what_predict_writes(live, tmp_path):
    data = live.client.get("/api/examples/coffee").content
    answer = upload(live.client, data, "C:\\photos\\my coffee.png")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["name"] == "my_coffee"
    assert (result["width"], result["height"]) == (600, 400)
    assert result["model"] == live.service.predictor.config.name
    assert result["seconds"] > 0 and len(result["network"]) == 2

    photo = tmp_path / "my_coffee.png"
    photo.write_bytes(data)
    out = tmp_path / "out"
    for colormap in ("inferno", "turbo"):
        run = CliRunner().invoke(app, ["predict", str(photo), "-o", str(out / colormap),
                                       "-f", "png16,pfm,color,ply", "--colormap", colormap])
        assert run.exit_code == 0, run.output
    files = {"png16": "my_coffee.png", "pfm": "my_coffee.pfm", "color": "my_coffee_color.png",
             "ply": "my_coffee.ply"}
    for kind, name in files.items():
        got = live.client.get(result["downloads"][kind])
        assert got.status_code == 200
        assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert got.content == (out / "inferno" / name).read_bytes(), kind
    turbo = live.client.get(result["downloads"]["color"], params={"colormap": "turbo"})
    assert turbo.content == (out / "turbo" / "my_coffee_color.png").read_bytes()
    assert turbo.content != (out / "inferno" / "my_coffee_color.png").read_bytes()

    depth = live.client.get(result["depth"])
    shape = int(depth.headers["x-depth-height"]), int(depth.headers["x-depth-width"])
    assert shape == (400, 600)
    codes = np.frombuffer(depth.content, "<u2").reshape(shape)
    expected = np.round(minmax_normalize(read_pfm(out / "inferno" / "my_coffee.pfm")) * 65535)
    assert np.array_equal(codes, expected)


def test_large_photos_are_shown_smaller(live):
    array = np.asarray(Image.open(io.BytesIO(example_png("astronaut"))).resize((2000, 1200)))
    result = upload(live.client, png_bytes(array), "wide.png").json()
    assert (result["width"], result["height"]) == (2000, 1200)
    depth = live.client.get(result["depth"])
    shape = int(depth.headers["x-depth-height"]), int(depth.headers["x-depth-width"])
    assert shape == (960, 1600)
    codes = np.frombuffer(depth.content, "<u2")
    assert codes.size == 960 * 1600 and codes.max() > codes.min()


def crafted_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one row of pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * width))) + chunk(b"IEND", b""))


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(example_png("chelsea"))).save(buffer, format="JPEG")
    return buffer.getvalue()


BAD_UPLOADS = {
    "empty": (lambda: b"", 400, "empty (0 bytes)"),
    "not an image": (lambda: b"%PDF-1.4 not a photo\n" * 20, 400, "cannot decode"),
    "truncated jpeg": (lambda: jpeg_bytes()[:3000], 400, "truncated"),
    "over 20 MB": (lambda: b"\xff\xd8" + bytes(21 * 2**20), 413, "over the limit of 20 MB"),
    "over 50 megapixels": (lambda: crafted_png(10_000, 6_000), 413, "60.0 megapixels"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_4xx(live, case):
    make, status, words = BAD_UPLOADS[case]
    kept = set(live.service.folder.iterdir())
    answer = upload(live.client, make(), "holiday.jpg")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"].startswith("holiday.jpg: ") and words in answer.json()["error"]
    assert set(live.service.folder.iterdir()) == kept, "the refused upload left files"
    assert live.client.get("/api/info").status_code == 200


def raw_get(port: int, target: str) -> bytes:
    """GET with the target sent exactly as written (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                           .encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("target", [
    "/static/../../../../etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/....//....//etc/passwd",
    "/static//etc/passwd",
    "/api/examples/..%2f..%2f..%2fetc%2fpasswd",
    "/api/results/..%2f..%2f..%2fetc/passwd",
    "/../../etc/passwd",
])
def test_paths_outside_the_app_are_refused(live, target):
    reply = raw_get(live.port, target)
    status = int(reply.split(b" ", 2)[1])
    assert 400 <= status < 500, reply[:200]
    assert b"root:" not in reply


def test_unknown_results_and_options(live):
    data = live.client.get("/api/examples/chelsea").content
    result = upload(live.client, data, "cat.png").json()
    assert live.client.get("/api/results/0123456789abcdef/png16").status_code == 404
    assert live.client.get(f"/api/results/{result['id']}/npy").status_code == 404
    bad = live.client.get(result["downloads"]["color"], params={"colormap": "rainbow"})
    assert bad.status_code == 400 and "colormap" in bad.json()["error"]


def test_eight_simultaneous_uploads(live):
    photos = []
    for i, name in enumerate(("coffee", "chelsea", "astronaut") * 3):
        array = np.asarray(Image.open(io.BytesIO(example_png(name))).convert("RGB"))
        photos.append((f"photo{i}.png", png_bytes(array[: 200 + 17 * i, : 240 + 9 * i])))
    photos = photos[:8]
    barrier = threading.Barrier(len(photos))
    answers = [None] * len(photos)

    def send(i: int) -> None:
        name, data = photos[i]
        with httpx.Client(base_url=str(live.client.base_url), timeout=60) as client:
            barrier.wait()
            answers[i] = upload(client, data, name)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for (name, data), answer in zip(photos, answers, strict=True):
        assert answer is not None and answer.status_code == 200, name
        result = answer.json()
        rgb = to_rgb_array(Image.open(io.BytesIO(data)))
        assert result["name"] == name[:-4]
        assert (result["height"], result["width"]) == rgb.shape[:2]
        pfm = live.client.get(result["downloads"]["pfm"])
        assert pfm.content == live.client.get(result["downloads"]["pfm"]).content
        served = read_pfm(io.BytesIO(pfm.content))
        assert np.array_equal(served, live.service.predictor.predict(rgb)), name


def test_old_results_are_deleted(live):
    service = DepthService(live.service.predictor, keep=2)
    data = example_png("chelsea")
    first, *_ = [service.predict(data, f"cat{i}.png") for i in range(3)]
    assert not first.folder.exists()
    with pytest.raises(KeyError):
        service.download(first.id, "png16")
    assert len(list(service.folder.iterdir())) == 2
    service.close()
    assert not service.folder.exists()


def test_serve_command_prints_its_url_and_stops_on_ctrl_c(tmp_path):
    help_text = CliRunner().invoke(app, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text and "exposes" in help_text
    env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-c", "from mixdepth.cli import main; main()", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = "http://" + line.split("http://")[1].split()[0]
        assert httpx.get(url, timeout=10).status_code == 200
        assert len(list(tmp_path.glob("mixdepth-serve-*"))) == 1
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
    assert code == 0, process.stdout.read()
    assert not list(Path(tmp_path).glob("mixdepth-serve-*"))
