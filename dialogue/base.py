"""Public interface of the dialogue manager and the small protocols it needs from outside."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 160
    temperature: float = 0.2
    stop: tuple[str, ...] = ()


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


class KnowledgeSearch(Protocol):
    def search(self, query: str, k: int = 3) -> Sequence[KnowledgePassage]: ...


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
    number: str
    category: str
    sla_hours: int | None = None


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


@dataclass(frozen=True)
class ReplySentence:
    """One sentence of the bot's reply, spoken as soon as it is complete."""

    text: str
    citations: tuple[str, ...] = ()
