"""What each transform DAG builds, and how Cosmos runs the reference build (a task per model
and test). The per-minute quotes build is one plain task instead (:mod:`moonwatch.dbt.build`).

Inside Airflow dbt's profile comes from the Airflow connection ``moonwatch_warehouse``
(Cosmos' profile mapping), so the DAGs run in any Airflow where that connection exists; no
credential is serialised into the DAG. ``dbt_project/profiles.yml`` is for dbt outside Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from moonwatch.airflow_glue import WAREHOUSE_CONN_ID
from moonwatch.dbt.environment import DBT_PROFILE, DBT_TARGET, project_dir
from moonwatch.dbt.manifest import AUDIT_SELECTOR, ensure_build_manifest

if TYPE_CHECKING:
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig

# What each transform DAG builds (dbt graph selectors). Quotes land every minute and only the
# models downstream of them need rebuilding that often; listings (every 15 minutes) and FX
# rates (daily) rebuild their own marts. Keeping the per-minute build small is what keeps
# quotes fresh: one dbt run at a time, so a long build makes the next minute's quotes wait.
QUOTES_SELECTION = (
    "stg_crypto_quotes+",
    "stg_crypto_quotes_rejected+",
    "int_loads_per_minute+",
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
# What the connection does not say, as profiles.yml's `warehouse` output has it: models without
# a custom schema would land in staging (every folder sets one), dbt's threads, and how long a
# connection attempt may take.
PROFILE_ARGS = {"schema": "staging", "threads": 4, "connect_timeout": 10}

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


def project_config() -> ProjectConfig:
    """Cosmos ProjectConfig: the project folder plus the per-build manifest (no audit tests)."""
    from cosmos import ProjectConfig

    return ProjectConfig(
        dbt_project_path=project_dir(),
        manifest_path=ensure_build_manifest(),
        project_name=DBT_PROFILE,
        install_dbt_deps=False,
    )


def profile_config(conn_id: str = WAREHOUSE_CONN_ID) -> ProfileConfig:
    """Cosmos ProfileConfig: the profile Cosmos writes from the Airflow connection at run time
    (host, port, user and database from it, the password through an environment variable)."""
    from cosmos import ProfileConfig
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    return ProfileConfig(
        profile_name=DBT_PROFILE,
        target_name=DBT_TARGET,
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=conn_id, profile_args=dict(PROFILE_ARGS)
        ),
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
    ``dbt build --select <select> --exclude tag:audit`` (see
    :func:`moonwatch.dbt.manifest.ensure_build_manifest` for why the manifest leaves them out
    too)."""
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
