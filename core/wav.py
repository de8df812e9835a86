"""WAV files in the telephone codecs: PCM16 (format 1), A-law (format 6) and mu-law (format 7).

Python's `wave` module writes and reads only PCM; G.711 WAVs need a `fact` chunk and an 18-byte
`fmt ` chunk, which is what telephony tools (sox, Asterisk, Windows) expect.
"""

from __future__ import annotations

import struct
from pathlib import Path

from core.audio import AudioFormat, AudioFormatError, Codec

WAVE_FORMAT_TAGS = {Codec.PCM16: 1, Codec.ALAW: 6, Codec.MULAW: 7}
_CODECS_BY_TAG = {tag: codec for codec, tag in WAVE_FORMAT_TAGS.items()}


def wav_bytes(payload: bytes, fmt: AudioFormat) -> bytes:
    """Encoded mono samples (bytes in fmt.codec) -> a complete WAV file."""
    width = fmt.bytes_per_sample
    if len(payload) % width:
        raise AudioFormatError(f"{len(payload)} bytes is not a whole number of {fmt.codec} samples")
    tag = WAVE_FORMAT_TAGS[fmt.codec]
    header = struct.pack("<HHIIHH", tag, 1, fmt.sample_rate, fmt.sample_rate * width, width, 8 * width)
    chunks = [b"fmt " + struct.pack("<I", len(header)) + header] if tag == 1 else [
        b"fmt " + struct.pack("<I", len(header) + 2) + header + b"\0\0",  # cbSize 0
        b"fact" + struct.pack("<II", 4, len(payload) // width),
    ]
    data = b"data" + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    body = b"WAVE" + b"".join(chunks) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: Path, payload: bytes, fmt: AudioFormat) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(payload, fmt))


def parse_wav(blob: bytes) -> tuple[bytes, AudioFormat]:
    """A mono PCM16, A-law or mu-law WAV -> (encoded samples, their format)."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    fmt: AudioFormat | None = None
    offset = 12
    while offset + 8 <= len(blob):
        name, size = blob[offset:offset + 4], struct.unpack_from("<I", blob, offset + 4)[0]
        body = blob[offset + 8:offset + 8 + size]
        if name == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag not in _CODECS_BY_TAG or channels != 1:
                raise AudioFormatError(f"WAVE format {tag} with {channels} channels; expected mono 1, 6 or 7")
            fmt = AudioFormat(_CODECS_BY_TAG[tag], rate)
            if bits != 8 * fmt.bytes_per_sample:
                raise AudioFormatError(f"{bits}-bit samples in a WAVE format {tag} file")
        elif name == b"data":
            if fmt is None:
                raise AudioFormatError("the data chunk comes before the fmt chunk")
            return body, fmt
        offset += 8 + size + (size % 2)
    raise AudioFormatError("no data chunk")
