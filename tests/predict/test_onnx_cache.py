"""The default CPU path: onnxruntime on an ONNX export cached on disk
(mixdepth.inference.onnx_cache)."""

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
import torch
from predict_helpers import random_image, random_tiny

from mixdepth.inference import Predictor, max_relative_difference, onnx_cache

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for this test, and a counter of the exports made."""
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "cache"))
    exports = []
    export = onnx_cache.export_bytes

    def counting(model):
        exports.append(model)
        return export(model)

    monkeypatch.setattr(onnx_cache, "export_bytes", counting)
    return tmp_path / "cache" / "onnx", exports


def entries(folder):
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []


def test_default_path_is_onnxruntime_and_matches_eager(cache, tiny_model):
    default = Predictor(tiny_model)
    assert default.runtime == "onnxruntime" and "onnxruntime" in repr(default)
    eager = Predictor(tiny_model, optimize=False)
    for seed, (h, w) in enumerate([(64, 64), (40, 90), (7, 5)]):
        image = random_image(h, w, seed=seed)
        assert max_relative_difference(default.predict(image), eager.predict(image)) < 1e-4
    images = [random_image(50, 70, seed=1), random_image(64, 64, seed=2)]
    for got, one in zip(default.predict_batch(images, batch_size=2), images, strict=True):
        assert max_relative_difference(got, eager.predict(one)) < 1e-4


def test_export_is_written_once_and_reused(cache, tiny_model):
    folder, exports = cache
    Predictor(tiny_model)
    assert len(exports) == 1 and len(entries(folder)) == 1
    stamp = entries(folder)[0].stat().st_ino
    second = Predictor(tiny_model)
    assert len(exports) == 1 and second.runtime == "onnxruntime"
    assert entries(folder)[0].stat().st_ino == stamp  # not rewritten
    Predictor(random_tiny().half().float())  # other weights: another entry
    assert len(exports) == 2 and len(entries(folder)) == 2


def test_another_process_reuses_the_entry(cache, tiny_model, tiny_weights):
    folder, exports = cache
    Predictor(weights=tiny_weights)
    assert len(exports) == 1
    code = ("from mixdepth.inference import build_model, onnx_cache; "
            f"print(onnx_cache.cached_session(build_model(None, {str(tiny_weights)!r}))[1])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ), check=True, timeout=300)
    assert result.stdout.split()[-1] == "cached"
    assert len(entries(folder)) == 1


def damaged(data: bytes, damage: str) -> bytes:
    data = bytearray(data)
    if damage == "truncate":
        return bytes(data[: len(data) // 2])
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        return bytes(data)
    if damage == "header":
        return bytes(data).replace(b"sha256=", b"sha256=0", 1)
    return b"" if damage == "empty" else b"not a cache entry\n" * 10


@pytest.mark.parametrize("damage", ["truncate", "flip", "header", "empty", "garbage"])
def test_damaged_entries_are_refused(tmp_path, damage):
    path = tmp_path / "entry.onnx"
    onnx_cache.write_entry(path, b"\x08\x07" + bytes(range(256)) * 100)
    assert onnx_cache.read_entry(path) is not None
    path.write_bytes(damaged(path.read_bytes(), damage))
    assert onnx_cache.read_entry(path) is None


def test_a_damaged_entry_is_rebuilt(cache, tiny_model):
    folder, exports = cache
    Predictor(tiny_model)
    path = entries(folder)[0]
    path.write_bytes(damaged(path.read_bytes(), "flip"))
    again = Predictor(tiny_model)
    assert again.runtime == "onnxruntime" and len(exports) == 2
    assert onnx_cache.read_entry(path) is not None
    image = random_image(48, 48)
    reference = Predictor(tiny_model, optimize=False).predict(image)
    assert max_relative_difference(again.predict(image), reference) < 1e-4


def test_an_entry_onnxruntime_cannot_load_is_rebuilt(cache, tiny_model):
    folder, exports = cache
    Predictor(tiny_model)
    path = entries(folder)[0]
    onnx_cache.write_entry(path, b"checksum fine, not a model")
    assert Predictor(tiny_model).runtime == "onnxruntime" and len(exports) == 2
    assert onnx_cache.read_entry(path) != b"checksum fine, not a model"


def test_concurrent_writers_leave_a_complete_entry(tmp_path):
    path = tmp_path / "entry.onnx"
    payloads = [bytes([i]) * 200_000 for i in range(4)]
    seen, stop = [], threading.Event()

    def write(payload):
        for _ in range(25):
            onnx_cache.write_entry(path, payload)

    def read():
        while not stop.is_set():
            seen.append(onnx_cache.read_entry(path))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert onnx_cache.read_entry(path) in payloads
    assert all(value is None or value in payloads for value in seen)
    assert any(value is not None for value in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["entry.onnx"]  # no temporary files left


def test_two_processes_exporting_at_once(cache, tiny_weights):
    folder, _ = cache
    code = ("from mixdepth.inference import Predictor; "
            f"print(Predictor(weights={str(tiny_weights)!r}).runtime)")
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ))
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [out.split()[-1] for out, _ in outputs] == ["onnxruntime"] * 2, outputs
    assert len(entries(folder)) == 1 and onnx_cache.read_entry(entries(folder)[0]) is not None


def test_failed_export_falls_back_to_torch_with_one_line(cache, tiny_model, monkeypatch, caplog):
    folder, _ = cache

    def broken(model):
        raise RuntimeError("unsupported operator\nsecond line")

    monkeypatch.setattr(onnx_cache, "export_bytes", broken)
    with caplog.at_level(logging.WARNING):
        predictor = Predictor(tiny_model)
    assert predictor.runtime == "torch-fast"
    notices = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(notices) == 1 and "\n" not in notices[0] and "unsupported operator" in notices[0]
    image = random_image(40, 40)
    reference = Predictor(tiny_model, optimize=False).predict(image)
    assert max_relative_difference(predictor.predict(image), reference) < 1e-3
    assert entries(folder) == []


def test_missing_onnxruntime_falls_back(cache, tiny_model, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING):
        predictor = Predictor(tiny_model)
    assert predictor.runtime == "torch-fast"
    assert any("onnxruntime is not installed" in r.getMessage() for r in caplog.records)


def test_a_graph_that_differs_is_not_used(cache, tiny_model, monkeypatch, caplog):
    folder, _ = cache
    monkeypatch.setattr(onnx_cache, "check_session", lambda session, model: 0.5)
    with caplog.at_level(logging.WARNING):
        assert Predictor(tiny_model).runtime == "torch-fast"
    assert "differs from PyTorch" in caplog.text and entries(folder) == []


def test_other_devices_dtypes_and_options_do_not_export(cache, tiny_model):
    _, exports = cache
    assert Predictor(tiny_model, dtype=torch.bfloat16).runtime == "torch-fast"
    assert Predictor(tiny_model, runtime="torch").runtime == "torch-fast"
    assert Predictor(tiny_model, optimize=False).runtime == "torch-eager"
    assert exports == []


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert onnx_cache.cache_dir() == tmp_path / "mine" / "onnx"
    monkeypatch.delenv(onnx_cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache.cache_dir() == tmp_path / "xdg" / "mixdepth" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert onnx_cache.cache_dir() == tmp_path / "home" / ".cache" / "mixdepth" / "onnx"


def test_key_depends_on_every_weight(tiny_model):
    key = onnx_cache.cache_key(tiny_model)
    assert onnx_cache.cache_key(tiny_model) == key
    changed = random_tiny()
    buffer = next(b for n, b in changed.named_buffers() if "running_var" in n)
    buffer[0] += 1e-3
    assert onnx_cache.cache_key(changed) != key


class RowRamp(torch.nn.Module):
    """A module without weights whose output depends on a plain attribute."""

    def __init__(self, rising: bool):
        super().__init__()
        self.rising = rising

    def forward(self, x):
        ramp = torch.linspace(0.0, 1.0, x.shape[2]) if self.rising else torch.ones(x.shape[2])
        return ramp.view(1, -1, 1).expand(x.shape[0], -1, x.shape[3]) + 0 * x[:, 0]


def test_modules_that_differ_only_in_a_setting_get_their_own_entry(cache):
    from mixdepth.models.registry import default_config

    rising, flat = RowRamp(True), RowRamp(False)
    rising.config = flat.config = default_config("tiny")
    assert onnx_cache.cache_key(rising) != onnx_cache.cache_key(flat)
    image = random_image(40, 56)
    rising_map, flat_map = Predictor(rising).predict(image), Predictor(flat).predict(image)
    assert rising_map.std() > 0.1 and flat_map.std() < 1e-3


def test_unwritable_cache_still_runs_onnxruntime(tmp_path, monkeypatch, tiny_model, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(blocker))
    with caplog.at_level(logging.WARNING):
        assert Predictor(tiny_model).runtime == "onnxruntime"
    assert "cannot store" in caplog.text


def test_least_recently_used_entries_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv(onnx_cache.SIZE_ENV, "1")  # MiB
    paths = [tmp_path / f"m-{i}.onnx" for i in range(4)]
    for age, path in zip([40, 30, 20, 10], paths, strict=True):
        onnx_cache.write_entry(path, bytes(300_000))
        os.utime(path, (time.time() - age, time.time() - age))
    stale = tmp_path / ".m-9.onnx.123.abc.tmp"
    stale.write_bytes(b"half written")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = tmp_path / ".m-8.onnx.456.def.tmp"
    fresh.write_bytes(b"being written")
    onnx_cache.prune(tmp_path, keep=paths[0])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([paths[0].name, paths[3].name, paths[2].name, fresh.name])
