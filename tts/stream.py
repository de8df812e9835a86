"""Speak a reply clause by clause: the caller hears the first clause while the rest is synthesized."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import jieba
import numpy as np

from core.audio import AudioFormat, encode, resample
from core.concurrency import InferencePool
from tts.base import Synthesizer
from tts.text_norm import normalize_for_speech, pause_after

MIN_CLAUSE_CHARS = 5
MAX_CLAUSE_CHARS = 40
# A sentence's first clause is cut after the word that reaches this many spoken characters, so its first
# audio comes after a short synthesis (~0.2 s) rather than a whole clause's (up to 0.6 s on 2 cores).
FIRST_PIECE_CHARS = 8

# After a clause mark; an ASCII comma between digits (1,299) is a thousands separator, not a pause.
_CLAUSE_END = re.compile(r"(?<=[。！？；，!?;\n])|(?<=,)(?!\d)")
_SOFT_BREAK = re.compile(r"(?<=[、：:\s])")
_PARTICLES = frozenset("了的着过地得吗呢吧啊")  # they end the word before them: never a piece's first word
_NOT_SPOKEN = re.compile(r"[\s，、：；。！？,.!?;:]")


def _spoken_length(text: str) -> int:
    return len(_NOT_SPOKEN.sub("", text))


def _end_line(piece: str) -> str:
    """A line that ends without a mark still ends a sentence once lines are joined."""
    stripped = piece.strip()
    if piece.endswith("\n") and stripped and stripped[-1] not in "，、：；。！？,.!?;:":
        return stripped + "。"
    return stripped


def _bound(clause: str, max_chars: int) -> list[str]:
    """Cut a clause longer than max_chars at soft breaks (、：space), else every max_chars characters."""
    if len(clause) <= max_chars:
        return [clause]
    pieces: list[str] = []
    current = ""
    for part in _SOFT_BREAK.split(clause):
        while len(part) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(part[:max_chars])
            part = part[max_chars:]
        if len(current) + len(part) > max_chars:
            pieces.append(current)
            current = ""
        current += part
    if current:
        pieces.append(current)
    return [piece for piece in (p.strip() for p in pieces) if piece]


def split_clauses(
    text: str, *, min_chars: int = MIN_CLAUSE_CHARS, max_chars: int = MAX_CLAUSE_CHARS
) -> list[str]:
    """Split at 。！？；，,!?; and newlines; merge pieces under min_chars, cut pieces over max_chars."""
    if min_chars < 0 or max_chars < 1:
        raise ValueError(f"need min_chars >= 0 and max_chars >= 1, got {min_chars} and {max_chars}")
    raw = [_end_line(piece) for piece in _CLAUSE_END.split(text)]
    clauses: list[str] = []
    pending = ""
    for piece in raw:
        if not piece:
            continue
        pending += piece
        if _spoken_length(pending) >= min_chars:
            clauses.extend(_bound(pending, max_chars))
            pending = ""
    if pending:
        if clauses and _spoken_length(pending) < min_chars and len(clauses[-1]) + len(pending) <= max_chars:
            clauses[-1] += pending
        else:
            clauses.extend(_bound(pending, max_chars))
    return [clause for clause in clauses if _spoken_length(clause)]


def quick_start(clause: str, chars: int = FIRST_PIECE_CHARS) -> list[str]:
    """`clause` as a short first piece and the rest: up to its first inner mark ("好的，" of
    "好的，已经登记了"), else whole words up to about `chars` spoken characters; a clause not much
    longer than that stays whole."""
    inner = _CLAUSE_END.split(clause.rstrip("，、：；。！？,.!?;:"), maxsplit=1)
    if len(inner) == 2 and _spoken_length(inner[0]):
        return [inner[0], clause[len(inner[0]):]]
    if _spoken_length(clause) <= chars * 3 // 2:
        return [clause]
    head = ""
    for word in jieba.cut(clause):
        if _spoken_length(head) >= chars and word not in _PARTICLES:
            break
        head += word
    rest = clause[len(head):]
    return [head, rest] if _spoken_length(rest) else [clause]


@dataclass
class SpokenClauses:
    """How a reply's audio lines up with its text: each clause synthesized so far, as (spoken characters,
    samples of audio), out of `total_chars` spoken characters in the whole reply."""

    total_chars: int = 0
    clauses: list[tuple[int, int]] = field(default_factory=list)

    def heard_share(self, samples_played: int) -> float:
        """The share of the reply's spoken characters heard once `samples_played` samples have played.

        Within the clause that was playing, characters count as heard in the share of its samples played:
        a voice speaks a clause at a roughly even pace, so that is where the caller stopped listening."""
        if self.total_chars <= 0:
            return 0.0
        heard = 0.0
        for chars, samples in self.clauses:
            if samples_played >= samples:
                heard += chars
                samples_played -= samples
                continue
            heard += chars * samples_played / samples if samples > 0 else 0.0
            break
        return min(1.0, heard / self.total_chars)


def text_prefix(text: str, share: float) -> str:
    """The start of `text` that holds `share` of its spoken characters (marks and spaces are not spoken,
    and a mark right after the last spoken character is kept with it)."""
    wanted = round(share * _spoken_length(text))
    if wanted <= 0:
        return ""
    spoken = 0
    for index, char in enumerate(text):
        if not _NOT_SPOKEN.fullmatch(char):
            spoken += 1
            if spoken == wanted:
                end = index + 1
                while end < len(text) and _NOT_SPOKEN.fullmatch(text[end]) and not text[end].isspace():
                    end += 1
                return text[:end]
    return text


def frame_size(fmt: AudioFormat, frame_ms: int) -> int:
    """Bytes in one frame of frame_ms in fmt; the frame must hold a whole number of samples."""
    samples, remainder = divmod(fmt.sample_rate * frame_ms, 1000)
    if frame_ms <= 0 or remainder:
        raise ValueError(f"{frame_ms} ms is not a whole number of samples at {fmt.sample_rate} Hz")
    return samples * fmt.bytes_per_sample


def _clause_audio(synth: Synthesizer, clause: str, sample_rate: int, trailing_pause: float) -> np.ndarray:
    """Blocking: one clause -> int16 at sample_rate, with the pause that follows it."""
    pcm = resample(synth.synthesize(clause), synth.sample_rate, sample_rate)
    if trailing_pause <= 0:
        return pcm
    return np.concatenate([pcm, np.zeros(int(trailing_pause * sample_rate), dtype=np.int16)])


async def speak(
    synth: Synthesizer, pool: InferencePool, text: str, fmt: AudioFormat, frame_ms: int = 20,
    spoken: SpokenClauses | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield the reply as frames of exactly frame_ms in the call's codec and rate.

    The next clause is synthesized while the current one's frames are sent. Closing or cancelling
    the generator (barge-in) drops queued clauses at once; a clause already running in the pool
    finishes in the background (one clause, well under a second) and its audio is discarded.
    `spoken`, when given, is filled in clause by clause (what part of the text the audio so far says).
    """
    size = frame_size(fmt, frame_ms)
    clauses = split_clauses(normalize_for_speech(text))
    if clauses:
        clauses[:1] = quick_start(clauses[0])
    if spoken is not None:
        spoken.total_chars = sum(map(_spoken_length, clauses))

    def job(index: int) -> asyncio.Future[np.ndarray]:
        clause = clauses[index]
        # a piece cut between words runs on into the next without a pause
        at_a_mark = index + 1 < len(clauses) and not _spoken_length(clause[-1])
        pause = pause_after(clause) if at_a_mark else 0.0
        return asyncio.ensure_future(pool.run(_clause_audio, synth, clause, fmt.sample_rate, pause))

    pending = b""
    next_index = 0
    upcoming = job(0) if clauses else None
    try:
        while upcoming is not None:
            pcm = await upcoming
            if spoken is not None:
                spoken.clauses.append((_spoken_length(clauses[next_index]), len(pcm)))
            next_index += 1
            upcoming = job(next_index) if next_index < len(clauses) else None
            pending += encode(pcm, fmt.codec)
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if pending:
            silence = encode(np.zeros((size - len(pending)) // fmt.bytes_per_sample, np.int16), fmt.codec)
            yield pending + silence
    finally:
        if upcoming is not None:
            upcoming.cancel()
