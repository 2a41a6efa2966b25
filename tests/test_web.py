"""The REST API and the pages, through FastAPI's TestClient on a real DuckDB workspace."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from heisttrace.cli import app as cli_app
from heisttrace.errors import HeisttraceError
from heisttrace.ledger import open_workspace
from heisttrace.report import data
from heisttrace.web.app import check_bind, create_app, safe_report_path
from report_case import XSS, make_case_workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_case_workspace(tmp_path_factory.mktemp("web") / "ws")


@pytest.fixture(scope="module")
def client(built: dict):
    application = create_app(built["path"])
    with TestClient(application) as c:
        yield c
    application.state.heisttrace.ws.close()


def test_cases_list_and_case(client: TestClient, built: dict) -> None:
    cases = client.get("/api/cases").json()
    assert [c["case"] for c in cases] == ["demo", "scale"]
    demo = client.get("/api/cases/demo").json()
    assert demo["stolen"] == built["demo"]["stolen"] and demo["policy"] == "haircut"
    assert demo["summary"]["accounted"] == pytest.approx(built["demo"]["stolen"], abs=0.01)


def test_summary_matches_the_sinks(client: TestClient, built: dict) -> None:
    summary = client.get("/api/cases/demo/summary").json()
    sinks = client.get("/api/cases/demo/sinks").json()
    for b in summary["buckets"]:
        total = sum(s["origin_amount"] for s in sinks if s["bucket"] == b["bucket"])
        assert b["amount"] == pytest.approx(total, abs=0.05)
    expected = sum(s["origin_amount"] for s in built["demo"]["sinks"]
                   if s["bucket"] == "cashed_out")
    assert summary["buckets"][0]["amount"] == pytest.approx(expected, abs=0.01)


def test_freeze_list_csv_equals_json(client: TestClient) -> None:
    rows = client.get("/api/cases/demo/freeze-list").json()
    res = client.get("/api/cases/demo/freeze-list", params={"format": "csv"})
    assert res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    parsed = list(csv.DictReader(io.StringIO(res.text)))
    assert len(parsed) == len(rows)
    for a, b in zip(parsed, rows, strict=True):
        assert a["address"] == b["address"] and a["entity"] == (b["entity"] or "")
        assert float(a["origin_amount"]) == b["origin_amount"]
        assert a["top_path"] == b["top_path"]
    assert any(r["entity"] == XSS for r in parsed)


def test_dormant_and_sinks_filters(client: TestClient, built: dict) -> None:
    dormant = client.get("/api/cases/demo/dormant").json()
    sinks = client.get("/api/cases/demo/sinks", params={"bucket": "dormant"}).json()
    assert [{k: r[k] for k in sinks[0]} for r in dormant] == sinks
    assert len(dormant) == sum(s["bucket"] == "dormant" for s in built["demo"]["sinks"])
    assert client.get("/api/cases/demo/sinks", params={"format": "xml"}).status_code == 422


def test_paths_to_a_deposit_address(client: TestClient, built: dict) -> None:
    target = built["demo"]["xss_deposits"][0]
    res = client.get("/api/cases/demo/paths", params={"address": target, "limit": 2}).json()
    assert res["paths"]
    best = res["paths"][0]
    assert best["addresses"][0] == built["demo"]["victim"] and best["addresses"][-1] == target
    assert best["hops"] == len(best["edges"]) == len(best["addresses"]) - 1
    none = client.get("/api/cases/demo/paths", params={"address": "0xnothere"}).json()
    assert none["paths"] == []


def test_graph_expands_a_group(client: TestClient) -> None:
    g = client.get("/api/cases/scale/graph").json()
    group = max((n for n in g["nodes"] if n["kind"] == "group"), key=lambda n: n["size"])
    g2 = client.get("/api/cases/scale/graph", params={"expand": group["group"]}).json()
    assert len(g2["nodes"]) > len(g["nodes"])
    assert any(n["kind"] == "address" and n["group"] == group["group"] for n in g2["nodes"])
    total = sum(e["amount"] for e in g["edges"])
    # amounts are rounded to cents per aggregated edge
    assert sum(e["amount"] for e in g2["edges"]) == pytest.approx(
        total, abs=0.01 * len(g2["edges"]))


def test_address_and_labels(client: TestClient, built: dict) -> None:
    target = built["demo"]["xss_deposits"][0]
    info = client.get(f"/api/addresses/{target}").json()
    assert info["labels"][0]["entity"] == XSS
    assert info["cases"][0]["case"] == "demo"
    assert info["cases"][0]["tainted_in"] == pytest.approx(
        sum(s["origin_amount"] for s in built["demo"]["sinks"] if s["address"] == target),
        abs=0.01)
    assert len(info["flows"]) == sum(
        1 for e in built["demo"]["edges"] if target in (e["src"], e["dst"]))
    labels = client.get("/api/labels", params={"q": "Tornado"}).json()
    assert [lab["address"] for lab in labels] == [built["demo"]["mixer"]]


def test_pages_escape_labels(client: TestClient, built: dict) -> None:
    for url in ["/", "/cases/demo", "/cases/demo/graph",
                f"/addresses/{built['demo']['xss_deposits'][0]}?case=demo"]:
        res = client.get(url)
        assert res.status_code == 200, url
        assert XSS not in res.text, url
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get("/cases/demo").text


def test_unknown_case_is_404(client: TestClient) -> None:
    assert client.get("/api/cases/nope/summary").status_code == 404
    assert "nope" in client.get("/api/cases/nope").json()["detail"]
    assert client.get("/cases/nope").status_code == 404


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/api/cases", "/api/cases/{case}", "/api/cases/{case}/summary",
              "/api/cases/{case}/sinks", "/api/cases/{case}/dormant", "/api/cases/{case}/paths",
              "/api/addresses/{address}", "/api/labels"]:
        assert p in paths
    assert "post" in paths["/api/cases"]
    # no Swagger UI: it would load its scripts from a CDN
    assert client.get("/docs").status_code == 404
    assert "default-src 'self'" in client.get("/cases/demo").headers["content-security-policy"]


def test_create_case_validates_its_input(client: TestClient) -> None:
    assert client.post("/api/cases", json={"case": "x"}).status_code == 422
    assert client.post("/api/cases", json={"case": "x", "seeds": []}).status_code == 422


def test_vendor_script_is_served_locally(client: TestClient) -> None:
    res = client.get("/static/cytoscape.min.js")
    assert res.status_code == 200 and "cytoscape" in res.text[:5000]
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/report.css").status_code == 404


def test_saved_reports_stay_in_the_workspace(client: TestClient, built: dict) -> None:
    ws_path = Path(built["path"])
    res = client.post("/api/cases/demo/report", json={"file": "demo-report.html"})
    assert res.status_code == 201
    assert (ws_path / "reports" / "demo-report.html").is_file()
    got = client.get(res.json()["url"])
    assert got.status_code == 200 and "Where the stolen funds are" in got.text
    for bad in ["../evil.html", "..", ".hidden", "a/b.html", "/etc/passwd", "x\\..\\y"]:
        r = client.post("/api/cases/demo/report", json={"file": bad})
        assert r.status_code == 400, bad
    assert not (ws_path / "evil.html").exists() and not (ws_path.parent / "evil.html").exists()
    for bad in ["..%2Fheisttrace.duckdb", "%2e%2e", ".hidden", "heisttrace.duckdb"]:
        assert client.get(f"/api/reports/{bad}").status_code in (400, 404), bad
    with pytest.raises(HeisttraceError):
        safe_report_path(ws_path, "../heisttrace.duckdb")


def test_token_is_required_on_every_request(built: dict, tmp_path: Path) -> None:
    ws_path = tmp_path / "tok"
    with open_workspace(ws_path) as w:
        from report_case import build_demo_case

        build_demo_case(w)
    application = create_app(ws_path, token="s3cret-token")
    with TestClient(application) as c:
        for url in ["/api/cases", "/", "/cases/demo", "/openapi.json", "/static/graph.js"]:
            assert c.get(url).status_code == 401, url
        assert c.get("/api/cases", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/api/cases", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()[0]["case"] == "demo"
        # a browser opens a page once with ?token=, then the cookie carries it
        assert c.get("/cases/demo", params={"token": "s3cret-token"}).status_code == 200
        assert c.get("/api/cases/demo/summary").status_code == 200
    application.state.heisttrace.ws.close()


def test_serve_refuses_open_bind_without_token(built: dict, monkeypatch) -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(HeisttraceError, match="HEISTTRACE_API_TOKEN"):
        check_bind("0.0.0.0", None)
    monkeypatch.delenv("HEISTTRACE_API_TOKEN", raising=False)
    res = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "-w", str(built["path"])])
    assert res.exit_code != 0
    assert "HEISTTRACE_API_TOKEN" in str(res.exception)


def test_same_numbers_as_report_data(client: TestClient) -> None:
    with client.app.state.heisttrace.use() as w:
        summary, sankey = data.breakdown(w, "demo"), data.sankey(w, "demo")
        timeline = data.timeline(w, "demo")
    assert client.get("/api/cases/demo/summary").json() == summary
    assert client.get("/api/cases/demo/sankey").json() == sankey
    assert client.get("/api/cases/demo/timeline").json() == timeline


def test_large_lists_are_cut_on_the_page_not_in_the_csv(client: TestClient) -> None:
    from heisttrace.report.html import WEB_ROWS

    page = client.get("/cases/scale").text
    dormant = client.get("/api/cases/scale/dormant").json()
    assert len(dormant) > WEB_ROWS
    assert f"Showing the {WEB_ROWS} largest of {len(dormant)}" in page
    table = page[page.index('id="dormant-table"'):]
    assert table.count("<tr data-address=") == WEB_ROWS
    rows = list(csv.DictReader(io.StringIO(
        client.get("/api/cases/scale/dormant", params={"format": "csv"}).text)))
    assert len(rows) == len(dormant)


def test_create_case_runs_the_engine_and_matches_the_known_answer(tmp_path: Path) -> None:
    """POST /api/cases traces the hand-made theft again: same breakdown as its known answer."""
    built = make_case_workspace(tmp_path / "ws", scale=False)
    application = create_app(built["path"])
    with TestClient(application) as c:
        known = c.get("/api/cases/demo").json()
        made = c.post("/api/cases", json={"case": "again", "seeds": known["seeds"],
                                          "policy": "haircut"})
        assert made.status_code == 201, made.text
        again = c.get("/api/cases/again/summary").json()
        assert [c_["case"] for c_ in c.get("/api/cases").json()] == ["again", "demo"]
    application.state.heisttrace.ws.close()
    # The fixture priced the theft in USD; the API run counts ETH: compare shares.
    want = {b["bucket"]: b["share"] for b in known["summary"]["buckets"]}
    got = {b["bucket"]: b["share"] for b in again["buckets"]}
    # The fixture books the bridge's unpaid 10% as bridged_untraced on a Bitcoin address that
    # carries no label there; the engine, which only knows labels, keeps it dormant.
    for bucket in ("bridged_untraced", "dormant"):
        got["dormant+untraced"] = got.get("dormant+untraced", 0) + got.pop(bucket)
        want["dormant+untraced"] = want.get("dormant+untraced", 0) + want.pop(bucket)
    assert got == pytest.approx(want, abs=0.011)
