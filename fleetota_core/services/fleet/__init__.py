"""The fleet read model's upkeep: the healing sweep of the fleet snapshot."""
