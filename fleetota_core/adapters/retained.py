"""Resources a stack retains on deletion, removed by ``destroy`` when the operator asks for everything."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def delete_table(client: Any, table: str) -> bool:
    """Delete a DynamoDB table and wait until it is gone; False if it did not exist."""
    try:
        client.delete_table(TableName=table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    client.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    return True
