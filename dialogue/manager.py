"""The dialogue manager: per-call state and the policy of each turn.

Intent and slot values come from rules over what the caller said (predictable, never invented);
answers to questions come from the language model grounded in retrieved KB passages.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field

from core.concurrency import InferencePool
from dialogue import prompts, slots
from dialogue.base import (
    ActionDesk,
    ChatMessage,
    EndCall,
    Escalate,
    EscalationReceipt,
    GenerationOptions,
    KnowledgePassage,
    KnowledgeSearch,
    LanguageModel,
    OpenTicket,
    ReplySentence,
    TicketReceipt,
    UpdateTicket,
)
from dialogue.intent import Intent, classify_intent, sounds
from dialogue.safety import refusal_reason


@dataclass(frozen=True)
class DialogueOptions:
    carrier: str = "云帆通信"
    hotline: str = "10077"
    top_k: int = 2
    min_score: float = 0.0  # passages scoring below this count as "nothing relevant"
    runner_up_ratio: float = 0.8  # a second passage goes into the prompt only if it scores this close to the first
    acknowledgement: str = "好的，我帮您查一下。"  # spoken while the model reads ("" for none)
    passage_chars: int = 160  # per passage: every prompt token costs ~20 ms of prefill on 2 cores
    history_turns: int = 4
    max_asks_per_slot: int = 2
    generation: GenerationOptions = GenerationOptions(max_tokens=120, temperature=0.1)


@dataclass
class TicketFlow:
    intent: Intent
    category: str
    slots: dict[str, str] = field(default_factory=dict)
    asks: Counter[str] = field(default_factory=Counter)
    ticket: TicketReceipt | None = None

    def required(self) -> list[str]:
        needs_place = self.category in ("broadband", "mobile-network") or self.slots.get(
            "request_type", ""
        ).startswith("broadband_")
        return ["address", "phone"] if needs_place else ["phone"]


@dataclass
class CallState:
    call_id: str
    caller_id: str | None = None
    history: list[ChatMessage] = field(default_factory=list)
    flow: TicketFlow | None = None
    escalation: EscalationReceipt | None = None
    last_question: str | None = None
    ended: bool = False

    def remember_caller(self, text: str) -> None:
        self.history.append(ChatMessage("user", text))

    def remember_reply(self, text: str) -> None:
        """The part of a reply the caller actually heard (all of it, unless they barged in)."""
        if text:
            self.history.append(ChatMessage("assistant", text))


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]")
_MARKDOWN = re.compile(r"[*#`>|]|^\s*[-•]\s*|^\s*\d+[.、]\s*", re.MULTILINE)


def _fault_category(text: str) -> str:
    if re.search(r"宽带|光猫|wifi|无线|路由|网线|家里.{0,2}网|屋头.{0,3}网|屋企", text, re.IGNORECASE):
        return "broadband"
    if re.search(r"手机|信号|打电话|通话|电话|4G|5G|流量", text, re.IGNORECASE):
        return "mobile-network"
    return "broadband"


def _service_category(request_type: str | None) -> str:
    return "billing" if request_type in ("compensation", "invoice") else "service-request"


class DialogueManager:
    def __init__(
        self,
        *,
        kb: KnowledgeSearch,
        llm: LanguageModel,
        llm_pool: InferencePool,
        kb_pool: InferencePool,
        options: DialogueOptions,
    ) -> None:
        self._kb = kb
        self._llm = llm
        self._llm_pool = llm_pool
        self._kb_pool = kb_pool
        self.options = options

    def greeting(self) -> str:
        return prompts.greeting(self.options.carrier)

    async def turn(
        self, state: CallState, text: str, desk: ActionDesk
    ) -> AsyncGenerator[ReplySentence, None]:
        """One caller utterance in, the bot's reply out sentence by sentence; actions go to `desk`."""
        text = slots.normalise(text)
        intent = classify_intent(text)
        state.remember_caller(text)
        if state.escalation is not None:
            yield ReplySentence(prompts.escalated_waiting())
            return
        if intent is Intent.ESCALATION:
            state.escalation = await desk.escalate(Escalate(reason=self._escalation_reason(text)))
            yield ReplySentence(prompts.escalating())
            return
        if intent is Intent.GOODBYE and (state.flow is None or state.flow.ticket is not None):
            yield ReplySentence(prompts.goodbye())
            state.ended = True
            await desk.end_call(EndCall())
            return
        if reason := refusal_reason(text):
            yield ReplySentence(prompts.refusal(reason))
            return
        if state.flow is None and intent in (Intent.FAULT_REPORT, Intent.COMPLAINT, Intent.SERVICE_REQUEST):
            state.flow = self._start_flow(intent, text)
        if state.flow is not None:
            async for sentence in self._continue_flow(state, state.flow, text, intent, desk):
                yield sentence
            return
        async for sentence in self._answer(state, text):
            yield sentence

    # ---- tickets ---------------------------------------------------------------------------------

    def _start_flow(self, intent: Intent, text: str) -> TicketFlow:
        if intent is Intent.FAULT_REPORT:
            return TicketFlow(intent, _fault_category(text))
        if intent is Intent.COMPLAINT:
            return TicketFlow(intent, "complaint")
        request_type = slots.classify(text, slots.REQUEST_TYPES)
        return TicketFlow(intent, _service_category(request_type))

    def _update_slots(self, state: CallState, flow: TicketFlow, text: str) -> set[str]:
        """Fill the flow's slots from this utterance; returns the names that changed."""
        found: dict[str, str | None] = {
            "phone": slots.extract_phone(text),
            "address": slots.apply_address_correction(text, flow.slots.get("address"))
            or slots.extract_address(text),
            "since": slots.extract_since(text),
        }
        if found["phone"] is None and state.caller_id and slots.refers_to_own_number(text):
            found["phone"] = slots.extract_phone(state.caller_id)
        if flow.intent is Intent.FAULT_REPORT:
            found["fault_type"] = slots.classify(text, slots.FAULT_TYPES)
        elif flow.intent is Intent.COMPLAINT:
            found["complaint_type"] = slots.classify(text, slots.COMPLAINT_TYPES)
        else:
            found["request_type"] = slots.classify(text, slots.REQUEST_TYPES)
            found["store"] = slots.extract_store(text)
            found["date"] = slots.extract_date(text)
        changed = set()
        for name, value in found.items():
            if not value or flow.slots.get(name) == value:
                continue
            keeps_first = name in ("since", "fault_type", "complaint_type", "request_type") and name in flow.slots
            if keeps_first:
                continue
            flow.slots[name] = value
            changed.add(name)
        return changed

    async def _continue_flow(
        self, state: CallState, flow: TicketFlow, text: str, intent: Intent, desk: ActionDesk
    ) -> AsyncIterator[ReplySentence]:
        changed = self._update_slots(state, flow, text)
        if flow.ticket is not None:
            if changed & {"phone", "address"}:
                update = {name: flow.slots[name] for name in changed}
                await desk.update_ticket(UpdateTicket(flow.ticket.id, update))
                what = "联系电话" if "phone" in changed else "地址"
                yield ReplySentence(prompts.ticket_updated(what))
                return
            async for sentence in self._answer(state, text):
                yield sentence
            return
        if not changed and intent is Intent.CONSULTATION and len(state.history) > 1:
            async for sentence in self._answer(state, text):
                yield sentence
        missing = [name for name in flow.required() if name not in flow.slots]
        askable = [name for name in missing if flow.asks[name] < self.options.max_asks_per_slot]
        if askable:
            acknowledgement = self._acknowledge(flow)
            flow.asks[askable[0]] += 1
            yield ReplySentence(acknowledgement + prompts.SLOT_QUESTIONS[askable[0]])
            return
        if flow.intent is Intent.FAULT_REPORT:
            flow.slots.setdefault("fault_type", "other")
        summary = "；".join(m.content for m in state.history if m.role == "user")
        flow.ticket = await desk.open_ticket(OpenTicket(flow.category, dict(flow.slots), summary))
        yield ReplySentence(
            prompts.ticket_opened(flow.category, flow.ticket.number, flow.slots.get("phone"), flow.ticket.sla_hours)
        )

    @staticmethod
    def _acknowledge(flow: TicketFlow) -> str:
        if flow.asks.total() == 0:
            if flow.intent is Intent.FAULT_REPORT:
                return "您反映的问题我记下了，我来帮您登记报修。"
            if flow.intent is Intent.COMPLAINT:
                return "非常抱歉给您带来不便，我来为您登记投诉。"
            return "好的，我来帮您登记。"
        return "好的。"

    @staticmethod
    def _escalation_reason(text: str) -> str:
        asked = re.search(r"人工|真人|转接|经理|领导|主管|客服", text) or "ren gong" in sounds(text)
        return "caller_request" if asked else "caller_frustrated"

    # ---- questions -------------------------------------------------------------------------------

    async def _answer(self, state: CallState, text: str) -> AsyncIterator[ReplySentence]:
        relevant = await self._retrieve(text)
        if not relevant and state.last_question:  # a follow-up such as 那流量呢 needs the question before it
            relevant = await self._retrieve(f"{state.last_question} {text}")
        state.last_question = text
        if not relevant:
            yield ReplySentence(prompts.no_answer(self.options.hotline))
            return
        citations = tuple(dict.fromkeys(p.doc_id for p in relevant))
        history = state.history[:-1][-self.options.history_turns :]
        messages = prompts.grounded_messages(
            carrier=self.options.carrier,
            question=text,
            passages=relevant,
            history=history,
            budget=self.options.passage_chars,
        )
        grounded = _numbers(text) | {n for p in relevant for n in _numbers(p.text)}
        sentences = self._generate(messages)
        # The model starts reading now; the caller hears the acknowledgement meanwhile instead of silence.
        first = asyncio.ensure_future(anext(sentences, None))
        try:
            if self.options.acknowledgement:
                yield ReplySentence(self.options.acknowledgement)
            answered = False
            sentence = await first
            while sentence is not None and _numbers(sentence) <= grounded:  # never say a figure not in them
                answered = True
                yield ReplySentence(sentence, () if _declines(sentence) else citations)
                sentence = await anext(sentences, None)
            if not answered:
                yield ReplySentence(prompts.no_answer(self.options.hotline))
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await first
            await sentences.aclose()

    async def _retrieve(self, query: str) -> list[KnowledgePassage]:
        passages = await self._kb_pool.run(self._kb.search, query, self.options.top_k)
        return self._worth_reading(passages)

    def _worth_reading(self, passages: Sequence[KnowledgePassage]) -> list[KnowledgePassage]:
        if not passages or passages[0].score < self.options.min_score:
            return []
        floor = max(self.options.min_score, passages[0].score * self.options.runner_up_ratio)
        return [p for p in passages if p.score >= floor]

    async def _generate(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        buffer = ""
        pieces = self._llm_pool.stream(lambda: self._llm.stream(messages, self.options.generation))
        try:
            async for piece in pieces:
                buffer += piece
                while match := _SENTENCE_END.search(buffer):
                    sentence, buffer = buffer[: match.end()], buffer[match.end() :]
                    if cleaned := _clean(sentence):
                        yield cleaned
            if cleaned := _clean(buffer):
                yield cleaned
        finally:
            await pieces.aclose()  # stops the model's decoding at once


def _declines(sentence: str) -> bool:
    return any(phrase in sentence for phrase in ("查不到", "没有查到", "无法回答", "不清楚"))


def _numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def _clean(sentence: str) -> str:
    return _MARKDOWN.sub("", sentence).strip()


