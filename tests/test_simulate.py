"""The simulator: deterministic, streamed, in ethereum-etl / bitcoind / TagPack formats, and
its truth agrees with the money it wrote (checked by summing the CSVs in DuckDB)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from shared_data import ETL_FIXTURES
from heisttrace.ledger.schema import TRANSFER_TOPIC, WATCHED_TOPICS
from heisttrace.simulate import events
from heisttrace.simulate.actors import EXCH, THORCHAIN_ROUTER, USDT
from heisttrace.simulate.etl_writer import FILES
from heisttrace.simulate.run import simulate
from heisttrace.simulate.truth import BUCKETS


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "out"
    simulate("bybit", 30_000, 7, out)
    return out


def _fixture_header(name: str) -> list[str] | None:
    for p in sorted(ETL_FIXTURES.rglob(f"expected_{name}.csv")):
        with p.open() as f:
            return next(csv.reader(f))
    return None


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    simulate("bybit", 10_000, 11, tmp_path / "a")
    simulate("bybit", 10_000, 11, tmp_path / "b")
    simulate("bybit", 10_000, 12, tmp_path / "c")
    a, b, c = _digests(tmp_path / "a"), _digests(tmp_path / "b"), _digests(tmp_path / "c")
    assert len(a) > 100 and a == b
    for name in ("ethereum/transactions.csv", "ethereum/logs.csv", "truth.json", "theft.json"):
        assert a[name] != c[name], name


def test_csv_headers_are_ethereum_etl(sim: Path) -> None:
    checked = 0
    for name, cols in FILES.items():
        with (sim / "ethereum" / f"{name}.csv").open() as f:
            header = next(csv.reader(f))
        assert header == cols
        expected = _fixture_header(name)
        if expected is not None:
            # transactions.csv also carries the receipt_* columns etl adds with receipts.
            assert header[: len(expected)] == expected, name
            assert all(c.startswith("receipt_") for c in header[len(expected):])
            checked += 1
    assert checked >= 6


def test_rows_parse_and_logs_decode(sim: Path) -> None:
    eth = sim / "ethereum"
    con = duckdb.connect()
    txs = {r[0]: r for r in con.execute(
        f"SELECT hash, from_address, to_address, value, receipt_status FROM read_csv('{eth}/transactions.csv', all_varchar=true)").fetchall()}
    assert all(len(h) == 66 and h == h.lower() for h in txs)
    assert all(len(r[1]) == 42 and len(r[2]) == 42 for r in txs.values())
    logs = con.execute(f"SELECT transaction_hash, address, data, topics, log_index FROM read_csv('{eth}/logs.csv', all_varchar=true)").fetchall()
    tts = {(r[0], r[1]): r for r in con.execute(
        f"SELECT transaction_hash, log_index, from_address, to_address, value, token_address FROM read_csv('{eth}/token_transfers.csv', all_varchar=true)").fetchall()}
    truth = json.loads((sim / "truth.json").read_text())
    thieves = {t["address"] for t in truth["thief_addresses"]}
    seen = {"transfer": 0, "thorchain_deposit": 0, "univ2_swap": 0, "usdt_added_blacklist": 0}
    for tx_hash, address, data, topics, log_index in logs:
        t = topics.split(",")
        name = "transfer" if t[0][2:] == TRANSFER_TOPIC else WATCHED_TOPICS[t[0][2:]]
        seen[name] += 1
        if name == "transfer":
            tt = tts[(tx_hash, log_index)]
            assert tt[5] == address
            assert "0x" + t[1][-40:] == tt[2] and "0x" + t[2][-40:] == tt[3]
            assert events.decode_words(data) == [int(tt[4])]
        elif name == "thorchain_deposit":
            assert address == THORCHAIN_ROUTER and int(t[2], 16) == 0
            amount = events.decode_words(data)[0]
            memo = events.decode_string(data, 1)
            assert amount == int(txs[tx_hash][3]) and txs[tx_hash][2] == THORCHAIN_ROUTER
            assert memo.split(":")[1] in ("BTC.BTC", "b")
        elif name == "univ2_swap":
            assert len(events.decode_words(data)) == 4
        elif name == "usdt_added_blacklist":
            assert address == USDT and "0x" + data[-40:] in thieves
    assert all(seen.values()), seen
    assert len(tts) == seen["transfer"]
    theft = json.loads((sim / "theft.json").read_text())
    n_transfers = sum(1 for (h, _), _r in tts.items() if h == theft["tx_hash"])
    assert n_transfers == 3 and int(txs[theft["tx_hash"]][3]) > 0


def test_bitcoin_blocks_have_getblock_shape_and_balance(sim: Path) -> None:
    files = sorted((sim / "bitcoin").glob("block_*.json"))
    assert len(files) > 1000
    eth = sim / "ethereum"
    deposits = {r[0] for r in duckdb.sql(
        f"SELECT hash FROM read_csv('{eth}/transactions.csv', all_varchar=true) WHERE to_address = '{THORCHAIN_ROUTER}'").fetchall()}
    outs = 0
    prev = None
    for p in files:
        text = p.read_text()
        block = json.loads(text)
        assert {"hash", "height", "time", "tx", "previousblockhash", "nTx"} <= set(block)
        assert block["nTx"] == len(block["tx"]) and "coinbase" in block["tx"][0]["vin"][0]
        if prev:
            assert block["previousblockhash"] == prev
        prev = block["hash"]
        for tx in block["tx"][1:]:
            vin = sum(round(i["prevout"]["value"] * 1e8) for i in tx["vin"])
            vout = sum(round(o["value"] * 1e8) for o in tx["vout"])
            assert vin - vout == round(tx["fee"] * 1e8) and tx["fee"] > 0
            for o in tx["vout"]:
                spk = o["scriptPubKey"]
                if spk["type"] == "nulldata":
                    memo = bytes.fromhex(spk["hex"][4:]).decode()
                    assert spk["hex"][:4] == "6a" + f"{len(memo):02x}" and memo.startswith("OUT:")
                    assert "0x" + memo[4:].lower() in deposits
                    outs += 1
                else:
                    assert spk["address"].startswith("bc1q") and spk["hex"].startswith("0014")
    assert outs == len(deposits)


def test_btc_amounts_printed_with_eight_places(sim: Path) -> None:
    text = next((sim / "bitcoin").glob("block_*.json")).read_text()
    import re

    values = re.findall(r'"value":([0-9.]+)', text)
    assert values and all(len(v.split(".")[1]) == 8 for v in values)


def test_tagpack_has_known_entities_not_deposits(sim: Path) -> None:
    pack = yaml.safe_load((sim / "labels.yaml").read_text())
    assert pack["title"] and pack["creator"] and pack["tags"]
    for tag in pack["tags"]:
        for key in ("label", "source", "currency", "network", "confidence", "category", "address"):
            assert tag[key], key
    cats = {t["category"] for t in pack["tags"]}
    assert {"exchange", "defi_bridge", "defi_dex", "no_kyc_exchange", "mixing_service", "perpetrator"} <= cats
    addresses = {t["address"] for t in pack["tags"]}
    assert EXCH in addresses and THORCHAIN_ROUTER in addresses
    truth = json.loads((sim / "truth.json").read_text())
    assert not addresses & {d["address"] for d in truth["deposit_addresses"]}
    assert not addresses & set(truth["background_deposit_addresses"])
    perp = [t for t in pack["tags"] if t["category"] == "perpetrator"]
    assert perp[0]["actor"] == "lazarusgroup"


def test_truth_buckets_sum_to_stolen(sim: Path) -> None:
    truth = json.loads((sim / "truth.json").read_text())
    assert set(truth["buckets"]) == set(BUCKETS)
    assert sum(truth["buckets"].values()) == pytest.approx(truth["stolen"], rel=1e-9)
    assert sum(s["origin_amount"] for s in truth["sinks"]) == pytest.approx(truth["stolen"], rel=1e-9)
    assert len(truth["deposit_addresses"]) >= 100
    assert truth["spam"]["tokens"] and truth["spam"]["addresses"]


def test_shares_near_the_scenario_targets(tmp_path: Path) -> None:
    simulate("bybit", 120_000, 3, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    stolen = truth["stolen"]
    by_chain: dict[str, float] = {}
    for s in truth["sinks"]:
        by_chain[s["chain"]] = by_chain.get(s["chain"], 0.0) + s["origin_amount"]
    assert by_chain["bitcoin"] / stolen == pytest.approx(0.72, abs=0.02)
    exch = sum(s["origin_amount"] for s in truth["sinks"] if s["entity"] == "eXch")
    assert exch / stolen == pytest.approx(0.17, abs=0.02)
    assert truth["shares"]["frozen"] == pytest.approx(0.03, abs=0.005)
    assert truth["shares"]["fees"] < 0.01
    assert 0.9 * 120_000 < truth["flows"]["ethereum"] + truth["flows"]["bitcoin"] < 1.1 * 120_000


def test_thief_wallets_end_with_what_truth_says(sim: Path) -> None:
    """Sum every thief wallet's flows in the CSVs and JSON: it holds exactly its dormant
    (or frozen-in-place) amount from truth.json, asset by asset."""
    eth = sim / "ethereum"
    truth = json.loads((sim / "truth.json").read_text())
    expected: dict[tuple[str, str, str], int] = {}
    for s in truth["sinks"]:
        if s["bucket"] in ("dormant", "frozen"):
            key = (s["chain"], s["address"], s["asset"])
            expected[key] = expected.get(key, 0) + int(s["amount"])
    thieves = [t["address"] for t in truth["thief_addresses"] if t["chain"] == "ethereum"]
    spam = set(truth["spam"]["tokens"])
    con = duckdb.connect()
    con.execute("CREATE TABLE thief (a VARCHAR)")
    con.executemany("INSERT INTO thief VALUES (?)", [[a] for a in thieves])
    rows = con.execute(f"""
        WITH tx AS (SELECT * FROM read_csv('{eth}/transactions.csv', all_varchar=true)),
        tr AS (SELECT * FROM read_csv('{eth}/traces.csv', all_varchar=true) WHERE trace_address IS NOT NULL),
        tt AS (SELECT * FROM read_csv('{eth}/token_transfers.csv', all_varchar=true)),
        d AS (
          SELECT to_address a, 'ETH' asset, value::HUGEINT v FROM tx
          UNION ALL SELECT from_address, 'ETH', -(value::HUGEINT) - receipt_gas_used::HUGEINT * receipt_effective_gas_price::HUGEINT FROM tx
          UNION ALL SELECT to_address, 'ETH', value::HUGEINT FROM tr
          UNION ALL SELECT from_address, 'ETH', -(value::HUGEINT) FROM tr
          UNION ALL SELECT to_address, token_address, value::HUGEINT FROM tt
          UNION ALL SELECT from_address, token_address, -(value::HUGEINT) FROM tt)
        SELECT a, asset, sum(v)::VARCHAR FROM d WHERE a IN (SELECT a FROM thief) GROUP BY a, asset
    """).fetchall()
    checked = 0
    for a, asset, bal in rows:
        if asset in spam:
            continue
        assert int(bal) == expected.get(("ethereum", a, asset), 0), (a, asset)
        checked += 1
    assert checked >= 200
    # Bitcoin: outputs received minus outputs spent, per thief address.
    btc_thieves = {t["address"] for t in truth["thief_addresses"] if t["chain"] == "bitcoin"}
    bal: dict[str, int] = {}
    for p in (sim / "bitcoin").glob("block_*.json"):
        for tx in json.loads(p.read_text())["tx"]:
            for o in tx["vout"]:
                a = o["scriptPubKey"].get("address")
                if a in btc_thieves:
                    bal[a] = bal.get(a, 0) + round(o["value"] * 1e8)
            for i in tx["vin"]:
                a = i.get("prevout", {}).get("scriptPubKey", {}).get("address")
                if a in btc_thieves:
                    bal[a] = bal.get(a, 0) - round(i["prevout"]["value"] * 1e8)
    assert len(bal) == len(btc_thieves)
    for a, v in bal.items():
        assert v == expected.get(("bitcoin", a, "BTC"), 0), a


_PEAK = """
import resource, sys
from pathlib import Path
from heisttrace.simulate.run import simulate
simulate("bybit", int(sys.argv[1]), 1, Path(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kb(scale: int, out: Path) -> int:
    done = subprocess.run([sys.executable, "-c", _PEAK, str(scale), str(out)],
                          check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_memory_does_not_grow_with_scale(tmp_path: Path) -> None:
    small = _peak_kb(40_000, tmp_path / "s")
    large = _peak_kb(320_000, tmp_path / "l")
    assert large < small * 1.35 + 40_000, (small, large)


def test_cli_rejects_tiny_scale(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "heisttrace", "simulate", "--out", str(tmp_path / "x"),
                           "--scale", "50"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "--scale must be at least" in done.stderr
    assert "Traceback" not in done.stderr
