"""Split a markdown document into passages that stand alone (each starts with the document title)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)、])\s+")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")


@dataclass(frozen=True)
class ChunkingOptions:
    min_chars: int = 100  # a section shorter than this is merged with the next one
    max_chars: int = 300  # blocks are packed up to this size; a longer block is split at sentence ends

    def __post_init__(self) -> None:
        if not 0 < self.min_chars <= self.max_chars:
            raise ValueError(f"need 0 < min_chars <= max_chars, got {self.min_chars}, {self.max_chars}")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str  # "title｜section\ncontent"


@dataclass(frozen=True)
class _Block:
    heading: str  # the nearest heading above the block ("" when it is the title or there is none)
    text: str


def chunk_document(*, title: str, body: str, options: ChunkingOptions | None = None) -> list[Chunk]:
    options = options or ChunkingOptions()
    blocks = [piece for block in _blocks(title, body) for piece in _split_long(block, options.max_chars)]
    groups = _pack(blocks, options)
    return [Chunk(ordinal=index, text=_with_context(title, group)) for index, group in enumerate(groups)]


def _blocks(title: str, body: str) -> list[_Block]:
    """Paragraphs and list items of the body, each with the heading it sits under."""
    blocks: list[_Block] = []
    heading = ""
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(_Block(heading, "".join(paragraph).strip()))
            paragraph.clear()

    for raw in body.splitlines():
        line = raw.strip()
        match = _HEADING.match(line)
        if match:
            flush()
            text = match.group(2).strip()
            heading = "" if text == title.strip() else text
        elif not line:
            flush()
        elif _LIST_ITEM.match(line):
            flush()
            paragraph.append(line)
            flush()
        else:
            paragraph.append(line)
    flush()
    return [block for block in blocks if block.text]


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
    return [_Block(block.heading, piece) for piece in pieces]


def _pack(blocks: list[_Block], options: ChunkingOptions) -> list[list[_Block]]:
    """Greedy packing: a new heading starts a new chunk once the current one is big enough."""
    groups: list[list[_Block]] = []
    current: list[_Block] = []
    size = 0
    for block in blocks:
        new_section = bool(current) and block.heading != current[-1].heading and size >= options.min_chars
        too_big = bool(current) and size + _length(block) > options.max_chars
        if new_section or too_big:
            carried = _introduction(current)
            groups.append(current)
            current, size = carried, _size(carried)
        current.append(block)
        size += _length(block)
    if current:
        # a short tail reads better joined to the chunk before it, if that stays within bounds
        if groups and size < options.min_chars and _size(groups[-1]) + size <= options.max_chars:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def _introduction(group: list[_Block]) -> list[_Block]:
    """Remove and return a trailing line such as "重启顺序：" that introduces what follows it."""
    if len(group) > 1 and group[-1].text.endswith(("：", ":")):
        return [group.pop()]
    return []


def _size(group: list[_Block]) -> int:
    return sum(_length(block) for block in group)


def _length(block: _Block) -> int:
    return len(block.text) + 1  # with its line break


def _with_context(title: str, group: list[_Block]) -> str:
    lines: list[str] = []
    heading = ""
    for block in group:
        if block.heading and block.heading != heading:
            lines.append(f"{block.heading}：")
        heading = block.heading
        lines.append(block.text)
    return f"{title}\n" + "\n".join(lines)
