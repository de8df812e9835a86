"""Split a markdown document into statements that stand alone: one fact each, as an answer would quote it.

A chunk is a list item, a paragraph, or a run of short steps, at most `max_chars` long; its text is the
document title on the first line, then the statement prefixed by the section it sits in
("正确的重启顺序：2. 等待30秒；"). Small chunks let retrieval find the sentence that answers a question,
not only its document, and let the answer quote that sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)、])\s+")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
_INTRODUCES = ("：", ":")
_SECTION_MAX_CHARS = 16  # a longer introducing line is a statement of its own, not a section name


@dataclass(frozen=True)
class ChunkingOptions:
    min_chars: int = 30  # a statement shorter than this is joined with the next one of its section
    max_chars: int = 150  # a longer statement is split at sentence ends

    def __post_init__(self) -> None:
        if not 0 < self.min_chars <= self.max_chars:
            raise ValueError(f"need 0 < min_chars <= max_chars, got {self.min_chars}, {self.max_chars}")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str  # "title\nsection：statement"


@dataclass(frozen=True)
class _Block:
    section: str  # the heading or introducing line the block sits under ("" for none)
    text: str


def chunk_document(*, title: str, body: str, options: ChunkingOptions | None = None) -> list[Chunk]:
    options = options or ChunkingOptions()
    blocks = [piece for block in _blocks(title, body) for piece in _split_long(block, options.max_chars)]
    return [
        Chunk(ordinal=index, text=f"{title}\n{statement}")
        for index, statement in enumerate(_join_short(blocks, options))
    ]


def statement_of(chunk_text: str) -> str:
    """The statement of a chunk, without the title line."""
    return chunk_text.split("\n", 1)[-1]


def _blocks(title: str, body: str) -> list[_Block]:
    """Paragraphs and list items of the body, each with the section it sits in.

    A paragraph that ends with a colon ("重启顺序：") introduces the list after it and names its section,
    up to the blank line that ends that list: the items after it are not its steps.
    """
    blocks: list[_Block] = []
    heading = intro = ""
    paragraph: list[str] = []
    listed = False  # items have followed the introducing line

    def flush(*, item: bool = False) -> None:
        nonlocal intro, listed
        text = "".join(paragraph).strip()
        paragraph.clear()
        if not text:
            return
        listed = item and bool(intro)
        if not item:
            names_section = text.endswith(_INTRODUCES) and len(text) <= _SECTION_MAX_CHARS
            intro = text.rstrip("：:") if names_section else ""
            if intro:
                return
        blocks.append(_Block(intro or heading, text))

    for raw in body.splitlines():
        line = raw.strip()
        if match := _HEADING.match(line):
            flush()
            text = match.group(2).strip()
            heading, intro = ("" if text == title.strip() else text), ""
        elif not line:
            flush()
            if listed:
                intro, listed = "", False
        elif _LIST_ITEM.match(line):
            flush()
            paragraph.append(_LIST_ITEM.sub("", line))
            flush(item=True)
        else:
            paragraph.append(line)
    flush()
    return blocks


def _split_long(block: _Block, max_chars: int) -> list[_Block]:
    if len(block.text) <= max_chars:
        return [block]
    pieces: list[str] = []
    current = ""
    for sentence in filter(None, _SENTENCE_END.split(block.text)):
        if current and len(current) + len(sentence) > max_chars:
            pieces.append(current)
            current = ""
        current += sentence
        while len(current) > max_chars:  # one sentence longer than a chunk: cut it hard
            pieces.append(current[:max_chars])
            current = current[max_chars:]
    if current:
        pieces.append(current)
    return [_Block(block.section, piece) for piece in pieces]


def _join_short(blocks: list[_Block], options: ChunkingOptions) -> list[str]:
    """Statements of the document; short ones are joined to the next of the same section."""
    statements: list[str] = []
    pending: list[_Block] = []
    for block in blocks:
        if pending and (
            block.section != pending[0].section
            or sum(len(b.text) for b in pending) + len(block.text) > options.max_chars
        ):
            statements.append(_statement(pending))
            pending = []
        pending.append(block)
        if sum(len(b.text) for b in pending) >= options.min_chars:
            statements.append(_statement(pending))
            pending = []
    if pending:
        statements.append(_statement(pending))
    return statements


def _statement(blocks: list[_Block]) -> str:
    text = "".join(_closed(block.text) for block in blocks)
    return f"{blocks[0].section}：{text}" if blocks[0].section else text


def _closed(text: str) -> str:
    return text if text[-1] in "。！？；!?;：:" else text + "；"
