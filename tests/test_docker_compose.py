"""docker-compose.yml, docker/ and .env.example, without a Docker engine: what can still drift.

Docker and local mode share their definitions: the warehouse bootstrap is one script
(plugins/moonwatch/stack/postgres_init/) and Airflow's configuration one function
(moonwatch.stack.airflow.airflow_config, which docker/entrypoint.sh runs in each Airflow
container). What is left to check is what compose itself says: that it runs those, passes
the inputs they need under names the code reads, uses the settings' defaults, publishes on
127.0.0.1 only, health-checks and orders its services, and keeps every password out.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from moonwatch.dbt import docs as dbt_docs
from moonwatch.settings import Settings
from moonwatch.stack import config as stack_config
from moonwatch.stack import postgres
from moonwatch.stack.airflow import LOCAL_EXECUTOR, airflow_env
from moonwatch.stack.config import StackConfig, read_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
IMAGE_ROOT = "/opt/moonwatch"  # where docker/Dockerfile copies the project

# README, Configuration: the settings every mode must use under these names.
CONTRACT_NAMES = {
    "CMC_API_KEY",
    "CMC_BASE_URL",
    "MOONWATCH_SYMBOLS",
    "MOONWATCH_TOPIC",
    "MOONWATCH_KAFKA_BOOTSTRAP",
    "MOONWATCH_WAREHOUSE_URL",
    "MOONWATCH_DASHBOARD_DB_URL",
    "MOONWATCH_AIRFLOW_URL",
    "MOONWATCH_DASHBOARD_URL",
}
AIRFLOW_COMPONENTS = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
REQUIRED_SERVICES = {
    "postgres",
    "kafka",
    "airflow-init",
    *AIRFLOW_COMPONENTS,
    "simulator",
    "dashboard",
}
MOONWATCH_NAME = re.compile(r"^(MOONWATCH_|CMC_)[A-Z0-9_]+$")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; $$ is a literal $.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_KEY_NAME = re.compile(r"(PASSWORD|SECRET|_KEY|TOKEN)$")
URL_PASSWORD = re.compile(r"://[^/:@\s'\"]+:([^@\s'\"]+)@")
PORT_MAPPING = re.compile(r"^(?P<ip>[0-9.]+):(?P<host>\$\{[^}]+\}|\d+):(?P<container>\d+)$")


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, enough for this file (raises like compose on :?)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        given = env.get(name)
        missing = not given if op in (":-", ":?") else given is None
        if not missing:
            return given or ""
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose_text_without_comments() -> str:
    """The compose file minus comment lines and `$$` escapes (neither is substituted)."""
    lines = COMPOSE_FILE.read_text().replace("$$", "").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def substituted_names() -> set[str]:
    """The variables compose substitutes: the names a .env file may set."""
    return {m.group(1) for m in INTERPOLATION.finditer(compose_text_without_comments())}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def long_running(services: dict[str, dict[str, Any]]) -> list[str]:
    """Services that stay up; every service says which it is (one-shots: `restart: "no"`)."""
    for name, service in services.items():
        assert "restart" in service, f'{name}: say `restart:` ("no" for a one-shot)'
    return [name for name, s in services.items() if str(s["restart"]) != "no"]


def env_names_read_by_code() -> set[str]:
    """Every MOONWATCH_*/CMC_* variable name the code reads.

    The Settings field aliases, the launcher-only names of plugins/moonwatch/stack/config.py
    (ports, secrets, derived URLs), and the few names DAG files, the dashboard and dbt's profile
    read directly from the environment.
    """
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if alias else [])
        names.update(str(c) for c in choices)
    names.update(stack_config.DEFAULT_PORTS)
    names.update(stack_config.SECRET_NAMES)
    literal = re.compile(r"""["']((?:MOONWATCH|CMC)_[A-Z0-9_]+)["']""")
    names.update(literal.findall(Path(stack_config.__file__).read_text()))
    reads = re.compile(
        r"""(?:environ\.get\(|environ\[|getenv\(|env_var\(|_ENV\s*=\s*)"""
        r"""\s*["']((?:MOONWATCH|CMC)_[A-Z0-9_]+)["']"""
    )
    sources = [*(ROOT / "dags").glob("*.py"), *(ROOT / "streamlit_app").rglob("*.py")]
    sources += [ROOT / "dbt_project" / "profiles.yml"]
    for path in sources:
        names.update(reads.findall(path.read_text()))
    return names


def airflow_config_options() -> set[str]:
    """AIRFLOW__SECTION__KEY for every option in Airflow's own config template."""
    spec = importlib.util.find_spec("airflow")
    assert spec and spec.submodule_search_locations
    template = Path(spec.submodule_search_locations[0]) / "config_templates" / "config.yml"
    sections = yaml.safe_load(template.read_text())
    options = {
        f"AIRFLOW__{section.upper()}__{option.upper()}"
        for section, body in sections.items()
        for option in (body.get("options") or {})
    }
    # Cosmos reads its own [cosmos] section: take the option names from its settings module and
    # its Airflow 3 plugin (dbt_docs_projects).
    found = []
    for module in ("cosmos.settings", "cosmos.plugin.airflow3"):
        cosmos = importlib.util.find_spec(module)
        assert cosmos and cosmos.origin
        found += re.findall(
            r'conf\.get\w*\(\s*"cosmos",\s*"(\w+)"', Path(cosmos.origin).read_text()
        )
    return options | {f"AIRFLOW__COSMOS__{name.upper()}" for name in found}


def dummy_env() -> dict[str, str]:
    """A filled-in .env: every variable of .env.example, passwords set to dummies."""
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            env[name.strip()] = value.strip()
    for name in stack_config.SECRET_NAMES:
        env[name] = f"dummy-{name.lower()}"
    return env


# -- the file and its services ------------------------------------------------------------------

# The Compose-spec keys this file may use: a typo (`healthcheck: {start_peroid: ...}`) would be
# ignored or rejected by `docker compose`, which cannot run here (no engine, no compose plugin).
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {
    *("image", "build", "command", "entrypoint", "environment", "env_file", "volumes"),
    *("ports", "healthcheck", "depends_on", "restart", "hostname", "working_dir", "user"),
    "profiles",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval"}
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")


def test_compose_uses_only_spec_keys_and_declared_volumes(compose: dict[str, Any]) -> None:
    for key in compose:
        assert key in TOP_LEVEL_KEYS or key.startswith("x-"), f"unknown top-level key {key}"
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        check = service.get("healthcheck") or {}
        assert set(check) <= HEALTHCHECK_KEYS, f"{name}: {set(check) - HEALTHCHECK_KEYS}"
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(str(check[key])), f"{name}: {key}={check[key]!r}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared {source}"


def test_every_service_runs_from_the_one_image(services: dict[str, Any]) -> None:
    assert set(services) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services)
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["command"] == ["airflow", name.removeprefix("airflow-")]
    init = " ".join(services["airflow-init"]["command"])
    # The metadata database and the warehouse set up as the local launcher sets them up.
    assert "python -m moonwatch.stack.airflow migrate" in init
    assert "docker/migrate_warehouse.py" in init
    for name in ("airflow-init", *AIRFLOW_COMPONENTS, "simulator", "dashboard"):
        build = services[name]["build"]
        assert build["context"] == "." and (ROOT / build["dockerfile"]) == DOCKERFILE
        assert services[name]["image"] == services["dashboard"]["image"]
    dash = [str(a) for a in services["dashboard"]["command"]]
    assert (ROOT / dash[2]).is_file()
    # Streamlit reads .streamlit/config.toml from its working directory, the project root.
    assert services["dashboard"]["working_dir"] == IMAGE_ROOT


# -- settings names and defaults ----------------------------------------------------------------


def test_moonwatch_env_names_are_ones_the_code_reads(services: dict[str, Any]) -> None:
    known = env_names_read_by_code()
    passed = {
        (service, key)
        for service, body in services.items()
        for key in environment(body)
        if MOONWATCH_NAME.match(key)
    }
    unknown = sorted(f"{service}: {key}" for service, key in passed if key not in known)
    assert not unknown, f"compose passes names no code reads: {unknown}"
    # The variables compose substitutes (the .env names) must be real names too.
    foreign = sorted(n for n in substituted_names() if MOONWATCH_NAME.match(n) and n not in known)
    assert not foreign, f"compose reads .env names no code knows: {foreign}"


def test_every_contract_name_is_passed_with_least_privilege(services: dict[str, Any]) -> None:
    passed = {key for body in services.values() for key in environment(body)}
    assert passed >= CONTRACT_NAMES, CONTRACT_NAMES - passed
    airflow = environment(services["airflow-scheduler"])
    for name in CONTRACT_NAMES - {"MOONWATCH_DASHBOARD_DB_URL"}:
        assert name in airflow, f"Airflow's tasks need {name}"
    dashboard = environment(services["dashboard"])
    assert "MOONWATCH_DASHBOARD_DB_URL" in dashboard
    # The dashboard gets the read-only role only, the simulator no database.
    assert not {"MOONWATCH_WAREHOUSE_URL", "CMC_API_KEY"} & set(dashboard)
    sim = environment(services["simulator"])
    assert not {"MOONWATCH_WAREHOUSE_URL", "MOONWATCH_DASHBOARD_DB_URL"} & set(sim)


def test_compose_defaults_are_the_settings_defaults(services: dict[str, Any]) -> None:
    env = {
        k: interpolate(v, dummy_env())
        for k, v in environment(services["airflow-scheduler"]).items()
    }
    settings = read_settings(env)  # as the entrypoint leaves them: empties unset
    defaults = read_settings({})
    for name in ("topic", "consumer_group", "airflow_url", "dashboard_url"):
        assert getattr(settings, name) == getattr(defaults, name), name
    assert settings.kafka_bootstrap == "kafka:9092"
    url = settings.require_warehouse_url()
    assert url.startswith(f"postgresql://{stack_config.LOADER_ROLE}:")
    assert url.endswith(f"@postgres:5432/{stack_config.WAREHOUSE_DB}")
    dash = {k: interpolate(v, dummy_env()) for k, v in environment(services["dashboard"]).items()}
    assert dash["MOONWATCH_DASHBOARD_DB_URL"].startswith(
        f"postgresql://{stack_config.DASHBOARD_ROLE}:"
    )


def test_published_ports_are_loopback_only_on_the_local_mode_numbers(
    services: dict[str, Any],
) -> None:
    published: dict[int, str] = {}
    for name, service in services.items():
        for mapping in service.get("ports") or []:
            match = PORT_MAPPING.match(str(mapping))
            assert match, f"{name}: publish as 127.0.0.1:HOST:CONTAINER, not {mapping!r}"
            assert match["ip"] == "127.0.0.1", f"{name} publishes on {match['ip']}"
            variable = INTERPOLATION.fullmatch(match["host"])
            assert variable, f"{name}: publish on a MOONWATCH_*_PORT, not {match['host']}"
            # The local launcher's port setting, with its default.
            assert int(variable.group(3)) == stack_config.DEFAULT_PORTS[variable.group(1)]
            port = int(interpolate(match["host"], {}))
            assert port not in published, f"{name} and {published.get(port)} both use {port}"
            published[port] = name
    assert set(published) == set(stack_config.DEFAULT_PORTS.values())


# -- one definition, used by both modes ---------------------------------------------------------


def _entrypoint_env(service: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """What docker/entrypoint.sh leaves for the container's command, given compose's env."""
    env = {k: interpolate(v, dummy_env()) for k, v in environment(service).items()}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env["AIRFLOW_HOME"] = str(tmp_path)
    out = subprocess.run(
        [str(ROOT / "docker/entrypoint.sh"), "env", "-0"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return dict(item.split("=", 1) for item in out.stdout.split("\0") if "=" in item)


@pytest.mark.parametrize("name", [*AIRFLOW_COMPONENTS, "airflow-init"])
def test_airflow_containers_get_the_launchers_airflow_config(
    services: dict[str, Any], name: str, tmp_path: Path
) -> None:
    seen = _entrypoint_env(services[name], tmp_path)
    local = airflow_env(StackConfig.from_env({"MOONWATCH_HOME": str(tmp_path / "local")}))
    derived = {k for k in local if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    assert derived <= set(seen), f"{name} lacks {sorted(derived - set(seen))}"
    options = airflow_config_options()
    unknown = {k for k in seen if k.startswith("AIRFLOW__")} - options
    assert not unknown, f"not Airflow options: {unknown}"
    assert seen["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")  # /opt/moonwatch in the image
    assert seen["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-api-server:8080/execution/"
    )
    assert seen["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        f"postgresql+psycopg2://{stack_config.AIRFLOW_DB_ROLE}:"
    )
    assert seen["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(
        f"@postgres:5432/{stack_config.AIRFLOW_DB}"
    )
    assert seen["AIRFLOW_CONN_MOONWATCH_WAREHOUSE"] == seen["MOONWATCH_WAREHOUSE_URL"]
    kafka = json.loads(seen["AIRFLOW_CONN_MOONWATCH_KAFKA"])["extra"]
    assert kafka["bootstrap.servers"] == seen["MOONWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
    # What compose sets for one service wins: only the scheduler serves its health endpoint.
    health = "True" if name == "airflow-scheduler" else "False"
    assert seen["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == health
    assert seen[dbt_docs.DOCS_PROJECTS_ENV] == dbt_docs.cosmos_docs_projects(tmp_path / "dbt_docs")
    assert "MOONWATCH_AIRFLOW_SECRET_KEY" not in seen  # it is AIRFLOW__API__SECRET_KEY now
    assert seen["AIRFLOW__API__SECRET_KEY"] == dummy_env()["MOONWATCH_AIRFLOW_SECRET_KEY"]


def test_postgres_init_runs_the_launchers_bootstrap(services: dict[str, Any]) -> None:
    """The one bootstrap (tests/stack prove what it grants on a real server) is what Docker runs."""
    init = services["postgres-init"]
    source, target = str(init["volumes"][0]).split(":")[:2]
    assert (ROOT / source).resolve() == postgres.BOOTSTRAP_SCRIPT.parent
    assert init["entrypoint"] == ["bash", f"{target}/{postgres.BOOTSTRAP_SCRIPT.name}"]
    assert set(postgres.BOOTSTRAP_SECRETS) <= set(environment(init))
    assert "postgres-init" in services["airflow-init"]["depends_on"]


# -- health and order ---------------------------------------------------------------------------


def test_every_long_running_service_is_health_checked_and_waited_for(
    services: dict[str, Any],
) -> None:
    running = set(long_running(services))
    assert REQUIRED_SERVICES - {"airflow-init"} <= running
    for name in running:
        test = (services[name].get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    order: list[str] = []
    pending = dict(services)
    while pending:
        ready = [n for n, s in pending.items() if set(s.get("depends_on") or {}) <= set(order)]
        assert ready, f"depends_on cycle among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            want = "service_healthy" if dep in running else "service_completed_successfully"
            assert spec["condition"] == want, f"{name} -> {dep}"
    # README, Docker "Start order": the api-server first and healthy, then the others.
    for name in AIRFLOW_COMPONENTS[1:]:
        assert "airflow-api-server" in services[name]["depends_on"]
    assert {"kafka-init"} <= set(services["airflow-triggerer"]["depends_on"])
    assert {"kafka-init"} <= set(services["airflow-scheduler"]["depends_on"])


# -- secrets ------------------------------------------------------------------------------------


def test_no_literal_passwords_and_every_secret_required(services: dict[str, Any]) -> None:
    text = compose_text_without_comments()
    for match in URL_PASSWORD.finditer(text):
        secret = match.group(1)
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", secret), f"literal URL password {secret!r}"
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY_NAME.search(key) and value:
                variable = INTERPOLATION.fullmatch(value)
                assert variable, f"{name}: {key} is a literal value"
                assert variable.group(2) == ":?" or not variable.group(3), f"{name}: {key} default"
    for secret in stack_config.SECRET_NAMES:
        uses = re.findall(r"\$\{" + secret + r"(:?[-?]?)[^}]*\}", text)
        assert uses and set(uses) == {":?"}, f"{secret} must be used as ${{{secret}:?...}}"


def test_env_example_lists_every_variable_without_secrets() -> None:
    example = dummy_env()
    raw = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    assert substituted_names() <= set(example), substituted_names() - set(example)
    for name in (*stack_config.SECRET_NAMES, "CMC_API_KEY"):
        assert raw[name].strip() == "", f".env.example must not carry a value for {name}"
    known = env_names_read_by_code()
    for name in raw:
        assert name.startswith("AIRFLOW__") or name in known, f"{name} is read by no code"


def test_image_keeps_secrets_out_and_installs_the_pinned_requirements() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", ".moonwatch"} <= ignored
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install\b[^\n]*-r requirements\.txt", text)
    assert f"WORKDIR {IMAGE_ROOT}" in text and "COPY . ." in text
    assert 'ENTRYPOINT ["/opt/moonwatch/docker/entrypoint.sh"]' in text
    assert re.search(r"^USER (?!root)", text, re.M)


# -- the image's scripts ------------------------------------------------------------------------


def test_entrypoint_unsets_empty_settings_and_defaults_to_the_simulator(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "MOONWATCH_SYMBOLS": "",
        "CMC_API_KEY": "",
        "MOONWATCH_TOPIC": "crypto",
        "MOONWATCH_AIRFLOW_ADMIN_PASSWORD": 'p"w',
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    out = subprocess.run(
        [str(ROOT / "docker/entrypoint.sh"), "env"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert "MOONWATCH_SYMBOLS" not in seen and "CMC_API_KEY" not in seen
    assert seen["CMC_BASE_URL"] == "http://simulator:18600"
    assert seen["MOONWATCH_FX_BASE_URL"] == "http://simulator:18600/frankfurter"
    assert "MOONWATCH_AIRFLOW_ADMIN_PASSWORD" not in seen
    assert json.loads(passwords.read_text()) == {stack_config.AIRFLOW_ADMIN_USER: 'p"w'}
    assert passwords.stat().st_mode & 0o777 == 0o600

    env = {"PATH": env["PATH"], "CMC_API_KEY": "key", "MOONWATCH_FX_BASE_URL": ""}
    out = subprocess.run(
        [str(ROOT / "docker/entrypoint.sh"), "env"], env=env, capture_output=True, text=True
    )
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert "CMC_BASE_URL" not in seen and "MOONWATCH_FX_BASE_URL" not in seen


def test_healthcheck_script(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("mw_healthcheck", ROOT / "docker/healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    bodies = {
        "/ok": b"ok",
        "/health": json.dumps(
            {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"}}
        ).encode(),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body else 503)
            self.end_headers()
            self.wfile.write(body or b"no")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert module.main([f"{base}/ok"]) == 0
        assert module.main([f"{base}/down"]) == 1
        assert module.main([f"{base}/health", "metadatabase"]) == 0
        assert module.main([f"{base}/health", "metadatabase", "scheduler"]) == 1
        assert module.main([f"{base}/ok", "metadatabase"]) == 1
        assert module.main([]) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_airflow_serves_the_dbt_docs_from_a_volume_the_tasks_write(
    services: dict[str, Any],
) -> None:
    # The entrypoint derives the docs folder from AIRFLOW_HOME (the image's /opt/airflow).
    home = re.search(r"AIRFLOW_HOME=(\S+)", DOCKERFILE.read_text()).group(1)
    folder = f"{home}/dbt_docs"
    # The scheduler's LocalExecutor runs crypto_dbt_docs; the api-server serves what it wrote.
    for name in ("airflow-api-server", "airflow-scheduler"):
        assert f"dbt-docs:{folder}" in services[name]["volumes"], name
    assert folder in DOCKERFILE.read_text(), "the image creates the folder for its user"


# -- the `celery` profile -----------------------------------------------------------------------

CELERY_WORKERS = ("airflow-celery-worker-1", "airflow-celery-worker-2")


def test_celery_profile_adds_redis_and_two_workers_only_when_asked(
    services: dict[str, Any],
) -> None:
    profiled = {name for name, s in services.items() if "celery" in (s.get("profiles") or [])}
    assert profiled == {"redis", *CELERY_WORKERS}
    for name in CELERY_WORKERS:
        worker = services[name]
        assert worker["command"] == ["airflow", "celery", "worker"]
        assert worker["image"] == services["dashboard"]["image"]
        assert worker["environment"] == services["airflow-scheduler"]["environment"] or (
            environment(worker) == environment(services["airflow-dag-processor"])
        )
        # crypto_dbt_docs runs on a worker: it writes the folder the api-server serves.
        assert "dbt-docs:/opt/airflow/dbt_docs" in worker["volumes"]
        assert {"airflow-api-server", "redis", "kafka-init"} <= set(worker["depends_on"])
    # Without the profile the scheduler still starts: its wait for Redis is optional.
    assert services["airflow-scheduler"]["depends_on"]["redis"]["required"] is False
    redis = services["redis"]
    # The password reaches Redis on standard input, not on its command line.
    script = " ".join(redis["command"])
    assert "redis-server -" in script and "--requirepass" not in script
    assert "$$MOONWATCH_REDIS_PASSWORD" in script and 'save ""' in script
    assert "appendonly no" in script
    assert "volumes" not in redis  # nothing to keep: the scheduler re-queues what it held


@pytest.mark.parametrize("executor", ["celery", ""])
def test_celery_profile_switches_airflow_to_the_celery_executor(
    services: dict[str, Any], executor: str, tmp_path: Path
) -> None:
    for name in (*AIRFLOW_COMPONENTS, *CELERY_WORKERS):
        service = dict(services[name])
        service["environment"] = {**environment(service), "MOONWATCH_EXECUTOR": executor}
        seen = _entrypoint_env(service, tmp_path)
        if not executor:  # unset: the default, as without the profile
            assert seen["AIRFLOW__CORE__EXECUTOR"] == LOCAL_EXECUTOR, name
            assert "AIRFLOW__CELERY__BROKER_URL" not in seen
            continue
        assert seen["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        password = dummy_env()["MOONWATCH_REDIS_PASSWORD"]
        assert seen["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{password}@redis:6379/0"
        assert seen["AIRFLOW__CELERY__RESULT_BACKEND"] == (
            "db+" + seen["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
        assert {k for k in seen if k.startswith("AIRFLOW__")} <= airflow_config_options() | {
            f"AIRFLOW__CELERY__{option.upper()}" for option in _celery_options()
        }


def _celery_options() -> set[str]:
    from airflow.providers.celery.get_provider_info import get_provider_info

    return set(get_provider_info()["config"]["celery"]["options"])
