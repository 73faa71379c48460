"""Each part of the page gets its mart's rows, or a :class:`Missing` that says why there are
none (the table is not built, holds no rows, or the role may not read it): one missing mart
never takes the rest of the page down."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from streamlit_app import queries
from streamlit_app.formatting import SOURCE_NAMES


class Missing:
    """Why a mart's data is not on the page: the table is missing or has no rows."""

    def __init__(self, table: str, reason: str) -> None:
        self.table, self.reason = table, reason


def load(
    table: str, fetch: Callable[[], pd.DataFrame], source: str | None = None
) -> pd.DataFrame | Missing:
    """``fetch()``'s rows, or why there are none; ``source`` names the data source the query
    kept to, so an empty answer says which source's rows are missing."""
    try:
        frame = fetch()
    except queries.MartMissingError:
        return Missing(table, f"`marts.{table}` does not exist yet")
    except (queries.MartAccessError, queries.MartOutdatedError) as e:
        return Missing(table, str(e))
    if frame.empty:
        kind = f" {SOURCE_NAMES.get(source, source)}" if source else ""
        return Missing(table, f"`marts.{table}` has no{kind} rows yet")
    return frame
