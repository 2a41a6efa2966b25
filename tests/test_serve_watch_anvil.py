"""`serve --watch`: the web server follows a real anvil node in its own process, so screening
answers include taint that moved after the server started. (DuckDB lets no second process open
a workspace that one process has open for writing, so a separate `heisttrace watch` beside
`heisttrace serve` is impossible.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from heisttrace.errors import HeisttraceError
from heisttrace.watch.background import WatchConfig
from heisttrace.web.app import create_app
from test_anvil_chain import ETH, Node, anvil_node  # noqa: F401
from test_watch_anvil import DEPOSIT, MULE1, THIEF, _wait, send_from, theft  # noqa: F401


def _screen(client: TestClient, address: str) -> dict:
    r = client.get(f"/api/screen/ethereum/{address}")
    assert r.status_code == 200, r.text
    return r.json()


def test_server_screens_what_its_watch_follows(theft: dict, tmp_path: Path) -> None:  # noqa: F811
    node: Node = theft["node"]
    alerts = tmp_path / "alerts.jsonl"
    said: list[str] = []
    app = create_app(theft["path"], watch=WatchConfig(
        node.url, cases=["heist"], interval=0.05, batch_blocks=5, alerts=alerts),
        log=said.append)
    with TestClient(app) as client:
        status = client.get("/api/watch").json()
        assert status["running"] and status["cases"] == ["heist"] and status["error"] is None
        assert _screen(client, MULE1)["risk"] == "none"

        send_from(node, THIEF, MULE1, 40 * ETH)
        send_from(node, MULE1, DEPOSIT, 10 * ETH)
        head = node.head()
        assert _wait(lambda: (client.get("/api/watch").json()["last_block"] or 0) >= head, 30)

        # the screening index picks the watch's batch up (it checks every 2 s)
        assert _wait(lambda: [e["kind"] for e in _screen(client, MULE1)["exposures"]]
                     == ["direct"], 30), said
        mule = _screen(client, MULE1)
        (exp,) = mule["exposures"]
        assert exp["kind"] == "direct" and exp["taint_received"] == pytest.approx(40)
        deposit = _screen(client, DEPOSIT)["exposures"][0]
        assert deposit["kind"] == "direct" and deposit["taint_received"] == pytest.approx(10)

        status = client.get("/api/watch").json()
        assert status["alerts"] == 1 and status["error"] is None and status["flows"] >= 2
        (alert,) = [json.loads(line) for line in alerts.read_text().splitlines()]
        assert alert["dst"] == DEPOSIT and alert["origin_taint"] == pytest.approx(10)
    # leaving the server stopped its watch
    assert not [t for t in threading.enumerate() if t.name == "heisttrace-watch"]
    assert any("following heist" in msg for msg in said)


def test_a_case_that_cannot_be_watched_stops_the_server_before_it_starts(
        theft: dict) -> None:  # noqa: F811
    with pytest.raises(HeisttraceError, match="no case 'nope'"):
        create_app(theft["path"], watch=WatchConfig(theft["node"].url, cases=["nope"]))


def test_a_dead_node_is_retried_while_the_server_answers(theft: dict) -> None:  # noqa: F811
    """Nothing listens on the port: the watch reports the error and keeps trying; the rest of
    the server is unaffected."""
    app = create_app(theft["path"], watch=WatchConfig(
        "http://127.0.0.1:9/v3/SECRETKEY", cases=["heist"], interval=0.05, retries=0))
    with TestClient(app) as client:
        assert _wait(lambda: client.get("/api/watch").json()["error"] is not None, 30)
        status = client.get("/api/watch").json()
        assert status["running"] and "127.0.0.1:9" in status["error"]
        assert "SECRETKEY" not in status["error"]  # a key in the node's URL is not shown
        assert client.get("/api/cases").status_code == 200
        assert _screen(client, THIEF)["exposures"][0]["kind"] == "direct"
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name == "heisttrace-watch"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_watch_options_need_watch(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from heisttrace.cli import app

    out = CliRunner().invoke(app, ["serve", "--case", "heist", "-w", str(tmp_path)])
    assert out.exit_code != 0
    assert isinstance(out.exception, HeisttraceError) and "--watch URL" in str(out.exception)


def test_case_states_stay_in_memory_between_batches(theft: dict, monkeypatch) -> None:  # noqa: F811
    """A watch loads a case's holdings once, not every batch; a failed batch (rolled back)
    or a re-trace makes it load them again, and nothing is counted twice."""
    from heisttrace.ledger import open_workspace
    from heisttrace.watch import state as S
    from heisttrace.watch.follow import Watcher

    node: Node = theft["node"]
    fresh = "0x" + "75" * 20
    loads = []
    real_load, real_save = S.load_case, S.save
    monkeypatch.setattr(S, "load_case", lambda ws, case: loads.append(case) or real_load(ws, case))
    with open_workspace(theft["path"]) as ws:
        watcher = Watcher(ws, node.url, cases=["heist"], batch_blocks=5)
        try:
            def origin() -> float:
                row = ws.con.execute("SELECT origin FROM watch_holdings WHERE case_name = "
                                     "'heist' AND address = ?", [fresh]).fetchone()
                return 0.0 if row is None else row[0]

            for n in (1, 2):
                send_from(node, THIEF, fresh, 1 * ETH)
                while watcher.step():
                    pass
                assert origin() == pytest.approx(n)
            assert loads == ["heist"]

            send_from(node, THIEF, fresh, 1 * ETH)
            monkeypatch.setattr(S, "save", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
            with pytest.raises(RuntimeError):
                watcher.step()
            monkeypatch.setattr(S, "save", real_save)
            assert origin() == pytest.approx(2)  # the failed batch left nothing
            while watcher.step():
                pass
            assert origin() == pytest.approx(3) and loads == ["heist", "heist"]

            ws.con.execute("UPDATE cases SET created_at = now() WHERE case_name = 'heist'")
            send_from(node, THIEF, fresh, 1 * ETH)
            while watcher.step():
                pass
            assert origin() == pytest.approx(4) and len(loads) == 3

            # address roles are made again only when the labels change
            roles, _ = watcher._roles()
            assert watcher._roles()[0] is roles
            ws.con.execute("INSERT INTO labels (chain, address, entity, category, source) "
                           "VALUES ('ethereum', ?, 'Ex2', 'deposit_wallet', 'test')", [fresh])
            again, _ = watcher._roles()
            assert again is not roles and again[("ethereum", fresh)][1] == "Ex2"
        finally:
            watcher.close()
