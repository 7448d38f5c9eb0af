"""The policies of a synthesized template, resolved to the physical ARNs the local runtime assigns.

    policies = extract_policies(template, resolver.resolve, account="111122223333", region="us-east-1")
    policies.identity("IngestionHandlerRoleE2267DD5")   # the role's statements
    policies.resource_policy("arn:aws:sqs:us-east-1:111122223333:queue-name")
    policies.key_for("arn:aws:sqs:...")                  # the KMS key ARN that encrypts a queue/topic

`resolve` turns intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, pseudo parameters) into values;
the runtime passes `Resolver.resolve` with its own physical ids, so the ARNs in the policies are
the ARNs its calls use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autopilot.local.iam.evaluator import Statement

Resolve = Callable[[Any], Any]

# AWS managed policies the stack attaches, with the statements AWS publishes for them (AWS Managed
# Policy Reference Guide, "AWSLambdaBasicExecutionRole", version 1). Any other AWS managed policy
# is listed in `Policies.unevaluated_managed` and grants nothing locally.
AWS_MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}


@dataclass
class Role:
    logical_id: str
    arn: str  # arn:aws:iam::111:role/Name
    name: str
    statements: list[Statement] = field(default_factory=list)

    def session_arn(self, session: str) -> str:
        """The principal of a session of this role: arn:aws:sts::111:assumed-role/Name/session."""
        partition, account = self.arn.split(":")[1], self.arn.split(":")[4]
        return f"arn:{partition}:sts::{account}:assumed-role/{self.name}/{session}"


@dataclass
class Policies:
    account: str
    region: str
    partition: str
    roles: dict[str, Role] = field(default_factory=dict)  # by logical id
    # resource ARN -> statements of its resource-based policy (queue, topic, bucket, function)
    resource_policies: dict[str, list[Statement]] = field(default_factory=dict)
    key_policies: dict[str, list[Statement]] = field(default_factory=dict)  # key ARN -> statements
    encryption_keys: dict[str, str] = field(default_factory=dict)  # queue/topic ARN -> key ARN
    partition_keys: dict[str, str] = field(default_factory=dict)  # table ARN -> partition key name
    unevaluated_managed: set[str] = field(default_factory=set)
    # logical id of a function, state machine, schedule or rule -> logical id of the role it runs as
    assigned_roles: dict[str, str] = field(default_factory=dict)

    def role(self, logical_id: str) -> Role:
        if logical_id not in self.roles:
            raise KeyError(f"no AWS::IAM::Role {logical_id} in the template; roles: {sorted(self.roles)}")
        return self.roles[logical_id]

    def role_by_arn(self, arn: str) -> Role:
        for role in self.roles.values():
            if role.arn == arn:
                return role
        raise KeyError(f"no role with ARN {arn} in the template")

    def identity(self, role_logical_id: str) -> list[Statement]:
        return list(self.role(role_logical_id).statements)

    def resource_policy(self, resource_arn: str) -> list[Statement]:
        """The resource policy that governs `resource_arn` (a bucket's covers its objects)."""
        if resource_arn in self.resource_policies:
            return list(self.resource_policies[resource_arn])
        if resource_arn.startswith("arn:") and ":s3:::" in resource_arn:
            bucket = resource_arn.split(":::", 1)[1].split("/", 1)[0]
            prefix = resource_arn.split(":::", 1)[0]
            return list(self.resource_policies.get(f"{prefix}:::{bucket}", []))
        function = _unqualified_function(resource_arn)
        return list(self.resource_policies.get(function, []))

    def key_policy(self, key_arn: str) -> list[Statement] | None:
        return list(self.key_policies[key_arn]) if key_arn in self.key_policies else None

    def key_for(self, resource_arn: str) -> str | None:
        return self.encryption_keys.get(resource_arn)

    def partition_key(self, table_arn: str) -> str | None:
        return self.partition_keys.get(table_arn)

    def key_arn(self, key_id: str) -> str:
        """A key ARN from a key id, key ARN or alias name (aliases are not resolved to keys)."""
        if key_id.startswith("arn:"):
            return key_id
        if key_id.startswith("alias/"):
            return f"arn:{self.partition}:kms:{self.region}:{self.account}:{key_id}"
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key_id}"


def extract_policies(
    template: dict[str, Any], resolve: Resolve, account: str, region: str, partition: str = "aws"
) -> Policies:
    """Every identity-based and resource-based policy of `template`, with physical ARNs."""
    resources: dict[str, dict[str, Any]] = dict(template.get("Resources") or {})
    policies = Policies(account=account, region=region, partition=partition)

    def of_type(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (lid, dict(r.get("Properties") or {})) for lid, r in resources.items() if r.get("Type") == kind
        ]

    for lid, props in of_type("AWS::IAM::Role"):
        arn = str(resolve({"Fn::GetAtt": [lid, "Arn"]}))
        role = Role(logical_id=lid, arn=arn, name=arn.rsplit("/", 1)[-1])
        for inline in props.get("Policies") or []:
            name = str(resolve(inline.get("PolicyName", "inline")))
            role.statements += _statements(resolve(inline["PolicyDocument"]), f"role {lid} policy {name}")
        for managed in props.get("ManagedPolicyArns") or []:
            role.statements += _managed(managed, resources, resolve, policies, lid)
        policies.roles[lid] = role

    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for lid, props in of_type(kind):
            if kind == "AWS::IAM::ManagedPolicy" and not props.get("Roles"):
                continue  # attached through ManagedPolicyArns of a role instead
            statements = _statements(resolve(props["PolicyDocument"]), f"policy {lid}")
            for reference in props.get("Roles") or []:
                role_name = str(resolve(reference))
                for role in policies.roles.values():
                    if role.name == role_name:
                        role.statements += statements

    policy_targets = {
        "AWS::SQS::QueuePolicy": ("Queues", lambda ref: queue_arn(str(resolve(ref)), partition, region)),
        "AWS::SNS::TopicPolicy": ("Topics", lambda ref: str(resolve(ref))),
        "AWS::S3::BucketPolicy": ("Bucket", lambda ref: f"arn:{partition}:s3:::{resolve(ref)}"),
    }
    for kind, (member, to_arn) in policy_targets.items():
        for lid, props in of_type(kind):
            statements = _statements(resolve(props["PolicyDocument"]), f"{kind} {lid}")
            targets = props[member] if isinstance(props[member], list) else [props[member]]
            for target in targets:
                policies.resource_policies.setdefault(to_arn(target), []).extend(statements)

    for lid, props in of_type("AWS::Lambda::Permission"):
        function = function_arn(str(resolve(props["FunctionName"])), partition, region, account)
        statement: dict[str, Any] = {
            "Effect": "Allow",
            "Action": resolve(props["Action"]),
            "Resource": function,
            "Principal": _permission_principal(str(resolve(props["Principal"]))),
        }
        condition: dict[str, dict[str, Any]] = {}
        if "SourceArn" in props:
            condition.setdefault("ArnLike", {})["aws:SourceArn"] = resolve(props["SourceArn"])
        if "SourceAccount" in props:
            condition.setdefault("StringEquals", {})["aws:SourceAccount"] = resolve(props["SourceAccount"])
        if condition:
            statement["Condition"] = condition
        policies.resource_policies.setdefault(function, []).append(
            Statement(statement, f"AWS::Lambda::Permission {lid}")
        )

    for lid, props in of_type("AWS::KMS::Key"):
        key_arn = str(resolve({"Fn::GetAtt": [lid, "Arn"]}))
        policies.key_policies[key_arn] = _statements(resolve(props["KeyPolicy"]), f"key policy of {lid}")

    for kind, to_arn in (
        ("AWS::SQS::Queue", lambda lid: str(resolve({"Fn::GetAtt": [lid, "Arn"]}))),
        ("AWS::SNS::Topic", lambda lid: str(resolve({"Ref": lid}))),
    ):
        for lid, props in of_type(kind):
            if props.get("KmsMasterKeyId"):
                key = policies.key_arn(str(resolve(props["KmsMasterKeyId"])))
                if key.endswith(":alias/aws/sqs") or key.endswith(":alias/aws/sns"):
                    continue  # AWS managed keys: their policies allow the account's use via the service
                policies.encryption_keys[to_arn(lid)] = key

    for lid, resource in resources.items():
        role_id = _assigned_role(resource)
        if role_id in policies.roles:
            policies.assigned_roles[lid] = role_id

    for kind in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        for lid, props in of_type(kind):
            hash_key = next(
                (k["AttributeName"] for k in props.get("KeySchema") or [] if k.get("KeyType") == "HASH"), None
            )
            if hash_key:
                policies.partition_keys[str(resolve({"Fn::GetAtt": [lid, "Arn"]}))] = str(hash_key)
    return policies


def _assigned_role(resource: dict[str, Any]) -> str | None:
    """The role logical id a function (Role), state machine (RoleArn) or schedule (Target.RoleArn)
    names through Fn::GetAtt; rule targets with a RoleArn name theirs per target (first one kept)."""
    props = dict(resource.get("Properties") or {})
    candidates = [props.get("Role"), props.get("RoleArn"), (props.get("Target") or {}).get("RoleArn")]
    candidates += [t.get("RoleArn") for t in props.get("Targets") or [] if isinstance(t, dict)]
    for candidate in candidates:
        if isinstance(candidate, dict) and "Fn::GetAtt" in candidate:
            target = candidate["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    return None


def _statements(document: Any, source: str) -> list[Statement]:
    body = document.get("Statement", []) if isinstance(document, dict) else []
    return [Statement(dict(s), source) for s in (body if isinstance(body, list) else [body])]


def _managed(
    reference: Any,
    resources: dict[str, dict[str, Any]],
    resolve: Resolve,
    policies: Policies,
    role_id: str,
) -> list[Statement]:
    if isinstance(reference, dict) and "Ref" in reference and reference["Ref"] in resources:
        target = resources[str(reference["Ref"])]
        if target.get("Type") == "AWS::IAM::ManagedPolicy":
            document = resolve((target.get("Properties") or {})["PolicyDocument"])
            return _statements(document, f"managed policy {reference['Ref']}")
    arn = str(resolve(reference))
    name = arn.split(":policy/", 1)[-1] if ":iam::aws:policy/" in arn else ""
    if name in AWS_MANAGED_POLICIES:
        return [Statement(s, f"AWS managed policy {name}") for s in AWS_MANAGED_POLICIES[name]]
    policies.unevaluated_managed.add(f"{arn} (role {role_id})")
    return []


def _permission_principal(principal: str) -> Any:
    if principal == "*":
        return "*"
    if principal.endswith(".amazonaws.com") or principal.endswith(".amazonaws.com.cn"):
        return {"Service": principal}
    return {"AWS": principal}


def queue_arn(queue_url: str, partition: str, region: str) -> str:
    """arn:aws:sqs:<region>:<account>:<name> from https://sqs.<region>.amazonaws.com/<account>/<name>."""
    if queue_url.startswith("arn:"):
        return queue_url
    account, name = queue_url.rstrip("/").split("/")[-2:]
    host = queue_url.split("://", 1)[-1].split("/", 1)[0]
    host_parts = host.split(".")
    url_region = host_parts[1] if len(host_parts) > 3 and host_parts[0] == "sqs" else region
    return f"arn:{partition}:sqs:{url_region}:{account}:{name}"


def function_arn(name_or_arn: str, partition: str, region: str, account: str) -> str:
    if name_or_arn.startswith("arn:"):
        return _unqualified_function(name_or_arn)
    return f"arn:{partition}:lambda:{region}:{account}:function:{name_or_arn.split(':', 1)[0]}"


def _unqualified_function(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) > 7 and parts[2] == "lambda" and parts[5] == "function":
        return ":".join(parts[:7])
    return arn
