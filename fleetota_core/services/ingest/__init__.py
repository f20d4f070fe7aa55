"""Ingest: telemetry objects in, validated records, vehicle state, OTA reports and counts out."""
