"""Moonwatch settings: one typed object read from the environment.

Every field names its environment variable (the ``alias``). The names the README's
Configuration section lists are a contract: the launcher, the DAGs, dbt's profile, the
dashboard and ``make env`` all read the same variables. Secrets are ``SecretStr`` so they
never print by accident.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from moonwatch.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CMC_PUBLIC_BASE_URL = "https://pro-api.coinmarketcap.com"
# The offline simulator's port (MOONWATCH_SIM_PORT for the launcher) and the URL the
# CoinMarketCap client defaults to without a key or CMC_BASE_URL.
DEFAULT_SIM_PORT = 18600
SIMULATOR_DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_SIM_PORT}"
DEFAULT_TOPIC = "crypto"
DEFAULT_CONSUMER_GROUP = "moonwatch-quotes-loader"
# Three, so a deployment can add loaders (MOONWATCH_LOADERS) without re-keying the topic:
# adding partitions later moves coins to other partitions. 64 bounds a typo, not Kafka.
DEFAULT_TOPIC_PARTITIONS = 3
MAX_TOPIC_PARTITIONS = 64
DEFAULT_SYMBOLS = "BTC,ETH,SOL,BNB,XRP,ADA,DOGE,AVAX,DOT,LINK"
DASHBOARD_CURRENCIES = ("USD", "EUR", "SEK", "NOK", "DKK", "GBP")

# A Kafka topic name per Kafka's own rules; anything else is refused before it reaches SQL or a
# broker call.
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TICKER_RE = re.compile(r"^[A-Za-z0-9$._-]{1,32}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3,5}$")


def _env(name: str, *more: str) -> dict:
    return {"validation_alias": AliasChoices(name, *more)}


class Settings(BaseSettings):
    """Everything Moonwatch reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    cmc_api_key: SecretStr | None = Field(
        None,
        description="CMC_API_KEY: CoinMarketCap key; unset = the offline simulator is the source.",
        **_env("CMC_API_KEY"),
    )
    cmc_base_url: str = Field(
        "",
        description="CMC_BASE_URL: CoinMarketCap base URL; empty picks the real API when a key "
        "is set, else the simulator's URL. With a key it must be https (or loopback).",
        **_env("CMC_BASE_URL"),
    )
    symbols: str = Field(
        DEFAULT_SYMBOLS,
        description="MOONWATCH_SYMBOLS: coins to track, tickers (BTC,ETH) or ids (id:1,id:1027).",
        **_env("MOONWATCH_SYMBOLS"),
    )
    quote_currency: str = Field(
        "USD",
        description="MOONWATCH_QUOTE_CURRENCY: the currency CoinMarketCap quotes in.",
        **_env("MOONWATCH_QUOTE_CURRENCY"),
    )
    topic: str = Field(
        DEFAULT_TOPIC, description="MOONWATCH_TOPIC: Kafka topic.", **_env("MOONWATCH_TOPIC")
    )
    kafka_bootstrap: str = Field(
        "127.0.0.1:19092",
        description="MOONWATCH_KAFKA_BOOTSTRAP: Kafka bootstrap servers.",
        **_env("MOONWATCH_KAFKA_BOOTSTRAP"),
    )
    kafka_security: SecretStr | None = Field(
        None,
        description="MOONWATCH_KAFKA_SECURITY: a JSON object of librdkafka security settings "
        '(security.protocol, sasl.*, ssl.*), e.g. {"security.protocol": "SASL_SSL", '
        '"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "...", "sasl.password": "..."}, '
        "for a cluster that needs them. In Airflow the moonwatch_kafka connection's extra "
        "gives them instead.",
        **_env("MOONWATCH_KAFKA_SECURITY"),
    )
    consumer_group: str = Field(
        DEFAULT_CONSUMER_GROUP,
        description="MOONWATCH_CONSUMER_GROUP: the loader's Kafka consumer group.",
        **_env("MOONWATCH_CONSUMER_GROUP"),
    )
    topic_partitions: int = Field(
        DEFAULT_TOPIC_PARTITIONS,
        ge=1,
        le=MAX_TOPIC_PARTITIONS,
        description="MOONWATCH_TOPIC_PARTITIONS: partitions the launcher creates the topic with "
        "(messages are keyed by coin id, so one coin's quotes stay in order in one partition); "
        "the most loaders that can share the load.",
        **_env("MOONWATCH_TOPIC_PARTITIONS"),
    )
    loaders: int = Field(
        1,
        ge=1,
        le=MAX_TOPIC_PARTITIONS,
        description="MOONWATCH_LOADERS: load tasks each crypto_quotes_load run starts at once, "
        "each a member of the consumer group with its share of the partitions (at most "
        "MOONWATCH_TOPIC_PARTITIONS).",
        **_env("MOONWATCH_LOADERS"),
    )
    warehouse_url: SecretStr | None = Field(
        None,
        description="MOONWATCH_WAREHOUSE_URL: warehouse Postgres URL, loader (read-write) role.",
        **_env("MOONWATCH_WAREHOUSE_URL"),
    )
    dashboard_db_url: SecretStr | None = Field(
        None,
        description="MOONWATCH_DASHBOARD_DB_URL: warehouse Postgres URL, read-only dashboard role.",
        **_env("MOONWATCH_DASHBOARD_DB_URL"),
    )
    airflow_url: str = Field(
        "http://127.0.0.1:18080",
        description="MOONWATCH_AIRFLOW_URL: where the Airflow UI answers.",
        **_env("MOONWATCH_AIRFLOW_URL"),
    )
    dashboard_url: str = Field(
        "http://127.0.0.1:18501",
        description="MOONWATCH_DASHBOARD_URL: where the dashboard answers.",
        **_env("MOONWATCH_DASHBOARD_URL"),
    )
    dashboard_refresh_seconds: int = Field(
        30,
        ge=5,
        description="MOONWATCH_DASHBOARD_REFRESH_SECONDS: how often the dashboard refreshes "
        "itself, and how long it caches a query's result (at least 5 s).",
        **_env("MOONWATCH_DASHBOARD_REFRESH_SECONDS"),
    )
    stale_after_seconds: int = Field(
        300,
        ge=1,
        description="MOONWATCH_STALE_AFTER_SECONDS: the dashboard marks a coin stale, and does "
        "not preselect it, when the pipeline fetched its newest quote longer ago than this.",
        **_env("MOONWATCH_STALE_AFTER_SECONDS"),
    )
    monthly_credit_budget: int = Field(
        10_000,
        ge=0,
        description="MOONWATCH_CMC_MONTHLY_CREDITS: CoinMarketCap credits the plan allows a month.",
        **_env("MOONWATCH_CMC_MONTHLY_CREDITS"),
    )
    listings_limit: int = Field(
        200,
        ge=10,
        le=5000,
        description="MOONWATCH_LISTINGS_LIMIT: coins per listings snapshot.",
        **_env("MOONWATCH_LISTINGS_LIMIT"),
    )
    listings_every_minutes: int = Field(
        15,
        ge=1,
        description="MOONWATCH_LISTINGS_EVERY_MINUTES: minutes between listings snapshots.",
        **_env("MOONWATCH_LISTINGS_EVERY_MINUTES"),
    )
    fx_base_url: str = Field(
        "https://api.frankfurter.dev/v1",
        description="MOONWATCH_FX_BASE_URL: keyless daily reference rates (Frankfurter/ECB shape).",
        **_env("MOONWATCH_FX_BASE_URL"),
    )
    http_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="MOONWATCH_HTTP_TIMEOUT: seconds before an API call times out.",
        **_env("MOONWATCH_HTTP_TIMEOUT"),
    )
    simulator_seed: int = Field(
        42,
        description="MOONWATCH_SIM_SEED: the simulator's random seed.",
        **_env("MOONWATCH_SIM_SEED"),
    )
    dbt_project_dir: Path = Field(
        PROJECT_ROOT / "dbt_project",
        description="MOONWATCH_DBT_PROJECT_DIR: the dbt project folder (default: the checkout's "
        "dbt_project/), so a deployment can put it anywhere.",
        **_env("MOONWATCH_DBT_PROJECT_DIR"),
    )
    home: Path = Field(
        PROJECT_ROOT / ".moonwatch",
        description="MOONWATCH_HOME: state folder for the local stack (data, logs, PIDs).",
        **_env("MOONWATCH_HOME"),
    )
    # The local launcher's own (moonwatch.stack): ports on 127.0.0.1, chosen away from
    # 5432/9092/8080/8501 so a system Postgres, Kafka or Airflow can keep theirs.
    pg_port: int = Field(55432, ge=1024, le=65535, **_env("MOONWATCH_PG_PORT"))
    kafka_port: int = Field(19092, ge=1024, le=65535, **_env("MOONWATCH_KAFKA_PORT"))
    airflow_port: int = Field(18080, ge=1024, le=65535, **_env("MOONWATCH_AIRFLOW_PORT"))
    dashboard_port: int = Field(18501, ge=1024, le=65535, **_env("MOONWATCH_DASHBOARD_PORT"))
    sim_port: int = Field(DEFAULT_SIM_PORT, ge=1024, le=65535, **_env("MOONWATCH_SIM_PORT"))
    redis_port: int = Field(16379, ge=1024, le=65535, **_env("MOONWATCH_REDIS_PORT"))
    executor: Literal["local", "celery"] = Field(
        "local",
        description="MOONWATCH_EXECUTOR: `local` (Airflow's LocalExecutor) or `celery` (the "
        "CeleryExecutor, Redis as its broker and two Celery workers).",
        **_env("MOONWATCH_EXECUTOR"),
    )
    celery_broker_url: SecretStr | None = Field(
        None,
        description="MOONWATCH_CELERY_BROKER_URL: the Celery broker (redis://:PASSWORD@HOST:PORT/0)"
        " when MOONWATCH_EXECUTOR=celery; the local launcher derives it.",
        **_env("MOONWATCH_CELERY_BROKER_URL"),
    )
    airflow_db_url: SecretStr | None = Field(
        None,
        description="MOONWATCH_AIRFLOW_DB_URL: Airflow's metadata database (SQLAlchemy URL).",
        **_env("MOONWATCH_AIRFLOW_DB_URL"),
    )
    airflow_secret_key: SecretStr | None = Field(
        None,
        description="MOONWATCH_AIRFLOW_SECRET_KEY: signs the Airflow api-server's tokens.",
        **_env("MOONWATCH_AIRFLOW_SECRET_KEY"),
    )
    retention_days: int = Field(
        7,
        ge=1,
        description="MOONWATCH_RETENTION_DAYS: days that Airflow's task logs and metadata and the "
        "warehouse's rejected rows are kept (crypto_maintenance deletes what is older; the "
        "quotes themselves are kept).",
        **_env("MOONWATCH_RETENTION_DAYS"),
    )
    down_drain_seconds: float = Field(
        90.0,
        ge=0,
        description="MOONWATCH_DOWN_DRAIN_SECONDS: how long `make down` waits for the loader to "
        "load what the local (memory-only) broker holds.",
        **_env("MOONWATCH_DOWN_DRAIN_SECONDS"),
    )

    @field_validator("cmc_base_url")
    @classmethod
    def _check_cmc_base_url(cls, value: str, info: ValidationInfo) -> str:
        # Imported here: moonwatch.sources imports this module.
        from moonwatch.sources._http import key_url_problem

        key = info.data.get("cmc_api_key")
        if value and key is not None and key.get_secret_value().strip():
            problem = key_url_problem(value, "CMC_BASE_URL")
            if problem:
                raise ValueError(problem)
        return value

    @field_validator(
        "dashboard_refresh_seconds", "stale_after_seconds", "retention_days", mode="before"
    )
    @classmethod
    def _blank_is_default(cls, value: object, info: ValidationInfo) -> object:
        # docker-compose passes an unset variable on as "" (`${VAR:-}`): that means the default.
        if isinstance(value, str) and not value.strip():
            return cls.model_fields[info.field_name].default
        return value

    @field_validator("topic")
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if not _TOPIC_RE.match(value):
            raise ValueError(
                "a Kafka topic name is 1-249 characters of letters, digits, '.', '_' or '-'"
            )
        return value

    @field_validator("topic_partitions", "loaders", mode="before")
    @classmethod
    def _blank_count_is_default(cls, value: object, info: ValidationInfo) -> object:
        return cls._blank_is_default(value, info)

    @field_validator("loaders")
    @classmethod
    def _check_loaders(cls, value: int, info: ValidationInfo) -> int:
        partitions = info.data.get("topic_partitions")
        if partitions is not None and value > partitions:
            raise ValueError(
                f"{value} loaders for {partitions} partitions: a partition is read by one loader "
                "of the group at a time, so the extra loaders would only wait. Set "
                "MOONWATCH_LOADERS to at most MOONWATCH_TOPIC_PARTITIONS, or raise the partitions"
            )
        return value

    @field_validator("quote_currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        value = value.strip().upper()
        if not _CURRENCY_RE.match(value):
            raise ValueError("a currency is a 3-5 letter code such as USD or EUR")
        return value

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: str) -> str:
        parse_symbols(value)
        return value

    def require_warehouse_url(self) -> str:
        """The loader's warehouse URL, or a ConfigurationError saying how to get one."""
        return _require(self.warehouse_url, "MOONWATCH_WAREHOUSE_URL")

    def kafka_security_config(self) -> dict[str, str]:
        """The librdkafka security settings every Moonwatch client adds (producer, loader)."""
        if self.kafka_security is None or not self.kafka_security.get_secret_value().strip():
            return {}
        return parse_kafka_security(self.kafka_security.get_secret_value())

    def require_dashboard_db_url(self) -> str:
        """The dashboard's read-only warehouse URL, or a ConfigurationError."""
        return _require(self.dashboard_db_url, "MOONWATCH_DASHBOARD_DB_URL")

    @property
    def is_simulated(self) -> bool:
        """True when no API key is set: the offline simulator is the source."""
        return self.cmc_api_key is None or not self.cmc_api_key.get_secret_value().strip()


def _require(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value().strip():
        raise ConfigurationError(
            f"{name} is not set. Start the local stack with `make up` and load its settings with "
            f'`eval "$(make -s env)"`, or export {name} yourself.'
        )
    return value.get_secret_value()


def is_kafka_security_key(key: str) -> bool:
    """librdkafka's authentication and encryption settings, the ones a secured cluster needs."""
    return key == "security.protocol" or key.startswith(("sasl.", "ssl."))


def parse_kafka_security(raw: str) -> dict[str, str]:
    """``MOONWATCH_KAFKA_SECURITY``'s JSON object as librdkafka settings; a ConfigurationError
    that names the problem (never the value: it may hold a password) for anything else."""
    import json

    try:
        config = json.loads(raw)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ConfigurationError(
            "MOONWATCH_KAFKA_SECURITY is not a JSON object. Set it to librdkafka's security "
            'settings, e.g. {"security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem"}.'
        )
    other = sorted(k for k in config if not is_kafka_security_key(str(k)))
    if other:
        raise ConfigurationError(
            f"MOONWATCH_KAFKA_SECURITY may hold only security.protocol, sasl.* and ssl.* "
            f"settings, not {other}: the other client settings are Moonwatch's own "
            "(MOONWATCH_KAFKA_BOOTSTRAP, MOONWATCH_CONSUMER_GROUP)."
        )
    return {str(k): str(v) for k, v in config.items()}


def parse_symbols(raw: str) -> tuple[list[int], list[str]]:
    """Split ``MOONWATCH_SYMBOLS`` into CoinMarketCap ids and tickers.

    ``"BTC,eth,id:5426"`` → ``([5426], ["BTC", "ETH"])``. Raises ValueError naming the bad item.
    """
    ids: list[int] = []
    tickers: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item.lower().startswith("id:"):
            number = item[3:].strip()
            if not number.isdigit() or int(number) <= 0:
                raise ValueError(f"{item!r} is not a CoinMarketCap id; write ids as id:1,id:1027")
            ids.append(int(number))
        elif _TICKER_RE.match(item):
            tickers.append(item.upper())
        else:
            raise ValueError(
                f"{item!r} is not a ticker; use letters and digits such as BTC,ETH or ids as id:1"
            )
    if not ids and not tickers:
        raise ValueError("no coins given; set MOONWATCH_SYMBOLS to e.g. BTC,ETH,SOL")
    return ids, tickers


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return load_settings()


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into a clear message."""
    try:
        return Settings()
    except ValidationError as e:
        raise invalid_settings(e) from None


def current_settings() -> Settings:
    """:func:`load_settings` for a caller that asks on every run (the dashboard, several times
    a page run): the same answer, read again only when the environment has changed since.
    Settings come from the environment alone, and reading them costs about a millisecond of
    pydantic's validation, once per query on the page's path to its headline."""
    return _settings_of(frozenset(os.environ.items()))


@lru_cache(maxsize=4)
def _settings_of(environment: frozenset[tuple[str, str]]) -> Settings:
    # The key is the environment load_settings reads; a bad one raises, and is not cached.
    return load_settings()


def invalid_settings(e: ValidationError) -> ConfigurationError:
    """The clear message for settings that fail validation (also the launcher's)."""
    problems = "; ".join(
        f"{'/'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
    )
    return ConfigurationError(
        f"Moonwatch settings are invalid ({problems}). Fix the environment variables "
        "named in README.md's configuration table."
    )


def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return _cached()
