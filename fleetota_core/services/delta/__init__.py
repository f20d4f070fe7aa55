"""Delta artifacts for firmware releases: making them (publishers) and applying them (vehicles).

Kept out of ``services/campaigns`` on purpose: the update manager only *chooses* a delta for a
vehicle (``domain/delta.py``); no Lambda handler imports this package or ``zstandard``.
"""
