"""REST under /v1/kb through the real app (knowledge-base models only): documents, versions, import/export,
audit, search; every refusal a clear 4xx that leaves the knowledge base as it was."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_kb import PLAN_MD

from gateway import accounts
from gateway.app import create_app
from gateway.settings import Settings

pytestmark = pytest.mark.slow  # the bundled embedder

ADMIN_TOKEN = "kb-admin-token-for-tests-0123456789"
FAQ_CSV = "question,answer\n宽带装机要多久？,下单后48小时内上门安装。\n流量用完了怎么办？,可以订购流量加油包，10元1GB。\n"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inbox")
    (folder / "plans").mkdir()
    (folder / "plans" / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, inbox: Path) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("kb-rest")
    settings = Settings(data_dir=data, admin_token=ADMIN_TOKEN, kb_dir=data / "empty-kb", kb_import_dir=inbox,
                        kb_import_max_file_bytes=100_000, kb_import_max_bytes=300_000)
    (data / "empty-kb").mkdir()
    (data / "empty-kb" / "seed.md").write_text(
        "---\nid: seed-doc\ntitle: 营业厅时间\ncategory: stores\nupdated: 2026-01-01\n---\n营业厅每天9点到18点营业。\n",
        encoding="utf-8",
    )
    with TestClient(create_app(settings, models=("kb",))) as client:
        deadline = time.monotonic() + 120
        while not client.get("/readyz").json()["ready"]:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        yield client


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def agent(client: TestClient) -> dict[str, str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        made = accounts.create_account(session, name="agent-kb", role=accounts.Role.AGENT, now=services.clock.now())
    return {"Authorization": f"Bearer {made.token}"}


def new_doc(doc_id: str, **fields: object) -> dict[str, object]:
    return {"id": doc_id, "title": "国际漫游开通", "category": "roaming",
            "content": "- 出境前拨打10077开通国际漫游。\n- 开通后立即生效。", **fields}


def search(client: TestClient, q: str, headers: dict[str, str], k: int = 3) -> list[dict[str, object]]:
    response = client.get("/v1/kb/search", params={"q": q, "k": k}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client: TestClient) -> object:
    """Everything a refused change must leave as it was."""
    documents = client.get("/v1/kb/documents", params={"limit": 500}, headers=admin()).json()
    return documents, client.get("/v1/kb/audit", params={"limit": 500}, headers=admin()).json()


# --- the life of a document ---------------------------------------------------------------------------------


def test_a_document_is_created_edited_deleted_and_rolled_back_searchable_at_once(
    client: TestClient, agent: dict[str, str]
) -> None:
    created = client.post("/v1/kb/documents", json=new_doc("roam-intl"), headers=admin())
    assert created.status_code == 201, created.text
    assert (created.json()["id"], created.json()["version"], created.json()["updated_by"]) == ("roam-intl", 1, "admin")
    [hit] = search(client, "出国前怎么开通漫游", agent, k=1)
    assert (hit["doc_id"], hit["version"]) == ("roam-intl", 1) and isinstance(hit["score"], float)

    changed = client.put("/v1/kb/documents/roam-intl", headers=admin(),
                         json={"version": 1, "content": "- 出境前拨打10077或在App开通国际漫游。\n- 开通后立即生效。"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    [hit] = search(client, "出国前怎么开通漫游", agent, k=1)
    assert (hit["doc_id"], hit["version"]) == ("roam-intl", 2) and "App" in str(hit["text"])

    stale = client.put("/v1/kb/documents/roam-intl", json={"version": 1, "title": "旧标题"}, headers=admin())
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and "current version is 2" in stale.json()["detail"]

    assert client.delete("/v1/kb/documents/roam-intl", headers=admin()).status_code == 204
    assert client.get("/v1/kb/documents/roam-intl", headers=agent).status_code == 404
    assert all(hit["doc_id"] != "roam-intl" for hit in search(client, "出国前怎么开通漫游", agent))

    versions = client.get("/v1/kb/documents/roam-intl/versions", headers=agent).json()
    assert [(v["version"], v["action"], v["from_version"]) for v in versions] == [
        (1, "create", None), (2, "update", 1), (3, "delete", 2)]
    assert client.get("/v1/kb/documents/roam-intl/versions/1", headers=agent).json()["body"].startswith("- 出境前拨打10077开通")
    diff = client.get("/v1/kb/documents/roam-intl/diff", params={"from": 1, "to": 2}, headers=agent).json()
    assert diff["changed"] == ["body"] and "+- 出境前拨打10077或在App开通国际漫游。" in diff["diff"]

    back = client.post("/v1/kb/documents/roam-intl/rollback", json={"to_version": 1}, headers=admin())
    assert back.status_code == 200 and back.json()["version"] == 4
    [hit] = search(client, "出国前怎么开通漫游", agent, k=1)
    assert (hit["doc_id"], hit["version"]) == ("roam-intl", 4)
    audit = client.get("/v1/kb/audit", params={"doc_id": "roam-intl"}, headers=agent).json()
    assert [(e["version"], e["action"], e["actor"]) for e in audit][0] == (4, "rollback", "admin")


def test_list_filters_and_pages(client: TestClient, agent: dict[str, str]) -> None:
    for n in range(3):
        body = new_doc(f"list-doc-{n}", category="listing", title=f"列表文档{n}", status="draft" if n == 2 else "published")
        assert client.post("/v1/kb/documents", json=body, headers=admin()).status_code == 201
    page = client.get("/v1/kb/documents", params={"category": "listing", "limit": 2}, headers=agent).json()
    assert (page["total"], [d["id"] for d in page["items"]]) == (3, ["list-doc-0", "list-doc-1"])
    rest = client.get("/v1/kb/documents", params={"category": "listing", "offset": 2}, headers=agent).json()
    assert [d["id"] for d in rest["items"]] == ["list-doc-2"]
    drafts = client.get("/v1/kb/documents", params={"status": "draft", "text": "列表"}, headers=agent).json()
    assert [d["id"] for d in drafts["items"]] == ["list-doc-2"]
    assert all(hit["doc_id"] != "list-doc-2" for hit in search(client, "列表文档2", agent, k=10))  # drafts never answer


def test_a_document_without_an_id_is_named_after_its_title(client: TestClient) -> None:
    body = {"title": "Wi-Fi 密码重置", "category": "broadband", "content": "在光猫背面找到初始密码。"}
    created = client.post("/v1/kb/documents", json=body, headers=admin())
    assert created.status_code == 201 and created.json()["id"] == "wi-fi-mi-ma-zhong-zhi"


# --- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/v1/kb/documents", new_doc("bad-1", title=""), 422, "title"),
        ("post", "/v1/kb/documents", new_doc("bad-2", content="  "), 422, "content"),
        ("post", "/v1/kb/documents", new_doc("Bad Id"), 422, "id"),
        ("post", "/v1/kb/documents", new_doc("bad-3", category="漫游"), 422, "category"),
        ("post", "/v1/kb/documents", new_doc("bad-4", status="live"), 422, "status"),
        ("post", "/v1/kb/documents", new_doc("bad-5", owner="me"), 422, "owner"),
        ("post", "/v1/kb/documents", new_doc("seed-doc"), 409, "already exists"),
        ("put", "/v1/kb/documents/nobody", {"version": 1, "title": "x"}, 404, "no knowledge-base document 'nobody'"),
        ("put", "/v1/kb/documents/seed-doc", {"title": "x"}, 422, "version"),
        ("put", "/v1/kb/documents/seed-doc", {"version": 1, "content": ""}, 422, "content"),
        ("delete", "/v1/kb/documents/nobody", None, 404, "nobody"),
        ("delete", "/v1/kb/documents/seed-doc?version=7", None, 409, "current version is 1"),
        ("post", "/v1/kb/documents/seed-doc/rollback", {"to_version": 9}, 404, "has no version 9"),
        ("get", "/v1/kb/documents/seed-doc/versions/9", None, 404, "has no version 9"),
        ("get", "/v1/kb/documents/seed-doc/diff?from=1&to=9", None, 404, "has no version 9"),
        ("get", "/v1/kb/documents/nobody/versions", None, 404, "nobody"),
        ("get", "/v1/kb/search?q=", None, 422, "q"),
        ("get", "/v1/kb/search?q=%20", None, 422, "blank"),
        ("get", "/v1/kb/search?q=x&k=0", None, 422, "k"),
        ("get", "/v1/kb/documents?status=gone", None, 422, "status"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    client: TestClient, method: str, path: str, body: object, status: int, message: str
) -> None:
    before = snapshot(client)
    response = client.request(method.upper(), path, json=body, headers=admin())
    assert response.status_code == status, response.text
    assert message in response.text
    assert snapshot(client) == before


def test_reads_need_a_token_and_writes_need_the_admin(client: TestClient, agent: dict[str, str]) -> None:
    assert client.get("/v1/kb/documents").status_code == 401
    assert client.get("/v1/kb/search", params={"q": "营业厅"}).status_code == 401
    before = snapshot(client)
    assert client.post("/v1/kb/documents", json=new_doc("by-agent"), headers=agent).status_code == 403
    assert client.delete("/v1/kb/documents/seed-doc", headers=agent).status_code == 403
    files = {"files": ("plan.md", PLAN_MD.encode(), "text/markdown")}
    assert client.post("/v1/kb/import", files=files, headers=agent).status_code == 403
    assert snapshot(client) == before
    assert client.get("/v1/kb/documents/seed-doc", headers=agent).status_code == 200


# --- bulk --------------------------------------------------------------------------------------------------


def test_an_upload_of_several_kinds_is_imported_and_searchable(client: TestClient, agent: dict[str, str]) -> None:
    files = [("files", ("plan.md", PLAN_MD.encode(), "text/markdown")),
             ("files", ("faq.csv", FAQ_CSV.encode(), "text/csv"))]
    response = client.post("/v1/kb/import", files=files, data={"category": "faq"}, headers=admin())
    assert response.status_code == 200, response.text
    assert len(response.json()["created"]) == 3
    [hit] = search(client, "装宽带要等几天", agent, k=1)
    assert hit["text"] == "下单后48小时内上门安装。"
    audit = client.get("/v1/kb/audit", params={"doc_id": "plan-test-59"}, headers=agent).json()
    assert [(e["action"], e["actor"]) for e in audit] == [("import", "admin")]


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("kb.zip", b"PK\x03\x04 not really", 422, "kb.zip: is not a readable zip archive"),
        ("kb.zip", _zip({"ok.txt": "标题\n正文。", "bad.md": "---\nid: [\n---\n正文"}), 422,
         "kb.zip:bad.md: front matter is not valid YAML"),
        ("sheet.xlsx", b"PK", 415, "cannot import .xlsx files"),
        ("big.txt", "标题\n".encode() + b"x" * 200_000, 413, "big.txt is over the 100000-byte limit"),
        ("faq.csv", b"question,answer\n\xb9\xe3,x\n", 422, "faq.csv: is not UTF-8 text"),
    ],
)
def test_a_bad_upload_imports_nothing(client: TestClient, name: str, content: bytes, status: int, message: str) -> None:
    before = snapshot(client)
    files = [("files", ("good.txt", "好标题\n好的正文。".encode(), "text/plain")), ("files", (name, content, "application/octet-stream"))]
    response = client.post("/v1/kb/import", files=files, headers=admin())
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert snapshot(client) == before


def test_a_folder_import_stays_inside_the_import_folder(client: TestClient, inbox: Path) -> None:
    (inbox.parent / "secret.md").write_text(PLAN_MD.replace("plan-test-59", "secret-doc"), encoding="utf-8")
    before = snapshot(client)
    refused = client.post("/v1/kb/import/folder", json={"path": "../secret.md"}, headers=admin())
    assert refused.status_code == 403 and "outside the import folder" in refused.json()["detail"]
    assert snapshot(client) == before
    imported = client.post("/v1/kb/import/folder", json={"path": "plans"}, headers=admin())
    assert imported.status_code == 200, imported.text


def test_the_export_is_a_zip_that_imports_back_unchanged(client: TestClient, agent: dict[str, str]) -> None:
    response = client.get("/v1/kb/export", headers=agent)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    total = client.get("/v1/kb/documents", params={"limit": 500}, headers=agent).json()["total"]
    assert len(names) == total and "seed-doc.md" in names
    again = client.post("/v1/kb/import", files={"files": ("kb.zip", response.content, "application/zip")}, headers=admin())
    assert again.status_code == 200 and again.json()["created"] == again.json()["updated"] == []


def test_the_kb_api_is_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/kb/documents", "/v1/kb/documents/{doc_id}", "/v1/kb/documents/{doc_id}/versions",
                 "/v1/kb/documents/{doc_id}/diff", "/v1/kb/documents/{doc_id}/rollback", "/v1/kb/import",
                 "/v1/kb/export", "/v1/kb/audit", "/v1/kb/search"):
        assert path in paths, path
    assert "409" in paths["/v1/kb/documents/{doc_id}"]["put"]["responses"]
