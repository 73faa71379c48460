"""Alert rules: the shipped file validates, bad rules are refused naming the rule and the fix,
and the Airflow Variable overrides, extends and disables the file's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moonwatch.alerts import (
    AlertRulesError,
    DagFailureRule,
    PriceCrossRule,
    PriceMoveRule,
    StaleRule,
    coin_rule_rows,
    load_rules,
    read_rules_file,
    rules_file,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yml"
    path.write_text(text)
    return path


def test_rules_shipped_file_validates_with_every_kind() -> None:
    rules = read_rules_file(rules_file())
    kinds = {type(rule) for rule in rules}
    assert kinds == {PriceCrossRule, PriceMoveRule, StaleRule, DagFailureRule}
    assert all(rule.currency == "USD" for rule in rules if not isinstance(rule, DagFailureRule))


def test_rules_bad_rule_is_named_with_the_field_and_the_fix(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
rules:
  - {id: fine, kind: stale, coins: [1], currency: USD, minutes: 5}
  - {id: btc-move, kind: price_move, coins: [1], currency: USD, percent: -5, minutes: 5}
  - {id: eth-level, kind: price_cross, coins: [1027], currency: USD, direction: up, level: 1}
""",
    )
    with pytest.raises(AlertRulesError) as raised:
        read_rules_file(path)
    message = str(raised.value)
    assert "rule 2 ('btc-move')" in message and "percent" in message and "greater than 0" in message
    assert "rule 3 ('eth-level')" in message and "direction" in message and "'above'" in message
    assert "'fine'" not in message
    assert "alerts.yml" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{id: a, kind: stale, coins: [BTC], currency: USD, minutes: 5}", "tickers are not unique"),
        ("{id: a, kind: stale, coins: [1], minutes: 5}", "currency is required"),
        ("{id: a, kind: stale, coins: [1], currency: US-D, minutes: 5}", "3-5 letter code"),
        ("{id: a, kind: price_jump, coins: [1], currency: USD}", "is not one of price_cross"),
        ("{id: A B, kind: stale, coins: [1], currency: USD, minutes: 5}", "lowercase"),
        ("{id: a, kind: stale, coins: [1], currency: USD, minutes: 5, levl: 3}", "levl is not a"),
        ("{id: a, kind: stale, coins: [], currency: USD, minutes: 5}", "coins"),
    ],
)
def test_rules_each_mistake_gets_a_clear_message(tmp_path: Path, rule: str, expected: str) -> None:
    with pytest.raises(AlertRulesError, match=expected):
        read_rules_file(_write(tmp_path, f"rules:\n  - {rule}\n"))


def test_rules_duplicate_ids_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    twice = "rules:\n" + "  - {id: a, kind: stale, coins: [1], currency: USD, minutes: 5}\n" * 2
    with pytest.raises(AlertRulesError, match="used twice"):
        read_rules_file(_write(tmp_path, twice))
    with pytest.raises(AlertRulesError, match="not valid YAML"):
        read_rules_file(_write(tmp_path, "rules: [\n"))


def test_rules_variable_replaces_extends_and_disables_file_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
rules:
  - {id: btc-high, kind: price_cross, coins: [1], currency: USD, direction: above, level: 100}
  - {id: stale, kind: stale, coins: [1, 1027], currency: USD, minutes: 10}
  - {id: failures, kind: dag_failure}
""",
    )
    variable = json.dumps(
        {
            "rules": [
                {
                    "id": "btc-high",
                    "kind": "price_cross",
                    "coins": [1],
                    "currency": "EUR",
                    "direction": "above",
                    "level": 90000,
                },
                {"id": "failures", "enabled": False},
                {
                    "id": "stale",
                    "kind": "stale",
                    "coins": [1],
                    "currency": "USD",
                    "minutes": 5,
                    "enabled": False,
                },
                {
                    "id": "sol-drop",
                    "kind": "price_move",
                    "coins": [5426],
                    "currency": "USD",
                    "percent": 3,
                    "minutes": 15,
                    "direction": "down",
                },
            ]
        }
    )
    rules = {rule.id: rule for rule in load_rules(path=path, variable_text=variable)}
    assert set(rules) == {"btc-high", "sol-drop"}
    assert rules["btc-high"].currency == "EUR" and rules["btc-high"].level == 90000
    assert rules["sol-drop"].direction == "down"
    # One raw.alert_rules row per coin rule per coin: what the dbt view joins to the marts.
    rows = sorted(row[:4] for row in coin_rule_rows(rules.values()))
    assert rows == [("btc-high", "price_cross", 1, "EUR"), ("sol-drop", "price_move", 5426, "USD")]
    # Without the Variable, the file's rules, one raw.alert_rules row per coin.
    rows = sorted(row[:4] for row in coin_rule_rows(load_rules(path=path)))
    assert rows == [
        ("btc-high", "price_cross", 1, "USD"),
        ("stale", "stale", 1, "USD"),
        ("stale", "stale", 1027, "USD"),
    ]


def test_rules_bad_variable_names_the_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules: []\n")
    with pytest.raises(AlertRulesError, match="Variable moonwatch_alert_rules is not valid JSON"):
        load_rules(path=path, variable_text='{"rules": [')
    with pytest.raises(AlertRulesError, match=r"Variable moonwatch_alert_rules.*rule 1 \('x'\)"):
        load_rules(path=path, variable_text='[{"id": "x", "kind": "stale", "coins": [1]}]')


def test_rules_dag_failure_rule_matches_listed_dags_or_all() -> None:
    assert DagFailureRule(id="all", kind="dag_failure").matches("crypto_transform")
    only = DagFailureRule(id="some", kind="dag_failure", dags=["crypto_fx_load"])
    assert only.matches("crypto_fx_load") and not only.matches("crypto_transform")
