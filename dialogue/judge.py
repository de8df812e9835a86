"""The language model as judge of what a caller wants, when the rules are not sure.

Its answer is constrained to JSON of a fixed schema (the labels below and nothing else), so it cannot
invent a category; the rules still decide every slot value from the caller's own words. The system
prompt is fixed, so llama.cpp keeps its key/value state cached and each judgement only reads the
utterance (about 0.7 s with the bundled 1.5B model on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from core.concurrency import InferencePool
from dialogue.base import ChatMessage, GenerationOptions, LanguageModel, StopSignal
from dialogue.intent import Intent
from dialogue.slots import COMPLAINT_TYPES, FAULT_TYPES, REQUEST_TYPES

log = logging.getLogger(__name__)

_JUDGED = (Intent.CONSULTATION, Intent.FAULT_REPORT, Intent.COMPLAINT, Intent.SERVICE_REQUEST,
           Intent.ESCALATION, Intent.OTHER)
_KINDS = {
    Intent.FAULT_REPORT: tuple(name for name, _ in FAULT_TYPES) + ("other",),
    Intent.COMPLAINT: tuple(name for name, _ in COMPLAINT_TYPES) + ("other",),
    Intent.SERVICE_REQUEST: tuple(name for name, _ in REQUEST_TYPES) + ("other",),
}
SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"enum": [i.value for i in _JUDGED]},
        "kind": {"enum": sorted({k for kinds in _KINDS.values() for k in kinds} | {"none"})},
    },
    "required": ["intent", "kind"],
}

SYSTEM_PROMPT = """你是电信客服热线的来电意图判断员。读用户的一句话，判断他要什么，只输出JSON。
intent 取值：
- consultation：打听信息，比如资费、套餐内容、办理条件、规则、营业时间、怎么操作。
- fault_report：说自己的宽带、手机信号、上网、电话、电视等现在出了故障或用不好，需要报修。
- complaint：对服务、收费、人员不满，要投诉或讨说法。
- service_request：要求办理业务：停机保号、补卡、改套餐、装宽带、移机、申请补偿、开发票等。
- escalation：要求转人工、找真人或负责人。
- other：和电信业务无关，或者只是寒暄。
kind 取值：fault_report 时为 no_connection（完全上不了网）、slow（慢、卡）、intermittent（时好时坏、经常断）、
no_signal（没信号、打不出电话）、call_drop（通话中断、掉线）、other；complaint 时为 billing_dispute（收费争议）、
repeated_outage（反复故障）、service_quality（服务态度、上门不守时等）、other；service_request 时为
suspend_keep_number、sim_replacement、plan_change、broadband_install、broadband_move、compensation、invoice、other；
其他情况为 none。
用户在提问（多少钱、多久、能不能、是什么意思、怎么办理、几点）时，即使话题是故障、投诉或办业务，也是 consultation；
只有用户描述自己正遇到的问题、或明确要求办理/投诉/转人工时，才是其他意图。
例子：
用户：家里的网页打不开了，视频也放不了 → {"intent": "fault_report", "kind": "no_connection"}
用户：手机老是显示无服务 → {"intent": "fault_report", "kind": "no_signal"}
用户：晚上一到八点网就跟蜗牛一样 → {"intent": "fault_report", "kind": "slow"}
用户：电视盒子一会儿能看一会儿又不行 → {"intent": "fault_report", "kind": "intermittent"}
用户：手机收不到短信验证码，电话倒是能打 → {"intent": "fault_report", "kind": "other"}
用户：你们怎么又多收我钱，说清楚 → {"intent": "complaint", "kind": "billing_dispute"}
用户：约好的师傅一直不来，电话也打不通 → {"intent": "complaint", "kind": "service_quality"}
用户：我想把号先停一段时间但是号码留着 → {"intent": "service_request", "kind": "suspend_keep_number"}
用户：卡丢了，想重新办一张 → {"intent": "service_request", "kind": "sim_replacement"}
用户：帮我换成便宜点的套餐 → {"intent": "service_request", "kind": "plan_change"}
用户：换卡需要带什么材料 → {"intent": "consultation", "kind": "none"}
用户：光猫上的灯一闪一闪是怎么回事 → {"intent": "consultation", "kind": "none"}
用户：你们年底有什么优惠活动 → {"intent": "consultation", "kind": "none"}
用户：让你们的领导来跟我说 → {"intent": "escalation", "kind": "none"}
用户：人工客服晚上几点下班 → {"intent": "consultation", "kind": "none"}
用户：投诉以后一般多久有回复 → {"intent": "consultation", "kind": "none"}
用户：今天股市怎么样 → {"intent": "other", "kind": "none"}"""


@dataclass(frozen=True)
class Judgement:
    intent: Intent
    kind: str | None  # the fault, complaint or request type, when the intent has one


class JudgeUnavailable(Exception):
    """The model failed or took too long: the caller should hear an apology and the offer of a human."""


class IntentJudge:
    """Asks the model for the intent of an utterance."""

    def __init__(self, llm: LanguageModel, pool: InferencePool, *, timeout_s: float = 4.0) -> None:
        self._llm = llm
        self._pool = pool
        self._timeout_s = timeout_s
        self._options = GenerationOptions(max_tokens=40, temperature=0.0, json_schema=SCHEMA)

    def warm_up(self) -> None:
        """Read the fixed system prompt once, so the first caller does not pay for it (blocking).
        A model server that is down now may be up for the first call: that is logged, not fatal."""
        try:
            "".join(self._llm.stream(self._messages("你好"), self._options))
        except Exception as exc:
            log.warning("warming up the intent judge failed (%s); calls will try the model again", exc)

    async def judge(self, text: str, stop: StopSignal | None = None) -> Judgement | None:
        """The model's reading of `text`; None when it answers outside its schema or `stop` is given
        (the caller hung up). Cancelling the caller's turn or setting `stop` stops the model at its
        next token: the pieces are streamed, not awaited whole. Raises JudgeUnavailable when the model
        fails or takes longer than the timeout."""
        if stop is not None and stop.is_set():
            return None
        reading = asyncio.ensure_future(asyncio.wait_for(self._read(text), self._timeout_s))
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            await asyncio.wait({reading} | ({stopped} if stopped else set()), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reading, stopped):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.wait({task})
        if reading.cancelled():
            log.info("the caller is gone; the intent judge was stopped")
            return None
        try:
            raw = reading.result()
        except TimeoutError:
            log.warning("intent judge took longer than %.1f s", self._timeout_s)
            raise JudgeUnavailable("the language model did not answer in time") from None
        except Exception as exc:
            log.warning("intent judge failed: %s", exc)
            raise JudgeUnavailable("the language model failed") from exc
        return parse_judgement(raw)

    async def _read(self, text: str) -> str:
        pieces = self._pool.stream(lambda: self._llm.stream(self._messages(text), self._options))
        try:
            return "".join([piece async for piece in pieces])
        finally:
            await pieces.aclose()

    @staticmethod
    def _messages(text: str) -> list[ChatMessage]:
        return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", f"用户：{text}")]


def parse_judgement(raw: str) -> Judgement | None:
    """The model's JSON as a Judgement; None unless both fields hold allowed values."""
    try:
        data = json.loads(raw)
        intent = Intent(data["intent"])
        kind = str(data.get("kind") or "none")
    except (ValueError, KeyError, TypeError):
        log.warning("intent judge answered something that is not its schema: %r", raw[:200])
        return None
    if intent not in _JUDGED:
        return None
    return Judgement(intent, kind if kind in _KINDS.get(intent, ()) else None)
