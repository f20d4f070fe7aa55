"""Compliance evidence (UN R156): which software a vehicle ran, from when to when, and why.

A vehicle's history is built from what FleetOTA recorded, never guessed:

- each SUCCEEDED deployment starts an interval on its release, at the time the vehicle reported the
  install, with the campaign, the signed image's sha256 and who created and approved the campaign;
- the version before the first recorded install is the ``from_version`` that deployment saw, from an
  unknown start ("before FleetOTA's records");
- when the vehicle's latest telemetry reports a version that no deployment explains (flashed in a
  workshop, say), a last interval says so, dated by that telemetry.

Every other finished attempt (failed, timed out, rejected, rolled back, cancelled) is kept as an
attempt with its result code: it did not change the software, but it belongs in the evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

INSTALLED = "SUCCEEDED"
# Attempts that ended without installing: evidence too, with their result codes.
UNCHANGED = frozenset({"FAILED", "TIMED_OUT", "REJECTED", "ROLLED_BACK", "CANCELLED"})


@dataclass(frozen=True)
class InstallRecord:
    """One deployment of a vehicle, with what its campaign says about the release and the people."""

    campaign_id: str
    campaign_name: str
    release_version: str
    release_sha256: str
    state: str
    attempt: int
    from_version: str | None
    finished_at: datetime | None
    error_code: str | None
    created_by: str
    approved_by: str | None


@dataclass(frozen=True)
class SoftwareInterval:
    """One version a vehicle ran; ``since``/``until`` None mean unknown start / still running."""

    version: str
    since: datetime | None
    until: datetime | None
    evidence: str
    campaign_id: str | None = None
    campaign_name: str | None = None
    release_sha256: str | None = None
    created_by: str | None = None
    approved_by: str | None = None

    def covers(self, when: datetime) -> bool:
        return (self.since is None or self.since <= when) and (self.until is None or when < self.until)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["since"] = self.since.isoformat() if self.since else None
        row["until"] = self.until.isoformat() if self.until else None
        return row


@dataclass(frozen=True)
class SoftwareHistory:
    vin: str
    intervals: tuple[SoftwareInterval, ...]
    attempts: tuple[InstallRecord, ...]

    def running_at(self, when: datetime) -> SoftwareInterval | None:
        """The interval covering ``when``; None when FleetOTA has no record of that moment."""
        return next((i for i in self.intervals if i.covers(when)), None)


def build_history(
    vin: str,
    records: list[InstallRecord],
    reported_version: str | None,
    reported_at: datetime | None,
) -> SoftwareHistory:
    """``vin``'s intervals from its deployment ``records`` and its latest telemetry (version, time)."""
    installs = sorted((r for r in records if r.state == INSTALLED and r.finished_at), key=_finished)
    intervals: list[SoftwareInterval] = []
    first_from = installs[0].from_version if installs else None
    if first_from:
        before = "before FleetOTA's first install record"
        intervals.append(SoftwareInterval(first_from, None, installs[0].finished_at, before))
    for index, record in enumerate(installs):
        until = installs[index + 1].finished_at if index + 1 < len(installs) else None
        intervals.append(
            SoftwareInterval(
                version=record.release_version,
                since=record.finished_at,
                until=until,
                evidence=f"install reported to campaign {record.campaign_id} (attempt {record.attempt})",
                campaign_id=record.campaign_id,
                campaign_name=record.campaign_name,
                release_sha256=record.release_sha256,
                created_by=record.created_by,
                approved_by=record.approved_by,
            )
        )
    if reported_version and _contradicts(intervals, reported_version, reported_at):
        if intervals:  # the last recorded version ended some time before this telemetry
            intervals[-1] = _ended(intervals[-1], reported_at)
            evidence = "reported in telemetry; no FleetOTA install explains it"
            intervals.append(SoftwareInterval(reported_version, reported_at, None, evidence))
        else:
            evidence = "reported in telemetry (no install recorded)"
            intervals.append(SoftwareInterval(reported_version, None, None, evidence))
    attempts = tuple(
        sorted((r for r in records if r.state in UNCHANGED or r.state == INSTALLED), key=_finished)
    )
    return SoftwareHistory(vin, tuple(intervals), attempts)


def _finished(record: InstallRecord) -> tuple[bool, str]:
    """Oldest first; attempts without a finish time last."""
    return record.finished_at is None, record.finished_at.isoformat() if record.finished_at else ""


def _contradicts(intervals: list[SoftwareInterval], version: str, at: datetime | None) -> bool:
    """Whether telemetry of ``version`` at ``at`` says more than the install records: a reading from
    before the last install (telemetry catching up) says nothing new."""
    if not intervals:
        return True
    last = intervals[-1]
    if last.version == version:
        return False
    return at is not None and (last.since is None or at > last.since)


def _ended(interval: SoftwareInterval, at: datetime | None) -> SoftwareInterval:
    return SoftwareInterval(**{**asdict(interval), "until": at})
