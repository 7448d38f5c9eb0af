"""The synthesized CloudFormation template of the real CDK app, and a resolver for its intrinsics.

The local runtime provisions everything from this template (the same one `cdk deploy` ships), so
triggers, prefix filters, environment variables and state machines have a single definition.

    template = synth_template({"projects": {...}})
    resolver = Resolver(template, physical_ids={"StorageData6BB23F4E": "my-bucket"}, attributes={...})
    resolver.resolve({"Fn::GetAtt": ["StorageData6BB23F4E", "Arn"]})  # -> "arn:aws:s3:::my-bucket"
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STACK_NAME = "CustomLabelsAutopilot"
_CACHE: dict[str, dict[str, Any]] = {}
_CACHE_LOCK = threading.Lock()


def synth_template(
    context_overrides: dict[str, Any] | None = None, outdir: str | None = None
) -> dict[str, Any]:
    """Synthesizes the CDK app (without cdk-nag) and returns its template; cached per overrides.

    `outdir` defaults to a fresh temporary folder, so concurrent runs never share a cloud assembly.
    Returns a deep copy: callers may modify it freely.
    """
    cache_key = json.dumps(context_overrides or {}, sort_keys=True, default=str)
    with _CACHE_LOCK:
        if cache_key not in _CACHE:
            _CACHE[cache_key] = _synth(context_overrides, outdir)
        return copy.deepcopy(_CACHE[cache_key])


def _synth(context_overrides: dict[str, Any] | None, outdir: str | None) -> dict[str, Any]:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.app_factory import build_app  # imported late: aws_cdk starts a jsii runtime

    target = outdir or tempfile.mkdtemp(prefix="autopilot-cdk-")
    Path(target).mkdir(parents=True, exist_ok=True)
    # Construct paths in the template metadata let the runtime name resources by their place
    # in the app ("Storage/Data") as well as by logical id.
    overrides = {"aws:cdk:enable-path-metadata": True, **(context_overrides or {})}
    app, stack = build_app(outdir=target, context_overrides=overrides, nag=False)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return dict(artifact.template)


def assembly_template(assembly: str | Path, stack_name: str | None = None) -> dict[str, Any]:
    """The template of the stack in an already synthesized cloud assembly (a `cdk.out` folder), as
    `cdk deploy --app cdk.out` reads it: `manifest.json`'s `aws:cloudformation:stack` artifact and
    its `templateFile`. With several stacks, `stack_name` picks one."""
    folder = Path(assembly)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(
            f"--app {folder}: no manifest.json there; pass the cloud assembly folder `cdk synth` "
            "wrote (cdk.out by default)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"--app {folder}: manifest.json is not JSON ({error})") from error
    stacks = {
        str(artifact.get("displayName") or name): artifact
        for name, artifact in (manifest.get("artifacts") or {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    }
    if stack_name is not None:
        stacks = {name: artifact for name, artifact in stacks.items() if name == stack_name}
    if len(stacks) != 1:
        found = ", ".join(sorted(stacks)) or "none"
        raise ValueError(f"--app {folder}: expected one CloudFormation stack in manifest.json, found {found}")
    ((name, artifact),) = stacks.items()
    template_file = folder / str((artifact.get("properties") or {}).get("templateFile", ""))
    if not template_file.is_file():
        raise ValueError(f"--app {folder}: the template of stack {name} ({template_file.name}) is missing")
    template = json.loads(template_file.read_text(encoding="utf-8"))
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"--app {folder}: {template_file.name} is not a CloudFormation template")
    return template


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merges nested dicts (overrides win); used to build context overrides on top of cdk.json."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------------
# Template helpers
# ---------------------------------------------------------------------------------------------


def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(template.get("Resources") or {})


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every resource whose Type is one of `types`, in template order."""
    return {lid: res for lid, res in resources(template).items() if res.get("Type") in types}


def properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict(resources(template)[logical_id].get("Properties") or {})


def construct_path(resource: dict[str, Any]) -> str:
    """The CDK construct path ("CustomLabelsAutopilot/Ingestion/Queue/Resource") or ""."""
    return str((resource.get("Metadata") or {}).get("aws:cdk:path", ""))


def references(value: Any) -> set[str]:
    """Logical ids referenced by Ref / Fn::GetAtt / Fn::Sub anywhere inside `value`."""
    found: set[str] = set()
    for node in _walk(value):
        if "Ref" in node and isinstance(node["Ref"], str) and not node["Ref"].startswith("AWS::"):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            for name in _SUB_VARIABLE.findall(text):
                if not name.startswith("!") and not name.startswith("AWS::"):
                    found.add(name.split(".", 1)[0])
    return found


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class UnresolvedReferenceError(KeyError):
    """A Ref or Fn::GetAtt to a resource the runtime has not provisioned (or cannot emulate)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Resolver:
    """Resolves CloudFormation intrinsic functions against physical ids and attributes.

    physical_ids: logical id -> the value of {"Ref": logical id} (bucket name, queue URL, topic
    ARN, function name, state machine ARN, parameter name ...).
    attributes: (logical id, attribute) -> the value of Fn::GetAtt.
    `fallback(logical_id, attribute_or_None)` may supply values on demand; it returns None when it
    cannot, and an UnresolvedReferenceError is raised.
    """

    def __init__(
        self,
        template: dict[str, Any],
        physical_ids: dict[str, str] | None = None,
        attributes: dict[tuple[str, str], str] | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
        stack_name: str = STACK_NAME,
        fallback: Callable[[str, str | None], Any] | None = None,
    ) -> None:
        self.template = template
        self.physical_ids = physical_ids if physical_ids is not None else {}
        self.attributes = attributes if attributes is not None else {}
        self.account = account
        self.region = region
        self.stack_name = stack_name
        self.fallback = fallback
        self.partition = "aws-cn" if region.startswith("cn-") else "aws"
        self._conditions: dict[str, bool] = {}

    # -- resources ------------------------------------------------------------------------------
    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return resources_of_type(self.template, *types)

    def properties(self, logical_id: str) -> dict[str, Any]:
        return properties(self.template, logical_id)

    def resolved_properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resolve(self.properties(logical_id)))

    # -- pseudo parameters ----------------------------------------------------------------------
    def pseudo(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/"
                f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::NoValue": _NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name not in values:
            raise UnresolvedReferenceError(f"unknown pseudo parameter {name}")
        return values[name]

    # -- resolution -----------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self._resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            handler = self._functions.get(name)
            if handler is not None:
                return handler(self, argument)
        resolved = {}
        for key, item in value.items():
            item_value = self._resolve(item)
            if item_value is not _NO_VALUE:
                resolved[key] = item_value
        return resolved

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.physical_ids:
            return self.physical_ids[name]
        parameters = self.template.get("Parameters") or {}
        if name in parameters:
            if "Default" not in parameters[name]:
                raise UnresolvedReferenceError(f"template parameter {name} has no default")
            return parameters[name]["Default"]
        if self.fallback is not None:
            supplied = self.fallback(name, None)
            if supplied is not None:
                return supplied
        raise UnresolvedReferenceError(f"no physical id for {name} ({self._type_of(name)})")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        if self.fallback is not None:
            supplied = self.fallback(logical_id, attribute)
            if supplied is not None:
                return supplied
        raise UnresolvedReferenceError(
            f"no attribute {attribute} for {logical_id} ({self._type_of(logical_id)})"
        )

    def _type_of(self, logical_id: str) -> str:
        return str(resources(self.template).get(logical_id, {}).get("Type", "not in the template"))

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = (self.template.get("Conditions") or {}).get(name)
            if definition is None:
                raise UnresolvedReferenceError(f"unknown condition {name}")
            self._conditions[name] = bool(self._resolve(definition))
        return self._conditions[name]

    # -- intrinsic functions --------------------------------------------------------------------
    def _fn_ref(self, argument: Any) -> Any:
        return self.ref(str(argument))

    def _fn_get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, attribute = argument.split(".", 1)
        else:
            logical_id, attribute = argument[0], self._resolve(argument[1])
        return self.get_att(logical_id, str(attribute))

    def _fn_join(self, argument: Any) -> str:
        delimiter, items = argument
        parts = self._resolve(items)
        return str(delimiter).join(_text(part) for part in parts)

    def _fn_sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], self._resolve(argument[1] if len(argument) > 1 else {})

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if name.startswith("AWS::"):
                return _text(self.pseudo(name))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return _text(self.get_att(logical_id, attribute))
            return _text(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _fn_select(self, argument: Any) -> Any:
        index, items = argument
        resolved_items = self._resolve(items)
        position = int(self._resolve(index))
        if not 0 <= position < len(resolved_items):
            raise UnresolvedReferenceError(f"Fn::Select index {position} out of range")
        return resolved_items[position]

    def _fn_split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return _text(self._resolve(source)).split(str(delimiter))

    def _fn_if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self._resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, argument: Any) -> bool:
        left, right = (self._resolve(item) for item in argument)
        return bool(left == right)

    def _fn_and(self, argument: Any) -> bool:
        return all(self._resolve(item) for item in argument)

    def _fn_or(self, argument: Any) -> bool:
        return any(self._resolve(item) for item in argument)

    def _fn_not(self, argument: Any) -> bool:
        return not self._resolve(argument[0])

    def _fn_condition(self, argument: Any) -> bool:
        return self.condition(str(argument))

    def _fn_get_azs(self, argument: Any) -> list[str]:
        return [f"{self.region}{zone}" for zone in "abc"]

    def _fn_base64(self, argument: Any) -> str:
        import base64

        return base64.b64encode(_text(self._resolve(argument)).encode()).decode()

    def _fn_to_json_string(self, argument: Any) -> str:
        return json.dumps(self._resolve(argument), separators=(",", ":"))

    def _fn_import_value(self, argument: Any) -> Any:
        raise UnresolvedReferenceError(f"Fn::ImportValue {argument!r} is not available locally")

    _functions: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Join": _fn_join,
        "Fn::Sub": _fn_sub,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Fn::Not": _fn_not,
        "Condition": _fn_condition,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::Base64": _fn_base64,
        "Fn::ToJsonString": _fn_to_json_string,
        "Fn::ImportValue": _fn_import_value,
    }


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def physical_name(logical_id: str, max_length: int = 64, stack_name: str = STACK_NAME) -> str:
    """A CloudFormation-like generated name: "<stack>-<logical id>-<suffix>", deterministic, clipped.

    Deterministic so that a re-provisioned local stack keeps its names and ARNs.
    """
    import hashlib

    suffix = hashlib.sha1(logical_id.encode()).hexdigest()[:8].upper()
    head = f"{stack_name}-{logical_id}"
    return f"{head[: max_length - len(suffix) - 1]}-{suffix}"


def resource_enabled(resolver: Resolver, logical_id: str) -> bool:
    """False when the resource carries a Condition that evaluates to false."""
    condition = resources(resolver.template)[logical_id].get("Condition")
    return True if condition is None else resolver.condition(str(condition))
