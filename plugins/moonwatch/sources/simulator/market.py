"""The simulator's market: seeded random walks that need no state.

Each coin's log price is a pure function of (seed, coin, minute). Day-open levels come from a
Brownian bridge between independent "era" anchors 256 days apart, and each day's minutes from a
Brownian bridge between consecutive day opens, built by midpoint displacement with hashed
normal draws. Any minute, past or future, costs ~20 hashes: the server computes history on
demand, and percent changes are taken from that same history, so they agree exactly.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from threading import Lock
from typing import Any

from moonwatch.sources.simulator.catalog import CATALOG, CoinSpec

MINUTES_PER_DAY = 1440
ERA_DAYS = 256
_VOLUME_SIGMA = 0.25  # log-volume moves much more than price from day to day
CHANGE_WINDOWS = {
    "1h": 60,
    "24h": 1440,
    "7d": 7 * 1440,
    "30d": 30 * 1440,
    "60d": 60 * 1440,
    "90d": 90 * 1440,
}


# Memoised: a path's upper midpoints are shared by every nearby minute, so a run of minutes
# (a snapshot's percent changes, a day of history) mostly re-reads draws it already made.
# ~150 bytes an entry; pure, so the cache never changes an answer.
@functools.lru_cache(maxsize=1 << 17)
def normal(*key: object) -> float:
    """A standard normal draw fixed by ``key`` (Box-Muller on a keyed hash)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64
    u2 = int.from_bytes(digest[8:], "big") / 2.0**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def bridge(key: tuple, lo: int, hi: int, v_lo: float, v_hi: float, t: int, sigma: float) -> float:
    """The value at ``t`` of a Brownian bridge from (lo, v_lo) to (hi, v_hi), per-unit ``sigma``.

    Midpoints are drawn by interval, so every ``t`` sees the same path (Lévy's construction).
    """
    while True:
        if t == lo:
            return v_lo
        if t == hi:
            return v_hi
        mid = (lo + hi) // 2
        mean = v_lo + (v_hi - v_lo) * (mid - lo) / (hi - lo)
        spread = sigma * math.sqrt((mid - lo) * (hi - mid) / (hi - lo))
        v_mid = mean + spread * normal(*key, lo, hi)
        if t < mid:
            hi, v_hi = mid, v_mid
        else:
            lo, v_lo = mid, v_mid


def walk(key: tuple, minute: int, daily_sigma: float, anchor_sd: float) -> float:
    """A stationary-ish random walk in log space, around 0, at ``minute`` since the epoch."""
    day, within = divmod(minute, MINUTES_PER_DAY)

    def day_open(d: int) -> float:
        era = d // ERA_DAYS
        lo, hi = era * ERA_DAYS, (era + 1) * ERA_DAYS
        a_lo = anchor_sd * normal(*key, "era", era)
        a_hi = anchor_sd * normal(*key, "era", era + 1)
        return bridge((*key, "day", era), lo, hi, a_lo, a_hi, d, daily_sigma)

    start = day_open(day)
    if within == 0:
        return start
    per_minute = daily_sigma / math.sqrt(MINUTES_PER_DAY)
    return bridge(
        (*key, "min", day), 0, MINUTES_PER_DAY, start, day_open(day + 1), within, per_minute
    )


def iso_minute(minute: int) -> str:
    """``2025-05-01T12:34:00.000Z``: the API's timestamp style."""
    moment = datetime.fromtimestamp(minute * 60, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Market:
    """Deterministic prices, volumes and full CoinMarketCap coin objects for a seed and clock."""

    def __init__(self, seed: int = 42, clock: Callable[[], datetime] | None = None) -> None:
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(UTC))
        self.coins: tuple[CoinSpec, ...] = CATALOG
        self.by_id = {c.id: c for c in self.coins}
        self._snapshots: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._lock = Lock()

    def now_minute(self) -> int:
        """The current minute (since the Unix epoch) by the injected clock."""
        return int(self.clock().timestamp() // 60)

    def price(self, coin_id: int, minute: int) -> float:
        spec = self.by_id[coin_id]
        if spec.peg is not None:
            base = self.price(spec.peg, minute)
            return base * math.exp(walk((self.seed, spec.id, "p"), minute, spec.daily_sigma, 0.001))
        anchor = 0.002 if spec.stable else 0.35
        return spec.price * math.exp(
            walk((self.seed, spec.id, "p"), minute, spec.daily_sigma, anchor)
        )

    def volume_24h(self, coin_id: int, minute: int) -> float:
        spec = self.by_id[coin_id]
        typical = spec.price * spec.circulating * spec.volume_ratio
        return typical * math.exp(walk((self.seed, spec.id, "v"), minute, _VOLUME_SIGMA, 0.3))

    def percent_change(self, coin_id: int, minute: int, window: str) -> float:
        before = self.price(coin_id, minute - CHANGE_WINDOWS[window])
        return (self.price(coin_id, minute) / before - 1.0) * 100.0

    def historical_quote(self, coin_id: int, minute: int) -> dict[str, Any]:
        """One point of ``quotes/historical`` (USD): the fields CoinMarketCap's v2 history
        returns, from the same path as the live snapshot, so history and live agree."""
        spec = self.by_id[coin_id]
        price = self.price(coin_id, minute)
        stamp = iso_minute(minute)
        return {
            "price": price,
            "volume_24h": self.volume_24h(coin_id, minute),
            "market_cap": price * spec.circulating,
            "circulating_supply": spec.circulating,
            "total_supply": spec.total,
            "timestamp": stamp,
        }

    def snapshot(self, minute: int | None = None) -> list[dict[str, Any]]:
        """Every coin as CoinMarketCap's v1 object with a USD quote, sorted by market cap.

        Cached per minute: a snapshot is immutable once computed.
        """
        minute = self.now_minute() if minute is None else minute
        with self._lock:
            if minute in self._snapshots:
                return self._snapshots[minute]
        coins = self._build(minute)
        with self._lock:
            self._snapshots[minute] = coins
            while len(self._snapshots) > 8:
                self._snapshots.popitem(last=False)
        return coins

    def _build(self, minute: int) -> list[dict[str, Any]]:
        prices = {c.id: self.price(c.id, minute) for c in self.coins}
        caps = {c.id: prices[c.id] * c.circulating for c in self.coins}
        active = sorted((c for c in self.coins if c.is_active), key=lambda c: -caps[c.id])
        ranks = {c.id: i for i, c in enumerate(active, start=1)}
        total_cap = sum(caps[c.id] for c in active)
        stamp = iso_minute(minute)
        out = [self._coin(c, minute, prices, caps, ranks, total_cap, stamp) for c in self.coins]
        out.sort(key=lambda coin: (coin["cmc_rank"] is None, coin["cmc_rank"] or 0))
        return out

    def _coin(
        self,
        spec: CoinSpec,
        minute: int,
        prices: dict[int, float],
        caps: dict[int, float],
        ranks: dict[int, int],
        total_cap: float,
        stamp: str,
    ) -> dict[str, Any]:
        price = prices[spec.id]
        volume = self.volume_24h(spec.id, minute)
        quote: dict[str, Any] = {
            "price": price,
            "volume_24h": volume,
            "volume_change_24h": (volume / self.volume_24h(spec.id, minute - 1440) - 1) * 100,
        }
        for window in CHANGE_WINDOWS:
            quote[f"percent_change_{window}"] = self.percent_change(spec.id, minute, window)
        quote |= {
            "market_cap": caps[spec.id],
            # An inactive coin has no rank and no share of the market: CMC reports null.
            "market_cap_dominance": caps[spec.id] / total_cap * 100 if spec.is_active else None,
            "fully_diluted_market_cap": price * (spec.max if spec.max is not None else spec.total),
            "tvl": None,
            "last_updated": stamp,
        }
        return {
            "id": spec.id,
            "name": spec.name,
            "symbol": spec.symbol,
            "slug": spec.slug,
            "num_market_pairs": spec.num_market_pairs,
            "date_added": spec.date_added,
            "tags": list(spec.tags),
            "max_supply": spec.max,
            "circulating_supply": spec.circulating,
            "total_supply": spec.total,
            "infinite_supply": spec.max is None,
            "platform": spec.platform,
            "is_active": 1 if spec.is_active else 0,
            "cmc_rank": ranks.get(spec.id),
            "self_reported_circulating_supply": None,
            "self_reported_market_cap": None,
            "tvl_ratio": None,
            "last_updated": stamp,
            "quote": {"USD": quote},
        }
