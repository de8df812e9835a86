"""The app factory: settings in, a FastAPI app out; models load in the lifespan, once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.clock import Clock
from gateway import agent_socket, auth, calls, kb_routes, page, preload, rest, ticket_routes
from gateway.services import ModelsFailed, Services
from gateway.settings import Settings

log = logging.getLogger("hotline")
JOURNAL_DRAIN_S = 10.0


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, models: tuple[str, ...] | None = None
) -> FastAPI:
    """`models` names the models to load (default: HOTLINE_MODELS); tests of the REST API alone leave them all out."""
    settings = settings or Settings()
    models = tuple(settings.models) if models is None else models

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await asyncio.to_thread(Services.open, settings, clock)
        app.state.services = services
        await services.desk.bus.start()
        preload.import_request_path()  # before any other thread imports (see gateway/preload.py)
        # /healthz answers at once; /readyz waits for this task, and says which model failed and why.
        loading = asyncio.create_task(_load_models(services, models), name="load-models")
        watching = asyncio.create_task(services.watch_kb(), name="watch-kb")
        try:
            yield
        finally:
            for task in (loading, watching):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await services.journals.drain(JOURNAL_DRAIN_S)  # the last calls' writes, if the store takes them
            services.journals.cancel()
            await services.desk.bus.close()
            services.close()

    auth.redact_call_tokens_in_server_logs()
    app = FastAPI(title="hotline", version="0.1.0", lifespan=lifespan)
    app.add_exception_handler(OperationalError, _store_unavailable)
    app.add_exception_handler(InterfaceError, _store_unavailable)
    app.add_exception_handler(PoolTimeoutError, _store_unavailable)
    app.include_router(rest.router)
    app.include_router(ticket_routes.router)
    kb_routes.install(app)
    app.include_router(calls.router)
    app.include_router(agent_socket.router)
    app.include_router(page.router)
    app.mount("/static", page.static_files(), name="static")
    return app


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is away (restarting, unreachable): say so, without its error text or SQL."""
    log.warning("%s %s: the store is unavailable (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse({"detail": "the store is not answering; try again shortly"}, status_code=503,
                        headers={"Retry-After": "5"})


async def _load_models(services: Services, parts: tuple[str, ...]) -> None:
    with contextlib.suppress(ModelsFailed):  # logged, and told by /readyz; the process keeps answering
        await services.load_models(parts)
