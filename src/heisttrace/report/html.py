"""The investigation report: one self-contained HTML file, plus JSON and CSV of the two lists.

The file inlines its styles, its small table script and its SVG charts, and carries a
Content-Security-Policy that forbids every request, so it opens the same offline, in a mail
attachment or on an air-gapped machine. The web app renders its case page from the same
template (`render_case_page(..., web=True)`), so the page and the report show the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from heisttrace.ledger.workspace import Workspace
from heisttrace.report import data
from heisttrace.report.svg import fmt, sankey_svg, timeline_svg

_HERE = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader(str(_HERE / "templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.globals["fmt"] = fmt


def shortpath(path: str) -> str:
    """A path of full addresses shortened for a table cell (the full one is in the title)."""
    parts = [a for a in path.split(" > ") if a]
    return " › ".join(a if len(a) <= 14 else a[:8] + "…" + a[-4:] for a in parts)


_ENV.filters["shortpath"] = shortpath


def _asset(name: str) -> str:
    return (_HERE / "templates" / name).read_text()


def case_context(ws: Workspace, case: str) -> dict[str, Any]:
    """Everything the case template shows, from `report.data`."""
    info = data.get_case(ws, case)
    bd = data.breakdown(ws, case)
    return {
        "info": info, "bd": bd,
        "sankey": sankey_svg(data.sankey(ws, case)),
        "timeline": timeline_svg(data.timeline(ws, case)),
        "freeze": data.freeze_list(ws, case), "dormant": data.dormant_list(ws, case),
        "method": data.method(ws, case), "payload": {"breakdown": bd},
        "css": _asset("report.css"), "js": _asset("report.js"),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    }


WEB_ROWS = 500


def render_case_page(ws: Workspace, case: str, *, web: bool = False) -> str:
    """The case as HTML: the standalone report (`web=False`, every row) or the web app's
    case page (the largest `WEB_ROWS` rows of each list; its CSV links have all)."""
    return _ENV.get_template("case.html").render(
        **case_context(ws, case), web=web, limit=WEB_ROWS if web else 10**9)


def render_template(name: str, **context: Any) -> str:
    """Other pages of the web app share this environment (autoescaping on for all)."""
    return _ENV.get_template(name).render(**context, css=_asset("report.css"))


_CSV_FORMULA = ("=", "+", "@", "\t", "\r")


def rows_to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """CSV with a header; a cell that a spreadsheet would run as a formula gets a leading '."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            v = "" if v is None else str(v)
            cells.append("'" + v if v.startswith(_CSV_FORMULA) else v)
        writer.writerow(cells)
    return buf.getvalue()


def report_json(ws: Workspace, case: str) -> dict[str, Any]:
    return {"case": data.get_case(ws, case), "breakdown": data.breakdown(ws, case),
            "freeze_list": data.freeze_list(ws, case), "dormant": data.dormant_list(ws, case),
            "method": data.method(ws, case)}


def write_report(ws: Workspace, case: str, *, html: Path | None = None,
                 json_file: Path | None = None, csv_dir: Path | None = None) -> list[Path]:
    """Writes the requested outputs; returns the files written."""
    data.get_case(ws, case)  # fail before creating any file when the case is unknown
    written: list[Path] = []
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_case_page(ws, case, web=False), encoding="utf-8")
        written.append(html)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(report_json(ws, case), indent=2, default=str))
        written.append(json_file)
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
        for name, rows, cols in (
            ("freeze_list.csv", data.freeze_list(ws, case), data.FREEZE_COLUMNS),
            ("dormant.csv", data.dormant_list(ws, case), data.DORMANT_COLUMNS),
        ):
            path = csv_dir / name
            path.write_text(rows_to_csv(rows, cols), encoding="utf-8")
            written.append(path)
    return written
