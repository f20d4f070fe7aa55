"""Empties the local stack's data while keeping its resources (for endpoints other than moto)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.local.stack_spec import StackSpec


def empty_data(spec: StackSpec, clients: ClientFactory) -> None:
    """Delete every item, object (all versions) and queued message of the stack."""
    for table in spec.tables:
        keys = [k["AttributeName"] for k in table.key_schema]
        paginator = clients.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=table.name,
            ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
            ExpressionAttributeNames={f"#k{i}": k for i, k in enumerate(keys)},
        ):
            items = page.get("Items", [])
            # batch_write_item takes at most 25 requests per call.
            for start in range(0, len(items), 25):
                clients.dynamodb.batch_write_item(
                    RequestItems={
                        table.name: [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]
                    }
                )
    for bucket in spec.buckets:
        paginator = clients.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket.name):
            objects = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                clients.s3.delete_objects(Bucket=bucket.name, Delete={"Objects": objects, "Quiet": True})
    for queue in spec.queues:
        clients.sqs.purge_queue(QueueUrl=queue.url)
