"""Screening routes: `GET /api/screen/{chain}/{address}` and `POST /api/screen` (batch).

Direct lookups are answered on the event loop from the in-memory exposure index (no DuckDB,
no thread hop), which is what keeps p99 in milliseconds under load. Only the periodic index
freshness check and the indirect walk for addresses without direct exposure touch the
database, in the thread pool, on this router's own cursor and lock (the pages' connection is
not held up by screening). `install` also puts a plain ASGI fast path in front of the app
for /api/screen: the same token check and security headers as the app's middleware, without
the per-request cost of two BaseHTTPMiddleware layers (about 1 ms, most of the budget at
1,000 requests/s). A malformed chain or address is a 400 with the reason; an
address unknown to every case is a 200 with risk `none`.
"""

from __future__ import annotations

import threading
from typing import Any

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.screen.addresses import normalize
from heisttrace.screen.exposure import ExposureIndex, combine, summarize, walk_back

MAX_BATCH = 1000


class ScreenItem(BaseModel):
    chain: str = Field(max_length=40)
    address: str = Field(max_length=200)


class ScreenBatch(BaseModel):
    addresses: list[ScreenItem] = Field(min_length=1, max_length=MAX_BATCH,
                                        description=f"Up to {MAX_BATCH} (chain, address).")


def screen_router(ws: Workspace, index: ExposureIndex | None = None) -> APIRouter:
    """The routes for one workspace; `ws` should be a cursor of its own (made by the caller
    on the thread that owns the connection)."""
    index = index or ExposureIndex()
    lock = threading.Lock()
    router = APIRouter(prefix="/api/screen", tags=["screen"])

    def _refresh() -> None:
        with lock:
            index.refresh(ws)

    def _walk(chain: str, address: str, missing: list[Any]) -> dict[str, Any]:
        with lock:
            return walk_back(ws, chain, address, missing)

    async def _one(chain: str, address: str) -> dict[str, Any]:
        chain, address = normalize(chain, address)
        if index.due():
            await run_in_threadpool(_refresh)
        found, missing = index.direct(chain, address)
        walked = await run_in_threadpool(_walk, chain, address, missing) if missing else {}
        return summarize(combine(chain, address, found, missing, walked), chain, address)

    @router.get("/{chain}/{address}")
    async def api_screen(chain: str, address: str) -> dict[str, Any]:
        """The address's exposure to every traced case and its overall risk."""
        return await _one(chain, address)

    @router.post("")
    async def api_screen_batch(batch: ScreenBatch = Body(...)) -> dict[str, Any]:
        """Up to 1,000 addresses; a malformed one gets an `error` entry, the rest answer."""
        out = []
        for item in batch.addresses:
            try:
                out.append(await _one(item.chain, item.address))
            except InputError as exc:
                out.append({"chain": item.chain, "address": item.address, "error": str(exc)})
        return {"results": out}

    return router


def _given_token(scope: dict[str, Any]) -> str:
    """The token the same four ways the app accepts it: bearer, X-API-Token, cookie, ?token=."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:]:
        return auth[7:]
    if headers.get("x-api-token"):
        return headers["x-api-token"]
    cookie = SimpleCookie(headers.get("cookie", ""))
    if "heisttrace_token" in cookie and cookie["heisttrace_token"].value:
        return cookie["heisttrace_token"].value
    return (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]


class ScreenFastPath:
    """ASGI middleware: /api/screen requests go straight to a small app holding only the
    screening routes; everything else goes on to the full app."""

    def __init__(self, app: Any, *, screen_app: Any, token: str | None, csp: str) -> None:
        self.app, self.screen_app, self.token = app, screen_app, token
        self.headers = [(b"content-security-policy", csp.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer")]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/screen"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        if self.token and not hmac.compare_digest(_given_token(scope).encode(),
                                                  self.token.encode()):
            body = json.dumps({"detail": "missing or wrong API token"}).encode()
            await send_with_headers({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.screen_app(scope, receive, send_with_headers)


def install(app: FastAPI, ws: Workspace, *, token: str | None, csp: str) -> None:
    """Adds the screening routes to `app` (so they are in its OpenAPI) and the fast path."""
    router = screen_router(ws)
    app.include_router(router)
    screen_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    screen_app.include_router(router)

    @screen_app.exception_handler(HeisttraceError)
    async def _known_error(request: Request, exc: HeisttraceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    app.add_middleware(ScreenFastPath, screen_app=screen_app, token=token, csp=csp)
