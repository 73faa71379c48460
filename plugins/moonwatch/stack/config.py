"""Where the local stack lives and how its parts find each other.

Everything is derived from the one typed settings object (``moonwatch.settings.Settings``:
ports, home folder, URLs) plus a ``secrets.env`` file of passwords generated on first start
(mode 0600, git-ignored). Nothing secret is written in code: each local stack gets its own
random passwords, and an external service is used instead of a local one whenever its URL is
given. The raw environment is kept only to hand each service its allow-listed part
(``moonwatch.stack.environment``).
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr, ValidationError

from moonwatch.settings import CMC_PUBLIC_BASE_URL, PROJECT_ROOT, Settings, invalid_settings
from moonwatch.stack.files import ensure_private, write_private

# The checkout this launcher runs from. Only the launcher needs it, and legitimately: it runs
# Airflow on the checkout's dags/ and plugins/, dbt on dbt_project/ and Streamlit on
# streamlit_app/, which are files beside the package, not part of it. The same folder the
# settings' defaults (dbt project, state folder) start from, so derived in one place.
CHECKOUT = PROJECT_ROOT

_PORT_FIELDS = ("pg_port", "kafka_port", "airflow_port", "dashboard_port", "sim_port", "redis_port")
# Setting name -> default port, from Settings (ephemeral stacks and tests pick free ones).
DEFAULT_PORTS = {
    str(Settings.model_fields[f].validation_alias.choices[0]): Settings.model_fields[f].default
    for f in _PORT_FIELDS
}
SECRET_NAMES = (
    "MOONWATCH_PG_ADMIN_PASSWORD",
    "MOONWATCH_LOADER_PASSWORD",
    "MOONWATCH_DASHBOARD_PASSWORD",
    "MOONWATCH_AIRFLOW_DB_PASSWORD",
    "MOONWATCH_AIRFLOW_ADMIN_PASSWORD",
    "MOONWATCH_AIRFLOW_SECRET_KEY",
    "MOONWATCH_REDIS_PASSWORD",  # the Celery broker's (MOONWATCH_EXECUTOR=celery)
)
PG_ADMIN_USER = "moonwatch_admin"
LOADER_ROLE = "moonwatch_loader"
DASHBOARD_ROLE = "moonwatch_dashboard"
AIRFLOW_DB_ROLE = "airflow"
WAREHOUSE_DB = "moonwatch"
AIRFLOW_DB = "airflow"
AIRFLOW_ADMIN_USER = "admin"


class _SettingsFrom(Settings):
    """``Settings`` from the mapping given, not from this process's environment: a launcher
    may be handed another stack's environment (tests, ephemeral stacks, the supervisor)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **others):  # type: ignore[override]
        return (init_settings,)


def read_settings(env: dict[str, str]) -> Settings:
    """``Settings`` from ``env`` (empty values mean "the default", as in Docker's entrypoint)."""
    given = {k: v for k, v in env.items() if k.startswith(("MOONWATCH_", "CMC_")) and v}
    try:
        return _SettingsFrom(**given)
    except ValidationError as e:
        raise invalid_settings(e) from None


@dataclass
class StackConfig:
    """Paths, ports and credentials of one local stack."""

    home: Path
    pg_port: int
    kafka_port: int
    airflow_port: int
    dashboard_port: int
    sim_port: int
    redis_port: int
    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StackConfig:
        env = dict(os.environ if env is None else env)
        settings = read_settings(env)
        config = cls(
            home=settings.home.resolve(),
            **{name: getattr(settings, name) for name in _PORT_FIELDS},
            settings=settings,
            env=env,
        )
        config.secrets = config._load_or_create_secrets()
        return config

    # -- folders ---------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pg_data(self) -> Path:
        return self.home / "postgres" / "data"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def redis_dir(self) -> Path:
        """Redis's working folder: nothing it might write lands in the checkout."""
        return self.home / "redis"

    def celery_worker_dir(self, worker: str) -> Path:
        """Each Celery worker's own working folder: a task that reads or writes a relative
        path finds nothing another worker (or the launcher) left, as on separate machines."""
        return self.celery_dir / worker

    @property
    def celery_dir(self) -> Path:
        return self.home / "celery"

    @property
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent

    # -- which services are external -------------------------------------------------------
    # A URL equal to the local stack's own (exported by `eval "$(make -s env)"`) is not external.
    @property
    def external_postgres(self) -> bool:
        given = self._given("warehouse_url")
        local = self._pg_url(LOADER_ROLE, "MOONWATCH_LOADER_PASSWORD", WAREHOUSE_DB)
        return bool(given) and given != local

    @property
    def external_kafka(self) -> bool:
        given = self._given("kafka_bootstrap")
        return bool(given) and given != f"127.0.0.1:{self.kafka_port}"

    @property
    def celery(self) -> bool:
        """MOONWATCH_EXECUTOR=celery: the CeleryExecutor, Redis and two Celery workers."""
        return self.settings.executor == "celery"

    @property
    def simulated(self) -> bool:
        return self.settings.is_simulated

    # -- derived URLs ----------------------------------------------------------------------
    def _given(self, name: str) -> str | None:
        """The setting's value when the environment gave one, else None (the stack derives it)."""
        if name not in self.settings.model_fields_set:
            return None
        value = getattr(self.settings, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    def _pg_url(self, user: str, password_name: str, database: str) -> str:
        password = quote(self.secrets[password_name], safe="")
        return f"postgresql://{user}:{password}@127.0.0.1:{self.pg_port}/{database}"

    @property
    def admin_url(self) -> str:
        return self._pg_url(PG_ADMIN_USER, "MOONWATCH_PG_ADMIN_PASSWORD", "postgres")

    @property
    def warehouse_url(self) -> str:
        return self._given("warehouse_url") or self._pg_url(
            LOADER_ROLE, "MOONWATCH_LOADER_PASSWORD", WAREHOUSE_DB
        )

    @property
    def dashboard_db_url(self) -> str:
        return self._given("dashboard_db_url") or self._pg_url(
            DASHBOARD_ROLE, "MOONWATCH_DASHBOARD_PASSWORD", WAREHOUSE_DB
        )

    @property
    def airflow_db_url(self) -> str:
        return self._given("airflow_db_url") or self._pg_url(
            AIRFLOW_DB_ROLE, "MOONWATCH_AIRFLOW_DB_PASSWORD", AIRFLOW_DB
        ).replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def celery_broker_url(self) -> str:
        password = quote(self.secrets["MOONWATCH_REDIS_PASSWORD"], safe="")
        return (
            self._given("celery_broker_url") or f"redis://:{password}@127.0.0.1:{self.redis_port}/0"
        )

    @property
    def kafka_bootstrap(self) -> str:
        return self._given("kafka_bootstrap") or f"127.0.0.1:{self.kafka_port}"

    @property
    def topic(self) -> str:
        return self.settings.topic

    @property
    def consumer_group(self) -> str:
        return self.settings.consumer_group

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def cmc_base_url(self) -> str:
        return self._given("cmc_base_url") or (
            self.simulator_url if self.simulated else CMC_PUBLIC_BASE_URL
        )

    @property
    def fx_base_url(self) -> str:
        return self._given("fx_base_url") or (
            f"{self.simulator_url}/frankfurter" if self.simulated else ""
        )

    @property
    def airflow_url(self) -> str:
        return self._given("airflow_url") or f"http://127.0.0.1:{self.airflow_port}"

    @property
    def dashboard_url(self) -> str:
        return self._given("dashboard_url") or f"http://127.0.0.1:{self.dashboard_port}"

    def settings_env(self) -> dict[str, str]:
        """The contract settings (README, Configuration) as environment variables, for every
        service and `make env`."""
        values = {
            "CMC_BASE_URL": self.cmc_base_url,
            "MOONWATCH_TOPIC": self.topic,
            "MOONWATCH_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "MOONWATCH_WAREHOUSE_URL": self.warehouse_url,
            "MOONWATCH_DASHBOARD_DB_URL": self.dashboard_db_url,
            "MOONWATCH_AIRFLOW_URL": self.airflow_url,
            "MOONWATCH_DASHBOARD_URL": self.dashboard_url,
            "MOONWATCH_HOME": str(self.home),
        }
        if self.fx_base_url:
            values["MOONWATCH_FX_BASE_URL"] = self.fx_base_url
        for name, field_name in (("MOONWATCH_SYMBOLS", "symbols"), ("CMC_API_KEY", "cmc_api_key")):
            given = self._given(field_name)
            if given:
                values[name] = given
        return values

    # -- secrets ---------------------------------------------------------------------------
    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.env"

    def _load_or_create_secrets(self) -> dict[str, str]:
        stored: dict[str, str] = {}
        ensure_private(self.secrets_file, "the stack's passwords")
        if self.secrets_file.exists():
            for line in self.secrets_file.read_text().splitlines():
                name, sep, value = line.partition("=")
                if sep:
                    stored[name.strip()] = value.strip()
        missing = [name for name in SECRET_NAMES if not stored.get(name)]
        if missing:
            for name in missing:
                stored[name] = self.env.get(name) or secrets.token_urlsafe(18)
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(self.secrets_file, "".join(f"{k}={v}\n" for k, v in stored.items()))
        return stored
