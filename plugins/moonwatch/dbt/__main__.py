"""dbt by hand, with the warehouse connection from ``MOONWATCH_WAREHOUSE_URL``
(after ``eval "$(make -s env)"``)::

    python -m moonwatch.dbt build            # dbt build
    python -m moonwatch.dbt freshness        # dbt source freshness
    python -m moonwatch.dbt audit            # dbt test --select tag:audit (full history)
    python -m moonwatch.dbt parse            # dbt parse
    python -m moonwatch.dbt dbt run -s quotes_coins   # any dbt command
    python -m moonwatch.dbt docs [FOLDER]    # dbt docs (default: $MOONWATCH_HOME/dbt_docs)
    eval "$(python -m moonwatch.dbt env)"    # the MOONWATCH_DBT_* variables, for dbt itself
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from moonwatch.dbt.checks import marts_audit_args
from moonwatch.dbt.environment import dbt_env
from moonwatch.dbt.runner import run_dbt
from moonwatch.errors import ConfigurationError, MoonwatchError
from moonwatch.settings import get_settings

VERBS = {
    "build": ["build"],
    "freshness": ["source", "freshness"],
    "parse": ["parse"],
    "audit": marts_audit_args(),
}


def _docs(rest: list[str]) -> int:
    from moonwatch.dbt import docs

    logging.getLogger().setLevel(logging.INFO)
    settings = get_settings()
    folder = Path(rest[0]) if rest else docs.docs_dir_for_home(settings.home)
    try:
        docs.generate_docs(folder.resolve())
    except MoonwatchError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"dbt docs in {folder}; with `make up` running: {docs.docs_url(settings.airflow_url)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m moonwatch.dbt build|freshness|audit|parse|docs|env|dbt <args>``."""
    logging.basicConfig(level=logging.WARNING)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    verb, rest = args[0], args[1:]
    try:
        if verb == "docs":
            return _docs(rest)
        if verb == "env":
            variables = dbt_env(get_settings().require_warehouse_url())
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in variables.items()))
            return 0
        if verb == "dbt":
            dbt_args = rest
        elif verb in VERBS:
            dbt_args = VERBS[verb] + rest
        else:
            print(f"unknown command {verb!r}; use {', '.join(VERBS)}, docs, env or dbt <args>")
            return 2
        # dbt parse needs only the profile's shape, not a reachable warehouse.
        result = run_dbt(dbt_args, needs_warehouse=verb != "parse")
    except ConfigurationError as e:
        print(e, file=sys.stderr)
        return 2
    print(result.output, end="")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
