"""Public interface of the dialogue manager and the small protocols it needs from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 160
    temperature: float = 0.2
    stop: tuple[str, ...] = ()
    # Constrain the reply to JSON of this schema (llama.cpp turns it into a grammar; vLLM guides decoding).
    json_schema: Mapping[str, Any] | None = None


class LanguageModel(Protocol):
    """A chat model; `stream` is blocking and yields text pieces as they are decoded."""

    name: str

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]: ...


class KnowledgePassage(Protocol):
    @property
    def doc_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def category(self) -> str: ...


class KnowledgeSearch(Protocol):
    """What the dialogue needs of the knowledge base (blocking calls: run them in the KB pool)."""

    def statements(
        self, query: str, k: int = 5, doc_ids: Collection[str] | None = None
    ) -> Sequence[KnowledgePassage]:
        """The best statements for `query`, best first, optionally of `doc_ids` only."""
        ...

    def mentions(self, term: str, doc_id: str | None = None) -> bool:
        """Whether the knowledge base (or one document of it) says `term` anywhere."""
        ...

    def catalog(self) -> Sequence[tuple[str, str, str]]:
        """(document id, title, category) of every document."""
        ...

    def in_document_words(self, question: str) -> str:
        """`question` as search reads it: normalised, with the documents' words for what it says (年付 for 一年一交)."""
        ...


@dataclass(frozen=True)
class OpenTicket:
    category: str  # broadband | mobile-network | complaint | service-request | billing
    slots: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class Escalate:
    reason: str


@dataclass(frozen=True)
class UpdateTicket:
    ticket_id: int
    slots: dict[str, str]


@dataclass(frozen=True)
class EndCall:
    reason: str = "caller_done"


Action = OpenTicket | UpdateTicket | Escalate | EndCall


@dataclass(frozen=True)
class TicketReceipt:
    id: int
    number: str | None  # None while the store is away: the number follows when it is stored
    category: str
    sla_hours: int | None = None
    # The caller already had this ticket open (same number, same category): its status, e.g. "in_progress".
    existing_status: str | None = None


@dataclass(frozen=True)
class EscalationReceipt:
    id: int
    reason: str


class ActionDesk(Protocol):
    """Carries out the manager's actions (the gateway: persists them and tells the client)."""

    async def open_ticket(self, action: OpenTicket) -> TicketReceipt: ...

    async def update_ticket(self, action: UpdateTicket) -> None: ...

    async def escalate(self, action: Escalate) -> EscalationReceipt: ...

    async def end_call(self, action: EndCall) -> None: ...


class StopSignal:
    """Tells the model work of one call to stop (the caller hung up). Copies of a call's state share
    it, so a state restored from a copy still hears it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def __deepcopy__(self, memo: dict[int, Any]) -> StopSignal:
        return self


@dataclass(frozen=True)
class Suggestion:
    """What an agent on the call is offered for the caller's latest words: the KB's best passages and
    the answer the bot would have given (grounded the same way), for the agent to send or edit."""

    text: str
    citations: tuple[str, ...]
    passages: tuple[KnowledgePassage, ...]


@dataclass(frozen=True)
class ReplySentence:
    """One sentence of the bot's reply, spoken as soon as it is complete."""

    text: str
    citations: tuple[str, ...] = ()
