"""The firmware and campaign commands: one clear line per error, non-zero exit."""

from __future__ import annotations

import json

from fleetota_core.adapters.signing import KmsSigner
from fleetota_core.cli import main
from fleetota_core.errors import TransientAWSError
from simulator.firmware_images import catalogue_image
from tests.integration.test_campaign_services import MODEL, seed_vehicles


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_firmware_publish_and_list_and_every_refusal_in_one_line(stack, tmp_path, capsys):
    seed_vehicles(stack, 2)
    image, empty = tmp_path / "app.bin", tmp_path / "empty.bin"
    image.write_bytes(b"\x7fELF" * 1000)
    empty.write_bytes(b"")
    code, out, _ = run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    assert code == 0 and out.startswith("published 2.0.0: 4000 bytes")
    refusals = {
        ("2.0.0", str(image), MODEL): "error: firmware 2.0.0 is already published; pick a new version",
        ("2.1", str(image), MODEL): "error: version '2.1' is not semver",
        ("2.1.0", str(empty), MODEL): "error: firmware file 'empty.bin' is empty",
        ("2.2.0", str(image), "Model T"): "error: unknown model(s) Model T; known models: Tesla Model 3",
    }
    for (version, path, models), message in refusals.items():
        code, _, err = run(capsys, "firmware", "publish", path, "--version", version, "--models", models)
        assert code == 1 and err.startswith(message) and err.count("\n") == 1
    code, out, _ = run(capsys, "firmware", "list", "--json")
    assert [r["manifest"]["version"] for r in json.loads(out)] == ["2.0.0"]


def test_campaign_commands_from_flags_to_show_and_pause(stack, tmp_path, capsys):
    seed_vehicles(stack, 3)
    image = tmp_path / "app.bin"
    image.write_bytes(b"x" * 100)
    run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    code, out, _ = run(
        capsys, "campaign", "preview", "--name", "p", "--release", "2.0.0", "--waves", "50,50", "--json"
    )
    assert code == 0 and json.loads(out)["wave_sizes"] == [2, 1]
    code, out, _ = run(capsys, "campaign", "create", "--name", "c", "--release", "2.0.0", "--reason", "why")
    assert code == 0 and out.startswith("created ")
    campaign_id = out.split()[1].rstrip(":")
    code, out, err = run(capsys, "campaign", "pause", campaign_id, "--reason", "x")
    assert code == 1 and err.startswith(f"error: cannot pause campaign {campaign_id}: it is SCHEDULED")
    code, out, _ = run(capsys, "campaign", "show", campaign_id, "--json")
    shown = json.loads(out)
    assert shown["state"] == "SCHEDULED" and shown["audit"][0]["action"] == "CREATE"
    code, _, err = run(capsys, "campaign", "show", "nope")
    assert code == 1 and err == "error: campaign nope does not exist\n"
    code, _, err = run(capsys, "campaign", "create", "--name", "c", "--release", "9.9.9")
    assert code == 1 and "firmware 9.9.9 is not published" in err


def bucket_keys(stack) -> list[str]:
    listing = stack.clients.s3.list_objects_v2(Bucket=stack.resources.firmware_bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_a_publish_refused_for_its_notes_leaves_nothing_in_the_bucket(stack, tmp_path, capsys):
    seed_vehicles(stack, 1)
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x7fELF" * 1000)
    code, out, err = run(
        capsys,
        "firmware",
        "publish",
        str(image),
        "--version",
        "2.0.0",
        "--models",
        MODEL,
        "--notes",
        "n" * 5000,
    )
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(
        "error: invalid firmware release: notes: String should have at most 2000 characters"
    )
    assert bucket_keys(stack) == []
    code, _, _ = run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    assert code == 0 and bucket_keys(stack) == ["firmware/2.0.0/app.bin", "releases/2.0.0.json"]


def test_a_publish_that_fails_after_the_upload_deletes_the_artifact(stack, tmp_path, capsys, monkeypatch):
    seed_vehicles(stack, 1)
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x7fELF" * 1000)

    def throttled(self, payload: bytes) -> tuple[str, str]:
        raise TransientAWSError(f"KMS key {self.key_alias}: ThrottlingException")

    monkeypatch.setattr(KmsSigner, "sign", throttled)  # the upload went through; signing fails
    code, _, err = run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    assert (code, err) == (1, f"error: KMS key {stack.resources.image_key_alias}: ThrottlingException\n")
    assert bucket_keys(stack) == []


def test_four_eyes_a_large_campaign_waits_until_another_operator_approves_it(
    stack, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("FLEETOTA_APPROVAL_MIN_VEHICLES", "2")
    vins = seed_vehicles(stack, 3)
    image = tmp_path / "app.bin"
    image.write_bytes(b"x" * 100)
    run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    code, out, _ = run(
        capsys, "campaign", "create", "--name", "big", "--release", "2.0.0", "--operator", "alice"
    )
    assert code == 0 and out.splitlines()[0].endswith("AWAITING_APPROVAL")
    assert "3 vehicles is more than the approval limit of 2" in out
    campaign_id = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "campaign", "list")
    header, row = out.splitlines()[:2]
    assert row.index("2.0.0") == header.index("RELEASE")  # the long state keeps the columns aligned

    code, _, err = run(capsys, "campaign", "approve", campaign_id, "--operator", "alice", "--reason", "mine")
    assert code == 1 and err.startswith("error: four-eyes rule: alice created this campaign")
    code, out, _ = run(capsys, "campaign", "approve", campaign_id, "--operator", "bob", "--reason", "checked")
    assert code == 0 and out == f"{campaign_id}: SCHEDULED\n"
    code, out, _ = run(capsys, "campaign", "show", campaign_id, "--json")
    shown = json.loads(out)
    approval = next(a for a in shown["audit"] if a["action"] == "APPROVE")
    assert shown["approved_by"] == "bob" and approval["operator"] == "bob" and approval["reason"] == "checked"
    assert approval["detail"] == {"requested_by": "alice", "approved_by": "bob"}

    # A critical campaign waits whatever its size; the reviewer turns it down.
    code, out, _ = run(
        capsys, "campaign", "create", "--name", "hot", "--release", "2.0.0", "--vins",
        vins[0], "--critical", "--operator", "alice",
    )  # fmt: skip
    assert code == 0 and "marked critical" in out
    critical_id = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "campaign", "reject", critical_id, "--operator", "bob", "--reason", "not now")
    assert code == 0 and out == f"{critical_id}: CANCELLED\n"


def test_a_continuous_campaign_from_the_cli_says_so_and_finishes_once(stack, tmp_path, capsys):
    seed_vehicles(stack, 2)
    image = tmp_path / "app.bin"
    image.write_bytes(b"x" * 100)
    run(capsys, "firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL)
    code, out, _ = run(capsys, "campaign", "create", "--name", "c", "--release", "2.0.0", "--continuous")
    assert code == 0 and "continuous: vehicles that match later join its open wave" in out
    campaign_id = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "campaign", "show", campaign_id)
    assert "continuous: taking vehicles; 0 joined after creation" in out
    code, out, _ = run(capsys, "campaign", "finish", campaign_id, "--reason", "superseded")
    assert (code, out) == (0, f"{campaign_id}: SCHEDULED\n")
    code, out, _ = run(capsys, "campaign", "show", campaign_id, "--json")
    shown = json.loads(out)
    assert (shown["continuous"], shown["enrolling"], shown["joined_later"]) == (True, False, 0)
    assert (shown["audit"][0]["action"], shown["audit"][0]["reason"]) == ("FINISH", "superseded")
    code, _, err = run(capsys, "campaign", "finish", campaign_id, "--reason", "again")
    assert code == 1 and err == f"error: cannot finish campaign {campaign_id}: it is already finished\n"
    code, out, _ = run(capsys, "campaign", "create", "--name", "once", "--release", "2.0.0")
    plain_id = out.split()[1].rstrip(":")
    code, _, err = run(capsys, "campaign", "finish", plain_id)
    assert code == 1 and "it is not continuous" in err


def test_firmware_publish_with_deltas_names_each_delta_and_each_source_it_left_out(stack, tmp_path, capsys):
    seed_vehicles(stack, 3)  # all on 1.0.0
    base, new = tmp_path / "base.bin", tmp_path / "new.bin"
    base.write_bytes(catalogue_image("1.0.0"))
    new.write_bytes(catalogue_image("2.0.0"))
    run(capsys, "firmware", "publish", str(base), "--version", "1.0.0", "--models", MODEL)

    code, out, _ = run(
        capsys, "firmware", "publish", str(new), "--version", "2.0.0", "--models", MODEL,
        "--deltas-from", "2", "--delta-from", "0.9.0",
    )  # fmt: skip

    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"published 2.0.0: {len(catalogue_image('2.0.0'))} bytes")
    assert lines[1].startswith("  delta from 1.0.0: ") and "3 vehicles on it" in lines[1]
    assert (
        lines[2]
        == "  no delta from 0.9.0: 0.9.0 is not published, so its image is not in the firmware bucket"
    )
    code, out, _ = run(capsys, "firmware", "list")
    assert "DELTAS FROM" in out and any(
        line.startswith("2.0.0") and " 1.0.0 " in line for line in out.splitlines()
    )
    code, out, _ = run(capsys, "campaign", "preview", "--name", "p", "--release", "2.0.0")
    assert code == 0 and "  with deltas    : 3 vehicles; saves " in out
    code, _, err = run(
        capsys, "firmware", "publish", str(new), "--version", "2.1.0", "--models", MODEL, "--deltas-from", "9"
    )
    assert code == 2 and err == "error: --deltas-from must be 0..8, got 9\n"
