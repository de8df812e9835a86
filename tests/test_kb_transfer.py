"""Knowledge-base bulk import (Markdown, plain text, CSV, zip) and export, all or nothing."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from test_kb import PLAN_MD, HashingEmbedder

from gateway.db import create_engine_for
from kb.markdown import MarkdownDocumentError
from kb.models import Base
from kb.store import export_documents, list_documents, prepare, write_documents
from kb.transfer import (
    ImportDefaults,
    ImportLimits,
    ImportTooLarge,
    KbImportError,
    OutsideImportFolder,
    UnsupportedSource,
    export_zip,
    read_path,
    read_uploads,
    slug,
)

TODAY = dt.date(2026, 5, 4)
DEFAULTS = ImportDefaults(updated=TODAY, category="faq")
NOW = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)

FAQ_CSV = """question,answer
宽带装机要多久？,下单后48小时内上门安装。
"流量用完了会怎样？","超出部分按3元/GB计费，
当月封顶60元。"
"""


def zipped(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# --- formats -----------------------------------------------------------------------------------------


def test_markdown_with_front_matter_is_read_as_written() -> None:
    [doc] = read_uploads([("plan.md", PLAN_MD.encode())], defaults=DEFAULTS)
    assert (doc.id, doc.category, doc.updated) == ("plan-test-59", "plans", dt.date(2026, 4, 1))


def test_plain_text_takes_a_short_first_line_as_title_and_the_file_name_as_id() -> None:
    [doc] = read_uploads([("宽带安装.txt", "宽带安装须知\n\n下单后48小时内上门安装。".encode())], defaults=DEFAULTS)
    assert (doc.id, doc.title, doc.body, doc.category) == ("kuan-dai-an-zhuang", "宽带安装须知", "下单后48小时内上门安装。", "faq")
    assert doc.updated == TODAY


def test_plain_text_whose_first_line_is_a_sentence_is_titled_by_its_file_name() -> None:
    [doc] = read_uploads([("roaming_notes.txt", "出境前请打开数据漫游。\n资费按目的地计算。".encode())], defaults=DEFAULTS)
    assert (doc.id, doc.title) == ("roaming-notes", "roaming notes")
    assert doc.body.startswith("出境前请打开数据漫游。")


def test_csv_makes_one_document_per_question_with_ids_that_survive_reordering() -> None:
    docs = read_uploads([("faq.csv", FAQ_CSV.encode())], defaults=DEFAULTS)
    assert [d.title for d in docs] == ["宽带装机要多久？", "流量用完了会怎样？"]
    assert docs[1].body == "超出部分按3元/GB计费，\n当月封顶60元。"
    assert all(d.id.startswith("faq-") and d.category == "faq" for d in docs)
    lines = FAQ_CSV.splitlines()
    reordered = "\n".join([lines[0], *lines[2:], lines[1]])
    again = read_uploads([("faq.csv", reordered.encode())], defaults=DEFAULTS)
    assert {d.id: d.title for d in again} == {d.id: d.title for d in docs}


def test_csv_columns_may_set_id_category_and_status() -> None:
    text = "问题,答案,id,category,status\n怎么停机保号？,营业厅办理，每月5元。,suspend-faq,service,draft\n"
    [doc] = read_uploads([("x.csv", text.encode())], defaults=DEFAULTS)
    assert (doc.id, doc.category, doc.status) == ("suspend-faq", "service", "draft")


def test_a_zip_of_several_kinds_is_read_with_folders_and_without_hidden_files() -> None:
    archive = zipped({
        "kb/plan.md": PLAN_MD, "kb/faq.csv": FAQ_CSV, "notes/roaming.txt": "漫游说明\n出境前打开数据漫游。",
        "__MACOSX/kb/._plan.md": b"\x00\x05", "kb/.DS_Store": b"\x00", "README.md": "not a document",
    })
    docs = read_uploads([("kb.zip", archive)], defaults=DEFAULTS)
    assert sorted(d.id for d in docs)[-2:] == ["plan-test-59", "roaming"] and len(docs) == 4


def test_a_folder_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    (tmp_path / "faq.csv").write_text(FAQ_CSV, encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    assert len(read_path(tmp_path, defaults=DEFAULTS)) == 3


def test_slugs_are_valid_ids() -> None:
    assert slug("5G 套餐 FAQ (v2)") == "5g-tao-can-faq-v2"
    assert slug("！！") == "document"
    assert len(slug("长" * 100)) <= 64


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("bad.md", "---\nid: [unclosed\n---\n正文", MarkdownDocumentError, "bad.md: front matter is not valid YAML"),
        ("bad.md", "no front matter", MarkdownDocumentError, "bad.md: missing YAML front matter"),
        ("gbk.txt", "宽带".encode("gbk"), KbImportError, "gbk.txt: is not UTF-8 text"),
        ("empty.txt", "  \n", KbImportError, "empty.txt: the file is empty"),
        ("faq.csv", "q,reply\na,b\n", KbImportError, "needs a header row with 'question' and 'answer'"),
        ("faq.csv", "question,answer\n有问题吗？,\n", KbImportError, "faq.csv:2: a row needs both"),
        ("faq.csv", "question,answer,category\n问,答,Bad Category\n", KbImportError, "faq.csv:2: invalid document"),
        ("faq.xlsx", b"PK", UnsupportedSource, "cannot import .xlsx files"),
        ("kb.zip", b"PK\x03\x04 broken", KbImportError, "kb.zip: is not a readable zip archive"),
        ("kb.zip", zipped({"../etc/x.md": PLAN_MD}), OutsideImportFolder, "leads out of the archive"),
        ("kb.zip", zipped({"inner.zip": zipped({"a.md": PLAN_MD})}), UnsupportedSource, "a zip inside a zip"),
    ],
)
def test_a_bad_file_is_refused_with_its_name_and_the_problem(
    name: str, content: str | bytes, error: type[Exception], message: str
) -> None:
    data = content.encode() if isinstance(content, str) else content
    with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_uploads([("plan.md", PLAN_MD.encode()), (name, data)], defaults=DEFAULTS)


def test_two_sources_declaring_one_id_are_refused() -> None:
    with pytest.raises(KbImportError, match="'plan-test-59' is declared by both a.md and b.md"):
        read_uploads([("a.md", PLAN_MD.encode()), ("b.md", PLAN_MD.encode())], defaults=DEFAULTS)


def test_limits_refuse_a_large_file_a_large_import_and_a_zip_bomb() -> None:
    limits = ImportLimits(max_file_bytes=1000, max_total_bytes=1500, max_documents=3)
    with pytest.raises(ImportTooLarge, match="big.txt: 1001 bytes"):
        read_uploads([("big.txt", b"x" * 1001)], defaults=DEFAULTS, limits=limits)
    with pytest.raises(ImportTooLarge, match="over its 1500-byte limit"):
        read_uploads([("a.txt", b"a\nb" * 300), ("b.txt", b"a\nb" * 300)], defaults=DEFAULTS, limits=limits)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", "标题\n" + "0" * 100_000)
    with pytest.raises(ImportTooLarge, match="bomb.zip:bomb.txt"):
        read_uploads([("bomb.zip", bomb.getvalue())], defaults=DEFAULTS, limits=limits)
    rows = "question,answer\n" + "".join(f"问题{n}？,答案{n}。\n" for n in range(4))
    with pytest.raises(ImportTooLarge, match="more than 3 documents"):
        read_uploads([("faq.csv", rows.encode())], defaults=DEFAULTS, limits=limits)


def test_a_path_outside_the_import_folder_is_refused(tmp_path: Path) -> None:
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text(PLAN_MD, encoding="utf-8")
    with pytest.raises(OutsideImportFolder, match="outside the import folder"):
        read_path(inbox / ".." / "elsewhere" / "secret.md", root=inbox, defaults=DEFAULTS)
    (inbox / "link.md").symlink_to(elsewhere / "secret.md")
    with pytest.raises(OutsideImportFolder, match="link.md: links to"):
        read_path(inbox, defaults=DEFAULTS)


# --- into the store, and out again ---------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def test_an_import_is_written_whole_and_exported_back_to_the_same_documents(engine: Engine) -> None:
    embedder = HashingEmbedder()
    docs = read_uploads([("faq.csv", FAQ_CSV.encode()), ("plan.md", PLAN_MD.encode())], defaults=DEFAULTS)
    with Session(engine) as session:
        report = write_documents(session, prepared=[prepare(d, embedder) for d in docs], now=NOW, actor="admin")
        assert len(report.created) == 3
        exported = export_documents(session)
    again = read_uploads([("export.zip", export_zip(exported))], defaults=DEFAULTS)
    assert sorted(again, key=lambda d: d.id) == sorted(docs, key=lambda d: d.id)


def test_a_bad_file_in_an_import_leaves_the_store_as_it_was(engine: Engine) -> None:
    with Session(engine) as session:
        write_documents(session, prepared=[prepare(d, HashingEmbedder()) for d in
                                           read_uploads([("plan.md", PLAN_MD.encode())], defaults=DEFAULTS)],
                        now=NOW, actor="admin")
    with pytest.raises(KbImportError):
        read_uploads([("faq.csv", FAQ_CSV.encode()), ("bad.csv", b"question,answer\n,\n")], defaults=DEFAULTS)
    with Session(engine) as session:
        assert [d.id for d in list_documents(session)[0]] == ["plan-test-59"]
