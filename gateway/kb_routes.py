"""REST under /v1/kb: documents with versions, diffs and rollback, bulk import and export, the audit log, and
search as callers get it. Agents read; admins write, and the audit log names them. Routes stay thin: the
work is in `gateway.kb_admin` and `kb.store`; every refusal leaves the knowledge base as it was."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.auth import AdminDep, AgentDep
from gateway.kb_admin import KbAdmin
from gateway.rest import ServicesDep, SessionDep
from kb import store
from kb.markdown import MarkdownDocumentError
from kb.schemas import (
    CATEGORY_PATTERN,
    DOCUMENT_ID_PATTERN,
    MAX_VERSION,
    DocumentCreate,
    DocumentUpdate,
    ImportReport,
    KbDiff,
    KbDocumentPublic,
    KbDocumentsPage,
    KbVersionPublic,
    Rollback,
    SearchHit,
)
from kb.transfer import ImportTooLarge, OutsideImportFolder, UnsupportedSource, export_zip

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])

UPLOAD_READ_BYTES = 1 << 16


class StaleVersionPublic(BaseModel):
    detail: str
    current_version: int


class FolderImport(BaseModel):
    path: str = Field(min_length=1, max_length=500, description="a file or folder inside HOTLINE_KB_IMPORT_DIR")
    category: str = Field(default="general", pattern=CATEGORY_PATTERN)
    status: Literal["draft", "published"] = "published"


def get_admin(services: ServicesDep) -> KbAdmin:
    admin = services.models.get("kb_admin")
    if admin is None:
        raise HTTPException(status_code=503, detail="the knowledge base is still loading; try again shortly")
    return admin


KbAdminDep = Annotated[KbAdmin, Depends(get_admin)]

_STALE: dict[int | str, dict[str, Any]] = {
    409: {"model": StaleVersionPublic, "description": "changed from a version that is no longer current"}
}
_MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "no such document or version"}}
_IMPORT_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "a path outside the import folder"}, 413: {"description": "over the import's limits"},
    415: {"description": "a kind of file the importer does not read"},
    422: {"description": "a file that cannot be read; the message names it"},
}


def _status_of(exc: Exception) -> int:
    if isinstance(exc, store.StaleVersion | store.DocumentExists):
        return 409
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, ImportTooLarge):
        return 413
    if isinstance(exc, UnsupportedSource):
        return 415
    if isinstance(exc, OutsideImportFolder):
        return 403
    return 422


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    """A change the store or the importer refused, as a 4xx; nothing was written."""
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, store.StaleVersion):
        body["current_version"] = exc.current
    return JSONResponse(body, status_code=_status_of(exc))


def install(app: FastAPI) -> None:
    """Add the routes, and the answers to refused changes, to `app`."""
    app.include_router(router)
    for error in (store.KbStoreError, MarkdownDocumentError):
        app.add_exception_handler(error, _refused)


# ---- documents ------------------------------------------------------------------------------------------


@router.post("/documents", status_code=201, response_model=KbDocumentPublic,
             responses={409: {"description": "a document with this id exists"}})
def create_document(who: AdminDep, new: DocumentCreate, admin: KbAdminDep) -> KbDocumentPublic:
    return admin.create(new, actor=who.name)


@router.get("/documents", response_model=KbDocumentsPage)
def list_documents(
    who: AgentDep, session: SessionDep,
    category: Annotated[str | None, Query(pattern=CATEGORY_PATTERN)] = None,
    status: Literal["draft", "published", "deleted"] | None = None,
    text: Annotated[str | None, Query(min_length=1, max_length=200, description="in the id, title or body")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_VERSION)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> KbDocumentsPage:
    items, total = store.list_documents(session, category=category, status=status, text=text, offset=offset,
                                        limit=limit)
    return KbDocumentsPage(items=items, total=total, offset=offset, limit=limit)


@router.get("/documents/{doc_id}", response_model=KbDocumentPublic, responses=_MISSING)
def get_document(who: AgentDep, doc_id: str, session: SessionDep) -> KbDocumentPublic:
    return store.get_document(session, doc_id=doc_id)


@router.put("/documents/{doc_id}", response_model=KbDocumentPublic, responses={**_STALE, **_MISSING})
def update_document(who: AdminDep, doc_id: str, change: DocumentUpdate, admin: KbAdminDep) -> KbDocumentPublic:
    return admin.update(doc_id, change, actor=who.name)


@router.delete("/documents/{doc_id}", status_code=204, response_class=Response, responses={**_STALE, **_MISSING})
def delete_document(
    who: AdminDep, doc_id: str, admin: KbAdminDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION, description="refuse if the document is no longer at it")] = None,
) -> Response:
    admin.delete(doc_id, actor=who.name, expected_version=version)
    return Response(status_code=204)


# ---- history --------------------------------------------------------------------------------------------


@router.get("/documents/{doc_id}/versions", response_model=list[KbVersionPublic], responses=_MISSING)
def list_versions(who: AgentDep, doc_id: str, session: SessionDep) -> list[KbVersionPublic]:
    return store.list_versions(session, doc_id=doc_id)


@router.get("/documents/{doc_id}/versions/{version}", response_model=KbVersionPublic, responses=_MISSING)
def get_version(who: AgentDep, doc_id: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], session: SessionDep) -> KbVersionPublic:
    return store.get_version(session, doc_id=doc_id, version=version)


@router.get("/documents/{doc_id}/diff", response_model=KbDiff, responses=_MISSING)
def diff_versions(
    who: AgentDep, doc_id: str, session: SessionDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)], to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> KbDiff:
    return store.diff_versions(session, doc_id=doc_id, from_version=from_version, to_version=to_version)


@router.post("/documents/{doc_id}/rollback", response_model=KbDocumentPublic, responses={**_STALE, **_MISSING})
def rollback(who: AdminDep, doc_id: str, request: Rollback, admin: KbAdminDep) -> KbDocumentPublic:
    """Write version `to_version`'s content as the document's next version (a deleted document comes back)."""
    return admin.rollback(doc_id, request, actor=who.name)


@router.get("/audit", response_model=list[KbVersionPublic])
def audit(
    who: AgentDep, session: SessionDep,
    doc_id: Annotated[str | None, Query(pattern=DOCUMENT_ID_PATTERN)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_VERSION)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[KbVersionPublic]:
    """Every change, newest first: who made which version of which document, when, from which version."""
    return store.audit_log(session, doc_id=doc_id, actor=actor, offset=offset, limit=limit)


# ---- bulk -----------------------------------------------------------------------------------------------


async def _read_uploads(files: list[UploadFile], limit: int, file_limit: int) -> list[tuple[str, bytes]]:
    """The uploaded files' contents, refusing (413) as soon as the upload passes the import's limit."""
    read: list[tuple[str, bytes]] = []
    total = 0
    for upload in files:
        name = upload.filename or "upload"
        parts = []
        size = 0
        while chunk := await upload.read(UPLOAD_READ_BYTES):
            size += len(chunk)
            total += len(chunk)
            if size > file_limit or total > limit:
                which = f"{name} is over the {file_limit}-byte limit for one file" if size > file_limit \
                    else f"the upload is over the {limit}-byte limit for one import"
                raise HTTPException(status_code=413, detail=which)
            parts.append(chunk)
        read.append((name, b"".join(parts)))
    return read


@router.post("/import", response_model=ImportReport, responses=_IMPORT_REFUSALS)
async def import_files(
    who: AdminDep, admin: KbAdminDep,
    files: Annotated[list[UploadFile], File(description=".md (front matter), .txt, question/answer .csv, or .zip")],
    category: Annotated[str, Form(pattern=CATEGORY_PATTERN, description="for .txt and .csv without one")] = "general",
    status: Annotated[Literal["draft", "published"], Form()] = "published",
) -> ImportReport:
    """All the files' documents, or none of them: any bad file refuses the whole import."""
    limits = admin.limits
    uploads = await _read_uploads(files, limits.max_total_bytes, limits.max_file_bytes)
    defaults = admin.defaults(category=category, status=status)
    return await asyncio.to_thread(admin.import_uploads, uploads, defaults=defaults, actor=who.name)


@router.post("/import/folder", response_model=ImportReport, responses=_IMPORT_REFUSALS)
async def import_folder(who: AdminDep, folder: FolderImport, admin: KbAdminDep) -> ImportReport:
    """A file or folder on the gateway's disk, inside HOTLINE_KB_IMPORT_DIR (404 when that is not set)."""
    if admin.import_root is None:
        raise HTTPException(status_code=404, detail="folder imports are off: set HOTLINE_KB_IMPORT_DIR")
    defaults = admin.defaults(category=folder.category, status=folder.status)
    return await asyncio.to_thread(admin.import_path, admin.import_root / folder.path, defaults=defaults,
                                   actor=who.name)


@router.get("/export", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "every document as ID.md"}})
def export(who: AgentDep, admin: KbAdminDep) -> Response:
    """Every document that is not deleted (drafts too), as Markdown files with front matter in a zip."""
    stamp = admin.clock.now().strftime("%Y%m%d-%H%M%S")
    return Response(export_zip(admin.export_documents()), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="kb-{stamp}.zip"'})


# ---- search ---------------------------------------------------------------------------------------------


@router.get("/search", response_model=list[SearchHit])
def search(
    who: AgentDep, admin: KbAdminDep,
    q: Annotated[str, Query(min_length=1, max_length=500)], k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> list[SearchHit]:
    """What callers get: the best statement of each of the `k` best published documents, with its version."""
    if not q.strip():
        raise HTTPException(status_code=422, detail="q must not be blank")
    return admin.search(q, k=k)
