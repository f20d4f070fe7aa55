"""The command line's argument handling: bad input is one ``error:`` line and exit code 2.

No backend is needed: every case here is decided before a command reaches the stack (the
endpoint points at a closed port, so a test that got that far would fail with exit code 1).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from fleetota_core.cli import build_parser, main
from fleetota_core.cli.campaign import _spec_from_args

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.domain.campaign import CampaignSpec

NAMED = ("--name", "n", "--release", "2.0.0")


@pytest.fixture(autouse=True)
def no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETOTA_MODE", "local")
    monkeypatch.setenv("FLEETOTA_LOCAL_HOST", "127.0.0.1")
    monkeypatch.setenv("FLEETOTA_LOCAL_PORT", "9")


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Runs the CLI, asserts it refused the input the one way, and returns the line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def spec_from(*argv: str) -> CampaignSpec:
    return _spec_from_args(build_parser().parse_args(["campaign", "preview", *argv]))


def write(path: Path, data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


# --- spec files -------------------------------------------------------------------------------


def test_a_spec_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    spec = write(tmp_path / "latin1.yaml", "name: caf\xe9\nrelease_version: 2.0.0\n".encode("latin-1"))
    assert "is not UTF-8 text (byte 0xe9 at offset 9)" in refused(
        capsys, "campaign", "preview", "--spec", spec
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_spec_nested_100k_deep_is_refused(tmp_path, capsys, suffix):
    spec = write(tmp_path / f"deep{suffix}", "[" * 100_000 + "]" * 100_000)
    assert "is nested too deeply" in refused(capsys, "campaign", "create", "--spec", spec)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_an_integer_too_long_to_parse_is_refused(tmp_path, capsys, suffix):
    spec = write(
        tmp_path / f"long{suffix}",
        '{"name": "n", "release_version": "2.0.0", "job_ttl_s": ' + "9" * 5000 + "}",
    )
    assert "is not valid JSON/YAML" in refused(capsys, "campaign", "preview", "--spec", spec)


def test_a_yaml_syntax_error_is_one_line(tmp_path, capsys):
    spec = write(tmp_path / "broken.yaml", "name: [unclosed\nrelease_version: 2.0.0\n")
    assert "is not valid JSON/YAML" in refused(capsys, "campaign", "preview", "--spec", spec)


def test_a_missing_spec_file_is_refused(tmp_path, capsys):
    line = refused(capsys, "campaign", "preview", "--spec", str(tmp_path / "nope.yaml"))
    assert line == f"error: cannot read campaign spec {tmp_path / 'nope.yaml'}: No such file or directory"


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("", "NoneType")])
def test_a_spec_that_is_not_a_mapping_is_refused(tmp_path, capsys, text, kind):
    spec = write(tmp_path / "spec.yaml", text)
    assert refused(capsys, "campaign", "preview", "--spec", spec).endswith(
        f"must be a mapping of fields, not {kind}"
    )


def test_a_spec_past_a_bound_is_refused_naming_the_field_and_the_bound(tmp_path, capsys):
    spec = write(
        tmp_path / "spec.yaml", "name: n\nrelease_version: 2.0.0\njob_ttl_s: 99999999999999999999999999\n"
    )
    line = refused(capsys, "campaign", "create", "--spec", spec, "--reason", "r")
    assert line == "error: invalid campaign spec: job_ttl_s: Input should be less than or equal to 2592000"


# --- flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--start-at", "garbage"), "argument --start-at: 'garbage' is not an ISO 8601 time"),
        (("--waves", "abc"), "argument --waves: 'abc' is not a percentage"),
        (("--waves", "5,x,70"), "argument --waves: 'x' is not a percentage"),
        (("--wave-sizes", "1.5"), "argument --wave-sizes: '1.5' is not a whole number"),
        (
            ("--waves", "50,50", "--wave-sizes", "1,2"),
            "argument --wave-sizes: not allowed with argument --waves",
        ),
        (("--models", ","), "argument --models: ',' names nothing"),
        (("--max-in-flight", "ten"), "argument --max-in-flight: invalid int value: 'ten'"),
        (("--window", "0100"), "maintenance window '0100' must look like 22:00-04:00"),
    ],
)
def test_a_flag_that_cannot_be_read_is_refused(capsys, argv, says):
    assert says in refused(capsys, "campaign", "preview", *NAMED, *argv)


def test_an_unknown_command_or_flag_is_one_line_not_the_usage(capsys):
    assert "invalid choice: 'launch'" in refused(capsys, "campaign", "launch")
    assert "unrecognized arguments: --bogus" in refused(capsys, "campaign", "preview", *NAMED, "--bogus")
    assert "the following arguments are required: --version" in refused(
        capsys, "firmware", "publish", "f.bin", "--models", "m"
    )


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("--abort-failure-pct", "abort.failure_pct"),
        ("--abort-min-executed", "abort.min_executed"),
        ("--max-in-flight", "max_in_flight"),
        ("--timeout", "in_progress_timeout_s"),
        ("--max-attempts", "retry.max_attempts"),
    ],
)
def test_a_zero_the_spec_does_not_allow_is_refused_not_replaced_by_the_default(capsys, flag, field):
    line = refused(capsys, "campaign", "preview", *NAMED, flag, "0")
    assert line.startswith(f"error: invalid campaign spec: {field}: Input should be greater")


def test_zeros_the_spec_allows_are_honoured():
    spec = spec_from(
        *NAMED, "--backoff", "0", "--min-soc", "0", "--success-threshold", "0", "--error-threshold", "0"
    )
    assert spec.retry.backoff_base_s == 0 and spec.eligibility.min_soc_pct == 0
    assert (spec.waves[0].success_threshold_pct, spec.waves[0].error_threshold_pct) == (0, 0)


def test_a_zero_flag_overrides_the_spec_file(tmp_path):
    spec = write(
        tmp_path / "spec.json",
        json.dumps({"name": "n", "release_version": "2.0.0", "retry": {"backoff_base_s": 600}}),
    )
    assert spec_from("--spec", spec, "--backoff", "0").retry.backoff_base_s == 0


def test_an_empty_name_is_refused_not_ignored(tmp_path, capsys):
    spec = write(tmp_path / "spec.yaml", "name: from-file\nrelease_version: 2.0.0\n")
    assert "name: String should have at least 1 character" in refused(
        capsys, "campaign", "preview", "--spec", spec, "--name", ""
    )


def test_thresholds_without_waves_apply_to_the_default_wave():
    spec = spec_from(*NAMED, "--success-threshold", "75", "--error-threshold", "3")
    assert [(w.percent, w.success_threshold_pct, w.error_threshold_pct) for w in spec.waves] == [(100, 75, 3)]


def test_thresholds_without_wave_flags_apply_to_every_wave_of_the_spec_file(tmp_path):
    waves = [{"percent": 10, "error_threshold_pct": 20}, {"size": 50}]
    spec = write(
        tmp_path / "spec.json", json.dumps({"name": "n", "release_version": "2.0.0", "waves": waves})
    )
    spec = spec_from("--spec", spec, "--error-threshold", "5")
    assert [(w.percent, w.size, w.error_threshold_pct) for w in spec.waves] == [(10, None, 5), (None, 50, 5)]


def test_thresholds_with_wave_flags_apply_to_those_waves():
    spec = spec_from(*NAMED, "--wave-sizes", "10,90", "--success-threshold", "80")
    assert [(w.size, w.success_threshold_pct) for w in spec.waves] == [(10, 80), (90, 80)]


def test_a_flag_overrides_one_rule_of_a_spec_section_and_keeps_the_others(tmp_path):
    raw = {
        "name": "n",
        "release_version": "2.0.0",
        "eligibility": {"networks": ["WIFI"], "min_soc_pct": 50},
        "retry": {"max_attempts": 5, "backoff_base_s": 600},
        "abort": {"failure_pct": 40, "min_executed": 30},
    }
    spec = write(tmp_path / "spec.json", json.dumps(raw))
    spec = spec_from("--spec", spec, "--min-soc", "20", "--backoff", "30", "--abort-failure-pct", "60")
    assert [n.value for n in spec.eligibility.networks] == ["WIFI"] and spec.eligibility.min_soc_pct == 20
    assert (spec.retry.max_attempts, spec.retry.backoff_base_s) == (5, 30)
    assert (spec.abort.failure_pct, spec.abort.min_executed) == (60, 30)


def test_the_threshold_flags_help_says_they_apply_to_every_wave(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["campaign", "preview", "--help"])
    assert exited.value.code == 0
    assert "applies to every wave" in " ".join(capsys.readouterr().out.split())


def test_soak_minutes_sets_the_health_gate_and_a_zero_soak_is_refused(capsys):
    assert spec_from(*NAMED, "--soak-minutes", "45").soak_minutes == 45
    assert spec_from(*NAMED).soak_minutes is None  # no flag: waves open on install results alone
    line = refused(capsys, "campaign", "preview", *NAMED, "--soak-minutes", "0")
    assert line.startswith("error: invalid campaign spec: soak_minutes: Input should be greater")


def test_campaign_show_prints_the_gate_verdict_and_each_signal():
    from datetime import UTC, datetime

    from campaign_world import spec, world_with_campaign

    from fleetota_core.cli.campaign import _gate_lines
    from fleetota_core.domain.health_gate import (
        GatePhase,
        GateStatus,
        GateVerdict,
        MetricResult,
        MetricVerdict,
    )
    from fleetota_core.domain.vehicle_health import Signal

    _, campaign = world_with_campaign(3, spec(soak_minutes=30))
    assert _gate_lines(campaign) == ["gate      : soak 30 min after each wave; no wave soaked yet"]
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    dtc = MetricResult(
        signal=Signal.DTC, verdict=MetricVerdict.HIGH, canary_n=120, control_n=400,
        canary_mean=4.1, control_mean=0.9, p_value=0.004,
    )  # fmt: skip
    gate = GateStatus(
        wave=0, phase=GatePhase.FAILED, soak_started_at=at, soak_ends_at=at, give_up_at=at,
        canary_vehicles=120, control_vehicles=400, verdict=GateVerdict.MARGINAL, score=75.0,
        metrics=(dtc,), evidence=dtc.evidence(),
    )  # fmt: skip
    lines = _gate_lines(campaign.model_copy(update={"gate": gate}))
    assert lines[0] == (
        "gate      : wave 1 health gate FAILED (MARGINAL, score 75): canary DTC rate 4.1 % per hour "
        "(n=120) vs control 0.90 % per hour (n=400), p<0.01"
    )
    assert "DTC rate" in lines[2] and "canary 4.10 vs control 0.90" in lines[2] and "p=0.004" in lines[2]


# --- delivery: install and network policy -----------------------------------------------------


def test_the_delivery_flags_become_the_specs_install_and_network_policy():
    spec = spec_from(
        *NAMED,
        "--install-policy", "consent", "--consent-deadline", "7200", "--download-networks", "wifi",
        "--cellular-after", "2026-12-01T02:00:00+00:00", "--cellular-max-mb", "50",
        "--cellular-budget-gb", "120", "--cellular-cost-per-gb", "3.5",
    )  # fmt: skip
    d = spec.delivery
    assert (d.install.value, d.consent_deadline_s, d.download_networks.value) == ("consent", 7200, "wifi")
    assert d.cellular_after.isoformat() == "2026-12-01T02:00:00+00:00"
    assert (d.cellular_max_mb, d.cellular_budget_gb, d.cellular_cost_per_gb) == (50, 120, 3.5)
    assert spec_from(*NAMED).delivery.install.value == "immediate"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--install-policy", "later"), "argument --install-policy: invalid choice: 'later'"),
        (("--download-networks", "lte"), "argument --download-networks: invalid choice: 'lte'"),
        (
            ("--cellular-budget-gb", "-1"),
            "delivery.cellular_budget_gb: Input should be greater than or equal to 0",
        ),
        (("--cellular-budget-gb", "nan"), "delivery.cellular_budget_gb: Input should be a finite number"),
        (
            ("--cellular-cost-per-gb", "1e9"),
            "delivery.cellular_cost_per_gb: Input should be less than or equal",
        ),
        (
            ("--consent-deadline", "10"),
            "delivery.consent_deadline_s: Input should be greater than or equal to 60",
        ),
        (("--cellular-max-mb", "0"), "delivery.cellular_max_mb: Input should be greater than 0"),
        (
            ("--cellular-after", "2026-12-01T02:00"),
            "delivery.cellular_after: Input should have timezone info",
        ),
        (("--cellular-after", "tomorrow"), "'tomorrow' is not an ISO 8601 time"),
    ],
)
def test_a_delivery_flag_out_of_bounds_is_one_clear_error_with_exit_2(capsys, flags, message):
    assert message in refused(capsys, "campaign", "create", *NAMED, *flags)
