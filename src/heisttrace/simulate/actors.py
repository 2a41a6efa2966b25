"""Who is on the simulated chains: the victim, the thief, exchanges, DEX pools, the bridge,
the no-KYC swap service, mixers, spammers, and the ordinary users of the background.

Real contract addresses (REFERENCE.md section 7) are used where the detectors key on them
(THORChain router, Uniswap V2 router, 1inch v6, eXch, the tokens); everything else is
derived from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heisttrace.simulate import ids

THORCHAIN_ROUTER = "0xd37bbe5744d730a1d98d8dc97c42f0ca46ad7146"
UNIV2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
ONEINCH_V6 = "0x111111125421ca6dc452d289314280a0f8842a65"
EXCH = "0xf1da173228fcf015f43f3ea15abbb51f0d8f1123"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
STETH = "0xae7ab96520de3a18e5e111b5eaab095312d7fe84"
METH = "0xd5f7838f5c461feff7fe49ea5ebaf7728bb0adfa"
CMETH = "0xe6829d9a7ee3040e1276fa75293bde931859e8fa"
ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class Token:
    address: str
    symbol: str
    name: str
    decimals: int
    price: float  # USD at theft time
    supply: int


# Prices at theft time (USD), roughly those of 21 Feb 2025.
ETH_PRICE = 2750.0
BTC_PRICE = 96500.0
TOKENS: dict[str, Token] = {
    "USDT": Token(USDT, "USDT", "Tether USD", 6, 1.0, 10**17),
    "stETH": Token(STETH, "stETH", "Liquid staked Ether 2.0", 18, 2745.0, 9 * 10**24),
    "mETH": Token(METH, "mETH", "mETH", 18, 2890.0, 5 * 10**23),
    "cmETH": Token(CMETH, "cmETH", "cmETH", 18, 2890.0, 3 * 10**23),
    "WETH": Token(WETH, "WETH", "Wrapped Ether", 18, ETH_PRICE, 3 * 10**24),
}
# Look-alike symbols: Cyrillic Е (U+0415) and Н (U+041D) in place of Latin E and H.
SPAM_SYMBOLS = ["\u0415\u0422\u041d", "st\u0415\u0422H", "U\u0405DT"]

EXCHANGES = ["Binance", "OKX", "Kraken", "Coinbase", "KuCoin", "Bitget"]


@dataclass
class World:
    """Every named actor, derived from the seed; the background pools as hex matrices."""

    seed: int
    n_users: int
    n_deposits: int
    victim: str = ""
    tether_owner: str = ""
    thorchain_vault: str = ""
    btc_vault: tuple[str, str] = ("", "")
    hot_wallets: dict[str, str] = field(default_factory=dict)
    btc_hot_wallets: dict[str, tuple[str, str]] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)  # token symbol -> pair address
    spam_tokens: list[Token] = field(default_factory=list)
    users: np.ndarray = field(default_factory=lambda: np.empty((0, 40), np.uint8))
    deposits: np.ndarray = field(default_factory=lambda: np.empty((0, 40), np.uint8))
    deposit_exchange: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        s = self.seed
        self.victim = ids.address(s, "bybit cold wallet")
        self.tether_owner = ids.address(s, "tether owner")
        self.thorchain_vault = ids.address(s, "thorchain asgard vault")
        self.btc_vault = ids.btc_address(s, "thorchain btc vault")
        self.hot_wallets = {e: ids.address(s, "hot", e) for e in EXCHANGES}
        self.btc_hot_wallets = {e: ids.btc_address(s, "btc hot", e) for e in EXCHANGES}
        self.pairs = {sym: ids.address(s, "univ2 pair", sym) for sym in ("stETH", "mETH", "cmETH", "USDT")}
        self.spam_tokens = [
            Token(ids.address(s, "spam token", sym), sym, sym, 18, 0.0, 10**30)
            for sym in SPAM_SYMBOLS
        ]
        rng = np.random.default_rng([s, 101])
        self.users = ids.random_hex(rng, self.n_users, 20)
        self.deposits = ids.random_hex(rng, self.n_deposits, 20)
        self.deposit_exchange = rng.integers(0, len(EXCHANGES), self.n_deposits)

    @property
    def hot_matrix(self) -> np.ndarray:
        return ids.str_matrix([self.hot_wallets[e][2:] for e in EXCHANGES])

    def thief(self, *parts: object) -> str:
        """A fresh thief-controlled Ethereum address."""
        return ids.address(self.seed, "thief", *parts)

    def thief_btc(self, *parts: object) -> tuple[str, str]:
        return ids.btc_address(self.seed, "thief btc", *parts)
