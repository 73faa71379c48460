"""Alert delivery: each event's notification sent once, through Airflow's Apprise notifier and
the connection ``moonwatch_alerts``, and marked sent only after Apprise reports success."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from moonwatch.alert_channel import ALERT_CONN_ID
from moonwatch.errors import ConfigurationError, TransientError

logger = logging.getLogger(__name__)

# A notification still unsent after this long (no channel configured, a long outage) is left
# unsent: the dashboard still lists its event, but a channel set up next week does not get a
# flood of last week's news.
SEND_WINDOW = timedelta(hours=6)


class NoAlertChannelError(ConfigurationError):
    """No Airflow connection ``moonwatch_alerts`` (or one without Apprise URLs)."""


class AlertDeliveryError(TransientError):
    """Apprise could not deliver a notification; the next run retries it."""


@dataclass(frozen=True)
class Notification:
    event_id: int
    phase: Literal["open", "resolved"]
    title: str
    body: str

    @property
    def notify_type(self) -> str:
        return "success" if self.phase == "resolved" else "failure"


def split_message(message: str) -> tuple[str, str]:
    title, _, body = message.partition("\n")
    return title, body.lstrip("\n")


def pending_notifications(
    conn: Any, *, event_ids: Sequence[int] | None = None, now: datetime | None = None
) -> list[Notification]:
    """Unsent notifications, oldest first; an event's "open" before its "resolved"."""
    rows = conn.execute(
        "select event_id, 'open' as phase, open_message, opened_at as at from raw.alert_events"
        " where open_sent_at is null and opened_at >= %(since)s"
        "   and (%(ids)s::bigint[] is null or event_id = any(%(ids)s))"
        " union all"
        " select event_id, 'resolved', resolve_message, resolved_at from raw.alert_events"
        " where resolved_at is not null and resolve_sent_at is null and resolved_at >= %(since)s"
        "   and (%(ids)s::bigint[] is null or event_id = any(%(ids)s))"
        " order by at, event_id, phase desc",
        {
            "since": (now or datetime.now(UTC)) - SEND_WINDOW,
            "ids": list(event_ids) if event_ids is not None else None,
        },
    ).fetchall()
    return [Notification(row[0], row[1], *split_message(row[2])) for row in rows]


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    no_channel: bool = False
    errors: list[str] = field(default_factory=list)


def deliver_pending(
    conn: Any,
    send: Callable[[Notification], None],
    *,
    event_ids: Sequence[int] | None = None,
) -> Delivery:
    """Send each unsent notification; mark it sent only after ``send`` returned.

    Each is sent while its row is locked (``for update skip locked``), so two runs at once
    never send the same one twice. ``send`` raising :class:`AlertDeliveryError` leaves it
    unsent (retried next run) and goes on with the others; :class:`NoAlertChannelError` stops.
    """
    report = Delivery()
    for note in pending_notifications(conn, event_ids=event_ids):
        # Two literal statements per phase (the column is not a value to interpolate).
        if note.phase == "open":
            lock = "select 1 from raw.alert_events where event_id = %s and open_sent_at is null"
            mark = (
                "update raw.alert_events set open_sent_at = clock_timestamp() where event_id = %s"
            )
        else:
            lock = "select 1 from raw.alert_events where event_id = %s and resolve_sent_at is null"
            mark = (
                "update raw.alert_events set resolve_sent_at = clock_timestamp()"
                " where event_id = %s"
            )
        with conn.transaction():
            locked = conn.execute(lock + " for update skip locked", (note.event_id,)).fetchone()
            if not locked:
                continue
            try:
                send(note)
            except NoAlertChannelError as e:
                report.no_channel = True
                conn.execute(
                    "update raw.alert_events set last_error = %s where event_id = %s",
                    (str(e)[:500], note.event_id),
                )
                break
            except AlertDeliveryError as e:
                report.failed += 1
                report.errors.append(str(e))
                conn.execute(
                    "update raw.alert_events set last_error = %s where event_id = %s",
                    (str(e)[:500], note.event_id),
                )
                continue
            conn.execute(mark, (note.event_id,))
            conn.execute(
                "update raw.alert_events set last_error = null where event_id = %s",
                (note.event_id,),
            )
            report.sent += 1
    return report


def send_via_apprise(note: Notification, conn_id: str = ALERT_CONN_ID) -> None:
    """Send one notification through Airflow's Apprise notifier and the connection."""
    from moonwatch.alerts.apprise_notifier import CheckedAppriseNotifier

    notifier = CheckedAppriseNotifier(
        title=note.title, body=note.body, notify_type=note.notify_type, apprise_conn_id=conn_id
    )
    notifier.notify({})
