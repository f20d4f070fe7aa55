"""Receives job notifications for the whole simulated fleet and hands them to the OTA client.

One SQS queue per simulator process, subscribed to the job-notification topic (as one MQTT
connection per vehicle would be in production), read with long polls of up to 10 messages.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.notifier import JobNotificationQueue
from fleetota_core.adapters.signing import KmsSigner
from fleetota_core.domain.firmware import load_public_key
from fleetota_core.domain.job_document import TrustedKeys
from fleetota_core.errors import TransientError, UnavailableError
from simulator.ota_client import OtaFaults, VehicleOtaClient
from simulator.ota_memory import VehicleOtaMemory

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from simulator.ota import OtaEffect
    from simulator.vehicle import SimVehicle

MAX_BATCHES_PER_POLL = 100  # 1,000 notifications; the rest wait for the next poll
MIN_POLL_INTERVAL_S = 1.0


class JobListener:
    """An ``OtaClient`` for :class:`FleetSimulation`: polls for notifications, then delegates.

    In a paced run the runner's ``on_idle`` long-polls between ticks; in a run as fast as possible
    :meth:`on_tick` polls at most once a second of wall time.
    """

    def __init__(self, queue: JobNotificationQueue, client: VehicleOtaClient) -> None:
        self.queue = queue
        self.client = client
        self.received = 0
        self.failed_polls = 0  # the backend did not answer; notifications wait in the queue
        self._last_poll = 0.0

    def poll(self, wait_s: float = 0.0) -> int:
        """Receive every notification waiting now (the first receive may long-poll ``wait_s``)."""
        self._last_poll = time.monotonic()
        got = 0
        for batch in range(MAX_BATCHES_PER_POLL):
            try:
                notes = self.queue.receive(wait_s if batch == 0 else 0.0)
            except (TransientError, UnavailableError):
                # The vehicles keep driving; the notifications stay queued for a later poll.
                self.failed_polls += 1
                break
            if not notes:
                break
            got += self.client.deliver(notes)
        self.received += got
        self.client.memory.flush()  # what the vehicles did since the last poll, at most once a second
        return got

    def on_idle(self, seconds: float) -> None:
        self.poll(wait_s=seconds)

    def on_tick(self, vehicle: SimVehicle, t: float) -> OtaEffect | None:
        if time.monotonic() - self._last_poll >= MIN_POLL_INTERVAL_S:
            self.poll()
        return self.client.on_tick(vehicle, t)

    def close(self) -> None:
        self.client.memory.flush(force=True)
        try:
            self.queue.close()
        except (TransientError, UnavailableError) as exc:
            # The run's results stand; only its notification queue is left behind.
            print(f"warning: job notification queue not removed: {exc}", file=sys.stderr)


def open_job_listener(
    clients: ClientFactory,
    resources: Resources,
    run_id: str,
    faults: OtaFaults | None = None,
    *,
    seed: int = 0,
    install_s: float | None = None,
    stamp: Callable[[float], float] | None = None,
    state_file: Path | None = None,
    consent_rate: float | None = None,
) -> JobListener:
    """Pin the image and director public keys (fetched once, now), subscribe this run's queue, build
    the client; ``state_file`` keeps each vehicle's firmware and OTA history across restarts."""
    keys = TrustedKeys(
        image=load_public_key(KmsSigner(clients.kms, resources.image_key_alias).public_key_der()),
        director=load_public_key(KmsSigner(clients.kms, resources.director_key_alias).public_key_der()),
    )
    memory = VehicleOtaMemory(state_file)
    queue = JobNotificationQueue(
        clients.sqs,
        clients.sns,
        resources.job_topic_arn,
        f"{resources.dashboard_name}-sim-jobs-{run_id}"[:80],
    )
    queue.open()
    extra: dict[str, float] = {} if install_s is None else {"install_s": install_s}
    if consent_rate is not None:
        extra["consent_rate"] = consent_rate
    jobs = FirmwareStore(clients.s3, resources.firmware_bucket)

    def read_job(vin: str, key: str) -> bytes:
        # One process plays every vehicle; a gateway would read in the vehicle's VIN-tagged session.
        return jobs.get_job(key)

    client = VehicleOtaClient(keys, faults, read_job=read_job, seed=seed, stamp=stamp, memory=memory, **extra)
    return JobListener(queue, client)


def add_ota_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m simulator`` flags for OTA faults beyond ``--install-failure-rate``."""
    ota = parser.add_argument_group("OTA faults")
    ota.add_argument(
        "--permanent-failure-rate", type=float, default=0.0, help="share of jobs that always fail"
    )
    ota.add_argument("--download-interrupt-rate", type=float, default=0.0, help="per download tick")
    ota.add_argument("--low-battery-rate", type=float, default=0.0, help="share of jobs refused: battery low")
    ota.add_argument("--tamper-rate", type=float, default=0.0, help="share of downloads altered in transit")
    ota.add_argument(
        "--consent-rate",
        type=_probability,
        default=None,
        help="chance per parked tick that a driver accepts an install prompt (default 0.05)",
    )


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def ota_faults(args: argparse.Namespace) -> OtaFaults:
    return OtaFaults(
        install_failure_rate=getattr(args, "install_failure_rate", None) or 0.0,
        permanent_failure_rate=getattr(args, "permanent_failure_rate", 0.0),
        download_interrupt_rate=getattr(args, "download_interrupt_rate", 0.0),
        low_battery_rate=getattr(args, "low_battery_rate", 0.0),
        tamper_rate=getattr(args, "tamper_rate", 0.0),
    )
