"""Publishing a release leaves nothing behind when it fails: checks first, then upload, then clean up."""

from __future__ import annotations

import pytest

from fleetota_core.domain.firmware import MAX_NOTES_CHARS, MAX_SIGNED_BYTES
from fleetota_core.errors import ConflictError, TransientError, ValidationError
from fleetota_core.services.campaigns.releases import publish_release
from tests.unit.campaign_fakes import FakeWorld

MODEL = "Tesla Model 3"


def publish(world: FakeWorld, *, notes: str = "", models: tuple[str, ...] = (MODEL,), version: str = "2.0.0"):
    return publish_release(
        b"firmware" * 100,
        version,
        models,
        [],
        None,
        notes,
        "alice",
        world.ports,
        filename="app.bin",
        allowed_models=set(models),
    )


def test_notes_past_their_bound_are_refused_before_anything_is_uploaded():
    world = FakeWorld()
    with pytest.raises(
        ValidationError, match=rf"notes: String should have at most {MAX_NOTES_CHARS} characters"
    ):
        publish(world, notes="n" * (MAX_NOTES_CHARS + 1))
    assert world.releases.artifacts == {} and world.releases.releases == {}


def test_a_manifest_kms_could_not_sign_is_refused_before_anything_is_uploaded():
    world = FakeWorld()
    models = tuple(f"Model {i:04d} " + "x" * 40 for i in range(100))  # about 5 kB of model names
    with pytest.raises(ValidationError, match=f"KMS signs at most {MAX_SIGNED_BYTES}"):
        publish(world, models=models)
    assert world.releases.artifacts == {}


def test_notes_at_their_bound_publish():
    world = FakeWorld()
    release = publish(world, notes="n" * MAX_NOTES_CHARS)
    assert release.manifest.notes == "n" * MAX_NOTES_CHARS
    assert list(world.releases.artifacts) == [release.manifest.artifact_key]


def test_a_failure_after_the_upload_deletes_the_artifact(monkeypatch):
    world = FakeWorld()

    def throttled(payload: bytes) -> tuple[str, str]:
        raise TransientError("KMS throttled the request")

    monkeypatch.setattr(world.image_signer, "sign", throttled)
    with pytest.raises(TransientError):
        publish(world)
    assert world.releases.artifacts == {} and world.releases.releases == {}


def test_an_artifact_a_release_points_at_is_kept_even_if_the_release_write_reported_a_failure(monkeypatch):
    world = FakeWorld()
    store = world.releases
    landed = store.put_release

    def lost_the_race(release):
        landed(release)  # the other publisher's release, at the same version and artifact key
        raise ConflictError(f"firmware {release.version} is already published")

    monkeypatch.setattr(store, "put_release", lost_the_race)
    with pytest.raises(ConflictError):
        publish(world)
    assert list(store.artifacts) == [store.artifact_key("2.0.0", "app.bin")]
