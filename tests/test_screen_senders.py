"""The screening sender graph kept up to date by layers: after flows are only appended, the
base graph plus a layer of the new flows answers exactly as a graph rebuilt from the whole
ledger; a deletion or a change of superseded rows rebuilds."""

from __future__ import annotations

import random

import pytest

from heisttrace.ledger import Workspace
from heisttrace.screen import senders as G
from trace_helpers import add, flow

PEOPLE = ["0x" + f"{i:02x}" * 20 for i in range(1, 9)]


def _rows(rnd: random.Random, start: int, n: int) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        src, dst = rnd.sample(PEOPLE, 2)
        chain = "ethereum" if rnd.random() < 0.9 else "bsc"
        rows.append(flow(1000 + i, f"0x{i:06x}", src, dst, rnd.randrange(1, 10**6),
                         chain=chain, block=i, decimals=0))
    return rows


def _key(ws: Workspace) -> tuple:
    return tuple(ws.con.execute(G.KEY_SQL).fetchone())


def _answers(graph: G.Graph, fanout: int | None) -> dict:
    out = {}
    for chain in ("ethereum", "bsc"):
        for a in PEOPLE:
            rows = graph.senders(chain, [a], fanout)
            out[(chain, a)] = sorted((s, d, round(g, 6), graph.edge(r)) for g, s, d, r in rows)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_layer_answers_as_a_rebuild(workspace: Workspace, seed: int,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(G, "MAX_LAYER", 1.0)  # a small ledger: every pair is in the layer
    rnd = random.Random(seed)
    add(workspace, _rows(rnd, 0, 400))
    key0 = _key(workspace)
    graph, base_key = G.updated_graph(workspace, None, None, key0)
    assert isinstance(graph, G.SenderGraph) and base_key == key0
    for step in range(3):  # batches appended one after another, as a watch does
        add(workspace, _rows(rnd, 400 + 10 * step, 10))
        key = _key(workspace)
        graph, base_key = G.updated_graph(workspace, graph, base_key, key)
        assert isinstance(graph, G.LayeredSenderGraph) and base_key == key0
        full = G.SenderGraph(workspace)
        for fanout in (None, 3, G.FANOUT):
            assert _answers(graph, fanout) == _answers(full, fanout), (step, fanout)
        # heaviest first over several addresses at once, as the walk asks
        got = [g for g, *_ in graph.senders("ethereum", PEOPLE[:4])]
        assert got == sorted(got, reverse=True) and len(got) > 0


def test_deletion_superseded_or_a_big_layer_rebuild(workspace: Workspace) -> None:
    rnd = random.Random(9)
    add(workspace, _rows(rnd, 0, 100))
    key0 = _key(workspace)
    base, bkey = G.updated_graph(workspace, None, None, key0)
    add(workspace, _rows(rnd, 100, 5))
    workspace.delete_flows("block = ?", [100])
    key = _key(workspace)
    assert key[3] != key0[3]  # the deletion is counted
    graph, got_key = G.updated_graph(workspace, base, bkey, key)
    assert isinstance(graph, G.SenderGraph) and got_key == key
    assert _answers(graph, None) == _answers(G.SenderGraph(workspace), None)

    workspace.con.execute("INSERT INTO superseded SELECT chain, tx_hash, ordinal FROM flows "
                          "WHERE block = 7")
    add(workspace, _rows(rnd, 200, 1))
    key2 = _key(workspace)
    graph2, got2 = G.updated_graph(workspace, graph, got_key, key2)
    assert isinstance(graph2, G.SenderGraph) and got2 == key2

    add(workspace, _rows(rnd, 300, 60))  # more than MAX_LAYER of the base's pairs
    key3 = _key(workspace)
    graph3, got3 = G.updated_graph(workspace, graph2, got2, key3)
    assert isinstance(graph3, G.SenderGraph) and got3 == key3


def test_a_new_segment_rebuilds_and_later_appends_layer(workspace: Workspace,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk import arrives as a Parquet segment (not in flow_rows): the graph rebuilds with
    it; appends to flow_rows after that are layered as before."""
    monkeypatch.setattr(G, "MAX_LAYER", 1.0)
    rnd = random.Random(5)
    key0 = _key(workspace)  # an empty ledger, so `flow_rows` tops at rowid -1
    base, bkey = G.updated_graph(workspace, None, None, key0)
    add(workspace, _rows(rnd, 0, 50))  # stage them in flow_rows, then move them to a segment
    with workspace.transaction():
        path = workspace.write_segment("SELECT * FROM flow_rows")
        workspace.con.execute("DELETE FROM flow_rows")
        workspace.register_segment(path, "ethereum")
    key = _key(workspace)
    graph, got_key = G.updated_graph(workspace, base, bkey, key)
    assert isinstance(graph, G.SenderGraph) and got_key == key and len(graph) > 0
    assert _answers(graph, None) == _answers(G.SenderGraph(workspace), None)
    add(workspace, _rows(rnd, 50, 5))
    key2 = _key(workspace)
    graph2, got2 = G.updated_graph(workspace, graph, got_key, key2)
    assert isinstance(graph2, G.LayeredSenderGraph) and got2 == key
    assert _answers(graph2, None) == _answers(G.SenderGraph(workspace), None)
