"""`hotline kb import|export|search` against the configured store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_kb import PLAN_MD

from gateway.cli import main

pytestmark = pytest.mark.slow  # the bundled embedder

FAQ_CSV = "question,answer\n宽带装机要多久？,下单后48小时内上门安装。\n"


@pytest.fixture
def store_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOTLINE_DATABASE_URL", database_url)
    return database_url


def _last_json(out: str) -> object:
    return json.loads(out.strip().splitlines()[-1])


def test_import_search_and_export_through_the_cli(store_env: str, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "inbox"
    (folder / "plans").mkdir(parents=True)
    (folder / "plans" / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    (folder / "faq.csv").write_text(FAQ_CSV, encoding="utf-8")

    assert main(["kb", "import", str(folder), "--category", "faq", "--actor", "ops"]) == 0
    report = _last_json(capsys.readouterr().out)
    assert isinstance(report, dict) and len(report["created"]) == 2

    assert main(["kb", "search", "装宽带要几天", "-k", "1"]) == 0
    [hit] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (hit["title"], hit["version"], hit["text"]) == ("宽带装机要多久？", 1, "下单后48小时内上门安装。")

    assert main(["kb", "import", str(folder), "--category", "faq"]) == 0  # the same files again change nothing
    assert _last_json(capsys.readouterr().out) == {"created": [], "updated": [], "unchanged": report["unchanged"]
                                                   + report["created"]}

    out = tmp_path / "export"
    assert main(["kb", "export", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{doc_id}.md" for doc_id in report["created"])
    assert (out / "plan-test-59.md").read_text(encoding="utf-8").startswith("---\nid: plan-test-59\n")


def test_a_bad_file_imports_nothing_and_says_which_file(store_env: str, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "faq.csv").write_text(FAQ_CSV, encoding="utf-8")
    (folder / "broken.md").write_text("---\nid: x\ntitle: [\n---\n正文\n", encoding="utf-8")
    assert main(["kb", "import", str(folder)]) == 2
    assert "broken.md: front matter is not valid YAML" in capsys.readouterr().err
    out = tmp_path / "export"
    assert main(["kb", "export", str(out)]) == 0
    assert list(out.iterdir()) == []
