"""Pydantic schemas of the knowledge base: what comes in (a document) and what the API returns."""

from __future__ import annotations

import datetime as dt
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "plans",
        "tariffs",
        "broadband",
        "mobile-network",
        "roaming",
        "billing",
        "number-services",
        "devices",
        "policies",
    }
)
DOCUMENT_ID_PATTERN: Final[str] = r"^[a-z0-9][a-z0-9-]{0,63}$"


class DocumentIn(BaseModel):
    """A knowledge-base document as written by an editor (front matter + markdown body)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=DOCUMENT_ID_PATTERN, description="lowercase slug, e.g. plan-5g-129")
    title: str = Field(min_length=1, max_length=200)
    category: str
    updated: dt.date
    body: str = Field(min_length=1)

    @field_validator("updated", mode="before")
    @classmethod
    def _date_not_number(cls, value: object) -> object:
        # pydantic would read a bare number as a Unix timestamp; an editor who wrote one meant something else
        if isinstance(value, int | float):
            raise ValueError(f"expected a date such as 2026-03-01, got the number {value}")
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}; expected one of {', '.join(sorted(CATEGORIES))}")
        return value


class KbDocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    category: str
    body: str
    version: int
    updated: dt.date
    created_at: dt.datetime
    updated_at: dt.datetime


class KbDocumentsPublic(BaseModel):
    data: list[KbDocumentPublic]
    count: int
