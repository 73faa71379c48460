"""What a ``raw.*_rejected`` row keeps of the input it refused: the input itself, as text."""

from __future__ import annotations

import json
from typing import Any

MAX_PAYLOAD_CHARS = 20_000


def payload_text(value: Any) -> str:
    """Hostile input as text a Postgres ``text`` column holds: escaped, bounded."""
    try:
        # ASCII escapes keep NUL and lone surrogates as \u0000 text; repr covers the rest.
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (ValueError, RecursionError):
        text = repr(value).encode("ascii", "backslashreplace").decode()
    return text.replace("\x00", "\\x00")[:MAX_PAYLOAD_CHARS]
