"""The ledger: one table of flows for every chain and asset, kept in a workspace."""

from heisttrace.ledger.schema import FLOW_SCHEMA, KINDS, native_asset
from heisttrace.ledger.workspace import Workspace, open_workspace

__all__ = ["FLOW_SCHEMA", "KINDS", "Workspace", "native_asset", "open_workspace"]
