"""Registering an adapted model in a deployment's dialect registry file (HOTLINE_ASR__DIALECTS_FILE)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from asr.dialects import load_registry

HEADER = ("# Dialect registry of this deployment (HOTLINE_ASR__DIALECTS_FILE); it extends asr/dialects.yaml,\n"
          "# an entry here replaces the shipped entry of the same name. Written by `hotline adapt asr`.\n")


def _entries(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"dialects": []}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.setdefault("dialects", [])
    return data


def register_dialect_model(path: Path, dialect: str, model_dir: Path, *, beam_size: int | None = None) -> None:
    """Make `model_dir` serve `dialect`: its entry in `path` gets the model (absolute path), keeping its
    other fields; a new entry starts from the shipped entry (codes, language, lexicon)."""
    path = Path(path)
    data = _entries(path)
    entry = next((e for e in data["dialects"] if str(e.get("name", "")).lower() == dialect.lower()), None)
    if entry is None:
        shipped = load_registry(None).get(dialect)
        entry = {"name": dialect}
        if shipped is not None:
            entry.update({"codes": list(shipped.codes), "language": shipped.language, "lexicon": dict(shipped.lexicon)})
        data["dialects"].append(entry)
    entry["model"] = str(Path(model_dir).resolve())
    entry.setdefault("language", "zh")
    if beam_size is not None:
        entry["beam_size"] = beam_size
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
    load_registry.cache_clear()
    load_registry(path)  # a file the hotline cannot read fails here, not at its next start
