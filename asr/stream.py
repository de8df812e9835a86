"""Streaming recognition of one call: VAD endpointing, partial and final transcripts.

Audio is brought to 16 kHz and scored by the VAD off the event loop, then cut into the VAD's
512-sample windows and run through a small state machine (idle -> speaking -> idle). Partials
re-transcribe the utterance so far (greedy drafts, at most `partial_interval_s` of audio apart).

Fast finals: when the caller pauses (`speculate_after_s` of silence) the utterance is transcribed
at once, as a final would be. If the caller goes on speaking that result becomes a partial; if the
pause lasts, it is the final, so the final costs no decoding after the endpoint. How long a pause
must last depends on what was said (asr.turns): `endpoint_silence_s` after a finished request,
`hold_silence_s` after "我的号码是一三八…" or "因为". A final always covers every window the VAD
heard as speech: the speculation is used only if no speech came after the audio it decoded.

Lasting speech: with `lasting_s` set, an utterance whose speech reaches it is reported once
(SpeechLasting: a caller talking over the bot means it, a cough or "嗯" does not), and a partial is
decoded at once; partials begun before that moment are no longer reported, so every partial after
SpeechLasting covers at least that much speech.

Transcription runs in the shared InferencePool (finals and speculations ahead of partials, whatever
call queued them) while this call keeps reading audio, so an onset (barge-in) is reported even while
a final is being computed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import firwin, lfilter, lfilter_zi

from asr.base import AsrInputError, DialectIdentifier, Transcriber, Transcript, VoiceActivityDetector
from asr.dialects import route_dialect
from asr.normalize import for_dialogue
from asr.turns import sounds_complete
from core.audio import SUPPORTED_RATES, AudioChunk, from_float, to_float
from core.concurrency import InferencePool
from core.events import AsrEvent, FinalTranscript, PartialTranscript, SpeechLasting, SpeechStarted

SAMPLE_RATE = 16000


PARTIAL_PRIORITY = 0
FINAL_PRIORITY = 10  # finals and pause-time speculations go ahead of every call's partials


@dataclass(frozen=True)
class EndpointOptions:
    start_threshold: float = 0.5  # VAD probability that counts as speech while idle
    end_threshold: float = 0.35  # below this, while speaking, counts as silence (hysteresis)
    min_speech_s: float = 0.2  # continuous speech needed before an onset is declared
    endpoint_silence_s: float = 0.3  # silence that ends an utterance that sounds finished
    hold_silence_s: float = 1.0  # silence that ends one that does not (or whose text is not known yet)
    speculate_after_s: float = 0.08  # silence after which the utterance so far is transcribed as a final
    partial_interval_s: float = 0.6  # utterance audio between two partials
    max_utterance_s: float = 20.0  # an utterance this long is cut and a new one begins
    # Audio kept before the onset. A short first word ("对，", "那请问") comes before the speech that
    # makes the onset: measured on 24 Mandarin clips, 0.3 s lost it (CER 16.4 %), 0.6 s kept it (14.0 %).
    preroll_s: float = 0.6
    # Silence kept after the last speech in a final's audio; a final decoded when the pause began (at
    # `speculate_after_s`) has only that much.
    tail_s: float = 0.2
    # Speech after which the utterance is reported as lasting (SpeechLasting, e.g. for a barge-in); None: never.
    lasting_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.end_threshold <= self.start_threshold < 1.0:
            raise ValueError(
                f"need 0 < end_threshold <= start_threshold < 1, got {self.end_threshold}, "
                f"{self.start_threshold}"
            )
        for name in ("min_speech_s", "endpoint_silence_s", "partial_interval_s", "max_utterance_s",
                     "speculate_after_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hold_silence_s < self.endpoint_silence_s:
            raise ValueError("hold_silence_s cannot be shorter than endpoint_silence_s")
        if self.speculate_after_s > self.endpoint_silence_s:
            raise ValueError("speculate_after_s must not exceed endpoint_silence_s")
        if self.preroll_s < 0 or self.tail_s < 0:
            raise ValueError("preroll_s and tail_s cannot be negative")
        if self.lasting_s is not None and self.lasting_s <= 0:
            raise ValueError(f"lasting_s must be positive, got {self.lasting_s}")


class StreamingUpsampler:
    """8 kHz (or 16 kHz) int16 -> 16 kHz int16, chunk by chunk, with filter state kept across chunks.

    Resampling each chunk on its own would taper every chunk's edges and put a click at each frame.
    """

    def __init__(self, source_rate: int, *, taps: int = 63) -> None:
        if source_rate not in SUPPORTED_RATES:
            raise AsrInputError(
                f"sample rate {source_rate} Hz is not supported; use one of {SUPPORTED_RATES}"
            )
        self.source_rate = source_rate
        self._factor = SAMPLE_RATE // source_rate
        self._filter = firwin(taps, 1.0 / self._factor) * self._factor if self._factor > 1 else None
        self._state = lfilter_zi(self._filter, 1.0) * 0.0 if self._filter is not None else None

    def push(self, pcm: np.ndarray) -> np.ndarray:
        if self._filter is None or len(pcm) == 0:
            return pcm
        stuffed = np.zeros(len(pcm) * self._factor, dtype=np.float64)
        stuffed[:: self._factor] = pcm
        out, self._state = lfilter(self._filter, 1.0, stuffed, zi=self._state)
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class _Onset:
    at_sample: int


@dataclass(frozen=True)
class _Lasting:
    at_sample: int
    speech_samples: int


@dataclass(frozen=True)
class _Endpoint:
    audio: np.ndarray  # float32 at 16 kHz, pre-roll and tail included
    start_sample: int
    end_sample: int


class _Endpointer:
    """The per-window state machine: speech probability in, onsets and endpoints out."""

    def __init__(self, options: EndpointOptions, window: int) -> None:
        self._options = options
        self._window = window
        self._preroll: deque[np.ndarray] = deque(
            maxlen=max(0, round(options.preroll_s * SAMPLE_RATE / window))
        )
        self._candidate: list[np.ndarray] = []
        self._candidate_start = 0
        self._utterance: list[np.ndarray] | None = None
        self._utterance_start = 0
        self._utterance_offset = 0  # samples of pre-roll before `_utterance_start`
        self._last_speech_end = 0
        self._silence = 0
        self._speech = 0  # samples of the open utterance the VAD called speech
        self._lasting_said = False
        self._position = 0  # end of the last window pushed
        self._required_silence = self._samples(options.hold_silence_s)

    @property
    def speaking(self) -> bool:
        return self._utterance is not None

    def utterance_audio(self) -> np.ndarray:
        return np.concatenate(self._utterance) if self._utterance else np.zeros(0, np.float32)

    @property
    def pausing(self) -> bool:
        """Speaking, but the last window was silence: an endpoint may be near."""
        return self._utterance is not None and self._silence > 0

    @property
    def silence_samples(self) -> int:
        return self._silence if self._utterance is not None else 0

    @property
    def lasting(self) -> bool:
        """The open utterance has been reported as lasting."""
        return self._utterance is not None and self._lasting_said

    @property
    def last_speech_end(self) -> int:
        return self._last_speech_end

    @property
    def utterance_samples(self) -> int:
        return len(self._utterance) * self._window if self._utterance else 0

    def judge_turn(self, finished: bool | None) -> None:
        """How long the current pause must last: short after a finished request, long otherwise."""
        seconds = self._options.endpoint_silence_s if finished else self._options.hold_silence_s
        self._required_silence = self._samples(seconds)

    def endpoint_due(self) -> bool:
        return self._utterance is not None and self._silence >= self._required_silence

    def push(self, window: np.ndarray, probability: float, start: int) -> list[_Onset | _Lasting | _Endpoint]:
        self._position = start + self._window
        if self._utterance is None:
            return self._push_idle(window, probability, start)
        return self._push_speaking(window, probability, start)

    def close(self) -> _Endpoint | None:
        """The open utterance ends now (at the end of the stream, or when its pause is long enough)."""
        return self._close(self._position) if self._utterance is not None else None

    def final_audio(self) -> np.ndarray:
        """What a final made now would decode: the utterance up to its last speech and the tail."""
        return self._final_audio(self._position)

    def _samples(self, seconds: float) -> int:
        return round(seconds * SAMPLE_RATE)

    def _push_idle(self, window: np.ndarray, probability: float, start: int) -> list[_Onset | _Lasting | _Endpoint]:
        if probability < self._options.start_threshold:
            self._preroll.extend(self._candidate)
            self._preroll.append(window)
            self._candidate = []
            return []
        if not self._candidate:
            self._candidate_start = start
        self._candidate.append(window)
        if len(self._candidate) * self._window < self._options.min_speech_s * SAMPLE_RATE:
            return []
        self._open(list(self._preroll) + self._candidate, self._candidate_start, start + self._window)
        self._preroll.clear()
        self._candidate = []
        return [_Onset(self._utterance_start), *self._lasting(start + self._window)]

    def _push_speaking(self, window: np.ndarray, probability: float, start: int) -> list[_Onset | _Lasting | _Endpoint]:
        assert self._utterance is not None
        self._utterance.append(window)
        end = start + self._window
        if probability >= self._options.end_threshold:
            if self._silence:
                self.judge_turn(None)  # the caller went on: the next pause is judged afresh
            self._silence = 0
            self._last_speech_end = end
            self._speech += self._window
        else:
            self._silence += self._window
        if self.endpoint_due():
            return [self._close(end)]
        if end - self._utterance_start >= self._options.max_utterance_s * SAMPLE_RATE:
            # Cut where we are (possibly mid-word) and go straight on with a new utterance.
            endpoint = self._close(end, cut=True)
            self._open([], end, end)
            return [endpoint, _Onset(end)]
        return [*self._lasting(end)]

    def _lasting(self, now: int) -> list[_Lasting]:
        """Once per utterance, when its speech first reaches `lasting_s`."""
        lasting_s = self._options.lasting_s
        if lasting_s is None or self._lasting_said or self._speech < lasting_s * SAMPLE_RATE:
            return []
        self._lasting_said = True
        return [_Lasting(now, self._speech)]

    def _open(self, windows: list[np.ndarray], start: int, end: int) -> None:
        """Begin an utterance whose speech runs from `start` to `end`, the end of `windows`."""
        self._utterance = windows
        self._utterance_offset = sum(len(w) for w in windows) - (end - start)
        self._utterance_start = start
        self._last_speech_end = end
        self._silence = 0
        self._speech = end - start
        self._lasting_said = False
        self.judge_turn(None)

    def _final_audio(self, now: int, *, cut: bool = False) -> np.ndarray:
        end = now if cut else min(now, self._last_speech_end + round(self._options.tail_s * SAMPLE_RATE))
        return self.utterance_audio()[: self._utterance_offset + end - self._utterance_start]

    def _close(self, now: int, *, cut: bool = False) -> _Endpoint:
        audio = self._final_audio(now, cut=cut)
        speech_end = now if cut else self._last_speech_end
        endpoint = _Endpoint(audio, self._utterance_start, speech_end)
        self._preroll.clear()
        if not cut and self._preroll.maxlen:
            # The silence that ended this utterance is the pre-roll of the next one (never its speech).
            silent_windows = (now - self._last_speech_end) // self._window
            if silent_windows > 0 and self._utterance:
                self._preroll.extend(self._utterance[-silent_windows:])
        self._utterance = None
        return endpoint


@dataclass
class _Partial:
    utterance: int
    task: asyncio.Future[Transcript]
    lasting: bool  # started once the utterance was lasting


@dataclass
class _Speculation:
    """A final-quality transcription started in a pause; valid while no speech follows `speech_end`."""

    utterance: int
    speech_end: int
    task: asyncio.Future[Transcript]
    lasting: bool


@dataclass
class _Final:
    endpoint: _Endpoint
    task: asyncio.Future[Transcript]


Transcribe = Callable[[np.ndarray, bool], "asyncio.Future[Transcript]"]


class StreamingAsr:
    """One call's recognizer (StreamingRecognizer). The transcriber and pool are shared across calls.

    Events leave in the order of the audio: an onset heard while the previous utterance's final is
    still being computed is held until that final is out, so each SpeechStarted precedes its own
    utterance's partials and final.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        vad_factory: Callable[[], VoiceActivityDetector],
        pool: InferencePool,
        options: EndpointOptions | None = None,
        dialect: str = "auto",
        identify: DialectIdentifier | None = None,
    ) -> None:
        route_dialect(dialect)  # an unknown dialect fails here, not in the first transcription
        self._transcriber = transcriber
        self._vad_factory = vad_factory
        self._pool = pool
        self._options = options or EndpointOptions()
        self.dialect = dialect
        # an `auto` call is identified once, on its first final of enough speech (asr.lid.AutoDialect)
        self._identify = identify if dialect == "auto" else None

    async def run(self, chunks: AsyncIterator[AudioChunk]) -> AsyncIterator[AsrEvent]:
        call = _CallState(self._vad_factory(), self._options, self._transcribe)
        source = aiter(chunks)
        reading: asyncio.Future[AudioChunk] | None = asyncio.ensure_future(anext(source))
        try:
            while reading is not None or call.outbox:
                waiting: set[asyncio.Future[Any]] = set(call.pending())
                if reading is not None:
                    waiting.add(reading)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if reading is not None and reading.done():
                    try:
                        chunk = reading.result()
                    except StopAsyncIteration:
                        reading = None
                        call.finish()
                    else:
                        reading = asyncio.ensure_future(anext(source))
                        # Resampling and the VAD run off the event loop; the state machine is cheap.
                        call.take(*await asyncio.to_thread(call.score, chunk))
                call.step()
                for event in call.ready_events():
                    yield event
        finally:
            if reading is not None:
                reading.cancel()
            call.cancel()

    def _transcribe(self, audio: np.ndarray, draft: bool) -> asyncio.Future[Transcript]:
        priority = PARTIAL_PRIORITY if draft else FINAL_PRIORITY
        return asyncio.ensure_future(
            self._pool.run(self._transcribe_blocking, from_float(audio), draft, priority=priority)
        )

    def _transcribe_blocking(self, pcm16k: np.ndarray, draft: bool) -> Transcript:
        heard = self._transcriber.transcribe(pcm16k, dialect=self.dialect, draft=draft)
        identify = self._identify
        if draft or identify is None or len(pcm16k) < identify.min_samples:
            return heard
        self._identify = None
        dialect = identify.dialect_of(pcm16k, heard)
        if dialect is None:
            return heard
        self.dialect = dialect  # the rest of the call, and this utterance again, by the dialect's route
        return self._transcriber.transcribe(pcm16k, dialect=dialect, draft=False)


class _CallState:
    """Audio position, VAD and endpointer of one call, its transcriptions in flight and its outbox."""

    def __init__(self, vad: VoiceActivityDetector, options: EndpointOptions, transcribe: Transcribe) -> None:
        if vad.sample_rate != SAMPLE_RATE:
            raise AsrInputError(f"the VAD must take {SAMPLE_RATE} Hz audio, it takes {vad.sample_rate}")
        self._vad = vad
        self._options = options
        self._transcribe = transcribe
        self._endpointer = _Endpointer(options, vad.window_size)
        self._upsampler: StreamingUpsampler | None = None
        self._unscored = np.zeros(0, dtype=np.float32)  # samples the VAD holds until a window is full
        self._position = 0  # samples at 16 kHz handed to the endpointer
        self._partial_mark = 0
        self._partial_now = False  # the utterance just became lasting: its words are wanted at once
        self._utterance_number = 0
        self._partial: _Partial | None = None
        self._speculation: _Speculation | None = None
        self.outbox: deque[AsrEvent | _Final] = deque()  # in audio order; a _Final waits for its task

    def score(self, chunk: AudioChunk) -> tuple[np.ndarray, np.ndarray]:
        """Blocking part of taking a chunk (run it in a thread): 16 kHz samples and their VAD scores."""
        pcm = self._upsample(chunk)
        return to_float(pcm), self._vad.push(pcm)

    def take(self, samples: np.ndarray, probabilities: np.ndarray) -> None:
        self._unscored = np.concatenate([self._unscored, samples])
        window = self._vad.window_size
        for index, probability in enumerate(probabilities):
            windowed = self._unscored[index * window : (index + 1) * window]
            for found in self._endpointer.push(windowed, float(probability), self._position):
                self._on(found)
            self._position += window
        self._unscored = self._unscored[len(probabilities) * window :]

    def feed(self, chunk: AudioChunk) -> None:
        self.take(*self.score(chunk))

    def finish(self) -> None:
        endpoint = self._endpointer.close()
        if endpoint is not None:
            self._on(endpoint)
        self._drop_partial()

    def pending(self) -> list[asyncio.Future[Transcript]]:
        futures = [item.task for item in self.outbox if isinstance(item, _Final)]
        for job in (self._partial, self._speculation):
            if job is not None:
                futures.append(job.task)
        return futures

    def step(self) -> None:
        """After audio or a finished transcription: collect results, judge the pause, start what is due."""
        self._collect_partial()
        self._judge_pause()
        self._start_speculation_if_due()
        self._start_partial_if_due()

    def _collect_partial(self) -> None:
        partial = self._partial
        if partial is None or not partial.task.done():
            return
        self._partial = None
        if partial.task.cancelled():
            return
        self._offer_partial(partial.utterance, partial.task.result(), partial.lasting)

    def _offer_partial(self, utterance: int, transcript: Transcript, lasting: bool) -> None:
        if utterance != self._utterance_number or not self._endpointer.speaking or not transcript.text:
            return
        if self._endpointer.lasting and not lasting:
            return  # a draft of the utterance's first instants: what follows SpeechLasting covers all of it
        self.outbox.append(PartialTranscript(transcript.text, transcript.dialect))

    def _valid_speculation(self) -> _Speculation | None:
        """The speculation, if it decoded every bit of speech of the open utterance."""
        guess = self._speculation
        if guess is None or guess.utterance != self._utterance_number or not self._endpointer.speaking:
            return None
        return guess if guess.speech_end == self._endpointer.last_speech_end else None

    def _judge_pause(self) -> None:
        guess = self._speculation
        if guess is None or not guess.task.done():
            return
        if self._valid_speculation() is None:
            self._speculation = None  # the caller went on: what it decoded is a partial now
            if not guess.task.cancelled():
                self._offer_partial(guess.utterance, guess.task.result(), guess.lasting)
            return
        if guess.task.cancelled():
            self._speculation = None
            return
        self._endpointer.judge_turn(sounds_complete(guess.task.result().text))
        if self._endpointer.endpoint_due():
            endpoint = self._endpointer.close()
            assert endpoint is not None
            self._on(endpoint)

    def _start_speculation_if_due(self) -> None:
        if self._speculation is not None or not self._endpointer.speaking:
            return
        if self._endpointer.silence_samples < self._options.speculate_after_s * SAMPLE_RATE:
            return
        self._speculation = _Speculation(
            self._utterance_number,
            self._endpointer.last_speech_end,
            self._transcribe(self._endpointer.final_audio(), False),
            self._endpointer.lasting,
        )

    def _start_partial_if_due(self) -> None:
        """One partial at a time, and none while a final waits or in a pause (a speculation runs there)."""
        if self._partial is not None or any(isinstance(item, _Final) for item in self.outbox):
            return
        if not self._endpointer.speaking or self._endpointer.pausing:
            return
        samples = self._endpointer.utterance_samples
        if self._partial_now or samples - self._partial_mark >= self._options.partial_interval_s * SAMPLE_RATE:
            self._partial = _Partial(
                self._utterance_number, self._transcribe(self._endpointer.utterance_audio(), True),
                self._endpointer.lasting,
            )
            self._partial_mark = samples
            self._partial_now = False

    def ready_events(self) -> list[AsrEvent]:
        events: list[AsrEvent] = []
        while self.outbox:
            item = self.outbox[0]
            if isinstance(item, _Final):
                if not item.task.done():
                    break
                events.extend(_final_event(item))
            else:
                events.append(item)
            self.outbox.popleft()
        return events

    def cancel(self) -> None:
        for item in self.outbox:
            if isinstance(item, _Final):
                item.task.cancel()
        self._drop_partial()
        if self._speculation is not None:
            self._speculation.task.cancel()

    def _drop_partial(self) -> None:
        if self._partial is not None:
            self._partial.task.cancel()  # a partial still queued in the pool never runs
            self._partial = None

    def _on(self, found: _Onset | _Lasting | _Endpoint) -> None:
        if isinstance(found, _Onset):
            self._utterance_number += 1
            self._partial_mark = 0
            self._partial_now = False
            self.outbox.append(SpeechStarted(at=found.at_sample / SAMPLE_RATE))
            return
        if isinstance(found, _Lasting):
            self._partial_now = True  # whoever waits on it (a barge-in) will want to know what is said
            self.outbox.append(SpeechLasting(at=found.at_sample / SAMPLE_RATE,
                                             seconds=found.speech_samples / SAMPLE_RATE))
            return
        self._drop_partial()
        guess = self._speculation
        if guess is not None and guess.speech_end == found.end_sample and guess.utterance == self._utterance_number:
            task = guess.task  # decoded exactly this speech already (or is decoding it)
        else:
            if guess is not None and not guess.task.done():
                guess.task.cancel()
            task = self._transcribe(found.audio, False)
        self._speculation = None
        self.outbox.append(_Final(found, task))

    def _upsample(self, chunk: AudioChunk) -> np.ndarray:
        pcm = np.asarray(chunk.pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise AsrInputError(f"audio chunks must be mono int16, got {pcm.dtype} with shape {pcm.shape}")
        if self._upsampler is None:
            self._upsampler = StreamingUpsampler(chunk.sample_rate)
        elif chunk.sample_rate != self._upsampler.source_rate:
            raise AsrInputError(
                f"sample rate changed from {self._upsampler.source_rate} to {chunk.sample_rate} Hz mid-call"
            )
        return self._upsampler.push(pcm)


def _final_event(final: _Final) -> list[FinalTranscript]:
    transcript = final.task.result()
    if not transcript.text:
        return []  # nothing was said, or only what Whisper invents on noise
    return [
        FinalTranscript(
            text=transcript.text,
            dialect=transcript.dialect,
            confidence=transcript.confidence,
            started_at=final.endpoint.start_sample / SAMPLE_RATE,
            ended_at=final.endpoint.end_sample / SAMPLE_RATE,
            normalized=for_dialogue(transcript.text, transcript.dialect),
        )
    ]
