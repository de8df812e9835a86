"""Pydantic schemas of the knowledge base: what comes in (a document, a change) and what the API returns."""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DOCUMENT_ID_PATTERN: Final[str] = r"^[a-z0-9][a-z0-9-]{0,63}$"
CATEGORY_PATTERN: Final[str] = r"^[a-z][a-z0-9-]{0,39}$"
MAX_BODY_CHARS: Final[int] = 100_000
MAX_VERSION: Final[int] = 2_147_483_647  # a version past a 32-bit integer is no version: 422, not an overflow

Status = Literal["draft", "published"]


def _not_a_number(value: object) -> object:
    # pydantic would read a bare number as a Unix timestamp; an editor who wrote one meant something else
    if isinstance(value, int | float):
        raise ValueError(f"expected a date such as 2026-03-01, got the number {value}")
    return value


class DocumentIn(BaseModel):
    """A knowledge-base document as an editor writes it (front matter + markdown body)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=DOCUMENT_ID_PATTERN, description="lowercase slug, e.g. plan-5g-129")
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(pattern=CATEGORY_PATTERN, description="lowercase slug, e.g. plans, roaming")
    updated: dt.date
    body: str = Field(min_length=1, max_length=MAX_BODY_CHARS)
    status: Status = "published"

    _updated_not_number = field_validator("updated", mode="before")(_not_a_number)


class DocumentCreate(BaseModel):
    """POST /v1/kb/documents."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(default=None, pattern=DOCUMENT_ID_PATTERN, description="made from the title if absent")
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(pattern=CATEGORY_PATTERN)
    content: str = Field(min_length=1, max_length=MAX_BODY_CHARS, description="markdown body")
    status: Status = "published"
    updated: dt.date | None = Field(default=None, description="the date the facts are valid from; today if absent")

    _updated_not_number = field_validator("updated", mode="before")(_not_a_number)


class DocumentUpdate(BaseModel):
    """PUT /v1/kb/documents/{id}: the version the editor read, and what changes (absent fields stay)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1, le=MAX_VERSION, description="the version this change was made from")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, pattern=CATEGORY_PATTERN)
    content: str | None = Field(default=None, min_length=1, max_length=MAX_BODY_CHARS)
    status: Status | None = None
    updated: dt.date | None = None

    _updated_not_number = field_validator("updated", mode="before")(_not_a_number)


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_version: int = Field(ge=1, le=MAX_VERSION)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="the current version, to refuse a stale rollback")


class KbDocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    category: str
    body: str
    status: str
    version: int
    updated: dt.date
    created_at: dt.datetime
    updated_at: dt.datetime
    updated_by: str


class KbDocumentsPage(BaseModel):
    items: list[KbDocumentPublic]
    total: int
    offset: int
    limit: int


class KbVersionPublic(BaseModel):
    """One version of a document; as a list of changes, the audit log."""

    model_config = ConfigDict(from_attributes=True)

    document_id: str
    version: int
    title: str
    category: str
    body: str
    status: str
    updated: dt.date
    action: str
    from_version: int | None
    actor: str
    at: dt.datetime


class KbDiff(BaseModel):
    document_id: str
    from_version: int
    to_version: int
    changed: list[str]  # the fields that differ
    diff: str  # unified diff of the two versions as Markdown


class ImportReport(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)


class SearchHit(BaseModel):
    doc_id: str
    version: int
    title: str
    text: str
    score: float
