"""Alerts: rules without code, events computed from the marts, each sent once, then resolved.

- **Rules** live in ``dbt_project/alerts.yml`` and, with the same shape as JSON (or YAML), in
  the Airflow Variable ``moonwatch_alert_rules``; a Variable rule with a file rule's id replaces
  it, a new id adds one (:func:`load_rules`). Kinds: ``price_cross`` (price above/below a
  level), ``price_move`` (at least X % within N minutes), ``stale`` (newest quote older than N
  minutes) and ``dag_failure``. Coins are CoinMarketCap ids; the currency is explicit.
- **Conditions** come from dbt: :func:`sync_rules` writes the coin rules to ``raw.alert_rules``
  and the view ``marts.alert_conditions`` (``dbt_project/models/marts/alert_conditions.sql``,
  unit-tested like every model) says, per rule, source, coin and currency, whether the
  condition holds now.
- **Events** (``raw.alert_events``): :func:`evaluate` opens an event when a condition starts
  (one open event per rule and subject, enforced by a unique index, so a condition holding for
  an hour is one event) and resolves it when the condition ends. A DAG failure opens an event
  from the failing task's ``on_failure_callback`` (:class:`DagFailureNotifier`, in every DAG's
  default args) and resolves when that DAG completes a successful run again.
- **Delivery** (:func:`deliver_pending`) sends each event's notification once, through
  Airflow's Apprise notifier and the Airflow connection ``moonwatch_alerts`` (email, Slack,
  Telegram, Discord, webhooks...). A notification is marked sent only after Apprise reports
  success, so a failed one is retried by the next run; destination URLs stay in the connection
  and never reach a log or a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from airflow.sdk.bases.notifier import BaseNotifier
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from moonwatch.alert_channel import ALERT_CONN_ID
from moonwatch.errors import ConfigurationError, MoonwatchError, TransientError
from moonwatch.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)

RULES_FILE = PROJECT_ROOT / "dbt_project" / "alerts.yml"
RULES_VARIABLE = "moonwatch_alert_rules"
# A notification still unsent after this long (no channel configured, a long outage) is left
# unsent: the dashboard still lists its event, but a channel set up next week does not get a
# flood of last week's news.
SEND_WINDOW = timedelta(hours=6)
# The relations an evaluation reads; the first two come from the per-minute dbt build.
QUOTE_MARTS = ("marts.quotes_coins", "marts.latest_quotes")
ALERT_MODELS = ("marts.alert_conditions", "marts.alert_events")
# The DAG-failure rule in force while the rules do not validate.
RULES_INVALID_ID = "rules-invalid"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class AlertRulesError(ConfigurationError):
    """An alert rule does not validate: the message names the rule and what to fix."""


class NoAlertChannelError(ConfigurationError):
    """No Airflow connection ``moonwatch_alerts`` (or one without Apprise URLs)."""


class AlertDeliveryError(TransientError):
    """Apprise could not deliver a notification; the next run retries it."""


class NothingToAlertOnYet(MoonwatchError):
    """The quote marts are not built yet (a fresh install): nothing to evaluate."""


# -- Rules ----------------------------------------------------------------------------------


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="unique name: lowercase letters, digits, '-' or '_'")
    description: str | None = None
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(
                "an id is 1-64 lowercase letters, digits, '-' or '_', e.g. btc-above-100k"
            )
        return value


class _CoinRule(_Rule):
    coins: list[int] = Field(min_length=1, description="CoinMarketCap ids, e.g. [1, 1027]")
    currency: str = Field(description="the quote currency the rule reads, e.g. USD")

    @field_validator("coins", mode="before")
    @classmethod
    def _check_coins(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
                raise ValueError(
                    f"{item!r} is not a CoinMarketCap id; coins are ids because tickers are not "
                    "unique (1 = BTC, 1027 = ETH, 5426 = SOL): write coins: [1, 1027]"
                )
        return items

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        # The same rule as MOONWATCH_QUOTE_CURRENCY's.
        return Settings._check_currency(value)


class PriceCrossRule(_CoinRule):
    """The price is above (or below) a level; resolved when it crosses back."""

    kind: Literal["price_cross"]
    direction: Literal["above", "below"]
    level: float = Field(gt=0)


class PriceMoveRule(_CoinRule):
    """The price moved at least ``percent`` % within ``minutes`` (up, down or either way)."""

    kind: Literal["price_move"]
    percent: float = Field(gt=0, le=1000)
    minutes: int = Field(ge=1, le=1440)
    direction: Literal["up", "down", "any"] = "any"


class StaleRule(_CoinRule):
    """The coin's newest quote in ``currency`` is more than ``minutes`` old."""

    kind: Literal["stale"]
    minutes: int = Field(ge=1, le=10080)


class DagFailureRule(_Rule):
    """A task of one of ``dags`` (empty: any DAG) failed after its retries."""

    kind: Literal["dag_failure"]
    dags: list[str] = Field(default_factory=list)

    def matches(self, dag_id: str) -> bool:
        return not self.dags or dag_id in self.dags


Rule = Annotated[
    PriceCrossRule | PriceMoveRule | StaleRule | DagFailureRule, Field(discriminator="kind")
]
KINDS = ("price_cross", "price_move", "stale", "dag_failure")
_RULE = TypeAdapter(Rule)


@dataclass(frozen=True)
class RuleOff:
    """``{"id": "...", "enabled": false}`` with no other field: switches off the rule of that
    id from an earlier layer (the file), without repeating the whole rule."""

    id: str
    enabled: bool = False


def parse_rules(document: Any, origin: str) -> list[Rule | RuleOff]:
    """The rules of one document (``{"rules": [...]}`` or a bare list), validated one by one.

    Raises :class:`AlertRulesError` listing every bad rule by position and id, with the field
    and what it must be.
    """
    if document is None:
        return []
    items = document.get("rules") if isinstance(document, Mapping) else document
    if isinstance(document, Mapping) and set(document) - {"rules"}:
        raise AlertRulesError(
            f"{origin}: unknown top-level key(s) {sorted(set(document) - {'rules'})}; "
            "put every rule in a list under `rules:`"
        )
    if items is None:
        return []
    if not isinstance(items, list):
        raise AlertRulesError(f"{origin}: `rules` must be a list of rules, one per `- id: ...`")
    rules: list[Rule | RuleOff] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        label = f"rule {number}"
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            label += f" ({item['id']!r})"
        if not isinstance(item, Mapping):
            problems.append(f"{label}: is {type(item).__name__}, not a mapping of fields")
            continue
        if set(item) == {"id", "enabled"} and item["enabled"] is False:
            rules.append(RuleOff(str(item["id"])))
            continue
        if item.get("kind") not in KINDS:
            problems.append(f"{label}: kind {item.get('kind')!r} is not one of {', '.join(KINDS)}")
            continue
        try:
            rule = _RULE.validate_python(dict(item))
        except ValidationError as e:
            problems.extend(f"{label}: {_describe(err)}" for err in e.errors())
            continue
        if rule.id in seen:
            problems.append(f"{label}: the id is used twice in {origin}; ids must be unique")
            continue
        seen.add(rule.id)
        rules.append(rule)
    if problems:
        raise AlertRulesError(
            f"{origin} has invalid alert rules: " + "; ".join(problems) + ". Fix them and the "
            "next crypto_alerts run picks them up (README.md, 'Alerts', shows every kind)."
        )
    return rules


def _describe(error: Mapping[str, Any]) -> str:
    # loc is (kind tag, field, ...) for a discriminated union; the tag says nothing new.
    loc = [str(p) for p in error["loc"] if str(p) not in KINDS]
    where = ".".join(loc) or "rule"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a field of this kind of rule (check the spelling)"
    elif error["type"] == "missing":
        message = "is required"
    return (
        f"{where} {message}"
        if error["type"] in ("extra_forbidden", "missing")
        else (f"{where}: {message}")
    )


def read_rules_file(path: Path = RULES_FILE) -> list[Rule | RuleOff]:
    """The rules in the YAML file (none if it does not exist)."""
    if not path.exists():
        logger.info("no alert rules file at %s", path)
        return []
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise AlertRulesError(f"{path} is not valid YAML ({e}); fix its syntax") from None
    return parse_rules(
        document,
        str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path),
    )


def read_rules_variable(text: str | None) -> list[Rule | RuleOff]:
    """The rules in the Airflow Variable's value (JSON; YAML is accepted too)."""
    if text is None or not text.strip():
        return []
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise AlertRulesError(
            f"the Airflow Variable {RULES_VARIABLE} is not valid JSON ({e}); its value must be "
            '{"rules": [{"id": ..., "kind": ..., ...}]}'
        ) from None
    return parse_rules(document, f"the Airflow Variable {RULES_VARIABLE}")


def merge_rules(*layers: Iterable[Rule | RuleOff]) -> list[Rule]:
    """Later layers replace earlier rules with the same id and add new ones; disabled rules
    (``enabled: false``) are dropped after merging, so a Variable can switch a file rule off."""
    merged: dict[str, Rule | RuleOff] = {}
    for layer in layers:
        for rule in layer:
            merged[rule.id] = rule
    return [rule for rule in merged.values() if not isinstance(rule, RuleOff) and rule.enabled]


def load_rules(*, path: Path = RULES_FILE, variable_text: str | None = None) -> list[Rule]:
    """The rules in effect: the file's, overridden and extended by the Variable's."""
    return merge_rules(read_rules_file(path), read_rules_variable(variable_text))


def rules_variable_text() -> str | None:
    """The Variable's raw value (inside an Airflow task or callback), or None if unset."""
    from airflow.sdk import Variable

    return Variable.get(RULES_VARIABLE, default=None)


def coin_rule_rows(rules: Iterable[Rule]) -> list[tuple[Any, ...]]:
    """``raw.alert_rules`` rows: one per coin rule per coin."""
    rows = []
    for rule in rules:
        if isinstance(rule, DagFailureRule):
            continue
        direction = getattr(rule, "direction", None)
        level = getattr(rule, "level", None)
        percent = getattr(rule, "percent", None)
        minutes = getattr(rule, "minutes", None)
        for coin_id in dict.fromkeys(rule.coins):
            rows.append(
                (
                    rule.id,
                    rule.kind,
                    coin_id,
                    rule.currency,
                    direction,
                    level,
                    percent,
                    minutes,
                    rule.description,
                )
            )
    return rows


def sync_rules(conn: Any, rules: Iterable[Rule]) -> int:
    """Replace ``raw.alert_rules`` with the coin rules in one transaction; returns the rows."""
    rows = coin_rule_rows(rules)
    with conn.transaction():
        # A lock, not just delete+insert: two syncs at once would otherwise both insert.
        conn.execute("lock table raw.alert_rules in exclusive mode")
        conn.execute("delete from raw.alert_rules")
        with conn.cursor() as cur:
            cur.executemany(
                "insert into raw.alert_rules (rule_id, kind, coin_id, quote_currency, direction,"
                " level, percent, minutes, description) values (%s, %s, %s, %s, %s, %s, %s, %s,"
                " %s)",
                rows,
            )
    return len(rows)


# -- Conditions and events ------------------------------------------------------------------


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


def _utc(moment: datetime) -> str:
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
        f"Quote time: {_utc(c.last_updated_at)}",
        f"Checked: {_utc(c.evaluated_at)}",
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
    since = f"It had been open since {_utc(opened_at)} ({_duration(now - opened_at)})."
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
                        f"It had been open since {_utc(opened_at)} ({_duration(now - opened_at)}).",
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


# -- DAG failures ---------------------------------------------------------------------------


def dag_failure_message(rule: DagFailureRule, context: Mapping[str, Any], airflow_url: str) -> str:
    """Title line, blank line, body: which task of which DAG failed, why, and where the log is."""
    ti = context["ti"]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error is not None else "see the task log"
    # The first line, cut short: enough to recognise the failure; the log has the rest.
    reason = (reason.splitlines() or [""])[0][:300]
    return "\n".join(
        [
            f"Moonwatch alert: DAG {dag_id} failed",
            "",
            f"Task {task_id} of DAG {dag_id} failed after {getattr(ti, 'try_number', '?')} "
            f"tries (run {run_id}).",
            f"Error: {reason}",
            f"Rule: {rule.id} (dag_failure)",
            f"Time: {_utc(datetime.now(UTC))}",
            f"Log: {airflow_url.rstrip('/')}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
        ]
    )


def record_dag_failure(
    conn: Any,
    rule: DagFailureRule,
    context: Mapping[str, Any],
    message: str,
    *,
    successful_runs: int | None,
) -> int | None:
    """Open (or count one more failure on) the DAG's failure event; returns the event id when
    this failure opened it, None when an event for that DAG was already open."""
    ti = context["ti"]
    with conn.transaction():
        row = conn.execute(
            "insert into raw.alert_events (rule_id, kind, subject, dag_id, open_message,"
            " successful_runs_at_open, detail) values (%s, 'dag_failure', %s, %s, %s, %s,"
            " jsonb_build_object('title', %s::text, 'run_id', %s::text, 'task_id', %s::text))"
            " on conflict (rule_id, subject) where resolved_at is null"
            " do update set repeat_count = raw.alert_events.repeat_count + 1"
            " returning event_id, (xmax = 0) as inserted",
            (
                rule.id,
                ti.dag_id,
                ti.dag_id,
                message,
                successful_runs,
                message.splitlines()[0],
                ti.run_id,
                ti.task_id,
            ),
        ).fetchone()
    return row[0] if row[1] else None


class DagFailureNotifier(BaseNotifier):
    """``on_failure_callback`` of every task (``moonwatch.dag_defaults``): records the DAG's
    failure as an alert event and sends it through the same channel as every other alert,
    once per failing DAG until it succeeds again.

    When the warehouse that keeps the alert state is itself unreachable (often the very reason
    a DAG failed), the alert is sent anyway, saying it was not de-duplicated: a repeat is
    better than silence. It never raises: a broken channel must not hide the task's own error;
    a recorded but unsent notification is retried by crypto_alerts."""

    template_fields = ()

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            self._notify(context)
        except Exception:
            logger.exception(
                "could not record or send the DAG-failure alert; crypto_alerts retries unsent "
                "alerts every minute"
            )

    def _notify(self, context: Mapping[str, Any]) -> None:
        import psycopg

        from moonwatch.airflow_glue import warehouse_url_from_connection
        from moonwatch.settings import load_settings

        ti = context["ti"]
        try:
            every_rule = load_rules(variable_text=rules_variable_text())
        except AlertRulesError:
            # Broken rules must not silence failures (crypto_alerts' own failure names them).
            logger.warning("the alert rules do not validate: reporting this failure anyway")
            every_rule = [DagFailureRule(id=RULES_INVALID_ID, kind="dag_failure")]
        rules = [r for r in every_rule if isinstance(r, DagFailureRule) and r.matches(ti.dag_id)]
        if not rules:
            return
        settings = load_settings()
        messages = {r.id: dag_failure_message(r, context, settings.airflow_url) for r in rules}
        try:
            runs = _successful_runs_via(ti)(ti.dag_id)
            url = warehouse_url_from_connection() or settings.require_warehouse_url()
            with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                opened = [
                    event_id
                    for rule in rules
                    if (
                        event_id := record_dag_failure(
                            conn, rule, context, messages[rule.id], successful_runs=runs
                        )
                    )
                    is not None
                ]
                if opened:
                    deliver_pending(conn, send_via_apprise, event_ids=opened)
        except psycopg.OperationalError:
            logger.warning(
                "the warehouse that keeps alert state is unreachable: sending this DAG-failure "
                "alert without de-duplication"
            )
            title, body = _split(messages[rules[0].id])
            body += (
                "\n\nSent without de-duplication: the warehouse that records alerts was "
                "unreachable, so this failure is not in marts.alert_events."
            )
            send_via_apprise(Notification(0, "open", title, body))


def _successful_runs_via(ti: Any) -> Callable[[str], int | None]:
    """A DAG's successful-run count through the task's Airflow API client (None outside one)."""

    def count(dag_id: str) -> int | None:
        getter = getattr(ti, "get_dr_count", None)
        if getter is None:
            return None
        return getter(dag_id=dag_id, states=["success"])

    return count


# -- Delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    event_id: int
    phase: Literal["open", "resolved"]
    title: str
    body: str

    @property
    def notify_type(self) -> str:
        return "success" if self.phase == "resolved" else "failure"


def _split(message: str) -> tuple[str, str]:
    title, _, body = message.partition("\n")
    return title, body.lstrip("\n")


def pending_notifications(
    conn: Any, *, event_ids: Sequence[int] | None = None, now: datetime | None = None
) -> list[Notification]:
    """Unsent notifications, oldest first; an event's "open" before its "resolved"."""
    rows = conn.execute(
        "select event_id, 'open' as phase, open_message, opened_at as at from raw.alert_events"
        " where open_sent_at is null and opened_at >= %(since)s"
        "   and (%(ids)s::bigint[] is null or event_id = any(%(ids)s))"
        " union all"
        " select event_id, 'resolved', resolve_message, resolved_at from raw.alert_events"
        " where resolved_at is not null and resolve_sent_at is null and resolved_at >= %(since)s"
        "   and (%(ids)s::bigint[] is null or event_id = any(%(ids)s))"
        " order by at, event_id, phase desc",
        {
            "since": (now or datetime.now(UTC)) - SEND_WINDOW,
            "ids": list(event_ids) if event_ids is not None else None,
        },
    ).fetchall()
    return [Notification(row[0], row[1], *_split(row[2])) for row in rows]


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    no_channel: bool = False
    errors: list[str] = field(default_factory=list)


def deliver_pending(
    conn: Any,
    send: Callable[[Notification], None],
    *,
    event_ids: Sequence[int] | None = None,
) -> Delivery:
    """Send each unsent notification; mark it sent only after ``send`` returned.

    Each is sent while its row is locked (``for update skip locked``), so two runs at once
    never send the same one twice. ``send`` raising :class:`AlertDeliveryError` leaves it
    unsent (retried next run) and goes on with the others; :class:`NoAlertChannelError` stops.
    """
    report = Delivery()
    for note in pending_notifications(conn, event_ids=event_ids):
        # Two literal statements per phase (the column is not a value to interpolate).
        if note.phase == "open":
            lock = "select 1 from raw.alert_events where event_id = %s and open_sent_at is null"
            mark = (
                "update raw.alert_events set open_sent_at = clock_timestamp() where event_id = %s"
            )
        else:
            lock = "select 1 from raw.alert_events where event_id = %s and resolve_sent_at is null"
            mark = (
                "update raw.alert_events set resolve_sent_at = clock_timestamp()"
                " where event_id = %s"
            )
        with conn.transaction():
            locked = conn.execute(lock + " for update skip locked", (note.event_id,)).fetchone()
            if not locked:
                continue
            try:
                send(note)
            except NoAlertChannelError as e:
                report.no_channel = True
                conn.execute(
                    "update raw.alert_events set last_error = %s where event_id = %s",
                    (str(e)[:500], note.event_id),
                )
                break
            except AlertDeliveryError as e:
                report.failed += 1
                report.errors.append(str(e))
                conn.execute(
                    "update raw.alert_events set last_error = %s where event_id = %s",
                    (str(e)[:500], note.event_id),
                )
                continue
            conn.execute(mark, (note.event_id,))
            conn.execute(
                "update raw.alert_events set last_error = null where event_id = %s",
                (note.event_id,),
            )
            report.sent += 1
    return report


def send_via_apprise(note: Notification, conn_id: str = ALERT_CONN_ID) -> None:
    """Send one notification through Airflow's Apprise notifier and the connection."""
    from moonwatch.alert_delivery import CheckedAppriseNotifier

    notifier = CheckedAppriseNotifier(
        title=note.title, body=note.body, notify_type=note.notify_type, apprise_conn_id=conn_id
    )
    notifier.notify({})


# -- The crypto_alerts task -----------------------------------------------------------------


def run_alerts(
    *,
    warehouse_url: str,
    variable_text: str | None,
    rules_path: Path = RULES_FILE,
    successful_runs: Callable[[str], int | None] | None = None,
    send: Callable[[Notification], None] = send_via_apprise,
) -> dict[str, Any]:
    """One evaluation: sync the rules, open and resolve events, send what is unsent.

    Raises :class:`AlertRulesError` for a bad rule (nothing else changes: the previous rules
    stay in force), :class:`NothingToAlertOnYet` before the first quote build, and
    :class:`AlertDeliveryError` after the evaluation when a notification could not be sent.
    """
    import psycopg

    from moonwatch.dbt.checks import existing_relations

    rules = load_rules(path=rules_path, variable_text=variable_text)
    with psycopg.connect(warehouse_url, connect_timeout=10, autocommit=True) as conn:
        existing = existing_relations({*QUOTE_MARTS, *ALERT_MODELS}, warehouse_url=warehouse_url)
        if not set(QUOTE_MARTS) <= existing:
            raise NothingToAlertOnYet(
                "The quote marts are not built yet, so there is nothing to alert on; "
                "crypto_transform builds them on the first quote load."
            )
        synced = sync_rules(conn, rules)
        if not set(ALERT_MODELS) <= existing:
            _build_alert_models(warehouse_url)
        evaluation = evaluate(conn, successful_runs=successful_runs)
        delivery = deliver_pending(conn, send)
    unquoted = sorted(
        f"{rule_id} (coin {coin_id}, {currency})"
        for rule_id, _, coin_id, currency, *_ in coin_rule_rows(rules)
        if (rule_id, coin_id, currency) not in evaluation.judged
    )
    if unquoted:
        logger.warning(
            "no current quote for %s: these rules cannot fire until the coin is tracked "
            "(MOONWATCH_SYMBOLS or the Variable moonwatch_symbols) and quoted in that currency "
            "(MOONWATCH_QUOTE_CURRENCY)",
            ", ".join(unquoted),
        )
    summary_ = {
        "rules": len(rules),
        "rule_rows": synced,
        "active": evaluation.active,
        "opened": len(evaluation.opened),
        "resolved": len(evaluation.resolved),
        "sent": delivery.sent,
        "failed": delivery.failed,
        "no_channel": delivery.no_channel,
        "without_quotes": unquoted,
    }
    logger.info("alerts: %s", summary_)
    if delivery.no_channel:
        logger.warning(
            "alert events are recorded (the dashboard lists them) but not sent: no alert "
            "channel. Create the Airflow connection %r of type apprise (README.md, 'Alerts').",
            ALERT_CONN_ID,
        )
    if delivery.failed:
        raise AlertDeliveryError(
            f"{delivery.failed} alert notification(s) could not be delivered "
            f"({'; '.join(sorted(set(delivery.errors)))}); they stay unsent and the next run "
            "retries them."
        )
    return summary_


def _build_alert_models(warehouse_url: str) -> None:
    """First run after an install or upgrade: create the two alert views (seconds)."""
    import tempfile

    from moonwatch.dbt.runner import run_dbt

    with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-alerts-") as tmp:
        run_dbt(
            ["run", "--select", "alert_conditions", "alert_events"],
            warehouse_url=warehouse_url,
            target_path=Path(tmp) / "target",
            log_path=Path(tmp) / "logs",
            check=True,
        )
