"""Settings and resource names: one model decides where the backend is."""

from __future__ import annotations

import pytest

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import OUTPUT_KEYS, Resources, resolve_resources
from fleetota_core.errors import ConfigurationError
from fleetota_core.settings import Settings


def test_local_mode_is_the_default_and_points_at_port_4566(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLEETOTA_MODE", "FLEETOTA_LOCAL_PORT", "FLEETOTA_STACK"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.mode == "local"
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.stack_name == "fleetota-local"


def test_the_local_port_comes_from_fleetota_local_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOTA_LOCAL_PORT", "5123")
    assert Settings().endpoint_url == "http://127.0.0.1:5123"


def test_aws_mode_uses_aws_endpoints() -> None:
    assert Settings(mode="aws").endpoint_url is None


def test_local_clients_fail_fast_and_use_dummy_credentials() -> None:
    factory = client_factory(Settings(local_port=4999))
    s3 = factory.s3
    assert s3 is factory.client("s3"), "clients are cached"
    assert s3.meta.endpoint_url == "http://127.0.0.1:4999"
    assert s3.meta.config.retries["total_max_attempts"] == 1, "no retries: moto answers 500 for what it lacks"
    assert s3._request_signer._credentials.access_key == "testing"


def test_local_resource_names_derive_from_the_stack_name() -> None:
    resources = resolve_resources(Settings(stack="demo", local_port=4566))
    assert resources.telemetry_bucket == "demo-telemetry"
    assert resources.telemetry_dlq_url.endswith("/demo-telemetry-dlq")
    assert resources.image_key_alias == "alias/demo-image"
    assert resources.director_key_alias == "alias/demo-director"


def test_an_explicit_resource_name_beats_the_derived_one() -> None:
    resources = resolve_resources(Settings(vehicles_table="custom-vehicles"))
    assert resources.vehicles_table == "custom-vehicles"


def test_stack_outputs_map_onto_every_resource_field() -> None:
    outputs = {key: f"value-of-{key}" for key in OUTPUT_KEYS.values()}
    resources = Resources.from_outputs(outputs)
    assert resources.ledger_table == "value-of-LedgerTableName"


def test_missing_stack_outputs_are_named() -> None:
    with pytest.raises(ConfigurationError, match="LedgerTableName"):
        Resources.from_outputs({k: "x" for k in OUTPUT_KEYS.values() if k != "LedgerTableName"})


@pytest.mark.parametrize(("given", "limit"), [("", None), ("0", 0), ("250", 250)])
def test_the_approval_limit_reads_the_templates_parameter_as_passed(
    monkeypatch: pytest.MonkeyPatch, given: str, limit: int | None
) -> None:
    # The template hands its ApprovalMinVehicles parameter to the update manager as is; empty: no limit.
    monkeypatch.setenv("FLEETOTA_APPROVAL_MIN_VEHICLES", given)
    assert Settings().approval_min_vehicles == limit


def test_a_negative_approval_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOTA_APPROVAL_MIN_VEHICLES", "-1")
    with pytest.raises(ValueError, match="approval_min_vehicles"):
        Settings()
