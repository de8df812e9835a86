"""Bulk import and export: Markdown with front matter, plain text, CSV of question/answer pairs, zips of those.

An import is read whole, in memory, and checked before anything is embedded or written (see
`kb.store.write_documents`, which writes it in one transaction): a bad file, an oversize upload or two
files declaring one id and nothing changes. The formats:

- ``.md`` / ``.markdown``: front matter (id, title, category, updated, optional status) and a body.
- ``.txt``: plain text. A short first line (at most 40 characters, no sentence ending) is the title,
  otherwise the file name is; the id is made from the file name (pinyin for Chinese). A ``.txt`` that
  starts with front matter is read as Markdown.
- ``.csv``: a header row with ``question`` and ``answer`` (or 问题 and 答案) columns; one document per
  row, titled by its question, answered by its body. Optional columns: id, title, category, status,
  updated. Without an id column a row's id is the file's id plus a hash of its question, so reordering
  rows or editing an answer keeps ids; rewording a question makes a new document.
- ``.zip``: any of the above inside (folders allowed, no zips in zips).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import ValidationError
from pypinyin import lazy_pinyin

from kb.markdown import MarkdownDocumentError, parse_markdown, render_markdown
from kb.schemas import CATEGORY_PATTERN, DocumentIn, Status
from kb.store import unique_documents

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | {".txt", ".csv", ".zip"}
TITLE_LINE_MAX_CHARS = 40
_SENTENCE_END = tuple("。！？；.!?;，,：:")
_QUESTION_COLUMNS = ("question", "问题", "q")
_ANSWER_COLUMNS = ("answer", "答案", "回答", "a")


class KbImportError(MarkdownDocumentError):
    """An import that cannot be made; the message names the file (or archive entry) and the problem."""


class ImportTooLarge(KbImportError):
    """A file, archive or whole import over the limits."""


class UnsupportedSource(KbImportError):
    """A file of a kind the importer does not read."""


class OutsideImportFolder(KbImportError):
    """A path that leads out of the folder imports may read from."""


@dataclass(frozen=True)
class ImportLimits:
    max_file_bytes: int = 2 << 20  # one file, or one entry of a zip, unpacked
    max_total_bytes: int = 32 << 20  # everything one import reads, zips unpacked
    max_documents: int = 5000

    def __post_init__(self) -> None:
        if min(self.max_file_bytes, self.max_total_bytes, self.max_documents) < 1:
            raise ValueError(f"import limits must be positive: {self}")


@dataclass(frozen=True)
class ImportDefaults:
    """What a plain-text or CSV document does not say about itself."""

    updated: dt.date
    category: str = "general"
    status: Status = "published"

    def __post_init__(self) -> None:
        if not re.match(CATEGORY_PATTERN, self.category):
            raise ValueError(f"category must be a lowercase slug such as plans or faq, got {self.category!r}")


@dataclass
class _Budget:
    """Bytes read so far by one import, against its limits."""

    limits: ImportLimits
    used: int = 0
    documents: list[tuple[str, DocumentIn]] = field(default_factory=list)

    def take(self, source: str, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise ImportTooLarge(source, f"{size} bytes is over the {self.limits.max_file_bytes}-byte limit for one file")
        self.used += size
        if self.used > self.limits.max_total_bytes:
            raise ImportTooLarge(source, f"the import is over its {self.limits.max_total_bytes}-byte limit")

    def add(self, sourced: Iterable[tuple[str, DocumentIn]]) -> None:
        self.documents.extend(sourced)
        if len(self.documents) > self.limits.max_documents:
            raise ImportTooLarge(self.documents[-1][0], f"more than {self.limits.max_documents} documents in one import")


# ---- reading --------------------------------------------------------------------------------------------


def read_uploads(
    files: Sequence[tuple[str, bytes]], *, defaults: ImportDefaults, limits: ImportLimits | None = None
) -> list[DocumentIn]:
    """The documents of uploaded files (name, content), checked and with unique ids, or an error."""
    if not files:
        raise KbImportError("<upload>", "no files to import")
    budget = _Budget(limits or ImportLimits())
    for name, data in files:
        budget.take(name, len(data))
        budget.add(read_source(name, data, defaults=defaults, budget=budget))
    return _checked(budget)


def read_path(
    path: Path, *, root: Path | None = None, defaults: ImportDefaults, limits: ImportLimits | None = None
) -> list[DocumentIn]:
    """The documents of a file or a folder (read recursively), which must lie inside `root` (default: the
    path itself, so links inside a folder cannot lead out of it)."""
    target = path.resolve()
    folder = (root or (path if path.is_dir() else path.parent)).resolve()
    if not target.is_relative_to(folder):
        raise OutsideImportFolder(str(path), f"is outside the import folder {folder}")
    if not target.exists():
        raise KbImportError(str(path), "no such file or folder")
    files = [target] if target.is_file() else _folder_files(target)
    if not files:
        raise KbImportError(str(path), f"no documents to import (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    budget = _Budget(limits or ImportLimits())
    for file in files:
        resolved = file.resolve()
        if not resolved.is_relative_to(folder):
            raise OutsideImportFolder(str(file), f"links to {resolved}, outside the import folder {folder}")
        budget.take(str(file), resolved.stat().st_size)
        budget.add(read_source(str(file), resolved.read_bytes(), defaults=defaults, budget=budget))
    return _checked(budget)


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        file for file in folder.rglob("*")
        if file.suffix.lower() in SUPPORTED_SUFFIXES and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(folder).parts)
        and file.name.lower() != "readme.md"
    )


def _checked(budget: _Budget) -> list[DocumentIn]:
    if not budget.documents:
        raise KbImportError("<import>", "no documents found")
    try:
        return unique_documents(budget.documents)
    except ValueError as exc:
        raise KbImportError("<import>", str(exc)) from exc


def read_source(
    name: str, data: bytes, *, defaults: ImportDefaults, budget: _Budget | None = None, in_archive: bool = False
) -> list[tuple[str, DocumentIn]]:
    """The documents of one file by its kind (its name's suffix), each with the source it came from."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".zip":
        if in_archive:
            raise UnsupportedSource(name, "a zip inside a zip is not imported; unpack it")
        return read_zip(name, data, defaults=defaults, budget=budget or _Budget(ImportLimits()))
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedSource(name, f"cannot import {suffix or 'a file without a suffix'} files "
                                      f"(supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")
    text = _decode(name, data)
    if suffix in MARKDOWN_SUFFIXES or (suffix == ".txt" and text.lstrip("\ufeff").startswith("---")):
        return [(name, parse_markdown(text, source=name))]
    if suffix == ".txt":
        return [(name, parse_text(text, source=name, defaults=defaults))]
    return parse_qa_csv(text, source=name, defaults=defaults)


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KbImportError(name, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def read_zip(name: str, data: bytes, *, defaults: ImportDefaults, budget: _Budget) -> list[tuple[str, DocumentIn]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise KbImportError(name, f"is not a readable zip archive ({exc})") from exc
    documents: list[tuple[str, DocumentIn]] = []
    with archive:
        for info in members:
            entry = _entry_name(info)
            source = f"{name}:{entry}"
            parts = PurePosixPath(entry).parts
            if entry.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise OutsideImportFolder(source, "the entry's path leads out of the archive")
            if any(part.startswith(".") or part == "__MACOSX" for part in parts):
                continue  # macOS resource forks, editors' hidden files
            if PurePosixPath(entry).name.lower() == "readme.md":
                continue
            if info.flag_bits & 0x1:
                raise KbImportError(source, "is encrypted")
            budget.take(source, info.file_size)
            content = _read_member(archive, info, source, budget.limits.max_file_bytes)
            documents.extend(read_source(source, content, defaults=defaults, budget=budget, in_archive=True))
    if not documents:
        raise KbImportError(name, "the archive holds no documents")
    return documents


def _entry_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:  # names flagged as UTF-8
        return info.filename
    raw = info.filename.encode("cp437")  # zipfile decoded an unflagged name as cp437
    for encoding in ("utf-8", "gb18030"):  # Chinese Windows archivers write GBK names unflagged
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, limit: int) -> bytes:
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)  # the header's size may lie (a zip bomb)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise KbImportError(source, f"cannot be unpacked ({exc})") from exc
    if len(content) > limit:
        raise ImportTooLarge(source, f"unpacks to more than the {limit}-byte limit for one file")
    return content


# ---- plain text and CSV ---------------------------------------------------------------------------------


def parse_text(text: str, *, source: str, defaults: ImportDefaults) -> DocumentIn:
    """A plain-text document: titled by a short first line, else by the file name."""
    lines = text.strip().splitlines()
    if not lines:
        raise KbImportError(source, "the file is empty")
    first = lines[0].strip().lstrip("#").strip()
    rest = "\n".join(lines[1:]).strip()
    if rest and first and len(first) <= TITLE_LINE_MAX_CHARS and not first.endswith(_SENTENCE_END):
        title, body = first, rest
    else:
        title, body = _title_from_name(source), text.strip()
    return _document(source, id=slug(_stem(source)), title=title, body=body, defaults=defaults)


def parse_qa_csv(text: str, *, source: str, defaults: ImportDefaults) -> list[tuple[str, DocumentIn]]:
    """One document per question/answer row; the source of each is ``file:line``."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        raise KbImportError(source, "the file is empty") from None
    except csv.Error as exc:
        raise KbImportError(source, f"is not valid CSV ({exc})") from exc
    question_at, answer_at = _column(header, _QUESTION_COLUMNS), _column(header, _ANSWER_COLUMNS)
    if question_at is None or answer_at is None:
        raise KbImportError(source, f"needs a header row with 'question' and 'answer' columns; found {header}")
    optional = {name: _column(header, (name,)) for name in ("id", "title", "category", "status", "updated")}
    stem_id = slug(_stem(source))
    documents = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = f"{source}:{reader.line_num}"
            if len(row) != len(header):
                raise KbImportError(line, f"has {len(row)} cells, the header has {len(header)}")
            question, answer = row[question_at].strip(), row[answer_at].strip()
            if not question or not answer:
                raise KbImportError(line, "a row needs both a question and an answer")
            cell = {name: row[at].strip() if at is not None else "" for name, at in optional.items()}
            doc_id = cell["id"] or f"{stem_id[:55]}-{hashlib.sha1(question.encode()).hexdigest()[:8]}"
            documents.append((line, _document(
                line, id=doc_id, title=cell["title"] or question, body=answer, defaults=defaults,
                category=cell["category"], status=cell["status"], updated=cell["updated"],
            )))
    except csv.Error as exc:
        raise KbImportError(f"{source}:{reader.line_num}", f"is not valid CSV ({exc})") from exc
    if not documents:
        raise KbImportError(source, "no question/answer rows")
    return documents


def _column(header: list[str], names: Sequence[str]) -> int | None:
    return next((header.index(name) for name in names if name in header), None)


def _document(
    source: str, *, id: str, title: str, body: str, defaults: ImportDefaults,
    category: str = "", status: str = "", updated: str = "",
) -> DocumentIn:
    try:
        return DocumentIn.model_validate({
            "id": id, "title": title, "body": body, "category": category or defaults.category,
            "status": status or defaults.status, "updated": updated or defaults.updated,
        })
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        raise KbImportError(source, f"invalid document: {problems}") from exc


def _stem(source: str) -> str:
    return PurePosixPath(source.rsplit(":", 1)[-1].replace("\\", "/")).stem


def _title_from_name(source: str) -> str:
    return re.sub(r"[-_]+", " ", _stem(source)).strip() or "untitled"


def slug(name: str) -> str:
    """A document id made from a name: lowercase ASCII words joined by '-', Chinese as pinyin."""
    words = " ".join(lazy_pinyin(name)).lower()
    text = re.sub(r"[^a-z0-9]+", "-", words).strip("-")[:64].rstrip("-")
    return text or "document"


# ---- export ---------------------------------------------------------------------------------------------


def export_zip(documents: Sequence[DocumentIn]) -> bytes:
    """The documents as ``ID.md`` files with front matter in a zip, which `read_uploads` imports back."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for doc in documents:
            archive.writestr(f"{doc.id}.md", render_markdown(doc))
    return buffer.getvalue()
