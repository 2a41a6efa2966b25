"""EIP-55: a mixed-case EVM address in a label file must carry a valid checksum.

The addresses are real ones from the etherscan-labels token list; the corrupted one differs
by the case of one letter, which only a Keccak-256 checksum can catch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_data import LABELS
from heisttrace.cli import app
from heisttrace.errors import InputError
from heisttrace.labels.importer import import_labels
from heisttrace.labels.normalize import ChecksumInputError, normalize_address, to_checksum
from heisttrace.ledger import Workspace, open_workspace

TOKENS = LABELS / "etherscan-labels" / "data" / "etherscan" / "combined" / "combinedTokenLabels.json"
LENDROID = "0x4de2573e27E648607B50e1Cfff921A33E4A34405"  # real checksummed entry of TOKENS


def _mixed(addresses: list[str]) -> list[str]:
    return [a for a in addresses if a[2:] not in (a[2:].lower(), a[2:].upper())]


def _corrupt(address: str) -> str:
    """Flip the case of the first letter: same address, broken checksum."""
    i = next(i for i, c in enumerate(address) if i >= 2 and c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1:]


def _count(ws: Workspace) -> int:
    return int(ws.con.execute("SELECT count(*) FROM labels").fetchone()[0])  # type: ignore[index]


def test_real_checksummed_addresses_pass_and_corrupted_fail() -> None:
    mixed = _mixed(list(json.loads(TOKENS.read_text())))
    assert len(mixed) > 1000 and LENDROID in mixed
    assert all(to_checksum(a[2:]) == a[2:] for a in mixed)
    assert normalize_address("ethereum", LENDROID) == LENDROID.lower()
    assert normalize_address("ethereum", "0x" + LENDROID[2:].upper()) == LENDROID.lower()
    for a in mixed[:200]:
        with pytest.raises(ValueError, match="EIP-55"):
            normalize_address("ethereum", _corrupt(a))


@pytest.mark.parametrize("fmt", ["csv", "tagpack", "etherscan_json", "etherscan_csv", "forta", "ofac"])
def test_every_importer_rejects_a_wrong_checksum(fmt: str, tmp_path: Path) -> None:
    bad = _corrupt(LENDROID)
    good = "0x" + "7" * 40
    if fmt == "csv":
        f = tmp_path / "mine.csv"
        f.write_text(f"chain,address,entity,category\nethereum,{good},a,exchange\nethereum,{bad},b,exchange\n")
        line = 3
    elif fmt == "tagpack":
        f = tmp_path / "pack.yaml"
        f.write_text("title: t\ncreator: c\ncurrency: ETH\nconfidence: forensic\ntags:\n"
                     f"- address: '{good}'\n  label: a\n- address: '{bad}'\n  label: b\n")
        line = 8
    elif fmt == "etherscan_json":
        f = tmp_path / "exchange.json"
        f.write_text(json.dumps({good: "A", bad: "B"}))
        line = None
    elif fmt == "etherscan_csv":
        f = tmp_path / "binance.csv"
        f.write_text(f",Address,Name Tag,Balance,Txn Count\n0,{good},A,0,1\n1,{bad},B,0,1\n")
        line = 3
    elif fmt == "forta":
        (tmp_path / "1").mkdir()
        f = tmp_path / "1" / "phishing_scams.csv"
        f.write_text(f"address,etherscan_tag,etherscan_labels,is_contract\n{good},a,x,False\n{bad},b,x,False\n")
        line = 3
    else:
        f = tmp_path / "sanctioned_addresses_ETH.txt"
        f.write_text(f"{good}\n{bad}\n")
        line = 2
    ws = open_workspace(tmp_path / "ws")
    with pytest.raises(ChecksumInputError) as err:
        import_labels(ws, [f])
    assert err.value.file == str(f) and err.value.line == line and err.value.field is not None
    assert bad in str(err.value) and "EIP-55" in str(err.value)
    assert _count(ws) == 0  # nothing from the file, not even the good row
    # The same file with the address in one case (no checksum claimed) imports.
    f.write_text(f.read_text().replace(bad, bad.lower()))
    assert import_labels(ws, [f]).labels == 2
    ws.close()


def test_folder_leaves_out_the_bad_file_and_strict_stops(tmp_path: Path) -> None:
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "a.csv").write_text(f"chain,address,entity,category\nethereum,{LENDROID},Lendroid,token\n")
    bad = folder / "b.csv"
    bad.write_text(f"chain,address,entity,category\nethereum,0x{'8' * 40},x,exchange\n"
                   f"ethereum,{_corrupt(LENDROID)},y,exchange\n")
    ws = open_workspace(tmp_path / "ws")
    r = import_labels(ws, [folder])
    assert r.labels == 1 and r.files == 1 and len(r.rejected) == 1
    assert str(bad) in r.rejected[0] and "line 3" in r.rejected[0]
    assert ws.con.execute("SELECT address FROM labels").fetchall() == [(LENDROID.lower(),)]
    with pytest.raises(InputError):
        import_labels(ws, [folder], strict=True)
    assert _count(ws) == 1
    ws.close()


def test_cli_names_file_and_line_and_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text(f"chain,address,entity,category\nethereum,{_corrupt(LENDROID)},x,exchange\n")
    res = subprocess.run([sys.executable, "-m", "heisttrace", "labels", "import", str(f), "-w",
                          str(tmp_path / "ws")], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    assert res.returncode == 1
    assert "mine.csv, line 2" in res.stderr and "EIP-55" in res.stderr and "Traceback" not in res.stderr
    # Found inside a folder, the file is left out and named in red; the rest is imported.
    (tmp_path / "ok.csv").write_text(f"chain,address,entity,category\nethereum,{LENDROID},Lendroid,token\n")
    res = CliRunner().invoke(app, ["labels", "import", str(tmp_path), "-w", str(tmp_path / "ws"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["labels"] == 1 and "mine.csv, line 2" in out["rejected_files"][0]
