"""The sensor that wakes the quotes loader, run wholly in the triggerer.

The provider's ``AwaitMessageSensor`` costs two task runs on a worker for every wake-up: one to
start and defer, one to resume after its trigger fired, each a process that starts, parses the
DAG file and reports to the API server: at one wake-up a minute, a steady share of the stack's
CPU at rest, for a sensor whose only result is "there is work". ``AwaitQuotesSensor`` starts in
the triggerer (``start_from_trigger``) and its trigger ends the task there
(``TaskSuccessEvent``), so waiting for quotes costs no worker run at all; the loader still
runs on a worker as before. Where Airflow cannot start a task from the triggerer, ``execute``
defers to the same trigger, which then ends the task just the same.

The trigger only peeks (no offset commits, as the provider's sensor with ``commit_offset=False``):
the loader reads every message for real and commits after Postgres.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.providers.apache.kafka.sensors.kafka import AwaitMessageSensor
from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger
from airflow.triggers.base import StartTriggerArgs, TaskSuccessEvent, TriggerEvent

_TRIGGER_PATH = f"{__name__}.QuotesWaitingTrigger"


class QuotesWaitingTrigger(AwaitMessageTrigger):
    """``AwaitMessageTrigger`` that ends its task with success when a message arrives, its
    description (topic, partition, offset) as the task's XCom, instead of resuming the task
    on a worker."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return _TRIGGER_PATH, super().serialize()[1]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in super().run():
            yield TaskSuccessEvent(xcoms={"return_value": event.payload})
            return


class AwaitQuotesSensor(AwaitMessageSensor):
    """Waits for any message on ``topics``, peeking only, from start to end in the triggerer."""

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(trigger_cls=_TRIGGER_PATH, next_method="execute_complete")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(commit_offset=False, **kwargs)
        # Replaced, not mutated: start_trigger_args is a class attribute shared by every task.
        self.start_trigger_args = dataclasses.replace(
            self.start_trigger_args,
            trigger_kwargs=self._trigger_kwargs(),
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            "topics": list(self.topics),
            "apply_function": self.apply_function,
            "apply_function_args": list(self.apply_function_args or []),
            "apply_function_kwargs": dict(self.apply_function_kwargs or {}),
            "kafka_config_id": self.kafka_config_id,
            "poll_timeout": self.poll_timeout,
            "poll_interval": self.poll_interval,
            "commit_offset": False,
        }

    def execute(self, context: Any) -> None:
        start = self.start_trigger_args
        self.defer(
            trigger=QuotesWaitingTrigger(**start.trigger_kwargs),
            method_name=start.next_method,
            timeout=start.timeout,
        )
