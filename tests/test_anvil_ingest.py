"""`ingest_rpc` against a real anvil node: every balance change is explained by the flows."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from heisttrace.cli import app
from heisttrace.ledger import open_workspace
from heisttrace.ledger.schema import FEE_SINK, LOG_BASE, TX_STRIDE
from heisttrace.sources.rpc import ingest_rpc
from heisttrace.sources.rpc_client import DEBUG_TRACE, PARITY_TRACE, RpcClient
from test_anvil_chain import ETH, TOKEN_SUPPLY, Chain, anvil_node, chain  # noqa: F401

ZERO = "0x" + "00" * 20


def flows_of(ws) -> list[dict]:
    return ws.con.execute("SELECT * FROM flows ORDER BY block, ordinal").fetch_arrow_table().to_pylist()


def net(flows: list[dict], asset: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for f in flows:
        if f["asset"] == asset:
            out[f["src"]] -= int(f["amount_out"])
            out[f["dst"]] += int(f["amount_in"])
    return out


@pytest.mark.parametrize("method", ["auto", DEBUG_TRACE, PARITY_TRACE])
def test_flows_explain_every_balance_change(chain: Chain, workspace, method: str) -> None:
    node, a = chain.node, chain.accounts
    report = ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block,
                        batch_blocks=3, trace_method=method)
    assert report.trace_method == (PARITY_TRACE if method == "auto" else method)
    assert report.receipts_method == "eth_getBlockReceipts"
    assert report.blocks == chain.last_block - chain.first_block + 1
    assert report.transactions == len(chain.txs)
    flows = flows_of(workspace)
    assert report.flows_added == len(flows) == workspace.count_flows()

    # ETH: balance after - balance before = flows in - flows out, fees included, wei for wei.
    # (The block's coinbase, here the zero address, gets priority fees, which go to FEE_SINK.)
    eth = net(flows, "ETH")
    holders = set(a) | {chain.token, chain.forwarder, chain.reverter, chain.tryer}
    for addr in holders:
        change = node.balance(addr, chain.last_block) - node.balance(addr, chain.first_block - 1)
        assert eth.get(addr, 0) == change, addr
    assert set(eth) - holders <= {FEE_SINK}
    # Fees: the sink receives gasUsed * effectiveGasPrice; of that the block's coinbase really
    # got the tip gasUsed * (effectiveGasPrice - baseFee), and the base fee was burned.
    tips = burned = 0
    for h in chain.txs.values():
        r = node.receipt(h)
        base = int(node.rpc("eth_getBlockByNumber", r["blockNumber"], False)["baseFeePerGas"], 16)
        used, price = int(r["gasUsed"], 16), int(r["effectiveGasPrice"], 16)
        tips += used * (price - base)
        burned += used * base
    coinbase = node.rpc("eth_getBlockByNumber", hex(chain.last_block), False)["miner"]
    assert coinbase not in holders
    assert node.balance(coinbase, chain.last_block) - node.balance(coinbase, chain.first_block - 1) == tips
    assert eth[FEE_SINK] == tips + burned

    # Token: all balances start at zero (deployed in range); mint comes from the zero address.
    tok = net(flows, chain.token)
    for addr in a:
        assert tok.get(addr, 0) == node.token_balance(chain.token, addr, chain.last_block), addr
    assert tok[ZERO] == -TOKEN_SUPPLY

    by_tx = defaultdict(list)
    for f in flows:
        by_tx[f["tx_hash"]].append(f)
    # Fees are gasUsed * effectiveGasPrice of the receipt, failed transactions pay only that.
    for name, h in chain.txs.items():
        r = node.receipt(h)
        fee = [f for f in by_tx[h] if f["kind"] == "fee"]
        assert len(fee) == 1 and fee[0]["dst"] == FEE_SINK
        assert int(fee[0]["amount_out"]) == int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
        assert fee[0]["ordinal"] == int(r["transactionIndex"], 16) * TX_STRIDE
        if r["status"] == "0x0":
            assert by_tx[h] == fee, name
    # The forwarder's inner call is an internal transfer; the reverted one left nothing.
    [internal] = [f for f in flows if f["kind"] == "internal" and f["tx_hash"] == chain.txs["forward"]]
    assert (internal["src"], internal["dst"], internal["amount_out"]) == (
        chain.forwarder, a[3], str(3 * ETH // 10))
    assert internal["ordinal"] % TX_STRIDE == 2
    # A successful transaction whose inner call reverted: the value stays with the tryer.
    assert [f["kind"] for f in by_tx[chain.txs["try_reverted_inner"]]] == ["fee", "native"]
    # Nested internal transfers are numbered in trace order: tryer -> forwarder -> a[8].
    nested = [(f["ordinal"] % TX_STRIDE, f["src"], f["dst"]) for f in by_tx[chain.txs["try_ok"]]
              if f["kind"] == "internal"]
    assert nested == [(2, chain.tryer, chain.forwarder), (3, chain.forwarder, a[8])]
    assert sum(1 for f in flows if f["kind"] == "internal") == 3
    [transfer] = [f for f in by_tx[chain.txs["token_transfer"]] if f["kind"] == "token"]
    assert (transfer["src"], transfer["dst"], transfer["amount_out"], transfer["asset"]) == (
        a[0], a[2], str(500 * ETH), chain.token)
    assert transfer["ordinal"] % TX_STRIDE >= LOG_BASE
    # Contract creation with value pays the new contract.
    [create] = [f for f in by_tx[chain.txs["deploy_reverter_with_value"]] if f["kind"] == "native"]
    assert (create["dst"], create["amount_out"]) == (chain.reverter, str(ETH // 10))

    assert workspace.con.execute("SELECT symbol, decimals, source FROM tokens WHERE address = ?",
                                 [chain.token]).fetchall() == [("TKN", 18, "rpc")]
    assert report.tokens_added == 1
    assert workspace.checkpoint(f"rpc:ethereum:{chain.url}") == str(chain.last_block)


def test_both_trace_paths_give_the_same_flows(chain: Chain, tmp_path) -> None:
    tables = []
    for method in (DEBUG_TRACE, PARITY_TRACE):
        with open_workspace(tmp_path / method) as ws:
            ingest_rpc(ws, chain.url, chain.first_block, chain.last_block, trace_method=method)
            tables.append(flows_of(ws))
    assert tables[0] == tables[1]


def test_second_run_skips_done_blocks_and_restart_adds_nothing(chain: Chain, workspace) -> None:
    seen: list[tuple[int, int]] = []
    first = ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block, batch_blocks=4,
                       progress=lambda done, total: seen.append((done, total)))
    n = chain.last_block - chain.first_block + 1
    assert seen == [(min(i, n), n) for i in range(4, n + 4, 4)]  # once per committed window
    before = flows_of(workspace)
    again = ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block)
    assert again.blocks == 0 and again.skipped_blocks == first.blocks and again.flows_added == 0
    redo = ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block, restart=True)
    assert redo.blocks == first.blocks and redo.flows_added == 0
    assert flows_of(workspace) == before
    # Redoing an early part keeps the checkpoint where it was.
    part = ingest_rpc(workspace, chain.url, chain.first_block, chain.first_block + 1, restart=True)
    assert part.blocks == 2 and part.checkpoint == chain.last_block
    assert workspace.checkpoint(f"rpc:ethereum:{chain.url}") == str(chain.last_block)
    assert workspace.con.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1


def test_request_batching_splits_calls(chain: Chain, workspace) -> None:
    with RpcClient(chain.url, batch_size=2) as small:
        ingest_rpc(workspace, chain.url, chain.first_block, chain.last_block,
                   batch_blocks=4, client=small)
        # Each window asks for 4 blocks (2 requests of 2), their receipts and traces the same.
        assert small.requests_sent >= 3 * (chain.last_block - chain.first_block + 1) // 2
    with RpcClient(chain.url, batch_size=100) as big:
        ws2 = open_workspace(workspace.path.parent / "ws2")
        ingest_rpc(ws2, chain.url, chain.first_block, chain.last_block, batch_blocks=100, client=big)
        assert big.requests_sent < small.requests_sent
        assert flows_of(ws2) == flows_of(workspace)
        ws2.close()


def test_cli_ingests_and_reports_json(chain: Chain, tmp_path) -> None:
    ws_dir = tmp_path / "cli-ws"
    result = CliRunner().invoke(app, [
        "ingest", "rpc", chain.url, "--from-block", str(chain.first_block),
        "--to-block", str(chain.last_block), "--batch-size", "2", "--json", "-w", str(ws_dir),
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["blocks"] == chain.last_block - chain.first_block + 1
    assert out["checkpoint"] == chain.last_block
    with open_workspace(ws_dir) as ws:
        assert ws.count_flows() == out["flows_added"] > 0
    result = CliRunner().invoke(app, [
        "ingest", "rpc", chain.url, "--from-block", str(chain.first_block),
        "--to-block", str(chain.last_block), "-w", str(ws_dir),
    ])
    assert result.exit_code == 0, result.output
    assert "ingested 0 blocks" in result.stdout and "already ingested" in result.stdout


def test_a_gap_after_the_checkpoint_is_reported(chain: Chain, workspace) -> None:
    f = chain.first_block
    ingest_rpc(workspace, chain.url, f, f + 1)
    later = ingest_rpc(workspace, chain.url, f + 4, f + 5)
    assert later.blocks == 2 and any(f"blocks {f + 2}-{f + 3} were never ingested" in n for n in later.notes)
    assert {r[0] for r in workspace.con.execute("SELECT DISTINCT block FROM flows").fetchall()} <= {f, f + 1, f + 4, f + 5}
