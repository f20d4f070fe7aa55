"""What one vehicle-state UpdateItem and one ledger TransactWriteItems cost moto, with and without
``fleetota_core/local/moto_speedups.py``.

    PYTHONPATH=. .venv/bin/python bench/moto_update_item.py [--requests 400] [--table-items 20000]

Each variant runs in its own process against moto in-process (``mock_aws``: no HTTP, so the figure is
moto's own work) and sends the telemetry processor's write of a vehicle that reports by exception
(the conditional ``SET`` of 26 attributes and ``REMOVE`` of 6 that ``VehicleStateStore.update``
builds), for scale a conditional PutItem of the same item, and a GetItem that reads it back (the
answer moto writes attribute value by attribute value). It also sends the shape of the
processor's ledger transaction (a conditional Put of a new marker and an ADD to a counter item) to a
table that already holds ``--table-items`` items, as the ledger and deployments tables do in a long
local run. Prints ms per request and the ratios of the plain to the patched UpdateItem,
GetItem and TransactWriteItems, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ATTRIBUTES, REMOVED = 26, 6
CONDITION = (
    "attribute_not_exists(vin) OR attribute_not_exists(last_ts_ms) OR last_ts_ms < :ts "
    "OR (last_ts_ms = :ts AND last_seq < :seq) OR last_ts_ms > :not_after"
)


def measure(requests: int, patched: bool, table_items: int) -> dict[str, float]:
    """ms per PutItem, UpdateItem and TransactWriteItems in this process."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from moto import mock_aws

    if patched:
        from fleetota_core.local import moto_speedups

        moto_speedups.apply()
    with mock_aws():
        db = boto3.client("dynamodb")
        db.create_table(
            TableName="vehicles",
            KeySchema=[{"AttributeName": "vin", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "vin", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        names = {f"#a{i}": f"attr{i}" for i in range(ATTRIBUTES)} | {
            f"#r{i}": f"gone{i}" for i in range(REMOVED)
        }
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(ATTRIBUTES))
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(REMOVED))

        def stamp(n: int) -> dict[str, dict[str, str]]:
            return {":ts": {"N": str(n)}, ":seq": {"N": "1"}, ":not_after": {"N": "9999999999999"}}

        def put(n: int) -> None:
            item = {f"attr{i}": {"N": str(n + i)} for i in range(ATTRIBUTES)} | {"vin": {"S": f"V{n % 100}"}}
            db.put_item(
                TableName="vehicles",
                Item=item,
                ConditionExpression=CONDITION,
                ExpressionAttributeValues=stamp(n),
            )

        def update(n: int) -> None:
            values = {f":a{i}": {"N": str(n + i)} for i in range(ATTRIBUTES)} | stamp(n)
            db.update_item(
                TableName="vehicles",
                Key={"vin": {"S": f"V{n % 100}"}},
                UpdateExpression=expression,
                ConditionExpression=CONDITION,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

        def get(n: int) -> None:
            db.get_item(TableName="vehicles", Key={"vin": {"S": f"V{n % 100}"}}, ConsistentRead=True)

        db.create_table(
            TableName="ledger",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for first in range(0, table_items, 25):
            db.batch_write_item(
                RequestItems={
                    "ledger": [
                        {"PutRequest": {"Item": {"pk": {"S": f"object#{i}"}, "sk": {"S": "marker"}}}}
                        for i in range(first, min(first + 25, table_items))
                    ]
                }
            )

        def transact(n: int) -> None:
            db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": "ledger",
                            "Item": {"pk": {"S": f"new#{n}"}, "sk": {"S": "marker"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": "ledger",
                            "Key": {"pk": {"S": "counters"}, "sk": {"S": "totals"}},
                            "UpdateExpression": "ADD received :n",
                            "ExpressionAttributeValues": {":n": {"N": "1000"}},
                        }
                    },
                ]
            )

        result = {}
        sends = (
            ("put_item_ms", put),
            ("update_item_ms", update),
            ("get_item_ms", get),
            ("transact_write_items_ms", transact),
        )
        for name, send in sends:
            send(0)  # warm
            started = time.perf_counter()
            for n in range(1, requests + 1):
                send(n)
            result[name] = round(1000 * (time.perf_counter() - started) / requests, 2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--table-items", type=int, default=20_000, help="items already in the ledger table")
    parser.add_argument("--child", choices=("plain", "patched"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.requests, args.child == "patched", args.table_items)))
        return
    results = {}
    for variant in ("plain", "patched"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--requests",
                str(args.requests),
                "--table-items",
                str(args.table_items),
                "--child",
                variant,
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
        print(
            f"{variant:8s} PutItem {results[variant]['put_item_ms']:6.2f} ms   "
            f"UpdateItem {results[variant]['update_item_ms']:6.2f} ms   "
            f"GetItem {results[variant]['get_item_ms']:6.2f} ms   "
            f"TransactWriteItems {results[variant]['transact_write_items_ms']:7.2f} ms"
        )
    measured = (
        ("UpdateItem", "update_item_ms"),
        ("GetItem", "get_item_ms"),
        ("TransactWriteItems", "transact_write_items_ms"),
    )
    for name, key in measured:
        ratio = results["plain"][key] / results["patched"][key]
        print(f"{name}, plain moto / with the speedups: {ratio:.2f}x ({args.requests} requests each)")
    print(f"(TransactWriteItems to a table of {args.table_items:,} items)")


if __name__ == "__main__":
    main()
