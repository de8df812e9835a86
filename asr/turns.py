"""End of turn: does what the caller said so far sound like a finished request?

A short pause after "好的谢谢" ends the turn; the same pause after "我的号码是一三八" or "因为"
does not, because the caller is still going. The streaming recognizer waits longer in the second case.
"""

from __future__ import annotations

import re

from asr.cer import normalize_for_cer

# Words after which a caller is still going: connectives, "X 是", possessives, verbs wanting an object.
_CONTINUES = (
    "号码是", "电话是", "地址是", "的是", "就是", "还是", "和", "跟", "与", "或者", "还有", "以及", "因为",
    "所以", "但是", "可是", "不过", "然后", "而且", "如果", "要是", "那个", "这个", "嗯", "呃", "额", "我的",
    "你们的", "住在", "从", "把", "被", "我想", "我要", "请问", "麻烦", "帮我", "比如", "我叫", "我姓",
)
_SHORT_ANSWERS = frozenset({"是", "是的", "对", "对的", "好", "好的", "不是", "没有", "不用", "可以", "行"})
_NUMERAL_RUN = re.compile(r"[0-9零〇幺一二两三四五六七八九]+$")
_PHONE_CONTEXT = ("号码", "电话", "手机", "号是", "联系方式", "手机号")
_PHONE_DIGITS = 11


def sounds_complete(text: str) -> bool:
    """False when the text ends mid-request (a connective, an unfinished phone number); True otherwise."""
    folded = normalize_for_cer(text)
    if not folded:
        return True  # nothing heard worth waiting for
    if folded in _SHORT_ANSWERS:
        return True
    if folded.endswith(_CONTINUES):
        return False
    digits = _NUMERAL_RUN.search(folded)
    if digits and any(word in folded for word in _PHONE_CONTEXT):
        return len(digits.group(0)) >= _PHONE_DIGITS
    return True
