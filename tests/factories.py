"""Factories for test objects that follow the Moonwatch contracts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moonwatch.messages import QuoteMessage, build_quote_message

BASE_TIME = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
COINS = {
    1: ("BTC", "Bitcoin", "bitcoin"),
    1027: ("ETH", "Ethereum", "ethereum"),
    5426: ("SOL", "Solana", "solana"),
}


def coin_object(
    coin_id: int = 1, minute: int = 0, price: float = 50_000.0, **quote: object
) -> dict:
    """One CoinMarketCap coin object (v1 shape) quoted in USD at BASE_TIME + ``minute``."""
    symbol, name, slug = COINS.get(coin_id, (f"C{coin_id}", f"Coin {coin_id}", f"coin-{coin_id}"))
    at = (BASE_TIME + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    return {
        "id": coin_id,
        "name": name,
        "symbol": symbol,
        "slug": slug,
        "cmc_rank": 1 if coin_id == 1 else 2,
        "num_market_pairs": 100,
        "circulating_supply": 19_000_000.0,
        "total_supply": 19_000_000.0,
        "max_supply": 21_000_000.0,
        "infinite_supply": False,
        "last_updated": at,
        "quote": {
            "USD": {
                "price": price,
                "volume_24h": 1e10,
                "volume_change_24h": 1.5,
                "percent_change_1h": 0.1,
                "percent_change_24h": -1.2,
                "percent_change_7d": 3.4,
                "percent_change_30d": 10.0,
                "market_cap": price * 19_000_000.0,
                "market_cap_dominance": 55.0,
                "fully_diluted_market_cap": price * 21_000_000.0,
                "last_updated": at,
                **quote,
            }
        },
    }


def quote_message(
    coin_id: int = 1, minute: int = 0, price: float = 50_000.0, **quote: object
) -> QuoteMessage:
    return build_quote_message(
        coin_object(coin_id, minute, price, **quote),
        "USD",
        "simulator",
        BASE_TIME + timedelta(minutes=minute, seconds=2),
    )


def listing_coin(coin_id: int = 1, minute: int = 0, price: float = 50_000.0) -> dict:
    """One coin of a CoinMarketCap ``listings/latest`` reply (v1 shape), quoted in USD."""
    return {
        **coin_object(coin_id, minute, price),
        "date_added": "2013-04-28T00:00:00.000Z",
        "tags": ["mineable", "pow"],
        "platform": None,
        "is_active": 1,
    }
