"""onnxruntime sessions that stand in for the network: over an exported file chosen by the user
(`OnnxFileRunner`) or over the bytes of the cached export (`OnnxSession`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from mixdepth.errors import FileFormatError
from mixdepth.inference.onnx import read_onnx_config


class OnnxSession:
    """An onnxruntime CPU session over ONNX bytes: normalised (B, 3, h, w) -> (B, h, w)."""

    def __init__(self, payload: bytes, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Threads that spin after a run would take the cores from the PyTorch work (resizing)
        # that follows each run.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tensor:
        array = x.detach().to(torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


class OnnxFileRunner(OnnxSession):
    """An `OnnxSession` over a file written by `mixdepth export`; its `config` is read from
    the file's metadata."""

    def __init__(self, path: str | Path, threads: int | None = None):
        path = Path(path)
        self.config = read_onnx_config(path)
        try:
            super().__init__(path.read_bytes(), threads)
        except Exception as err:
            raise FileFormatError(path, f"onnxruntime cannot load it ({err})") from None
