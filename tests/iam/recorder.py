"""Records every AWS call made in this process and who made it.

The local stack runs everything in one process over one cached client factory, so calls are
attributed by what is running, not by client: ``acting_as`` marks a stretch of code as one
principal (a vehicle, an operator), and :meth:`CallRecorder.install` patches the local Lambda
runtime so that each handler invocation, and the SQS polling its event source mapping does, is
attributed to that function's role. A call made while recording with no principal set is kept
as ``UNATTRIBUTED`` and fails the check: nothing slips through unchecked.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.signers import RequestSigner

from fleetota_core.local.functions import LocalFunction
from fleetota_core.local.metric_forwarding import MetricForwarder
from fleetota_core.local.runtime import LocalRuntime
from tests.iam.requests import MISSING_KEY, Call

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

    from tests.iam.principals import TemplateFacts

UNATTRIBUTED = "<unattributed>"
# What AWS itself does in production and the local runtime does for it here (EMF to metrics,
# alarm evaluation and its SNS actions, queue-depth metrics): no role of ours makes these calls.
AWS_SERVICE = "<aws service>"
HARNESS = "<test harness>"  # the test's own setup and assertions


class CallRecorder:
    def __init__(self, facts: TemplateFacts) -> None:
        self.facts = facts
        self.calls: list[Call] = []
        self.recording = False
        self._who: tuple[str, tuple[tuple[str, str], ...]] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ attribution
    @contextmanager
    def acting_as(self, principal: str, **tags: str) -> Iterator[None]:
        with self._lock:
            saved, self._who = self._who, (principal, tuple(sorted(tags.items())))
        try:
            yield
        finally:
            with self._lock:
                self._who = saved

    @contextmanager
    def started(self) -> Iterator[CallRecorder]:
        self.recording = True
        try:
            yield self
        finally:
            self.recording = False

    def record(self, service: str, operation: str, params: dict[str, Any], how: str = "call") -> None:
        if not self.recording:
            return
        principal, tags = self._who or (UNATTRIBUTED, ())
        with self._lock:
            self.calls.append(Call(principal, service, operation, dict(params), tags, how))

    def checked_calls(self) -> list[Call]:
        """The calls made by the template's principals (and the unattributed ones)."""
        return [c for c in self.calls if c.principal not in (AWS_SERVICE, HARNESS)]

    # ------------------------------------------------------------------ hooks
    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch botocore (every client, every call and presigned URL) and the local runtime."""
        recorder, facts = self, self.facts
        make_api_call = BaseClient._make_api_call
        presign = RequestSigner.generate_presigned_url
        invoke, poll = LocalFunction.invoke, LocalRuntime.poll
        flush, evaluate_alarms = MetricForwarder.flush, LocalRuntime.evaluate_alarms

        def api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            recorder.record(service, operation_name, api_params)
            try:
                return make_api_call(client, operation_name, api_params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if service == "s3" and code in ("NoSuchKey", "404", "NotFound"):
                    # AWS answers a missing key with 404 only to those who may list the bucket.
                    recorder.record(service, operation_name, api_params, MISSING_KEY)
                raise

        def presigned(
            signer: Any, request_dict: dict[str, Any], operation_name: str, *a: Any, **k: Any
        ) -> Any:
            # S3 authorises a presigned request as the signer, when it is used.
            params = request_dict.get("context", {}).get("input_params", {})
            recorder.record(signer._service_id.hyphenize(), operation_name, params, "presigned URL")
            return presign(signer, request_dict, operation_name, *a, **k)

        def invoke_as_role(function: LocalFunction, event: dict[str, Any]) -> Any:
            with recorder.acting_as(facts.function_roles[function.name]):
                invocation = invoke(function, event)
                # Lambda writes the function's logs (and EMF metrics) with its execution role.
                log = {
                    "logGroupName": facts.function_log_groups[function.name],
                    "logStreamName": f"local/{invocation.request_id}",
                }
                for operation in ("CreateLogStream", "PutLogEvents"):
                    recorder.record("logs", operation, log, "Lambda log delivery")
            return invocation

        def poll_as_event_source(runtime: LocalRuntime, wait_seconds: int = 0, gather: bool = False) -> Any:
            # The event source mapping receives and deletes with the function's execution role.
            roles = {
                facts.function_roles[runtime.spec.function(s.function).name]
                for s in runtime.spec.queue_sources
            }
            if len(roles) != 1:
                raise NotImplementedError(f"one role per runtime's event sources, got {roles}")
            with recorder.acting_as(roles.pop()):
                return poll(runtime, wait_seconds, gather)

        def as_aws(method: Any) -> Any:
            def run(*args: Any, **kwargs: Any) -> Any:
                with recorder.acting_as(AWS_SERVICE):
                    return method(*args, **kwargs)

            return run

        monkeypatch.setattr(BaseClient, "_make_api_call", api_call)
        monkeypatch.setattr(RequestSigner, "generate_presigned_url", presigned)
        monkeypatch.setattr(LocalFunction, "invoke", invoke_as_role)
        monkeypatch.setattr(LocalRuntime, "poll", poll_as_event_source)
        monkeypatch.setattr(MetricForwarder, "flush", as_aws(flush))
        monkeypatch.setattr(LocalRuntime, "evaluate_alarms", as_aws(evaluate_alarms))
