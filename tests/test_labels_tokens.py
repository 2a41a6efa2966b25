"""The token registry: real tokens from the etherscan token list, fakes from its spam label
and from spam detection; look-alikes and copies of registered tokens are fakes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shared_data import LABELS
from heisttrace.cli import app
from heisttrace.labels.detect import detect_all
from heisttrace.labels.importer import import_labels
from heisttrace.labels.roles import address_roles
from heisttrace.labels.spam import Registry, token_verdict
from heisttrace.labels.tokens import registry
from heisttrace.ledger import Workspace, open_workspace
from test_labels_ledger import ETH, Ledger, addr

ETHERSCAN = LABELS / "etherscan-labels" / "data" / "etherscan"
MKR = "0x9f8f72aa9304c8b593d555f12ef6589cc3a579a2"  # "Maker (MKR)" in combinedTokenLabels.json
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
SPAM_TOKEN_1 = "0x809eade17f09cd31407f61ad590dcf730553dbf8"  # accounts/spam-token.json


def _import_etherscan(ws: Workspace) -> None:
    import_labels(ws, [ETHERSCAN / "combined" / "combinedTokenLabels.json",
                       ETHERSCAN / "accounts" / "spam-token.json"])


def _by_address(ws: Workspace, fake_only: bool = False) -> dict[str, dict]:
    return {r["address"]: r for r in registry(ws, fake_only).to_pylist()}


def test_registry_from_the_real_token_list(workspace: Workspace) -> None:
    _import_etherscan(workspace)
    reg = _by_address(workspace)
    n_list = len(json.loads((ETHERSCAN / "combined" / "combinedTokenLabels.json").read_text()))
    assert sum(r["real"] is True for r in reg.values()) == n_list
    assert reg[MKR]["real"] is True and reg[MKR]["symbol"] == "MKR" and reg[MKR]["name"] == "Maker"
    assert reg[USDT]["real"] is True and reg[USDT]["symbol"] == "USDT"
    assert reg[SPAM_TOKEN_1]["real"] is False and "spam-token" in reg[SPAM_TOKEN_1]["reason"]
    assert set(_by_address(workspace, fake_only=True)) == {a for a, r in reg.items() if r["real"] is False}
    # The folder import reads combinedAllLabels.json instead; the registry is the same.
    ws2 = open_workspace(workspace.path.parent / "ws2")
    import_labels(ws2, [ETHERSCAN])
    assert {a: r["real"] for a, r in _by_address(ws2).items()} == {a: r["real"] for a, r in reg.items()}
    ws2.close()


def test_node_metadata_is_kept_and_gaps_filled(workspace: Workspace) -> None:
    workspace.con.execute("INSERT INTO tokens VALUES ('ethereum', ?, 'MKR', 'Maker', 18, 'rpc')", [MKR])
    _import_etherscan(workspace)
    row = workspace.con.execute("SELECT symbol, decimals, source FROM tokens WHERE address = ?", [MKR]).fetchone()
    assert row == ("MKR", 18, "rpc")
    assert _by_address(workspace)[MKR]["decimals"] == 18


def test_lookalikes_and_copies_of_registered_tokens(workspace: Workspace) -> None:
    _import_etherscan(workspace)
    reg = Registry.load(workspace)
    assert token_verdict("ethereum", MKR, "MKR", "Maker", reg) is None
    copy = token_verdict("ethereum", addr("mkr-copy"), "MKR", "Maker", reg)
    assert copy and "copies symbol and name" in copy and MKR in copy
    look = token_verdict("ethereum", addr("mkr-look"), "МKR", "Maker Token", reg)  # Cyrillic М
    assert look and "imitates registered token MKR" in look
    # Legit tokens share symbols (332 in the list): same symbol, other name is no evidence.
    assert token_verdict("ethereum", addr("other-mkr"), "MKR", "Mikro Rewards", reg) is None
    assert token_verdict("ethereum", SPAM_TOKEN_1, None, "Spam Token 1", reg)
    # Without the registry, the copy is not recognised: the label data is what finds it.
    assert token_verdict("ethereum", addr("mkr-copy"), "MKR", "Maker") is None


def test_fake_copy_is_ignored_and_the_real_token_is_not(workspace: Workspace, tmp_path: Path) -> None:
    _import_etherscan(workspace)
    fake = addr("mkr-copy")
    workspace.con.execute("INSERT INTO tokens VALUES ('ethereum', ?, 'MKR', 'Maker', 18, 'rpc')", [fake])
    led = Ledger()
    holder = addr("holder")
    led.pay(1, addr("x"), holder, 1 * ETH)
    led.pay(2, holder, addr("shop"), 5 * ETH, asset=MKR)
    led.pay(3, addr("poisoner"), holder, 100 * ETH, asset=fake)
    workspace.add_flows(led.table())
    detect_all(workspace)
    roles = {r["address"]: r["role"] for r in address_roles(workspace).to_pylist()}
    assert roles.get(fake) == "ignore" and roles.get(MKR) != "ignore"
    reg = _by_address(workspace)
    assert reg[fake]["real"] is False and "copies symbol and name" in reg[fake]["reason"]
    assert reg[MKR]["real"] is True
    path = workspace.path
    workspace.close()
    runner = CliRunner()
    res = runner.invoke(app, ["labels", "tokens", "--fake", "--json", "-w", str(path)])
    assert res.exit_code == 0, res.output
    fakes = {r["address"] for r in json.loads(res.stdout)}
    assert fake in fakes and SPAM_TOKEN_1 in fakes and MKR not in fakes
    res = runner.invoke(app, ["labels", "tokens", "-w", str(path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "real" in res.stdout and "fake" in res.stdout
