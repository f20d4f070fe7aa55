"""The local Lambda runtime: SQS event sources, schedules, alarms and metrics that moto lacks.

Each piece can be driven synchronously (tests call :meth:`LocalRuntime.drain`,
:meth:`~LocalRuntime.fire_schedule`, :meth:`~LocalRuntime.evaluate_alarms`) or by background
threads (:meth:`~LocalRuntime.start`), as ``python -m fleetota_core local up`` does.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.clients import ClientFactory, client_factory
from fleetota_core.local.alarms import AlarmEvaluator
from fleetota_core.local.event_source import QueueReader, failed_message_ids
from fleetota_core.local.functions import Invocation, LocalFunction, captured_emf
from fleetota_core.local.lambda_events import scheduled_event, sqs_event
from fleetota_core.local.metric_forwarding import MetricForwarder, queue_depth_datums
from fleetota_core.local.schedule import local_interval, schedule_interval_seconds
from fleetota_core.local.stack_spec import read_stack_spec

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from fleetota_core.adapters.resources import Resources
    from fleetota_core.local.alarms import AlarmTransition
    from fleetota_core.local.functions import Handler
    from fleetota_core.local.stack_spec import QueueSourceSpec, StackSpec
    from fleetota_core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class DrainResult:
    """Counts of one or more SQS polls: messages received, deleted, left for retry; invocations."""

    received: int = 0
    succeeded: int = 0
    failed: int = 0
    invocations: int = 0
    errors: int = 0

    def add(self, other: DrainResult) -> None:
        for name in ("received", "succeeded", "failed", "invocations", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def handler_environment(
    settings: Settings, resources: Resources, template_env: dict[str, str]
) -> dict[str, str]:
    """The env a handler sees locally: the template's variables, pointed at the local endpoint."""
    env = dict(template_env)
    env.update({f"FLEETOTA_{name.upper()}": value for name, value in resources.as_dict().items()})
    env.update(
        {
            "FLEETOTA_MODE": "local",
            "FLEETOTA_REGION": settings.region,
            "FLEETOTA_STACK": settings.stack_name,
            "FLEETOTA_LOCAL_HOST": settings.local_host,
            "FLEETOTA_LOCAL_PORT": str(settings.local_port),
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            # EMF must reach stdout for the runtime to forward it.
            "POWERTOOLS_METRICS_DISABLED": "false",
            "POWERTOOLS_DEV": "false",
        }
    )
    return env


class LocalRuntime:
    """Runs the template's Lambda functions against the local endpoint.

    Parameters
    ----------
    settings:
        Local-mode settings (endpoint, stack name, region).
    clients, spec:
        Injected for tests; by default from ``settings`` and ``infra/template.yaml``.
    handlers:
        Replacement handlers keyed by function (``"telemetry_processor"``, the logical ID or the
        physical name), e.g. a handler that always fails for the DLQ test.
    visibility_timeout:
        If set, passed to every ``receive_message`` so failed messages come back sooner than the
        queue's own timeout (tests only; the queue attribute itself stays as in the template).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clients: ClientFactory | None = None,
        spec: StackSpec | None = None,
        handlers: Mapping[str, Handler] | None = None,
        visibility_timeout: int | None = None,
        alarm_interval_seconds: float = 10.0,
        poll_wait_seconds: int = 2,
    ) -> None:
        self.settings = settings
        self.spec = spec or read_stack_spec(settings)
        self.clients = clients or client_factory(settings)
        self.resources: Resources = self.spec.resources
        self.visibility_timeout = visibility_timeout
        self.alarm_interval_seconds = alarm_interval_seconds
        self.poll_wait_seconds = poll_wait_seconds
        overrides = {self.spec.function(key).name: handler for key, handler in (handlers or {}).items()}
        self.functions = {
            f.name: LocalFunction(
                f,
                # Lambda tells a function its memory, and the update manager sizes its merge by it.
                {
                    **handler_environment(settings, self.resources, f.environment),
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(f.memory_mb),
                },
                overrides.get(f.name),
            )
            for f in self.spec.functions
        }
        # CloudWatch's own work (EMF extraction, AWS/* metrics, alarms) on clients of its own, so
        # whoever counts ``clients`` counts the requests our functions and event sources make on AWS.
        self.service_clients = ClientFactory(settings)
        self.metrics = MetricForwarder(self.service_clients)
        self.alarms = AlarmEvaluator(
            self.service_clients, self.spec.alarms, settings.region, self.resources.ledger_table
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.reader = QueueReader(self.clients.sqs, self._stop, visibility_timeout)
        # One batch gathered ahead at most, as one more poller would.
        self._gathered: queue.Queue[tuple[QueueSourceSpec, list[dict[str, Any]]]] = queue.Queue(maxsize=1)

    def function(self, key: str) -> LocalFunction:
        return self.functions[self.spec.function(key).name]

    # ------------------------------------------------------------------ SQS event sources
    def _invoke(self, function: LocalFunction, event: dict[str, Any]) -> Invocation:
        invocation = function.invoke(event)
        self.metrics.record(invocation)
        if invocation.failed:
            logger.warning("%s failed: %r", function.name, invocation.error)
        return invocation

    def poll(self, wait_seconds: int = 0, gather: bool = False) -> DrainResult:
        """Receive one batch per SQS event source and invoke its function once with it.

        ``gather``: honour the event source's batching window (the background poller does;
        :meth:`drain` takes only what is already queued, so tests need not wait it out)."""
        result = DrainResult()
        for source in self.spec.queue_sources:
            messages = self.reader.batch(source, self.spec.queue(source.queue_arn).url, wait_seconds, gather)
            if messages:
                result.add(self._deliver(source, messages))
        return result

    def _deliver(self, source: QueueSourceSpec, messages: list[dict[str, Any]]) -> DrainResult:
        """Invoke the source's function with ``messages``; delete the ones that succeeded."""
        queue = self.spec.queue(source.queue_arn)
        invocation = self._invoke(
            self.functions[self.spec.function(source.function).name],
            sqs_event(messages, queue.arn, self.settings.region),
        )
        failed_ids = failed_message_ids(invocation, messages, source.report_batch_item_failures)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        self.reader.delete(queue.url, done)
        return DrainResult(
            received=len(messages),
            succeeded=len(done),
            failed=len(messages) - len(done),
            invocations=1,
            errors=int(invocation.failed),
        )

    def drain(self, timeout: float = 30.0) -> DrainResult:
        """Process every message now visible on the event-source queues, synchronously.

        Stops when a poll finds no message or after ``timeout`` seconds; forwards the metrics.
        """
        total = DrainResult()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.poll(wait_seconds=0)
            total.add(result)
            if result.received == 0:
                break
        self.metrics.flush()
        return total

    # ------------------------------------------------------------------ schedules and alarms
    def fire_schedule(self, name: str | None = None) -> list[Invocation]:
        """Fire each enabled schedule (or only ``name``) once, as EventBridge would."""
        invocations = []
        for schedule in self.spec.schedules:
            if (name is None and not schedule.enabled) or name not in (None, schedule.name):
                continue
            for target_arn, constant_input in schedule.targets:
                event = (
                    json.loads(constant_input)
                    if constant_input
                    else scheduled_event(schedule.arn, self.settings.region)
                )
                invocations.append(self._invoke(self.functions[self.spec.function(target_arn).name], event))
        self.metrics.flush()
        return invocations

    @contextmanager
    def emf_forwarded(self) -> Iterator[None]:
        """Forward the EMF metrics this thread prints inside, as if a handler of ours printed them."""
        with captured_emf() as datums:
            yield
        self.metrics.add(datums)
        self.metrics.flush()

    def evaluate_alarms(self) -> list[AlarmTransition]:
        """Publish queue depths, forward pending metrics, then evaluate every alarm once."""
        self.metrics.add(queue_depth_datums(self.service_clients, self.spec.queues))
        self.metrics.flush()
        return self.alarms.evaluate()

    # ------------------------------------------------------------------ background threads
    def start(self) -> None:
        """Poll the queues, fire schedules and evaluate alarms in daemon threads until :meth:`stop`."""
        if self._threads:
            return
        # Parsed here so an unsupported expression fails `local up` instead of a background thread.
        intervals = {
            s.name: local_interval(schedule_interval_seconds(s.expression), self.settings.local_schedule_s)
            for s in self.spec.schedules
            if s.enabled
        }
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._poll_loop, name="fleetota-sqs-poller", daemon=True),
            threading.Thread(target=self._invoke_loop, name="fleetota-sqs-invoker", daemon=True),
            threading.Thread(
                target=self._clock_loop, args=(intervals,), name="fleetota-scheduler", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def is_running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
        self.metrics.flush()

    def _poll_loop(self) -> None:
        """Gather batches and hand them to the invoker thread, so the next batch's window runs while
        the function works on this one (as Lambda's pollers do), not after it."""
        while not self._stop.is_set():
            try:
                for source in self.spec.queue_sources:
                    url = self.spec.queue(source.queue_arn).url
                    messages = self.reader.batch(source, url, self.poll_wait_seconds, gather=True)
                    while messages and not self._stop.is_set():
                        try:
                            self._gathered.put((source, messages), timeout=1.0)
                            break
                        except queue.Full:
                            continue
            except Exception:  # the endpoint may be resetting; keep the runtime alive and retry
                logger.exception("polling the event-source queues failed; retrying in 1 s")
                self._stop.wait(1.0)

    def _invoke_loop(self) -> None:
        while not self._stop.is_set():
            try:
                source, messages = self._gathered.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self._deliver(source, messages)
                self.metrics.flush()
            except Exception:  # undeleted messages come back after their visibility timeout
                logger.exception("delivering an event-source batch failed")

    def _clock_loop(self, intervals: dict[str, int]) -> None:
        now = time.monotonic()
        next_fire = {name: now + seconds for name, seconds in intervals.items()}
        next_alarms = now + self.alarm_interval_seconds
        while not self._stop.wait(1.0):
            now = time.monotonic()
            try:
                for name, due in next_fire.items():
                    if now >= due:
                        next_fire[name] = now + intervals[name]
                        self.fire_schedule(name)
                if now >= next_alarms:
                    next_alarms = now + self.alarm_interval_seconds
                    for transition in self.evaluate_alarms():
                        logger.info(
                            "alarm %s: %s -> %s",
                            transition.alarm_name,
                            transition.old_state,
                            transition.new_state,
                        )
            except Exception:  # one bad tick must not stop schedules for the rest of the session
                logger.exception("local scheduler tick failed")
