"""Fallback voice: the espeak-ng command (Debian package `espeak-ng`), robotic but tiny and fast."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np

from tts.base import SynthesisError
from tts.text_norm import normalize_for_speech

_TIMEOUT_SECONDS = 30.0
# espeak-ng's `cmn` dictionary turns characters into tone-numbered pinyin, which the plain `cmn` voice
# then reads as English ("nin two hao three"); the pinyin variant reads it as Mandarin.
_VOICE_FOR = {"cmn": "cmn-latn-pinyin", "zh": "cmn-latn-pinyin", "zh-cmn": "cmn-latn-pinyin"}


def parse_espeak_wav(payload: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng's --stdout WAV -> (int16 samples, sample rate).

    espeak-ng writes the header before it knows the length, so its size fields are placeholders:
    the samples are simply everything after the `data` chunk header.
    """
    if len(payload) < 12 or payload[:4] != b"RIFF" or payload[8:12] != b"WAVE":
        raise SynthesisError(f"espeak-ng did not write a WAV stream (got {len(payload)} bytes)")
    offset = 12
    sample_rate = 0
    while offset + 8 <= len(payload):
        chunk_id, chunk_size = (
            payload[offset : offset + 4],
            struct.unpack("<I", payload[offset + 4 : offset + 8])[0],
        )
        body = offset + 8
        if chunk_id == b"fmt ":
            audio_format, channels, sample_rate = struct.unpack("<HHI", payload[body : body + 8])
            bits = struct.unpack("<H", payload[body + 14 : body + 16])[0]
            if (audio_format, channels, bits) != (1, 1, 16):
                raise SynthesisError(
                    f"espeak-ng WAV is not mono 16-bit PCM: {audio_format=} {channels=} {bits=}"
                )
        elif chunk_id == b"data":
            if not sample_rate:
                raise SynthesisError("espeak-ng WAV has its data before its format chunk")
            data = payload[body:]
            return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int16), sample_rate
        offset = body + chunk_size + (chunk_size & 1)
    raise SynthesisError("espeak-ng WAV has no data chunk")


class EspeakSynthesizer:
    """Blocking synthesis by running `espeak-ng --stdout` once per text."""

    name = "espeak"

    def __init__(self, voice: str = "cmn", *, binary: str = "espeak-ng", speed_wpm: int = 160) -> None:
        path = shutil.which(binary)
        if path is None:
            raise SynthesisError(
                f"the espeak backend needs the `{binary}` command: install it with `apt-get install espeak-ng`"
            )
        self._path = path
        self._speed_wpm = speed_wpm
        self.voice = _VOICE_FOR.get(voice, voice)
        try:
            # Learn the voice's sample rate (22050 Hz for espeak-ng's voices) and check the voice exists.
            self.sample_rate = self._run("一")[1]
        except SynthesisError:
            if self.voice == voice:
                raise
            self.voice = voice  # an espeak-ng without the pinyin variant
            self.sample_rate = self._run("一")[1]

    def synthesize(self, text: str) -> np.ndarray:
        """Chinese text (any characters) -> mono int16 at `sample_rate`; nothing speakable -> empty."""
        spoken = normalize_for_speech(text)
        if not spoken.strip("，、：；。！？"):
            return np.zeros(0, dtype=np.int16)
        return self._run(spoken)[0]

    def _run(self, text: str) -> tuple[np.ndarray, int]:
        try:
            command = [
                self._path,
                "-v",
                self.voice,
                "-s",
                str(self._speed_wpm),
                "-b",
                "1",
                "--stdin",
                "--stdout",
            ]
            done = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SynthesisError(
                f"espeak-ng took longer than {_TIMEOUT_SECONDS:.0f} s on {text[:40]!r}"
            ) from exc
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            raise SynthesisError(f"espeak-ng failed (exit {done.returncode}, voice {self.voice!r}): {stderr}")
        if b"RIFF" not in done.stdout[:4]:
            stderr = done.stderr.decode("utf-8", "replace").strip()
            raise SynthesisError(
                f"espeak-ng wrote no audio for voice {self.voice!r}: {stderr or 'no message'}"
            )
        return parse_espeak_wav(done.stdout)
