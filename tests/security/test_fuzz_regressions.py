"""The bugs the fuzz tests found, each pinned by one deterministic example."""

from __future__ import annotations

import json

import pytest

from moonwatch.errors import SourceError, SourceResponseError
from moonwatch.messages import InvalidMessage, build_quote_message, parse_quote_message
from moonwatch.sources.cmc_shapes import coins_by_symbol
from tests.factories import BASE_TIME, coin_object
from tests.security.test_fuzz_cmc import KEY, _in_memory_client, leaks


def test_integer_past_pythons_digit_limit_is_a_rejection_not_a_value_error() -> None:
    with pytest.raises(InvalidMessage, match="not JSON"):
        parse_quote_message(b'{"schema_version":1,"price":' + b"9" * 5000 + b"}")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_without_a_utc_equivalent_is_a_rejection_not_an_overflow(at: str) -> None:
    coin = coin_object()
    coin["quote"]["USD"]["last_updated"] = at
    with pytest.raises(InvalidMessage, match="out of range"):
        build_quote_message(coin, "USD", "simulator", BASE_TIME)


def test_unknown_schema_version_reason_stays_short() -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_quote_message(json.dumps({"schema_version": "x" * 100_000}).encode())
    assert len(raised.value.reason) < 200


def test_coin_whose_quote_is_not_an_object_is_skipped_with_a_reason() -> None:
    coin = {**coin_object(), "quote": [{"symbol": "USD", "price": 1.0}]}  # v3 shape, raw
    with pytest.raises(InvalidMessage, match="no quote in USD"):
        build_quote_message(coin, "USD", "simulator", BASE_TIME)


def test_ticker_shared_by_coins_with_a_400_digit_rank_does_not_overflow() -> None:
    twins = [{**coin_object(1), "cmc_rank": 10**400}, {**coin_object(1), "id": 2, "cmc_rank": 3}]
    found, missing = coins_by_symbol({"BTC": twins}, ["BTC"], set())
    assert [c["id"] for c in found] == [2] and missing == []


def _ask(body: bytes, status: int = 200):
    client, adapter = _in_memory_client()
    adapter.reply = (status, body, "application/json")
    with client:
        return client.quotes_latest(ids=[1])


def test_infinite_error_code_is_a_source_error_not_an_overflow() -> None:
    with pytest.raises(SourceError):
        _ask(b'{"status": {"error_code": Infinity}, "data": {}}')


def test_non_json_body_cut_inside_an_echoed_key_shows_no_part_of_it() -> None:
    body = ("x" * 100 + KEY).encode()  # the 120-character snippet ends inside the key
    with pytest.raises(SourceResponseError) as raised:
        _ask(body)
    assert not leaks(str(raised.value)) and "***" in str(raised.value)


def test_status_without_data_is_redacted_in_the_error() -> None:
    body = json.dumps({"status": {"error_code": 0, "notice": f"key {KEY}"}}).encode()
    with pytest.raises(SourceResponseError, match="without 'data'") as raised:
        _ask(body)
    assert not leaks(str(raised.value))


@pytest.mark.parametrize("credit_count", [True, 2**31, 10**400, -1, 1.5])
def test_absurd_credit_count_falls_back_to_the_estimate(credit_count: object) -> None:
    body = {"status": {"error_code": 0, "credit_count": credit_count}, "data": {"1": coin_object()}}
    result = _ask(json.dumps(body).encode())
    assert type(result.credit_count) is int and result.credit_count == 1
