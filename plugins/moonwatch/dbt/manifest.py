"""The parsed dbt manifest the DAGs render from: cached, re-parsed when the project changes, and
edited for the per-minute build (no `audit` tests).

``dbt parse`` needs no database (just the profile's shape), so this works at DAG parse time
anywhere; it only runs when the manifest is missing or older than the project.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from moonwatch.dbt.environment import project_dir
from moonwatch.dbt.runner import DbtError, run_dbt, tail

# The project files whose change means a new parse.
_PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
# Data tests that scan all history (full-refresh equivalence, relationships into the big marts,
# key uniqueness that unique indexes already enforce) carry this tag. The per-minute
# crypto_transform build leaves them out; the daily crypto_marts_audit DAG runs only them.
AUDIT_TAG = "audit"
AUDIT_SELECTOR = f"tag:{AUDIT_TAG}"


def manifest_dir() -> Path:
    """Where the DAGs' manifest lives: its own folder, so by-hand runs (target/) never race it."""
    return project_dir() / "target" / "airflow"


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in _PROJECT_INPUTS:
        path = project_dir() / name
        candidates = [path] if path.is_file() else path.rglob("*")
        for item in candidates:
            if item.is_file():
                newest = max(newest, item.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """``<project>/target/airflow/manifest.json``, re-parsed when a project file changed."""
    folder = manifest_dir()
    manifest = folder / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_input_mtime():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parse-", dir=folder) as tmp:
        result = run_dbt(["parse"], target_path=tmp, log_path=tmp, needs_warehouse=False)
        if not result.ok:
            raise DbtError(
                "dbt parse failed, so the DAG cannot list the models; fix the project:\n"
                + tail(result.output),
                result,
            )
        # Atomic replace: a concurrent reader sees the old or the new manifest, never half.
        os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


def _is_audit_test(node: dict) -> bool:
    return node.get("resource_type") == "test" and AUDIT_TAG in (node.get("tags") or [])


def ensure_build_manifest() -> Path:
    """The manifest the transform DAGs render: dbt's, minus the `audit` tests.

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
    build_manifest = manifest.parent / "manifest.build.json"
    if build_manifest.exists() and build_manifest.stat().st_mtime >= manifest.stat().st_mtime:
        return build_manifest
    data = json.loads(manifest.read_text())
    audit_ids = [uid for uid, node in data.get("nodes", {}).items() if _is_audit_test(node)]
    for unique_id in audit_ids:
        del data["nodes"][unique_id]
    for graph in ("parent_map", "child_map"):
        mapping = data.get(graph) or {}
        for unique_id in audit_ids:
            mapping.pop(unique_id, None)
        for key, ids in mapping.items():
            mapping[key] = [i for i in ids if i not in audit_ids]
    fd, tmp = tempfile.mkstemp(prefix="manifest-", suffix=".json", dir=manifest.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, build_manifest)  # atomic: a concurrent reader sees old or new, never half
    return build_manifest


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
        if _is_audit_test(node)
    }
