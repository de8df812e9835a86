"""The call page at `/` (a browser calls the hotline over /v1/calls) and the agents' console at `/console`;
everything they need is served here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gateway.auth import call_refusal
from gateway.protocol import CLOSE_UNAUTHORIZED
from gateway.rest import ServicesDep, SessionDep
from kb import store as kb_store

STATIC_DIR = Path(__file__).parent / "static"
MAX_SOURCE_IDS = 20

router = APIRouter()


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@router.get("/", include_in_schema=False)
def call_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "call.html", media_type="text/html")


@router.get("/console", include_in_schema=False)
def console_page() -> FileResponse:
    """The agents' and admins' console: the page loads without a token; every data call it makes needs one."""
    return FileResponse(STATIC_DIR / "console.html", media_type="text/html")


@router.get("/v1/call-page/sources")
def source_titles(
    request: Request, services: ServicesDep, session: SessionDep,
    ids: Annotated[list[str], Query(max_length=MAX_SOURCE_IDS)],
) -> dict[str, dict[str, str]]:
    """Titles of the KB documents a reply cites, for whoever may call (same token and origin rules)."""
    if (refusal := call_refusal(request.headers, request.query_params, services.settings)) is not None:
        raise HTTPException(401 if refusal.close_code == CLOSE_UNAUTHORIZED else 403, refusal.message)
    titles = {}
    for doc_id in dict.fromkeys(ids):
        try:
            titles[doc_id] = kb_store.get_document(session, doc_id=doc_id).title
        except kb_store.DocumentNotFound:
            continue
    return {"titles": titles}
