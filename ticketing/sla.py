"""Service-level targets: how long after opening a ticket of each category is due."""

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


@dataclass(frozen=True)
class SlaPolicy:
    """Hours until a ticket is due, per category. Build one from settings to override the defaults."""

    hours: Mapping[TicketCategory, int] = field(default_factory=lambda: DEFAULT_SLA_HOURS)

    def __post_init__(self) -> None:
        missing = [category.value for category in TicketCategory if category not in self.hours]
        if missing:
            raise ValueError(f"SLA policy has no target for categories: {', '.join(missing)}")
        bad = {str(category): hours for category, hours in self.hours.items() if hours <= 0}
        if bad:
            raise ValueError(f"SLA hours must be positive, got {bad}")

    @classmethod
    def from_hours(cls, hours: Mapping[str, int]) -> SlaPolicy:
        """Defaults overridden by a plain {category: hours} mapping (e.g. from settings)."""
        merged = dict(DEFAULT_SLA_HOURS)
        for name, value in hours.items():
            try:
                category = TicketCategory(name)
            except ValueError:
                known = ", ".join(c.value for c in TicketCategory)
                raise ValueError(
                    f"unknown ticket category {name!r} in SLA settings (known: {known})"
                ) from None
            merged[category] = value
        return cls(hours=MappingProxyType(merged))

    def due_at(self, category: TicketCategory, opened_at: datetime) -> datetime:
        return opened_at + timedelta(hours=self.hours[category])


DEFAULT_SLA = SlaPolicy()
