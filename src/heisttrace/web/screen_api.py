"""Screening routes: `GET /api/screen/{chain}/{address}` and `POST /api/screen` (batch).

Every answer comes from the in-memory exposure index (case tables and the ledger's sender
graph), on the event loop: no DuckDB, no thread hop. Only the periodic freshness check and a
rebuild touch the database, in a thread on this router's own cursor; while a rebuild runs,
requests keep being answered from the previous index (at most a few seconds stale).

`install` also puts a plain ASGI fast path in front of the app: `GET /api/screen/{chain}/
{address}` is answered there directly (the same token check, security headers and JSON as
the FastAPI route, which stays for the OpenAPI spec), without FastAPI's per-request routing,
dependency solving and encoding (most of the budget at 1,000 requests/s on 2 cores). Other
/api/screen requests (the batch POST) go to a small app holding only the screening routes.
A malformed chain or address is a 400 with the reason; an address unknown to every case is a
200 with risk `none`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from heisttrace.errors import HeisttraceError, InputError
from heisttrace.ledger.workspace import Workspace
from heisttrace.screen.addresses import normalize
from heisttrace.screen.exposure import ExposureIndex, summarize

MAX_BATCH = 1000


class ScreenItem(BaseModel):
    chain: str = Field(max_length=40)
    address: str = Field(max_length=200)


class ScreenBatch(BaseModel):
    addresses: list[ScreenItem] = Field(min_length=1, max_length=MAX_BATCH,
                                        description=f"Up to {MAX_BATCH} (chain, address).")


class Screener:
    """The index of one workspace, kept fresh without making requests wait for it."""

    def __init__(self, ws: Workspace, index: ExposureIndex | None = None) -> None:
        self.ws = ws  # a cursor of its own, made by the caller on the connection's thread
        self.index = index or ExposureIndex()
        self._refreshing: asyncio.Future[None] | None = None

    async def fresh(self) -> ExposureIndex:
        """The index, built on first use; later, a due check runs in the background."""
        if self._refreshing is None and (not self.index.ready or self.index.due()):
            self._refreshing = asyncio.ensure_future(run_in_threadpool(self.index.refresh,
                                                                       self.ws))
            self._refreshing.add_done_callback(self._done)
        if not self.index.ready and self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        return self.index

    def _done(self, fut: asyncio.Future[None]) -> None:
        self._refreshing = None
        if not fut.cancelled():
            fut.exception()  # a failed check is retried on the next due request

    async def one(self, chain: str, address: str) -> dict[str, Any]:
        chain, address = normalize(chain, address)
        index = await self.fresh()
        return summarize(index.answer(chain, address), chain, address)


def screen_router(screener: Screener) -> APIRouter:
    """The FastAPI routes (the GET one is normally answered by `ScreenFastPath` first)."""
    router = APIRouter(prefix="/api/screen", tags=["screen"])

    @router.get("/{chain}/{address}")
    async def api_screen(chain: str, address: str) -> dict[str, Any]:
        """The address's exposure to every traced case and its overall risk."""
        return await screener.one(chain, address)

    @router.post("")
    async def api_screen_batch(batch: ScreenBatch = Body(...)) -> dict[str, Any]:
        """Up to 1,000 addresses; a malformed one gets an `error` entry, the rest answer."""
        out = []
        for item in batch.addresses:
            try:
                out.append(await screener.one(item.chain, item.address))
            except InputError as exc:
                out.append({"chain": item.chain, "address": item.address, "error": str(exc)})
        return {"results": out}

    return router


def _json(status: int, obj: Any) -> tuple[int, bytes]:
    # the same bytes as FastAPI's JSONResponse
    return status, json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None,
                              separators=(",", ":")).encode("utf-8")


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
    """ASGI middleware: GET /api/screen/{chain}/{address} is answered here; other /api/screen
    requests go to a small app holding only the screening routes; everything else goes on to
    the full app."""

    def __init__(self, app: Any, *, screener: Screener, screen_app: Any, token: str | None,
                 csp: str) -> None:
        self.app, self.screener, self.screen_app, self.token = app, screener, screen_app, token
        self.headers = [(b"content-security-policy", csp.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer")]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/screen"):
            await self.app(scope, receive, send)
            return
        if self.token and not hmac.compare_digest(_given_token(scope).encode(),
                                                  self.token.encode()):
            status, body = _json(401, {"detail": "missing or wrong API token"})
            await self._send(send, status, body, [(b"www-authenticate", b"Bearer")])
            return
        parts = scope["path"].split("/")  # "", "api", "screen", chain, address
        if scope["method"] == "GET" and len(parts) == 5 and parts[3] and parts[4]:
            try:
                status, body = _json(200, await self.screener.one(parts[3], parts[4]))
            except HeisttraceError as exc:
                status, body = _json(400, {"detail": str(exc)})
            await self._send(send, status, body)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.screen_app(scope, receive, send_with_headers)

    async def _send(self, send: Any, status: int, body: bytes,
                    extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), *(extra or []), *self.headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _build_quietly(index: ExposureIndex, ws: Workspace) -> None:
    try:
        index.refresh(ws, force=True)
    except Exception:  # noqa: BLE001 - only a head start; the first request builds it otherwise
        pass


def install(app: FastAPI, ws: Workspace, *, token: str | None, csp: str) -> None:
    """Adds the screening routes to `app` (so they are in its OpenAPI) and the fast path."""
    screener = Screener(ws)
    # built at start, not by the first caller (a million-holding case takes ~10-30 s)
    threading.Thread(target=_build_quietly, args=(screener.index, ws), daemon=True).start()
    router = screen_router(screener)
    app.include_router(router)
    screen_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    screen_app.include_router(router)

    @screen_app.exception_handler(HeisttraceError)
    async def _known_error(request: Request, exc: HeisttraceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    app.add_middleware(ScreenFastPath, screener=screener, screen_app=screen_app, token=token,
                       csp=csp)
