"""dbt docs: every node and column described, generated from the real warehouse, and served by
Cosmos' Airflow 3 plugin from the folder the launcher configures."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moonwatch.dbt import docs as dbt_docs
from moonwatch.dbt import manifest as parsed_manifest
from moonwatch.dbt.runner import DbtResult

pytestmark = pytest.mark.integration

DESCRIBED_TYPES = ("model", "source", "exposure")


def _yml(node: dict[str, Any]) -> str:
    """The file that describes a node: a model's .yml (its patch), else where it is declared."""
    return (node.get("patch_path") or "").split("://", 1)[-1] or node["original_file_path"]


def undescribed(manifest: dict[str, Any]) -> list[str]:
    """Every model, source, exposure and listed column whose description is empty."""
    nodes = {**manifest["nodes"], **manifest["sources"], **manifest["exposures"]}
    missing = []
    for unique_id, node in sorted(nodes.items()):
        if node["resource_type"] not in DESCRIBED_TYPES:
            continue
        where = _yml(node)
        if not (node.get("description") or "").strip():
            missing.append(f"{unique_id} ({where})")
        for column, spec in (node.get("columns") or {}).items():
            if not (spec.get("description") or "").strip():
                missing.append(f"{unique_id}.{column} ({where})")
    return missing


def undocumented_columns(manifest: dict[str, Any], catalog: dict[str, Any]) -> list[str]:
    """Columns a model really has in the warehouse (dbt's catalog) that its .yml does not list."""
    missing = []
    for unique_id, entry in sorted(catalog["nodes"].items()):
        node = manifest["nodes"].get(unique_id)
        if node is None or node["resource_type"] != "model":
            continue
        listed = {name.lower() for name in node.get("columns") or {}}
        for column in sorted(entry["columns"]):
            if column.lower() not in listed:
                missing.append(f"{node['name']}.{column} ({_yml(node)})")
    return missing


def test_dbt_docs_describe_every_source_model_column_and_exposure(
    dbt: Callable[..., DbtResult], dbt_workdir: Path
) -> None:
    dbt("parse")
    manifest = json.loads((dbt_workdir / "target" / "manifest.json").read_text())
    assert manifest["exposures"], "models/exposures.yml declares the dashboard"
    missing = undescribed(manifest)
    assert not missing, "describe these in their .yml (`description:`):\n" + "\n".join(missing)


def test_undescribed_names_each_node_and_column() -> None:
    manifest = {
        "nodes": {
            "model.p.a": {
                "resource_type": "model",
                "original_file_path": "models/a.sql",
                "description": "",
                "columns": {"x": {"description": "the x"}, "y": {"description": " "}},
            },
            "test.p.t": {"resource_type": "test", "original_file_path": "t.sql"},
        },
        "sources": {
            "source.p.raw.q": {
                "resource_type": "source",
                "original_file_path": "s.yml",
                "description": "rows",
                "columns": {},
            }
        },
        "exposures": {"exposure.p.d": {"resource_type": "exposure", "original_file_path": "e.yml"}},
    }
    assert undescribed(manifest) == [
        "exposure.p.d (e.yml)",
        "model.p.a (models/a.sql)",
        "model.p.a.y (models/a.sql)",
    ]


@pytest.fixture(scope="module")
def docs_dir() -> Path:
    """The folder the launcher's Airflow environment configures (tests/conftest.py puts it in
    this process's environment): where the task writes and the api-server reads."""
    return dbt_docs.configured_docs_dir(os.environ.get(dbt_docs.DOCS_PROJECTS_ENV))


def test_launcher_configures_cosmos_to_serve_the_docs_folder(stack, docs_dir: Path) -> None:
    assert docs_dir == dbt_docs.docs_dir_for_home(stack.home)
    with pytest.raises(dbt_docs.ConfigurationError, match="dbt_docs_projects"):
        dbt_docs.configured_docs_dir(None)
    with pytest.raises(dbt_docs.ConfigurationError, match="'moonwatch'"):
        dbt_docs.configured_docs_dir('{"other": {"dir": "/x"}}')
    with pytest.raises(dbt_docs.ConfigurationError, match="absolute"):
        dbt_docs.configured_docs_dir('{"moonwatch": {"dir": "relative/docs"}}')


def test_dbt_docs_generated_from_the_warehouse_document_every_real_column_and_are_served(
    dbt: Callable[..., DbtResult],
    warehouse,
    warehouse_url: str,
    docs_dir: Path,
    stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fresh install: no parsed manifest yet (the DAGs' own is in dbt_project/target/airflow).
    monkeypatch.setattr(parsed_manifest, "manifest_dir", lambda: tmp_path / "parsed")
    dbt("run", "--full-refresh")  # every model exists, so the catalog has their real columns
    assert dbt_docs.reason_to_regenerate(docs_dir, warehouse_url=warehouse_url) is not None

    message = dbt_docs.refresh_docs(docs_dir, warehouse_url=warehouse_url)

    assert str(docs_dir) in message
    files = {name: (docs_dir / name).read_text() for name in dbt_docs.DOCS_FILES}
    manifest, catalog = json.loads(files["manifest.json"]), json.loads(files["catalog.json"])
    models = {u for u, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert models and models <= set(catalog["nodes"]), models - set(catalog["nodes"])
    missing = undocumented_columns(manifest, catalog)
    assert not missing, "list and describe these columns in the model's .yml:\n" + "\n".join(
        missing
    )
    password = stack.secrets["MOONWATCH_LOADER_PASSWORD"]
    assert all(password not in text for text in files.values())
    # Current now: the next run skips with the reason.
    assert dbt_docs.reason_to_regenerate(docs_dir, warehouse_url=warehouse_url) is None
    with pytest.raises(dbt_docs.DocsUpToDate, match="current"):
        dbt_docs.refresh_docs(docs_dir, warehouse_url=warehouse_url)
    parsed_at = (tmp_path / "parsed" / "manifest.json").stat().st_mtime
    generated_at = (docs_dir / "manifest.json").stat().st_mtime
    os.utime(docs_dir / "manifest.json", (parsed_at - 60, parsed_at - 60))
    assert dbt_docs.reason_to_regenerate(docs_dir, warehouse_url=warehouse_url) == (
        "the dbt project changed"
    )
    os.utime(docs_dir / "manifest.json", (generated_at, generated_at))
    later = (docs_dir / "catalog.json").stat().st_mtime + dbt_docs.MAX_AGE_S + 60
    assert "h old" in dbt_docs.reason_to_regenerate(
        docs_dir, warehouse_url=warehouse_url, now=later
    )

    # Served the way the api-server serves it: Airflow's own app with its plugins mounted.
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    cosmos = [p for p in plugins_manager._get_plugins()[0] if p.name == "cosmos"]
    assert cosmos, "Cosmos' Airflow plugin is not loaded"
    hrefs = [view["href"] for view in cosmos[0].external_views]
    assert f"/cosmos/{dbt_docs.DOCS_SLUG}/dbt_docs_index.html" in hrefs
    app = FastAPI()
    init_plugins(app)
    client = TestClient(app)
    page = client.get(f"/cosmos/{dbt_docs.DOCS_SLUG}/dbt_docs_index.html")
    assert page.status_code == 200, page.text[:500]
    assert "dbt" in page.text and "<html" in page.text.lower()
    served = client.get(f"/cosmos/{dbt_docs.DOCS_SLUG}/catalog.json")
    assert served.status_code == 200
    assert "model.moonwatch.latest_quotes" in served.json()["nodes"]
    assert dbt_docs.docs_url(stack.airflow_url) == (
        f"{stack.airflow_url}/cosmos/moonwatch/dbt_docs_index.html"
    )
