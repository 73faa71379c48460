"""Shared helpers for the DAG tests (importable, unlike conftest)."""

from __future__ import annotations

from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str):
    """One DAG, parsed from its file the way Airflow parses it (needs the metadata DB)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]
