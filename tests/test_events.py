"""The README's protocol tables name exactly the events the code sends, with every field."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from gateway import events

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_after(heading: str) -> dict[str, set[str]]:
    """event -> the backticked words of its fields column, from the first table after `heading`."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    rows: dict[str, set[str]] = {}
    for line in text[start:].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not (name := re.fullmatch(r"`(\w+)`", cells[0])):
            continue
        rows[name.group(1)] = {word.split(":")[0] for word in re.findall(r"`([^`]+)`", cells[1])}
    return rows


@pytest.mark.parametrize(("heading", "classes"), [
    ("The server sends JSON text events", events.CALL_EVENTS),
    ("The agent's console gets", events.DESK_EVENTS),
])
def test_the_readme_tables_match_the_event_classes(heading: str, classes: tuple[type[events.ServerEvent], ...]):
    table = _table_after(heading)
    assert set(table) == {cls.type for cls in classes}
    for cls in classes:
        missing = {spec.name for spec in fields(cls)} - table[cls.type]
        assert not missing, f"README's `{cls.type}` row lacks {sorted(missing)}"


def test_optional_fields_left_unset_are_not_sent():
    assert events.Ticket(id=3, number="T1", category="broadband").as_dict() == {
        "type": "ticket", "id": 3, "number": "T1", "category": "broadband"}
    assert events.Ticket(id=None, number=None, category="billing", pending=True).as_dict()["pending"] is True
    assert events.Reply(turn=2, text="好的", citations=("a",)).as_dict() == {
        "type": "reply", "turn": 2, "text": "好的", "citations": ["a"], "by": "bot"}
