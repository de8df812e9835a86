"""PII redaction for stored transcripts and logs, and requests that must not be served."""

from __future__ import annotations

import re

from dialogue.slots import spoken_digits_to_numerals

_ID_CARD = re.compile(r"\d{6}(?:19|20)\d{2}\d{2}\d{2}\d{3}[\dXx]")
_PHONE = re.compile(r"1[3-9]\d{9}")
_LONG_NUMBER = re.compile(r"\d{7,}")


def mask_pii(text: str) -> str:
    """Mask ID-card numbers, mobile numbers and other long digit strings (spoken ones too)."""
    text = spoken_digits_to_numerals(text)
    text = _ID_CARD.sub(lambda m: m.group(0)[:4] + "*" * 10 + m.group(0)[-4:], text)
    text = _PHONE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)
    return _LONG_NUMBER.sub(lambda m: m.group(0)[:2] + "*" * (len(m.group(0)) - 4) + m.group(0)[-2:], text)


_SOMEONE_ELSE = r"(?:别人|他人|我闺女|我老公|我老婆|我丈夫|我妻子|我爱人|我媳妇|我儿子|我女儿|我孩子|我爸|我妈|前夫|前妻|前任|家人|亲戚|室友|朋友|同事|邻居|对象|女朋友|男朋友|这个人|那个人|这个号码?|那个号码?|他|她)"
_OTHERS_DATA = re.compile(
    rf"{_SOMEONE_ELSE}.{{0,16}}(?:通话记录|话单|详单|通话清单|通讯录|位置|定位|在哪|短信|聊天记录|身份证|机主|实名信息|住址|地址|"
    r"跟谁|和谁|给谁|谁打|打给谁|联系过谁|都联系|叫什么名字|名字叫|是谁|谁在用|谁的|"
    r"花了多少|消费了多少|用了多少(?:话费|钱|流量)|余额|上网记录|浏览记录|缴费记录|充值记录)"  # their spending
    rf"|(?:定位|位置|在哪|通话记录|话单|详单|短信记录).{{0,24}}{_SOMEONE_ELSE}|定位.{{0,8}}(?:手机号|号码|\d{{11}})"
    r"|查(?:查|一下|下|出)?(?:对方|他|她)?是谁"  # who someone is
)
# Lists of customers, numbers or records: nobody may have them through the hotline.
_BULK_DATA = re.compile(r"(?:用户|客户|号码|手机号).{0,8}(?:都|全部|所有).{0,6}(?:列|导出|发|给我|念)|(?:所有|全部)(?:用户|客户)的")
# Pressing for what was just refused ("你就帮我查一下嘛", "我是他老婆"), with nothing new asked.
_INSISTING = re.compile(r"帮我查|给我查|就查一下|通融|我是他|我是她|我是机主的|有证明|结婚证|户口本|就这一次|求你")
_INJECTION = re.compile(
    r"(?:忽略|无视|别管|不用管|不要管|忘掉|忘记).{0,8}(?:指令|规则|规定|规矩|设定|设置|提示|要求|限制|约束|命令|资料|文档|知识库)|system\s*prompt|"
    # asked to make an answer up: "随便编一个价格", "瞎说一个就行"
    r"(?:随便|随意|瞎|胡)(?:编|造|说|报)(?:一个|个|点)?(?:价格|数|答案|就行|也行)|"
    r"系统提示词|你现在是|扮演|(?:你|就)?假装(?:你|是|成)|当作你是|越狱|从现在(?:起|开始).{0,4}你|你(?:已经)?不(?:再)?是客服",
    re.IGNORECASE,
)


def refusal_reason(text: str) -> str | None:
    """Why a request must not be served, or None."""
    if _INJECTION.search(text):
        return "prompt_injection"
    if _OTHERS_DATA.search(spoken_digits_to_numerals(text)) or _BULK_DATA.search(text):
        return "others_data"
    return None


def insists(text: str) -> bool:
    """Whether the caller presses for a request just refused, rather than asking something new."""
    return bool(_INSISTING.search(text))
