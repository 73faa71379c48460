"""Upstream sources: the CoinMarketCap client (``cmc``), its credit budget (``credits``), FX
rates (``fx``) and the simulator that stands in for both (``simulator``).

Nothing here knows about Kafka or Postgres; the producer DAG wires these to ``messages``. The
package imports none of its modules: the simulator runs for as long as the stack does, and
needs neither the HTTP client nor pydantic that the others bring.
"""
