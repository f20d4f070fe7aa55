"""The local endpoint serialises DynamoDB writes, as DynamoDB applies each conditional write atomically."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fleetota_core.local.server import SerialisedDynamoDBWrites


class OverlapRecorder:
    """A WSGI app that notes how many requests it is handling at once."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.02)
        with self.lock:
            self.active -= 1
        start_response("200 OK", [])
        return iter([environ.get("HTTP_X_AMZ_TARGET", "").encode()])


def _run(app, targets):
    with ThreadPoolExecutor(len(targets)) as pool:
        return list(pool.map(lambda t: b"".join(app({"HTTP_X_AMZ_TARGET": t}, lambda *a: None)), targets))


def test_dynamodb_writes_never_overlap_and_their_responses_come_back_whole():
    inner = OverlapRecorder()
    ops = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"] * 2
    targets = [f"DynamoDB_20120810.{op}" for op in ops]
    assert _run(SerialisedDynamoDBWrites(inner), targets) == [t.encode() for t in targets]
    assert inner.peak == 1


def test_reads_and_other_services_stay_concurrent():
    inner = OverlapRecorder()
    _run(SerialisedDynamoDBWrites(inner), ["DynamoDB_20120810.Query", "DynamoDB_20120810.GetItem", "", ""])
    assert inner.peak > 1
