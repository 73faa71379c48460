"""Airflow's Apprise notifier, made to report failure (imported only when an alert is sent).

The provider's ``AppriseNotifier`` drops Apprise's result: a notification nobody received
looks delivered. Moonwatch marks an alert sent only once it was, so this subclass checks the
result and raises, and the alert stays queued for the next run. It reads the same connection
(``config`` extra: ``{"path": "<apprise URL>"}`` or a list of them) and never logs it.
"""

from __future__ import annotations

from typing import Any

import apprise
from airflow.providers.apprise.notifications.apprise import AppriseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

from moonwatch.alerts.delivery import AlertDeliveryError, NoAlertChannelError


class CheckedAppriseNotifier(AppriseNotifier):
    """``AppriseNotifier`` that raises when no destination took the notification."""

    def notify(self, context: Any) -> None:
        apprise_obj = apprise.Apprise()
        try:
            conn = self.hook.get_connection(self.apprise_conn_id)
        except AirflowNotFoundException:
            raise NoAlertChannelError(
                f"no alert channel: the Airflow connection {self.apprise_conn_id!r} does not "
                "exist; create it (type apprise) with your Apprise URLs (README.md, 'Alerts')"
            ) from None
        try:
            self.hook.set_config_from_conn(conn=conn, apprise_obj=apprise_obj)
        except (KeyError, TypeError, ValueError):
            # Not the error's text: it can quote the connection's extra, URLs and all.
            raise NoAlertChannelError(
                f"the Airflow connection {self.apprise_conn_id!r} has no usable `config` extra; "
                'set it to {"path": "<apprise URL>"} or a list of such objects'
            ) from None
        if len(apprise_obj) == 0:
            raise NoAlertChannelError(
                f"the Airflow connection {self.apprise_conn_id!r} holds no Apprise URL that "
                "Apprise understands; check each `path` against Apprise's URL formats"
            )
        result = apprise_obj.notify(
            body=self.body,
            title=self.title or "",
            notify_type=self.notify_type,
            body_format=self.body_format,
            tag=self.tag,
        )
        if not result:
            raise AlertDeliveryError(
                f"Apprise could not deliver to every destination of {self.apprise_conn_id!r} "
                "(its warning above names the service and the reason)"
            )
