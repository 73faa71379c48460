"""MOONWATCH_EXECUTOR=celery on the launcher: the setting, Airflow's Celery configuration, the
workers' environment and a real Redis (loopback, password off argv and disk, nothing dumped).

The whole pipeline on two Celery workers runs in tests/e2e/test_celery_stack.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from moonwatch.errors import ConfigurationError
from moonwatch.stack import airflow, celery_executor, environment, registry
from moonwatch.stack.config import CHECKOUT, StackConfig
from moonwatch.stack.ephemeral import ephemeral_env, live_pids


def _config(tmp_path: Path, **extra: str) -> StackConfig:
    return StackConfig.from_env(ephemeral_env(tmp_path / "home", **extra))


def test_executor_is_a_typed_setting_with_a_clear_error(tmp_path: Path) -> None:
    assert _config(tmp_path).settings.executor == "local"
    assert _config(tmp_path, MOONWATCH_EXECUTOR="celery").celery
    with pytest.raises(ConfigurationError, match=r"MOONWATCH_EXECUTOR.*'local' or 'celery'"):
        _config(tmp_path, MOONWATCH_EXECUTOR="kubernetes")


def test_celery_mode_configures_airflow_for_redis_and_the_metadata_db(tmp_path: Path) -> None:
    from airflow.providers.celery.get_provider_info import get_provider_info

    local = airflow.airflow_env(_config(tmp_path))
    assert local["AIRFLOW__CORE__EXECUTOR"] == airflow.LOCAL_EXECUTOR
    assert not [k for k in local if k.startswith("AIRFLOW__CELERY__")]
    assert not {s.name for s in registry.SERVICES if s.used(_config(tmp_path))} & {
        "redis",
        "celery-workers",
    }

    config = _config(tmp_path, MOONWATCH_EXECUTOR="celery")
    env = airflow.airflow_env(config)
    password = config.secrets["MOONWATCH_REDIS_PASSWORD"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == (
        f"redis://:{password}@127.0.0.1:{config.redis_port}/0"
    )
    # Task results in the metadata database (Redis keeps nothing on disk).
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + config.airflow_db_url
    assert {"redis", "celery-workers"} <= {s.name for s in registry.SERVICES if s.used(config)}
    # Every AIRFLOW__CELERY__* name is one the Celery provider defines.
    options = get_provider_info()["config"]["celery"]["options"]
    for name in (k for k in env if k.startswith("AIRFLOW__CELERY__")):
        assert name.removeprefix("AIRFLOW__CELERY__").lower() in options, name


def test_workers_get_what_tasks_need_and_no_signing_key_or_metadata_url(tmp_path: Path) -> None:
    config = _config(tmp_path, MOONWATCH_EXECUTOR="celery", CMC_API_KEY="cmc-worker-marker")
    worker = environment.celery_worker_env(airflow.airflow_env(config))
    text = "\n".join(f"{k}={v}" for k, v in worker.items())
    for name in ("MOONWATCH_AIRFLOW_SECRET_KEY", "MOONWATCH_PG_ADMIN_PASSWORD"):
        assert config.secrets[name] not in text, name
    assert config.secrets["MOONWATCH_DASHBOARD_PASSWORD"] not in text
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in worker
    # What tasks need: the key, the loader's warehouse, the broker, the execution API.
    assert worker["CMC_API_KEY"] == "cmc-worker-marker"
    assert worker["MOONWATCH_WAREHOUSE_URL"] == config.warehouse_url
    assert worker["AIRFLOW__CELERY__BROKER_URL"] == config.celery_broker_url
    assert worker["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert worker["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == (
        "moonwatch.stack.celery_executor.worker_hostname"
    )


@pytest.mark.integration
def test_redis_is_loopback_password_protected_and_writes_nothing(tmp_path: Path) -> None:
    env = ephemeral_env(tmp_path / "home", MOONWATCH_EXECUTOR="celery")
    config = StackConfig.from_env(env)

    def launcher(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "moonwatch.stack", *args, "--only", "redis"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=CHECKOUT,
        )

    before = set(CHECKOUT.glob("*.rdb")) | set(CHECKOUT.glob("appendonly*"))
    up = launcher("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        pid = live_pids(config)["redis"]
        password = config.secrets["MOONWATCH_REDIS_PASSWORD"]
        for what in ("cmdline", "environ"):
            assert password.encode() not in Path(f"/proc/{pid}/{what}").read_bytes(), what
        # Without the password Redis answers nothing; with it, it works.
        anonymous = redis.Redis(port=config.redis_port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        client = redis.Redis(port=config.redis_port, password=password, socket_timeout=5)
        assert client.ping()
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("dir")["dir"] == str(config.redis_dir)
        client.set("moonwatch-test", "x")
        # Not reachable on another address of this machine.
        other = socket.gethostbyname(socket.gethostname())
        if not other.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((other, config.redis_port), timeout=2).close()
        for line in Path(config.log_dir / "redis.log").read_text().splitlines():
            assert password not in line
        status = launcher("status")
        assert "redis      running   healthy" in status.stdout, status.stdout
    finally:
        down = launcher("down")
    assert down.returncode == 0, down.stderr
    assert not celery_executor.redis_process(config).is_running()
    # Nothing dumped: not in the checkout, not in its own folder.
    after = set(CHECKOUT.glob("*.rdb")) | set(CHECKOUT.glob("appendonly*"))
    assert after == before
    assert list(config.redis_dir.iterdir()) == []
