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


# Event topics (topic0, no 0x) whose logs importers keep in `evm_logs` for later stages.
# Values from ../shared/REFERENCE.md section 1 (Keccak-256 of the event signatures).
WATCHED_TOPICS: dict[str, str] = {
    "e1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c": "weth_deposit",
    "7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65": "weth_withdrawal",
    "d78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822": "univ2_swap",
    "c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67": "univ3_swap",
    "8b3e96f2b889fa771c53c981b40daf005f63f637f1869f707052d15a3dd97140": "curve_exchange",
    "b2e76ae99761dc136e598d4a629bb347eccb9532a5f8bbd72e18467c3c34cc98": "curve_crypto_exchange",
    "143f1f8e861fbdeddd5b46e844b7d3ac7b86a122f36e8c463859ee6811b1f29c": "curve_ng_exchange",
    "2170c741c41531aec20e7c107c24eecfdd15e69c9bb0a8dd37b1840b9e0b207b": "balancer_swap",
    "42e160154868087d6bfdc0ca23d96a1c1cfa32f1b72ba9ba27b69b98a0d819dc": "usdt_added_blacklist",
    "61e6e66b0d6339b2980aecc6ccc0039736791f0ccde9ed512e789a7fbdd698c6": "usdt_destroyed_black_funds",
    "ffa4e6181777692565cf28528fc88fd1516ea86b56da075235fa575af6a4b855": "usdc_blacklisted",
    "d7e9ec6e6ecd65492dce6bf513cd6867560d49544421d0783ddf06e76c24470c": "usdt_removed_blacklist",
    "117e3210bb9aa7d9baff172026820255c6f6c30ba8999d1c2fd88e2848137c4e": "usdc_unblacklisted",
    "ef519b7eb82aaf6ac376a6df2d793843ebfd593de5f1a0601d3cc6ab49ebb395": "thorchain_deposit",
    "a9cd03aa3c1b4515114539cd53d22085129d495cb9e9f9af77864526240f1bf7": "thorchain_transfer_out",
}
TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
