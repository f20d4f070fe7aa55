"""Use cases: ingest a batch, advance campaigns, publish a release, create a campaign, deploy a stack."""
