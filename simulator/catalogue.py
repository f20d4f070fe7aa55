"""The simulated fleet's vehicle catalogue: makes, models, hardware revisions, batteries, firmware."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HardwareRevision:
    name: str
    first_year: int  # model years from which this revision is fitted
    modem: str  # best cellular generation the telematics unit supports: "5G", "LTE" or "3G"


@dataclass(frozen=True)
class VehicleModel:
    make: str
    model: str
    wmi: str  # a real world manufacturer identifier this model's VINs start with
    vds: str  # VIN positions 4-5: model line and body, as the maker codes them
    years: tuple[int, int]  # first and last model year
    battery_kwh: float
    wh_per_km: float
    pack_voltage: float  # nominal pack voltage: 400 V or 800 V architecture
    max_dc_kw: float
    hw_revs: tuple[HardwareRevision, ...]
    share: float  # weight in the fleet mix


_TCU2 = HardwareRevision("TCU2", 2019, "LTE")
_TCU3 = HardwareRevision("TCU3", 2023, "5G")

CATALOGUE: tuple[VehicleModel, ...] = (
    VehicleModel(
        "Tesla",
        "Tesla Model 3",
        "5YJ",
        "3E",
        (2019, 2026),
        75.0,
        145.0,
        360.0,
        250.0,
        (HardwareRevision("HW3", 2019, "LTE"), HardwareRevision("HW4", 2024, "5G")),
        0.20,
    ),
    VehicleModel(
        "Tesla",
        "Tesla Model Y",
        "7SA",
        "YG",
        (2020, 2026),
        75.0,
        155.0,
        360.0,
        250.0,
        (HardwareRevision("HW3", 2020, "LTE"), HardwareRevision("HW4", 2023, "5G")),
        0.18,
    ),
    VehicleModel(
        "Ford",
        "Ford Mustang Mach-E",
        "1FM",
        "TK",
        (2021, 2026),
        91.0,
        185.0,
        350.0,
        150.0,
        (_TCU2, _TCU3),
        0.10,
    ),
    VehicleModel(
        "Hyundai",
        "Hyundai Ioniq 5",
        "KM8",
        "KR",
        (2022, 2026),
        77.4,
        170.0,
        697.0,
        235.0,
        (HardwareRevision("ccNC1", 2022, "LTE"), HardwareRevision("ccNC2", 2025, "5G")),
        0.10,
    ),
    VehicleModel(
        "Volkswagen",
        "Volkswagen ID.4",
        "WVG",
        "DM",
        (2021, 2026),
        77.0,
        175.0,
        400.0,
        135.0,
        (HardwareRevision("ICAS3.0", 2021, "LTE"), HardwareRevision("ICAS3.1", 2024, "5G")),
        0.10,
    ),
    VehicleModel(
        "BMW",
        "BMW i4",
        "WBY",
        "73",
        (2022, 2026),
        81.0,
        165.0,
        400.0,
        205.0,
        (HardwareRevision("MGU22", 2022, "5G"),),
        0.07,
    ),
    VehicleModel(
        "Kia",
        "Kia EV6",
        "KND",
        "C3",
        (2022, 2026),
        77.4,
        165.0,
        697.0,
        235.0,
        (HardwareRevision("ccNC1", 2022, "LTE"), HardwareRevision("ccNC2", 2025, "5G")),
        0.08,
    ),
    VehicleModel(
        "Volvo",
        "Volvo EX30",
        "YV4",
        "ER",
        (2025, 2026),
        64.0,
        160.0,
        400.0,
        153.0,
        (HardwareRevision("SPA2", 2025, "5G"),),
        0.04,
    ),
    VehicleModel(
        "Rivian",
        "Rivian R1T",
        "7PD",
        "SG",
        (2022, 2026),
        135.0,
        260.0,
        400.0,
        220.0,
        (HardwareRevision("Gen1", 2022, "LTE"), HardwareRevision("Gen2", 2025, "5G")),
        0.05,
    ),
    VehicleModel(
        "Polestar",
        "Polestar 2",
        "LPS",
        "ED",
        (2021, 2026),
        78.0,
        175.0,
        400.0,
        155.0,
        (HardwareRevision("P2-A", 2021, "LTE"), HardwareRevision("P2-B", 2024, "5G")),
        0.04,
    ),
    VehicleModel(
        "Nissan",
        "Nissan Leaf",
        "1N4",
        "AZ",
        (2019, 2025),
        62.0,
        160.0,
        350.0,
        50.0,
        (HardwareRevision("TCU-3G", 2019, "3G"), _TCU2),
        0.04,
    ),
)

# Firmware versions in the field, newest first, with the share of the fleet on each: most vehicles
# are on a recent 3.x, an older 2.x tail never took the last updates.
FIRMWARE_SPREAD: tuple[tuple[str, float], ...] = (
    ("3.4.1", 0.30),
    ("3.4.0", 0.18),
    ("3.3.2", 0.17),
    ("3.2.0", 0.11),
    ("3.1.5", 0.08),
    ("3.0.3", 0.05),
    ("2.9.4", 0.05),
    ("2.8.0", 0.03),
    ("2.6.3", 0.02),
    ("2.4.1", 0.01),
)
LATEST_FIRMWARE = FIRMWARE_SPREAD[0][0]

# Share of the fleet per metro (names match fleetota_core.domain.geography.METROS).
METRO_SHARES: dict[str, float] = {
    "San Francisco Bay Area": 0.18,
    "Los Angeles": 0.18,
    "Denver": 0.08,
    "Chicago": 0.12,
    "New York": 0.16,
    "Berlin": 0.10,
    "Munich": 0.08,
    "London": 0.10,
}


def hw_revs_for(model: VehicleModel, model_year: int) -> tuple[HardwareRevision, ...]:
    """The hardware revisions a given model year can carry."""
    fitted = [rev for rev in model.hw_revs if rev.first_year <= model_year]
    if not fitted:
        return model.hw_revs[:1]
    # In a changeover year both revisions are built; afterwards only the new one.
    return tuple(fitted[-2:]) if fitted[-1].first_year == model_year else (fitted[-1],)
