"""What callers say for a meaning that several packages read (the search, the answer, the intent):
one pattern per meaning, so that they never drift apart."""

from __future__ import annotations

import re
from typing import Final

# The caller asks what they can do about it themselves: "我能自己先弄弄吗", "自己能怎么排查", "先试试".
# "自己办的" (done by themselves) and "自己修好了" (already fixed) ask nothing.
_SELF_HELP_ACTS = r"弄|处理|解决|排查|检查|试|搞|整|查|修"
SELF_HELP: Final[re.Pattern[str]] = re.compile(
    rf"(?:自己|自个儿?|我(?=能|可以|先))(?:能|可以|先|要|该)*"
    rf"(?:(?:怎么|咋|怎样)(?:{_SELF_HELP_ACTS}|办)|(?:{_SELF_HELP_ACTS})(?![的了过好])|做(?:点|些)?什么)|自查|先试试"
)

# Something just done ("刚补了卡", "上个月刚办的"): a question after it is about what may not follow it yet.
JUST_DID: Final[str] = r"刚(?:刚|才)?(?:去|在)?(?:办|补|换|开|充|交|装|买|入网|激活)"
