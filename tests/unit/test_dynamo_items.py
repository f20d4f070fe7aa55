"""The DynamoDB codec's fast paths give exactly what boto3's serializer and deserializer give."""

from __future__ import annotations

from decimal import Decimal, Inexact, Rounded

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from fleetota_core.adapters.dynamo_items import from_attr, from_item, to_attr, to_item
from fleetota_core.domain.deployment import DeploymentState

VALUES = ["", "VIN", True, False, 0, -7, 2**53 - 1, 10**37, 1.5, -0.25, None, [1, "a"], {"k": 2}]


@pytest.mark.parametrize("value", VALUES)
def test_a_value_is_written_as_boto3_writes_it(value):
    expected = TypeSerializer().serialize(Decimal(str(value)) if isinstance(value, float) else value)
    assert to_attr(value) == expected


@pytest.mark.parametrize("value", [v for v in VALUES if v is not None])
def test_a_value_reads_back_as_written_numbers_as_int_when_integral(value):
    assert from_attr(to_attr(value)) == value
    assert type(from_attr(to_attr(value))) is type(value)


def test_a_str_enum_a_longer_integer_and_stored_spellings_of_numbers_keep_boto3s_rules():
    assert to_attr(DeploymentState.PENDING) == {"S": "PENDING"}
    with pytest.raises((Inexact, Rounded)):  # boto3 refuses what DynamoDB would round
        to_attr(10**40 + 1)
    assert from_item({"a": {"N": "1.0"}, "b": {"N": "-3"}, "c": {"N": "1e2"}, "d": {"N": "10" * 20}}) == {
        "a": 1,
        "b": -3,
        "c": 100,
        "d": int("10" * 20),
    }
    assert from_attr({"N": "2.5"}) == 2.5 == float(TypeDeserializer().deserialize({"N": "2.5"}))
    assert to_item({"a": None, "b": 1}) == {"b": {"N": "1"}}
