"""The web app: case pages, the graph explorer, address pages and the REST API under /api.

Every number comes from `heisttrace.report.data`, the same functions the HTML report uses.
Security: the server binds 127.0.0.1 unless told otherwise; bound anywhere else it needs
$HEISTTRACE_API_TOKEN and then checks the token on every request (pages, API, static files).
File names in requests (saved reports) are checked to stay inside the workspace's reports
folder. JavaScript libraries are served from the local node_modules (npm, lock file), never
from a CDN.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from heisttrace.errors import HeisttraceError
from heisttrace.ledger.workspace import (
    SerialConnection,
    Workspace,
    open_workspace,
    workspace_path,
)
from heisttrace.report import data
from heisttrace.report.html import render_case_page, report_json, rows_to_csv, shortpath
from heisttrace.report.svg import fmt
from heisttrace.trace.run import run_trace
from heisttrace.watch.background import BackgroundWatch, WatchConfig
from heisttrace.web import screen_api

_HERE = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader([str(_HERE / "templates"), str(_HERE.parent / "report" /
                                                           "templates")]),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.globals["fmt"] = fmt
_ENV.filters["shortpath"] = shortpath
# Pages load scripts only from this server (inline ones are ours); nothing else is fetched.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
       " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
REPORTS_DIR = "reports"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
VENDOR = {"cytoscape.min.js": ("cytoscape", "dist", "cytoscape.min.js")}


class CreateCase(BaseModel):
    """A trace to run: the same arguments as `heisttrace trace`."""

    case: str = Field(min_length=1, max_length=200)
    seeds: list[str] = Field(min_length=1, description="Theft tx hashes or ADDRESS@TIME.")
    policy: str = "haircut"
    until: int | None = None
    min_taint: float | None = None
    prices: dict[str, float] | None = None


class SaveReport(BaseModel):
    file: str = Field(description="File name (no folders) inside the workspace's reports/.")


def node_modules_file(*parts: str) -> Path | None:
    """A file of an npm package installed by `make` (npm ci): looked up from
    $HEISTTRACE_NODE_MODULES, the current folder and the source tree upwards."""
    roots = []
    if os.environ.get("HEISTTRACE_NODE_MODULES"):
        roots.append(Path(os.environ["HEISTTRACE_NODE_MODULES"]))
    for start in (Path.cwd(), _HERE):
        roots += [p / "node_modules" for p in (start, *start.parents)]
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def safe_report_path(ws_path: Path, name: str) -> Path:
    """The file `name` inside the workspace's reports folder, or an error: no separators,
    no dot-files, nothing that resolves outside that folder."""
    if not _SAFE_NAME.match(name or "") or ".." in name:
        raise HeisttraceError(f"bad file name {name!r}: use letters, digits, '.', '_', '-'")
    folder = (ws_path / REPORTS_DIR).resolve()
    path = (folder / name).resolve()
    if path.parent != folder:
        raise HeisttraceError(f"bad file name {name!r}: it must stay in {REPORTS_DIR}/")
    return path


def check_bind(host: str, token: str | None) -> None:
    """Refuses a non-loopback address without a token (the API would be open to the net)."""
    if host not in LOOPBACK and not token:
        raise HeisttraceError(
            f"refusing to serve on {host} without a token: set HEISTTRACE_API_TOKEN "
            "(or bind 127.0.0.1)")


class _State:
    def __init__(self, ws: Workspace, token: str | None) -> None:
        self.ws = ws
        self.token = token
        self.lock = threading.RLock()  # one DuckDB connection: one request at a time uses it

    @contextmanager
    def use(self) -> Iterator[Workspace]:
        with self.lock:
            yield self.ws


def create_app(workspace: str | os.PathLike[str] | None = None, *,
               token: str | None = None, watch: WatchConfig | None = None,
               log: Callable[[str], None] | None = None) -> FastAPI:
    """The ASGI app for one workspace. With `token`, every request must present it; with
    `watch`, a watch follows that node in a thread while the app runs (`log` hears it)."""
    ws = open_workspace(workspace_path(workspace), create=False)
    # requests, the screening index, the cache warmer and the watch each use a cursor of this
    # connection from their own thread: every DuckDB call holds one lock (see SerialConnection)
    ws.con = SerialConnection(ws.con)  # type: ignore[assignment]
    state = _State(ws, token or None)
    # its own cursor: the watch writes from its thread while requests read. Started here, so
    # a case that cannot be watched is an error before the server binds its port.
    watcher = None if watch is None else BackgroundWatch(
        Workspace(ws.path, ws.con.cursor()), watch, log)
    if watcher is not None:
        watcher.start()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if watcher is not None:
                await asyncio.to_thread(watcher.stop)

    # No /docs or /redoc: FastAPI would load Swagger UI from a CDN. The spec is /openapi.json.
    app = FastAPI(title="heisttrace", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Where stolen cryptocurrency went: cases, sinks, paths, labels.",
                  lifespan=lifespan)
    app.state.heisttrace = state
    # the cursor is made here, not in the thread: a connection is not safe to share while
    # it is being duplicated
    threading.Thread(target=_warm_cache, args=(Workspace(ws.path, ws.con.cursor()),),
                     daemon=True).start()

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Response:
        if state.token:
            given = request.headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else ""
            given = given or request.headers.get("x-api-token", "") or request.cookies.get(
                "heisttrace_token", "") or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), state.token.encode()):
                return JSONResponse({"detail": "missing or wrong API token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            response = await call_next(request)
            if request.query_params.get("token"):  # pages opened with ?token= keep working
                response.set_cookie("heisttrace_token", state.token, httponly=True,
                                    samesite="strict")
            return response
        return await call_next(request)

    # added after the two middlewares above, so it runs first (see screen_api.ScreenFastPath)
    screen_api.install(app, Workspace(ws.path, ws.con.cursor()), token=state.token, csp=CSP)

    @app.exception_handler(HeisttraceError)
    async def _known_error(request: Request, exc: HeisttraceError) -> Response:
        status = 404 if isinstance(exc, data.CaseNotFound) else 400
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return HTMLResponse(_ENV.get_template("error.html").render(message=str(exc),
                                                                   css=_css()), status)

    def _rows_or_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt_: str,
                     filename: str) -> Any:
        if fmt_ == "csv":
            return Response(rows_to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition":
                                     f"attachment; filename*=UTF-8''{quote(filename)}"})
        return rows

    # -- API ------------------------------------------------------------------------------
    @app.get("/api/watch", tags=["watch"])
    def api_watch() -> dict[str, Any]:
        """How far the server's watch (`serve --watch URL`) has got; `running` false without."""
        if watcher is None:
            return {"running": False, "chain": None, "cases": None, "last_block": None,
                    "batches": 0, "blocks": 0, "flows": 0, "alerts": 0, "reorgs": 0,
                    "error": None}
        return watcher.status()

    @app.get("/api/cases", tags=["cases"])
    def api_cases() -> list[dict[str, Any]]:
        """Every traced case in the workspace."""
        with state.use() as w:
            return data.list_cases(w)

    @app.post("/api/cases", tags=["cases"], status_code=201)
    def api_create_case(spec: CreateCase) -> dict[str, Any]:
        """Run a trace (the engine's `run_trace`) and store it as a case."""
        kwargs: dict[str, Any] = {"policy": spec.policy, "until": spec.until,
                                  "prices": spec.prices}
        if spec.min_taint is not None:
            kwargs["min_taint"] = spec.min_taint
        with state.use() as w:
            run_trace(w, spec.case, spec.seeds, **kwargs)
            return {**data.get_case(w, spec.case), "summary": data.breakdown(w, spec.case)}

    @app.get("/api/cases/{case}", tags=["cases"])
    def api_case(case: str) -> dict[str, Any]:
        """One case: its parameters and its breakdown."""
        with state.use() as w:
            return {**data.get_case(w, case), "summary": data.breakdown(w, case)}

    @app.get("/api/cases/{case}/summary", tags=["cases"])
    def api_summary(case: str) -> dict[str, Any]:
        """Amount and share of the stolen total in each bucket."""
        with state.use() as w:
            return data.breakdown(w, case)

    @app.get("/api/cases/{case}/sinks", tags=["cases"])
    def api_sinks(case: str, bucket: str | None = None,
                  format: str = Query("json", pattern="^(json|csv)$")) -> Any:
        """Every sink row (bucket, chain, address, asset), biggest first; `format=csv`."""
        with state.use() as w:
            return _rows_or_csv(data.sinks(w, case, bucket), data.SINK_COLUMNS, format,
                                f"{case}-sinks.csv")

    @app.get("/api/cases/{case}/freeze-list", tags=["cases"])
    def api_freeze(case: str, format: str = Query("json", pattern="^(json|csv)$")) -> Any:
        """Exchange deposit addresses that received stolen funds, with a top path each."""
        with state.use() as w:
            return _rows_or_csv(data.freeze_list(w, case), data.FREEZE_COLUMNS, format,
                                f"{case}-freeze-list.csv")

    @app.get("/api/cases/{case}/dormant", tags=["cases"])
    def api_dormant(case: str, format: str = Query("json", pattern="^(json|csv)$")) -> Any:
        """Addresses still holding stolen funds (the watch list)."""
        with state.use() as w:
            return _rows_or_csv(data.dormant_list(w, case), data.DORMANT_COLUMNS, format,
                                f"{case}-dormant.csv")

    @app.get("/api/cases/{case}/paths", tags=["cases"])
    def api_paths(case: str, address: str, limit: int = Query(3, ge=1, le=50)) -> Any:
        """Routes from the theft to an address, the one that carried the most first."""
        with state.use() as w:
            return data.paths(w, case, address, limit)

    @app.get("/api/cases/{case}/graph", tags=["cases"])
    def api_graph(case: str, expand: list[str] = Query(default=[]),
                  pin: list[str] = Query(default=[])) -> Any:
        """The taint-flow graph aggregated by hop and entity; `expand` groups, `pin`
        addresses to show on their own."""
        with state.use() as w:
            return data.graph_view(w, case, set(expand), pin=set(pin))

    @app.get("/api/cases/{case}/sankey", tags=["cases"])
    def api_sankey(case: str) -> Any:
        with state.use() as w:
            return data.sankey(w, case)

    @app.get("/api/cases/{case}/timeline", tags=["cases"])
    def api_timeline(case: str) -> Any:
        with state.use() as w:
            return data.timeline(w, case)

    @app.get("/api/cases/{case}/method", tags=["cases"])
    def api_method(case: str) -> Any:
        with state.use() as w:
            return data.method(w, case)

    @app.get("/api/cases/{case}/report", tags=["reports"])
    def api_report(case: str) -> Any:
        """Everything in the report as JSON."""
        with state.use() as w:
            return report_json(w, case)

    @app.post("/api/cases/{case}/report", tags=["reports"], status_code=201)
    def api_save_report(case: str, spec: SaveReport = Body(...)) -> dict[str, str]:
        """Save the HTML report as reports/FILE in the workspace."""
        with state.use() as w:
            path = safe_report_path(w.path, spec.file)
            html = render_case_page(w, case, web=False)
            path.parent.mkdir(exist_ok=True)
            path.write_text(html, encoding="utf-8")
        return {"file": path.name, "url": f"/api/reports/{quote(path.name)}"}

    @app.get("/api/reports/{name}", tags=["reports"])
    def api_get_report(name: str) -> FileResponse:
        """A saved report, by file name (only files inside the workspace's reports/)."""
        path = safe_report_path(state.ws.path, name)
        if not path.is_file():
            raise HTTPException(404, f"no report named {name!r}")
        return FileResponse(path, media_type="text/html")

    @app.get("/api/addresses/{address}", tags=["addresses"])
    def api_address(address: str, limit: int = Query(200, ge=1, le=10_000)) -> Any:
        """Labels of an address, its flows and its taint in every case."""
        with state.use() as w:
            return data.address_info(w, address, limit)

    @app.get("/api/labels", tags=["labels"])
    def api_labels(q: str | None = None, limit: int = Query(100, ge=1, le=10_000)) -> Any:
        """Labels matching an address, entity or category."""
        with state.use() as w:
            return data.search_labels(w, q, limit)

    # -- pages --------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page_cases() -> str:
        with state.use() as w:
            cases = data.list_cases(w)
            for c in cases:
                c["summary"] = data.breakdown(w, c["case"])
        return _ENV.get_template("cases.html").render(cases=cases, css=_css())

    @app.get("/cases/{case}", response_class=HTMLResponse, include_in_schema=False)
    def page_case(case: str) -> str:
        with state.use() as w:
            return render_case_page(w, case, web=True)

    @app.get("/cases/{case}/graph", response_class=HTMLResponse, include_in_schema=False)
    def page_graph(case: str, path: str | None = None) -> str:
        with state.use() as w:
            info = data.get_case(w, case)
            # the first view comes with the page: no second round trip before drawing
            first = None if path else data.graph_view(w, case)
        return _ENV.get_template("graph.html").render(info=info, first=first, css=_css())

    @app.get("/addresses/{address}", response_class=HTMLResponse, include_in_schema=False)
    def page_address(address: str, case: str | None = None) -> str:
        with state.use() as w:
            info = data.address_info(w, address)
        return _ENV.get_template("address.html").render(a=info, case=case, css=_css())

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name in VENDOR:
            path = node_modules_file(*VENDOR[name])
            if path is None:
                raise HTTPException(404, f"{name} is missing: run `make setup` (npm install)")
            return FileResponse(path, media_type="text/javascript")
        if name not in {"graph.js"}:
            raise HTTPException(404, "no such file")
        return FileResponse(_HERE / "static" / name, media_type="text/javascript")

    return app


def _warm_cache(ws: Workspace) -> None:
    """Loads every case's taint-flow graph once at start (`ws` is its own DuckDB cursor), so
    the first visitor of a large case does not wait for it."""
    try:
        for case in data.list_cases(ws):
            data.case_graph(ws, case["case"])
    except Exception:  # noqa: BLE001 - only a speed-up; requests load what they need
        pass
    finally:
        ws.close()


def _css() -> str:
    return (_HERE.parent / "report" / "templates" / "report.css").read_text()


def run_server(workspace: str | os.PathLike[str] | None, *, host: str = "127.0.0.1",
               port: int = 8000, token: str | None = None, watch: WatchConfig | None = None,
               log: Callable[[str], None] | None = None) -> None:
    """`heisttrace serve`: checks the bind address against the token, then runs uvicorn."""
    import uvicorn

    check_bind(host, token)
    app = create_app(workspace, token=token, watch=watch, log=log)
    uvicorn.run(app, host=host, port=port, log_level="warning")
