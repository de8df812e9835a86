"""Service-level targets: how soon after opening a ticket of each category a person must first act
on it (first response) and when it must be resolved (resolution)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from ticketing.models import TicketCategory

DEFAULT_SLA_HOURS: Mapping[TicketCategory, int] = MappingProxyType(
    {
        TicketCategory.BROADBAND: 24,
        TicketCategory.MOBILE_NETWORK: 48,
        TicketCategory.COMPLAINT: 72,
        TicketCategory.SERVICE_REQUEST: 72,
        TicketCategory.BILLING: 48,
    }
)
DEFAULT_RESOLUTION_HOURS = DEFAULT_SLA_HOURS
DEFAULT_FIRST_RESPONSE_HOURS: Mapping[TicketCategory, int] = MappingProxyType(
    {
        TicketCategory.BROADBAND: 4,
        TicketCategory.MOBILE_NETWORK: 4,
        TicketCategory.COMPLAINT: 2,
        TicketCategory.SERVICE_REQUEST: 8,
        TicketCategory.BILLING: 8,
    }
)


def _check(hours: Mapping[TicketCategory, int], what: str) -> None:
    missing = [category.value for category in TicketCategory if category not in hours]
    if missing:
        raise ValueError(f"SLA policy has no {what} target for categories: {', '.join(missing)}")
    bad = {str(category): value for category, value in hours.items() if value <= 0}
    if bad:
        raise ValueError(f"SLA {what} hours must be positive, got {bad}")


def _merged(defaults: Mapping[TicketCategory, int], hours: Mapping[str, int]) -> Mapping[TicketCategory, int]:
    merged = dict(defaults)
    for name, value in hours.items():
        try:
            category = TicketCategory(name)
        except ValueError:
            known = ", ".join(c.value for c in TicketCategory)
            raise ValueError(f"unknown ticket category {name!r} in SLA settings (known: {known})") from None
        merged[category] = value
    return MappingProxyType(merged)


@dataclass(frozen=True)
class SlaPolicy:
    """Hours per category until the resolution (`hours`) and the first response are due.

    Build one from settings (`from_hours`) to override the defaults.
    """

    hours: Mapping[TicketCategory, int] = field(default_factory=lambda: DEFAULT_RESOLUTION_HOURS)
    first_response_hours: Mapping[TicketCategory, int] = field(default_factory=lambda: DEFAULT_FIRST_RESPONSE_HOURS)

    def __post_init__(self) -> None:
        _check(self.hours, "resolution")
        _check(self.first_response_hours, "first-response")

    @classmethod
    def from_hours(cls, hours: Mapping[str, int], first_response: Mapping[str, int] | None = None) -> SlaPolicy:
        """Defaults overridden by plain {category: hours} mappings (e.g. from settings)."""
        return cls(
            hours=_merged(DEFAULT_RESOLUTION_HOURS, hours),
            first_response_hours=_merged(DEFAULT_FIRST_RESPONSE_HOURS, first_response or {}),
        )

    def due_at(self, category: TicketCategory, opened_at: datetime) -> datetime:
        """When a ticket opened at `opened_at` must be resolved."""
        return opened_at + timedelta(hours=self.hours[category])

    def first_response_due_at(self, category: TicketCategory, opened_at: datetime) -> datetime:
        return opened_at + timedelta(hours=self.first_response_hours[category])


DEFAULT_SLA = SlaPolicy()
