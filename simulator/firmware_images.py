"""Simulated firmware images that change between versions the way real builds do.

A build differs from the one before it in a few places: most 4 KiB blocks are byte-for-byte equal,
some are rewritten (changed code), some carry a few patched bytes (relocated addresses), one section
moved elsewhere and a few new blocks were inserted. :func:`evolve` makes one such step from a seed;
:func:`catalogue_image` chains the steps along the versions the simulated fleet runs
(``simulator.catalogue.FIRMWARE_SPREAD``), so a vehicle on 3.4.0 and the publisher of 3.5.0 agree on
every byte, and a delta from an older source is larger than one from the previous version.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from fleetota_core.domain.firmware import SemVer
from simulator.catalogue import FIRMWARE_SPREAD

BLOCK_BYTES = 4096
IMAGE_SEED = "fleetota-firmware"  # one image lineage for every simulated fleet (not the fleet seed)
DEFAULT_IMAGE_BYTES = 384 * 1024
CHANGED_SHARE = 0.05  # blocks touched per version step: rewritten or patched
_REWRITTEN = 0.6  # of the changed blocks, rewritten whole; the rest get a few patched bytes
MOVED_SHARE = 0.01  # one section of this share of the blocks moves elsewhere
INSERTED_SHARE = 0.005  # new blocks per step (a build grows a little)


def base_image(size: int, seed: str = IMAGE_SEED) -> bytes:
    """The oldest image of a lineage: ``size`` pseudo-random (incompressible) bytes."""
    return random.Random(f"{seed}:base").randbytes(size)


def evolve(image: bytes, seed: str, changed_share: float = CHANGED_SHARE) -> bytes:
    """The next build after ``image``: deterministic in ``seed``; see the module docstring."""
    rng = random.Random(seed)
    blocks = [image[i : i + BLOCK_BYTES] for i in range(0, len(image), BLOCK_BYTES)]
    count = len(blocks)
    touched = rng.sample(range(count), min(count, max(1, round(count * changed_share))))
    rewritten = round(len(touched) * _REWRITTEN)
    for index in touched[:rewritten]:
        blocks[index] = rng.randbytes(len(blocks[index]))
    for index in touched[rewritten:]:
        block = bytearray(blocks[index])
        for _ in range(4):
            offset = rng.randrange(max(1, len(block) - 8))
            block[offset : offset + 8] = rng.randbytes(8)
        blocks[index] = bytes(block[: len(blocks[index])])
    run = max(1, round(count * MOVED_SHARE))
    start = rng.randrange(max(1, count - run))
    section = blocks[start : start + run]
    del blocks[start : start + run]
    at = rng.randrange(len(blocks) + 1)
    blocks[at:at] = section
    at = rng.randrange(len(blocks) + 1)
    blocks[at:at] = [rng.randbytes(BLOCK_BYTES) for _ in range(max(1, round(count * INSERTED_SHARE)))]
    return b"".join(blocks)


def _lineage() -> list[str]:
    return sorted((v for v, _ in FIRMWARE_SPREAD), key=SemVer)


@lru_cache(maxsize=32)
def catalogue_image(version: str, size: int = DEFAULT_IMAGE_BYTES, seed: str = IMAGE_SEED) -> bytes:
    """The simulated image of ``version``: the newest older catalogue version's image, evolved once.

    Versions older than the catalogue's oldest start their own lineage from a base image.
    """
    older = [v for v in _lineage() if SemVer(v) < SemVer(version)]
    parent = catalogue_image(older[-1], size, seed) if older else base_image(size, seed)
    return evolve(parent, f"{seed}:{version}")


class InstalledImages:
    """The image each simulated vehicle has installed, shared by content (vehicles on one build agree).

    A vehicle that never installed anything over the air runs its version's catalogue image; one that
    installed an image keeps the verified bytes it wrote. ``size`` is the catalogue images' size.
    """

    def __init__(self, size: int = DEFAULT_IMAGE_BYTES, seed: str = IMAGE_SEED) -> None:
        self.size = size
        self.seed = seed
        self._by_vin: dict[str, tuple[str, str]] = {}  # vin -> (version, sha256)
        self._by_sha: dict[str, bytes] = {}

    def image(self, vin: str, version: str) -> bytes:
        installed = self._by_vin.get(vin)
        if installed is not None and installed[0] == version:
            return self._by_sha[installed[1]]
        return catalogue_image(version, self.size, self.seed)

    def keep(self, image: bytes) -> str:
        """Hold a verified image (once per content) until it is installed; its sha256."""
        digest = hashlib.sha256(image).hexdigest()
        self._by_sha.setdefault(digest, image)
        return digest

    def install(self, vin: str, version: str, sha256: str) -> None:
        """``vin`` rebooted into the kept image ``sha256`` of ``version``."""
        if sha256 not in self._by_sha:
            raise KeyError(f"image {sha256[:16]}... was never kept")
        self._by_vin[vin] = (version, sha256)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m simulator.firmware_images VERSION OUT")
    Path(sys.argv[2]).write_bytes(catalogue_image(sys.argv[1]))
