"""The only layer that imports boto3."""
