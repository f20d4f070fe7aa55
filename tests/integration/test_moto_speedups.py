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


def _vehicle(stack, vin: str) -> dict | None:
    return stack.clients.dynamodb.get_item(
        TableName=stack.resources.vehicles_table, Key={"vin": {"S": vin}}
    ).get("Item")


def _deployment(stack, vin: str) -> dict | None:
    key = {"campaign_id": {"S": "c-rollback"}, "vin": {"S": vin}}
    return stack.clients.dynamodb.get_item(TableName=stack.resources.deployments_table, Key=key).get("Item")


def _seed(stack) -> None:
    db = stack.clients.dynamodb
    db.put_item(TableName=stack.resources.vehicles_table, Item={"vin": {"S": "V-KEPT"}, "soc": {"N": "50"}})
    db.put_item(TableName=stack.resources.vehicles_table, Item={"vin": {"S": "V-GONE"}, "soc": {"N": "10"}})
    db.put_item(TableName=stack.resources.vehicles_table, Item={"vin": {"S": "V-CHECK"}, "soc": {"N": "20"}})
    db.put_item(
        TableName=stack.resources.deployments_table,
        Item={"campaign_id": {"S": "c-rollback"}, "vin": {"S": "V-KEPT"}, "state": {"S": "PENDING"}},
    )


def _writes(stack) -> list[dict]:
    """A Put of a new vehicle, an Update and a Delete of existing ones, and an Update of a deployment
    (a table with a sort key)."""
    vehicles, deployments = stack.resources.vehicles_table, stack.resources.deployments_table
    return [
        {"Put": {"TableName": vehicles, "Item": {"vin": {"S": "V-NEW"}, "soc": {"N": "99"}}}},
        {
            "Update": {
                "TableName": vehicles,
                "Key": {"vin": {"S": "V-KEPT"}},
                "UpdateExpression": "SET soc = :s REMOVE gone",
                "ExpressionAttributeValues": {":s": {"N": "51"}},
            }
        },
        {"Delete": {"TableName": vehicles, "Key": {"vin": {"S": "V-GONE"}}}},
        {
            "Update": {
                "TableName": deployments,
                "Key": {"campaign_id": {"S": "c-rollback"}, "vin": {"S": "V-KEPT"}},
                "UpdateExpression": "SET #s = :s",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":s": {"S": "NOTIFIED"}},
            }
        },
    ]


def _unchanged(stack) -> None:
    assert _vehicle(stack, "V-NEW") is None
    assert _vehicle(stack, "V-KEPT") == {"vin": {"S": "V-KEPT"}, "soc": {"N": "50"}}
    assert _vehicle(stack, "V-GONE") == {"vin": {"S": "V-GONE"}, "soc": {"N": "10"}}
    assert _deployment(stack, "V-KEPT")["state"] == {"S": "PENDING"}


def test_a_transaction_whose_last_condition_fails_writes_none_of_its_items(stack) -> None:
    _seed(stack)
    failing = {
        "ConditionCheck": {
            "TableName": stack.resources.vehicles_table,
            "Key": {"vin": {"S": "V-CHECK"}},
            "ConditionExpression": "soc > :high",
            "ExpressionAttributeValues": {":high": {"N": "90"}},
        }
    }
    for _ in range(2):  # the second time against the state the first rollback left
        with pytest.raises(ClientError) as caught:
            stack.clients.dynamodb.transact_write_items(TransactItems=[*_writes(stack), failing])
        assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
        reasons = [r["Code"] for r in caught.value.response["CancellationReasons"]]
        assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]
        _unchanged(stack)


def test_a_transaction_with_an_entry_of_two_operations_writes_nothing(stack) -> None:
    _seed(stack)
    vehicles = stack.resources.vehicles_table
    two = {
        "Put": {"TableName": vehicles, "Item": {"vin": {"S": "V-TWO"}}},
        "Delete": {"TableName": vehicles, "Key": {"vin": {"S": "V-KEPT"}}},
    }
    with pytest.raises(ClientError) as caught:
        stack.clients.dynamodb.transact_write_items(TransactItems=[*_writes(stack), two])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    _unchanged(stack)
    assert _vehicle(stack, "V-TWO") is None


def test_a_transaction_that_passes_writes_all_its_items(stack) -> None:
    _seed(stack)
    stack.clients.dynamodb.transact_write_items(TransactItems=_writes(stack))
    assert _vehicle(stack, "V-NEW") == {"vin": {"S": "V-NEW"}, "soc": {"N": "99"}}
    assert _vehicle(stack, "V-KEPT") == {"vin": {"S": "V-KEPT"}, "soc": {"N": "51"}}
    assert _vehicle(stack, "V-GONE") is None
    assert _deployment(stack, "V-KEPT")["state"] == {"S": "NOTIFIED"}


def _every_attribute_type() -> dict:
    scalars = {
        "s": {"S": "café"},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xffsigned"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
        "null": {"NULL": True},
        "false": {"BOOL": False},
        "empty_map": {"M": {}},
        "empty_list": {"L": []},
    }
    return {
        "vin": {"S": "V-TYPES"},
        **scalars,
        "m": {"M": {**scalars, "l": {"L": [*scalars.values(), {"M": {"deep": {"L": [{"N": "7"}]}}}]}}},
    }


def test_every_attribute_type_comes_back_as_it_was_written(stack) -> None:
    dynamodb = stack.clients.dynamodb
    table = stack.resources.vehicles_table
    item = _every_attribute_type()
    dynamodb.put_item(TableName=table, Item=item)
    key = {"vin": {"S": "V-TYPES"}}
    assert dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == item
    got = dynamodb.batch_get_item(RequestItems={table: {"Keys": [key]}})
    assert got["Responses"][table] == [item]
    updated = dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET m.l[0] = :b ADD ns :more",
        ExpressionAttributeValues={":b": {"B": b"\x10"}, ":more": {"NS": ["3"]}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated["m"]["M"]["l"]["L"][0] == {"B": b"\x10"}
    assert sorted(updated["ns"]["NS"]) == ["1", "2.5", "3"]
    assert updated["bs"] == item["bs"]


def test_attribute_values_are_written_as_moto_writes_them() -> None:
    """The patched serializer's answer is moto's own, byte for byte, for every attribute type, and
    for values moto's code must write itself (an unknown key, a type beside None, a bare None)."""
    from moto.core.serialize import JSONSerializer, ResponseSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    from fleetota_core.local import moto_speedups

    moto_speedups.apply()

    class MotosOwn(JSONSerializer):
        _serialize_type_structure = ResponseSerializer._serialize_type_structure

    operation = get_service_model("dynamodb").operation_model("GetItem")
    odd = {"lower": {"s": "x"}, "beside_none": {"S": None, "N": "1"}, "list_of_none": {"L": [None]}}
    result = {"Item": {**_every_attribute_type(), **odd}}
    for item in (result, {"Item": {"n": {"N": 5}, "s": {"S": 12}}}):
        bodies = [
            serializer(operation_model=operation, value_picker=XFormedAttributePicker()).serialize(item)
            for serializer in (JSONSerializer, MotosOwn)
        ]
        assert bodies[0] == bodies[1]
