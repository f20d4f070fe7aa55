"""The vehicle-side OTA client: verify the signed job, download with resume, check, install, reboot.

Plugged into :class:`simulator.simulation.FleetSimulation` as its ``ota_client``. Job notifications
arrive through :mod:`simulator.job_listener`; each vehicle then fetches only its own job document.
Every step is reported as an ``OtaReport`` inside the vehicle's telemetry (one per tick).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests

from fleetota_core.domain.delta import DeltaFallback, OtaArtifact
from fleetota_core.domain.install_permit import SignedInstallPermit, permit_problem
from fleetota_core.domain.job_document import (
    JobCheckFailed,
    JobDocument,
    JobNotice,
    RejectReason,
    SignedJobDocument,
    TrustedKeys,
    check_job,
)
from fleetota_core.domain.telemetry import CELLULAR_NETWORKS, NetworkType, OtaReport, OtaStatus
from fleetota_core.errors import FleetOTAError
from simulator.firmware_images import InstalledImages
from simulator.ota import OtaEffect
from simulator.ota_delta import choose_artifact, delivery, rebuild
from simulator.ota_memory import VehicleOtaMemory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from simulator.vehicle import SimVehicle

# Typical sustained rates at a good signal; weak signal scales them down (see _bandwidth_bps).
BANDWIDTH_MBPS = {NetworkType.WIFI: 50.0, NetworkType.NR5G: 100.0, NetworkType.LTE: 20.0, NetworkType.G3: 2.0}
DEVICE_MIN_SOC = 15.0  # the vehicle's own floor, whatever the campaign allowed
INSTALL_S = 180.0
MAX_INTERRUPTIONS = 5  # drop-outs tolerated in one attempt before giving up (transient failure)
AWAKE_KWH_PER_TICK = 0.02  # modules kept awake while downloading or installing
DRIVER_CONSENT_RATE = 0.05  # per parked tick, the chance the driver accepts the install prompt
MAX_JOB_DOCUMENT_BYTES = 64 * 1024  # a signed job document is about 2 kB (its manifest at most 4 kB)


def http_fetch(url: str, start: int | None = None, end: int | None = None) -> bytes:
    """GET ``url`` (a presigned S3 URL), optionally the byte range [start, end].

    Reads at most one byte more than asked for (or than :data:`MAX_JOB_DOCUMENT_BYTES` without a
    range), so the caller sees an oversized answer without the vehicle downloading all of it.
    """
    headers, limit = {}, MAX_JOB_DOCUMENT_BYTES + 1
    if start is not None and end is not None:
        headers, limit = {"Range": f"bytes={start}-{end}"}, end - start + 2
    with requests.get(url, headers=headers, timeout=30, stream=True) as response:
        response.raise_for_status()
        body = bytearray()
        for chunk in response.iter_content(chunk_size=min(limit, 64 * 1024)):
            body += chunk
            if len(body) >= limit:
                break  # closing the response drops the connection: the rest is never read
        return bytes(body[:limit])


@dataclass(frozen=True)
class OtaFaults:
    """Realistic OTA failures to inject, each a probability per job (or per download tick)."""

    install_failure_rate: float = 0.0  # transient: the next attempt succeeds (INSTALL_TRANSIENT)
    permanent_failure_rate: float = 0.0  # every attempt fails (INSTALL_FAILED_PERMANENT)
    download_interrupt_rate: float = 0.0  # per download tick: the connection drops mid-transfer
    low_battery_rate: float = 0.0  # the vehicle finds its battery too low to start
    tamper_rate: float = 0.0  # the artifact is altered in transit


@dataclass
class ActiveJob:
    doc: JobDocument
    # download -> verify -> install -> installing; two-phase: download -> verify -> staged -> installing
    phase: str = "download"
    data: bytearray = field(default_factory=bytearray)
    interruptions: int = 0
    last_t: float = 0.0
    install_done_at: float = 0.0
    install_error: str | None = None
    tampered: bool = False
    artifact: OtaArtifact = OtaArtifact.FULL  # being downloaded: the offered delta, or the full image
    fallback: DeltaFallback | None = None  # why the offered delta was not (or no longer) used
    downloaded: int = 0  # bytes of every artifact of this attempt
    image_sha256: str | None = None  # the verified image, kept in InstalledImages until installed
    bytes_wifi: int = 0
    bytes_cellular: int = 0
    staged_t: float = 0.0  # when the verified image was staged (two-phase delivery)
    permit_until: float = 0.0  # a valid install permit lets the install start until then

    @property
    def key(self) -> tuple[str, int]:
        return self.doc.deployment_id, self.doc.attempt


class VehicleOtaClient:
    """One instance for the whole simulated fleet; per-vehicle state lives in ``vehicle.ota_state``.

    Parameters
    ----------
    keys:
        The image and director keys' public halves, fetched once at simulator start and pinned.
    read_job:
        How a vehicle reads its own job document: ``(vin, key) -> bytes`` (S3, in a session tagged
        with the VIN; see ``simulator.job_listener``).
    fetch:
        How artifact bytes are fetched from a URL (presigned S3 GETs by default).
    memory:
        Each vehicle's installed firmware and anti-replay history, kept across restarts.
    images:
        The image each vehicle runs (what a delta applies to).
    """

    def __init__(
        self,
        keys: TrustedKeys,
        faults: OtaFaults | None = None,
        *,
        read_job: Callable[[str, str], bytes],
        seed: int = 0,
        fetch: Callable[[str, int | None, int | None], bytes] = http_fetch,
        install_s: float = INSTALL_S,
        stamp: Callable[[float], float] | None = None,
        memory: VehicleOtaMemory | None = None,
        images: InstalledImages | None = None,
        consent_rate: float = DRIVER_CONSENT_RATE,
    ) -> None:
        self.keys = keys
        self.memory = memory or VehicleOtaMemory()
        self.images = images or InstalledImages()
        self.faults = faults or OtaFaults()
        self.read_job = read_job
        self.fetch = fetch
        self.install_s = install_s
        # Simulated time -> the time the vehicle's clock shows (job expiry is checked against it).
        self.stamp: Callable[[float], float] = stamp or (lambda t: t)
        self.rng = random.Random(f"ota:{seed}")
        self.pending: dict[str, dict[str, Any]] = {}
        self.permits: dict[str, dict[str, Any]] = {}  # install notices waiting for their vehicle
        self.consent_rate = consent_rate
        # Bytes downloaded per (campaign, "wifi" | "cellular"): the vehicles' own tally.
        self.downloaded: Counter[tuple[str, str]] = Counter()
        self.stats: Counter[str] = Counter()
        self.notified: Counter[tuple[str, int]] = Counter()  # (vin, attempt) -> notifications seen
        self._permanent: dict[str, bool] = {}  # deployment -> fails every attempt

    def deliver(self, notifications: Iterable[dict[str, Any]]) -> int:
        """Queue job notifications for their vehicles; a newer attempt replaces an older one."""
        count = 0
        for note in notifications:
            if note.get("type") == "install" and "vin" in note:
                self.permits[note["vin"]] = note
                self.stats["permits_received"] += 1
                continue
            if note.get("type") != "job" or "vin" not in note:
                continue
            self.notified[(note["vin"], int(note.get("attempt", 0)))] += 1
            current = self.pending.get(note["vin"])
            if current is None or int(note.get("attempt", 0)) >= int(current.get("attempt", 0)):
                self.pending[note["vin"]] = note
                count += 1
        self.stats["notifications"] += count
        return count

    def on_tick(self, vehicle: SimVehicle, t: float) -> OtaEffect | None:
        self.memory.restore(vehicle)
        job: ActiveJob | None = vehicle.ota_state
        note = self.pending.get(vehicle.vin)
        if note is not None and vehicle.network is not NetworkType.NONE:
            if job is None or (note["deployment_id"], int(note["attempt"])) != job.key:
                del self.pending[vehicle.vin]
                return self._accept(vehicle, note, t)
            del self.pending[vehicle.vin]  # a repeat of the job in hand
        if job is None:
            return None
        return self._advance(vehicle, job, t)

    def _job_report(self, job: ActiveJob, status: OtaStatus, **kw: Any) -> OtaReport:
        """A report about the job in hand, with the attempt's byte counts once it downloaded any."""
        if job.bytes_wifi or job.bytes_cellular:
            kw.update(bytes_wifi=job.bytes_wifi, bytes_cellular=job.bytes_cellular)
        return self._report(job.doc, status, **kw)

    def _report(self, job_doc: JobDocument | dict[str, Any], status: OtaStatus, **kw: Any) -> OtaReport:
        if isinstance(job_doc, JobDocument):
            ids = (job_doc.campaign_id, job_doc.deployment_id, job_doc.attempt, job_doc.release.version)
        else:  # the notice: what the vehicle was asked, whatever a refused document said
            version = str(job_doc.get("target_version") or "0.0.0")
            ids = (job_doc["campaign_id"], job_doc["deployment_id"], int(job_doc["attempt"]), version)
        self.stats[status.value] += 1
        if kw.get("detail"):
            kw["detail"] = kw["detail"][:512]
        return OtaReport(
            campaign_id=ids[0],
            deployment_id=ids[1],
            status=status,
            attempt=ids[2],
            target_version=ids[3],
            **kw,
        )

    def _accept(self, vehicle: SimVehicle, note: dict[str, Any], t: float) -> OtaEffect | None:
        now = datetime.fromtimestamp(self.stamp(t), UTC)
        try:
            notice = JobNotice.from_message(note)
        except ValueError:
            self.stats["bad_notices"] += 1  # names no deployment a report could go to
            return None
        try:
            body = self.read_job(vehicle.vin, note["document_key"])
        except (FleetOTAError, KeyError) as exc:
            detail = f"job document unreadable: {type(exc).__name__}"
            return OtaEffect(self._report(note, OtaStatus.FAILED, error_code="NETWORK_LOST", detail=detail))
        try:
            if len(body) > MAX_JOB_DOCUMENT_BYTES:
                raise ValueError(f"more than {MAX_JOB_DOCUMENT_BYTES} bytes")
            signed = SignedJobDocument.model_validate_json(body)
        except ValueError as exc:
            detail = f"job document invalid: {str(exc)[:200]}"
            return OtaEffect(
                self._report(note, OtaStatus.REJECTED, error_code="JOB_DOCUMENT_INVALID", detail=detail)
            )
        history = self.memory.history(vehicle.vin)
        try:
            doc = check_job(
                signed,
                self.keys,
                notice,
                model=vehicle.model,
                hw_rev=vehicle.hw_rev,
                current_version=vehicle.firmware_version,
                history=history,
                now=now,
            )
        except JobCheckFailed as exc:
            # Refused: reported against the notice; a job in hand carries on undisturbed.
            report = self._report(note, OtaStatus.REJECTED, error_code=exc.code.value, detail=exc.detail)
            return OtaEffect(report)
        self.memory.remember(vehicle, history.accepted(doc))
        if (vehicle.soc < DEVICE_MIN_SOC and not vehicle.charging) or self._chance(
            self.faults.low_battery_rate
        ):
            vehicle.ota_state = None
            self._finished(vehicle, doc)
            detail = f"battery {vehicle.soc:.0f}% too low to start (device minimum {DEVICE_MIN_SOC:.0f}%)"
            return OtaEffect(self._report(doc, OtaStatus.FAILED, error_code="BATTERY_TOO_LOW", detail=detail))
        installed = self.images.image(vehicle.vin, vehicle.firmware_version) if doc.delta else b""
        artifact, fallback = choose_artifact(doc, self.keys, vehicle.firmware_version, installed)
        job = ActiveJob(doc=doc, last_t=t, tampered=self._chance(self.faults.tamper_rate))
        job.artifact, job.fallback = artifact, fallback
        self.stats[f"artifact_{artifact.value}"] += 1
        if fallback is not None:
            self.stats[f"fallback_{fallback.value}"] += 1
        vehicle.ota_state = job
        return self._download(vehicle, job, t, first=True)

    def _finished(self, vehicle: SimVehicle, doc: JobDocument, installed: bool = False) -> None:
        """The job's attempt is over: the vehicle never acts on that document again."""
        history = self.memory.history(vehicle.vin).finished_job(doc, installed)
        self.memory.remember(vehicle, history)

    def _end(
        self, vehicle: SimVehicle, job: ActiveJob, status: OtaStatus, code: str, detail: str
    ) -> OtaEffect:
        vehicle.ota_state = None
        self._finished(vehicle, job.doc)
        extra = {"delivery": self._delivery(job)} if job.downloaded else {}
        return OtaEffect(self._job_report(job, status, error_code=code, detail=detail, **extra))

    def _delivery(self, job: ActiveJob) -> Any:
        return delivery(job.artifact, job.downloaded, job.fallback)

    def _fall_back(self, job: ActiveJob, reason: DeltaFallback) -> OtaEffect:
        """Drop the delta and download the full image from the start (the reason is reported)."""
        job.artifact, job.fallback, job.phase = OtaArtifact.FULL, reason, "download"
        job.data = bytearray()
        self.stats[f"fallback_{reason.value}"] += 1
        report = self._report(job.doc, OtaStatus.DOWNLOADING, progress_pct=0.0, detail=f"delta: {reason}")
        return OtaEffect(report, extra_energy_kwh=AWAKE_KWH_PER_TICK)

    def _advance(self, vehicle: SimVehicle, job: ActiveJob, t: float) -> OtaEffect | None:
        if job.phase == "download":
            return self._download(vehicle, job, t)
        if job.phase == "verify":
            return self._verify(vehicle, job, t)
        if job.phase == "staged":
            return self._staged(vehicle, job, t)
        if job.phase == "install":
            if vehicle.driving:
                return None  # installs only while parked; the download waits
            return self._start_install(job, t)
        return self._finish_install(vehicle, job, t)

    def _download(
        self, vehicle: SimVehicle, job: ActiveJob, t: float, first: bool = False
    ) -> OtaEffect | None:
        url, size = job.doc.download_url, job.doc.release.manifest.size_bytes
        if job.artifact is OtaArtifact.DELTA and job.doc.delta is not None:
            url, size = job.doc.delta.download_url, job.doc.delta.delta.manifest.size_bytes
        dt = 60.0 if first else max(0.0, t - job.last_t)
        job.last_t = t
        if vehicle.network is NetworkType.NONE:
            return None  # a drop-out: resume from the same offset once connected
        cellular = vehicle.network in CELLULAR_NETWORKS
        if cellular and not job.doc.cellular_allowed:
            self.stats["waiting_for_wifi"] += 1
            return None  # a Wi-Fi-only job: the download waits for Wi-Fi
        budget = int(_bandwidth_bps(vehicle.network, vehicle.signal_dbm) * dt / 8)
        if self._chance(self.faults.download_interrupt_rate):
            job.interruptions += 1
            self.stats["interruptions"] += 1
            budget //= 2  # the link dropped partway through this tick
            if job.interruptions > MAX_INTERRUPTIONS:
                detail = f"download interrupted {job.interruptions} times at {len(job.data)} bytes"
                return self._end(vehicle, job, OtaStatus.FAILED, "DOWNLOAD_INTERRUPTED", detail)
        start = len(job.data)
        end = min(size, start + budget) - 1
        if end >= start:
            try:
                chunk = self.fetch(url, start, end)
            except requests.RequestException:
                chunk = b""
                job.interruptions += 1  # resume next tick
            job.downloaded += min(len(chunk), end - start + 2)
            if len(chunk) > end - start + 1:
                # Endless data: stop at the signed size plus one byte, never store the rest.
                if job.artifact is OtaArtifact.DELTA:
                    return self._fall_back(job, DeltaFallback.DOWNLOAD_FAILED)
                detail = f"server sent more than the signed {size} bytes"
                return self._end(vehicle, job, OtaStatus.REJECTED, RejectReason.TOO_LARGE.value, detail)
            job.data += chunk
            network = "cellular" if cellular else "wifi"
            setattr(job, f"bytes_{network}", getattr(job, f"bytes_{network}") + len(chunk))
            self.downloaded[(job.doc.campaign_id, network)] += len(chunk)
        progress = 100.0 * len(job.data) / size
        if len(job.data) >= size:
            job.phase = "verify"
        report = self._job_report(job, OtaStatus.DOWNLOADING, progress_pct=min(progress, 100.0))
        return OtaEffect(report, extra_energy_kwh=AWAKE_KWH_PER_TICK)

    def _verify(self, vehicle: SimVehicle, job: ActiveJob, t: float) -> OtaEffect:
        if job.artifact is OtaArtifact.DELTA:
            installed = self.images.image(vehicle.vin, vehicle.firmware_version)
            rebuilt = rebuild(job.doc, bytes(job.data), installed)
            if isinstance(rebuilt, DeltaFallback):
                return self._fall_back(job, rebuilt)
            data = rebuilt
        else:
            data = bytes(job.data)
        if job.tampered and job.artifact is OtaArtifact.FULL:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        digest = hashlib.sha256(data).hexdigest()
        if digest != job.doc.release.manifest.sha256 or len(data) != job.doc.release.manifest.size_bytes:
            detail = f"artifact sha256 {digest[:16]}... does not match the signed manifest"
            return self._end(vehicle, job, OtaStatus.REJECTED, RejectReason.CHECKSUM.value, detail)
        job.data = bytearray()  # verified; the image now sits in the inactive partition
        job.image_sha256 = self.images.keep(data)
        if job.doc.install_policy == "immediate":
            job.phase = "install"
            return OtaEffect(
                self._job_report(job, OtaStatus.VERIFYING, progress_pct=100.0, delivery=self._delivery(job))
            )
        job.phase, job.staged_t = "staged", t  # installs on a permit (or the driver's consent)
        return OtaEffect(
            self._job_report(job, OtaStatus.DOWNLOADED, progress_pct=100.0, delivery=self._delivery(job))
        )

    def _staged(self, vehicle: SimVehicle, job: ActiveJob, t: float) -> OtaEffect | None:
        """A staged image: install once permitted (a valid signed permit, or the driver's consent
        before the consent deadline) and parked."""
        note = self.permits.pop(vehicle.vin, None)
        now = self.stamp(t)
        if note is not None:
            self._take_permit(job, note, now)
        consent_open = (
            job.doc.install_policy == "consent"
            and job.doc.consent_deadline_s is not None
            and t < job.staged_t + job.doc.consent_deadline_s
        )
        if (
            consent_open
            and not vehicle.driving
            and now >= job.permit_until
            and self._chance(self.consent_rate)
        ):
            self.stats["consents"] += 1
            job.permit_until = now + 3600.0  # the driver pressed "install now"
        if now >= job.permit_until or vehicle.driving:
            return None
        return self._start_install(job, t)

    def _take_permit(self, job: ActiveJob, note: dict[str, Any], now: float) -> None:
        try:
            signed = SignedInstallPermit.model_validate(note.get("permit"))
        except ValueError:
            self.stats["bad_permits"] += 1
            return
        problem = permit_problem(signed, self.keys, job.doc, datetime.fromtimestamp(now, UTC))
        if problem is not None:
            self.stats["bad_permits"] += 1
            return
        job.permit_until = signed.permit.expires_at.timestamp()

    def _start_install(self, job: ActiveJob, t: float) -> OtaEffect:
        deployment = job.doc.deployment_id
        if deployment not in self._permanent:
            self._permanent[deployment] = self._chance(self.faults.permanent_failure_rate)
        if self._permanent[deployment]:
            job.install_error = "INSTALL_FAILED_PERMANENT"
        elif self._chance(self.faults.install_failure_rate):
            job.install_error = "INSTALL_TRANSIENT"
        job.phase = "installing"
        job.install_done_at = t + self.install_s
        report = self._job_report(job, OtaStatus.INSTALLING, progress_pct=0.0)
        return OtaEffect(report, hold_parked=True, extra_energy_kwh=AWAKE_KWH_PER_TICK)

    def _finish_install(self, vehicle: SimVehicle, job: ActiveJob, t: float) -> OtaEffect:
        if t < job.install_done_at:
            return OtaEffect(hold_parked=True, extra_energy_kwh=AWAKE_KWH_PER_TICK)
        if job.install_error:
            # A/B partitions: the vehicle boots its previous firmware, as Mender's device-side rollback.
            detail = f"install of {job.doc.release.version} failed; kept {vehicle.firmware_version}"
            return self._end(vehicle, job, OtaStatus.FAILED, job.install_error, detail)
        vehicle.ota_state = None
        vehicle.firmware_version = job.doc.release.version  # rebooted into the new image
        if job.image_sha256 is not None:
            self.images.install(vehicle.vin, vehicle.firmware_version, job.image_sha256)
        self._finished(vehicle, job.doc, installed=True)
        return OtaEffect(
            self._job_report(job, OtaStatus.SUCCEEDED, progress_pct=100.0, delivery=self._delivery(job))
        )

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


def _bandwidth_bps(network: NetworkType, signal_dbm: int | None) -> float:
    mbps = BANDWIDTH_MBPS.get(network, 0.0)
    if signal_dbm is None:
        return mbps * 1e6
    # -70 dBm or better: full rate; falling linearly to 10 % at -120 dBm.
    quality = min(1.0, max(0.1, 1.0 - (-70 - signal_dbm) / 50 * 0.9))
    return mbps * 1e6 * quality
