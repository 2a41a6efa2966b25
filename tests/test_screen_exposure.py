"""Screening against a real traced case: direct and indirect exposure, shares, risk, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.ledger import Workspace
from heisttrace.screen import ExposureIndex, screen
from heisttrace.trace.run import run_trace

from trace_helpers import add, flow, label

VICTIM = "0x" + "aa" * 20
THIEF = "0x" + "bb" * 20
MULE = "0x" + "cc" * 20
DEPOSIT = "0x" + "dd" * 20
CLEAN = "0x" + "ee" * 20
DOWN1 = "0x" + "11" * 20  # receives from MULE? no: from DEPOSIT's neighbour chain below
FAR = "0x" + "22" * 20
STRANGER = "0x" + "99" * 20


@pytest.fixture
def traced(workspace):
    """Theft of 100 ETH; thief mixes with 100 clean ETH, sends 60 to a mule, the mule sends
    30 to an exchange deposit. DOWN1 later gets funds from CLEAN, which got from... nothing
    tainted; FAR gets from DOWN1. A second, unrelated ledger path: MULE -> (poison-free)"""
    add(workspace, [
        flow(100, "0xt1", VICTIM, THIEF, 100),
        flow(110, "0xt2", CLEAN, THIEF, 100),
        flow(120, "0xt3", THIEF, MULE, 60),
        flow(130, "0xt4", MULE, DEPOSIT, 30),
        flow(131, "0xt5", CLEAN, MULE, 240),  # clean money arrives after: dilutes MULE's share
    ])
    label(workspace, DEPOSIT, "deposit_wallet", "ExampleEx")
    run_trace(workspace, "heist", ["0xt1"])
    return workspace


def test_direct_exposure_amounts_share_and_risk(traced) -> None:
    exps = {e.address: e for a in (THIEF, MULE, DEPOSIT) for e in screen(traced, "ethereum", a)}
    thief = exps[THIEF]
    assert thief.kind == "direct" and thief.hops == 0
    assert thief.taint_received == pytest.approx(100)
    assert thief.share == pytest.approx(0.5)  # 100 tainted of 200 received
    assert thief.risk == "severe"
    mule = exps[MULE]
    # haircut: thief's pool is half tainted, so 30 of the 60 moved are taint
    assert mule.taint_received == pytest.approx(30)
    assert mule.share == pytest.approx(30 / 300)  # 60 + 240 received
    assert mule.risk == "high"
    assert mule.first_time == 120 and mule.last_time == 120
    dep = exps[DEPOSIT]
    assert dep.taint_received == pytest.approx(15)
    assert dep.bucket == "cashed_out" and dep.entity == "ExampleEx"
    assert dep.holds == pytest.approx(15)
    assert [h["dst"] for h in dep.path] == [THIEF, MULE, DEPOSIT]
    assert dep.path[-1]["tx_hash"] == "0xt4"


def test_indirect_exposure_counts_hops_back_to_taint(traced) -> None:
    add(traced, [flow(200, "0xt6", DEPOSIT, DOWN1, 1), flow(210, "0xt7", DOWN1, FAR, 1)])
    (one,) = screen(traced, "ethereum", DOWN1)
    assert one.kind == "indirect" and one.hops == 1 and one.via == DEPOSIT
    assert one.risk == "medium"
    (two,) = screen(traced, "ethereum", FAR.upper().replace("0X", "0x"))
    assert two.address == FAR and two.hops == 2 and two.risk == "low"
    assert [h["dst"] for h in two.path][-2:] == [DOWN1, FAR]
    (none,) = screen(traced, "ethereum", STRANGER)
    assert none.kind == "none" and none.risk == "none" and none.taint_received == 0


def test_clean_sender_is_not_exposed(traced) -> None:
    (e,) = screen(traced, "ethereum", CLEAN)
    assert e.kind == "none"  # it sent to the thief, never received from taint


@pytest.mark.parametrize("chain,address", [
    ("ethereum", "0x123"), ("ethereum", "hello"), ("ethereum", "0x" + "zz" * 20),
    ("bitcoin", "0x" + "aa" * 20), ("Not A Chain!", VICTIM), ("ethereum", ""),
])
def test_malformed_input_is_an_input_error(traced, chain: str, address: str) -> None:
    with pytest.raises(InputError):
        screen(traced, chain, address)


def test_index_rebuilds_after_retrace(traced) -> None:
    index = ExposureIndex(refresh_every=0)
    before = screen(traced, "ethereum", MULE, index)[0].taint_received
    add(traced, [flow(300, "0xt8", THIEF, MULE, 100)])
    run_trace(traced, "heist", ["0xt1"])
    after = screen(traced, "ethereum", MULE, index)[0].taint_received
    assert after > before


def test_sender_graph_follows_new_flows_and_superseded(traced) -> None:
    """The in-memory walk sees flows added after the index was built, and drops flows a
    conversion superseded, like the ledger view does."""
    index = ExposureIndex(refresh_every=0)
    assert screen(traced, "ethereum", STRANGER, index)[0].kind == "none"
    add(traced, [flow(400, "0xt9", DEPOSIT, STRANGER, 1), flow(401, "0xta", CLEAN, STRANGER, 5)])
    (e,) = screen(traced, "ethereum", STRANGER, index)
    assert e.kind == "indirect" and e.hops == 1 and e.via == DEPOSIT
    assert e.path[-1] == {"src": DEPOSIT, "dst": STRANGER, "chain": "ethereum",
                          "tx_hash": "0xt9", "time": 400, "origin_taint": 0.0}
    senders = index.graph.senders("ethereum", [STRANGER])
    assert [s[1] for s in senders] == [CLEAN, DEPOSIT]  # heaviest sender first
    traced.con.execute("INSERT INTO superseded SELECT chain, tx_hash, ordinal FROM flows "
                       "WHERE tx_hash = '0xt9'")
    assert screen(traced, "ethereum", STRANGER, index)[0].kind == "none"


def test_cli_screen_json_and_errors(traced, tmp_path) -> None:
    ws_path = str(traced.path)
    traced.close()
    runner = CliRunner()
    res = runner.invoke(app, ["screen", "ethereum", MULE, "-w", ws_path, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["risk"] == "high" and out["exposures"][0]["case"] == "heist"
    res = runner.invoke(app, ["screen", "ethereum", MULE, "-w", ws_path])
    assert res.exit_code == 0 and "high" in res.output
    res = runner.invoke(app, ["screen", "ethereum", "0x12", "-w", ws_path])
    assert res.exit_code != 0


def test_web_screen_routes(traced) -> None:
    from fastapi.testclient import TestClient

    from heisttrace.web.app import create_app

    add(traced, [flow(200, "0xt6", DEPOSIT, DOWN1, 1)])
    path = traced.path
    traced.close()
    with TestClient(create_app(path)) as client:
        r = client.get(f"/api/screen/ethereum/{MULE}")
        assert r.status_code == 200
        body = r.json()
        assert body["risk"] == "high"
        assert body["exposures"][0]["taint_received"] == pytest.approx(30)
        r = client.get(f"/api/screen/ethereum/{STRANGER}")
        assert r.status_code == 200 and r.json()["risk"] == "none"
        r = client.get("/api/screen/ethereum/0x1234")
        assert r.status_code == 400 and "malformed" in r.json()["detail"]
        r = client.get(f"/api/screen/bad%20chain/{MULE}")
        assert r.status_code == 400 and "chain" in r.json()["detail"]
        r = client.post("/api/screen", json={"addresses": [
            {"chain": "ethereum", "address": THIEF}, {"chain": "ethereum", "address": DOWN1},
            {"chain": "ethereum", "address": "nope"}]})
        assert r.status_code == 200
        res = r.json()["results"]
        assert [x.get("risk") for x in res] == ["severe", "medium", None]
        assert "malformed" in res[2]["error"]
        too_many = [{"chain": "ethereum", "address": THIEF}] * 1001
        assert client.post("/api/screen", json={"addresses": too_many}).status_code == 422
        assert client.post("/api/screen", json={"addresses": []}).status_code == 422
        assert client.post("/api/screen", content=b"{not json").status_code == 422


def test_web_fast_path_answers_like_the_fastapi_route(traced) -> None:
    """The ASGI fast path and the FastAPI route it shadows give byte-identical bodies."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from heisttrace.ledger import open_workspace
    from heisttrace.web.app import create_app
    from heisttrace.web.screen_api import Screener, screen_router

    add(traced, [flow(200, "0xt6", DEPOSIT, DOWN1, 1), flow(210, "0xt7", DOWN1, FAR, 1)])
    path = traced.path
    traced.close()
    bare = FastAPI()
    with open_workspace(path, create=False) as ws:
        bare.include_router(screen_router(Screener(Workspace(ws.path, ws.con.cursor()))))
        with TestClient(create_app(path)) as fast, TestClient(bare) as slow:
            for a in (THIEF, MULE, DEPOSIT, DOWN1, FAR, STRANGER, MULE.upper().replace("0X", "0x")):
                r1, r2 = fast.get(f"/api/screen/ethereum/{a}"), slow.get(f"/api/screen/ethereum/{a}")
                assert r1.status_code == r2.status_code == 200
                assert r1.content == r2.content
                assert r1.headers["content-type"] == "application/json"
                assert r1.headers["referrer-policy"] == "no-referrer"
            kinds = [fast.get(f"/api/screen/ethereum/{a}").json()["exposures"][0]["kind"]
                     for a in (MULE, FAR, STRANGER)]
            assert kinds == ["direct", "indirect", "none"]
            assert fast.head(f"/api/screen/ethereum/{MULE}").status_code == 405


def test_web_screen_needs_the_token_when_set(traced) -> None:
    from fastapi.testclient import TestClient

    from heisttrace.web.app import create_app

    path = traced.path
    traced.close()
    with TestClient(create_app(path, token="s3cret")) as client:
        r = client.get(f"/api/screen/ethereum/{MULE}")
        assert r.status_code == 401
        assert r.headers["x-content-type-options"] == "nosniff"
        r = client.get(f"/api/screen/ethereum/{MULE}", headers={"Authorization": "Bearer no"})
        assert r.status_code == 401
        r = client.get(f"/api/screen/ethereum/{MULE}", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and r.json()["risk"] == "high"
        assert "content-security-policy" in r.headers
        r = client.post("/api/screen", headers={"X-API-Token": "s3cret"},
                        json={"addresses": [{"chain": "ethereum", "address": MULE}]})
        assert r.status_code == 200
        assert "/api/screen/{chain}/{address}" in client.get(
            "/openapi.json?token=s3cret").json()["paths"]
