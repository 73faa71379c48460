"""The dbt checks the DAGs run as plain tasks: source freshness and the full-history audit.

Each checks only what it can: a source that is optional (FX rates) is a warning when stale, and
the audit leaves out the tests whose marts are not built yet (:class:`NothingToCheckYet` when
none are).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from moonwatch.dbt.manifest import AUDIT_SELECTOR, audit_tests_by_relations
from moonwatch.dbt.runner import DbtError, could_not_run, failures, run_dbt_in, summary
from moonwatch.errors import MoonwatchError, WarehouseError
from moonwatch.settings import get_settings

logger = logging.getLogger(__name__)

# Raw sources the marts can do without: with no FX rates the dashboard shows amounts in USD
# only. Their staleness is a warning (in the task log and in marts.pipeline_health), never a
# failed run; quotes or listings past error_after still fail the freshness check.
OPTIONAL_SOURCES = frozenset({"fx_rates"})


class NothingToCheckYet(MoonwatchError):
    """A check has nothing to look at yet (a fresh install: the marts are not built). Not a
    failure: the Airflow task is skipped with this message, and the next run checks."""


def _log_output(output: str) -> None:
    for line in output.splitlines():
        logger.info("%s", line)


def check_source_freshness(*, warehouse_url: str | None = None) -> str:
    """The reference DAG's freshness task: log dbt's verdict per source and fail only when a
    required source (quotes, listings) is past error_after. An optional source
    (OPTIONAL_SOURCES: FX rates) that is stale or has no rows at all is a warning: the marts
    work without it, and marts.pipeline_health shows it to the reader."""
    with tempfile.TemporaryDirectory(prefix="moonwatch-dbt-") as tmp:
        result = run_dbt_in(tmp, ["source", "freshness"], warehouse_url=warehouse_url)
        verdicts = _freshness_verdicts(Path(tmp) / "target" / "sources.json")
    _log_output(result.output)
    if result.returncode not in (0, 1) or not verdicts:
        raise could_not_run("check source freshness", result)
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


def run_marts_audit(*, warehouse_url: str | None = None) -> str:
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
    every_relation = {r for relations in tests.values() for r in relations}
    existing = existing_relations(every_relation, warehouse_url=warehouse_url)
    ready = sorted(name for name, relations in tests.items() if relations <= existing)
    waiting = sorted(every_relation - existing)
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
        result = run_dbt_in(
            tmp,
            marts_audit_args() if not waiting else ["test", "--select", *ready],
            warehouse_url=warehouse_url,
            timeout=3600.0,
        )
    _log_output(result.output)
    if result.returncode not in (0, 1):
        raise could_not_run("run the marts audit", result)
    if not result.ok:
        failing = failures(result.output)
        raise DbtError(
            "The marts audit failed: a full-history check found bad rows (see the FAIL lines "
            "above; `python -m moonwatch.dbt dbt test --select tag:audit --store-failures` "
            "keeps them in a table to inspect). Failing: " + ("; ".join(failing) or "see log"),
            result,
        )
    done = summary(result.output)
    if waiting:
        done += f" (not built yet, not audited: {', '.join(waiting)})"
    return done or "audit passed"


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
