"""Least privilege, proven: an IAM policy evaluator, the template's principals and a call recorder.

moto does not enforce IAM (and checks resource ARNs for S3 only), so the integration test records
every AWS call each principal makes and evaluates it here against ``infra/template.yaml``.
"""
