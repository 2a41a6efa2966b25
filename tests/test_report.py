"""The report's numbers, read from the case tables of a hand-made case, and the report files."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger import open_workspace
from heisttrace.report import data
from heisttrace.report.html import render_case_page, rows_to_csv
from report_case import XSS, make_case_workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_case_workspace(tmp_path_factory.mktemp("report") / "ws")


@pytest.fixture
def ws(built: dict):
    w = open_workspace(built["path"], create=False, read_only=True)
    yield w
    w.close()


def test_breakdown_accounts_for_every_unit(ws, built) -> None:
    bd = data.breakdown(ws, "demo")
    by_sql = dict(ws.con.execute(
        "SELECT bucket, sum(origin_amount) FROM case_sinks WHERE case_name = 'demo' "
        "GROUP BY bucket").fetchall())
    assert [b["bucket"] for b in bd["buckets"]] == list(data.BUCKETS)
    for b in bd["buckets"]:
        assert b["amount"] == pytest.approx(by_sql.get(b["bucket"], 0.0), abs=0.01)
        assert b["share"] == pytest.approx(100 * by_sql.get(b["bucket"], 0.0) / 25e6, abs=0.01)
    assert bd["accounted"] == pytest.approx(built["demo"]["stolen"], abs=0.01)
    assert sum(b["share"] for b in bd["buckets"]) == pytest.approx(100, abs=0.05)


def test_sankey_columns_each_carry_the_stolen_total(ws) -> None:
    sk = data.sankey(ws, "demo")
    col = {n["id"]: n["column"] for n in sk["nodes"]}
    into = defaultdict(float)
    for link in sk["links"]:
        assert col[link["target"]] == col[link["source"]] + 1
        into[col[link["target"]]] += link["value"]
    assert into[1] == pytest.approx(25e6, abs=1)
    assert into[2] == pytest.approx(25e6, abs=1)
    bucket_in = defaultdict(float)
    bucket_out = defaultdict(float)
    for link in sk["links"]:
        if link["target"].startswith("b:"):
            bucket_in[link["target"]] += link["value"]
        if link["source"].startswith("b:"):
            bucket_out[link["source"]] += link["value"]
    for b, v in bucket_out.items():
        assert v <= bucket_in[b] + 0.01
    names = {n["name"] for n in sk["nodes"]}
    assert XSS in names and any("via bridge" in n for n in names)


def test_freeze_list_paths_lead_from_the_theft_to_the_deposit(ws, built) -> None:
    rows = data.freeze_list(ws, "demo")
    deposits = {d for ds in built["demo"]["deposits"].values() for d in ds}
    assert rows and all(r["bucket"] == "cashed_out" for r in rows)
    assert {r["address"] for r in rows if r["chain"] == "ethereum"} <= deposits
    assert [r["origin_amount"] for r in rows] == sorted(
        (r["origin_amount"] for r in rows), reverse=True)
    for r in rows:
        hops = r["top_path"].split(" > ")
        assert hops[0] == built["demo"]["victim"] and hops[-1] == r["address"]
        assert hops[1] == built["demo"]["thief"]
        assert r["hops"] == len(hops) - 1
    xss_rows = [r for r in rows if r["entity"] == XSS]
    assert xss_rows
    p = data.paths(ws, "demo", xss_rows[0]["address"], limit=3)
    for path in p["paths"]:
        edges = path["edges"]
        assert all(a["dst"] == b["src"] for a, b in zip(edges, edges[1:], strict=False))
        assert [e["time"] for e in edges] == sorted(e["time"] for e in edges)
        assert edges[-1]["dst"] == xss_rows[0]["address"]


def test_dormant_list_is_the_dormant_bucket(ws, built) -> None:
    rows = data.dormant_list(ws, "demo")
    expected = {(s["address"], s["asset"]) for s in built["demo"]["sinks"]
                if s["bucket"] == "dormant"}
    assert {(r["address"], r["asset"]) for r in rows} == expected
    wallet = next(r for r in rows if r["address"] == built["demo"]["wallets"][-1])
    assert wallet["amount"] == "199.999" and wallet["symbol"] == "ETH"
    # a wallet that never moved: thief -> wallet, two hops from the victim
    assert wallet["hops"] == 2 and wallet["top_path"].split(" > ") == [
        built["demo"]["victim"], built["demo"]["thief"], wallet["address"]]


def test_timeline_ends_at_each_entitys_cash_out(ws) -> None:
    tl = data.timeline(ws, "demo", top=20)
    per_entity = dict(ws.con.execute(
        "SELECT entity, sum(origin_amount) FROM case_sinks WHERE case_name = 'demo' AND "
        "bucket = 'cashed_out' GROUP BY entity").fetchall())
    assert {s["entity"] for s in tl["series"]} == set(per_entity)
    for s in tl["series"]:
        values = [v for _, v in s["points"]]
        assert values == sorted(values)
        assert s["total"] == pytest.approx(per_entity[s["entity"]], abs=0.05)


def test_graph_view_aggregates_a_large_case(ws, built) -> None:
    g = data.graph_view(ws, "scale")
    assert g["total_edges"] == built["scale"]["edges"] >= 45_000
    assert len(g["nodes"]) < 300 and len(g["edges"]) < 1000
    root = next(n for n in g["nodes"] if n["hop"] == 0)
    out = sum(e["amount"] for e in g["edges"] if e["source"] == root["id"])
    assert out == pytest.approx(built["scale"]["stolen"], rel=1e-6)
    big = max((n for n in g["nodes"] if n["kind"] == "group"), key=lambda n: n["size"])
    g2 = data.graph_view(ws, "scale", {big["group"]}, per_group=25)
    members = [n for n in g2["nodes"] if n.get("group") == big["group"]]
    assert sum(n["kind"] == "address" for n in members) == 25
    assert sum(n["kind"] == "more" for n in members) == 1
    # an address pinned for a path is shown even when its group is not expanded by hand
    target = built["scale"]["deposits"][0]
    path = data.paths(ws, "scale", target)["paths"][0]["addresses"]
    g3 = data.graph_view(ws, "scale", pin=set(path))
    ids = {n["id"] for n in g3["nodes"]}
    assert all("a:" + a in ids for a in path)


def test_method_names_policy_data_range_and_label_sources(ws) -> None:
    m = data.method(ws, "demo")
    assert m["policy"] == "haircut" and m["seeds"] == [f"0x{1:064x}"]
    assert {d["chain"] for d in m["data"]} == {"ethereum", "bitcoin"}
    assert "heuristic-deposit" in {s["source"] for s in m["label_sources"]}


def test_unknown_case_is_a_clear_error(ws) -> None:
    with pytest.raises(data.CaseNotFound, match="nope"):
        data.breakdown(ws, "nope")


def test_report_page_escapes_labels(ws) -> None:
    html = render_case_page(ws, "demo")
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # self-contained: nothing that would make the browser fetch
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<link" not in html


def test_csv_cells_never_run_as_formulas() -> None:
    text = rows_to_csv([{"a": "=HYPERLINK(1)", "b": "+1", "c": "ok"}], ("a", "b", "c"))
    assert text.splitlines()[1] == "'=HYPERLINK(1),'+1,ok"


def test_report_command_writes_html_json_csv(built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", "demo", "-w", str(built["path"]), "--html",
                                   str(out / "r.html"), "--json", str(out / "r.json"),
                                   "--csv", str(out / "csv")])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "r.json").read_text())
    with open_workspace(built["path"], create=False, read_only=True) as w:
        assert doc["breakdown"] == data.breakdown(w, "demo")
        freeze = data.freeze_list(w, "demo")
        dormant = data.dormant_list(w, "demo")
    assert doc["freeze_list"] == freeze
    with open(out / "csv" / "freeze_list.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["address"] for r in rows] == [r["address"] for r in freeze]
    assert [float(r["origin_amount"]) for r in rows] == [r["origin_amount"] for r in freeze]
    with open(out / "csv" / "dormant.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(dormant)
    assert "onerror=alert(1)&gt;" in (out / "r.html").read_text()


def test_report_command_unknown_case_writes_nothing(built, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["report", "nope", "-w", str(built["path"]), "--html",
                                   str(tmp_path / "x" / "r.html")])
    assert res.exit_code != 0
    assert not (tmp_path / "x").exists()
