from __future__ import annotations

import pyarrow as pa
import pytest

from heisttrace.ledger import FLOW_SCHEMA, Workspace, open_workspace
from heisttrace.ledger.workspace import WorkspaceError
from heisttrace.labels.roles import address_roles, load_role_map


def _flows(n: int, tx: str = "0xaa") -> pa.Table:
    rows = [
        dict(chain="ethereum", block=1, time=100, ordinal=i, tx_hash=tx, src="0x1", dst="0x2",
             asset="ETH", amount_out=str(10**18 + i), amount_in=str(10**18 + i), kind="native",
             dst_chain=None, dst_asset=None)
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=FLOW_SCHEMA)


def test_add_flows_is_idempotent(workspace: Workspace) -> None:
    assert workspace.add_flows(_flows(3)) == 3
    assert workspace.add_flows(_flows(5)) == 2
    assert workspace.count_flows() == 5
    amounts = workspace.flows()["amount_out"].to_pylist()
    assert amounts == [str(10**18 + i) for i in range(5)]


def test_failed_transaction_leaves_nothing(workspace: Workspace) -> None:
    workspace.add_flows(_flows(1))
    with pytest.raises(RuntimeError):
        with workspace.transaction():
            workspace.add_flows(_flows(4, tx="0xbb"))
            workspace.set_checkpoint("rpc", "7")
            raise RuntimeError("node died")
    assert workspace.count_flows() == 1
    assert workspace.checkpoint("rpc") is None


def test_missing_workspace_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(WorkspaceError, match="no workspace"):
        open_workspace(tmp_path / "nope", create=False)


def test_strongest_label_decides_role(workspace: Workspace) -> None:
    workspace.con.execute(
        """INSERT INTO labels (chain, address, entity, category, source, confidence) VALUES
        ('ethereum','0xa','Tornado Cash','mixing_service','s1',50),
        ('ethereum','0xa','OFAC','black_list','s2',50),
        ('ethereum','0xb','Binance','exchange','s1',100),
        ('ethereum','0xb','someone','perpetrator','s3',10),
        ('ethereum','0xc','x','user','s1',100)"""
    )
    roles = {r["address"]: r["role"] for r in address_roles(workspace).to_pylist()}
    assert roles == {"0xa": "dark", "0xb": "cash_out"}
    assert load_role_map()["exchange"] == "cash_out"
