"""The local stack's moto answers UpdateItem as DynamoDB does after ``local/moto_speedups.py``.

The speedups keep moto's checks at the root of an update expression only and reuse parsed
expressions; these requests are the ones those checks exist for, sent twice so the second meets a
parsed tree from the cache.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def _update(stack, expression: str, values: dict, names: dict | None = None) -> None:
    stack.clients.dynamodb.update_item(
        TableName=stack.resources.vehicles_table,
        Key={"vin": {"S": "1FTEW1EP5MKD12345"}},
        UpdateExpression=expression,
        **({"ExpressionAttributeValues": values} if values else {}),
        **({"ExpressionAttributeNames": names} if names else {}),
    )


@pytest.mark.parametrize(
    ("expression", "values", "message"),
    [
        (
            "SET a = :x SET b = :y",
            {":x": {"N": "1"}, ":y": {"N": "2"}},
            'The "SET" section can only be used once',
        ),
        ("REMOVE a REMOVE b", {}, 'The "REMOVE" section can only be used once'),
        ("SET a = :x, b = :y, a = :y", {":x": {"N": "1"}, ":y": {"N": "2"}}, "Two document paths overlap"),
        ("SET m.k = :x, b = :y, m = :y", {":x": {"N": "1"}, ":y": {"N": "2"}}, "Two document paths overlap"),
        ("SET b = :y REMOVE c, b", {":y": {"N": "2"}}, "Two document paths overlap"),
    ],
)
def test_an_update_dynamodb_refuses_is_refused_every_time_it_is_sent(
    stack, expression, values, message
) -> None:
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            _update(stack, expression, values)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert message in caught.value.response["Error"]["Message"]


def test_a_long_update_sent_again_with_other_values_writes_the_new_values(stack) -> None:
    count = 30
    expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(count)) + " REMOVE #gone"
    names = {f"#a{i}": f"attr{i}" for i in range(count)} | {"#gone": "gone"}
    for round_ in (1, 2):
        _update(stack, expression, {f":a{i}": {"N": str(round_ * 100 + i)} for i in range(count)}, names)
    item = stack.clients.dynamodb.get_item(
        TableName=stack.resources.vehicles_table, Key={"vin": {"S": "1FTEW1EP5MKD12345"}}
    )["Item"]
    assert {name: item[name]["N"] for name in ("attr0", "attr29")} == {"attr0": "200", "attr29": "229"}
    assert "gone" not in item
