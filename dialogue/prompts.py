"""What the bot says by rule, and the prompt that grounds the model's answers in KB passages."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from dialogue.base import ChatMessage, KnowledgePassage

SYSTEM_PROMPT = (
    "你是{carrier}客服热线的语音客服。只根据用户消息里【资料】中的内容回答问题。"
    "用简体中文口语回答，一到三句话，不超过八十个字，不要用列表、编号或markdown。"
    "资料里没有的信息就说“抱歉，这个问题我这里查不到”，不要编造价格、数字、日期或电话号码。"
)

SLOT_QUESTIONS = {
    "phone": "请问您的联系电话是多少？",
    "address": "请告诉我具体地址，比如哪个区、哪条路、哪个小区。",
}

CATEGORY_NAMES = {
    "broadband": "宽带故障报修",
    "mobile-network": "手机网络故障报修",
    "complaint": "投诉",
    "service-request": "业务办理申请",
    "billing": "账务处理申请",
}


def greeting(carrier: str) -> str:
    return f"您好，欢迎致电{carrier}客服热线，我是智能客服，请问有什么可以帮您？"


def no_answer(hotline: str) -> str:
    return f"抱歉，这个问题我这里没有查到相关资料。您可以说“转人工”，或稍后拨打{hotline}咨询人工客服。"


def refusal(reason: str) -> str:
    if reason == "others_data":
        return "抱歉，为保护用户隐私，我们不能提供他人的通话、位置或身份信息，机主本人可凭身份证到营业厅办理查询。"
    return "抱歉，这个要求我无法办理。请问还有其他可以帮您的吗？"


def escalating() -> str:
    return "好的，正在为您转接人工客服，请稍候，您刚才说的情况我会一并转给客服人员。"


def escalated_waiting() -> str:
    return "人工客服正在接入，请您稍候。"


def goodbye() -> str:
    return "感谢您的来电，祝您生活愉快，再见。"


def ticket_opened(category: str, number: str, phone: str | None, sla_hours: int | None) -> str:
    text = f"好的，已为您登记{CATEGORY_NAMES.get(category, '工单')}，工单号是{number}。"
    if phone:
        text += f"我们会通过{phone}联系您。"
    if sla_hours:
        text += f"工作人员会在{sla_hours}小时内处理。"
    return text


def ticket_updated(what: str) -> str:
    return f"好的，已为您更正{what}。"


def ask_fault_kind() -> str:
    return "请问具体是什么问题，比如完全上不了网、网速慢，还是经常断线？"


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def focus(passage: str, question: str, budget: int) -> str:
    """The lines of a passage that share most with the question, in their order, within `budget` chars.

    Prompt length is what the caller waits for (prefill dominates on CPU), so the model reads
    only the part of each passage the question is about.
    """
    lines = [line.strip(" -•#") for line in re.split(r"\n|(?<=[。；])", passage) if line.strip(" -•#")]
    if sum(map(len, lines)) <= budget:
        return _join(lines)
    asked = _bigrams(question)
    shared = [_bigrams(line) & asked for line in lines]
    # A pair of characters found in few lines says more about which line is meant (日本 vs 漫游).
    spread = Counter(pair for pairs in shared for pair in pairs)
    weight = [sum(1 / spread[pair] for pair in pairs) for pairs in shared]
    ranked = sorted(range(len(lines)), key=lambda i: (-weight[i], i))
    kept: set[int] = set()
    used = 0
    for index in ranked:
        if used + len(lines[index]) > budget and kept:
            continue
        kept.add(index)
        used += len(lines[index])
    return _join([lines[i] for i in sorted(kept)])


def _join(lines: list[str]) -> str:
    return "".join(line if line[-1] in "。；：！？" else line + "；" for line in lines)


def grounded_messages(
    *,
    carrier: str,
    question: str,
    passages: Sequence[KnowledgePassage],
    history: Sequence[ChatMessage],
    budget: int = 160,
) -> list[ChatMessage]:
    sources = "\n".join(
        f"[{i}] {p.title}：{focus(p.text.removeprefix(p.title).strip(), question, budget)}"
        for i, p in enumerate(passages, 1)
    )
    return [
        ChatMessage("system", SYSTEM_PROMPT.format(carrier=carrier)),
        *history,
        ChatMessage("user", f"【资料】\n{sources}\n【问题】{question}"),
    ]
