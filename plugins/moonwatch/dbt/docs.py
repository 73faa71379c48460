"""dbt docs for Moonwatch: generated into a folder that Airflow's api-server serves through Cosmos.

Cosmos 1.15's Airflow 3 plugin (``cosmos.plugin.airflow3.CosmosAF3Plugin``, Airflow >= 3.1)
mounts a FastAPI app at ``/cosmos`` on the api-server. For each project in the Airflow option
``[cosmos] dbt_docs_projects`` (JSON: slug -> ``{"dir", "name"}``) it serves ``<dir>/index.html``
at ``/cosmos/<slug>/dbt_docs_index.html`` (beside ``manifest.json`` and ``catalog.json``) and adds
an entry under Browse in the Airflow UI. The Airflow 2 options ``dbt_docs_dir`` and
``dbt_docs_conn_id`` are not read by the Airflow 3 plugin.

That one option is the one fact: the launcher writes it (:func:`cosmos_docs_projects`), the
api-server reads it, and the ``crypto_dbt_docs`` DAG's task writes the docs into the folder it
names (:func:`configured_docs_dir`). By hand: ``python -m moonwatch.dbt docs [FOLDER]``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from moonwatch.dbt.checks import existing_relations
from moonwatch.dbt.manifest import ensure_manifest
from moonwatch.dbt.runner import DbtError, DbtResult, could_not_run, run_dbt_in, tail
from moonwatch.errors import ConfigurationError, MoonwatchError

logger = logging.getLogger(__name__)

DOCS_SLUG = "moonwatch"
DOCS_NAME = "dbt Docs (Moonwatch)"
DOCS_PROJECTS_ENV = "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"
# What Cosmos serves. Replaced one by one, index last: a first reader finds the index only once
# the manifest and catalog it loads are there.
DOCS_FILES = ("manifest.json", "catalog.json", "index.html")
# The catalog's row counts and sizes age; the descriptions only change with the project.
MAX_AGE_S = 24 * 3600


class DocsUpToDate(MoonwatchError):
    """The docs already describe the project and every built model: nothing to regenerate."""


def docs_dir_for_home(home: Path) -> Path:
    """Where the local stack keeps the generated docs."""
    return home / "dbt_docs"


def cosmos_docs_projects(docs_dir: Path | str) -> str:
    """The value of ``[cosmos] dbt_docs_projects`` that serves the docs in ``docs_dir``."""
    return json.dumps({DOCS_SLUG: {"dir": str(docs_dir), "name": DOCS_NAME}})


def docs_url(airflow_url: str) -> str:
    """Where the api-server serves the docs page (Cosmos' route for our slug)."""
    return f"{airflow_url.rstrip('/')}/cosmos/{DOCS_SLUG}/dbt_docs_index.html"


def configured_docs_dir(projects_json: str | None) -> Path:
    """The folder ``[cosmos] dbt_docs_projects`` names for Moonwatch's docs."""
    how = (
        f"set {DOCS_PROJECTS_ENV}='{cosmos_docs_projects('/path/to/dbt_docs')}' for every Airflow "
        "component (`make up` and docker-compose.yml do)"
    )
    if not projects_json:
        raise ConfigurationError(
            f"Airflow has no [cosmos] dbt_docs_projects, so nothing serves the dbt docs: {how}"
        )
    try:
        folder = json.loads(projects_json)[DOCS_SLUG]["dir"]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigurationError(
            f"[cosmos] dbt_docs_projects has no {DOCS_SLUG!r} project with a 'dir': {how}"
        ) from e
    if not isinstance(folder, str) or not os.path.isabs(folder):
        raise ConfigurationError(
            f"[cosmos] dbt_docs_projects[{DOCS_SLUG!r}]['dir'] must be an absolute local folder "
            f"(got {folder!r}): {how}"
        )
    return Path(folder)


def _model_relations(manifest: dict) -> dict[str, str]:
    """``schema.alias`` of every model, keyed by unique_id."""
    return {
        unique_id: f"{node['schema']}.{node.get('alias') or node['name']}"
        for unique_id, node in manifest["nodes"].items()
        if node.get("resource_type") == "model"
    }


def reason_to_regenerate(
    docs_dir: Path, *, warehouse_url: str | None = None, now: float | None = None
) -> str | None:
    """Why the docs in ``docs_dir`` need regenerating, or None when they are current.

    They do when a file is missing, the project changed since (a newer parsed manifest), a
    model built since is not in the catalog (a fresh install builds the marts over several
    runs), or the catalog is older than a day.
    """
    # First: the parsed manifest is re-written only when a project file changed, so it is
    # older than docs generated after it, and newer once the project changes.
    parsed_at = ensure_manifest().stat().st_mtime
    missing = [name for name in DOCS_FILES if not (docs_dir / name).is_file()]
    if missing:
        return f"no docs yet ({', '.join(missing)} missing)"
    docs_manifest = docs_dir / "manifest.json"
    if parsed_at > docs_manifest.stat().st_mtime:
        return "the dbt project changed"
    catalog = docs_dir / "catalog.json"
    age = (time.time() if now is None else now) - catalog.stat().st_mtime
    if age > MAX_AGE_S:
        return f"the catalog is {age / 3600:.0f} h old"
    try:
        documented = set(json.loads(catalog.read_text())["nodes"])
        relations = _model_relations(json.loads(docs_manifest.read_text()))
    except (ValueError, KeyError) as e:
        return f"the docs are unreadable ({type(e).__name__})"
    undocumented = {r for uid, r in relations.items() if uid not in documented}
    built = existing_relations(undocumented, warehouse_url=warehouse_url) if undocumented else set()
    if built:
        return f"built since the last docs: {', '.join(sorted(built))}"
    return None


def generate_docs(docs_dir: Path, *, warehouse_url: str | None = None) -> DbtResult:
    """``dbt docs generate`` (manifest, catalog from the warehouse, index) into ``docs_dir``.

    dbt writes into a temporary folder beside ``docs_dir``; each file then replaces the old one
    atomically, so the api-server never serves half a file. A failure leaves the old docs.
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".generate-", dir=docs_dir) as tmp:
        result = run_dbt_in(tmp, ["docs", "generate"], warehouse_url=warehouse_url)
        if result.returncode not in (0, 1):
            raise could_not_run("generate the docs", result)
        if not result.ok or not all((Path(tmp) / "target" / n).is_file() for n in DOCS_FILES):
            raise DbtError(
                f"dbt docs generate failed (exit {result.returncode}); the old docs stay. Its "
                "output names the model or source:\n" + tail(result.output),
                result,
            )
        for name in DOCS_FILES:
            os.replace(Path(tmp) / "target" / name, docs_dir / name)
    logger.info("dbt docs written to %s in %.1f s", docs_dir, result.seconds)
    return result


def refresh_docs(docs_dir: Path, *, warehouse_url: str | None = None) -> str:
    """The crypto_dbt_docs task: regenerate the docs when they are out of date.

    Raises :class:`DocsUpToDate` (the task is skipped with its message) when they are current.
    """
    reason = reason_to_regenerate(docs_dir, warehouse_url=warehouse_url)
    if reason is None:
        raise DocsUpToDate(
            f"dbt docs in {docs_dir} are current: project unchanged, every built model in the "
            "catalog, catalog under a day old"
        )
    result = generate_docs(docs_dir, warehouse_url=warehouse_url)
    return f"dbt docs generated in {docs_dir} ({reason}) in {result.seconds:.0f} s"
