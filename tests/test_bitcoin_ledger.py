"""Hand-made blocks: spends across imports, prevouts, memos, reuse, errors, formats, CLI.

Blocks are written as the node prints them (values in BTC with 8 decimals, as JSON numbers
in the file) so the whole reading path runs, not a shortcut.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.ledger import Workspace, open_workspace
from heisttrace.ledger.schema import LOG_BASE, TX_STRIDE
from heisttrace.sources.bitcoin import FEE_POSITION, ingest_bitcoin, tx_node
from heisttrace.sources.bitcoin_json import normalize_address, op_return_text

ALICE = "1AliceAddressXXXXXXXXXXXXXXXXXXXX"
BOB = "1BobAddressXXXXXXXXXXXXXXXXXXXXXX"
CAROL = "bc1qcarolxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


def txid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def btc(sat: int) -> Decimal:
    return Decimal(sat).scaleb(-8).quantize(Decimal("0.00000001"))


def out(n: int, sat: int, address: str | None = None, **spk: Any) -> dict[str, Any]:
    script = {"hex": spk.pop("hex", "76a914" + "00" * 20 + "88ac"), "type": "pubkeyhash", **spk}
    if address:
        script["address"] = address
    return {"value": btc(sat), "n": n, "scriptPubKey": script}


def coinbase(label: str, outs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"txid": txid(label), "vin": [{"coinbase": "04ffff001d", "sequence": 1}], "vout": outs}


def spend(label: str, ins: list[tuple[str, int]], outs: list[dict[str, Any]], **extra: Any) -> dict:
    vin = [{"txid": txid(t), "vout": n, "sequence": 1} for t, n in ins]
    return {"txid": txid(label), "vin": vin, "vout": outs, **extra}


def block(height: int, txs: list[dict[str, Any]], time: int | None = None) -> dict[str, Any]:
    return {"hash": txid(f"block{height}"), "height": height,
            "time": time or 1_700_000_000 + 600 * height, "tx": txs}


def write_exact(path: Path, doc: Any) -> Path:
    """JSON with Decimals written as exact number literals, the way bitcoind prints them."""

    def mark(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"@@{value}@@"
        raise TypeError(value)

    text = json.dumps(doc, default=mark, indent=1)
    path.write_text(re.sub(r'"@@([-0-9.Ee+]+)@@"', r"\1", text))
    return path


def flows(ws: Workspace, tx: str | None = None) -> list[dict[str, Any]]:
    return ws.flows(tx=tx).to_pylist()


def test_exact_writer_keeps_decimals(tmp_path: Path) -> None:
    p = write_exact(tmp_path / "x.json", {"v": Decimal("0.29000000")})
    assert p.read_text() == '{\n "v": 0.29000000\n}'


def test_spend_of_an_earlier_block_in_a_later_import(workspace: Workspace, tmp_path: Path) -> None:
    b1 = block(100, [coinbase("cb100", [out(0, 50 * 10**8, ALICE)])])
    b2 = block(101, [
        coinbase("cb101", [out(0, 50 * 10**8, CAROL)]),
        spend("pay", [("cb100", 0)], [out(0, 30 * 10**8, BOB), out(1, 19 * 10**8 + 99_990_000, ALICE)]),
    ])
    ingest_bitcoin(workspace, [write_exact(tmp_path / "b100.json", b1)])
    report = ingest_bitcoin(workspace, [write_exact(tmp_path / "b101.json", b2)])
    assert report.inputs_unknown == 0 and report.fees_unknown == 0
    rows = flows(workspace, txid("pay"))
    node = tx_node(txid("pay"))
    spends = [r for r in rows if r["dst"] == node]
    assert [(r["src"], r["amount_out"], r["time"], r["block"]) for r in spends] == [
        (ALICE, str(50 * 10**8), b2["time"], 101)
    ]
    assert spends[0]["ordinal"] == 1 * TX_STRIDE + 0
    fee = [r for r in rows if r["kind"] == "fee"]
    assert [(r["src"], r["dst"], r["amount_out"]) for r in fee] == [(node, "fees", "10000")]
    assert fee[0]["ordinal"] == 1 * TX_STRIDE + FEE_POSITION
    outs = [(r["dst"], r["amount_out"], r["ordinal"]) for r in rows if r["src"] == node and r["kind"] == "utxo"]
    assert outs == [(BOB, "3000000000", TX_STRIDE + LOG_BASE), (ALICE, "1999990000", TX_STRIDE + LOG_BASE + 1)]
    # ledger order inside the transaction: inputs, outputs, fee
    assert [r["ordinal"] for r in rows] == sorted(r["ordinal"] for r in rows)
    assert rows[0]["dst"] == node and rows[-1]["kind"] == "fee"


def test_verbosity_3_prevout_values_the_input(workspace: Workspace, tmp_path: Path) -> None:
    tx = spend("v3", [("elsewhere", 3)], [out(0, 70_000, BOB)])
    tx["vin"][0]["prevout"] = {"generated": False, "height": 5, "value": Decimal("0.00100000"),
                               "scriptPubKey": {"hex": "0014" + "ab" * 20, "type": "witness_v0_keyhash",
                                                "address": CAROL.upper()}}
    ingest_bitcoin(workspace, [write_exact(tmp_path / "b.json", block(7, [coinbase("c7", [out(0, 1, ALICE)]), tx]))])
    rows = flows(workspace, txid("v3"))
    assert [(r["src"], r["amount_out"]) for r in rows if r["dst"] == tx_node(txid("v3"))] == [(CAROL, "100000")]
    assert [r["amount_out"] for r in rows if r["kind"] == "fee"] == ["30000"]


def test_node_fee_used_when_inputs_unknown_and_checked_when_known(
    workspace: Workspace, tmp_path: Path
) -> None:
    tx = spend("nodefee", [("unknown", 0)], [out(0, 5000, BOB)], fee=Decimal("0.00000700"))
    report = ingest_bitcoin(workspace, [write_exact(tmp_path / "a.json", block(3, [tx]))])
    assert report.inputs_unknown == 1 and report.fees_unknown == 0
    assert [r["amount_out"] for r in flows(workspace) if r["kind"] == "fee"] == ["700"]
    # a node fee that contradicts known inputs is bad data
    bad = spend("badfee", [("cb9", 0)], [out(0, 5000, BOB)], fee=Decimal("0.00000001"))
    path = write_exact(tmp_path / "b.json", [block(9, [coinbase("cb9", [out(0, 6000, ALICE)])]),
                                             block(10, [bad])])
    with pytest.raises(InputError) as err:
        ingest_bitcoin(workspace, [path])
    assert err.value.field == "fee" and txid("badfee") in str(err.value) and "b.json" in str(err.value)


def test_outputs_worth_more_than_inputs_is_an_error(workspace: Workspace, tmp_path: Path) -> None:
    path = write_exact(tmp_path / "x.json", [block(1, [coinbase("c1", [out(0, 100, ALICE)])]),
                                             block(2, [spend("over", [("c1", 0)], [out(0, 101, BOB)])])])
    with pytest.raises(InputError, match="do not balance"):
        ingest_bitcoin(workspace, [path])
    assert workspace.count_flows() == 0


THOR_OUT = "OUT:" + "9A0E3A9F1F7C2A64A3E47B0B8C6A2F4D1E2C3B4A5968778695A4B3C2D1E0F1A2"
THOR_IN = "=:e:0x4675c7e5baafbffbca748158becba61ef3b0a263:165425300/3/0:t:30"


def _nulldata(text: str) -> str:
    data = text.encode()
    push = bytes([len(data)]) if len(data) <= 75 else bytes([0x4C, len(data)])
    return "6a" + (push + data).hex()


def test_op_return_memos_are_stored(workspace: Workspace, tmp_path: Path) -> None:
    long_memo = THOR_IN + ":" + "x" * (80 - len(THOR_IN) - 1)
    assert len(long_memo) > 75  # needs OP_PUSHDATA1
    txs = [
        coinbase("c", [out(0, 625_000_000, ALICE), out(1, 0, hex=_nulldata("coinbase note"), type="nulldata")]),
        spend("thor-out", [("c", 0)], [out(0, 600_000_000, BOB), out(1, 0, hex=_nulldata(THOR_OUT), type="nulldata")]),
        spend("thor-in", [("thor-out", 0)], [out(0, 599_000_000, CAROL), out(1, 0, hex=_nulldata(long_memo), type="nulldata")]),
        spend("omni", [("thor-in", 0)], [out(0, 598_000_000, ALICE), out(1, 0, hex="6a14" + "ff" * 20, type="nulldata")]),
    ]
    b = block(800_000, txs)
    report = ingest_bitcoin(workspace, [write_exact(tmp_path / "m.json", b)])
    memos = workspace.con.execute(
        "SELECT chain, block, time, tx_hash, memo FROM tx_memos ORDER BY memo").fetchall()
    assert report.memos_added == 3
    assert sorted(memos) == sorted([
        ("bitcoin", 800_000, b["time"], txid("thor-in"), long_memo),
        ("bitcoin", 800_000, b["time"], txid("thor-out"), THOR_OUT),
        ("bitcoin", 800_000, b["time"], txid("c"), "coinbase note"),
    ])
    # zero-value OP_RETURN outputs move nothing
    assert all(not r["dst"].startswith("script:") for r in flows(workspace))
    assert ingest_bitcoin(workspace, [tmp_path / "m.json"]).memos_added == 0


def test_op_return_decoding() -> None:
    assert op_return_text(_nulldata("hello")) == "hello"
    assert op_return_text("6a4d0300" + b"abc".hex()) == "abc"  # PUSHDATA2
    assert op_return_text("6a") is None and op_return_text("76a9") is None
    assert op_return_text("6a05616263") is None  # truncated push
    assert op_return_text("6a02c328") is None  # not UTF-8


def test_nonstandard_and_multisig_outputs_get_script_addresses(workspace: Workspace, tmp_path: Path) -> None:
    bare = {"value": Decimal("1.00000000"), "n": 0,
            "scriptPubKey": {"hex": "5121" + "02" * 33 + "21" + "03" * 33 + "52ae", "type": "multisig",
                             "addresses": ["1KeyOneXXXXXXXXXXXXXXXXXXXXXXXXXX", "1KeyTwoXXXXXXXXXXXXXXXXXXXXXXXXXX"]}}
    odd = {"value": Decimal("2.00000000"), "n": 1,
           "scriptPubKey": {"hex": "AB" * 30, "type": "nonstandard"}}
    old = {"value": Decimal("3.00000000"), "n": 2,
           "scriptPubKey": {"hex": "76a9", "type": "pubkeyhash", "addresses": [ALICE]}}
    ingest_bitcoin(workspace, [write_exact(tmp_path / "s.json", block(4, [coinbase("s", [bare, odd, old])]))])
    dsts = [r["dst"] for r in flows(workspace)]
    assert dsts == ["script:" + ("5121" + "02" * 33)[:40], "script:" + "ab" * 20, ALICE]


def test_address_case_rules() -> None:
    assert normalize_address("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ") == "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    assert normalize_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_address_reuse(workspace: Workspace, tmp_path: Path) -> None:
    b = [
        block(1, [coinbase("r1", [out(0, 1000, ALICE), out(1, 2000, ALICE)])]),
        block(2, [coinbase("r2", [out(0, 4000, ALICE)]),
                  spend("merge", [("r1", 1), ("r2", 0), ("r1", 0)], [out(0, 6500, ALICE)])]),
    ]
    ingest_bitcoin(workspace, [write_exact(tmp_path / "r.json", b)])
    node = tx_node(txid("merge"))
    rows = workspace.flows(address=None, tx=txid("merge")).to_pylist()
    ins = [(r["ordinal"] - TX_STRIDE, r["src"], r["amount_out"]) for r in rows if r["dst"] == node]
    assert ins == [(0, ALICE, "2000"), (1, ALICE, "4000"), (2, ALICE, "1000")]
    assert [r["amount_out"] for r in rows if r["kind"] == "fee"] == ["500"]
    received = workspace.con.execute(
        "SELECT sum(amount_in::HUGEINT) FROM flows WHERE dst = ?", [ALICE]).fetchone()[0]
    sent = workspace.con.execute(
        "SELECT sum(amount_out::HUGEINT) FROM flows WHERE src = ?", [ALICE]).fetchone()[0]
    assert (received, sent) == (1000 + 2000 + 4000 + 6500, 7000)


def test_import_is_idempotent(workspace: Workspace, tmp_path: Path) -> None:
    b = [block(1, [coinbase("i1", [out(0, 1000, ALICE), out(1, 0, hex=_nulldata(THOR_OUT), type="nulldata")])]),
         block(2, [spend("i2", [("i1", 0)], [out(0, 900, BOB)])])]
    path = write_exact(tmp_path / "i.json", b)
    first = ingest_bitcoin(workspace, [path])
    snapshot = workspace.flows().to_pylist()
    again = ingest_bitcoin(workspace, [path, path])
    assert (first.flows_added, first.memos_added, first.outputs_added) == (4, 1, 3)
    assert (again.flows_added, again.memos_added, again.outputs_added) == (0, 0, 0)
    assert workspace.flows().to_pylist() == snapshot
    assert workspace.con.execute("SELECT count(*) FROM tx_memos").fetchone()[0] == 1


def _state(ws: Workspace) -> tuple:
    return (
        ws.flows().to_pylist(),
        ws.con.execute("SELECT * FROM utxo_outputs ORDER BY ALL").fetchall(),
        ws.con.execute("SELECT * FROM tx_memos ORDER BY ALL").fetchall(),
        ws.con.execute("SELECT count(*) FROM imports").fetchone(),
    )


@pytest.mark.parametrize(
    ("text", "fld", "line"),
    [
        ('{"height": 5, "time": 1, "tx": [{"txid": "%s", "vin": [], "vout": [{"n": 0, '
         '"scriptPubKey": {"hex": "00", "address": "1x"}}]}]}' % ("ab" * 32), "tx[0].vout[0].value", None),
        ('{"height": 5, "tx": []}', "time", None),
        ('{"height": 5, "time": 1, "tx": [{"txid": "%s", "vin": [{"txid": "zz", "vout": 0}], '
         '"vout": []}]}' % ("ab" * 32), "tx[0].vin[0].txid", None),
        ('{"height": 5, "time": 1, "tx": [{"txid": "%s", "vin": [], "vout": [{"n": 0, '
         '"value": 0.123456789, "scriptPubKey": {"hex": "00"}}]}]}' % ("ab" * 32), "tx[0].vout[0].value", None),
        ('{"result": null, "error": {"code": -5, "message": "Block not found"}, "id": 1}', "error", None),
        ('{"height": 5, "time": 1, "tx": []}\n{"height": 6, "time": 2, "tx": [\n', None, 2),
        ('{"hash": "%s", "block_number": 3, "block_timestamp": 1, "inputs": [], "outputs": '
         '[{"index": 0, "value": 1.5, "addresses": ["1x"]}]}' % ("ab" * 32), "outputs[0].value", None),
    ],
)
def test_malformed_file_names_where_and_writes_nothing(
    workspace: Workspace, tmp_path: Path, text: str, fld: str | None, line: int | None
) -> None:
    good = write_exact(tmp_path / "good.json", block(1, [coinbase("g", [out(0, 10, ALICE)])]))
    ingest_bitcoin(workspace, [good])
    before = _state(workspace)
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(InputError) as err:
        ingest_bitcoin(workspace, [good, bad])
    assert err.value.file == str(bad) and "bad.json" in str(err.value)
    assert err.value.field == fld and err.value.line == line
    assert _state(workspace) == before


def test_error_during_write_rolls_back(workspace: Workspace, tmp_path: Path) -> None:
    """An imbalance found in SQL (after outputs were inserted) still leaves nothing behind."""
    ingest_bitcoin(workspace, [write_exact(tmp_path / "a.json", block(1, [coinbase("w", [out(0, 10, ALICE)])]))])
    before = _state(workspace)
    bad = write_exact(tmp_path / "b.json", block(2, [coinbase("w2", [out(0, 5, BOB)]),
                                                     spend("w3", [("w", 0)], [out(0, 11, BOB)])]))
    with pytest.raises(InputError):
        ingest_bitcoin(workspace, [bad])
    assert _state(workspace) == before


def test_input_shapes(workspace: Workspace, tmp_path: Path) -> None:
    """RPC envelope, batch list, JSON lines, and a folder read in height order."""
    b = [block(h, [coinbase(f"f{h}", [out(0, 100 + h, ALICE)])]) for h in range(1, 5)]
    folder = tmp_path / "blocks"
    folder.mkdir()
    write_exact(folder / "z.json", {"result": b[0], "error": None, "id": 1})
    write_exact(folder / "y.json", [{"jsonrpc": "2.0", "result": b[1], "id": 2}, b[2]])
    (folder / "x.jsonl").write_text(
        json.dumps(json.loads(write_exact(tmp_path / "t.json", b[3]).read_text())) + "\n\n")
    (folder / "getblockcount.json").write_text("812345")
    (folder / "notes.txt").write_text("not json, not read")
    spender = spend("fx", [("f1", 0), ("f4", 0)], [out(0, 200, BOB)])
    write_exact(folder / "a.json", block(9, [coinbase("f9", [out(0, 1, BOB)]), spender]))
    report = ingest_bitcoin(workspace, [folder])
    assert (report.files, report.blocks, report.txs, report.skipped_documents) == (5, 5, 6, 1)
    assert report.inputs_unknown == 0
    assert [r["amount_out"] for r in flows(workspace, txid("fx")) if r["kind"] == "fee"] == ["5"]


def test_other_chains_use_their_asset(tmp_path: Path) -> None:
    path = write_exact(tmp_path / "l.json", block(1, [coinbase("l", [out(0, 5, "ltc1qabc")])]))
    for chain, asset in [("litecoin", "LTC"), ("dogecoin", "DOGE"), ("bitcoin_cash", "BCH")]:
        with open_workspace(tmp_path / chain) as ws:
            ingest_bitcoin(ws, [path], chain=chain)
            assert [(r["chain"], r["asset"]) for r in flows(ws)] == [(chain, asset)]


# -- property: every transaction whose inputs are known balances ---------------------------


@st.composite
def chains(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few blocks of random spends of still-unspent outputs, with random fees."""
    unspent: list[tuple[str, int, int]] = []
    blocks, counter = [], 0
    for height in range(1, draw(st.integers(1, 4)) + 1):
        txs = [coinbase(f"cb{height}", [out(0, draw(st.integers(1, 10**10)), ALICE)])]
        new = [(f"cb{height}", 0, int(Decimal(txs[0]["vout"][0]["value"]).scaleb(8)))]
        for _ in range(draw(st.integers(0, 4))):
            pool = unspent + new[:-1] if draw(st.booleans()) else unspent
            if not pool:
                break
            picks = draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=3, unique=True))
            chosen = [pool[i] for i in picks]
            for c in chosen:
                (unspent if c in unspent else new).remove(c)
            total = sum(v for *_, v in chosen)
            fee = draw(st.integers(0, total))
            n_out = draw(st.integers(1, 3))
            cuts = sorted(draw(st.lists(st.integers(0, total - fee), min_size=n_out - 1, max_size=n_out - 1)))
            values = [b - a for a, b in zip([0, *cuts], [*cuts, total - fee])]
            counter += 1
            label = f"t{counter}"
            addrs = [draw(st.sampled_from([ALICE, BOB, CAROL])) for _ in values]
            txs.append(spend(label, [(t, n) for t, n, _ in chosen],
                             [out(k, v, a) for k, (v, a) in enumerate(zip(values, addrs))]))
            new += [(label, k, v) for k, v in enumerate(values)]
        unspent += new
        blocks.append(block(height, txs))
    return blocks


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=chains(), split=st.integers(0, 4), batch=st.sampled_from([1, 3, 50_000]),
       reverse=st.booleans())
def test_known_inputs_balance(
    tmp_path_factory: pytest.TempPathFactory, blocks: list, split: int, batch: int, reverse: bool
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    with open_workspace(folder / "ws") as ws:
        # some blocks in a first import, the rest in a second: history carries over
        # small batches and files out of height order: spends wait for their outputs
        for k, part in enumerate((blocks[:split], blocks[split:])):
            if part:
                files = [write_exact(folder / f"p{k}-{b['height']}.json", b) for b in part]
                report = ingest_bitcoin(ws, files[::-1] if reverse else files, batch_txs=batch)
                assert report.inputs_unknown == report.fees_unknown == 0
        rows = ws.con.execute(
            """
            WITH t AS (SELECT tx_hash, sum(CASE WHEN dst = 'tx:' || tx_hash THEN amount_in::HUGEINT ELSE 0 END) inflow,
                              sum(CASE WHEN src = 'tx:' || tx_hash AND kind = 'utxo' THEN amount_out::HUGEINT ELSE 0 END) outs,
                              sum(CASE WHEN kind = 'fee' THEN amount_out::HUGEINT ELSE 0 END) fee,
                              count(*) FILTER (WHERE dst = 'tx:' || tx_hash) n_in
                       FROM flows GROUP BY tx_hash)
            SELECT tx_hash, inflow, outs, fee, n_in FROM t
            """
        ).fetchall()
        assert rows
        for tx_hash, inflow, outs, fee, n_in in rows:
            if n_in:  # not a coinbase: all inputs are known here by construction
                assert inflow == outs + fee, tx_hash
            else:
                assert fee == 0
        assert ws.con.execute("SELECT count(*) FROM flows WHERE amount_out::HUGEINT <= 0").fetchone()[0] == 0


# -- CLI ------------------------------------------------------------------------------------


def test_cli_result_line_and_json(tmp_path: Path) -> None:
    path = write_exact(tmp_path / "c.json", [block(1, [coinbase("cli", [out(0, 10, ALICE), out(1, 0, hex=_nulldata(THOR_OUT), type="nulldata")])])])
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", "bitcoin", str(path), "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    assert "bitcoin: 1 blocks, 1 txs, 1 flows added, 1 memos" in res.output
    res = runner.invoke(app, ["ingest", "bitcoin", str(path), "-w", str(tmp_path / "ws"), "--json", "--chain", "bitcoin"])
    assert res.exit_code == 0
    assert json.loads(res.output)["flows_added"] == 0


def test_cli_bad_file_is_one_red_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"height": 1, "time": 1, "tx": [{"txid": "nope", "vin": [], "vout": []}]}')
    proc = subprocess.run(
        [sys.executable, "-m", "heisttrace", "ingest", "bitcoin", str(bad), "-w", str(tmp_path / "ws")],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "1000"},
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "bad.json" in proc.stderr and "tx[0].txid" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_or_empty_inputs_are_errors(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank.json").write_text("  \n")
    for path, message in [(tmp_path / "empty", "no .json"), (tmp_path / "blank.json", "empty file"),
                          (tmp_path / "nope.json", "no such file")]:
        with pytest.raises(InputError, match=message) as err:
            ingest_bitcoin(workspace, [path])
        assert err.value.file == str(path)
