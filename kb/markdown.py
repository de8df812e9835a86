"""Markdown documents with YAML front matter (id, title, category, updated, optional status) <-> ``DocumentIn``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from pydantic import ValidationError

from kb.schemas import DocumentIn

REQUIRED_FIELDS = ("id", "title", "category", "updated")
_FENCE = "---"


class MarkdownDocumentError(ValueError):
    """A markdown document that cannot become a ``DocumentIn``; the message names the source and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def parse_markdown(text: str, *, source: str = "<document>") -> DocumentIn:
    front, body = _split_front_matter(text, source=source)
    fields = _load_front_matter(front, source=source)
    missing = [name for name in REQUIRED_FIELDS if fields.get(name) in (None, "")]
    if missing:
        raise MarkdownDocumentError(source, f"front matter lacks required field(s): {', '.join(missing)}")
    if not body.strip():
        raise MarkdownDocumentError(source, "document body is empty")
    try:
        return DocumentIn.model_validate(
            {
                "id": str(fields["id"]),
                "title": str(fields["title"]),
                "category": str(fields["category"]),
                "updated": fields["updated"],
                "body": body.strip(),
                "status": str(fields.get("status") or "published"),
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        raise MarkdownDocumentError(source, f"invalid front matter: {problems}") from exc


def read_markdown_file(path: Path) -> DocumentIn:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MarkdownDocumentError(str(path), "file is not UTF-8 text") from exc
    return parse_markdown(text, source=str(path))


def render_markdown(doc: DocumentIn) -> str:
    """The document as a markdown file that ``parse_markdown`` reads back to an equal ``DocumentIn``."""
    fields: dict[str, object] = {"id": doc.id, "title": doc.title, "category": doc.category, "updated": doc.updated}
    if doc.status != "published":
        fields["status"] = doc.status
    front = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    return f"{_FENCE}\n{front}{_FENCE}\n{doc.body}\n"


def _split_front_matter(text: str, *, source: str) -> tuple[str, str]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != _FENCE:
        raise MarkdownDocumentError(
            source, "missing YAML front matter (the file must start with a '---' line)"
        )
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == _FENCE:
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise MarkdownDocumentError(source, "front matter is not closed by a '---' line")


def _load_front_matter(front: str, *, source: str) -> dict[str, object]:
    try:
        loaded = yaml.safe_load(front)
    except (yaml.YAMLError, ValueError) as exc:  # PyYAML raises ValueError for impossible dates
        raise MarkdownDocumentError(source, f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise MarkdownDocumentError(source, "front matter must be a YAML mapping of fields")
    fields = {str(key): value for key, value in loaded.items()}
    if isinstance(fields.get("updated"), dt.datetime):
        fields["updated"] = fields["updated"].date()  # type: ignore[union-attr]
    return fields
