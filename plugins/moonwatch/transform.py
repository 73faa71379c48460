"""dbt for Moonwatch: the connection environment, dbt as a subprocess, and Cosmos configs.

The warehouse connection contract is one variable, ``MOONWATCH_WAREHOUSE_URL``. dbt's
``dbt_project/profiles.yml`` reads ``MOONWATCH_DBT_HOST|PORT|USER|PASSWORD|DBNAME``, falling
back to parsing the URL itself; :func:`dbt_env` derives the five variables (URL-decoded) so
any password works. Nothing secret is written to a file or passed on a command line.

Usage by hand (after ``eval "$(make -s env)"``)::

    python -m moonwatch.transform build            # dbt build
    python -m moonwatch.transform freshness        # dbt source freshness
    python -m moonwatch.transform audit            # dbt test --select tag:audit (full history)
    python -m moonwatch.transform dbt run -s quotes_coins   # any dbt command
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from moonwatch.errors import ConfigurationError, MoonwatchError, PermanentError, WarehouseError
from moonwatch.settings import PROJECT_ROOT, get_settings

if TYPE_CHECKING:
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig

logger = logging.getLogger(__name__)

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DBT_PROFILE = "moonwatch"
DBT_TARGET = "warehouse"
# Where the DAG's manifest lives: its own folder, so by-hand runs (target/) never race it.
MANIFEST_DIR = DBT_PROJECT_DIR / "target" / "airflow"
_PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
# Data tests that scan all history (full-refresh equivalence, relationships into the big marts,
# key uniqueness that unique indexes already enforce) carry this tag. The per-minute
# crypto_transform build leaves them out; the daily crypto_marts_audit DAG runs only them.
AUDIT_TAG = "audit"
AUDIT_SELECTOR = f"tag:{AUDIT_TAG}"
# What each transform DAG builds (dbt graph selectors). Quotes land every minute and only the
# models downstream of them need rebuilding that often; listings (every 15 minutes) and FX
# rates (daily) rebuild their own marts. Keeping the per-minute build small is what keeps
# quotes fresh: one dbt run at a time, so a long build makes the next minute's quotes wait.
QUOTES_SELECTION = (
    "stg_crypto_quotes+",
    "stg_crypto_quotes_rejected+",
    "raw_loads_per_minute+",
    "pipeline_health",
)
# The reconciliation views ride along: the reconcile DAG writes raw after any build, and a
# view shows its rows at once; they only need to exist.
# credit_budget is a view (current whenever read): building it with the listings is enough.
REFERENCE_SELECTION = (
    "stg_crypto_listings+",
    "stg_fx_rates+",
    "stg_reconciliation+",
    "credit_budget",
)
# Raw sources the marts can do without: with no FX rates the dashboard shows amounts in USD
# only. Their staleness is a warning (in the task log and in marts.pipeline_health), never a
# failed run; quotes or listings past error_after still fail the freshness check.
OPTIONAL_SOURCES = frozenset({"fx_rates"})


class NothingToCheckYet(MoonwatchError):
    """A check has nothing to look at yet (a fresh install: the marts are not built). Not a
    failure: the Airflow task is skipped with this message, and the next run checks."""


class DbtError(PermanentError):
    """dbt exited non-zero: a model failed, a data test failed, or a source is stale."""

    def __init__(self, message: str, result: DbtResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class DbtResult:
    """What a dbt subprocess did."""

    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dbt_env(warehouse_url: str) -> dict[str, str]:
    """The MOONWATCH_DBT_* variables profiles.yml reads, from a postgresql:// URL."""
    try:
        parts = urlsplit(warehouse_url)
        port = parts.port
    except ValueError as e:
        raise ConfigurationError(
            "MOONWATCH_WAREHOUSE_URL is not a valid URL; write it as "
            "postgresql://user:password@host:port/database"
        ) from e
    scheme = parts.scheme.split("+", 1)[0]
    database = parts.path.lstrip("/")
    if scheme not in ("postgresql", "postgres") or not parts.hostname or not database:
        raise ConfigurationError(
            "MOONWATCH_WAREHOUSE_URL must look like postgresql://user:password@host:port/database "
            f"(got scheme {parts.scheme!r}, host {parts.hostname!r}, database {database!r})"
        )
    return {
        "MOONWATCH_DBT_HOST": parts.hostname,
        "MOONWATCH_DBT_PORT": str(port or 5432),
        "MOONWATCH_DBT_USER": unquote(parts.username or ""),
        "MOONWATCH_DBT_PASSWORD": unquote(parts.password or ""),
        "MOONWATCH_DBT_DBNAME": unquote(database),
    }


def dbt_executable() -> str:
    """The dbt next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise ConfigurationError("dbt is not installed; run `make install` to create .venv")
    return found


def run_dbt(
    args: Sequence[str],
    *,
    warehouse_url: str | None = None,
    target_path: Path | str | None = None,
    log_path: Path | str | None = None,
    extra_env: Mapping[str, str] | None = None,
    check: bool = False,
    timeout: float = 900.0,
) -> DbtResult:
    """Run ``dbt <args>`` on the project in a subprocess and return its exit code and output.

    ``warehouse_url`` defaults to MOONWATCH_WAREHOUSE_URL. Give ``target_path``/``log_path``
    (e.g. temporary folders) so concurrent runs do not share ``target/``. With ``check`` a
    non-zero exit raises :class:`DbtError`.
    """
    url = warehouse_url or get_settings().require_warehouse_url()
    env = {**os.environ, **dbt_env(url), **(extra_env or {})}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    command = [dbt_executable(), *args]
    flags = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    if target_path is not None:
        flags += ["--target-path", str(target_path)]
    if log_path is not None:
        flags += ["--log-path", str(log_path)]
    command += flags
    logger.info("running %s", " ".join(["dbt", *args]))
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=DBT_PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise DbtError(f"dbt {' '.join(args)} did not finish within {timeout:.0f} s") from e
    result = DbtResult(
        args=tuple(args),
        returncode=completed.returncode,
        output=completed.stdout + completed.stderr,
        seconds=time.monotonic() - started,
    )
    logger.info("dbt %s exited %s after %.1f s", " ".join(args), result.returncode, result.seconds)
    if check and not result.ok:
        raise DbtError(
            f"dbt {' '.join(args)} failed (exit {result.returncode}); its output names the "
            f"failing model or test:\n{_tail(result.output)}",
            result,
        )
    return result


def dbt_build(*extra_args: str, **kwargs: Any) -> DbtResult:
    """``dbt build`` (models, then their data and unit tests, in DAG order)."""
    return run_dbt(["build", *extra_args], **kwargs)


def source_freshness(**kwargs: Any) -> DbtResult:
    """``dbt source freshness``: exit 0 when every source is fresh or only past warn_after.

    A source past error_after makes dbt exit 1; with ``check=True`` that raises DbtError.
    """
    return run_dbt(["source", "freshness"], **kwargs)


def check_source_freshness() -> str:
    """The reference DAG's freshness task: log dbt's verdict per source and fail only when a
    required source (quotes, listings) is past error_after. An optional source
    (OPTIONAL_SOURCES: FX rates) that is stale or has no rows at all is a warning: the marts
    work without it, and marts.pipeline_health shows it to the reader."""
    with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-") as tmp:
        result = source_freshness(
            target_path=Path(tmp) / "target", log_path=Path(tmp) / "logs", check=False
        )
        verdicts = _freshness_verdicts(Path(tmp) / "target" / "sources.json")
    for line in result.output.splitlines():
        logger.info("%s", line)
    if result.returncode not in (0, 1) or not verdicts:
        raise WarehouseError(
            f"dbt could not check source freshness (exit {result.returncode}); check that the "
            f"warehouse answers at MOONWATCH_WAREHOUSE_URL:\n{_tail(result.output)}"
        )
    failed = sorted(n for n, v in verdicts.items() if v != "pass" and v != "warn")
    required = [n for n in failed if n not in OPTIONAL_SOURCES]
    if required:
        raise DbtError(
            "A raw source is past its error_after freshness threshold or could not be checked "
            f"({', '.join(f'{n}: {verdicts[n]}' for n in required)}; see the lines above): "
            "check that its loader DAG runs.",
            result,
        )
    notes = [f"{n}: {verdicts[n]}" for n in failed]
    notes += [f"{n}: warn" for n, v in sorted(verdicts.items()) if v == "warn"]
    for name in failed:
        logger.warning(
            "optional source %s is %s (stale or never loaded); the marts go on without it "
            "and marts.pipeline_health shows it",
            name,
            verdicts[name],
        )
    return "fresh" + (f" (warnings: {'; '.join(notes)})" if notes else "")


def _freshness_verdicts(sources_json: Path) -> dict[str, str]:
    """dbt's status per source table ('pass', 'warn', 'error', 'runtime error') from the
    ``sources.json`` artifact of ``dbt source freshness``; empty if dbt wrote none."""
    try:
        results = json.loads(sources_json.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return {}
    return {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}


def marts_audit_args() -> list[str]:
    """The audit's dbt command: every test tagged `audit`, over all history."""
    return ["test", "--select", AUDIT_SELECTOR]


def run_marts_audit() -> str:
    """The crypto_marts_audit DAG's task: the full-history data tests; a failure raises.

    Checks only what exists: on a fresh install the first daily run comes before any build,
    and a test of a relation that is not there yet is not a failed check. Each audit test
    whose relations all exist runs; the others are named in the log. With none to run it
    raises :class:`NothingToCheckYet` (the task is skipped with that message).

    Runs in a temporary target folder (a daily run can afford the full parse) and logs dbt's
    output. A failed check raises :class:`DbtError` (permanent: the task fails at once, naming
    the failing tests); dbt unable to run at all raises :class:`WarehouseError` (retryable).
    """
    tests = audit_tests_by_relations()
    existing = existing_relations({r for relations in tests.values() for r in relations})
    ready = sorted(name for name, relations in tests.items() if relations <= existing)
    waiting = sorted({r for relations in tests.values() for r in relations} - existing)
    if not ready:
        raise NothingToCheckYet(
            "Nothing to audit yet: " + ", ".join(waiting) + " do not exist. They are built by "
            "crypto_transform (on the first quote load) and crypto_transform_reference (on the "
            "first listings or FX load); the next daily run checks them."
        )
    if waiting:
        logger.warning(
            "not built yet, so not audited this time: %s (the audit tests that read them wait "
            "for the next run)",
            ", ".join(waiting),
        )
    with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-audit-") as tmp:
        result = run_dbt(
            marts_audit_args() if not waiting else ["test", "--select", *ready],
            target_path=Path(tmp) / "target",
            log_path=Path(tmp) / "logs",
            check=False,
            timeout=3600.0,
        )
    for line in result.output.splitlines():
        logger.info("%s", line)
    if result.returncode not in (0, 1):
        # dbt exits 2 when it could not run at all (warehouse unreachable, bad profile):
        # retrying can help, unlike a failed check.
        raise WarehouseError(
            f"dbt could not run the marts audit (exit {result.returncode}); check that the "
            f"warehouse answers at MOONWATCH_WAREHOUSE_URL:\n{_tail(result.output)}"
        )
    if not result.ok:
        failing = [
            line.strip()
            for line in result.output.splitlines()
            if "Failure in test" in line or "Error in test" in line
        ]
        raise DbtError(
            "The marts audit failed: a full-history check found bad rows (see the FAIL lines "
            "above; `python -m moonwatch.transform dbt test --select tag:audit --store-failures` "
            "keeps them in a table to inspect). Failing: " + ("; ".join(failing) or "see log"),
            result,
        )
    summary = next(
        (line.strip() for line in reversed(result.output.splitlines()) if "Done." in line), ""
    )
    if waiting:
        summary += f" (not built yet, not audited: {', '.join(waiting)})"
    return summary or "audit passed"


def audit_tests_by_relations() -> dict[str, frozenset[str]]:
    """Each `audit` test's name and the relations (``schema.table``) it reads, from the
    manifest (parsed without a database)."""
    manifest = json.loads(ensure_manifest().read_text())
    relations = {
        unique_id: f"{node['schema']}.{node.get('alias') or node.get('identifier')}"
        for group in ("nodes", "sources")
        for unique_id, node in manifest.get(group, {}).items()
        if node.get("resource_type") in ("model", "source", "seed", "snapshot")
    }
    return {
        node["name"]: frozenset(
            relations[parent] for parent in node["depends_on"]["nodes"] if parent in relations
        )
        for node in manifest["nodes"].values()
        if node.get("resource_type") == "test" and AUDIT_TAG in (node.get("tags") or [])
    }


def existing_relations(names: set[str], *, warehouse_url: str | None = None) -> set[str]:
    """Those of ``names`` (``schema.table``) that exist in the warehouse."""
    import psycopg

    url = warehouse_url or get_settings().require_warehouse_url()
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            rows = conn.execute(
                "select name from unnest(%s::text[]) as name where to_regclass(name) is not null",
                (sorted(names),),
            ).fetchall()
    except psycopg.Error as e:
        raise WarehouseError(
            "could not reach the warehouse to see which marts exist; check that it answers at "
            f"MOONWATCH_WAREHOUSE_URL ({type(e).__name__})"
        ) from e
    return {row[0] for row in rows}


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- Cosmos ---------------------------------------------------------------------------------


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in _PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        candidates = [path] if path.is_file() else path.rglob("*")
        for item in candidates:
            if item.is_file():
                newest = max(newest, item.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """``dbt_project/target/airflow/manifest.json``, re-parsed when a project file changed.

    ``dbt parse`` needs no database (just the profile's shape), so this works at DAG parse
    time anywhere; it only runs when the manifest is missing or older than the project.
    """
    manifest = MANIFEST_DIR / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_input_mtime():
        return manifest
    MANIFEST_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parse-", dir=MANIFEST_DIR) as tmp:
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        command = [
            dbt_executable(),
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            tmp,
            "--log-path",
            tmp,
        ]
        completed = subprocess.run(
            command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise DbtError(
                "dbt parse failed, so the DAG cannot list the models; fix the project:\n"
                + _tail(completed.stdout + completed.stderr)
            )
        # Atomic replace: a concurrent reader sees the old or the new manifest, never half.
        os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


def ensure_build_manifest() -> Path:
    """The manifest the crypto_transform DAG renders: dbt's, minus the `audit` tests.

    Cosmos 1.15 (manifest load mode) applies RenderConfig.exclude to models, but then
    re-attaches every test of each selected model (DbtGraph.update_node_dependency), and its
    `tag:` selector judges a test by its parent model's tags. So `exclude=["tag:audit"]`
    alone still renders the audit tests as tasks, and lists them in the watcher producer's
    tests_per_model, where a test the producer never runs leaves its model's test sensor
    waiting. Leaving them out of the manifest Cosmos reads fixes both; the producer's own
    `dbt build --exclude tag:audit` (from RenderConfig.exclude) is what keeps dbt from
    running them.
    """
    manifest = ensure_manifest()
    build_manifest = MANIFEST_DIR / "manifest.build.json"
    if build_manifest.exists() and build_manifest.stat().st_mtime >= manifest.stat().st_mtime:
        return build_manifest
    data = json.loads(manifest.read_text())
    audit_ids = [
        unique_id
        for unique_id, node in data.get("nodes", {}).items()
        if node.get("resource_type") == "test" and AUDIT_TAG in (node.get("tags") or [])
    ]
    for unique_id in audit_ids:
        del data["nodes"][unique_id]
    for graph in ("parent_map", "child_map"):
        mapping = data.get(graph) or {}
        for unique_id in audit_ids:
            mapping.pop(unique_id, None)
        for key, ids in mapping.items():
            mapping[key] = [i for i in ids if i not in audit_ids]
    fd, tmp = tempfile.mkstemp(prefix="manifest-", suffix=".json", dir=MANIFEST_DIR)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, build_manifest)  # atomic: a concurrent reader sees old or new, never half
    return build_manifest


def project_config() -> ProjectConfig:
    """Cosmos ProjectConfig: the project folder plus the per-build manifest (no audit tests)."""
    from cosmos import ProjectConfig

    return ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=ensure_build_manifest(),
        project_name=DBT_PROFILE,
        install_dbt_deps=False,
    )


def profile_config() -> ProfileConfig:
    """Cosmos ProfileConfig: the project's own env-driven profiles.yml.

    The workers get MOONWATCH_WAREHOUSE_URL from the launcher; profiles.yml parses it at run
    time, so no credential is serialised into the DAG.
    """
    from cosmos import ProfileConfig

    return ProfileConfig(
        profile_name=DBT_PROFILE,
        target_name=DBT_TARGET,
        profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
    )


def execution_config() -> ExecutionConfig:
    """Cosmos ExecutionConfig: watcher mode, in-process (dbtRunner).

    One producer task runs a single `dbt build` with dbt's own threads; every model and test
    is still an Airflow task, a deferrable sensor that reports that node's result. Measured
    here, per-model LOCAL mode spent 5-20 s of process start-up per task (a 31-task build
    took minutes on 2 cores); the watcher build does the same work in one dbt invocation.

    Cautious test selection: a model's test task runs only the tests whose parents are all
    built by then; tests spanning several models (relationships, the singular tests) get
    their own tasks after all their parents (see render_config).
    """
    from cosmos import ExecutionConfig
    from cosmos.constants import ExecutionMode, InvocationMode, TestIndirectSelection

    return ExecutionConfig(
        execution_mode=ExecutionMode.WATCHER,
        invocation_mode=InvocationMode.DBT_RUNNER,
        test_indirect_selection=TestIndirectSelection.CAUTIOUS,
    )


def render_config(select: Sequence[str]) -> RenderConfig:
    """Cosmos RenderConfig for the nodes ``select`` picks: from the manifest (fast, no DB at
    parse time), a test after each model, no per-model datasets (the DAG emits the MARTS asset
    itself), and no `audit` tests: the watcher producer runs
    ``dbt build --select <select> --exclude tag:audit`` (see ensure_build_manifest for why the
    manifest leaves them out too)."""
    from cosmos import RenderConfig
    from cosmos.constants import LoadMode, TestBehavior

    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.AFTER_EACH,
        emit_datasets=False,
        should_detach_multiple_parents_tests=True,
        select=list(select),
        exclude=[AUDIT_SELECTOR],
    )


def dbt_build_group(select: Sequence[str]) -> DbtTaskGroup:
    """The `dbt_build` Cosmos task group of a transform DAG: one watcher producer running
    ``dbt build`` of ``select`` and a task per model and test. Call inside a DAG."""
    from cosmos import DbtTaskGroup

    return DbtTaskGroup(
        group_id="dbt_build",
        project_config=project_config(),
        profile_config=profile_config(),
        execution_config=execution_config(),
        render_config=render_config(select),
        operator_args=operator_args(),
    )


# dbt unit tests check model logic on fixed inputs, so they belong in development and CI
# (tests/dbt runs them in every `dbt build`), not in the scheduled builds: there they repeat the
# same answer every minute and sit on the path of the marts they test. dbt reads this variable
# for build, test and list only; a sensor retry's `dbt run` ignores it.
SCHEDULED_BUILD_ENV = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}


# Airflow 3.3's scheduler can fail a deferred sensor whose trigger fires before the scheduler has
# handled the worker's exit from defer(): it sees "success" for a task instance already back in
# `queued` and marks it up for retry (apache/airflow#67287; only the `scheduled` variant is fixed
# in 3.3.2). A watcher sensor whose node finishes within a second or two of deferring hits it in
# about one run in four here. The retry is harmless (the node is re-run or its result re-read), so
# the dbt tasks retry after seconds, not the DAG's 30 s: that wait held the whole run, and every
# load queued behind it.
DBT_TASK_RETRY_DELAY = timedelta(seconds=3)
# How often a deferred watcher sensor's trigger reads the producer's results. Cosmos's 10 s
# default let a node that finished just after its sensor deferred wait up to 10 s, and the
# sensors after it in line waited too. Only the first sensors of a build defer (the later ones
# find their node done on their first look), so a 2 s poll costs a few reads a second.
WATCHER_POKE_INTERVAL_S = 2


def operator_args() -> dict[str, Any]:
    """Arguments every Cosmos dbt task gets: the `dbt` pool keeps builds from taking every
    executor slot from the quote producer and loader, scheduled builds skip unit tests, a
    failed try is retried soon (see DBT_TASK_RETRY_DELAY) and deferred sensors look often."""
    return {
        "install_deps": False,
        "pool": "dbt",
        "env": dict(SCHEDULED_BUILD_ENV),
        "retry_delay": DBT_TASK_RETRY_DELAY,
        "poke_interval": WATCHER_POKE_INTERVAL_S,  # sensors only; the producer ignores it
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m moonwatch.transform build|freshness|audit|parse|dbt <args>``."""
    logging.basicConfig(level=logging.WARNING)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    verb, rest = args[0], args[1:]
    commands = {
        "build": ["build"],
        "freshness": ["source", "freshness"],
        "parse": ["parse"],
        "audit": marts_audit_args(),
    }
    if verb == "dbt":
        dbt_args = rest
    elif verb in commands:
        dbt_args = commands[verb] + rest
    else:
        print(f"unknown command {verb!r}; use build, freshness, audit, parse or dbt <args>")
        return 2
    try:
        result = run_dbt(dbt_args)
    except ConfigurationError as e:
        print(e, file=sys.stderr)
        return 2
    print(result.output, end="")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
