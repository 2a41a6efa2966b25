"""The ethereum-etl CSV layouts: column names in file order, one definition for the project.

The etl importer reads these files, the node mapper (`node_json`) produces rows in the same
shape so both paths share one flow mapping, and the simulator writes them. Source:
ethereum-etl `docs/schema.md` in ../shared/data/fixtures/ethereum-etl and its expected CSVs.
"""

from __future__ import annotations

BLOCK_COLUMNS = [
    "number", "hash", "parent_hash", "nonce", "sha3_uncles", "logs_bloom", "transactions_root",
    "state_root", "receipts_root", "miner", "difficulty", "total_difficulty", "size",
    "extra_data", "gas_limit", "gas_used", "timestamp", "transaction_count",
    "base_fee_per_gas", "withdrawals_root", "withdrawals",
]
TRANSACTION_COLUMNS = [
    "hash", "nonce", "block_hash", "block_number", "transaction_index", "from_address",
    "to_address", "value", "gas", "gas_price", "input", "block_timestamp", "max_fee_per_gas",
    "max_priority_fee_per_gas", "transaction_type",
]
# What etl's streaming export adds to each transaction once its receipt is known.
RECEIPT_ENRICHED_COLUMNS = [
    "receipt_cumulative_gas_used", "receipt_gas_used", "receipt_contract_address",
    "receipt_root", "receipt_status", "receipt_effective_gas_price",
]
RECEIPT_COLUMNS = [
    "transaction_hash", "transaction_index", "block_hash", "block_number",
    "cumulative_gas_used", "gas_used", "contract_address", "root", "status",
    "effective_gas_price",
]
# Rollup fee fields newer etl versions append to receipts.csv (empty on mainnet).
RECEIPT_L1_COLUMNS = ["l1_fee", "l1_gas_used", "l1_gas_price", "l1_fee_scalar"]
TOKEN_TRANSFER_COLUMNS = [
    "token_address", "from_address", "to_address", "value", "transaction_hash", "log_index",
    "block_number",
]
TRACE_COLUMNS = [
    "block_number", "transaction_hash", "transaction_index", "from_address", "to_address",
    "value", "input", "output", "trace_type", "call_type", "reward_type", "gas", "gas_used",
    "subtraces", "trace_address", "error", "status", "trace_id",
]
LOG_COLUMNS = [
    "log_index", "transaction_hash", "transaction_index", "block_hash", "block_number",
    "address", "data", "topics",
]
TOKEN_COLUMNS = ["address", "symbol", "name", "decimals", "total_supply", "block_number"]
