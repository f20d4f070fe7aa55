"""Vehicles joining continuous campaigns: one transaction per vehicle over two tables.

The deployment is put only if the campaign has none for the vehicle, and its counters are added to
the campaign item only while the campaign still takes vehicles; both or neither, so a retried join
never enrols a vehicle twice nor counts one that is not there.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, conditional_write, error_code, translate
from fleetota_core.adapters.campaign_items import deployment_to_item, enrolment_update, watermark_update
from fleetota_core.domain.campaign import CampaignState
from fleetota_core.domain.enrolment import Enrolment
from fleetota_core.errors import TransientAWSError

if TYPE_CHECKING:
    from fleetota_core.domain.deployment import Deployment

TAKING = (CampaignState.RUNNING.value, CampaignState.PAUSED.value)
ATTEMPTS = 4


class CampaignEnrolment:
    """Accepts an injected DynamoDB client."""

    def __init__(self, dynamodb: Any, campaigns_table: str, deployments_table: str) -> None:
        self.dynamodb = dynamodb
        self.campaigns_table = campaigns_table
        self.deployments_table = deployments_table

    def enrol(self, deployment: Deployment) -> Enrolment:
        items = [
            {
                "Put": {
                    "TableName": self.deployments_table,
                    "Item": deployment_to_item(deployment),
                    "ConditionExpression": "attribute_not_exists(vin)",
                }
            },
            {
                "Update": {
                    "TableName": self.campaigns_table,
                    "Key": {"campaign_id": {"S": deployment.campaign_id}},
                    **enrolment_update(deployment.wave, TAKING),
                }
            },
        ]
        doing = f"enrolling {deployment.vin} in campaign {deployment.campaign_id}"
        for attempt in range(ATTEMPTS):
            try:
                self.dynamodb.transact_write_items(TransactItems=items)
                return Enrolment.JOINED
            except ClientError as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
                if error_code(exc) != "TransactionCanceledException":
                    raise translate(exc, doing) from exc
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return Enrolment.ALREADY
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    return Enrolment.CLOSED
                if attempt == ATTEMPTS - 1:  # TransactionConflict: another writer holds an item
                    raise TransientAWSError(f"{doing}: the transaction kept conflicting ({reasons})") from exc
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
            except AWS_CLIENT_ERRORS as exc:
                raise translate(exc, doing) from exc
        raise TransientAWSError(doing)  # not reached: the last attempt returns or raises

    def move_watermark(self, campaign_id: str, token: str) -> None:
        # A failed condition: a concurrent tick already read further. Nothing to do.
        conditional_write(
            self.dynamodb.update_item,
            TableName=self.campaigns_table,
            Key={"campaign_id": {"S": campaign_id}},
            **watermark_update(token),
        )
