"""The dialogue's form of a final transcript: dialect words in Mandarin, spoken numbers as digits.

The verbatim transcript stays as the recognizer wrote it (stored, shown to agents); this form is what
the dialogue reads, so "我嘅号码係幺三八零零幺二三四五六" and "我的号码是13800123456" are one request.
"""

from __future__ import annotations

import re

from asr.dialects import to_mandarin
from core.numbers import chinese_to_digits

# 幺 is how 一 is read in phone numbers; only inside a run of numerals is it a digit (幺妹 is a word).
_SPOKEN_DIGIT_RUN = re.compile(r"[零〇幺一二两三四五六七八九]{3,}")


def for_dialogue(text: str, dialect: str | None) -> str:
    mandarin = to_mandarin(text, dialect)
    return chinese_to_digits(_SPOKEN_DIGIT_RUN.sub(lambda m: m.group(0).replace("幺", "一"), mandarin))
