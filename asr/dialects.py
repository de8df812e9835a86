"""The dialect registry: which model and Whisper language decode a declared dialect, which tag a
transcript carries, and how each dialect's written words map to Mandarin for the dialogue.

The registry is data (`dialects.yaml` beside this file, extended by a deployment's own file), so a
dialect-adapted model is served by adding an entry, not by changing code.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from asr.base import UnsupportedDialect

DEFAULT_REGISTRY = Path(__file__).resolve().parent / "dialects.yaml"
AUTO_LANGUAGES = ("zh", "yue", "en")
_DIALECT_OF_LANGUAGE = {"zh": "mandarin", "yue": "cantonese", "en": "english"}
_converter_lock = threading.Lock()


class DialectRegistryError(ValueError):
    """A dialect registry file that cannot be read or has a malformed entry."""


@dataclass(frozen=True)
class DialectRoute:
    language: str | None  # whisper language code; None = detect among AUTO_LANGUAGES
    dialect: str | None  # tag reported in the transcript; None = from the language found
    model: str | None = None  # a faster-whisper model serving this dialect; None = the default model
    beam_size: int | None = None  # None = the recognizer's default


@dataclass(frozen=True)
class Dialect:
    name: str
    codes: tuple[str, ...] = ()
    language: str | None = "zh"
    model: str | None = None
    beam_size: int | None = None
    lexicon: Mapping[str, str] = field(default_factory=dict)

    @property
    def route(self) -> DialectRoute:
        return DialectRoute(self.language, self.name, self.model, self.beam_size)


@dataclass(frozen=True)
class DialectRegistry:
    dialects: Mapping[str, Dialect]  # by every name and code, lower case
    common_lexicon: Mapping[str, str]

    def get(self, code: str) -> Dialect | None:
        return self.dialects.get(code.strip().lower())

    def codes(self) -> list[str]:
        return sorted(self.dialects)


def _entry(raw: Any, source: Path) -> Dialect:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise DialectRegistryError(f"{source}: every dialect needs a name, got {raw!r}")
    unknown = set(raw) - {"name", "codes", "language", "model", "beam_size", "lexicon"}
    if unknown:
        raise DialectRegistryError(f"{source}: dialect {raw['name']!r} has unknown fields {sorted(unknown)}")
    lexicon = raw.get("lexicon") or {}
    if not isinstance(lexicon, dict) or not all(isinstance(k, str) and isinstance(v, str | None) for k, v in lexicon.items()):
        raise DialectRegistryError(f"{source}: the lexicon of {raw['name']!r} must map words to words")
    beam = raw.get("beam_size")
    if beam is not None and (not isinstance(beam, int) or beam < 1):
        raise DialectRegistryError(f"{source}: beam_size of {raw['name']!r} must be a positive integer")
    return Dialect(
        name=raw["name"].strip().lower(),
        codes=tuple(str(c).strip().lower() for c in raw.get("codes") or ()),
        language=raw.get("language"),
        model=raw.get("model"),
        beam_size=beam,
        lexicon={k: v or "" for k, v in lexicon.items()},
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DialectRegistryError(f"cannot read the dialect registry {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DialectRegistryError(f"{path}: expected `dialects:` and optionally `common_lexicon:`")
    return data


@lru_cache(maxsize=8)
def load_registry(extra: Path | None = None) -> DialectRegistry:
    """The shipped registry, with the entries of `extra` added (an entry of the same name replaces it)."""
    by_name: dict[str, Dialect] = {}
    common: dict[str, str] = {}
    for path in (DEFAULT_REGISTRY, *([extra] if extra else [])):
        data = _read(path)
        common.update(data.get("common_lexicon") or {})
        for raw in data.get("dialects") or []:
            dialect = _entry(raw, path)
            by_name[dialect.name] = dialect
    table: dict[str, Dialect] = {}
    for dialect in by_name.values():
        for code in (dialect.name, *dialect.codes):
            table[code] = dialect
    return DialectRegistry(table, common)


_registry_file: Path | None = None


def use_registry_file(path: Path | None) -> None:
    """Make `path` (a deployment's dialect file) extend the shipped registry for this process."""
    global _registry_file
    load_registry(path)  # fails now, at start-up, if the file is broken
    _registry_file = path


def registry() -> DialectRegistry:
    return load_registry(_registry_file)


def known_dialects() -> list[str]:
    return ["auto", *registry().codes()]


def route_dialect(dialect: str) -> DialectRoute:
    """The route of a declared dialect; UnsupportedDialect for names it does not know."""
    if not isinstance(dialect, str):
        raise UnsupportedDialect(f"dialect must be a string, got {dialect!r}")
    if dialect.strip().lower() == "auto":
        return DialectRoute(None, None)
    found = registry().get(dialect)
    if found is None:
        raise UnsupportedDialect(f"unknown dialect {dialect!r}; known: {', '.join(known_dialects())}")
    return found.route


def dialect_of_language(language: str) -> str:
    return _DIALECT_OF_LANGUAGE.get(language, language)


@lru_cache(maxsize=1)
def to_simplified() -> Callable[[str], str]:
    """Traditional to simplified characters: one converter for the recognizer and the dialogue."""
    with _converter_lock:
        import opencc

        converter = opencc.OpenCC("t2s")
        converter.convert("載入")  # it reads its dictionaries on first use: under the lock, once
    return converter.convert


@lru_cache(maxsize=64)
def _replacer(words: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    if not words:
        return None
    simplified = to_simplified()
    table = {simplified(word): mandarin for word, mandarin in words}
    # Longest first, so that 唔该 is replaced as a whole before 唔 alone.
    pattern = re.compile("|".join(re.escape(w) for w in sorted(table, key=len, reverse=True)))
    return pattern, table


def to_mandarin(text: str, dialect: str | None) -> str:
    """`text` in simplified characters, its dialect words replaced by their Mandarin words (the common
    ones for any dialect). Another recognizer, or a caller who types, may write traditional characters."""
    text = to_simplified()(text)
    reg = registry()
    words: dict[str, str] = dict(reg.common_lexicon)
    found = reg.get(dialect) if dialect else None
    if found is not None:
        words.update(found.lexicon)
    replacer = _replacer(tuple(sorted(words.items())))
    if replacer is None:
        return text
    pattern, table = replacer
    return pattern.sub(lambda m: table[m.group(0)], text)
