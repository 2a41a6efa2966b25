"""Blocks and clocks of the simulated chains around the theft (21 Feb 2025).

Ethereum blocks every 12 s, Bitcoin every 600 s; both run from half a day before the theft
to 12 days after, so the ~10 days of bridging and the tail fit in.
"""

from __future__ import annotations

ETH_BLOCK_TIME = 12
BTC_BLOCK_TIME = 600
THEFT_BLOCK = 21_895_238
START_TIME = 1_740_100_000  # 21 Feb 2025, a few hours before the theft
PRE_BLOCKS = 3_600  # half a day of history before the theft
POST_BLOCKS = 12 * 7_200
START_BLOCK = THEFT_BLOCK - PRE_BLOCKS
END_BLOCK = THEFT_BLOCK + POST_BLOCKS  # exclusive
BTC_START_HEIGHT = 884_200


def eth_time(block: int) -> int:
    return START_TIME + (block - START_BLOCK) * ETH_BLOCK_TIME


def btc_time(height: int) -> int:
    return START_TIME + (height - BTC_START_HEIGHT) * BTC_BLOCK_TIME + 17


def btc_height_at(t: int) -> int:
    """The first Bitcoin block at or after time t (clamped to the simulated range)."""
    h = BTC_START_HEIGHT + max(0, -(-(t - START_TIME - 17) // BTC_BLOCK_TIME))
    return min(h, BTC_END_HEIGHT - 1)


BTC_END_HEIGHT = BTC_START_HEIGHT + (eth_time(END_BLOCK) - START_TIME) // BTC_BLOCK_TIME
