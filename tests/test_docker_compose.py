"""docker-compose.yml, docker/ and .env.example, checked statically (no Docker engine needed).

The compose file must run the whole pipeline (PostgreSQL, Kafka in KRaft mode, Airflow 3's
init + api-server + scheduler + dag-processor + triggerer, the simulator, the dashboard), pass
Moonwatch only setting names the code actually reads (and every contract name the README's
Configuration section lists), publish non-colliding ports on 127.0.0.1, health-check every
long-running service, and keep every password out of the file.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from moonwatch.settings import Settings
from moonwatch.stack import config as stack_config
from moonwatch.stack.airflow import airflow_env
from moonwatch.stack.config import StackConfig

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


@pytest.fixture(scope="module")
def local_airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("stack-home")
    # Only what the launcher sets itself, not what this process inherited.
    with mock.patch.dict(os.environ, {}, clear=True):
        return airflow_env(StackConfig.from_env({"MOONWATCH_HOME": str(home)}))


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


def test_compose_is_valid_yaml_with_services_and_volumes(compose: dict[str, Any]) -> None:
    assert isinstance(compose, dict)
    assert isinstance(compose.get("services"), dict) and compose["services"]
    assert "version" not in compose, "the `version` key is obsolete in the Compose spec"
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared {source}"


# The Compose-spec keys this file may use: a typo (`healthcheck: {start_peroid: ...}`) would be
# ignored or rejected by `docker compose`, which cannot run here (no engine, no compose plugin).
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "ports",
    "healthcheck",
    "depends_on",
    "restart",
    "hostname",
    "working_dir",
    "user",
    "profiles",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")


def test_only_compose_spec_keys(compose: dict[str, Any]) -> None:
    for key in compose:
        assert key in TOP_LEVEL_KEYS or key.startswith("x-"), f"unknown top-level key {key}"
    for name, service in compose["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        check = service.get("healthcheck") or {}
        assert set(check) <= HEALTHCHECK_KEYS, f"{name}: {set(check) - HEALTHCHECK_KEYS}"
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(str(check[key])), f"{name}: {key}={check[key]!r}"
        for dep, spec in (service.get("depends_on") or {}).items():
            assert spec.get("condition") in CONDITIONS, f"{name} -> {dep}"
        assert str(service.get("restart", "no")) in {"no", "always", "unless-stopped"}


def test_every_service_the_pipeline_needs_is_present(services: dict[str, Any]) -> None:
    assert set(services) >= REQUIRED_SERVICES, REQUIRED_SERVICES - set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    commands = {name: services[name]["command"] for name in AIRFLOW_COMPONENTS}
    assert commands["airflow-api-server"] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init
    assert "docker/migrate_warehouse.py" in init


def test_moonwatch_services_share_one_image_built_from_the_dockerfile(
    services: dict[str, Any],
) -> None:
    for name in ("airflow-init", *AIRFLOW_COMPONENTS, "simulator", "dashboard"):
        build = services[name]["build"]
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]) == DOCKERFILE
        assert services[name]["image"] == services["dashboard"]["image"]


def test_simulator_and_dashboard_commands(services: dict[str, Any]) -> None:
    sim = [str(a) for a in services["simulator"]["command"]]
    assert sim[:3] == ["python", "-m", "moonwatch.sources.simulator"]
    assert sim[sim.index("--host") + 1] == "0.0.0.0"
    assert sim[sim.index("--port") + 1] == "18600"
    dash = [str(a) for a in services["dashboard"]["command"]]
    assert dash[:2] == ["streamlit", "run"]
    assert (ROOT / dash[2]).is_file() and dash[2] == "streamlit_app/app.py"
    assert dash[dash.index("--server.address") + 1] == "0.0.0.0"
    # Streamlit reads .streamlit/config.toml from its working directory, the project root.
    assert services["dashboard"]["working_dir"] == IMAGE_ROOT


def test_kafka_is_apache_kafka_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = environment(kafka)
    roles = set(env["KAFKA_PROCESS_ROLES"].split(","))
    assert roles == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocols)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in advertised and "CONTROLLER" not in advertised
    # A KRaft cluster id is a base64url UUID: 16 bytes.
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    for name in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{name}_REPLICATION_FACTOR"] == "1"
    # Its data lives in a volume, at the log dir the broker writes to.
    assert any(str(v).split(":")[1] == env["KAFKA_LOG_DIRS"] for v in kafka["volumes"]), (
        "Kafka's log dir must be a volume"
    )
    assert any(
        str(v).split(":")[1] == "/var/lib/postgresql/data" for v in services["postgres"]["volumes"]
    )


def test_the_topic_is_created(services: dict[str, Any]) -> None:
    """Auto-create is off, so the one-shot kafka-init must create MOONWATCH_TOPIC."""
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    init = services["kafka-init"]
    argv = [*init["entrypoint"], *[str(a) for a in init["command"]]]
    assert argv[0].endswith("kafka-topics.sh") and "--create" in argv
    assert argv[argv.index("--bootstrap-server") + 1] == "kafka:9092"
    assert argv[argv.index("--topic") + 1] == "${MOONWATCH_TOPIC:-crypto}"
    assert interpolate(argv[argv.index("--topic") + 1], {}) == "crypto"


# -- settings names -----------------------------------------------------------------------------


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
    substituted = substituted_names()
    foreign = sorted(n for n in substituted if MOONWATCH_NAME.match(n) and n not in known)
    assert not foreign, f"compose reads .env names no code knows: {foreign}"


def test_every_contract_name_is_passed(services: dict[str, Any]) -> None:
    passed = {key for body in services.values() for key in environment(body)}
    assert passed >= CONTRACT_NAMES, CONTRACT_NAMES - passed
    airflow = environment(services["airflow-scheduler"])
    for name in CONTRACT_NAMES - {"MOONWATCH_DASHBOARD_DB_URL"}:
        assert name in airflow, f"Airflow's tasks need {name}"
    dashboard = environment(services["dashboard"])
    assert "MOONWATCH_DASHBOARD_DB_URL" in dashboard
    # Least privilege: the dashboard gets the read-only role only, the simulator no database.
    assert "MOONWATCH_WAREHOUSE_URL" not in dashboard
    assert "CMC_API_KEY" not in dashboard
    sim = environment(services["simulator"])
    assert not {"MOONWATCH_WAREHOUSE_URL", "MOONWATCH_DASHBOARD_DB_URL"} & set(sim)


def test_settings_point_at_the_compose_services(services: dict[str, Any]) -> None:
    env = {
        k: interpolate(v, dummy_env())
        for k, v in environment(services["airflow-scheduler"]).items()
    }
    assert env["MOONWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["MOONWATCH_WAREHOUSE_URL"].startswith(
        f"postgresql://{stack_config.LOADER_ROLE}:dummy-moonwatch_loader_password@postgres:5432/"
    )
    assert env["MOONWATCH_WAREHOUSE_URL"].endswith(f"/{stack_config.WAREHOUSE_DB}")
    assert env["MOONWATCH_TOPIC"] == "crypto"
    assert env["MOONWATCH_AIRFLOW_URL"] == "http://127.0.0.1:18080"
    assert env["MOONWATCH_DASHBOARD_URL"] == "http://127.0.0.1:18501"
    dash = {k: interpolate(v, dummy_env()) for k, v in environment(services["dashboard"]).items()}
    assert dash["MOONWATCH_DASHBOARD_DB_URL"].startswith(
        f"postgresql://{stack_config.DASHBOARD_ROLE}:"
    )
    # With the .env filled in, the settings validate (empties are unset by the entrypoint).
    values = {k: v for k, v in env.items() if v}
    settings = Settings(**{k: v for k, v in values.items() if MOONWATCH_NAME.match(k)})
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.require_warehouse_url() == env["MOONWATCH_WAREHOUSE_URL"]


def test_airflow_env_mirrors_the_local_launcher(
    services: dict[str, Any], local_airflow_env: dict[str, str]
) -> None:
    options = airflow_config_options()
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = environment(services[name])
        airflow_keys = {k for k in env if k.startswith("AIRFLOW__")}
        assert airflow_keys <= options, f"{name}: not Airflow options: {airflow_keys - options}"
        local_keys = {k for k in local_airflow_env if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        missing = local_keys - set(env)
        assert not missing, f"{name} lacks what local mode sets: {sorted(missing)}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{IMAGE_ROOT}/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{IMAGE_ROOT}/plugins"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-api-server:8080/execution/"
        )
        conn = interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], dummy_env())
        assert conn.startswith(f"postgresql+psycopg2://{stack_config.AIRFLOW_DB_ROLE}:")
        assert conn.endswith(f"@postgres:5432/{stack_config.AIRFLOW_DB}")


def test_airflow_connections_match_the_settings(
    services: dict[str, Any], local_airflow_env: dict[str, str]
) -> None:
    env = {
        k: interpolate(v, dummy_env())
        for k, v in environment(services["airflow-scheduler"]).items()
    }
    assert env["AIRFLOW_CONN_MOONWATCH_WAREHOUSE"] == env["MOONWATCH_WAREHOUSE_URL"]
    kafka = json.loads(env["AIRFLOW_CONN_MOONWATCH_KAFKA"])
    local = json.loads(local_airflow_env["AIRFLOW_CONN_MOONWATCH_KAFKA"])
    assert kafka["conn_type"] == local["conn_type"] == "kafka"
    assert set(kafka["extra"]) == set(local["extra"])
    assert kafka["extra"]["bootstrap.servers"] == env["MOONWATCH_KAFKA_BOOTSTRAP"]
    assert kafka["extra"]["group.id"] == env["MOONWATCH_CONSUMER_GROUP"]
    assert kafka["extra"]["enable.auto.commit"] is False


# -- ports, health, order -----------------------------------------------------------------------


def test_published_ports_are_loopback_only_and_do_not_collide(services: dict[str, Any]) -> None:
    published: dict[int, str] = {}
    for name, service in services.items():
        for mapping in service.get("ports") or []:
            match = PORT_MAPPING.match(str(mapping))
            assert match, f"{name}: publish as 127.0.0.1:HOST:CONTAINER, not {mapping!r}"
            assert match["ip"] == "127.0.0.1", f"{name} publishes on {match['ip']}"
            host = match["host"]
            variable = INTERPOLATION.fullmatch(host)
            if variable:
                # The local launcher's port variable, with the local-mode number as default.
                assert variable.group(1) in stack_config.DEFAULT_PORTS, host
                assert int(variable.group(3)) == stack_config.DEFAULT_PORTS[variable.group(1)]
            port = int(interpolate(host, {}))
            assert port not in published, f"{name} and {published.get(port)} both use {port}"
            published[port] = name
    assert set(published) == set(stack_config.DEFAULT_PORTS.values())


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    running = long_running(services)
    assert REQUIRED_SERVICES - {"airflow-init"} <= set(running)
    for name in running:
        check = services[name].get("healthcheck") or {}
        assert not check.get("disable"), name
        test = check.get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    api = services["airflow-api-server"]["healthcheck"]["test"]
    assert "/api/v2/monitor/health" in " ".join(api)
    for script in ("docker/healthcheck.py",):
        assert (ROOT / script).is_file()


def test_depends_on_references_existing_services_with_conditions(services: dict[str, Any]) -> None:
    running = set(long_running(services))
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = spec["condition"]
            if dep in running:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition}"
                assert services[dep].get("healthcheck"), dep
            else:
                assert condition == "service_completed_successfully", f"{name} -> {dep}"
    # No cycles: a topological order exists.
    order: list[str] = []
    pending = dict(services)
    while pending:
        ready = [n for n, s in pending.items() if set(s.get("depends_on") or {}) <= set(order)]
        assert ready, f"depends_on cycle among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]


def test_start_order_matches_design(services: dict[str, Any]) -> None:
    """api-server first and healthy, then scheduler, dag-processor, triggerer."""
    for name in AIRFLOW_COMPONENTS[1:]:
        deps = services[name]["depends_on"]
        assert deps["airflow-api-server"]["condition"] == "service_healthy"
    assert set(services["airflow-api-server"]["depends_on"]) == {"airflow-init"}
    assert "postgres-init" in services["airflow-init"]["depends_on"]
    assert "kafka-init" in services["airflow-triggerer"]["depends_on"]
    assert "kafka-init" in services["airflow-scheduler"]["depends_on"]


# -- secrets ------------------------------------------------------------------------------------


def test_no_literal_passwords(services: dict[str, Any]) -> None:
    text = compose_text_without_comments()
    for match in URL_PASSWORD.finditer(text):
        secret = match.group(1)
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", secret), f"literal URL password {secret!r}"
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY_NAME.search(key) and value:
                assert INTERPOLATION.fullmatch(value), f"{name}: {key} is a literal value"
                op = INTERPOLATION.fullmatch(value).group(2)
                default = INTERPOLATION.fullmatch(value).group(3) or ""
                assert op == ":?" or not default, f"{name}: {key} has a default value"
    # Every secret of the local stack is required, not defaulted.
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
    substituted = substituted_names()
    assert substituted <= set(example), f".env.example lacks {substituted - set(example)}"
    for name in stack_config.SECRET_NAMES:
        assert raw[name].strip() == "", f".env.example must not carry a value for {name}"
    assert raw["CMC_API_KEY"].strip() == ""
    known = env_names_read_by_code()
    for name in raw:
        assert name.startswith("AIRFLOW__") or name in known, f"{name} is read by no code"
    # With it filled in, every required variable resolves.
    for match in INTERPOLATION.finditer(compose_text_without_comments()):
        interpolate(match.group(0), example)
    with pytest.raises(KeyError, match="MOONWATCH_LOADER_PASSWORD"):
        interpolate("${MOONWATCH_LOADER_PASSWORD:?set MOONWATCH_LOADER_PASSWORD in .env}", {})


def test_dockerignore_keeps_secrets_and_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", ".moonwatch"} <= ignored


# -- the image and its scripts ------------------------------------------------------------------


def test_dockerfile_installs_the_pinned_requirements() -> None:
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines() if ln.strip()]
    code = [ln for ln in lines if not ln.startswith("#")]
    assert code[0] == "FROM python:3.11-slim"
    assert any(re.match(r"COPY requirements\.txt\s", ln) for ln in code)
    assert re.search(r"pip install\b[^\n]*-r requirements\.txt", DOCKERFILE.read_text())
    assert f"WORKDIR {IMAGE_ROOT}" in code
    assert "COPY . ." in code
    assert any(ln.startswith("USER ") and "root" not in ln for ln in code)
    assert 'ENTRYPOINT ["/opt/moonwatch/docker/entrypoint.sh"]' in code


@pytest.mark.parametrize(
    "script",
    ["docker/entrypoint.sh", "docker/postgres-init/bootstrap.sh"],
)
def test_shell_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_entrypoint_unsets_empty_settings_and_defaults_to_the_simulator(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "MOONWATCH_SYMBOLS": "",
        "CMC_API_KEY": "",
        "MOONWATCH_TOPIC": "crypto",
        "MOONWATCH_AIRFLOW_ADMIN_PASSWORD": 'p"w',
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
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


def test_postgres_init_mirrors_the_local_bootstrap() -> None:
    folder = ROOT / "docker" / "postgres-init"
    sql = "\n".join(p.read_text() for p in sorted(folder.glob("*.sql"))).lower()
    for name in (
        stack_config.LOADER_ROLE,
        stack_config.DASHBOARD_ROLE,
        stack_config.AIRFLOW_DB_ROLE,
    ):
        assert f"alter role {name} login password :'" in sql, name
    assert f"create database {stack_config.WAREHOUSE_DB} owner {stack_config.LOADER_ROLE}" in sql
    assert f"create database {stack_config.AIRFLOW_DB} owner {stack_config.AIRFLOW_DB_ROLE}" in sql
    for schema in ("raw", "staging", "marts"):
        assert f"create schema if not exists {schema} authorization moonwatch_loader" in sql
    assert "grant usage on schema marts to moonwatch_dashboard" in sql
    assert "grant select on all tables in schema marts to moonwatch_dashboard" in sql
    assert "alter default privileges for role moonwatch_loader in schema marts" in sql
    assert "revoke all on schema raw, staging from moonwatch_dashboard" in sql
    assert "default_transaction_read_only = on" in sql
    # Passwords only from the environment, never written in the files.
    raw_sql = "\n".join(p.read_text() for p in sorted(folder.glob("*.sql")))
    getenv = set(re.findall(r"\\getenv \w+ (\w+)", raw_sql))
    assert getenv == set(stack_config.SECRET_NAMES) & {
        "MOONWATCH_LOADER_PASSWORD",
        "MOONWATCH_DASHBOARD_PASSWORD",
        "MOONWATCH_AIRFLOW_DB_PASSWORD",
    }
    assert "password '" not in sql


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
    from moonwatch.dbt import docs as dbt_docs

    folder = "/opt/airflow/dbt_docs"
    for name in (*AIRFLOW_COMPONENTS, "airflow-init"):
        env = environment(services[name])
        assert env[dbt_docs.DOCS_PROJECTS_ENV] == dbt_docs.cosmos_docs_projects(folder), name
    # The scheduler's LocalExecutor runs crypto_dbt_docs; the api-server serves what it wrote.
    for name in ("airflow-api-server", "airflow-scheduler"):
        assert f"dbt-docs:{folder}" in services[name]["volumes"], name
    assert folder in DOCKERFILE.read_text(), "the image creates the folder for its user"
