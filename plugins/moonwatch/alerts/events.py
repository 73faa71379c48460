"""Alert events: the conditions ``marts.alert_conditions`` reports, opened as events in
``raw.alert_events`` when they start and resolved when they end, with their messages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Condition:
    """One row of ``marts.alert_conditions``."""

    rule_id: str
    kind: str
    source: str
    coin_id: int
    quote_currency: str
    symbol: str
    coin_name: str
    is_simulated: bool
    direction: str | None
    level: float | None
    percent: float | None
    minutes: int | None
    description: str | None
    price: float
    reference_price: float | None
    last_updated_at: datetime
    evaluated_at: datetime
    observed_value: float | None
    is_active: bool

    @property
    def subject(self) -> str:
        return f"{self.source}:{self.coin_id}:{self.quote_currency}"


def read_conditions(conn: Any) -> list[Condition]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("select * from marts.alert_conditions").fetchall()
    names = Condition.__dataclass_fields__
    return [Condition(**{name: row[name] for name in names}) for row in rows]


def _amount(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.6g}"


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def summary(c: Condition) -> str:
    """What the rule watches, without the current value: the title of both messages."""
    if c.kind == "price_cross":
        return f"{c.symbol} price {c.direction} {_amount(c.level)} {c.quote_currency}"
    if c.kind == "price_move":
        way = "" if c.direction == "any" else f" {c.direction}"
        return f"{c.symbol} moved{way} {c.percent:g}% or more within {c.minutes} min"
    return f"{c.symbol} {c.quote_currency} quotes older than {c.minutes} min"


def _coin(c: Condition) -> str:
    return f"{c.symbol} ({c.coin_name}, CoinMarketCap id {c.coin_id})"


def _footer(c: Condition) -> list[str]:
    rule = f"Rule: {c.rule_id} ({c.kind})" + (f": {c.description}" if c.description else "")
    source = f"Source: {c.source}" + (
        " (SIMULATED data from the offline market simulator, not market prices)"
        if c.is_simulated
        else ""
    )
    return [
        rule,
        f"Quote time: {utc_text(c.last_updated_at)}",
        f"Checked: {utc_text(c.evaluated_at)}",
        source,
    ]


def open_message(c: Condition) -> str:
    """Title line, blank line, body: what started, with coin, value, currency and time."""
    if c.kind == "price_cross":
        what = (
            f"{_coin(c)} is at {_amount(c.price)} {c.quote_currency}, {c.direction} the level "
            f"{_amount(c.level)} {c.quote_currency}."
        )
    elif c.kind == "price_move":
        what = (
            f"{_coin(c)} moved {c.observed_value:+.2f}% within {c.minutes} minutes: from "
            f"{_amount(c.reference_price)} to {_amount(c.price)} {c.quote_currency}."
        )
    else:
        what = (
            f"The newest {_coin(c)} quote in {c.quote_currency} is {c.observed_value:.0f} "
            f"minutes old (price {_amount(c.price)} {c.quote_currency}); the rule allows "
            f"{c.minutes}."
        )
    return "\n".join([f"Moonwatch alert: {summary(c)}", "", what, *_footer(c)])


def resolve_message(c: Condition | None, title: str, opened_at: datetime, now: datetime) -> str:
    """The "resolved" message; ``c`` None when the rule or the coin's quotes are gone."""
    since = f"It had been open since {utc_text(opened_at)} ({_duration(now - opened_at)})."
    if c is None:
        what = "The rule no longer applies (removed, disabled, or no quotes for this coin)."
        footer: list[str] = []
    else:
        footer = _footer(c)
        if c.kind == "price_cross":
            what = (
                f"{_coin(c)} is at {_amount(c.price)} {c.quote_currency}, no longer "
                f"{c.direction} {_amount(c.level)} {c.quote_currency}."
            )
        elif c.kind == "price_move":
            what = (
                f"{_coin(c)} is at {_amount(c.price)} {c.quote_currency}; its move within "
                f"{c.minutes} minutes is {c.observed_value or 0:+.2f}%, under {c.percent:g}%."
            )
        else:
            what = (
                f"A new {_coin(c)} quote arrived: {_amount(c.price)} {c.quote_currency}, "
                f"{c.observed_value:.0f} minutes old."
            )
    resolved_title = title.replace("Moonwatch alert:", "Moonwatch RESOLVED:", 1)
    return "\n".join([resolved_title, "", what, since, *footer])


@dataclass
class Evaluation:
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    active: int = 0
    # (rule_id, coin_id, quote_currency) the view judged: a rule's coin missing here has no
    # current quote in that currency, so it cannot fire.
    judged: set[tuple[str, int, str]] = field(default_factory=set)


def evaluate(
    conn: Any,
    *,
    successful_runs: Callable[[str], int | None] | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Open an event for each condition that started, resolve each that ended (one
    transaction). ``successful_runs(dag_id)`` counts a DAG's successful runs; with it, open
    DAG-failure events whose DAG has succeeded since are resolved too."""
    result = Evaluation()
    with conn.transaction():
        conditions = read_conditions(conn)
        now = now or conn.execute("select clock_timestamp()").fetchone()[0]
        active = {(c.rule_id, c.subject): c for c in conditions if c.is_active}
        current = {(c.rule_id, c.subject): c for c in conditions}
        result.active = len(active)
        result.judged = {(c.rule_id, c.coin_id, c.quote_currency) for c in conditions}
        for (rule_id, subject), c in active.items():
            message = open_message(c)
            row = conn.execute(
                "insert into raw.alert_events (rule_id, kind, subject, source, coin_id, symbol,"
                " coin_name, quote_currency, opened_at, open_value, open_message, detail)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, jsonb_build_object("
                "'title', %s::text))"
                " on conflict (rule_id, subject) where resolved_at is null do nothing"
                " returning event_id",
                (
                    rule_id,
                    c.kind,
                    subject,
                    c.source,
                    c.coin_id,
                    c.symbol,
                    c.coin_name,
                    c.quote_currency,
                    now,
                    c.observed_value,
                    message,
                    message.splitlines()[0],
                ),
            ).fetchone()
            if row:
                result.opened.append(row[0])
        open_events = conn.execute(
            "select event_id, rule_id, subject, kind, opened_at, detail ->> 'title', dag_id,"
            " successful_runs_at_open from raw.alert_events where resolved_at is null"
            " for update"
        ).fetchall()
        for event_id, rule_id, subject, kind, opened_at, title, dag_id, runs_at_open in open_events:
            if kind == "dag_failure":
                if successful_runs is None or runs_at_open is None:
                    continue
                runs_now = successful_runs(dag_id)
                if runs_now is None or runs_now <= runs_at_open:
                    continue
                message = "\n".join(
                    [
                        title.replace("Moonwatch alert:", "Moonwatch RESOLVED:", 1),
                        "",
                        f"DAG {dag_id} completed a successful run after the failure.",
                        f"It had been open since {utc_text(opened_at)} "
                        f"({_duration(now - opened_at)}).",
                    ]
                )
                value = None
            elif (rule_id, subject) in active:
                continue
            else:
                c = current.get((rule_id, subject))
                message = resolve_message(c, title, opened_at, now)
                value = c.observed_value if c else None
            conn.execute(
                "update raw.alert_events set resolved_at = %s, resolve_value = %s,"
                " resolve_message = %s where event_id = %s and resolved_at is null",
                (now, value, message, event_id),
            )
            result.resolved.append(event_id)
    return result
