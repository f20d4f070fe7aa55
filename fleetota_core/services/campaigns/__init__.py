"""Campaigns: firmware releases, campaign creation and operator actions, the tick, vehicle reports."""
