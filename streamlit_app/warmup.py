"""Warm a freshly started dashboard server: run the page once, as a visitor's browser would.

A Streamlit server imports the page's modules (pandas, Plotly, SQLAlchemy), opens its database
pool and fills its query caches only when the first session runs the script. Without this the
first visitor after ``make up`` waits for all of that. The launcher calls :func:`warm` once the
dashboard answers (the registry's after-up hook); the benchmark calls it the same way.

It speaks Streamlit's own browser protocol on ``/_stcore/stream``: one ``rerun_script``
message, then it reads the server's messages until the script run has finished. Nothing here
imports the page itself, so the launcher stays light.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

# The run that imports everything takes a few seconds on a quiet machine; a busy one (Airflow
# starting beside it) can take much longer, and a page that never finishes must not hang `up`.
DEFAULT_TIMEOUT = 60.0


class WarmupError(RuntimeError):
    """The page's warm-up run did not finish; the message says why."""


def stream_url(dashboard_url: str) -> str:
    """``http://host:port[/base]`` → the server's websocket, ``ws://host:port[/base]/_stcore/stream``."""
    parts = urlsplit(dashboard_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a dashboard URL: {dashboard_url!r} (want http://host:port)")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"


def warm(dashboard_url: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run the page once on the server at ``dashboard_url`` and wait until that run finishes.
    Returns how it finished (a ``ForwardMsg.ScriptFinishedStatus`` name); raises
    :class:`WarmupError` when the server cannot be reached or the run does not finish within
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    rerun = BackMsg()
    rerun.rerun_script.query_string = ""
    rerun.rerun_script.page_script_hash = ""
    try:
        with connect(
            stream_url(dashboard_url),
            subprotocols=["streamlit"],  # type: ignore[list-item]
            open_timeout=timeout,
            max_size=None,  # a page's messages carry whole figures
        ) as ws:
            ws.send(rerun.SerializeToString())
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                data = ws.recv(timeout=left)
                if not isinstance(data, bytes):
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(data)
                if msg.WhichOneof("type") == "script_finished":
                    return ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
    except TimeoutError as e:
        raise WarmupError(
            f"the dashboard at {dashboard_url} did not finish a page run within {timeout:.0f} s; "
            "its log is in .moonwatch/logs/ (the first visitor will wait instead)"
        ) from e
    except (OSError, WebSocketException) as e:
        raise WarmupError(
            f"cannot run the dashboard page at {dashboard_url} to warm it ({type(e).__name__}: {e})"
        ) from e
