"""The fleet simulator: realistic vehicles that send telemetry batches like a real fleet."""
