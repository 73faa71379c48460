"""Hostile inputs for the fuzz tests: CoinMarketCap replies and Kafka message values.

Hypothesis drives every test (it picks the examples, counts them, reports failures with a
reproducible seed), but the bulk of each example is built by ``Poison`` from one
hypothesis-drawn ``random.Random``: drawing deep JSON field by field through hypothesis costs
~100 ms an example, far too slow for 10,000 examples a test in ``make test``.

Each generator mixes well-formed values (so the happy path runs too) with poison: nulls, wrong
types, missing keys, huge and negative numbers, NaN and infinities, and strings holding NUL,
lone surrogates, emoji, right-to-left overrides, SQL and very long text.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

IDS = (1, 1027, 5426)
TICKERS = ("BTC", "ETH", "SOL")
NAMES = {1: ("BTC", "Bitcoin", "bitcoin"), 1027: ("ETH", "Ethereum", "ethereum"),
         5426: ("SOL", "Solana", "solana")}  # fmt: skip
CURRENCY = "USD"
BASE = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

POISON_STRINGS = (
    "",
    " ",
    "\x00",
    "Bit\x00coin",
    "\ud800",
    "lone \udfff surrogate",
    "🚀🌕",
    "\u202eniocitiB",
    "x" * 5000,
    "NaN",
    "Infinity",
    "-1",
    "1e400",
    "null",
    "'; drop table raw.crypto_quotes;--",
    "2025-13-45T99:99:99Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
)
HUGE_NUMBERS = (
    2**31 - 1,
    2**31,
    2**63,
    -(2**63),
    10**400,
    -(10**400),
    1e308,
    -1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
    0,
    -0.0,
    -1,
)
TIMESTAMPS = (
    "2025-05-07T12:34:00.000Z",
    "2025-05-07T12:34:00+00:00",
    "2025-05-07T14:34:00+02:00",
    "2025-05-07T12:34:00",  # no timezone
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2025-05-07",
    "2099-01-01T00:00:00Z",  # from the future: refused
    "2008-12-31T23:59:59Z",  # before Bitcoin: refused
    "1700000000",  # epoch seconds: not ISO-8601, refused
)
_PAST = datetime(2025, 5, 7, 12, 34, tzinfo=UTC)
# Code point ranges a string is drawn from: ASCII, Latin-1, CJK, emoji, controls incl. NUL,
# bidi overrides and lone surrogates.
_RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x4E00, 0x4E80), (0x1F300, 0x1F680), (0x00, 0x1F),
           (0x202A, 0x202E), (0xD800, 0xDFFF))  # fmt: skip
MISSING = object()  # a key to leave out


class Poison:
    """A generator of hostile values from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random, bad_rate: float = 0.08, key: str | None = None) -> None:
        self.r = rng
        self.bad_rate = bad_rate
        self.key = key  # an API key a hostile server may echo back

    # -- primitives --------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def text(self) -> str:
        if self.chance(0.5):
            return self.r.choice(POISON_STRINGS)
        low, high = _RANGES[self.r.randrange(len(_RANGES))]
        return "".join(chr(self.r.randint(low, high)) for _ in range(self.r.randint(0, 12)))

    def number(self) -> int | float:
        k = self.r.randrange(5)
        if k == 0:
            return self.r.choice(HUGE_NUMBERS)
        if k == 1:
            return self.r.randint(-(2**70), 2**70)
        if k == 2:
            return self.r.uniform(-1e20, 1e20)
        if k == 3:
            return self.r.randint(-10, 10)
        return self.r.random() * 10 ** self.r.randint(-320, 308)

    def scalar(self) -> Any:
        k = self.r.randrange(5)
        return (None, self.chance(0.5), self.number(), self.text(), self.text())[k]

    def json_value(self, depth: int = 0) -> Any:
        k = self.r.randrange(6 if depth < 3 else 4)
        if k < 4:
            return self.scalar()
        if k == 4:
            return [self.json_value(depth + 1) for _ in range(self.r.randint(0, 3))]
        return {self.text(): self.json_value(depth + 1) for _ in range(self.r.randint(0, 3))}

    def bad(self) -> Any:
        return MISSING if self.chance(0.3) else self.json_value()

    def maybe(self, good: Any) -> Any:
        """``good`` most of the time, else poison (which may be a missing key)."""
        return self.bad() if self.chance(self.bad_rate) else good

    def obj(self, fields: dict[str, Any]) -> dict[str, Any]:
        out = {k: self.maybe(v) for k, v in fields.items()}
        if self.chance(0.1):
            out[self.text()] = self.json_value()  # an unexpected extra field
        return {k: v for k, v in out.items() if v is not MISSING}

    def timestamp(self) -> str:
        if self.chance(0.8):
            # Up to ~3 years before every fetch time the fuzz tests stamp, so a well-formed
            # time is a valid one; the future and the absurd come from TIMESTAMPS.
            return (_PAST - timedelta(seconds=self.r.randint(0, 10**8))).isoformat()
        return self.r.choice(TIMESTAMPS)

    def money(self) -> float | None:
        return None if self.chance(0.1) else self.r.uniform(0, 1e15)

    def pct(self) -> float | None:
        return None if self.chance(0.1) else self.r.uniform(-100, 1000)

    # -- CoinMarketCap -----------------------------------------------------------------------

    def quote(self) -> dict[str, Any]:
        return self.obj(
            {
                "price": self.r.uniform(1e-9, 1e6),
                "volume_24h": self.money(),
                "volume_change_24h": self.pct(),
                "percent_change_1h": self.pct(),
                "percent_change_24h": self.pct(),
                "percent_change_7d": self.pct(),
                "percent_change_30d": self.pct(),
                "percent_change_60d": self.pct(),
                "market_cap": self.money(),
                "market_cap_dominance": self.r.uniform(0, 100),
                "fully_diluted_market_cap": self.money(),
                "last_updated": self.timestamp(),
            }
        )

    def coin(self, version: int, coin_id: int | None = None) -> dict[str, Any]:
        coin_id = coin_id if coin_id is not None else self.r.choice(IDS)
        symbol, name, slug = NAMES.get(coin_id, ("X", "X", "x"))
        quote: Any = _present({CURRENCY: self.maybe(self.quote())})
        if version == 3:
            currency = CURRENCY if self.chance(0.9) else "usd"
            quote = _present([self.maybe({"symbol": currency, **self.quote()})])
        coin = self.obj(
            {
                "id": coin_id,
                "name": name if self.chance(0.8) else self.text(),
                "symbol": symbol,
                "slug": slug,
                "num_market_pairs": self.r.randint(0, 10_000),
                "date_added": self.timestamp(),
                "tags": ["mineable"],
                "max_supply": None if self.chance(0.3) else self.r.uniform(0, 1e12),
                "circulating_supply": self.r.uniform(0, 1e12),
                "total_supply": self.r.uniform(0, 1e12),
                "infinite_supply": self.chance(0.5),
                "platform": None,
                "cmc_rank": self.r.randint(1, 5000),
                "is_active": 1 if self.chance(0.8) else self.r.choice((0, None, "1")),
                "last_updated": self.timestamp(),
                "quote": quote,
            }
        )
        return coin

    def coins(self, version: int) -> list[Any]:
        return [self.maybe(self.coin(version)) for _ in range(self.r.randint(0, 4))]

    def quotes_data(self, version: int) -> Any:
        """``data`` of quotes/latest in the ``version`` shape (v2 also repeats tickers)."""
        if self.chance(self.bad_rate):
            return self.json_value()
        if version == 3:
            return [c for c in self.coins(3) if c is not MISSING]
        data: dict[str, Any] = {}
        for coin in self.coins(version):
            if coin is MISSING:
                continue
            key = self.r.choice((*TICKERS, *map(str, IDS))) if self.chance(0.9) else self.text()
            if version == 2:
                data.setdefault(key, []).append(coin)
                if self.chance(0.2):  # a second coin sharing the ticker
                    data[key].append(self.coin(2, self.r.randint(1, 10**6)))
            else:
                data[key] = coin
        return data

    def listings_data(self) -> Any:
        if self.chance(self.bad_rate):
            return self.json_value()
        count = self.r.randint(0, 4)
        return _present([self.maybe(self.coin(1, self.r.randint(1, 10**6))) for _ in range(count)])

    def status(self) -> Any:
        k = self.r.random()
        if k < 0.8:
            return self.obj(
                {
                    "timestamp": self.timestamp(),
                    "error_code": 0,
                    "error_message": None,
                    "elapsed": self.r.randint(0, 50),
                    "credit_count": self.r.randint(0, 10),
                    "notice": None,
                }
            )
        if k < 0.95:
            codes = (1001, 1002, 1006, 1008, 1009, 1010, 1011, 400, 500)
            return {
                "error_code": self.r.choice(codes) if self.chance(0.7) else self.scalar(),
                "error_message": self.text() if self.chance(0.7) else self.echo(),
            }
        return self.json_value()

    def echo(self) -> str:
        """Text in which a hostile server echoes the key (when there is one)."""
        if not self.key:
            return self.text()
        pad = "x" * self.r.randint(0, 300)
        return self.r.choice((self.key, f"Invalid API key {self.key}", pad + self.key))

    def body(self, data: Any) -> Any:
        body = self.obj({"status": self.status(), "data": data})
        if self.key and self.chance(0.03) and isinstance(body.get("status"), dict):
            body["status"][self.r.choice(("notice", "error_message", "timestamp"))] = self.echo()
        return body

    def reply(self, data: Any) -> tuple[int, bytes, str | None]:
        """(HTTP status, body bytes, Content-Type) of one answer."""
        codes = (400, 401, 402, 403, 404, 429, 500, 502, 503)
        status = 200 if self.chance(0.85) else self.r.choice(codes)
        content_type = self.r.choice((None, "application/json", "application/json; charset=utf-8",
                                      "text/html"))  # fmt: skip
        text = json.dumps(self.body(data), ensure_ascii=self.chance(0.5))
        raw = text.encode("utf-8", "surrogatepass")
        k = self.r.random()
        if k < 0.05:
            raw = raw[: self.r.randint(0, len(raw))]
        elif k < 0.08:
            raw = self.r.randbytes(self.r.randint(0, 200))
        elif k < 0.1:
            raw = self.echo().encode("utf-8", "surrogatepass")
        elif k < 0.11:
            raw = b"<html><body>502 Bad Gateway</body></html>"
        return status, raw, content_type

    # -- Kafka messages ----------------------------------------------------------------------

    def message(self) -> dict[str, Any]:
        """A payload that satisfies the QuoteMessage contract."""
        name = "".join(chr(self.r.randint(*self.r.choice(_RANGES[:4]))) for _ in range(8))
        return {
            "schema_version": 1,
            "source": self.r.choice(("coinmarketcap", "simulator")),
            "coin_id": self.r.randint(1, 2**31 - 1),
            "symbol": self.r.choice(TICKERS),
            "name": name,
            "slug": "coin-" + str(self.r.randint(0, 10**6)),
            "cmc_rank": self.r.randint(1, 10_000),
            "quote_currency": self.r.choice(("USD", "EUR", "SEK", "BTC")),
            "price": self.r.uniform(1e-12, 1e12),
            "market_cap": self.money(),
            "percent_change_24h": self.pct(),
            "last_updated": self.timestamp(),
            "fetched_at": BASE.isoformat(),
        }

    def typed_message(self) -> dict[str, Any]:
        """A message whose fields are each valid or, now and then, any JSON value or gone."""
        payload = self.obj(self.message())
        if self.chance(0.3):
            payload[self.r.choice(FIELD_NAMES)] = self.json_value()
        return payload

    def mutate(self, valid: bytes) -> bytes:
        """Byte-level damage: inserts and overwrites (NUL, surrogates, NaN, deep nesting), cuts."""
        at = self.r.randint(0, len(valid))
        splice = (
            self.r.choice(SPLICES) if self.chance(0.7) else self.r.randbytes(self.r.randint(1, 8))
        )
        k = self.r.randrange(4)
        if k == 0:
            return valid[:at] + splice + valid[at:]
        if k == 1:
            return valid[:at] + splice + valid[at + len(splice) :]
        if k == 2:
            return valid[:at]
        return valid[:at] + bytes([self.r.randrange(256)]) + valid[at + 1 :]


def _present(value: Any) -> Any:
    """``value`` without the MISSING placeholders."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not MISSING}
    return [v for v in value if v is not MISSING]


SPLICES = (
    b"\x00",
    b"\\u0000",
    b"\\ud800",
    b"\xed\xa0\x80",
    b"\xff",
    b"NaN",
    b"1e999",
    b"[" * 2000,
    b'"',
    b"}",
    b"9" * 5000,
    b"\xef\xbb\xbf",
    b'"\\u0000":1,',
    b'"name":"\\u0000",',
    b'"last_updated":"0001-01-01T00:00:00+05:00",',
)
FIELD_NAMES = (
    "schema_version", "source", "coin_id", "symbol", "name", "slug", "cmc_rank",
    "num_market_pairs", "circulating_supply", "total_supply", "max_supply", "infinite_supply",
    "quote_currency", "price", "volume_24h", "volume_change_24h", "percent_change_1h",
    "percent_change_24h", "percent_change_7d", "percent_change_30d", "market_cap",
    "market_cap_dominance", "fully_diluted_market_cap", "last_updated", "fetched_at",
)  # fmt: skip


def dumps(payload: Any) -> bytes:
    """JSON bytes the way a careless producer writes them: NaN allowed, surrogates passed on."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")


# One seeded Random per example: the failure report shows its seed, which replays the example.
seeds = st.randoms(use_true_random=True)
