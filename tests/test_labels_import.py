"""Label import on the real public label sets and on hand-written files, good and bad."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_data import LABELS
from heisttrace.errors import InputError
from heisttrace.labels.importer import import_labels
from heisttrace.labels.query import label_stats, show_address
from heisttrace.labels.roles import address_roles
from heisttrace.labels.tagpack import read_tagpack
from heisttrace.ledger import Workspace, open_workspace

PACKS = LABELS / "graphsense-tagpacks" / "packs"
OFAC = LABELS / "ofac-sanctioned-addresses"
ETHERSCAN = LABELS / "etherscan-labels" / "data" / "etherscan"
FORTA = LABELS / "forta-labelled-datasets" / "labels"
RONIN_EXPLOITER = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
TORNADO_POOLS = [  # REFERENCE.md section 7: 0.1 / 1 / 10 / 100 ETH
    "0x12d66f87a04a9e220743712ce6d9bb1b5616b8fc", "0x47ce0c6ed5b0ce3d3a51fdb1c52dc66a7c3c2936",
    "0x910cbd523d972eb0a6f4cae4618ad62622b39dbf", "0xa160cdab225685da1d56aa342ad8841c3b53f291",
]


def _count(ws: Workspace) -> int:
    return int(ws.con.execute("SELECT count(*) FROM labels").fetchone()[0])  # type: ignore[index]


def _roles(ws: Workspace) -> dict[tuple[str, str], str]:
    return {(r["chain"], r["address"]): r["role"] for r in address_roles(ws).to_pylist()}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, object]]:
    ws = open_workspace(tmp_path_factory.mktemp("full") / "ws")
    result = import_labels(ws, [LABELS])
    yield ws, result
    ws.close()


def test_everything_under_shared_labels_imports(full) -> None:  # type: ignore[no-untyped-def]
    ws, result = full
    # The data holds one mistyped checksum (0xA0DF…DDE22… should be …DDe22…), in three files;
    # those files are rejected whole, the other labels (> 540,000) are imported.
    rejected = sorted(r.split(",")[0] for r in result.rejected)
    assert sorted(Path(r).name for r in rejected) == [
        "etherscan-label-word-cloud.yaml", "etherscan_malicious_labels.csv", "phishing_scams.csv"
    ]
    assert all("0xA0DF9CA52e8aB5DDE22C55D9B3C2CDF814B9B773" in r and "line " in r for r in result.rejected)
    assert not any(str(Path(r)) in s for r in rejected for s in ws.con.execute(
        "SELECT DISTINCT source FROM labels").fetchnumpy()["source"])
    assert result.labels > 540_000 and _count(ws) == result.labels
    assert {"tagpack", "ofac", "etherscan", "forta"} <= set(result.by_format)
    # tag count of the packs: every `- address:` item of the real files (minus the two
    # invalid non-EVM addresses the packs contain, reported as warnings)
    skipped = [w for w in result.warnings if "skipped" in w]
    assert len(skipped) == 2


def test_ronin_exploiter_names_theft_and_lazarus(full) -> None:  # type: ignore[no-untyped-def]
    ws, _ = full
    info = show_address(ws, "0x098B716B8Aaf21512996dC57EB0615e2383E2f96")
    text = json.dumps(info["labels"]).lower()
    assert "ronin" in text and "lazarus" in text
    assert info["roles"][0]["role"] == "thief"


def test_tornado_pools_are_dark_and_exchanges_cash_out(full) -> None:  # type: ignore[no-untyped-def]
    ws, _ = full
    roles = _roles(ws)
    for pool in TORNADO_POOLS:
        assert roles[("ethereum", pool)] == "dark"
    info = show_address(ws, TORNADO_POOLS[2])
    assert any(lab["category"] == "mixing_service" for lab in info["labels"])
    for exchange in ("binance", "coinbase", "kraken", "okx"):
        with open(ETHERSCAN / "accounts" / f"{exchange}.csv") as fh:
            wallets = [row["Address"].lower() for row in csv.DictReader(fh)][:5]
        for w in wallets:
            assert roles[("ethereum", w)] == "cash_out", (exchange, w)


def test_stats_by_source_category_role(full) -> None:  # type: ignore[no-untyped-def]
    ws, result = full
    stats = label_stats(ws)
    assert stats["labels"] == result.labels
    assert sum(r["labels"] for r in stats["by_source"]) == result.labels
    roles = {r["role"]: r["addresses"] for r in stats["by_role"]}
    assert roles["cash_out"] > 100_000 and roles["dark"] > 1_000


def test_real_tornado_pack(workspace: Workspace) -> None:
    batch = read_tagpack(PACKS / "tornado_cash.yaml")
    text = (PACKS / "tornado_cash.yaml").read_text()
    n_items = len({line.split("'")[1].strip().lower() for line in text.splitlines() if line.startswith("- address:")})
    assert len(batch) == n_items  # one row per distinct address (the pack lists one twice)
    assert set(batch.category) == {"mixing_service"} and set(batch.confidence) == {60}
    assert set(batch.chain) == {"ethereum"} and set(batch.actor) == {"tornado"}
    assert all(a == a.lower() for a in batch.address)
    result = import_labels(workspace, [PACKS / "tornado_cash.yaml"])
    assert result.labels == n_items
    roles = _roles(workspace)
    assert all(roles[("ethereum", p)] == "dark" for p in TORNADO_POOLS)


def test_tagpack_inheritance_and_confidence(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "title: test pack\ncreator: me\ncategory: exchange\nconfidence: service_data\n"
        "currency: ETH\nactor: acme\nlabel: acme hot wallet\n"
        "tags:\n"
        "- address: '0xabCDeF0123456789AbcdEf0123456789aBCDEF01'\n"
        "- address: 'BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ'\n"
        "  currency: BTC\n  category: mixing_service\n  confidence: forensic_investigation\n"
        "- address: '3LYJfcfHPXYJreMsASk2jkn69LWEYKzexb'\n  currency: BTC\n  network: LTC\n"
    )
    b = read_tagpack(pack)
    assert b.address == ["0xabcdef0123456789abcdef0123456789abcdef01",
                         "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                         "3LYJfcfHPXYJreMsASk2jkn69LWEYKzexb"]
    assert b.chain == ["ethereum", "bitcoin", "litecoin"]  # network wins over currency
    assert b.category == ["exchange", "mixing_service", "exchange"]
    assert b.confidence == [50, 70, 50]
    assert b.actor == ["acme"] * 3 and b.entity == ["acme hot wallet"] * 3
    assert not b.warnings


def test_tagpack_missing_confidence_is_lowest_with_warning(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("title: t\ncreator: c\ncurrency: ETH\ntags:\n"
                    "- address: '0x1111111111111111111111111111111111111111'\n  label: x\n")
    b = read_tagpack(pack)
    assert b.confidence == [5] and b.warnings and "lowest" in b.warnings[0]


def test_tagpack_general_yaml_path(tmp_path: Path) -> None:
    # Folded description and nested context force the real (safe) YAML loader.
    pack = tmp_path / "p.yaml"
    pack.write_text("title: t\ncreator: c\ndescription: >\n  long\n  text\ncurrency: ETH\n"
                    "confidence: forensic\ntags:\n"
                    "  - address: '0x2222222222222222222222222222222222222222'\n"
                    "    label: a\n    context:\n      refs: [x, y]\n")
    b = read_tagpack(pack)
    assert b.address == ["0x2222222222222222222222222222222222222222"] and b.confidence == [50]


def test_malformed_yaml_names_file_and_line_and_changes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    import_labels(workspace, [PACKS / "tornado_cash.yaml"])
    before = _count(workspace)
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\ncreator: c\ncurrency: ETH\ntags:\n- address: '0x1'\n  label: [unclosed\n")
    good = tmp_path / "good.csv"
    good.write_text("chain,address,entity,category\nethereum,0x3333333333333333333333333333333333333333,x,exchange\n")
    with pytest.raises(InputError) as err:
        import_labels(workspace, [good, bad])
    assert err.value.file == str(bad) and err.value.line is not None and err.value.line >= 6
    assert _count(workspace) == before


def test_bad_evm_address_in_tagpack(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("title: t\ncreator: c\ncurrency: ETH\nconfidence: forensic\ntags:\n"
                    "- address: '0x1111111111111111111111111111111111111111'\n"
                    "- address: '0x12345'\n")
    with pytest.raises(InputError) as err:
        read_tagpack(pack)
    assert err.value.line == 7 and err.value.field == "address"


def test_ofac_lists(workspace: Workspace, tmp_path: Path) -> None:
    eth = OFAC / "sanctioned_addresses_ETH.txt"
    n = len([x for x in eth.read_text().splitlines() if x.strip()])
    r = import_labels(workspace, [eth, OFAC / "sanctioned_addresses_XBT.txt"])
    rows = workspace.con.execute(
        "SELECT chain, count(*) FROM labels GROUP BY chain ORDER BY chain").fetchall()
    counts = dict(rows)
    assert counts["ethereum"] == n and counts["bitcoin"] > 0 and r.labels == sum(counts.values())
    assert _roles(workspace)[("ethereum", RONIN_EXPLOITER)] == "thief"
    custom = tmp_path / "my_list.txt"
    custom.write_text("0x4444444444444444444444444444444444444444\n")
    with pytest.raises(InputError):
        import_labels(workspace, [custom], fmt="ofac")  # no chain in the name, no --chain
    import_labels(workspace, [custom], fmt="ofac", chain="bsc")
    assert workspace.con.execute(
        "SELECT chain FROM labels WHERE address = '0x4444444444444444444444444444444444444444'"
    ).fetchall() == [("bsc",)]


def test_etherscan_labels_csv_and_json(workspace: Workspace) -> None:
    r = import_labels(workspace, [ETHERSCAN / "accounts" / "binance.csv",
                                  ETHERSCAN / "accounts" / "tornado-cash.json"])
    with open(ETHERSCAN / "accounts" / "binance.csv") as fh:
        n_binance = sum(1 for _ in csv.DictReader(fh))
    n_tornado = len(json.loads((ETHERSCAN / "accounts" / "tornado-cash.json").read_text()))
    assert r.labels == n_binance + n_tornado
    ent = {e for (e,) in workspace.con.execute(
        "SELECT DISTINCT entity FROM labels WHERE category = 'exchange'").fetchall()}
    assert "Binance" in ent and "Binance 14" not in ent  # the counter is dropped
    assert r.by_category["mixing_service"] == n_tornado


def test_forta_csv(workspace: Workspace, tmp_path: Path) -> None:
    real = FORTA / "1" / "phishing_scams.csv"
    # The real file has one mistyped EIP-55 checksum: named on its own, it stops the import.
    with pytest.raises(InputError, match="EIP-55") as err:
        import_labels(workspace, [real])
    assert err.value.line == 4253 and _count(workspace) == 0
    # A copy (in tmp) with its addresses in lower case (no checksum claimed) imports whole.
    (tmp_path / "1").mkdir()
    f = tmp_path / "1" / "phishing_scams.csv"
    f.write_text(re.sub(r"0x[0-9a-fA-F]{40}", lambda m: m.group(0).lower(), real.read_text()))
    with open(f) as fh:
        n = len({(row["address"].lower(), row["etherscan_tag"]) for row in csv.DictReader(fh)})
    r = import_labels(workspace, [f])
    assert r.labels == n and r.by_category == {"perpetrator": n}


def test_plain_csv_and_errors(workspace: Workspace, tmp_path: Path) -> None:
    good = tmp_path / "mine.csv"
    good.write_text(
        "chain,address,entity,category,source,confidence,actor\n"
        "ethereum,0x5555555555555555555555555555555555555555,Acme,exchange,me,90,\n"
        "bitcoin,bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,Mixer,coinjoin,,authority_data,\n"
    )
    r = import_labels(workspace, [good])
    assert r.labels == 2
    assert workspace.con.execute("SELECT confidence FROM labels ORDER BY chain").fetchall() == [(60,), (90,)]
    before = _count(workspace)
    for body, line, field in [
        ("chain,address,entity,category\nethereum,0x5555555555555555555555555555555555555555,a,b\n"
         "ethereum,0x66666666666666666666666666666666666666,a,b\n", 3, "address"),
        ("chain,address,entity,category\nethereum,0x5555555555555555555555555555555555555555,a,b,extra\n", 2, None),
        ("chain,address,entity,category,confidence\nethereum,0x5555555555555555555555555555555555555555,a,b,high\n", 2, "confidence"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        with pytest.raises(InputError) as err:
            import_labels(workspace, [bad])
        assert err.value.file == str(bad) and err.value.line == line and err.value.field == field
        assert _count(workspace) == before


def test_reimport_is_idempotent_and_replaces(workspace: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text("chain,address,entity,category\n"
                 "ethereum,0x5555555555555555555555555555555555555555,Acme,exchange\n"
                 "ethereum,0x7777777777777777777777777777777777777777,Bad,perpetrator\n")
    import_labels(workspace, [f, PACKS / "tornado_cash.yaml"])
    n = _count(workspace)
    import_labels(workspace, [f, PACKS / "tornado_cash.yaml"])
    assert _count(workspace) == n
    f.write_text("chain,address,entity,category\n"
                 "ethereum,0x5555555555555555555555555555555555555555,Acme,exchange\n")
    import_labels(workspace, [f])
    assert _count(workspace) == n - 1


def test_html_in_labels_is_stored_verbatim_and_escaped_on_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from heisttrace.cli import app
    from heisttrace.cli.common import console

    monkeypatch.setattr(console, "width", 300)  # one line per cell, whatever the terminal

    evil = "<script>alert(1)</script>[red]boom[/red]"
    f = tmp_path / "evil.csv"
    f.write_text(f"chain,address,entity,category\nethereum,0x8888888888888888888888888888888888888888,\"{evil}\",exchange\n")
    ws = str(tmp_path / "ws")
    runner = CliRunner()
    res = runner.invoke(app, ["labels", "import", str(f), "-w", ws, "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["labels", "show", "0x8888888888888888888888888888888888888888", "-w", ws])
    assert res.exit_code == 0 and "[red]boom[/red]" in res.output and "<script>" in res.output
    res = runner.invoke(app, ["labels", "show", "0x8888888888888888888888888888888888888888", "-w", ws, "--json"])
    assert json.loads(res.output)["labels"][0]["entity"] == evil
