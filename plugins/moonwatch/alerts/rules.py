"""Alert rules: ``dbt_project/alerts.yml`` overridden and extended by the Airflow Variable
``moonwatch_alert_rules``, validated into typed rules, and the coin rules written to
``raw.alert_rules`` for the ``marts.alert_conditions`` view."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from moonwatch.errors import ConfigurationError
from moonwatch.settings import Settings, get_settings

logger = logging.getLogger(__name__)

RULES_FILE_NAME = "alerts.yml"


def rules_file() -> Path:
    """The rules file beside the dbt project it alerts on (``MOONWATCH_DBT_PROJECT_DIR``)."""
    return get_settings().dbt_project_dir / RULES_FILE_NAME


RULES_VARIABLE = "moonwatch_alert_rules"
# The DAG-failure rule in force while the rules do not validate.
RULES_INVALID_ID = "rules-invalid"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class AlertRulesError(ConfigurationError):
    """An alert rule does not validate: the message names the rule and what to fix."""


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


def read_rules_file(path: Path | None = None) -> list[Rule | RuleOff]:
    """The rules in the YAML file (none if it does not exist)."""
    path = path or rules_file()
    if not path.exists():
        logger.info("no alert rules file at %s", path)
        return []
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise AlertRulesError(f"{path} is not valid YAML ({e}); fix its syntax") from None
    return parse_rules(document, str(path))


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


def load_rules(*, path: Path | None = None, variable_text: str | None = None) -> list[Rule]:
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
