"""Configuration, parsed once at each entrypoint and passed down.

Core code never reads ``os.environ``; entrypoints build :class:`Settings`, which parses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_STACK_NAME = "fleetota-local"
LOCAL_ACCOUNT_ID = "123456789012"


class Settings(BaseSettings):
    """Where FleetOTA's backend lives and what its resources are called.

    Every field reads ``FLEETOTA_<FIELD>`` from the environment. Resource-name fields are optional
    overrides: in AWS mode they come from the stack outputs (or the Lambda environment), in local
    mode from the stack name.
    """

    model_config = SettingsConfigDict(env_prefix="FLEETOTA_", extra="ignore")

    mode: Literal["local", "aws"] = "local"
    region: str = "us-east-1"
    stack: str = ""
    profile: str | None = None
    local_host: str = "127.0.0.1"
    local_port: int = Field(default=4566, ge=1, le=65535)
    operator: str = "operator"
    # Local mode keeps the simulator's files, the log and the local stack's snapshot here.
    state_dir: Path = Path(".fleetota")
    # How often the local stack snapshots its state; a crash loses at most this many seconds.
    snapshot_interval_s: float = Field(default=10.0, gt=0, le=30)
    # The local scheduler fires schedules at least this often (seconds; 0 keeps the template's rates).
    # A time-compressed demo fleet lives a simulated minute per wall second, so the update manager's
    # `rate(1 minute)` would leave the fleet snapshot an hour behind and rollouts a minute per step.
    local_schedule_s: int = Field(default=10, ge=0, le=86_400)
    # FLEETOTA_ENDPOINT_URL aims AWS mode at another endpoint (moto, LocalStack); unset means AWS itself.
    endpoint_override: str | None = Field(
        default=None, validation_alias=AliasChoices("FLEETOTA_ENDPOINT_URL", "endpoint_override")
    )

    # Four-eyes: campaigns above this many vehicles wait for a second operator (unset: only critical ones).
    approval_min_vehicles: int | None = Field(default=None, ge=0, le=2**53 - 1)

    @field_validator("approval_min_vehicles", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # The template passes its parameter through as is: empty means no limit.
        return None if value == "" else value

    telemetry_bucket: str | None = None
    firmware_bucket: str | None = None
    telemetry_queue_url: str | None = None
    telemetry_dlq_url: str | None = None
    vehicles_table: str | None = None
    campaigns_table: str | None = None
    deployments_table: str | None = None
    audit_table: str | None = None
    ledger_table: str | None = None
    alerts_topic_arn: str | None = None
    job_topic_arn: str | None = None
    image_key_alias: str | None = None
    director_key_alias: str | None = None
    telemetry_function: str | None = None
    update_function: str | None = None
    dashboard_name: str | None = None
    registry_table: str | None = None

    @property
    def stack_name(self) -> str:
        if self.stack:
            return self.stack
        return LOCAL_STACK_NAME if self.is_local else "fleetota"

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    @property
    def endpoint_url(self) -> str | None:
        """The local AWS endpoint, the AWS-mode override, or None to let boto3 use AWS's own endpoints."""
        if not self.is_local:
            return self.endpoint_override or None
        return f"http://{self.local_host}:{self.local_port}"
