"""Dialogue evaluation: run cases as fresh calls through a DialogueManager and score what came out.

A case is one JSON line: `id`, `turns` (the caller's utterances, as a recognizer would write them),
optional `dialect`, and optional `expect` (see `score_case` for how each key is judged). Running a
case needs only the manager and an ActionDesk per call; the composition root decides which store
the desk writes to.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dialogue.base import ActionDesk
from dialogue.manager import CallState, DialogueManager
from dialogue.slots import spoken_digits_to_numerals


class CaseFileError(ValueError):
    """A line of a cases file that is not a dialogue case."""


@dataclass(frozen=True)
class EvalCase:
    id: str
    turns: tuple[str, ...]
    dialect: str | None = None
    expect: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TicketOutcome:
    id: int
    category: str
    slots: dict[str, str]


@dataclass
class TurnTiming:
    total_s: float
    first_sentence_s: float | None
    first_cited_s: float | None


@dataclass
class CasePrediction:
    id: str
    intent: str
    replies: list[str]
    citations: list[str]
    ticket: TicketOutcome | None
    escalated: bool
    timings: list[TurnTiming] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "intent": self.intent,
            "replies": self.replies,
            "citations": self.citations,
            "ticket": None if self.ticket is None else asdict(self.ticket),
            "escalated": self.escalated,
        }


def read_cases(path: Path) -> list[EvalCase]:
    cases: list[EvalCase] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            turns = raw["turns"]
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise TypeError("turns must be a list of strings")
            cases.append(EvalCase(str(raw["id"]), tuple(turns), raw.get("dialect"), raw.get("expect")))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise CaseFileError(f"{path}:{number}: not a dialogue case ({exc})") from exc
    return cases


# ---- running ----------------------------------------------------------------------------------------

TicketReader = Callable[[], Awaitable[TicketOutcome | None]]
DeskFactory = Callable[[str], Awaitable[tuple[ActionDesk, CallState, TicketReader]]]


async def run_case(
    manager: DialogueManager,
    case: EvalCase,
    new_call: DeskFactory,
    *,
    prepare: Callable[[str, str | None], str] = lambda text, _dialect: text,
) -> CasePrediction:
    """One case as a fresh call. `new_call(call_id)` gives the call's desk, its state and a way to read
    its ticket back from the store; `prepare` turns a turn's text into what the recognizer would hand on."""
    desk, state, final_ticket = await new_call(f"eval-{case.id}")
    replies: list[str] = []
    citations: dict[str, None] = {}
    timings: list[TurnTiming] = []
    for text in case.turns:
        started = time.perf_counter()
        first: float | None = None
        first_cited: float | None = None
        sentences: list[str] = []
        async for sentence in manager.turn(state, prepare(text, case.dialect), desk):
            now = time.perf_counter() - started
            first = now if first is None else first
            if sentence.citations and first_cited is None:
                first_cited = now
            sentences.append(sentence.text)
            citations.update(dict.fromkeys(sentence.citations))
        state.remember_reply("".join(sentences))
        replies.append("".join(sentences))
        timings.append(TurnTiming(time.perf_counter() - started, first, first_cited))
        if state.ended:
            break
    await manager.hang_up(state, desk)
    return CasePrediction(
        id=case.id,
        intent=state.main_intent.value,
        replies=replies,
        citations=list(citations),
        ticket=await final_ticket(),
        escalated=state.escalation is not None,
        timings=timings,
    )


# ---- scoring ----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_DECLINES = ("查不到", "没有查到", "没有相关", "无法提供", "不能提供", "暂无", "没有这方面", "不提供", "无法查询")
_OTHER_CHANNELS = ("人工", "营业厅")


def _flat(text: str) -> str:
    return _SPACE.sub("", unicodedata.normalize("NFKC", text))


def _numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(_flat(text)))


def _digits_only(text: str) -> str:
    return re.sub(r"\D", "", spoken_digits_to_numerals(_flat(text)))


@dataclass(frozen=True)
class CaseScore:
    id: str
    checks: dict[str, bool]
    facts_found: int = 0
    facts_total: int = 0
    slot_checks: dict[str, bool] = field(default_factory=dict)


def score_case(case: EvalCase, pred: CasePrediction, kb_text: str, hotline: str) -> CaseScore:
    """Judge one prediction against the case's `expect`, key by key; absent keys are not scored."""
    expect = case.expect or {}
    said = _flat("".join(pred.replies))
    checks: dict[str, bool] = {}
    facts_found = facts_total = 0
    slot_checks: dict[str, bool] = {}
    if "intent" in expect:
        checks["intent"] = pred.intent == expect["intent"]
    if expect.get("kb_docs"):
        checks["citations"] = bool(set(expect["kb_docs"]) & set(pred.citations))
    if expect.get("answer_facts"):
        found = [_flat(fact) in said for fact in expect["answer_facts"]]
        facts_found, facts_total = sum(found), len(found)
        checks["answer_facts"] = all(found)
    if expect.get("refuse"):
        known = _numbers(kb_text) | _numbers(hotline)
        grounded = _numbers(said) <= known
        declined = any(p in said for p in _DECLINES + _OTHER_CHANNELS) or hotline in said
        checks["refusal"] = grounded and declined
    if "ticket" in expect:
        wanted = expect["ticket"]
        if wanted is None:
            checks["ticket"] = pred.ticket is None
        else:
            checks["ticket"] = pred.ticket is not None and pred.ticket.category == wanted.get("category")
            if pred.ticket is not None:
                slot_checks = _slot_checks(wanted.get("slots") or {}, pred.ticket.slots)
            else:
                slot_checks = dict.fromkeys(wanted.get("slots") or {}, False)
            checks["ticket_slots"] = checks["ticket"] and all(slot_checks.values())
    if "escalate" in expect:
        checks["escalation"] = pred.escalated == bool(expect["escalate"])
    checks["no_invented_slots"] = not invented_slots(case, pred)
    return CaseScore(case.id, checks, facts_found, facts_total, slot_checks)


def _slot_checks(wanted: Mapping[str, str], got: Mapping[str, str]) -> dict[str, bool]:
    result = {}
    for name, value in wanted.items():
        if name.endswith("_contains"):
            result[name] = _flat(value) in _flat(got.get(name.removesuffix("_contains"), ""))
        else:
            result[name] = got.get(name) == value
    return result


def invented_slots(case: EvalCase, pred: CasePrediction) -> list[str]:
    """Phone numbers and addresses the bot holds (ticket or replies) that the caller never said."""
    heard_digits = _digits_only("".join(case.turns))
    heard = _flat("".join(case.turns))
    invented = []
    phones = set(re.findall(r"1[3-9]\d{9}", _flat("".join(pred.replies))))
    if pred.ticket is not None:
        phones |= {pred.ticket.slots["phone"]} if pred.ticket.slots.get("phone") else set()
        address = pred.ticket.slots.get("address")
        if address and not _traceable(address, heard):
            invented.append(f"address {address!r}")
    invented.extend(f"phone {phone}" for phone in sorted(phones) if phone not in heard_digits)
    return invented


def _traceable(value: str, heard: str) -> bool:
    """The value is made of pieces the caller said (two characters or more each, in any number), with
    digits free to be written either way: 南港区海澄路 + 滨江花园 from "南港区海澄路 就是那个 滨江花园"."""
    for piece in (p for p in re.split(r"[\d零〇一二两三四五六七八九十百]+", _flat(value)) if p):
        start = 0
        while start < len(piece):
            end = start + 1
            while end <= len(piece) and piece[start:end] in heard:
                end += 1
            if end - 1 - start < min(2, len(piece) - start):
                return False
            start = end - 1
    return True


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3)}


def summarize(scores: Iterable[CaseScore], predictions: Iterable[CasePrediction]) -> dict[str, Any]:
    scores, predictions = list(scores), list(predictions)
    summary: dict[str, Any] = {"cases": len(scores)}
    for key in ("intent", "citations", "answer_facts", "refusal", "ticket", "ticket_slots", "escalation",
                "no_invented_slots"):
        judged = [s.checks[key] for s in scores if key in s.checks]
        summary[key] = {"rate": round(sum(judged) / len(judged), 3) if judged else None, "n": len(judged),
                        "failed": [s.id for s in scores if s.checks.get(key) is False]}
    facts_total = sum(s.facts_total for s in scores)
    summary["answer_fact_recall"] = round(sum(s.facts_found for s in scores) / facts_total, 3) if facts_total else None
    summary["invented_slots"] = sum(1 for s in scores if s.checks.get("no_invented_slots") is False)
    turns = [t for p in predictions for t in p.timings]
    summary["seconds_per_turn"] = _percentiles([t.total_s for t in turns])
    summary["first_sentence_s"] = _percentiles([t.first_sentence_s for t in turns if t.first_sentence_s is not None])
    summary["first_cited_s"] = _percentiles([t.first_cited_s for t in turns if t.first_cited_s is not None])
    return summary
