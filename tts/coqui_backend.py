"""A voice from any model the `coqui-tts` package can load (VITS, Glow-TTS, XTTS ...), given as files.

The package is an optional extra (see the README): it is imported only when this backend loads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.audio import from_float
from tts.base import SynthesisError
from tts.text_norm import normalize_for_speech

_WARM_UP_TEXT = "您好。"
_NOT_SPOKEN = "，、：；。！？ "


@dataclass(frozen=True)
class CoquiVoice:
    """Where the model lies and how to drive it."""

    model_path: Path  # the checkpoint file (or a directory the model class loads itself from)
    config_path: Path | None = None  # None: config.json beside the checkpoint
    speaker: str | None = None  # multi-speaker models
    language: str | None = None  # multilingual models (XTTS: "zh-cn")
    device: str = "cpu"  # "cuda", "cuda:1" ...

    def config_file(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        folder = self.model_path if self.model_path.is_dir() else self.model_path.parent
        return folder / "config.json"


def import_runtime() -> tuple[Any, int]:
    """torch and the coqui modules a load needs, imported without loading a model.

    Returns `TTS.api.TTS` and the silence (in samples) coqui appends to every sentence it speaks.
    """
    try:
        import librosa.filters  # noqa: F401  (librosa imports lazily; coqui's audio processor needs this)
        import torch  # noqa: F401
        from TTS.api import TTS
        from TTS.utils import synthesizer
    except (ImportError, OSError) as exc:  # OSError: torchaudio's CUDA libraries under a CPU torch
        raise SynthesisError(
            f"the coqui backend needs the optional coqui extra (see the README, `make install-coqui`): {exc}"
        ) from exc
    return TTS, int(getattr(synthesizer, "PAD_SILENCE_SAMPLES", 0))


def _check_files(voice: CoquiVoice) -> None:
    for label, path in (("model", voice.model_path), ("config", voice.config_file())):
        if not path.exists():
            raise SynthesisError(f"coqui {label} file not found: {path}")


def _check_device(device: str) -> None:
    import torch

    if not device.startswith(("cpu", "cuda")):
        raise SynthesisError(f"coqui device must be cpu or cuda[:N], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SynthesisError(f"coqui device {device!r} asked for, but torch sees no CUDA device")


class CoquiSynthesizer:
    """Blocking synthesis with a coqui model; one instance is safe to share, calls are serialised by a lock."""

    name = "coqui"

    def __init__(self, voice: CoquiVoice, *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        api, self._padding = import_runtime()
        _check_files(voice)
        _check_device(voice.device)
        self.voice = voice
        self._lock = threading.Lock()
        if voice.device == "cpu":
            import torch

            torch.set_num_threads(threads)
        try:
            self._model = api(
                model_path=str(voice.model_path), config_path=str(voice.config_file()), progress_bar=False
            ).to(voice.device)
        except Exception as exc:  # coqui and torch raise many kinds here: report the files and the cause
            raise SynthesisError(
                f"coqui could not load the model {voice.model_path} (config {voice.config_file()}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.sample_rate = int(self._model.synthesizer.output_sample_rate)
        # The first inference allocates the model's buffers, and a wrong speaker or language shows here.
        self._run(_WARM_UP_TEXT)

    def synthesize(self, text: str) -> np.ndarray:
        """Chinese text -> mono int16 at `sample_rate`; text with nothing to say -> empty."""
        spoken = normalize_for_speech(text)
        if not spoken.strip(_NOT_SPOKEN):
            return np.zeros(0, dtype=np.int16)
        return from_float(self._run(spoken))

    def _run(self, text: str) -> np.ndarray:
        try:
            with self._lock:
                samples = self._model.tts(
                    text, speaker=self.voice.speaker, language=self.voice.language, split_sentences=False
                )
        except Exception as exc:  # any failure of the model is this backend's SynthesisError
            raise SynthesisError(
                f"coqui model {self.voice.model_path} failed on {text[:40]!r}: {type(exc).__name__}: {exc}"
            ) from exc
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._padding and len(audio) > self._padding and not audio[-self._padding :].any():
            audio = audio[: -self._padding]  # the stream adds its own pause after each clause
        return np.clip(audio, -1.0, 1.0)
