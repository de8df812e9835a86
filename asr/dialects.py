"""Which whisper language decodes a declared dialect, and which dialect tag a transcript carries."""

from __future__ import annotations

from dataclasses import dataclass

from asr.base import UnsupportedDialect


@dataclass(frozen=True)
class DialectRoute:
    language: str | None  # whisper language code; None = detect among AUTO_LANGUAGES
    dialect: str | None  # tag reported in the transcript; None = from the language found


# Whisper has language tokens for Mandarin ("zh"), English and (large-v3 only) Cantonese ("yue");
# every other Chinese variety is decoded as "zh" and keeps the tag the call declared.
_CHINESE_VARIETIES = ("sichuan", "wu", "shanghainese", "minnan", "hokkien", "hakka", "mindong", "dongbei")
_ROUTES: dict[str, DialectRoute] = {
    "auto": DialectRoute(None, None),
    "mandarin": DialectRoute("zh", "mandarin"),
    "putonghua": DialectRoute("zh", "mandarin"),
    "zh": DialectRoute("zh", "mandarin"),
    "cantonese": DialectRoute("yue", "cantonese"),
    "yue": DialectRoute("yue", "cantonese"),
    "english": DialectRoute("en", "english"),
    "en": DialectRoute("en", "english"),
    **{name: DialectRoute("zh", name) for name in _CHINESE_VARIETIES},
}
AUTO_LANGUAGES = ("zh", "yue", "en")
_DIALECT_OF_LANGUAGE = {"zh": "mandarin", "yue": "cantonese", "en": "english"}


def known_dialects() -> list[str]:
    return sorted(_ROUTES)


def route_dialect(dialect: str) -> DialectRoute:
    """The route of a declared dialect; UnsupportedDialect for names it does not know."""
    route = _ROUTES.get(dialect.strip().lower()) if isinstance(dialect, str) else None
    if route is None:
        raise UnsupportedDialect(f"unknown dialect {dialect!r}; known: {', '.join(known_dialects())}")
    return route


def dialect_of_language(language: str) -> str:
    return _DIALECT_OF_LANGUAGE.get(language, language)
