"""The tick's OTAUpdates metrics: in progress and success rate per campaign and overall, failure rate,
and per campaign with deltas: installs from deltas, fallbacks to the full image, bytes saved; and the
bytes the vehicles downloaded (``DownloadBytes`` by ``Network``: wifi or cellular)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.domain.delta import delivery_tally

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.services.campaigns.ports import CampaignPorts


def publish_ota_metrics(ports: CampaignPorts, campaigns: list[Campaign], now: datetime) -> None:
    data: list[tuple[str, float, str, dict[str, str]]] = []
    in_flight = succeeded = executed = failed = 0
    by_network = {"wifi": 0, "cellular": 0}
    for campaign in campaigns:
        c = campaign.counters
        in_flight, succeeded, executed, failed = (
            in_flight + c.in_flight,
            succeeded + c.succeeded,
            executed + c.executed,
            failed + c.failed,
        )
        dims = {"CampaignId": campaign.campaign_id}
        data.append(("InProgress", c.in_flight, "Count", dims))
        if c.executed:
            data.append(("SuccessRate", c.success_rate() or 0.0, "Percent", dims))
        tally = delivery_tally(c.delivery)
        if tally.from_delta or tally.from_full:
            data.append(("DeltaInstalls", tally.from_delta, "Count", dims))
            data.append(("DeltaFallbacks", tally.fallback_count, "Count", dims))
            data.append(("BytesSaved", tally.saved_bytes, "Bytes", dims))
        for network, count in (("wifi", c.bytes_wifi), ("cellular", c.bytes_cellular)):
            by_network[network] += count
            data.append(("DownloadBytes", count, "Bytes", {**dims, "Network": network}))
    data.append(("InProgress", in_flight, "Count", {}))
    data.extend(("DownloadBytes", n, "Bytes", {"Network": network}) for network, n in by_network.items())
    if executed:
        data.append(("SuccessRate", 100.0 * succeeded / executed, "Percent", {}))
        data.append(("FailureRate", 100.0 * failed / executed, "Percent", {}))
    ports.metrics.publish(data, now)
