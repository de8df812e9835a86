"""The dialogue manager: per-call state and the policy of each turn.

Intent comes from rules when they are sure and from the language model (a constrained judge) when
they are not; slot values come only from the caller's own words; answers quote the knowledge base.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from core.concurrency import InferencePool
from dialogue import prompts, slots
from dialogue.answers import AnswerOptions, Grounded, NotInKb, is_follow_up, plan_answer, says_what_it_answers
from dialogue.base import (
    ActionDesk,
    ChatMessage,
    EndCall,
    Escalate,
    EscalationReceipt,
    KnowledgeSearch,
    OpenTicket,
    ReplySentence,
    StopSignal,
    Suggestion,
    TicketReceipt,
    UpdateTicket,
)
from dialogue.intent import (
    TICKET_INTENTS,
    Intent,
    IntentGuess,
    about_telecom,
    about_the_company,
    asks_company_matters,
    asks_for_human,
    asks_outcome,
    asks_plainly,
    guess_intent,
    has_cue,
    is_question,
    objection,
    requests_service,
)
from dialogue.judge import IntentJudge, JudgeUnavailable
from dialogue.safety import insists, refusal_reason


@dataclass(frozen=True)
class DialogueOptions:
    carrier: str = "云帆通信"
    hotline: str = "10077"
    answers: AnswerOptions = AnswerOptions()
    max_asks_per_slot: int = 2
    # A person takes over after this many turns in a row that the bot could not make out (nothing in
    # the KB, no intent, only details), or that the recognizer heard with low confidence.
    misunderstood_turns: int = 3
    poorly_heard_turns: int = 3


@dataclass
class TicketFlow:
    """A fault report, complaint or service request being taken down, then filed as one ticket."""

    intent: Intent
    category: str
    opening: str  # what the caller first said about it: the context of later questions
    slots: dict[str, str] = field(default_factory=dict)
    asks: Counter[str] = field(default_factory=Counter)
    category_named: bool = True  # False: a fault on a service the caller has not named yet
    own_number: bool = False  # the caller said "the number I am calling from" and it is not known here
    judged_kind: str | None = None  # the fault/complaint/request type the model read, if the rules found none
    ticket: TicketReceipt | None = None
    filed_slots: frozenset[str] = frozenset()  # the slots the ticket was opened with

    def required(self) -> list[str]:
        needs_place = self.category in ("broadband", "mobile-network") or self.slots.get(
            "request_type", ""
        ).startswith("broadband_")
        wanted = ["address", "phone"] if needs_place else ["phone"]
        return [name for name in wanted if not (name == "phone" and self.own_number)]

    def takes_place(self) -> bool:
        """Whether an address belongs on this ticket (where the fault is, where to install)."""
        return self.intent is not Intent.SERVICE_REQUEST or self.slots.get("request_type", "").startswith("broadband_")


_PRECEDENCE = {Intent.OTHER: 0, Intent.CONSULTATION: 1, Intent.FAULT_REPORT: 2, Intent.COMPLAINT: 2,
               Intent.SERVICE_REQUEST: 2, Intent.ESCALATION: 3}


@dataclass
class CallState:
    call_id: str
    caller_id: str | None = None
    history: list[ChatMessage] = field(default_factory=list)
    flow: TicketFlow | None = None
    escalation: EscalationReceipt | None = None
    last_answer: Grounded | None = None  # what the previous question was answered from
    ended: bool = False
    intent: Intent | None = None  # what the call is mainly about, once known
    refused: str | None = None  # why the caller's last request was refused, while they insist on it
    misunderstood: int = 0  # turns in a row the bot could not make out
    poorly_heard: int = 0  # utterances in a row the recognizer was unsure of (set by whoever hears the call)
    stop_model: StopSignal = field(default_factory=StopSignal, repr=False, compare=False)

    @property
    def main_intent(self) -> Intent:
        return self.intent or Intent.OTHER

    def note_intent(self, intent: Intent) -> None:
        """A call is about its strongest intent: a request for a person over a ticket over a question."""
        if intent in _PRECEDENCE and (self.intent is None or _PRECEDENCE[intent] > _PRECEDENCE[self.intent]):
            self.intent = intent

    def restore(self, earlier: CallState) -> None:
        """Back to a copy taken earlier (`copy.deepcopy`), in place: others hold this object."""
        self.__dict__.update(copy.deepcopy(earlier).__dict__)

    def remember_caller(self, text: str) -> None:
        self.history.append(ChatMessage("user", text))

    def remember_reply(self, text: str) -> None:
        """The part of a reply the caller actually heard (all of it, unless they barged in)."""
        if text:
            self.history.append(ChatMessage("assistant", text))


_KIND_SLOTS = {
    Intent.FAULT_REPORT: ("fault_type", slots.FAULT_TYPES),
    Intent.COMPLAINT: ("complaint_type", slots.COMPLAINT_TYPES),
    Intent.SERVICE_REQUEST: ("request_type", slots.REQUEST_TYPES),
}


def _kind_from_history(state: CallState, table: tuple[tuple[str, str], ...]) -> str | None:
    """The kind named earlier in the call, when the caller now only says "那就帮我办一个吧" or "我要投诉"."""
    earlier = [m.content for m in state.history[:-1] if m.role == "user"]
    return next((kind for text in reversed(earlier) if (kind := slots.classify(text, table))), None)


def _earlier_request(state: CallState) -> tuple[Intent, str] | None:
    """The latest earlier utterance of the call that reported a fault, complained or asked for a service."""
    for message in reversed(state.history[:-1]):
        if message.role != "user":
            continue
        if (guess := guess_intent(message.content)).intent in TICKET_INTENTS:
            return guess.intent, message.content
        # "宽带能不能跟着移过去" then the new address: the question was the request.
        asked = next((i for i in (Intent.SERVICE_REQUEST, Intent.FAULT_REPORT) if has_cue(message.content, i)), None)
        if asked is not None:
            return asked, message.content
    return None


# The caller complained before about the same thing ("我投诉过一次了", "上次投诉到现在没人管").
_COMPLAINED_BEFORE = re.compile(r"投诉过|上次投诉|又来投诉|再次投诉|第[二三四五]次投诉|投诉了.{0,4}(?:次|回|遍)|还投诉")


# A fault as the documents name it (the caller's own words would drown a short question).
_FAULT_WORDS = {"no_connection": "无法上网", "slow": "网速慢", "intermittent": "掉线", "no_signal": "无信号",
                "call_drop": "通话中断"}


# What the caller saw on their equipment ("光猫上有个灯亮红的"): a question about the fault is about that.
_EQUIPMENT_SIGNS = re.compile(r"光猫|路由器?|网线|机顶盒|wi-?fi|sim卡|(?:los|pon|lan|电源)灯|(?:亮|闪|是|变|发)?红灯?|闪", re.IGNORECASE)


_WHAT_IT_MEANS = re.compile(r"怎么回事|咋回事|什么意思|啥意思|什么情况|啥情况|怎么办|咋办|为什么|为啥|正常吗|正常不")


def _asks_about_sign(flow: TicketFlow, text: str) -> bool:
    return flow.intent is Intent.FAULT_REPORT and bool(_EQUIPMENT_SIGNS.search(text) and _WHAT_IT_MEANS.search(text))


def _flow_context(flow: TicketFlow) -> str:
    """What a question asked during a report is about, in the knowledge base's words: "多久能修好" after
    a fault is about repair times, "多久回复" after a complaint about complaint handling, "我自己能怎么弄"
    after "信号就一格" about what to check when there is no signal, after "光猫亮红灯" about that light."""
    topic = prompts.topic_words(flow.category, flow.slots.get("request_type"))
    fault = _FAULT_WORDS.get(flow.slots.get("fault_type", ""), "")
    signs = dict.fromkeys(_EQUIPMENT_SIGNS.findall(flow.opening)) if flow.intent is Intent.FAULT_REPORT else {}
    return " ".join([topic, fault, *signs]).strip()


_BROADBAND_GEAR = re.compile(r"宽带|光猫|wi-?fi|无线|路由|网线|电视|机顶盒|iptv", re.IGNORECASE)
_HOME_NET = re.compile(r"家里.{0,2}网|家.{0,3}网")
_PHONE_SERVICE = re.compile(r"手机|信号|打电话|通话|电话|4G|5G|流量|无服务", re.IGNORECASE)


def _fault_category(text: str) -> str | None:
    """Which service the fault is on, when the caller names it: home gear is broadband's; otherwise the
    one named first ("手机在家上不了网" is the phone's, "家里网断了 手机也上不了" the line's)."""
    if _BROADBAND_GEAR.search(text):
        return "broadband"
    home, phone = _HOME_NET.search(text), _PHONE_SERVICE.search(text)
    if home and not (phone and phone.start() < home.start()):
        return "broadband"
    return "mobile-network" if phone else None


def _service_category(request_type: str | None) -> str:
    return "billing" if request_type in ("compensation", "invoice") else "service-request"


class DialogueManager:
    def __init__(
        self,
        *,
        kb: KnowledgeSearch,
        kb_pool: InferencePool,
        judge: IntentJudge | None,
        options: DialogueOptions,
    ) -> None:
        self._kb = kb
        self._kb_pool = kb_pool
        self._judge = judge
        self.options = options

    def greeting(self) -> str:
        return prompts.greeting(self.options.carrier)

    def with_judge(self, judge: IntentJudge | None) -> DialogueManager:
        """The same manager with another judge (another model behind it)."""
        return DialogueManager(kb=self._kb, kb_pool=self._kb_pool, judge=judge, options=self.options)

    async def turn(
        self, state: CallState, text: str, desk: ActionDesk
    ) -> AsyncGenerator[ReplySentence, None]:
        """One caller utterance in, the bot's reply out sentence by sentence; actions go to `desk`."""
        text = slots.normalise(text)
        reason = refusal_reason(text) or (state.refused if insists(text) else None)
        if reason:  # never reaches the history, nor anything after it
            state.refused = reason
            state.note_intent(Intent.OTHER)  # a request that must not be served, whatever it asked for
            yield ReplySentence(prompts.refusal(reason))
            return
        state.refused = None
        state.remember_caller(text)
        if state.escalation is not None:
            yield ReplySentence(prompts.escalated_waiting())
            return
        if state.poorly_heard >= self.options.poorly_heard_turns:
            async for sentence in self._escalate(state, text, desk, "low_confidence"):
                yield sentence
            return
        guess = guess_intent(text)
        if guess.intent is Intent.ESCALATION and guess.sure:
            async for sentence in self._escalate(state, text, desk):
                yield sentence
            return
        if guess.intent is Intent.GOODBYE and (state.flow is None or state.flow.ticket is not None):
            yield ReplySentence(prompts.goodbye())
            state.ended = True
            await desk.end_call(EndCall())
            return
        if (objected := objection(text)) is not None:  # the caller stopped the bot: hear them out, change nothing
            yield ReplySentence(prompts.what_is_wrong() if objected == "wrong" else prompts.go_ahead())
            return
        if state.flow is not None:
            async for sentence in self._continue_flow(state, state.flow, text, guess, desk):
                yield sentence
            return
        if guess.intent is Intent.ACKNOWLEDGE:
            yield ReplySentence(prompts.anything_else())
            return
        intent, kind = await self._decide(state, text, guess)
        if intent is None:  # the model that should have understood it failed: say so, offer a person
            async for sentence in self._not_understood(state, text, desk, prompts.trouble()):
                yield sentence
            return
        opening = text
        if intent is Intent.CONSULTATION and not is_question(text) and slots.only_details(text):
            # Only an address or a number: the details of something said earlier ("网又断了" answered
            # as a question); take that up again rather than search the knowledge base for an address.
            earlier = _earlier_request(state)
            if earlier is None:
                async for sentence in self._not_understood(state, text, desk, prompts.what_for()):
                    yield sentence
                return
            intent, opening = earlier
        if intent is Intent.ESCALATION:
            async for sentence in self._escalate(state, text, desk):
                yield sentence
            return
        if intent in TICKET_INTENTS:
            state.misunderstood = 0
            state.flow = self._start_flow(intent, opening, kind)
            state.note_intent(intent)
            if opening != text:  # taken up from an earlier turn: what that turn said belongs on the ticket
                self._update_slots(state, state.flow, opening)
            if intent is Intent.SERVICE_REQUEST:
                async for sentence in self._about_request(state, text):
                    yield sentence
            elif intent is Intent.COMPLAINT and _COMPLAINED_BEFORE.search(text):
                # A complaint about a complaint: what the knowledge base promises for those comes first.
                async for sentence in self._answer(state, text, context=f"{_flow_context(state.flow)} 重复投诉"):
                    yield sentence
            async for sentence in self._continue_flow(state, state.flow, text, guess, desk):
                yield sentence
            return
        async for sentence in self._answer(state, text, off_topic=intent is Intent.OTHER, desk=desk):
            yield sentence

    async def _decide(self, state: CallState, text: str, guess: IntentGuess) -> tuple[Intent | None, str | None]:
        """The intent of an utterance outside a ticket flow: the rules', or the judge's when they are unsure;
        None when the judge was needed and failed."""
        follows_answer = state.last_answer is not None and is_follow_up(text)
        only_details = not is_question(text) and slots.only_details(text)  # an address, a number: no intent
        if guess.sure or follows_answer or only_details or self._judge is None:
            return guess.intent, None
        try:
            judgement = await self._judge.judge(text, state.stop_model)
        except JudgeUnavailable:
            return None, None
        if judgement is None:
            return guess.intent, None
        # The judge may choose, not invent: a ticket or a transfer needs some word of it in what was said.
        # A fault may be told in any words, a grievance needs words of its kind (a charge, a visit, a
        # repeat), and a service is asked for by name (办, 开通, 补卡).
        grounded = judgement.intent in (Intent.CONSULTATION, Intent.OTHER) or has_cue(text, judgement.intent) or (
            judgement.intent is Intent.FAULT_REPORT and judgement.kind not in (None, "other")
        ) or (judgement.intent is Intent.COMPLAINT and slots.classify(text, slots.COMPLAINT_TYPES) is not None)
        if grounded:
            return judgement.intent, judgement.kind
        if judgement.intent is Intent.SERVICE_REQUEST and requests_service(text):
            # Asked for in words the rules do not know: a request, but the judge's kind is left out (the
            # bundled model often names a wrong one), so the agent reads what was asked in the summary.
            return judgement.intent, None
        return guess.intent, None

    async def hang_up(self, state: CallState, desk: ActionDesk) -> None:
        """The caller is gone: a report or request they made is filed with what they said, so that
        nothing they told the bot is lost (an agent calls back for what is missing)."""
        flow = state.flow
        if flow is None or flow.ticket is not None or state.escalation is not None:
            return
        await self._file(state, flow, desk)

    async def _file(self, state: CallState, flow: TicketFlow, desk: ActionDesk) -> None:
        kind_slot = {Intent.FAULT_REPORT: "fault_type", Intent.COMPLAINT: "complaint_type"}.get(flow.intent)
        if kind_slot is not None and kind_slot not in flow.slots:
            flow.slots[kind_slot] = flow.judged_kind or await self._judged_kind(state, flow) or "other"
        summary = "；".join(m.content for m in state.history if m.role == "user")
        if flow.own_number:
            summary += "；联系电话：来电号码"
        flow.ticket = await desk.open_ticket(OpenTicket(flow.category, dict(flow.slots), summary))
        flow.filed_slots = frozenset(flow.slots)

    async def _escalate(
        self, state: CallState, text: str, desk: ActionDesk, reason: str | None = None
    ) -> AsyncIterator[ReplySentence]:
        state.note_intent(Intent.ESCALATION)
        state.escalation = await desk.escalate(Escalate(reason=reason or self._escalation_reason(text)))
        yield ReplySentence(prompts.escalating())

    async def _not_understood(
        self, state: CallState, text: str, desk: ActionDesk, said: str
    ) -> AsyncIterator[ReplySentence]:
        """`said` (an apology, a question back), or a person once the bot has failed too often in a row."""
        state.misunderstood += 1
        if state.misunderstood >= self.options.misunderstood_turns:
            async for sentence in self._escalate(state, text, desk, "not_understood"):
                yield sentence
            return
        yield ReplySentence(said)

    @staticmethod
    def _escalation_reason(text: str) -> str:
        return "caller_request" if asks_for_human(text) else "caller_frustrated"

    # ---- tickets ---------------------------------------------------------------------------------

    def _start_flow(self, intent: Intent, text: str, judged_kind: str | None) -> TicketFlow:
        if intent is Intent.FAULT_REPORT:
            named = _fault_category(text)
            flow = TicketFlow(intent, named or "broadband", text, category_named=named is not None)
        elif intent is Intent.COMPLAINT:
            flow = TicketFlow(intent, "complaint", text)
        else:
            request_type = slots.classify(text, slots.REQUEST_TYPES) or judged_kind
            flow = TicketFlow(intent, _service_category(request_type), text)
            if request_type:
                flow.slots["request_type"] = request_type
        if judged_kind and judged_kind != "other":
            flow.judged_kind = judged_kind  # used when the caller's own words name no kind
        return flow

    def _update_slots(self, state: CallState, flow: TicketFlow, text: str) -> set[str]:
        """Fill the flow's slots from this utterance; returns the names that changed."""
        found: dict[str, str | None] = {"phone": slots.extract_phone(text)}
        changed = set()
        if found["phone"] is None and slots.refers_to_own_number(text):
            if state.caller_id:
                found["phone"] = slots.extract_phone(state.caller_id)
            elif not flow.own_number:
                flow.own_number = True
                changed.add("own_number")
        if flow.takes_place():
            found["address"] = slots.apply_address_correction(text, flow.slots.get("address")) or slots.extract_address(text)
        kind_slot, table = _KIND_SLOTS[flow.intent]
        found[kind_slot] = slots.classify(text, table) or (
            None if kind_slot in flow.slots else _kind_from_history(state, table)
        )
        if flow.intent is Intent.FAULT_REPORT:
            found["since"] = slots.extract_since(text)
            gives_contact = found["phone"] is not None or "own_number" in changed  # "我的电话是…" names no service
            if not (flow.category_named or flow.ticket or gives_contact) and (named := _fault_category(text)):
                flow.category, flow.category_named = named, True  # "网老断" then "手机上网"
            if flow.category == "broadband" and found["fault_type"] == "call_drop":
                found["fault_type"] = "intermittent"  # a line that drops is unstable; calls are a phone's
        elif flow.intent is Intent.SERVICE_REQUEST:
            found["store"] = slots.extract_store(text)
            found["date"] = slots.extract_date(text)
        for name, value in found.items():
            if not value or flow.slots.get(name) == value:
                continue
            vague = name == "since" and bool(slots.VAGUE_SINCE.match(flow.slots.get("since", "")))
            if name in ("since", "fault_type", "complaint_type", "request_type") and name in flow.slots and not vague:
                continue  # the first telling is the one that counts; later turns add detail
            flow.slots[name] = value
            changed.add(name)
        return changed

    async def _continue_flow(
        self, state: CallState, flow: TicketFlow, text: str, guess: IntentGuess, desk: ActionDesk
    ) -> AsyncIterator[ReplySentence]:
        changed = self._update_slots(state, flow, text)
        asks = guess.intent is Intent.CONSULTATION or asks_plainly(text)
        # A report's first turn is its telling; a question in it is answered when it asks what comes of it,
        # or what the light or device the caller describes means ("光猫闪红灯 怎么回事").
        if len(state.history) <= 1:
            asking = (is_question(text) and asks_outcome(text)) or _asks_about_sign(flow, text)
        else:
            asking = is_question(text) and asks and not changed
        if flow.ticket is not None:
            async for sentence in self._after_ticket(state, flow, text, changed, desk):
                yield sentence
            return
        if asking:
            async for sentence in self._answer(state, text, context=_flow_context(flow)):
                yield sentence
        missing = [name for name in flow.required() if name not in flow.slots]
        askable = [name for name in missing if flow.asks[name] < self.options.max_asks_per_slot]
        if askable:
            opening = prompts.acknowledge(flow.intent.value) if flow.asks.total() == 0 else "好的。"
            flow.asks[askable[0]] += 1
            yield ReplySentence(opening + prompts.SLOT_QUESTIONS[askable[0]])
            return
        await self._file(state, flow, desk)
        assert flow.ticket is not None
        if flow.ticket.existing_status is not None:
            yield ReplySentence(prompts.ticket_existing(flow.category, flow.ticket.number, flow.ticket.existing_status))
            return
        yield ReplySentence(prompts.ticket_opened(flow.category, flow.ticket.number, flow.slots, flow.ticket.sla_hours,
                                                  own_number=flow.own_number))

    async def _after_ticket(
        self, state: CallState, flow: TicketFlow, text: str, changed: set[str], desk: ActionDesk
    ) -> AsyncIterator[ReplySentence]:
        """After filing: corrections and new details go onto the ticket, questions are answered."""
        assert flow.ticket is not None
        filed = flow.filed_slots
        update = {name: flow.slots[name] for name in changed if name in flow.slots}
        if update:
            await desk.update_ticket(UpdateTicket(flow.ticket.id, update))
            if "phone" in update or "address" in update:
                name = "phone" if "phone" in update else "address"
                what = {"phone": "联系电话", "address": "地址"}[name]
                yield ReplySentence(prompts.ticket_updated(what, update[name], corrected=name in filed))
            else:
                yield ReplySentence(prompts.ticket_noted(flow.ticket.number))
            return
        if is_question(text):
            async for sentence in self._answer(state, text, context=_flow_context(flow)):
                yield sentence
            return
        yield ReplySentence(prompts.anything_else())

    async def _judged_kind(self, state: CallState, flow: TicketFlow) -> str | None:
        """The kind of fault or complaint, read by the judge from all the caller said, when the rules
        found no word for it."""
        if self._judge is None:
            return None
        said = "；".join(m.content for m in state.history if m.role == "user")
        try:
            judgement = await self._judge.judge(said, state.stop_model)
        except JudgeUnavailable:  # the ticket is filed all the same, its kind left to the agent
            return None
        if judgement is None or judgement.intent is not flow.intent or judgement.kind in (None, "other"):
            return None
        return judgement.kind

    async def _about_request(self, state: CallState, text: str) -> AsyncIterator[ReplySentence]:
        """What the knowledge base says about the service asked for (its fee, its conditions), cited."""
        # The service the caller's words named (补回来 -> 故障补偿) leads the search and names the subject.
        topic = prompts.topic_words("", state.flow.slots.get("request_type")) if state.flow else ""
        plan = await self._plan(text, None, topic or None)
        if not isinstance(plan, Grounded) or plan.score < self.options.answers.confident_score:
            return
        if prompts.names_subject(f"{text} {topic}", plan):  # an address alone must not pick the document
            state.last_answer = plan
            yield ReplySentence(prompts.quoted_answer(plan, with_title=True)[0], (plan.doc_id,))

    # ---- questions -------------------------------------------------------------------------------

    async def _answer(
        self, state: CallState, text: str, *, context: str | None = None, off_topic: bool = False,
        desk: ActionDesk | None = None,
    ) -> AsyncIterator[ReplySentence]:
        """The KB's answer; with `desk` (a question on its own, not inside a report) a question the bot
        cannot make out counts towards handing the call to a person."""
        plan: Grounded | NotInKb = NotInKb("off_topic")
        if asks_company_matters(text):
            plan = NotInKb("about_company")
        elif not off_topic:
            plan = await self._plan(text, state.last_answer, context)
            leans = state.last_answer is not None or context is not None  # a follow-up needs no topic words
            sure = isinstance(plan, Grounded) and (
                (plan.score >= self.options.answers.confident_score and prompts.names_subject(text, plan))
                or says_what_it_answers(text, plan)
            )
            if not (about_telecom(text) or leans or sure):
                plan = NotInKb("about_company" if about_the_company(text, self.options.carrier) else "off_topic")
        if isinstance(plan, NotInKb):
            # Not about a service (the company itself, the weather): other; a service the KB lacks: a consultation.
            state.note_intent(Intent.OTHER if plan.reason in ("off_topic", "about_company") else Intent.CONSULTATION)
            said = prompts.not_in_kb(plan, carrier=self.options.carrier, hotline=self.options.hotline)
            if plan.reason == "nothing_relevant" and desk is not None:
                async for sentence in self._not_understood(state, text, desk, said):
                    yield sentence
            else:
                yield ReplySentence(said)
            return
        state.misunderstood = 0
        state.note_intent(Intent.CONSULTATION)
        repeat_title = state.last_answer is None or state.last_answer.doc_id != plan.doc_id
        state.last_answer = plan
        for quoted in prompts.quoted_answer(plan, with_title=repeat_title):
            yield ReplySentence(quoted, (plan.doc_id,))

    async def suggest(self, state: CallState, text: str, passages: int = 3) -> Suggestion:
        """For an agent holding the call: what the KB says about the caller's words, and the answer the
        bot would give. The call's state is only read (the agent decides what is said)."""
        text = slots.normalise(text)
        plan = await self._plan(text, state.last_answer, None)
        found = await self._kb_pool.run(lambda: self._kb.statements(text, passages))
        if isinstance(plan, Grounded):
            answer = "".join(prompts.quoted_answer(plan, with_title=True))
            return Suggestion(answer, (plan.doc_id,), tuple(found))
        return Suggestion(prompts.not_in_kb(plan, carrier=self.options.carrier, hotline=self.options.hotline), (),
                          tuple(found))

    async def _plan(self, text: str, previous: Grounded | None, context: str | None) -> Grounded | NotInKb:
        options = self.options.answers
        # "你们云帆通信的…": the carrier's own name says nothing about which document answers.
        question = text.replace(self.options.carrier, "").strip() or text
        return await self._kb_pool.run(
            lambda: plan_answer(self._kb, question, previous=previous, context=context, options=options)
        )
