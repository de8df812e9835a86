"""Phone numbers shown to people who may not see them in full: 13812345678 -> 138****5678."""

from __future__ import annotations

from typing import Any

from ticketing.schemas import TicketEventPublic, TicketPublic


def mask_phone(number: str) -> str:
    """Keep the first 3 and last 4 digits; already-masked values (containing '*') are kept as they are."""
    value = number.strip()
    if "*" in value or not value:
        return value
    if len(value) >= 7:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return "*" * max(len(value) - 2, 0) + value[-2:]


def _masked_change(change: Any) -> Any:
    if not isinstance(change, dict):
        return change
    return {key: mask_phone(value) if isinstance(value, str) else value for key, value in change.items()}


def _masked_event(event: TicketEventPublic) -> TicketEventPublic:
    changes = event.detail.get("slots")
    if not isinstance(changes, dict) or "phone" not in changes:
        return event
    slots = {**changes, "phone": _masked_change(changes["phone"])}
    return event.model_copy(update={"detail": {**event.detail, "slots": slots}})


def mask_ticket(ticket: TicketPublic) -> TicketPublic:
    """The ticket with its phone masked everywhere it appears: the column, the slot, slot changes."""
    slots = dict(ticket.slots)
    if "phone" in slots:
        slots["phone"] = mask_phone(slots["phone"])
    return ticket.model_copy(update={
        "phone": mask_phone(ticket.phone) if ticket.phone else ticket.phone,
        "slots": slots,
        "events": [_masked_event(event) for event in ticket.events],
    })
