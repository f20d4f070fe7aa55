"""The deployments table: one item per (campaign, vehicle), and its ``by_status`` index.

The item layout is :mod:`campaign_items`'s; this module makes the reads and the conditional writes.
``campaign_status`` buckets an item for the operator actions that list a state (abort, rollback,
retry-failed). The tick does not query it: it finds its work through the schedule (rosters and due
hints, see ``deployment_schedule``) and the campaign's counters.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, conditional_write, reading, translate
from fleetota_core.adapters.campaign_items import (
    bucket,
    deployment_from_item,
    deployment_key,
    deployment_to_item,
    field_attrs,
    new_deployment_items,
)
from fleetota_core.adapters.dynamo_items import set_clause, to_attr
from fleetota_core.adapters.gc_pause import collector_paused
from fleetota_core.errors import FleetOTAError, TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from fleetota_core.domain.creation import NewDeployments
    from fleetota_core.domain.deployment import Deployment, DeploymentState, Transition

STATUS_INDEX = "by_status"
# 40,000 requests for a 1M-vehicle campaign: 64 at a time wait about 6 s at 10 ms each, less than the
# items take to encode. The clients' connection pool holds as many (``clients.POOL_CONNECTIONS``).
WRITE_THREADS = 64
QUEUED_PER_THREAD = 2
BATCH_WRITE_LIMIT = 25


def _requests(items: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The items as BatchWriteItem put requests, 25 a request."""
    puts = ({"PutRequest": {"Item": item}} for item in items)
    while chunk := list(islice(puts, BATCH_WRITE_LIMIT)):
        yield chunk


def _failed(exc: BaseException, table: str, written: int) -> BaseException:
    """The first failed request's error, of its class (whether to retry depends on it), saying how
    many deployments were written before it; an error of another kind is raised as it came."""
    if not isinstance(exc, FleetOTAError):
        return exc
    failed = type(exc)(f"writing deployments to table {table} stopped after {written:,} were written: {exc}")
    failed.__cause__ = exc
    return failed


class DeploymentStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def put_many(self, deployments: Iterable[Deployment]) -> int:
        """Write new deployments 25 a request, up to ``WRITE_THREADS`` requests at a time.

        A 1,000,000-vehicle campaign is 40,000 requests: one after another at ~10 ms each that is
        over 6 minutes; in parallel, and sent while the next are encoded, it fits the 60 s a campaign
        creation may take (issue #16). If a request fails, no further one is sent and the first
        failure is raised, of its own class, once the requests under way have ended.
        """
        return self._put_items(deployment_to_item(d) for d in deployments)

    def put_new(self, new: NewDeployments) -> int:
        """A new campaign's deployments, as :meth:`put_many` writes them, encoded from one item."""
        return self._put_items(new_deployment_items(new))

    def _put_items(self, items: Iterable[dict[str, Any]]) -> int:
        # The caller's thread encodes the items and hands each request to the pool as soon as it is
        # full; at most QUEUED_PER_THREAD requests a thread wait, so memory stays bounded.
        room = threading.BoundedSemaphore(QUEUED_PER_THREAD * WRITE_THREADS)
        failures: list[BaseException] = []
        written = [0]
        lock = threading.Lock()

        def write(chunk: list[dict[str, Any]]) -> None:
            try:
                if not failures:  # after a failure the queued requests are not sent
                    self._write_chunk(chunk)
                    with lock:
                        written[0] += len(chunk)
            except BaseException as exc:  # handed to the caller's thread, raised there
                failures.append(exc)
            finally:
                room.release()

        sent = 0
        # Paused: the requests under way outlive the young generations, so a million items would
        # trigger full collections that walk the caller's million candidates again and again.
        with (
            collector_paused(),
            ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="deployment-write") as pool,
        ):
            for chunk in _requests(items):
                room.acquire()
                if failures:
                    break
                pool.submit(write, chunk)
                sent += len(chunk)
        if failures:
            raise _failed(failures[0], self.table, written[0])
        return sent

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        request = {self.table: chunk}
        for attempt in range(8):
            try:
                response = self.dynamodb.batch_write_item(RequestItems=request)
            except AWS_CLIENT_ERRORS as exc:
                raise translate(exc, f"writing table {self.table}") from exc
            request = response.get("UnprocessedItems", {})
            if not request:
                return
            time.sleep(0.05 * 2**attempt)
        raise TransientAWSError(f"DynamoDB left {len(request[self.table])} deployments unwritten; retry")

    def get(self, campaign_id: str, vin: str) -> Deployment | None:
        with reading(f"deployment {campaign_id}/{vin}"):
            response = self.dynamodb.get_item(
                TableName=self.table, Key=deployment_key(campaign_id, vin), ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else deployment_from_item(item)

    def get_many(self, campaign_id: str, vins: list[str]) -> dict[str, Deployment]:
        """The campaign's deployments for ``vins`` (consistent read) by VIN; missing ones left out."""
        out: dict[str, Deployment] = {}
        for start in range(0, len(vins), 100):
            keys = [deployment_key(campaign_id, v) for v in dict.fromkeys(vins[start : start + 100])]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    deployment = deployment_from_item(item)
                    out[deployment.vin] = deployment
                request = response.get("UnprocessedKeys") or {}
        return out

    def in_state(self, campaign_id: str, state: DeploymentState, wave: int = 0) -> Iterator[Deployment]:
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="campaign_status = :b",
            ExpressionAttributeValues={":b": {"S": bucket(campaign_id, state, wave)}},
        )
        with reading(f"table {self.table}"):
            for page in pages:
                yield from (deployment_from_item(item) for item in page.get("Items", []))

    def for_campaign(self, campaign_id: str, limit: int | None = None) -> list[Deployment]:
        out: list[Deployment] = []
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="campaign_id = :c",
            ExpressionAttributeValues={":c": {"S": campaign_id}},
        )
        with reading(f"table {self.table}"):
            for page in pages:
                out.extend(deployment_from_item(item) for item in page.get("Items", []))
                if limit is not None and len(out) >= limit:
                    return out[:limit]
        return out

    def for_vin(self, vin: str) -> list[Deployment]:
        with reading(f"table {self.table}"):
            page = self.dynamodb.query(
                TableName=self.table,
                IndexName="by_vin",
                KeyConditionExpression="vin = :v",
                ExpressionAttributeValues={":v": {"S": vin}},
            )
        return [deployment_from_item(item) for item in page.get("Items", [])]

    def apply(self, change: Transition) -> bool:
        """The conditional write of ``change``: True if the deployment was as expected and now moved."""
        sets = {
            **field_attrs(change.sets),
            "state": str(change.new_state),
            "campaign_status": bucket(change.campaign_id, change.new_state, change.wave),
            "version": change.old_version + 1,
        }
        if change.next_action_at is not None:
            sets.update(field_attrs({"next_action_at": change.next_action_at}))
        update, names, values = set_clause(sets)
        if change.clears:
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(change.clears)))
            names.update({f"#r{i}": name for i, name in enumerate(change.clears)})
        return conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key=deployment_key(change.campaign_id, change.vin),
            UpdateExpression=update,
            ConditionExpression="#state = :old_state AND #version = :old_version",
            ExpressionAttributeNames={**names, "#state": "state", "#version": "version"},
            ExpressionAttributeValues={
                **values,
                ":old_state": {"S": str(change.old_state)},
                ":old_version": to_attr(change.old_version),
            },
        )

    def touch(
        self,
        campaign_id: str,
        vin: str,
        expected_state: DeploymentState,
        expected_version: int,
        sets: Mapping[str, object],
    ) -> bool:
        """Change fields without a state change (deferral reason, re-check time, renewed lease)."""
        update, names, values = set_clause({**field_attrs(sets), "version": expected_version + 1})
        return conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key=deployment_key(campaign_id, vin),
            UpdateExpression=update,
            ConditionExpression="#state = :expected_state AND #version = :expected_version",
            ExpressionAttributeNames={**names, "#state": "state", "#version": "version"},
            ExpressionAttributeValues={
                **values,
                ":expected_state": {"S": str(expected_state)},
                ":expected_version": to_attr(expected_version),
            },
        )
