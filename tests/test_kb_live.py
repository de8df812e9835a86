"""Two real gateway processes on one store: a knowledge-base write on either is searchable on both, without a
restart; both start together on the new store and exactly one seeds it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.kb_live_bench import Gateway, gateways, searches_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("two gateways share a PostgreSQL store here")
    return database_url


@pytest.fixture
def pair(postgres_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, Gateway, Gateway]]:
    token = secrets.token_urlsafe(24)
    with gateways(2, database_url=postgres_url, data_dir=tmp_path, admin_token=token,
                  extra_env={"HOTLINE_KB_REFRESH_S": "0.2"}) as (one, two):
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            yield client, one, two


def test_a_write_on_one_gateway_is_searchable_on_the_other_without_restart(
    pair: tuple[httpx.Client, Gateway, Gateway],
) -> None:
    client, one, two = pair
    seeded = [client.get(f"{g.url}/v1/kb/documents", params={"limit": 500}).json()["total"] for g in (one, two)]
    assert seeded[0] == seeded[1] > 0
    audit = client.get(f"{one.url}/v1/kb/audit", params={"actor": "seed", "limit": 500}).json()
    assert len(audit) == seeded[0]  # seeded once, not by both

    doc = {"id": "outage-notice", "title": "东湖区光缆抢修通知", "category": "notices",
           "content": "- 东湖区光缆今日抢修，宽带预计18点前恢复。"}
    created = client.post(f"{one.url}/v1/kb/documents", json=doc)
    assert created.status_code == 201, created.text
    hits = client.get(f"{one.url}/v1/kb/search", params={"q": "东湖区宽带什么时候恢复", "k": 1}).json()
    assert (hits[0]["doc_id"], hits[0]["version"]) == ("outage-notice", 1)  # the writer answers at once
    searches_until(client, two.url, query="东湖区宽带什么时候恢复", doc_id="outage-notice", version=1)

    changed = client.put(f"{two.url}/v1/kb/documents/outage-notice",
                         json={"version": 1, "content": "- 东湖区光缆抢修完成，宽带已于17点恢复。"})
    assert changed.status_code == 200 and changed.json()["updated_by"] == "admin"
    searches_until(client, one.url, query="东湖区宽带什么时候恢复", doc_id="outage-notice", version=2)
    text = client.get(f"{one.url}/v1/kb/search", params={"q": "东湖区宽带什么时候恢复", "k": 1}).json()[0]["text"]
    assert "17点恢复" in text

    stale = client.put(f"{one.url}/v1/kb/documents/outage-notice", json={"version": 1, "title": "旧"})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2

    assert client.delete(f"{one.url}/v1/kb/documents/outage-notice").status_code == 204
    searches_until(client, two.url, query="东湖区宽带什么时候恢复", doc_id="outage-notice", version=None)
