"""Where the local stack lives and how its parts find each other.

Everything is derived from the environment (ports, home folder) plus a ``secrets.env`` file of
passwords generated on first start (mode 0600, git-ignored). Nothing secret is written in code:
each local stack gets its own random passwords, and an external service is used instead of a
local one whenever its URL is given in the environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from moonwatch.errors import ConfigurationError
from moonwatch.settings import CMC_PUBLIC_BASE_URL, PROJECT_ROOT
from moonwatch.stack.files import ensure_private, write_private

DEFAULT_PORTS = {
    # Chosen away from 5432/9092/8080/8501 so a system Postgres, Kafka or Airflow can keep theirs.
    "MOONWATCH_PG_PORT": 55432,
    "MOONWATCH_KAFKA_PORT": 19092,
    "MOONWATCH_AIRFLOW_PORT": 18080,
    "MOONWATCH_DASHBOARD_PORT": 18501,
    "MOONWATCH_SIM_PORT": 18600,
}
SECRET_NAMES = (
    "MOONWATCH_PG_ADMIN_PASSWORD",
    "MOONWATCH_LOADER_PASSWORD",
    "MOONWATCH_DASHBOARD_PASSWORD",
    "MOONWATCH_AIRFLOW_DB_PASSWORD",
    "MOONWATCH_AIRFLOW_ADMIN_PASSWORD",
    "MOONWATCH_AIRFLOW_SECRET_KEY",
)
PG_ADMIN_USER = "moonwatch_admin"
LOADER_ROLE = "moonwatch_loader"
DASHBOARD_ROLE = "moonwatch_dashboard"
AIRFLOW_DB_ROLE = "airflow"
WAREHOUSE_DB = "moonwatch"
AIRFLOW_DB = "airflow"
AIRFLOW_ADMIN_USER = "admin"


def _port(env: dict[str, str], name: str) -> int:
    raw = env.get(name, "")
    if not raw:
        return DEFAULT_PORTS[name]
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
        raise ConfigurationError(f"{name}={raw!r} is not a port; use a number from 1024 to 65535")
    return int(raw)


@dataclass
class StackConfig:
    """Paths, ports and credentials of one local stack."""

    home: Path
    pg_port: int
    kafka_port: int
    airflow_port: int
    dashboard_port: int
    sim_port: int
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StackConfig:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("MOONWATCH_HOME") or PROJECT_ROOT / ".moonwatch").resolve()
        config = cls(
            home=home,
            pg_port=_port(env, "MOONWATCH_PG_PORT"),
            kafka_port=_port(env, "MOONWATCH_KAFKA_PORT"),
            airflow_port=_port(env, "MOONWATCH_AIRFLOW_PORT"),
            dashboard_port=_port(env, "MOONWATCH_DASHBOARD_PORT"),
            sim_port=_port(env, "MOONWATCH_SIM_PORT"),
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
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent

    # -- which services are external -------------------------------------------------------
    # A URL equal to the local stack's own (exported by `eval "$(make -s env)"`) is not external.
    @property
    def external_postgres(self) -> bool:
        given = self.env.get("MOONWATCH_WAREHOUSE_URL")
        local = self._pg_url(LOADER_ROLE, "MOONWATCH_LOADER_PASSWORD", WAREHOUSE_DB)
        return bool(given) and given != local

    @property
    def external_kafka(self) -> bool:
        given = self.env.get("MOONWATCH_KAFKA_BOOTSTRAP")
        return bool(given) and given != f"127.0.0.1:{self.kafka_port}"

    @property
    def simulated(self) -> bool:
        return not self.env.get("CMC_API_KEY", "").strip()

    # -- derived URLs ----------------------------------------------------------------------
    def _pg_url(self, user: str, password_name: str, database: str) -> str:
        password = quote(self.secrets[password_name], safe="")
        return f"postgresql://{user}:{password}@127.0.0.1:{self.pg_port}/{database}"

    @property
    def admin_url(self) -> str:
        return self._pg_url(PG_ADMIN_USER, "MOONWATCH_PG_ADMIN_PASSWORD", "postgres")

    @property
    def warehouse_url(self) -> str:
        return self.env.get("MOONWATCH_WAREHOUSE_URL") or self._pg_url(
            LOADER_ROLE, "MOONWATCH_LOADER_PASSWORD", WAREHOUSE_DB
        )

    @property
    def dashboard_db_url(self) -> str:
        return self.env.get("MOONWATCH_DASHBOARD_DB_URL") or self._pg_url(
            DASHBOARD_ROLE, "MOONWATCH_DASHBOARD_PASSWORD", WAREHOUSE_DB
        )

    @property
    def airflow_db_url(self) -> str:
        return self.env.get("MOONWATCH_AIRFLOW_DB_URL") or self._pg_url(
            AIRFLOW_DB_ROLE, "MOONWATCH_AIRFLOW_DB_PASSWORD", AIRFLOW_DB
        ).replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def kafka_bootstrap(self) -> str:
        return self.env.get("MOONWATCH_KAFKA_BOOTSTRAP") or f"127.0.0.1:{self.kafka_port}"

    @property
    def topic(self) -> str:
        return self.env.get("MOONWATCH_TOPIC", "crypto")

    @property
    def consumer_group(self) -> str:
        return self.env.get("MOONWATCH_CONSUMER_GROUP", "moonwatch-quotes-loader")

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def cmc_base_url(self) -> str:
        if self.env.get("CMC_BASE_URL"):
            return self.env["CMC_BASE_URL"]
        return self.simulator_url if self.simulated else CMC_PUBLIC_BASE_URL

    @property
    def fx_base_url(self) -> str:
        if self.env.get("MOONWATCH_FX_BASE_URL"):
            return self.env["MOONWATCH_FX_BASE_URL"]
        return f"{self.simulator_url}/frankfurter" if self.simulated else ""

    @property
    def airflow_url(self) -> str:
        return self.env.get("MOONWATCH_AIRFLOW_URL") or f"http://127.0.0.1:{self.airflow_port}"

    @property
    def dashboard_url(self) -> str:
        return self.env.get("MOONWATCH_DASHBOARD_URL") or f"http://127.0.0.1:{self.dashboard_port}"

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
        for name in ("MOONWATCH_SYMBOLS", "CMC_API_KEY"):
            if self.env.get(name):
                values[name] = self.env[name]
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
