"""Pure domain: models, rules and state machines. No I/O, no boto3."""
