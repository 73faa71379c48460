# ruff: noqa: E501 - the coin table reads best one coin per line
"""The simulator's coins: well-known ones with their real CoinMarketCap ids, then made-up ones.

The catalogue does not depend on the seed (ids, names and supplies stay put); only prices and
volumes move with it. Magnitudes are round, plausible figures, not a snapshot of any day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

ETHEREUM = {"id": 1027, "name": "Ethereum", "symbol": "ETH", "slug": "ethereum"}


@dataclass(frozen=True)
class CoinSpec:
    id: int
    name: str
    symbol: str
    slug: str
    price: float  # typical USD price the walk wanders around
    circulating: float
    total: float
    max: float | None  # None = unlimited (infinite_supply true)
    daily_sigma: float  # log-price volatility per day
    volume_ratio: float  # typical 24h volume / market cap
    date_added: str = "2021-01-01T00:00:00.000Z"
    num_market_pairs: int = 100
    tags: tuple[str, ...] = ()
    token: bool = False  # an ERC-20 token (platform: Ethereum) rather than its own chain
    stable: bool = False
    peg: int | None = None  # follows this coin's price (wrapped assets)
    is_active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def platform(self) -> dict[str, Any] | None:
        if not self.token:
            return None
        return {**ETHEREUM, "token_address": f"0x{self.id:040x}"}


def _c(id_, name, symbol, slug, price, circ, total, max_, sigma, vol, added, pairs, tags, **kw):
    added_at = f"{added}T00:00:00.000Z"
    return CoinSpec(
        id_,
        name,
        symbol,
        slug,
        price,
        circ,
        total,
        max_,
        sigma,
        vol,
        added_at,
        pairs,
        tuple(tags),
        **kw,
    )


# fmt: off
# id, name, symbol, slug, price, circulating, total, max, sigma/day, volume/mcap, added, pairs
WELL_KNOWN: tuple[CoinSpec, ...] = (
    _c(1, "Bitcoin", "BTC", "bitcoin", 65_000, 19.7e6, 19.7e6, 21e6, 0.030, 0.035, "2013-04-28", 11_000, ["mineable", "pow", "store-of-value"]),
    _c(1027, "Ethereum", "ETH", "ethereum", 3_200, 120.2e6, 120.2e6, None, 0.038, 0.07, "2015-08-07", 9_000, ["pos", "smart-contracts"]),
    _c(825, "Tether USDt", "USDT", "tether", 1.0, 110e9, 112e9, None, 0.0004, 0.45, "2015-02-25", 90_000, ["stablecoin"], token=True, stable=True),
    _c(1839, "BNB", "BNB", "bnb", 580, 146e6, 146e6, 200e6, 0.035, 0.02, "2017-07-25", 2_000, ["exchange-token"]),
    _c(5426, "Solana", "SOL", "solana", 150, 465e6, 580e6, None, 0.055, 0.05, "2020-04-10", 700, ["pos", "smart-contracts"]),
    _c(52, "XRP", "XRP", "xrp", 0.55, 55e9, 99.99e9, 100e9, 0.045, 0.04, "2013-08-04", 1_100, ["payments"]),
    _c(3408, "USDC", "USDC", "usd-coin", 1.0, 33e9, 33e9, None, 0.0004, 0.2, "2018-10-08", 17_000, ["stablecoin"], token=True, stable=True),
    _c(2010, "Cardano", "ADA", "cardano", 0.45, 35.5e9, 36e9, 45e9, 0.048, 0.03, "2017-10-01", 900, ["pos", "smart-contracts"]),
    _c(74, "Dogecoin", "DOGE", "dogecoin", 0.15, 145e9, 145e9, None, 0.065, 0.06, "2013-12-15", 900, ["mineable", "memes"]),
    _c(1958, "TRON", "TRX", "tron", 0.12, 87e9, 87e9, None, 0.03, 0.03, "2017-09-13", 800, ["smart-contracts"]),
    _c(5805, "Avalanche", "AVAX", "avalanche", 35, 390e6, 445e6, 720e6, 0.055, 0.04, "2020-07-13", 600, ["smart-contracts"]),
    _c(6636, "Polkadot", "DOT", "polkadot-new", 7, 1.4e9, 1.45e9, None, 0.05, 0.04, "2020-08-19", 600, ["substrate"]),
    _c(1975, "Chainlink", "LINK", "chainlink", 15, 587e6, 1e9, 1e9, 0.05, 0.05, "2017-09-20", 1_600, ["oracles"], token=True),
    _c(3890, "Polygon", "MATIC", "polygon", 0.7, 9.3e9, 10e9, 10e9, 0.055, 0.04, "2019-04-28", 1_100, ["scaling"]),
    _c(2, "Litecoin", "LTC", "litecoin", 80, 74.5e6, 84e6, 84e6, 0.04, 0.05, "2013-04-28", 1_000, ["mineable", "pow"]),
    _c(5994, "Shiba Inu", "SHIB", "shiba-inu", 0.000025, 589e12, 589e12, None, 0.065, 0.05, "2020-08-01", 700, ["memes"], token=True),
    _c(1831, "Bitcoin Cash", "BCH", "bitcoin-cash", 450, 19.7e6, 19.7e6, 21e6, 0.045, 0.04, "2017-07-23", 800, ["mineable", "pow"]),
    _c(512, "Stellar", "XLM", "stellar", 0.11, 29e9, 50e9, 50e9, 0.04, 0.02, "2014-08-05", 500, ["payments"]),
    _c(7083, "Uniswap", "UNI", "uniswap", 10, 600e6, 1e9, 1e9, 0.055, 0.03, "2020-09-17", 900, ["defi", "dex"], token=True),
    _c(3794, "Cosmos", "ATOM", "cosmos", 8, 390e6, 390e6, None, 0.05, 0.04, "2019-03-14", 500, ["pos"]),
    _c(328, "Monero", "XMR", "monero", 150, 18.4e6, 18.4e6, None, 0.035, 0.03, "2014-05-21", 150, ["mineable", "privacy"]),
    _c(1321, "Ethereum Classic", "ETC", "ethereum-classic", 26, 147e6, 147e6, 210.7e6, 0.05, 0.05, "2016-07-24", 400, ["mineable", "pow"]),
    _c(11419, "Toncoin", "TON", "toncoin", 6.5, 2.5e9, 5.1e9, None, 0.045, 0.02, "2021-08-26", 200, ["pos"]),
    _c(6535, "NEAR Protocol", "NEAR", "near-protocol", 6, 1.08e9, 1.18e9, None, 0.06, 0.06, "2020-08-11", 400, ["pos"]),
    _c(21794, "Aptos", "APT", "aptos", 9, 430e6, 1.1e9, None, 0.06, 0.05, "2022-10-12", 300, ["pos"]),
    _c(8916, "Internet Computer", "ICP", "internet-computer", 12, 465e6, 520e6, None, 0.06, 0.02, "2021-03-23", 200, ["pos"]),
    _c(2280, "Filecoin", "FIL", "filecoin", 5.5, 560e6, 1.96e9, 1.96e9, 0.06, 0.06, "2017-12-13", 400, ["storage"]),
    _c(4642, "Hedera", "HBAR", "hedera", 0.1, 35.7e9, 50e9, 50e9, 0.05, 0.02, "2019-09-17", 200, ["dag"]),
    _c(11841, "Arbitrum", "ARB", "arbitrum", 1.0, 2.9e9, 10e9, 10e9, 0.06, 0.08, "2023-03-23", 600, ["scaling"], token=True),
    _c(11840, "Optimism", "OP", "optimism-ethereum", 2.5, 1.07e9, 4.29e9, 4.29e9, 0.06, 0.06, "2022-06-01", 400, ["scaling"]),
    _c(3077, "VeChain", "VET", "vechain", 0.035, 72.7e9, 86.7e9, 86.7e9, 0.05, 0.02, "2017-08-22", 200, ["logistics"]),
    _c(4943, "Dai", "DAI", "multi-collateral-dai", 1.0, 5.3e9, 5.3e9, None, 0.0004, 0.05, "2019-11-22", 1_900, ["stablecoin"], token=True, stable=True),
    _c(4030, "Algorand", "ALGO", "algorand", 0.18, 8.1e9, 10e9, 10e9, 0.05, 0.03, "2019-06-20", 300, ["pos"]),
    _c(7278, "Aave", "AAVE", "aave", 95, 14.8e6, 16e6, 16e6, 0.06, 0.08, "2020-10-02", 700, ["defi", "lending"], token=True),
    _c(1518, "Maker", "MKR", "maker", 2_800, 923e3, 977e3, 1.005e6, 0.055, 0.04, "2017-01-29", 300, ["defi"], token=True),
    _c(20947, "Sui", "SUI", "sui", 1.0, 1.3e9, 10e9, 10e9, 0.07, 0.1, "2023-05-03", 200, ["pos"]),
    _c(24478, "Pepe", "PEPE", "pepe", 0.00001, 420.69e12, 420.69e12, 420.69e12, 0.09, 0.15, "2023-04-17", 400, ["memes"], token=True),
    _c(3717, "Wrapped Bitcoin", "WBTC", "wrapped-bitcoin", 65_000, 155e3, 155e3, None, 0.0005, 0.03, "2019-01-30", 700, ["wrapped"], token=True, peg=1),
    _c(3957, "UNUS SED LEO", "LEO", "unus-sed-leo", 5.8, 925e6, 985e6, None, 0.02, 0.001, "2019-05-21", 30, ["exchange-token"], token=True),
)

# Tickers are not unique on CoinMarketCap; these share one with a famous coin so v2's list
# shape and the client's choice (configured id, else best-ranked active) are exercised.
NAMESAKES: tuple[CoinSpec, ...] = (
    _c(90001, "Solaris Protocol", "SOL", "solaris-protocol", 0.02, 40e6, 100e6, 100e6, 0.09, 0.1, "2022-02-02", 4, ["memes"], token=True),
    _c(90002, "Bitcoin Legacy Token", "BTC", "bitcoin-legacy-token", 0.003, 900e6, 1e9, 1e9, 0.1, 0.05, "2021-06-06", 2, [], token=True, is_active=False),
)
# fmt: on

_PREFIXES = (
    "Aether", "Nova", "Quant", "Lumen", "Zephyr", "Orbit", "Kryo", "Vela", "Astra", "Nimbus",
    "Helio", "Cobalt", "Tidal", "Ember", "Mosaic", "Prism", "Vertex", "Onyx", "Sable", "Cinder",
    "Polar", "Rune", "Flux", "Arbor", "Echo", "Glyph", "Harbor", "Ion", "Jade", "Kite",
)  # fmt: skip
_SUFFIXES = (
    "Chain", "Swap", "Protocol", "Network", "Finance", "Coin", "Token", "DAO", "Labs", "AI",
    "Verse", "Pay", "Bridge", "Vault", "Link",
)  # fmt: skip
_TAGS = ("defi", "gaming", "ai-big-data", "layer-2", "memes", "dex", "lending", "storage", "rwa")


def _made_up(count: int) -> list[CoinSpec]:
    # A fixed RNG: the catalogue must be identical for every seed and every run.
    rng = random.Random(20_240_501)
    taken_symbols = {c.symbol for c in WELL_KNOWN}
    names = [f"{p} {s}" for p in _PREFIXES for s in _SUFFIXES]
    rng.shuffle(names)
    coins, next_id = [], 30_000
    for name in names[:count]:
        words = name.split()
        symbol = (words[0][:3] + words[1][0]).upper()
        while symbol in taken_symbols:
            symbol = symbol[:-1] + rng.choice("XYZQJKW")
        taken_symbols.add(symbol)
        next_id += rng.randint(1, 97)
        price = 10 ** rng.uniform(-4, 2)
        market_cap = 10 ** rng.uniform(6.7, 9.5)
        circ = market_cap / price
        total = circ * rng.uniform(1.0, 1.6)
        max_ = total * rng.uniform(1.0, 2.0) if rng.random() < 0.6 else None
        year = rng.randint(2018, 2024)
        coins.append(
            CoinSpec(
                id=next_id,
                name=name,
                symbol=symbol,
                slug=name.lower().replace(" ", "-"),
                price=price,
                circulating=circ,
                total=total,
                max=max_,
                daily_sigma=rng.uniform(0.05, 0.12),
                volume_ratio=rng.uniform(0.01, 0.3),
                date_added=f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z",
                num_market_pairs=rng.randint(2, 300),
                tags=tuple(rng.sample(_TAGS, rng.randint(1, 3))),
                token=rng.random() < 0.7,
            )
        )
    return coins


CATALOG: tuple[CoinSpec, ...] = WELL_KNOWN + NAMESAKES + tuple(_made_up(180))
