"""What a local account can learn from the running stack: environments, files, command lines.

Each test starts real services with the launcher (own home, free ports) and reads what any
process of the same account could: /proc/PID/environ and cmdline, file modes, `make status`.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from moonwatch.stack import airflow, broker, cli, services
from moonwatch.stack.config import SECRET_NAMES, StackConfig
from moonwatch.stack.ephemeral import ephemeral_env, live_pids
from moonwatch.stack.postgres import find_pg_bindir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CMC_MARKER = "cmc-isolation-marker-7f3a9c"
CANARY = "canary-launcher-only-5be1"


def _env(home: Path, **extra: str) -> dict[str, str]:
    # Plus something the launcher's caller has that no service needs.
    return ephemeral_env(home, AWS_SECRET_ACCESS_KEY=CANARY, **extra)


def _stack(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moonwatch.stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = _env(tmp_path / "home")
    yield env
    _stack(env, "down")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_service_sees_only_the_environment_it_needs(stack_env: dict[str, str]) -> None:
    env = {**stack_env, "CMC_API_KEY": CMC_MARKER}
    up = _stack(env, "up", "--only", "postgres,broker,dashboard")
    assert up.returncode == 0, up.stderr
    config = StackConfig.from_env(env)
    # With a key no simulator runs; start one the launcher's way to read its environment too.
    services.start_simulator(config)
    pids = live_pids(config)
    assert set(pids) >= {"postgres", "broker", "dashboard", "simulator", "supervisor"}, pids
    secrets = {name: config.secrets[name] for name in SECRET_NAMES}
    seen = {
        name: "\n".join(f"{k}={v}" for k, v in _environ(pid).items()) for name, pid in pids.items()
    }

    for name, text in seen.items():
        assert CANARY not in text, f"{name} inherited the launcher's whole environment"
        for secret_name, value in secrets.items():
            if not (name == "dashboard" and secret_name == "MOONWATCH_DASHBOARD_PASSWORD"):
                assert value not in text, f"{name} can read {secret_name}"
        # Only the supervisor (which restarts Airflow) carries the key; no web server does.
        assert (CMC_MARKER in text) == (name == "supervisor"), name
    assert "MOONWATCH_WAREHOUSE_URL" not in seen["dashboard"]
    assert "MOONWATCH_DASHBOARD_DB_URL=" in seen["dashboard"]
    assert not [k for k in _environ(pids["postgres"]) if k.startswith(("MOONWATCH_", "CMC_"))]
    assert not [k for k in _environ(pids["broker"]) if k.startswith(("MOONWATCH_", "CMC_"))]
    services.simulator_process(config).stop()

    # Airflow's processes (too slow to start here; the e2e and chaos stacks run them) get what
    # their tasks need and nothing the dashboard or the cluster's admin holds.
    airflow_env = airflow.airflow_env(config)
    text = "\n".join(f"{k}={v}" for k, v in airflow_env.items())
    assert airflow_env["CMC_API_KEY"] == CMC_MARKER
    assert config.secrets["MOONWATCH_LOADER_PASSWORD"] in airflow_env["MOONWATCH_WAREHOUSE_URL"]
    assert CANARY not in text
    for name in ("MOONWATCH_DASHBOARD_PASSWORD", "MOONWATCH_PG_ADMIN_PASSWORD"):
        assert config.secrets[name] not in text, f"Airflow can read {name}"


def _fake_bindir(tmp_path: Path) -> Path:
    """initdb wrapped to record the password file's mode and owner while initdb reads it."""
    real = find_pg_bindir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = bindir / "pwfile-mode"
    record.touch()
    record.chmod(0o666)  # written by initdb's account (postgres under root)
    script = bindir / "initdb"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --pwfile=*) '
        f'stat -c "%a %U" "${{a#--pwfile=}}" >> {record};; esac; done\n'
        f'exec {real / "initdb"} "$@"\n'
    )
    script.chmod(0o755)
    (bindir / "postgres").symlink_to(real / "postgres")
    bindir.chmod(0o755)
    return bindir


def test_state_files_are_private_and_loose_ones_are_fixed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, MOONWATCH_PG_BINDIR=str(_fake_bindir(tmp_path)))
    # What an older launcher (umask 022) left: readable passwords and logs.
    (home / "logs").mkdir(parents=True)
    (home / "airflow").mkdir()
    StackConfig.from_env(env)  # writes secrets.env
    secrets_env, log, passwords = (
        home / "secrets.env",
        home / "logs" / "old.log",
        home / "airflow" / "passwords.json",
    )
    log.write_text("an old log line\n")
    passwords.write_text("{}")
    for path in (secrets_env, log, passwords):
        path.chmod(0o644)
    home.chmod(0o755)
    try:
        up = _stack(env, "up", "--only", "postgres")
        assert up.returncode == 0, up.stderr
    finally:
        _stack(env, "down")
    for path in (secrets_env, log, passwords, home / "logs" / "postgres.log"):
        assert _mode(path) == 0o600, f"{path} is {_mode(path):o}"
    assert _mode(home) & 0o066 == 0 and _mode(home / "logs") & 0o066 == 0
    assert "was mode 0644" in up.stderr and "secrets.env" in up.stderr
    # initdb read the admin password from a file nobody else could read at any moment.
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert (tmp_path / "bin" / "pwfile-mode").read_text().split() == ["600", owner]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another account owns")
def test_secrets_file_owned_by_another_account_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home)
    StackConfig.from_env(env)
    nobody = pwd.getpwnam("nobody")
    os.chown(home / "secrets.env", nobody.pw_uid, nobody.pw_gid)
    result = _stack(env, "status")
    assert result.returncode == 2
    assert (
        "secrets.env" in result.stderr and "another account could have written it" in result.stderr
    )


def test_make_psql_keeps_the_password_off_the_command_line(stack_env: dict[str, str]) -> None:
    up = _stack(stack_env, "up", "--only", "postgres")
    assert up.returncode == 0, up.stderr
    config = StackConfig.from_env(stack_env)
    password = config.secrets["MOONWATCH_LOADER_PASSWORD"]
    argv, env = cli.psql_invocation(config, ["-c", "select current_user"])
    assert not [a for a in argv if password in a]
    assert "PGPASSWORD" not in env and password not in "".join(env.values())
    pgpass = Path(env["PGPASSFILE"])
    assert _mode(pgpass) == 0o600 and password in pgpass.read_text()
    # The real command, through make, as a user types it.
    result = subprocess.run(
        ["make", "-s", "psql", "PSQL_ARGS=-Atc 'select current_user'"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "moonwatch_loader"
    readme = (ROOT / "README.md").read_text()
    assert 'psql "$MOONWATCH_WAREHOUSE_URL"' not in readme and "make psql" in readme


def _produce(config: StackConfig, count: int) -> None:
    producer = Producer({"bootstrap.servers": config.kafka_bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(config.topic, key=str(i).encode(), value=b"{}")
    assert producer.flush(30) == 0


def _wait(check, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_in_memory_broker_says_what_it_holds_loses_and_drops(stack_env: dict[str, str]) -> None:
    up = _stack(stack_env, "up", "--only", "postgres,broker")
    assert up.returncode == 0, up.stderr
    config = StackConfig.from_env(stack_env)
    _produce(config, 7)

    status = _stack(stack_env, "status").stdout
    assert "memory only, no authentication: 7 acknowledged message(s) not yet loaded" in status

    # The supervisor counts what the broker holds; when the broker dies it says what was lost.
    lag_file = config.run_dir / "broker.lag"
    _wait(lambda: lag_file.exists() and lag_file.read_text().split()[0] == "7", "lag of 7")
    old = broker.broker_process(config).pid()
    os.kill(old, 9)
    restarts = config.log_dir / "broker-restarts.log"
    _wait(lambda: restarts.exists() and "BROKER RESTARTED" in restarts.read_text(), "report")
    assert "7 (counted" in restarts.read_text() and "LOST" in restarts.read_text()
    assert "BROKER RESTARTED" in (config.log_dir / "supervisor.log").read_text()
    _wait(lambda: broker.broker_healthy(config.kafka_bootstrap), "the broker back")
    assert "last restart:" in _stack(stack_env, "status").stdout

    # `make down` with nobody to load them: it says what it drops.
    _produce(config, 3)
    down = _stack(stack_env, "down")
    assert down.returncode == 0, down.stderr
    assert "DROPPING 3 acknowledged message(s) not yet loaded" in down.stdout
