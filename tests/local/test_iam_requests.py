"""What each SDK call asks IAM for (Service Authorization Reference), and the botocore hook."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from autopilot.local.iam import Enforcer, task_operation
from autopilot.local.iam.policies import Policies
from autopilot.local.iam.requests import checks_for, known_action
from tests.local.iam_support import enforcer_for, logical_id

ACCOUNT = "111122223333"
REGION = "eu-west-1"
BUCKET = "arn:aws:s3:::photos"
PROJECT = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/digits/1700000000000"
DATASET = f"{PROJECT.rsplit('/', 1)[0]}/dataset/train/1700000000001"
VERSION = f"{PROJECT.rsplit('/', 1)[0]}/version/v1/1700000000002"


def policies(**kwargs: Any) -> Policies:
    return Policies(account=ACCOUNT, region=REGION, partition="aws", **kwargs)


def pairs(
    prefix: str, operation: str, params: dict[str, Any], given: Policies | None = None
) -> list[tuple[str, str]]:
    return [(c.action, c.resource) for c in checks_for(prefix, operation, params, given or policies())]


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("HeadObject", {"Bucket": "photos", "Key": "a/b.jpg"}, [("s3:GetObject", f"{BUCKET}/a/b.jpg")]),
        (
            "GetObject",
            {"Bucket": "photos", "Key": "k", "VersionId": "3"},
            [("s3:GetObjectVersion", f"{BUCKET}/k")],
        ),
        ("ListObjectsV2", {"Bucket": "photos", "Prefix": "a/"}, [("s3:ListBucket", BUCKET)]),
        ("HeadBucket", {"Bucket": "photos"}, [("s3:ListBucket", BUCKET)]),
        (
            "CopyObject",
            {"Bucket": "photos", "Key": "to", "CopySource": "other/from"},
            [("s3:PutObject", f"{BUCKET}/to"), ("s3:GetObject", "arn:aws:s3:::other/from")],
        ),
        (
            "DeleteObjects",
            {"Bucket": "photos", "Delete": {"Objects": [{"Key": "x"}, {"Key": "y"}]}},
            [("s3:DeleteObject", f"{BUCKET}/x"), ("s3:DeleteObject", f"{BUCKET}/y")],
        ),
        ("PutBucketNotificationConfiguration", {"Bucket": "photos"}, [("s3:PutBucketNotification", BUCKET)]),
    ],
)
def test_s3_actions_and_arns(operation: str, params: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert pairs("s3", operation, params) == expected


def test_s3_acl_reaches_the_context() -> None:
    (check,) = checks_for(
        "s3", "PutObject", {"Bucket": "b", "Key": "k", "ACL": "bucket-owner-full-control"}, policies()
    )
    assert check.context["s3:x-amz-acl"] == "bucket-owner-full-control"
    assert check.context["aws:SecureTransport"] == "true"


def test_sqs_queue_arn_comes_from_the_url() -> None:
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/inbox"
    assert pairs("sqs", "SendMessageBatch", {"QueueUrl": url, "Entries": []}) == [
        ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox")
    ]
    assert pairs("sqs", "GetQueueUrl", {"QueueName": "inbox"}) == [
        ("sqs:GetQueueUrl", f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox")
    ]


def test_an_encrypted_queue_implies_kms_uses() -> None:
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:inbox"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/inbox"
    given = policies(encryption_keys={queue: key})
    assert pairs("sqs", "SendMessage", {"QueueUrl": url}, given) == [
        ("sqs:SendMessage", queue),
        ("kms:GenerateDataKey", key),
        ("kms:Decrypt", key),
    ]
    assert pairs("sqs", "ReceiveMessage", {"QueueUrl": url}, given) == [
        ("sqs:ReceiveMessage", queue),
        ("kms:Decrypt", key),
    ]


def test_dynamodb_index_and_leading_keys() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/state"
    given = policies(partition_keys={table: "pk"})
    (query,) = checks_for(
        "dynamodb",
        "Query",
        {
            "TableName": "state",
            "IndexName": "by-time",
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":pk": {"S": "PROJECT#digits"}, ":prefix": {"S": "x"}},
        },
        given,
    )
    assert (query.action, query.resource) == ("dynamodb:Query", f"{table}/index/by-time")
    assert query.context["dynamodb:LeadingKeys"] == ["PROJECT#digits"]
    (batch,) = checks_for(
        "dynamodb",
        "BatchWriteItem",
        {
            "RequestItems": {
                "state": [
                    {"PutRequest": {"Item": {"pk": {"S": "PROJECT#a"}, "sk": {"S": "1"}}}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "PROJECT#b"}, "sk": {"S": "2"}}}},
                ]
            }
        },
        given,
    )
    assert batch.context["dynamodb:LeadingKeys"] == ["PROJECT#a", "PROJECT#b"]


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        # Resource types per action: Service Authorization Reference, Amazon Rekognition
        ("DescribeProjects", {}, [("rekognition:DescribeProjects", "*")]),
        ("CreateProject", {"ProjectName": "digits"}, [("rekognition:CreateProject", "*")]),
        (
            "CreateDataset",
            {"ProjectArn": PROJECT, "DatasetType": "TRAIN"},
            [("rekognition:CreateDataset", PROJECT)],
        ),
        (
            "DescribeProjectVersions",
            {"ProjectArn": PROJECT},
            [("rekognition:DescribeProjectVersions", PROJECT)],
        ),
        ("ListProjectPolicies", {"ProjectArn": PROJECT}, [("rekognition:ListProjectPolicies", PROJECT)]),
        (
            "StartProjectVersion",
            {"ProjectVersionArn": VERSION, "MinInferenceUnits": 1},
            [("rekognition:StartProjectVersion", VERSION)],
        ),
        (
            "DetectCustomLabels",
            {"ProjectVersionArn": VERSION, "Image": {}},
            [("rekognition:DetectCustomLabels", VERSION)],
        ),
        ("DetectModerationLabels", {"Image": {}}, [("rekognition:DetectModerationLabels", "*")]),
        ("DescribeDataset", {"DatasetArn": DATASET}, [("rekognition:DescribeDataset", DATASET)]),
        (
            "DistributeDatasetEntries",
            {"Datasets": [{"Arn": DATASET}]},
            [("rekognition:DistributeDatasetEntries", DATASET)],
        ),
    ],
)
def test_rekognition_resources(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert pairs("rekognition", operation, params) == expected


def test_tags_on_create_also_need_tag_resource() -> None:
    assert pairs("rekognition", "CreateProjectVersion", {"ProjectArn": PROJECT, "Tags": {"a": "b"}}) == [
        ("rekognition:CreateProjectVersion", PROJECT),
        ("rekognition:TagResource", PROJECT),
    ]


def test_other_services() -> None:
    assert pairs("ssm", "GetParameter", {"Name": "/autopilot/config"}) == [
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/autopilot/config")
    ]
    assert pairs("lambda", "Invoke", {"FunctionName": "fn", "Qualifier": "live"}) == [
        ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn:live")
    ]
    assert pairs("events", "PutEvents", {"Entries": [{"Detail": "{}"}]}) == [
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default")
    ]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:training"
    assert pairs("states", "StartExecution", {"stateMachineArn": machine}) == [
        ("states:StartExecution", machine)
    ]
    assert pairs("cloudwatch", "PutMetricData", {"Namespace": "x"}) == [("cloudwatch:PutMetricData", "*")]


def test_action_names_exist_in_the_reference() -> None:
    for action in (
        "s3:GetObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "lambda:InvokeFunction",
        "rekognition:ListProjectPolicies",
    ):
        assert known_action(action), action
    assert not known_action("s3:HeadObject")  # why HeadObject is mapped to s3:GetObject


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            "arn:aws:states:::aws-sdk:rekognition:createProjectVersion",
            ("rekognition", "CreateProjectVersion"),
        ),
        ("arn:aws:states:::sns:publish", ("sns", "Publish")),
        ("arn:aws:states:::lambda:invoke", ("lambda", "Invoke")),
        ("arn:aws:states:::dynamodb:putItem", ("dynamodb", "PutItem")),
        ("arn:aws:states:::states:startExecution.sync:2", ("states", "StartExecution")),
        ("arn:aws:lambda:us-east-1:1:function:fn", ("lambda", "Invoke")),
    ],
)
def test_task_resources(resource: str, expected: tuple[str, str]) -> None:
    assert task_operation(resource) == expected


def test_leading_keys_of_the_shipped_ingestion_role(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    role = logical_id(template, "AWS::IAM::Role", "Ingestion/Handler")
    table = logical_id(template, "AWS::DynamoDB::GlobalTable", "Storage/State/")
    principal = enforcer.role_principal(role, "ingestion")
    query = {
        "TableName": str(resolver.resolve({"Ref": table})),
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": {"S": "PROJECT#digits"}},
    }
    enforcer.check_call(principal, "dynamodb", "Query", query)
    other = {**query, "ExpressionAttributeValues": {":pk": {"S": "PROJECT#someone-else"}}}
    with pytest.raises(ClientError) as raised:
        enforcer.check_call(principal, "dynamodb", "Query", other)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:Query" in raised.value.response["Error"]["Message"]


def test_a_session_hook_checks_calls_made_while_acting_as_a_principal(template: dict[str, Any]) -> None:
    enforcer: Enforcer
    enforcer, resolver = enforcer_for(template)
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    enforcer.install(session)
    client = session.client("sqs")
    detection = logical_id(template, "AWS::IAM::Role", "Detection/Handler")
    queue_url = str(resolver.resolve({"Ref": logical_id(template, "AWS::SQS::Queue", "Ingestion/Queue/")}))
    with Stubber(client) as stubber:
        stubber.add_response("get_queue_attributes", {"Attributes": {}}, {"QueueUrl": queue_url})
        client.get_queue_attributes(QueueUrl=queue_url)  # the runtime's own call: not checked
        assert not enforcer.recorder.checked
        with (
            enforcer.acting_as(enforcer.role_principal(detection, "detection")),
            pytest.raises(ClientError) as raised,
        ):
            client.send_message(QueueUrl=queue_url, MessageBody="x")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert "sqs:SendMessage" in raised.value.response["Error"]["Message"]
