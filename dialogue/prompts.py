"""What the bot says by rule, and the prompt that grounds the model's answers in KB passages."""

from __future__ import annotations

import re

from dialogue.answers import Grounded, NotInKb

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
# A ticket's status as a caller hears it.
STATUS_NAMES = {
    "new": "新建",
    "assigned": "已派单",
    "in_progress": "处理中",
    "pending_customer": "待您回复",
    "resolved": "已解决",
    "closed": "已关闭",
}


_REQUEST_WORDS = {
    "suspend_keep_number": "停机保号",
    "sim_replacement": "补卡",
    "plan_change": "套餐变更",
    "broadband_install": "宽带安装",
    "broadband_move": "宽带移机",
    "compensation": "故障补偿",
    "invoice": "发票",
}


def topic_words(category: str, request_type: str | None) -> str:
    """What a ticket is about, in the words documents use (for questions asked while filing it)."""
    return _REQUEST_WORDS.get(request_type or "", "") or CATEGORY_NAMES.get(category, "")


def greeting(carrier: str) -> str:
    return f"您好，欢迎致电{carrier}客服热线，我是智能客服，请问有什么可以帮您？"


def no_answer(hotline: str) -> str:
    return f"抱歉，这个问题我这里没有查到相关资料。您可以说“转人工”，或稍后拨打{hotline}咨询人工客服。"


def trouble() -> str:
    """When something inside the hotline fails (the model, the store): never silence."""
    return "抱歉，系统暂时出了点问题，没能处理好您刚才说的话。您可以再说一遍，或者说“转人工”，由人工客服为您服务。"


def refusal(reason: str) -> str:
    if reason == "others_data":
        return "抱歉，为保护用户隐私，我们不能提供他人的通话、位置或身份信息，机主本人可凭身份证到营业厅办理查询。"
    return "抱歉，这个要求我无法办理。如需帮助，您可以说“转人工”。"


def escalating() -> str:
    return "好的，正在为您转接人工客服，请稍候，您刚才说的情况我会一并转给客服人员。"


def escalated_waiting() -> str:
    return "人工客服正在接入，请您稍候。"


def queue_position(ahead: int, minutes: int) -> str:
    if ahead == 0:
        return f"您是下一位，预计等待约{minutes}分钟，请不要挂机。"
    return f"您前面还有{ahead}位来电，预计等待约{minutes}分钟，请不要挂机。"


def still_waiting(ahead: int) -> str:
    place = "您是下一位" if ahead == 0 else f"您前面还有{ahead}位来电"
    return f"人工客服仍在忙，{place}，请您继续稍候。"


def agent_joined() -> str:
    return "已为您接通人工客服，请讲。"


def agent_left() -> str:
    return "人工客服暂时离开了，正在为您重新转接，请稍候。"


def handed_back() -> str:
    return "接下来由智能客服继续为您服务，请问还有什么可以帮您？"


def goodbye() -> str:
    return "感谢您的来电，祝您生活愉快，再见。"


def acknowledge(intent: str) -> str:
    return {
        "fault_report": "您反映的问题我记下了，我来帮您登记报修。",
        "complaint": "非常抱歉给您带来不便，我来为您登记投诉。",
    }.get(intent, "好的，我来帮您登记。")


def ticket_opened(
    category: str, number: str | None, slots: dict[str, str], sla_hours: int | None, *, own_number: bool = False
) -> str:
    """The ticket read back: what was filed, so the caller can correct it."""
    text = f"好的，已为您登记{CATEGORY_NAMES.get(category, '工单')}，"
    text += f"工单号是{number}。" if number else "工单号稍后会通过短信发给您。"
    if address := slots.get("address"):
        text += f"地址是{address}。"
    when, where = slots.get("date"), slots.get("store")
    if when or where:
        text += "预约" + (when or "") + (f"到{where}" if where else "") + "办理。"
    if phone := slots.get("phone"):
        text += f"我们会通过{phone}联系您。"
    elif own_number:
        text += "我们会通过您的来电号码联系您。"
    if sla_hours:
        text += f"工作人员会在{sla_hours}小时内处理。"
    return text + "如有不对，请直接告诉我。"


def ticket_existing(category: str, number: str | None, status: str) -> str:
    """A caller who calls again about what their open ticket is already about: that ticket, not a second one."""
    text = f"您已有一张{CATEGORY_NAMES.get(category, '')}工单，"
    text += f"编号{number}，" if number else ""
    text += f"目前状态是{STATUS_NAMES.get(status, status)}。您刚才说的情况我已补充到这张工单里，"
    return text + "工作人员会尽快和您联系。如有不对，请直接告诉我。"


def ticket_updated(what: str, value: str, *, corrected: bool = True) -> str:
    return f"好的，已为您把{what}更正为{value}。" if corrected else f"好的，已为您把{what}{value}补充到工单里。"


def ticket_noted(number: str | None) -> str:
    return f"好的，已补充到工单{number}里。" if number else "好的，已补充到您的工单里。"


def anything_else() -> str:
    return "好的。请问还有什么可以帮您？"


def what_is_wrong() -> str:
    return "抱歉，请问哪里不对？您直接说正确的就好。"


def go_ahead() -> str:
    return "好的，您请说。"


def what_for() -> str:
    return "好的，已记下。请问您是要报修、投诉，还是办理什么业务？"


def not_in_kb(plan: NotInKb, *, carrier: str, hotline: str) -> str:
    offer = f"您可以说“转人工”，或拨打{hotline}咨询人工客服。"
    if plan.reason == "off_topic":
        return f"抱歉，这个问题我回答不了。我是{carrier}的智能客服，可以为您查询套餐、话费、宽带、漫游等业务，也可以为您转人工。"
    if plan.reason == "about_company":
        return f"抱歉，关于{carrier}公司本身的情况，我这里没有相关资料。{offer}"
    if plan.reason == "competitor":
        return f"抱歉，我们无法提供其他运营商的资费或业务信息，只能为您介绍{carrier}的业务。{offer}"
    if plan.reason == "bargain":
        return f"抱歉，我这里不能给出资料以外的价格或优惠，能为您介绍的是现有的套餐和活动。需要的话{offer}"
    if plan.reason == "unknown_place":
        listed = f"我这里有的是：{'、'.join(plan.alternatives)}。" if plan.alternatives else ""
        return f"抱歉，我这里没有{plan.subject}的相关资料。{listed}{offer}"
    if plan.reason == "unknown_product":
        return f"抱歉，我这里没有{plan.subject}的相关资料，手机终端的价格请到营业厅咨询。{offer}"
    if plan.reason == "unknown_offer":
        listed = f"目前有的是：{'、'.join(plan.alternatives)}。" if plan.alternatives else ""
        return f"抱歉，我这里没有查到您说的这一款。{listed}{offer}"
    return no_answer(hotline)


def quoted_answer(plan: Grounded, *, with_title: bool) -> list[str]:
    """The answer's statements as sentences to speak, the document named first when it is new to the call."""
    sentences = [piece for statement in plan.statements for piece in _sentences(_tidy(statement))]
    if with_title and sentences and plan.title not in sentences[0]:
        sentences[0] = f"{plan.title}：{sentences[0]}"
    return sentences


_GENERIC_PAIRS = frozenset({"多少", "什么", "怎么", "可以", "一个", "现在", "我们", "你们", "时候", "这个", "那个", "一下"})


def names_subject(question: str, plan: Grounded) -> bool:
    """Whether the question says a word of the answering document's title (two Chinese characters
    running): an answer whose subject the caller never named is about something else."""
    pairs = {question[i : i + 2] for i in range(len(question) - 1)} - _GENERIC_PAIRS
    return any(re.fullmatch(r"[\u4e00-\u9fff]{2}", pair) and pair in plan.title for pair in pairs)


def _tidy(statement: str) -> str:
    text = re.sub(r"[*#`>|]", "", statement).strip()
    return text[:-1] + "。" if text.endswith(("；", ";", "，")) else text


def _sentences(text: str) -> list[str]:
    return [piece for piece in re.split(r"(?<=[。！？])", text) if piece.strip()]
