"""Numbers as people say them, written as digits: "一百二十九" -> "129", "二十块" -> "20块"."""

from __future__ import annotations

import re
from typing import Final

_DIGITS: Final[dict[str, int]] = dict(
    zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_UNITS: Final[dict[str, int]] = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_DIGITS_TO_CHAR: Final[dict[str, str]] = {"二": "二", "两": "二"} | {c: c for c in "一三四五六七八九"}
_LOWER_UNIT: Final[dict[str, str]] = {"百": "十", "千": "百", "万": "千"}
_CHINESE_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万]{2,}|十|[一二两三四五六七八九](?=个?[gG]|块|元|兆)")


def chinese_to_digits(text: str) -> str:
    """Spoken numbers to digits ("一百二十九" -> "129", "二十块" -> "20块"); lone digits like "一下" stay."""
    return _CHINESE_NUMBER.sub(_replace_number, text)


def _replace_number(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 1 and run in _DIGITS:  # a lone digit before a unit: 五个G, 两块
        return str(_DIGITS[run])
    if not any(char in _UNITS for char in run):
        # "一一零" reads digit by digit; but "一一" or "两三" are words, not numbers
        return "".join(str(_DIGITS[char]) for char in run) if len(run) >= 3 else run
    value = _parse_with_units(run)
    return run if value is None else str(value)


def _parse_with_units(run: str) -> int | None:
    total, section, digit = 0, 0, None
    if len(run) >= 3 and run[-1] in _DIGITS and run[-2] in ("百", "千", "万"):
        # colloquial "一百二" = 120, "一万二" = 12000: the trailing digit counts in the next lower unit
        return _parse_with_units(run[:-1] + _DIGITS_TO_CHAR[run[-1]] + _LOWER_UNIT[run[-2]])
    for char in run:
        if char in ("零", "〇"):  # a placeholder between units ("一百零二")
            continue
        if char in _DIGITS:
            if digit is not None:  # "二三十" (an approximate range) is not a single number
                return None
            digit = _DIGITS[char]
        elif char == "万":
            section = (section + (digit or 0)) or 1
            total, section, digit = total + section * 10000, 0, None
        else:
            section += (1 if digit is None else digit) * _UNITS[char]
            digit = None
    return total + section + (digit or 0)
