"""`hotline say` and the G.711 WAV files it writes: the same normalization and voice as a call."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from core.audio import AudioFormat, AudioFormatError, Codec, decode, encode
from core.wav import parse_wav, wav_bytes, write_wav
from gateway.cli import main

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)


def _tone(rate: int, seconds: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def _read_with_pyav(path: Path) -> tuple[np.ndarray, int, str]:
    """An independent reader (FFmpeg): decoded int16 samples, the rate, FFmpeg's codec name."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(chunks), stream.rate, stream.codec_context.name


@pytest.mark.parametrize(
    ("codec", "tag", "ffmpeg_name"),
    [(Codec.PCM16, 1, "pcm_s16le"), (Codec.ALAW, 6, "pcm_alaw"), (Codec.MULAW, 7, "pcm_mulaw")],
)
def test_wav_files_in_each_codec_read_back_in_ffmpeg(tmp_path: Path, codec: Codec, tag: int, ffmpeg_name: str):
    fmt = AudioFormat(codec, 8000)
    payload = encode(_tone(8000), codec)
    path = tmp_path / "tone.wav"
    write_wav(path, payload, fmt)
    blob = path.read_bytes()
    assert struct.unpack_from("<H", blob, 20)[0] == tag
    samples, rate, name = _read_with_pyav(path)
    assert (rate, name) == (8000, ffmpeg_name)
    assert np.array_equal(samples, decode(payload, codec))
    assert parse_wav(blob) == (payload, fmt)


def test_odd_length_payloads_are_padded_and_read_back_whole():
    fmt = AudioFormat(Codec.MULAW, 8000)
    assert parse_wav(wav_bytes(b"\x01\x02\x03", fmt)) == (b"\x01\x02\x03", fmt)
    with pytest.raises(AudioFormatError, match="whole number"):
        wav_bytes(b"\x01\x02\x03", AudioFormat(Codec.PCM16, 8000))


@pytest.mark.parametrize(
    ("blob", "message"),
    [(b"", "RIFF"), (b"RIFF\0\0\0\0WAVE", "no data"), (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "before the fmt")],
)
def test_garbage_is_not_a_wav(blob: bytes, message: str):
    with pytest.raises(AudioFormatError, match=message):
        parse_wav(blob)


def test_say_needs_the_file_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["say", "您好", str(tmp_path / "a.wav"), "--out", str(tmp_path / "b.wav")])
    with pytest.raises(SystemExit):
        main(["say", "您好"])
    assert "OUT" in capsys.readouterr().err


def test_say_refuses_text_with_nothing_to_speak(tmp_path: Path):
    assert main(["say", "hello world", str(tmp_path / "x.wav")]) == 2
    assert not (tmp_path / "x.wav").exists()


@needs_espeak
@pytest.mark.parametrize(("codec", "rate"), [("mulaw", 8000), ("alaw", 8000), ("pcm16", 16000), ("pcm16", 24000)])
def test_say_writes_the_calls_codec_and_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str, rate: int):
    monkeypatch.setenv("HOTLINE_TTS__BACKEND", "espeak")
    out = tmp_path / "reply.wav"
    assert main(["say", "您好，这里是客服热线。", "--out", str(out), "--codec", codec, "--rate", str(rate)]) == 0
    payload, fmt = parse_wav(out.read_bytes())
    assert fmt == AudioFormat(Codec(codec), rate)
    pcm = decode(payload, fmt.codec)
    assert 0.8 < len(pcm) / rate < 10
    assert np.abs(pcm).max() > 1000  # speech, not silence


@needs_espeak
def test_say_speaks_numbers_the_way_a_call_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The written-out reading and the digits give the same audio: the text went through normalization."""
    monkeypatch.setenv("HOTLINE_TTS__BACKEND", "espeak")
    main(["say", "请拨打10086，或者访问www.example.com。", str(tmp_path / "digits.wav"), "--codec", "mulaw",
          "--rate", "8000"])
    main(["say", "请拨打幺零零八六，或者访问。", str(tmp_path / "spoken.wav"), "--codec", "mulaw", "--rate", "8000"])
    assert (tmp_path / "digits.wav").read_bytes() == (tmp_path / "spoken.wav").read_bytes()


@pytest.mark.slow
def test_say_with_the_bundled_voice_keeps_the_positional_form(tmp_path: Path):
    out = tmp_path / "question.wav"
    assert main(["say", "我的宽带从昨天开始上不了网。", str(out)]) == 0
    payload, fmt = parse_wav(out.read_bytes())
    assert fmt == AudioFormat(Codec.PCM16, 16000)
    assert len(payload) / 2 / 16000 > 1.5
