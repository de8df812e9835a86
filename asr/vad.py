"""Streaming Silero VAD (v6, ONNX) from the copy that faster-whisper ships.

The model takes 512-sample windows at 16 kHz, each preceded by the last 64 samples of the window
before it, and carries an LSTM state (h, c) from window to window. A batch of consecutive windows
in one run gives the same probabilities as running them one by one, so each push is one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asr.base import AsrError
from asr.samples import mono_float32

SAMPLE_RATE = 16000
WINDOW_SIZE = 512
_CONTEXT_SIZE = 64
_STATE_SHAPE = (1, 1, 128)


def default_model_path() -> Path:
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


class SileroVadModel:
    """The ONNX session; load once per process and share across calls (onnxruntime runs are thread-safe)."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime

        self.path = path or default_model_path()
        if not self.path.is_file():
            raise AsrError(f"Silero VAD model not found at {self.path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(self.path), providers=["CPUExecutionProvider"], sess_options=options
        )

    def run(
        self, windows: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 576) float32 windows with their context -> (n,) probabilities and the new state."""
        probs, h, c = self._session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(probs, dtype=np.float32).reshape(-1), h, c

    def stream(self) -> SileroVad:
        """A fresh detector with its own state, for one call."""
        return SileroVad(self)


class SileroVad:
    """One audio stream's detector: feed int16 (or float32 in [-1, 1]) samples at 16 kHz in any sizes."""

    sample_rate = SAMPLE_RATE
    window_size = WINDOW_SIZE

    def __init__(self, model: SileroVadModel) -> None:
        self._model = model
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT_SIZE, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, pcm16k: np.ndarray) -> np.ndarray:
        samples = mono_float32(pcm16k, consumer="VAD")
        buffered = np.concatenate([self._pending, samples])
        count = len(buffered) // WINDOW_SIZE
        self._pending = buffered[count * WINDOW_SIZE :]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = buffered[: count * WINDOW_SIZE].reshape(count, WINDOW_SIZE)
        contexts = np.vstack([self._context[None, :], windows[:-1, -_CONTEXT_SIZE:]])
        self._context = windows[-1, -_CONTEXT_SIZE:].copy()
        batch = np.ascontiguousarray(np.hstack([contexts, windows]), dtype=np.float32)
        probs, self._h, self._c = self._model.run(batch, self._h, self._c)
        return probs
