"""Hand-made ``marts`` tables for the dashboard tests, typed by the marts' dbt contracts.

Each table has the columns the tests fill, with the types the mart's enforced contract
declares (``data_type`` in ``dbt_project/models/marts/<mart>.yml``, which the build checks
against the real SQL): one source for the types, so a stand-in can never be ``numeric`` where
the mart is ``double precision``. ``source`` ('coinmarketcap' or 'simulator') is in the
quote marts' grain, as the dashboard's queries require.

The dbt project builds these in real life; the tests create them with the loader role (which
owns schema ``marts``; default privileges let the dashboard role read what it creates).
``fill_small`` writes a few rows whose numbers the tests compute by hand; ``fill_rich`` writes
weeks of plausible random-walk data for the README screenshot.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

MARTS_MODELS = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "marts"


@functools.cache
def contract_types(mart: str) -> dict[str, str]:
    """Column name -> ``data_type`` of ``mart``'s enforced dbt contract, in the mart's order."""
    path = MARTS_MODELS / f"{mart}.yml"
    models = yaml.safe_load(path.read_text())["models"]
    model = next((m for m in models if m["name"] == mart), None)
    if model is None or not (model.get("config") or {}).get("contract", {}).get("enforced"):
        raise ValueError(
            f"{path} declares no enforced contract for {mart}: give it `config: contract:"
            " {enforced: true}` and a data_type per column, as the other dashboard marts have"
        )
    return {column["name"]: column["data_type"] for column in model["columns"]}


def columns_ddl(mart: str, columns: list[str]) -> sql.Composed:
    """``name type, ...`` for ``columns`` of ``mart``, each typed as its contract says."""
    types = contract_types(mart)
    unknown = [column for column in columns if column not in types]
    if unknown:
        raise ValueError(f"{mart} has no column {unknown} in its contract: fix the fixture")
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(types[column]))
        for column in columns
    )


QUOTE_FIELDS = [
    "quote_key", "coin_id", "symbol", "name", "slug", "quote_currency", "source",
    "is_simulated", "cmc_rank", "price", "volume_24h", "volume_change_24h",
    "percent_change_1h", "percent_change_24h", "percent_change_7d", "percent_change_30d",
    "market_cap", "market_cap_dominance", "fully_diluted_market_cap", "circulating_supply",
    "total_supply", "max_supply", "last_updated_at", "fetched_at", "loaded_at",
]  # fmt: skip
TOP_FIELDS = [
    "snapshot_at", "rank", "coin_id", "symbol", "name", "quote_currency", "source",
    "is_simulated", "price", "market_cap", "volume_24h", "market_cap_dominance",
    "circulating_supply", "share_of_top_10",
]  # fmt: skip
# The columns each stand-in mart has (the ones the tests fill); types come from the contracts.
COLUMNS = {
    "quotes_coins": QUOTE_FIELDS,
    "latest_quotes": QUOTE_FIELDS,
    "coin_price_hourly": [
        "coin_id", "symbol", "name", "quote_currency", "source", "hour_at", "open_price",
        "high_price", "low_price", "close_price", "avg_price", "samples", "last_updated_at",
        "last_loaded_at",
    ],
    "cap_top_10": TOP_FIELDS,
    "vol_top_10": TOP_FIELDS,
    "fx_rates_daily": ["as_of_date", "currency", "rate_per_usd", "is_latest"],
    "pipeline_health": ["source_name", "last_loaded_at", "rows_last_hour", "rejected_last_hour"],
}  # fmt: skip


def drop_marts(conn: psycopg.Connection) -> None:
    """Drop every mart relation the dashboard reads, whatever made it (table or dbt view)."""
    rows = conn.execute(
        "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'marts' and c.relname = any(%s)",
        (list(COLUMNS),),
    ).fetchall()
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    for name, kind in rows:
        if kind in kinds:
            conn.execute(
                sql.SQL("drop {} if exists marts.{} cascade").format(
                    sql.SQL(kinds[kind]), sql.Identifier(name)
                )
            )


def create_marts(conn: psycopg.Connection, tables: tuple[str, ...] = tuple(COLUMNS)) -> None:
    drop_marts(conn)
    for name in tables:
        _create(conn, name, COLUMNS[name])


def _create(conn: psycopg.Connection, mart: str, columns: list[str]) -> None:
    conn.execute(
        sql.SQL("create table marts.{} ({})").format(
            sql.Identifier(mart), columns_ddl(mart, columns)
        )
    )


def _insert(conn: psycopg.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("copy marts.{} ({}) from stdin").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
        ) as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in columns])


@dataclass
class Coin:
    coin_id: int
    symbol: str
    name: str
    price: float
    market_cap: float
    volume_24h: float
    pct_1h: float
    pct_24h: float
    pct_7d: float
    pct_30d: float
    dominance: float
    circulating: float
    max_supply: float | None
    rank: int


@dataclass
class SmallData:
    """What ``fill_small`` wrote, for hand-computed expectations."""

    now: datetime
    coins: dict[str, Coin] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    newest_update: datetime | None = None


SMALL_COINS = [
    Coin(
        1, "BTC", "Bitcoin", 60000.0, 1.2e12, 3.5e10, 0.5, -1.25, 4.0, 12.5, 55.25, 19.8e6, 21e6, 1
    ),
    Coin(
        1027, "ETH", "Ethereum", 3000.0, 3.6e11, 1.5e10, -0.25, 2.0, -3.5, 8.0, 16.5, 120e6, None, 2
    ),
    Coin(5426, "SOL", "Solana", 150.0, 7.0e10, 3.0e9, 1.0, 5.0, 10.0, -4.0, 3.25, 466e6, None, 5),
    Coin(74, "DOGE", "Dogecoin", 0.125, 1.8e10, 1.1e9, 0.1, -0.5, 2.0, 1.0, 0.85, 144e9, None, 8),
]
# Units per 1 USD. GBP is deliberately missing: the page must say so and stay in USD.
SMALL_RATES = {"USD": 1.0, "EUR": 0.92, "SEK": 10.5, "NOK": 10.8, "DKK": 6.9}
# The newest top-10 snapshots' age: in the first minutes after midnight UTC they belong to
# yesterday and convert at yesterday's rate, which is right (each amount at its own day's rate).
TOP_10_AGE = timedelta(minutes=5)
YESTERDAYS_EUR_RATE = 0.5


def eur_rate_at(data: SmallData, when: datetime | str) -> float:
    """The EUR rate the page must use for an amount stamped ``when`` (UTC): today's for today,
    else yesterday's (also carried back to older points, as the first rate)."""
    stamp = datetime.fromisoformat(str(when))
    day = (stamp if stamp.tzinfo is None else stamp.astimezone(UTC)).date()
    return data.rates["EUR"] if day == data.now.date() else YESTERDAYS_EUR_RATE


def _quote_row(coin: Coin, at: datetime, *, price: float, pct_scale: float = 1.0) -> dict:
    return {
        "quote_key": f"{coin.coin_id}-USD-{at.isoformat()}",
        "coin_id": coin.coin_id,
        "symbol": coin.symbol,
        "name": coin.name,
        "slug": coin.name.lower(),
        "quote_currency": "USD",
        "source": "simulator",
        "is_simulated": True,
        "cmc_rank": coin.rank,
        "price": price,
        "volume_24h": coin.volume_24h,
        "volume_change_24h": 3.5,
        "percent_change_1h": coin.pct_1h * pct_scale,
        "percent_change_24h": coin.pct_24h * pct_scale,
        "percent_change_7d": coin.pct_7d * pct_scale,
        "percent_change_30d": coin.pct_30d * pct_scale,
        "market_cap": coin.market_cap * price / coin.price,
        "market_cap_dominance": coin.dominance,
        "fully_diluted_market_cap": coin.market_cap * 1.1,
        "circulating_supply": coin.circulating,
        "total_supply": coin.circulating,
        "max_supply": coin.max_supply,
        "last_updated_at": at,
        "fetched_at": at + timedelta(seconds=2),
        "loaded_at": at + timedelta(seconds=5),
    }


def _top_rows(coins: list[Coin], snapshot_at: datetime, key: str, scale: float) -> list[dict]:
    ordered = sorted(coins, key=lambda c: -getattr(c, key))[:10]
    total = sum(getattr(c, key) for c in ordered)
    return [
        {
            "snapshot_at": snapshot_at,
            "rank": rank,
            "coin_id": c.coin_id,
            "symbol": c.symbol,
            "name": c.name,
            "quote_currency": "USD",
            "source": "simulator",
            "is_simulated": True,
            "price": c.price * scale,
            "market_cap": c.market_cap * scale,
            "volume_24h": c.volume_24h * scale,
            "market_cap_dominance": c.dominance,
            "circulating_supply": c.circulating,
            "share_of_top_10": round(100 * getattr(c, key) / total, 4),
        }
        for rank, c in enumerate(ordered, start=1)
    ]


EXTRA_TOP = [
    Coin(52, "XRP", "XRP", 0.6, 3.3e10, 1.2e9, 0, 0, 0, 0, 1.5, 55e9, 100e9, 6),
    Coin(1839, "BNB", "BNB", 580.0, 8.5e10, 1.6e9, 0, 0, 0, 0, 3.9, 146e6, 200e6, 4),
    Coin(825, "USDT", "Tether", 1.0, 1.1e11, 5.0e10, 0, 0, 0, 0, 5.1, 110e9, None, 3),
    Coin(2010, "ADA", "Cardano", 0.45, 1.6e10, 4.0e8, 0, 0, 0, 0, 0.7, 35e9, 45e9, 9),
    Coin(5805, "AVAX", "Avalanche", 35.0, 1.4e10, 5.0e8, 0, 0, 0, 0, 0.6, 400e6, 720e6, 10),
    Coin(3408, "USDC", "USDC", 1.0, 3.4e10, 6.0e9, 0, 0, 0, 0, 1.5, 34e9, None, 7),
]


def fill_small(conn: psycopg.Connection, now: datetime | None = None) -> SmallData:
    """A few hand-made rows in every mart; returns what the tests compute expectations from."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    create_marts(conn)
    data = SmallData(now=now, coins={c.symbol: c for c in SMALL_COINS}, rates=dict(SMALL_RATES))
    newest = now - timedelta(seconds=40)
    data.newest_update = newest
    history, latest, hourly = [], [], []
    for coin in SMALL_COINS:
        for minutes_ago in (120, 90, 60, 30, 10):
            at = newest - timedelta(minutes=minutes_ago)
            history.append(_quote_row(coin, at, price=coin.price * 0.99, pct_scale=0.5))
        last = _quote_row(coin, newest, price=coin.price)
        history.append(last)
        latest.append(last)
        hour0 = newest.replace(minute=0, second=0)
        for h in range(48, -1, -1):
            drift = 1 + 0.001 * ((h % 5) - 2)
            close = coin.price * drift
            hourly.append(
                {
                    "coin_id": coin.coin_id,
                    "symbol": coin.symbol,
                    "name": coin.name,
                    "quote_currency": "USD",
                    "hour_at": hour0 - timedelta(hours=h),
                    "open_price": coin.price,
                    "high_price": max(coin.price, close) * 1.002,
                    "low_price": min(coin.price, close) * 0.998,
                    "close_price": close,
                    "avg_price": (coin.price + close) / 2,
                    "samples": 60,
                    "source": "simulator",
                    "last_updated_at": hour0 - timedelta(hours=h) + timedelta(minutes=59),
                    "last_loaded_at": hour0 - timedelta(hours=h) + timedelta(minutes=59),
                }
            )
    _insert(conn, "quotes_coins", history)
    _insert(conn, "latest_quotes", latest)
    _insert(conn, "coin_price_hourly", hourly)
    everyone = SMALL_COINS + EXTRA_TOP
    # An older snapshot with other numbers: the page must show only the newest one.
    _insert(conn, "cap_top_10", _top_rows(everyone, now - timedelta(hours=1), "market_cap", 0.5))
    _insert(conn, "cap_top_10", _top_rows(everyone, now - TOP_10_AGE, "market_cap", 1))
    _insert(conn, "vol_top_10", _top_rows(everyone, now - timedelta(hours=1), "volume_24h", 0.5))
    _insert(conn, "vol_top_10", _top_rows(everyone, now - TOP_10_AGE, "volume_24h", 1))
    today = now.date()
    fx = [
        {"as_of_date": today, "currency": cur, "rate_per_usd": rate, "is_latest": True}
        for cur, rate in SMALL_RATES.items()
    ]
    # Yesterday's EUR rate differs: conversion must use the latest one.
    fx.append(
        {
            "as_of_date": today - timedelta(days=1),
            "currency": "EUR",
            "rate_per_usd": YESTERDAYS_EUR_RATE,
            "is_latest": False,
        }
    )
    _insert(conn, "fx_rates_daily", fx)
    _insert(
        conn,
        "pipeline_health",
        [
            {
                "source_name": "crypto_quotes",
                "last_loaded_at": newest + timedelta(seconds=5),
                "rows_last_hour": 240,
                "rejected_last_hour": 0,
            },
            {
                "source_name": "crypto_listings",
                "last_loaded_at": now - timedelta(minutes=5),
                "rows_last_hour": 800,
                "rejected_last_hour": 0,
            },
            {
                "source_name": "fx_rates",
                "last_loaded_at": now - timedelta(hours=3),
                "rows_last_hour": 0,
                "rejected_last_hour": 2,
            },
        ],
    )
    return data


# -- rich data for the README screenshot -----------------------------------------------------

RICH_COINS = [
    # symbol, name, id, price, supply, max supply, daily volatility
    ("BTC", "Bitcoin", 1, 97250.0, 19.79e6, 21e6, 0.022),
    ("ETH", "Ethereum", 1027, 3420.0, 120.4e6, None, 0.030),
    ("USDT", "Tether", 825, 1.0, 133.8e9, None, 0.0004),
    ("XRP", "XRP", 52, 2.31, 57.2e9, 100e9, 0.045),
    ("BNB", "BNB", 1839, 655.0, 144.0e6, 200e6, 0.025),
    ("SOL", "Solana", 5426, 214.5, 478.0e6, None, 0.040),
    ("USDC", "USDC", 3408, 1.0, 42.1e9, None, 0.0003),
    ("DOGE", "Dogecoin", 74, 0.382, 147.3e9, None, 0.055),
    ("ADA", "Cardano", 2010, 1.02, 35.9e9, 45e9, 0.050),
    ("TRX", "TRON", 1958, 0.252, 86.2e9, None, 0.030),
    ("AVAX", "Avalanche", 5805, 44.6, 409.0e6, 720e6, 0.050),
    ("LINK", "Chainlink", 1975, 23.8, 638.0e6, 1e9, 0.048),
]


def fill_rich(conn: psycopg.Connection, *, days: int = 30, seed: int = 7) -> None:
    """Weeks of random-walk quotes (every 10 min), hourly OHLC, top 10s, FX and health."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    newest = now - timedelta(seconds=25)
    create_marts(conn)
    step = timedelta(minutes=10)
    steps = int(days * 24 * 60 / 10)
    series: dict[str, list[tuple[datetime, float]]] = {}
    for symbol, _name, _id, price, _sup, _max, vol in RICH_COINS:
        # Walk backwards from today's price so the latest quote is the one in the table.
        values = [price]
        sigma = vol / math.sqrt(24 * 6)
        for _ in range(steps):
            values.append(values[-1] / math.exp(rng.gauss(0.00002, sigma)))
        values.reverse()
        series[symbol] = [(newest - step * (steps - i), v) for i, v in enumerate(values)]
    total_cap = sum(p * s for _sym, _n, _i, p, s, _m, _v in RICH_COINS) / 0.93
    history, latest, hourly, caps = [], [], [], {}
    for rank, (symbol, name, coin_id, _price, supply, max_supply, _vol) in enumerate(
        RICH_COINS, start=1
    ):
        points = series[symbol]

        def back(at: datetime, delta: timedelta, pts=points) -> float:
            index = max(0, int((at - pts[0][0] - delta) / step))
            return pts[min(index, len(pts) - 1)][1]

        base_volume = _price * supply * rng.uniform(0.02, 0.09)
        for i, (at, value) in enumerate(points):
            if i % 3 and i != len(points) - 1 and at < newest - timedelta(days=2):
                continue  # every 30 min for old data, every 10 min for the last two days
            row = {
                "quote_key": f"{coin_id}-USD-{at.isoformat()}",
                "coin_id": coin_id,
                "symbol": symbol,
                "name": name,
                "slug": name.lower(),
                "quote_currency": "USD",
                "source": "simulator",
                "is_simulated": True,
                "cmc_rank": rank,
                "price": round(value, 8),
                "volume_24h": base_volume * rng.uniform(0.85, 1.15),
                "volume_change_24h": rng.uniform(-12, 12),
                "percent_change_1h": 100 * (value / back(at, timedelta(hours=1)) - 1),
                "percent_change_24h": 100 * (value / back(at, timedelta(days=1)) - 1),
                "percent_change_7d": 100 * (value / back(at, timedelta(days=7)) - 1),
                "percent_change_30d": 100 * (value / back(at, timedelta(days=30)) - 1),
                "market_cap": value * supply,
                "market_cap_dominance": 100 * value * supply / total_cap,
                "fully_diluted_market_cap": value * (max_supply or supply),
                "circulating_supply": supply,
                "total_supply": supply,
                "max_supply": max_supply,
                "last_updated_at": at,
                "fetched_at": at + timedelta(seconds=1),
                "loaded_at": at + timedelta(seconds=4),
            }
            history.append(row)
        latest.append(history[-1])
        caps[symbol] = history[-1]
        by_hour: dict[datetime, list[float]] = {}
        for at, value in points:
            by_hour.setdefault(at.replace(minute=0, second=0), []).append(value)
        for hour_at, values in sorted(by_hour.items()):
            hourly.append(
                {
                    "coin_id": coin_id,
                    "symbol": symbol,
                    "name": name,
                    "quote_currency": "USD",
                    "hour_at": hour_at,
                    "open_price": values[0],
                    "high_price": max(values) * (1 + rng.uniform(0, 0.002)),
                    "low_price": min(values) * (1 - rng.uniform(0, 0.002)),
                    "close_price": values[-1],
                    "avg_price": sum(values) / len(values),
                    "samples": len(values),
                    "source": "simulator",
                    "last_updated_at": hour_at + timedelta(minutes=59),
                    "last_loaded_at": hour_at + timedelta(minutes=59),
                }
            )
    _insert(conn, "quotes_coins", history)
    _insert(conn, "latest_quotes", latest)
    _insert(conn, "coin_price_hourly", hourly)
    snapshot = now - timedelta(minutes=4)
    for table, key in (("cap_top_10", "market_cap"), ("vol_top_10", "volume_24h")):
        ordered = sorted(caps.values(), key=lambda r, k=key: -r[k])[:10]
        total = sum(r[key] for r in ordered)
        _insert(
            conn,
            table,
            [
                {
                    "snapshot_at": snapshot,
                    "rank": rank,
                    "coin_id": r["coin_id"],
                    "symbol": r["symbol"],
                    "name": r["name"],
                    "quote_currency": "USD",
                    "source": "simulator",
                    "is_simulated": True,
                    "price": r["price"],
                    "market_cap": r["market_cap"],
                    "volume_24h": r["volume_24h"],
                    "market_cap_dominance": r["market_cap_dominance"],
                    "circulating_supply": r["circulating_supply"],
                    "share_of_top_10": 100 * r[key] / total,
                }
                for rank, r in enumerate(ordered, start=1)
            ],
        )
    rates = {
        "USD": 1.0,
        "EUR": 0.9531,
        "SEK": 10.9744,
        "NOK": 11.2410,
        "DKK": 7.1094,
        "GBP": 0.7902,
    }
    today: date = now.date()
    _insert(
        conn,
        "fx_rates_daily",
        [
            {"as_of_date": today, "currency": c, "rate_per_usd": r, "is_latest": True}
            for c, r in rates.items()
        ],
    )
    _insert(
        conn,
        "pipeline_health",
        [
            {
                "source_name": "crypto_quotes",
                "last_loaded_at": newest + timedelta(seconds=4),
                "rows_last_hour": 720,
                "rejected_last_hour": 0,
            },
            {
                "source_name": "crypto_listings",
                "last_loaded_at": now - timedelta(minutes=4),
                "rows_last_hour": 800,
                "rejected_last_hour": 0,
            },
            {
                "source_name": "fx_rates",
                "last_loaded_at": now - timedelta(hours=5),
                "rows_last_hour": 0,
                "rejected_last_hour": 0,
            },
        ],
    )
    fill_rich_extras(conn, now)


# Marts the page reads beyond the core ones, for the README screenshot only (fill_small's
# tests create their own where they need them).
EXTRA_COLUMNS = {
    "alert_events": [
        "event_id", "source", "status", "title", "opened_at", "resolved_at", "open_sent_at",
        "delivery_error", "last_change_at",
    ],
    "reconciliation_runs": [
        "run_id", "source", "is_simulated", "sampled_at", "checked_at", "samples", "matched",
        "mismatched", "superseded", "not_loaded", "pending", "mismatched_coins", "status",
        "is_latest",
    ],
    "credit_budget": [
        "source", "is_simulated", "credits_budget", "credits_used", "credits_left",
        "quotes_every_minutes", "listings_every_minutes", "decided_at",
    ],
}  # fmt: skip


def create_rich_extras(conn: psycopg.Connection) -> None:
    """The EXTRA_COLUMNS stand-ins, empty (in place of whatever made those marts)."""
    drop_rich_extras(conn)
    for table, columns in EXTRA_COLUMNS.items():
        _create(conn, table, columns)


def fill_rich_extras(conn: psycopg.Connection, now: datetime) -> None:
    """Alerts, the newest reconciliation and the credit line, as the screenshot shows them."""
    create_rich_extras(conn)
    alerts = [
        (3, "open", "SOL moved up 10.4% in 60 min (move ≥ 10%)", now - timedelta(minutes=12), None),
        (2, "resolved", "ETH crossed above 3,500 USD", now - timedelta(hours=5),
         now - timedelta(hours=2)),
        (1, "resolved", "DAG crypto_fx_load failed (task load_fx_rates)", now - timedelta(days=1),
         now - timedelta(hours=20)),
    ]  # fmt: skip
    _insert(
        conn,
        "alert_events",
        [
            {"event_id": i, "source": None if "DAG" in title else "simulator", "status": status,
             "title": title, "opened_at": opened, "resolved_at": resolved,
             "open_sent_at": opened + timedelta(seconds=3), "delivery_error": None,
             "last_change_at": resolved or opened}
            for i, status, title, opened, resolved in alerts
        ],
    )  # fmt: skip
    _insert(
        conn,
        "reconciliation_runs",
        [
            {"run_id": "scheduled__hourly", "source": "simulator", "is_simulated": True,
             "sampled_at": now - timedelta(minutes=21), "checked_at": now - timedelta(minutes=20),
             "samples": 10, "matched": 10, "mismatched": 0, "superseded": 0, "not_loaded": 0,
             "pending": 0, "mismatched_coins": None, "status": "ok", "is_latest": True}
        ],
    )  # fmt: skip
    _insert(
        conn,
        "credit_budget",
        [
            {"source": "simulator", "is_simulated": True, "credits_budget": 10000,
             "credits_used": 4120, "credits_left": 5880, "quotes_every_minutes": 1,
             "listings_every_minutes": 15, "decided_at": now - timedelta(seconds=30)}
        ],
    )  # fmt: skip


def drop_rich_extras(conn: psycopg.Connection) -> None:
    for table in EXTRA_COLUMNS:
        kind = conn.execute(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'marts' and c.relname = %s",
            (table,),
        ).fetchone()
        if kind:
            what = sql.SQL("view" if kind[0] == "v" else "table")
            conn.execute(sql.SQL("drop {} marts.{} cascade").format(what, sql.Identifier(table)))
