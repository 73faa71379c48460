"""Small adapters between Moonwatch's errors and Airflow's task semantics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from moonwatch.errors import PermanentError
from moonwatch.sources.credits import NotYourTurnError


@contextlib.contextmanager
def fail_without_retry_on_permanent_errors() -> Iterator[None]:
    """A ``PermanentError`` (bad key, spent budget, bad setting) fails the task at once:
    retrying cannot help until a person acts, and retries would only spend credits."""
    try:
        yield
    except NotYourTurnError as e:
        # The credit pacer says "not this minute": a skipped run, with the reason, not a failure.
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(str(e)) from e
    except PermanentError as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(e)) from e
