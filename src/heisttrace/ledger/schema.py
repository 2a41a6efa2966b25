"""The flows schema every importer produces and every later stage reads.

A flow moves `amount_out` units of `asset` out of the holding (chain, src, asset) and
`amount_in` units of `dst_asset` into (dst_chain, dst, dst_asset). The two sides differ only
for conversions (kind `swap` or `bridge`). Amounts are exact integers in base units (wei,
satoshi, token base units), kept as decimal strings because token values can exceed 128 bits.

(chain, block, ordinal) is a total order of flows on one chain; (chain, tx_hash, ordinal) is
a flow's identity, which is what makes imports idempotent.
"""

from __future__ import annotations

import pyarrow as pa

KINDS: tuple[str, ...] = ("native", "token", "internal", "utxo", "fee", "swap", "bridge")

# Where gas fees go. Fees leave the traced money for good, so they end in one sink per chain.
FEE_SINK = "fees"

# Ordinal layout inside a block, shared by every EVM importer so that the same transaction
# ingested from CSV, JSON or a node gets the same identity:
#   transaction_index * TX_STRIDE + position
# position 0 = the gas fee (paid before execution), 1 = the top-level value transfer,
# 2.. = internal value transfers in trace order, LOG_BASE + log_index = token transfers.
TX_STRIDE = 1 << 20
LOG_BASE = 1 << 19

NATIVE_ASSETS: dict[str, str] = {
    "ethereum": "ETH",
    "bitcoin": "BTC",
    "bsc": "BNB",
    "polygon": "POL",
    "arbitrum": "ETH",
    "base": "ETH",
    "optimism": "ETH",
    "litecoin": "LTC",
    "dogecoin": "DOGE",
    "bitcoin_cash": "BCH",
}


def native_asset(chain: str) -> str:
    """The asset name of a chain's native coin; tokens are named by their contract address."""
    return NATIVE_ASSETS.get(chain, chain.upper())


FLOW_SCHEMA = pa.schema(
    [
        pa.field("chain", pa.string(), nullable=False),
        pa.field("block", pa.int64(), nullable=False),
        pa.field("time", pa.int64(), nullable=False),
        pa.field("ordinal", pa.int64(), nullable=False),
        pa.field("tx_hash", pa.string(), nullable=False),
        pa.field("src", pa.string(), nullable=False),
        pa.field("dst", pa.string(), nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("amount_out", pa.string(), nullable=False),
        pa.field("amount_in", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        # Only conversions set these; null means "same as chain / asset".
        pa.field("dst_chain", pa.string()),
        pa.field("dst_asset", pa.string()),
    ]
)

FLOW_COLUMNS: list[str] = FLOW_SCHEMA.names
