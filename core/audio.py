"""Audio frames and telephone codecs: PCM16, G.711 mu-law and A-law, resampling.

Samples travel between stages as mono int16 numpy arrays with their sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from math import gcd

import numpy as np
from scipy.signal import resample_poly

SUPPORTED_RATES = (8000, 16000)


class Codec(StrEnum):
    PCM16 = "pcm16"
    MULAW = "mulaw"
    ALAW = "alaw"


class AudioFormatError(ValueError):
    """Audio bytes that cannot be decoded with the declared codec."""


@dataclass(frozen=True)
class AudioFormat:
    codec: Codec
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.codec is Codec.PCM16 else 1


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A stretch of mono int16 samples."""

    pcm: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


def _mulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


@cache
def _tables(codec: Codec) -> tuple[np.ndarray, np.ndarray]:
    """(decode table of 256 codes, encode table over all 65536 int16 values)."""
    decode = _mulaw_decode_table() if codec is Codec.MULAW else _alaw_decode_table()
    # Each int16 value maps to the code whose decoded value is nearest.
    order = np.argsort(decode, kind="stable")
    levels = decode[order].astype(np.int32)
    values = np.arange(-32768, 32768, dtype=np.int32)
    upper = np.clip(np.searchsorted(levels, values), 1, 255)
    lower = upper - 1
    nearest = np.where(values - levels[lower] <= levels[upper] - values, lower, upper)
    return decode, order[nearest].astype(np.uint8)


def decode(payload: bytes, codec: Codec) -> np.ndarray:
    """Bytes of one frame in `codec` -> int16 samples."""
    if codec is Codec.PCM16:
        if len(payload) % 2:
            raise AudioFormatError(f"pcm16 frame has an odd number of bytes ({len(payload)})")
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)
    table, _ = _tables(codec)
    return table[np.frombuffer(payload, dtype=np.uint8)]


def encode(pcm: np.ndarray, codec: Codec) -> bytes:
    """int16 samples -> bytes in `codec`."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if codec is Codec.PCM16:
        return pcm.astype("<i2").tobytes()
    _, table = _tables(codec)
    return table[pcm.astype(np.int32) + 32768].tobytes()


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling of int16 samples."""
    if src_rate == dst_rate or len(pcm) == 0:
        return np.asarray(pcm, dtype=np.int16)
    g = gcd(src_rate, dst_rate)
    out = resample_poly(np.asarray(pcm, dtype=np.float32), dst_rate // g, src_rate // g)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    return np.asarray(pcm, dtype=np.float32) / 32768.0


def from_float(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples) * 32767.0), -32768, 32767).astype(np.int16)
