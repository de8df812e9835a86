"""Whether what the caller says over the bot is meant to cut in: the words part of the barge-in rule.

The other parts are the recognizer's (SpeechLasting: the caller has spoken long enough to be more than
a cough) and the session's comparison of the caller's audio with the bot's (core.echo). Words do not cut in when they are a backchannel ("嗯", "对", "好的好的": the caller follows)
or the bot's own voice coming back through a speakerphone, whose transcript is mostly made of what
the bot is saying: compared by sound (toneless pinyin), since Whisper writes a muffled echo of
"欢迎致电云帆通信" as "在营治殿允翻通行". (The session also compares the audio itself: core.echo.)

Objections ("不对", "等一下", "停") are the exception to lasting: they are short, and a caller who says one
over the bot wants it to stop, so an utterance made only of them cuts in once its words are known. Whisper
often loses the first consonant of such a clipped word (it wrote the bundled voice's "不对" as "无对"), so
they are also compared by sound: the same syllables, the first of a word of two or more allowed another
initial consonant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pypinyin import Style, lazy_pinyin

from asr.cer import normalize_for_cer
from tts.text_norm import normalize_for_speech

# Around an objection: a caller's "哎，等一下啊" or "不对吧" is still only the objection.
_LEAD_IN = "(?:哎|诶|唉|喂|欸)?"
_PARTICLES = "(?:啊|呀|吧|了|嘛|哈|呢)*"
# The same, as _sounds() writes them.
_LEAD_IN_SOUNDS = "(?:(?:ai|ei|wei)/[a-z]* )?"
_PARTICLE_SOUNDS = "(?:(?:a|ya|ba|le|ma|ha|ne)/[a-z]* )*"
# A number is never an objection by sound: "五十" sounds like "不是", and a caller may repeat a price.
_NUMERALS = re.compile(r"[0-9零〇一二两三四五六七八九十百千万幺]")


class CutInRules:
    def __init__(self, backchannels: Iterable[str], echo_share: float, objections: Iterable[str] = ()) -> None:
        objections = tuple(objections)
        self._backchannel = _run_of(backchannels)
        objection = _run_of(objections)
        self._objection = re.compile(_LEAD_IN + objection.pattern + _PARTICLES) if objection else None
        sounds = sorted({_sound_pattern(w) for w in map(normalize_for_cer, objections) if w}, key=len, reverse=True)
        self._objection_sounds = (
            re.compile("(?:" + _LEAD_IN_SOUNDS + "(?:" + "|".join(sounds) + "))+" + _PARTICLE_SOUNDS) if sounds else None
        )
        self.echo_share = echo_share

    def meant(self, heard: str, bot_said: str) -> bool:
        """True when `heard`, said over the bot while it says `bot_said`, asks for the turn."""
        said_something = bool(normalize_for_cer(heard))
        return said_something and not self.is_backchannel(heard) and not self.is_echo(heard, bot_said)

    def objects(self, heard: str, bot_said: str) -> bool:
        """True when `heard`, however short, said over the bot while it says `bot_said`, asks it to stop."""
        return self.is_objection(heard) and not self.is_backchannel(heard) and not self.is_echo(heard, bot_said)

    def is_backchannel(self, heard: str) -> bool:
        return _fullmatch(self._backchannel, heard)

    def is_objection(self, heard: str) -> bool:
        if _fullmatch(self._objection, heard):
            return True
        folded = normalize_for_cer(heard)
        if self._objection_sounds is None or not folded or _NUMERALS.search(folded):
            return False
        return self._objection_sounds.fullmatch(_sounds(folded)) is not None

    def is_echo(self, heard: str, bot_said: str) -> bool:
        """Most of what was heard is in what the bot is saying (numbers compared as they are spoken)."""
        said = _syllables(bot_said)
        ours = {*_pieces(said), *((syllable,) for syllable in said)}
        theirs = _pieces(_syllables(heard))
        if not theirs or not ours:
            return False
        return sum(piece in ours for piece in theirs) / len(theirs) >= self.echo_share


def _run_of(words: Iterable[str]) -> re.Pattern[str] | None:
    """Any run of the words ("好的好的", "不对不对"), compared as normalize_for_cer folds them."""
    folded = sorted({w for w in map(normalize_for_cer, words) if w}, key=len, reverse=True)
    return re.compile("(?:" + "|".join(map(re.escape, folded)) + ")+") if folded else None


def _fullmatch(pattern: re.Pattern[str] | None, heard: str) -> bool:
    folded = normalize_for_cer(heard)
    return pattern is not None and bool(folded) and pattern.fullmatch(folded) is not None


def _sounds(text: str) -> str:
    """Each syllable as "full/final " in toneless pinyin: 不对 -> "bu/u dui/ui "."""
    full = lazy_pinyin(text)
    finals = lazy_pinyin(text, style=Style.FINALS, strict=False)
    return "".join(f"{syllable}/{final} " for syllable, final in zip(full, finals, strict=True))


def _sound_pattern(word: str) -> str:
    """A word's sounds as a pattern; with two syllables or more the first may begin with any consonant."""
    sounds = _sounds(word).split(" ")[:-1]
    first = sounds[0]
    if len(sounds) > 1:
        first = "[a-z]*/" + re.escape(first.split("/")[1])
    return "".join(f"{piece} " for piece in [first, *map(re.escape, sounds[1:])])


def _syllables(text: str) -> list[str]:
    folded = normalize_for_cer(normalize_for_speech(text)) if text else ""
    return lazy_pinyin(folded) if folded else []


def _pieces(syllables: list[str]) -> list[tuple[str, ...]]:
    """Pairs of syllables (a single one when that is all there is): Whisper gets some syllables of an
    echo wrong, but most pairs survive, and a caller's own sentence shares few with the bot's."""
    if len(syllables) < 2:
        return [tuple(syllables)] if syllables else []
    return [tuple(syllables[i : i + 2]) for i in range(len(syllables) - 1)]
