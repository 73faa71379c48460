"""dbt for Moonwatch, one job a module.

- :mod:`~moonwatch.dbt.environment`: where the project is, and a warehouse URL (or the Airflow
  connection) turned into the plain variables ``dbt_project/profiles.yml`` reads.
- :mod:`~moonwatch.dbt.runner`: dbt as a subprocess (:func:`~moonwatch.dbt.runner.run_dbt`).
- :mod:`~moonwatch.dbt.manifest`: the parsed manifest the DAGs render, cached and edited.
- :mod:`~moonwatch.dbt.checks`: the bodies of the freshness and audit tasks.
- :mod:`~moonwatch.dbt.build`: the per-minute quotes build, one ``dbt build`` as one task.
- :mod:`~moonwatch.dbt.cosmos`: what each transform DAG builds, and the Cosmos configs of
  the reference build (a task per model and test).
- :mod:`~moonwatch.dbt.docs`: dbt docs, generated where Cosmos' Airflow plugin serves them.
- ``python -m moonwatch.dbt``: the same by hand (see :mod:`~moonwatch.dbt.__main__`).
"""
