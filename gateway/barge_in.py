"""Whether what the caller says over the bot is meant to cut in: the words half of the barge-in rule.

The other half is the recognizer's (SpeechLasting: the caller has spoken long enough to be more than
a cough). Words do not cut in when they are a backchannel ("嗯", "对", "好的好的": the caller follows)
or the bot's own voice coming back through a speakerphone, whose transcript is mostly made of what
the bot is saying.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from asr.cer import normalize_for_cer
from tts.text_norm import normalize_for_speech


class CutInRules:
    def __init__(self, backchannels: Iterable[str], echo_share: float) -> None:
        words = sorted({w for w in map(normalize_for_cer, backchannels) if w}, key=len, reverse=True)
        self._backchannel = re.compile("(?:" + "|".join(map(re.escape, words)) + ")+") if words else None
        self.echo_share = echo_share

    def meant(self, heard: str, bot_said: str) -> bool:
        """True when `heard`, said over the bot while it says `bot_said`, asks for the turn."""
        said_something = bool(normalize_for_cer(heard))
        return said_something and not self.is_backchannel(heard) and not self.is_echo(heard, bot_said)

    def is_backchannel(self, heard: str) -> bool:
        folded = normalize_for_cer(heard)
        return self._backchannel is not None and bool(folded) and self._backchannel.fullmatch(folded) is not None

    def is_echo(self, heard: str, bot_said: str) -> bool:
        """Most of what was heard is in what the bot is saying (numbers compared as they are spoken)."""
        said = _folded(bot_said)
        ours = {*_pieces(said), *said}
        theirs = _pieces(_folded(heard))
        if not theirs or not ours:
            return False
        return sum(piece in ours for piece in theirs) / len(theirs) >= self.echo_share


def _folded(text: str) -> str:
    return normalize_for_cer(normalize_for_speech(text)) if text else ""


def _pieces(folded: str) -> list[str]:
    """Character pairs (a single character when that is all there is): whisper gets some characters
    of an echo wrong, but most pairs survive, and a caller's own sentence shares few with the bot's."""
    if len(folded) < 2:
        return [folded] if folded else []
    return [folded[i : i + 2] for i in range(len(folded) - 1)]
