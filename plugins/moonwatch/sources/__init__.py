"""Upstream sources: the CoinMarketCap client, its credit budget, FX rates and the simulator.

Nothing here knows about Kafka or Postgres; the producer DAG wires these to ``messages``.
"""

from moonwatch.sources.cmc import CoinMarketCapClient, ListingsResult, QuotesResult
from moonwatch.sources.credits import (
    CreditLedger,
    InMemoryLedgerStore,
    LedgerStore,
    Schedule,
    check_schedule,
    credits_per_call,
    monthly_credits,
)
from moonwatch.sources.fx import FxRates, fetch_usd_rates

__all__ = [
    "CoinMarketCapClient",
    "CreditLedger",
    "FxRates",
    "InMemoryLedgerStore",
    "LedgerStore",
    "ListingsResult",
    "QuotesResult",
    "Schedule",
    "check_schedule",
    "credits_per_call",
    "fetch_usd_rates",
    "monthly_credits",
]
