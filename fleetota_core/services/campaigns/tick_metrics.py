"""The tick's OTAUpdates metrics: in progress and success rate per campaign and overall, failure rate,
and the bytes the vehicles downloaded (``DownloadBytes`` by ``Network``: wifi or cellular)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        for network, count in (("wifi", c.bytes_wifi), ("cellular", c.bytes_cellular)):
            by_network[network] += count
            data.append(("DownloadBytes", count, "Bytes", {**dims, "Network": network}))
    data.append(("InProgress", in_flight, "Count", {}))
    data.extend(("DownloadBytes", n, "Bytes", {"Network": network}) for network, n in by_network.items())
    if executed:
        data.append(("SuccessRate", 100.0 * succeeded / executed, "Percent", {}))
        data.append(("FailureRate", 100.0 * failed / executed, "Percent", {}))
    ports.metrics.publish(data, now)
