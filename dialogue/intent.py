"""The caller's intent from what they said, by rules that are cheap and predictable."""

from __future__ import annotations

import re
from enum import StrEnum

from pypinyin import lazy_pinyin


class Intent(StrEnum):
    CONSULTATION = "consultation"
    FAULT_REPORT = "fault_report"
    COMPLAINT = "complaint"
    SERVICE_REQUEST = "service_request"
    ESCALATION = "escalation"
    GOODBYE = "goodbye"
    OTHER = "other"


_ESCALATION = re.compile(r"人工|真人|转接|接线员|客服代表|经理|领导|主管|不跟机器|不要机器|解决不了|听不懂|整不明白|说不明白")
# The same request as it sounds, so that a misheard 转人工客服 (转员工克服) still reaches a human.
_ESCALATION_SOUNDS = re.compile(r"\bren gong\b|\bzhuan( \w+){0,3} ke fu\b|\bzhen ren\b")
_COMPLAINT = re.compile(r"投诉|举报|曝光")
_GOODBYE = re.compile(r"^(好的?|嗯|行|那)?\s*(谢谢|多谢|再见|拜拜|没有了|没事了|就这样)[了吧啊呀]?\s*(再见|拜拜)?$")
_FAULT = re.compile(
    r"(宽带|网络?|wifi|无线|光猫|路由|信号|手机|电话|上网|网速).{0,12}"
    r"(断|不通|上不了|上不去|连不上|没有?网|没有?信号|冇|上唔到|掉线|掉话|慢|卡|坏|故障|不亮|红|闪|用不了|打不出|打不了)"
    r"|没有?网|没有?信号|一格信号|报.{0,2}故障|报修|断网|LOS",
    re.IGNORECASE,
)
_SERVICE = re.compile(
    r"停机保号|保号|补卡|补办|换卡|换套餐|改套餐|换成|变更|装.{0,2}宽带|办.{0,3}宽带|移机|发票|补偿|赔偿|预约|申请|开通|取消|退订"
)

# A question about a topic is a consultation, not a request to act on it.
_QUESTION = re.compile(r"想问|问一下|问下|问问|请问|多少钱|多少天|多久|什么意思|啥意思|是不是|要带|带什么|带啥|哪些|能不能|可不可以|吗|呢")
_STRONG_QUESTION = re.compile(r"想问|问一下|问下|问问|请问|什么意思|啥意思|怎么回事|要带|带什么|带啥|多少钱")
_EXPLICIT_ACT = re.compile(r"我要投诉|我想投诉|要投诉|帮我(办|报|登记|预约|申请)|给我(办|报|登记)|我要报修|我想报修")


def sounds(text: str) -> str:
    """Toneless pinyin of the Chinese in `text`, syllables separated by spaces."""
    return " ".join(lazy_pinyin(text, errors="ignore"))


def classify_intent(text: str) -> Intent:
    if _ESCALATION.search(text) or _ESCALATION_SOUNDS.search(sounds(text)):
        return Intent.ESCALATION
    acting = bool(_EXPLICIT_ACT.search(text))
    if _COMPLAINT.search(text) and (acting or not _QUESTION.search(text)):
        return Intent.COMPLAINT
    if _FAULT.search(text) and (acting or not _STRONG_QUESTION.search(text)):
        return Intent.FAULT_REPORT
    if _SERVICE.search(text) and (acting or not _QUESTION.search(text)):
        return Intent.SERVICE_REQUEST
    if _GOODBYE.match(text.strip("，。！？,.!? ")):
        return Intent.GOODBYE
    return Intent.CONSULTATION
