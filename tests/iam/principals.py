"""The template's principals (IAM roles and their policies) resolved to the local stack's ARNs.

Also the facts the request mapping needs from the template: which KMS key an alias or an
encrypted topic uses, and which role and log group each Lambda function has.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.infra_template import load_template, resources_of_type
from fleetota_core.local.stack_spec import local_resolver
from tests.iam.policy import PolicyError, Statement

if TYPE_CHECKING:
    from fleetota_core.settings import Settings


@dataclass(frozen=True)
class Principal:
    """One role: its logical ID and every statement of its identity policies, in template order."""

    name: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class TemplateFacts:
    principals: dict[str, Principal]
    key_by_alias: dict[str, str]  # alias/... -> key ARN
    topic_keys: dict[str, str]  # topic ARN -> customer-managed key ARN (publishers need it)
    function_roles: dict[str, str]  # function name -> role logical ID
    function_log_groups: dict[str, str]  # function name -> log group name
    region: str
    account: str


def role_statements(template: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Role logical ID -> [(policy name, raw statement)], inline and attached ``AWS::IAM::Policy``."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for role_id, role in resources_of_type(template, "AWS::IAM::Role").items():
        props = role.get("Properties", {})
        if props.get("ManagedPolicyArns"):
            raise PolicyError(f"{role_id}: managed policies cannot be evaluated from the template")
        out[role_id] = [
            (policy["PolicyName"], statement)
            for policy in props.get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        props = policy["Properties"]
        for role_ref in props.get("Roles", []):
            out[role_ref["Ref"]].extend(
                (props["PolicyName"], s) for s in props["PolicyDocument"]["Statement"]
            )
    return out


def without_statement(template: dict[str, Any], role_id: str, sid: str) -> dict[str, Any]:
    """A copy of ``template`` with one statement of one role removed (wherever it is attached)."""
    changed = copy.deepcopy(template)
    removed = 0
    for policy_doc in _role_documents(changed, role_id):
        before = len(policy_doc["Statement"])
        policy_doc["Statement"] = [s for s in policy_doc["Statement"] if s.get("Sid") != sid]
        removed += before - len(policy_doc["Statement"])
    if removed != 1:
        raise KeyError(f"{role_id} has {removed} statements with Sid {sid}")
    return changed


def _role_documents(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    docs = [p["PolicyDocument"] for p in resources[role_id]["Properties"].get("Policies", [])]
    docs += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r.get("Type") == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"].get("Roles", [])
    ]
    return docs


def template_facts(settings: Settings, template: dict[str, Any] | None = None) -> TemplateFacts:
    """Every principal and key fact of ``template`` (default ``infra/template.yaml``), resolved locally."""
    template = template if template is not None else load_template()
    r, _ = local_resolver(settings, template)
    principals = {}
    for role_id, statements in role_statements(template).items():
        parsed = tuple(Statement.parse(r.resolve(raw), i) for i, (_, raw) in enumerate(statements))
        sids = [s.sid for s in parsed]
        if any(sid.startswith("#") for sid in sids) or len(set(sids)) != len(sids):
            raise PolicyError(f"{role_id}: every statement needs a unique Sid, got {sids}")
        principals[role_id] = Principal(role_id, parsed)
    keys = {lid: r.get_att(lid, "Arn") for lid in resources_of_type(template, "AWS::KMS::Key")}
    key_by_alias = {
        r.resolve(a["Properties"]["AliasName"]): keys[a["Properties"]["TargetKeyId"]["Ref"]]
        for a in resources_of_type(template, "AWS::KMS::Alias").values()
    }
    topic_keys = {}
    for lid, topic in resources_of_type(template, "AWS::SNS::Topic").items():
        key = topic.get("Properties", {}).get("KmsMasterKeyId")
        if isinstance(key, dict) and "Ref" in key:
            topic_keys[r.ref(lid)] = keys[key["Ref"]]
        elif isinstance(key, str) and not key.startswith("alias/aws/"):
            raise PolicyError(f"{lid}: KmsMasterKeyId {key!r} is neither a template key nor AWS-managed")
    function_roles, log_groups = {}, {}
    for function in resources_of_type(template, "AWS::Lambda::Function").values():
        props = function["Properties"]
        name = r.resolve(props["FunctionName"])
        function_roles[name] = props["Role"]["Fn::GetAtt"][0]
        log_groups[name] = r.resolve(props["LoggingConfig"]["LogGroup"])
    return TemplateFacts(
        principals=principals,
        key_by_alias=key_by_alias,
        topic_keys=topic_keys,
        function_roles=function_roles,
        function_log_groups=log_groups,
        region=settings.region,
        account=r.ref("AWS::AccountId"),
    )
