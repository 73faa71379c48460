"""What each local service may see of the launcher's environment: one allow-list per service.

A child process gets whatever environment it is handed, and anyone running as the same account
reads it back from ``/proc/PID/environ``. Under root, PostgreSQL runs as ``postgres``; the
simulator and the dashboard are web servers. So no service inherits the launcher's environment:
each gets the basics every process needs (PATH, HOME, locale, time zone, temp folder), the
Moonwatch settings that are not secret, and only the secrets its own work needs.
"""

from __future__ import annotations

from moonwatch.stack.config import StackConfig

BASICS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
# Settings whose value is, or holds, a credential (a URL with a password in it).
CREDENTIAL_URLS = (
    "MOONWATCH_WAREHOUSE_URL",
    "MOONWATCH_DASHBOARD_DB_URL",
    "MOONWATCH_AIRFLOW_DB_URL",
    "MOONWATCH_ALERT_URLS",  # Apprise URLs: SMTP passwords, chat tokens
)
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")
# What the launcher itself reads: the supervisor (a launcher that keeps running) needs all of it.
_LAUNCHER_PREFIXES = ("MOONWATCH_", "CMC_", "AIRFLOW__", "RUST_LOG")


def is_secret_name(name: str) -> bool:
    return name in CREDENTIAL_URLS or any(word in name for word in _SECRET_WORDS)


def basics(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in BASICS or k.startswith("LC_")}


def public_settings(config: StackConfig) -> dict[str, str]:
    """Moonwatch settings (given and derived) that hold no secret."""
    given = {k: v for k, v in config.env.items() if k.startswith(("MOONWATCH_", "CMC_"))}
    merged = {**given, **config.settings_env()}
    return {k: v for k, v in merged.items() if not is_secret_name(k)}


def python_service_env(config: StackConfig, *secrets: str) -> dict[str, str]:
    """Basics, the public settings and the named ``secrets`` only."""
    derived = config.settings_env()
    env = {**basics(config.env), **public_settings(config)}
    for name in secrets:
        value = derived.get(name) or config.env.get(name)
        if value:
            env[name] = value
    return env


def postgres_env(config: StackConfig) -> dict[str, str]:
    """initdb and the server: nothing of Moonwatch, C locale (the cluster is made --no-locale)."""
    return {**basics(config.env), "LC_ALL": "C"}


def broker_env(config: StackConfig) -> dict[str, str]:
    return {**basics(config.env), "RUST_LOG": config.env.get("RUST_LOG", "warn")}


def simulator_env(config: StackConfig) -> dict[str, str]:
    # Fault control (/_sim/*) only when the operator set its token (make chaos); never by default.
    return python_service_env(config, "MOONWATCH_SIM_CONTROL_TOKEN")


def dashboard_env(config: StackConfig) -> dict[str, str]:
    # The read-only role only: no loader URL, no CoinMarketCap key.
    return python_service_env(config, "MOONWATCH_DASHBOARD_DB_URL")


def airflow_task_env(config: StackConfig) -> dict[str, str]:
    """Airflow's tasks call CoinMarketCap and load the warehouse (dbt reads the same URL)."""
    env = python_service_env(config, "CMC_API_KEY", "MOONWATCH_WAREHOUSE_URL")
    # A user's own Airflow overrides, and dbt's separate credentials when given.
    env.update({k: v for k, v in config.env.items() if k.startswith("AIRFLOW__")})
    if config.env.get("MOONWATCH_DBT_PASSWORD"):
        env["MOONWATCH_DBT_PASSWORD"] = config.env["MOONWATCH_DBT_PASSWORD"]
    return env


# What a Celery worker does not get of Airflow's environment: the api-server's signing keys
# (tasks present the token the scheduler gave them; they never sign one), the UI's password
# file, and the metadata database's URL (tasks reach Airflow through its execution API only;
# Celery's result backend, the one thing a worker writes to that database, is its own option).
CELERY_WORKER_WITHHELD = (
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)


def celery_worker_env(airflow_env: dict[str, str]) -> dict[str, str]:
    """A Celery worker: what Airflow's tasks get, minus what only the scheduler and api-server
    need; its task instances name the worker as their hostname."""
    env = {k: v for k, v in airflow_env.items() if k not in CELERY_WORKER_WITHHELD}
    env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "moonwatch.stack.celery_executor.worker_hostname"
    return env


def supervisor_env(config: StackConfig) -> dict[str, str]:
    """The supervisor restarts every service, so it sees what the launcher was given (it reads
    the generated passwords from secrets.env itself), and nothing else."""
    given = {k: v for k, v in config.env.items() if k.startswith(_LAUNCHER_PREFIXES)}
    return {**basics(config.env), **given}
