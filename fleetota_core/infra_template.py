"""Read ``infra/template.yaml``, the single source of truth for FleetOTA's AWS resources.

The unit tests check the template through :func:`load_template`, and the local stack provisions
from the values it returns, so a table key, queue setting or alarm threshold is written down once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fleetota_core.errors import ConfigurationError

# Found relative to this file: the template ships with the repository, not with the package.
DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"

# Short tags whose long form is not simply "Fn::<Tag>".
_LONG_FORM_NAMES = {"Ref": "Ref", "Condition": "Condition"}


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also reads CloudFormation's short-form intrinsic functions."""


# CloudFormation treats unquoted dates as strings; PyYAML would turn them into `datetime.date`.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _LONG_FORM_NAMES.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        # `!GetAtt Resource.Attribute` is the only short form whose scalar differs from its long form.
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected node for !{tag_suffix}", node.start_mark
        )
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML text, turning short tags into long-form dicts.

    Parameters
    ----------
    text
        The template source.

    Returns
    -------
    dict
        The template, with ``!Ref X`` as ``{"Ref": "X"}``, ``!GetAtt A.B`` as
        ``{"Fn::GetAtt": ["A", "B"]}`` and every other ``!Tag`` as ``{"Fn::Tag": ...}``.
    """
    # A SafeLoader subclass: no arbitrary Python objects.
    template = yaml.load(text, Loader=_CfnLoader)
    if not isinstance(template, dict):
        raise ConfigurationError("a CloudFormation template must be a YAML mapping")
    return template


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Load a CloudFormation YAML template, by default the repository's ``infra/template.yaml``.

    Parameters
    ----------
    path
        The template file; ``None`` means :data:`DEFAULT_TEMPLATE_PATH`.

    Returns
    -------
    dict
        The template in long form, as :func:`parse_template` returns it.

    Raises
    ------
    ConfigurationError
        If the file is missing (e.g. an installed package without the repository) or not a mapping.
    """
    template_path = path or DEFAULT_TEMPLATE_PATH
    try:
        text = template_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"CloudFormation template not found at {template_path}; run from a FleetOTA checkout"
        ) from exc
    return parse_template(text)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type (e.g. ``AWS::DynamoDB::Table``), keyed by logical ID."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }
