"""Offline IAM checks on the real synthesized template: what it grants, what removing a grant denies."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from autopilot.local.iam import AccessDenied, Enforcer
from tests.local.iam_support import ACCOUNT, REGION, enforcer_for, logical_id, without_statement

PROJECT_ARN = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/digits/1700000000000"
CREATE_VERSION = "arn:aws:states:::aws-sdk:rekognition:createProjectVersion"


def ref(resolver: Any, lid: str) -> str:
    return str(resolver.resolve({"Ref": lid}))


def arn(resolver: Any, lid: str) -> str:
    return str(resolver.resolve({"Fn::GetAtt": [lid, "Arn"]}))


def sns_client() -> Any:
    return boto3.client(
        "sns", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


# -- extraction ---------------------------------------------------------------------------------
def test_every_role_of_the_template_has_its_statements(template: dict[str, Any]) -> None:
    enforcer, _ = enforcer_for(template)
    roles = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert sorted(enforcer.policies.roles) == sorted(roles)
    handler_role = logical_id(template, "AWS::IAM::Role", "Ingestion/Handler")
    actions = {
        action
        for statement in enforcer.policies.identity(handler_role)
        for action in (
            statement.body["Action"]
            if isinstance(statement.body["Action"], list)
            else [statement.body["Action"]]
        )
    }
    # The role's default policy and AWSLambdaBasicExecutionRole (the known AWS managed policy)
    assert {"sns:Publish", "rekognition:CreateDataset", "logs:PutLogEvents"} <= actions
    assert enforcer.policies.unevaluated_managed == set()


def test_resource_policies_are_keyed_by_the_runtime_physical_arns(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    queue = logical_id(template, "AWS::SQS::Queue", "Ingestion/Queue/")
    bucket = logical_id(template, "AWS::S3::Bucket", "Storage/Data/")
    key = logical_id(template, "AWS::KMS::Key", "Storage/Key/")
    queue_arn = arn(resolver, queue)
    assert queue_arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{ref(resolver, queue).rsplit('/', 1)[1]}"
    assert any("sqs:SendMessage" in s.body["Action"] for s in enforcer.policies.resource_policy(queue_arn))
    # A bucket policy covers the bucket's objects
    assert enforcer.policies.resource_policy(f"{arn(resolver, bucket)}/digits/a.jpg")
    assert enforcer.policies.key_for(queue_arn) == arn(resolver, key)
    assert enforcer.policies.key_policy(arn(resolver, key))
    # The Lambda permissions of the EventBridge rules become statements of the functions
    trigger = logical_id(template, "AWS::Lambda::Function", "Training/TriggerFunction/")
    assert enforcer.policies.resource_policy(arn(resolver, trigger))


# -- a Lambda's SNS publish ---------------------------------------------------------------------
def lifecycle_publish(template: dict[str, Any], enforcer: Enforcer, resolver: Any) -> None:
    role = logical_id(template, "AWS::IAM::Role", "Ingestion/Handler")
    topic = ref(resolver, logical_id(template, "AWS::SNS::Topic", "Notifications/Lifecycle/"))
    client = sns_client()
    enforcer.install(client, enforcer.role_principal(role, "ingestion-handler"))
    with Stubber(client) as stubber:
        stubber.add_response("publish", {"MessageId": "1"}, {"TopicArn": topic, "Message": "hello"})
        client.publish(TopicArn=topic, Message="hello")


def test_the_ingestion_handler_may_publish_lifecycle_events(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    lifecycle_publish(template, enforcer, resolver)
    # The publish and the KMS uses the encrypted topic implies, all allowed
    assert {a for _, a, _ in enforcer.recorder.checked} == {
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert not enforcer.recorder.denied


def test_without_its_sns_grant_the_publish_is_denied_as_sns_denies_it(template: dict[str, Any]) -> None:
    policy = logical_id(template, "AWS::IAM::Policy", "Ingestion/Handler/Role/DefaultPolicy")
    edited = without_statement(template, policy, "PolicyDocument", lambda s: s["Action"] == "sns:Publish")
    enforcer, resolver = enforcer_for(edited)
    with pytest.raises(ClientError) as raised:
        lifecycle_publish(edited, enforcer, resolver)
    error = raised.value.response["Error"]
    assert error["Code"] == "AuthorizationError"
    assert "is not authorized to perform: sns:Publish on resource: arn:aws:sns:" in error["Message"]
    assert error["Message"].endswith("because no identity-based policy allows the sns:Publish action")
    assert ":assumed-role/" in error["Message"]
    assert enforcer.recorder.summary().endswith(", 1 denied")


# -- a state machine's Rekognition call ---------------------------------------------------------
def create_version(template: dict[str, Any], enforcer: Enforcer) -> None:
    role = logical_id(template, "AWS::IAM::Role", "Training/StateMachine/Role")
    principal = enforcer.role_principal(role, "training-execution")
    enforcer.check_task(principal, CREATE_VERSION, {"ProjectArn": PROJECT_ARN, "VersionName": "v1"})


def test_the_training_state_machine_may_create_a_project_version(template: dict[str, Any]) -> None:
    enforcer, _ = enforcer_for(template)
    create_version(template, enforcer)
    assert enforcer.recorder.checked == {
        (
            next(iter(enforcer.recorder.checked))[0],
            "rekognition:CreateProjectVersion",
            PROJECT_ARN,
        )
    }


def test_without_its_rekognition_grant_the_task_is_denied(template: dict[str, Any]) -> None:
    policy = logical_id(template, "AWS::IAM::Policy", "Training/StateMachine/Role/DefaultPolicy")
    edited = without_statement(
        template,
        policy,
        "PolicyDocument",
        lambda s: (
            "rekognition:CreateProjectVersion" in (s["Action"] if isinstance(s["Action"], list) else [])
        ),
    )
    enforcer, _ = enforcer_for(edited)
    with pytest.raises(ClientError) as raised:
        create_version(edited, enforcer)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert (
        f"is not authorized to perform: rekognition:CreateProjectVersion on resource: {PROJECT_ARN}"
        in raised.value.response["Error"]["Message"]
    )


def test_the_state_machine_role_may_not_touch_another_project(template: dict[str, Any]) -> None:
    enforcer, _ = enforcer_for(template)
    role = logical_id(template, "AWS::IAM::Role", "Training/StateMachine/Role")
    other = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/elsewhere/1700000000000"
    with pytest.raises(ClientError):
        enforcer.check_task(enforcer.role_principal(role, "x"), CREATE_VERSION, {"ProjectArn": other})


# -- an S3 -> SQS delivery and the queue policy -------------------------------------------------
def s3_delivery(
    template: dict[str, Any], enforcer: Enforcer, resolver: Any, bucket_arn: str | None = None
) -> Any:
    queue = arn(resolver, logical_id(template, "AWS::SQS::Queue", "Ingestion/Queue/"))
    bucket = bucket_arn or arn(resolver, logical_id(template, "AWS::S3::Bucket", "Storage/Data/"))
    return enforcer.check_delivery("s3.amazonaws.com", "sqs:SendMessage", queue, source_arn=bucket)


def test_the_data_bucket_may_notify_the_ingestion_queue(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    assert s3_delivery(template, enforcer, resolver) is None
    # ... but no other bucket (the queue policy's aws:SourceArn condition)
    denial = s3_delivery(template, enforcer, resolver, bucket_arn="arn:aws:s3:::someone-elses-bucket")
    assert denial is not None and denial.action == "sqs:SendMessage"


def test_without_the_queue_policy_statement_s3_cannot_deliver(template: dict[str, Any]) -> None:
    policy = logical_id(template, "AWS::SQS::QueuePolicy", "Ingestion/Queue/Policy")
    edited = without_statement(template, policy, "PolicyDocument", lambda s: s["Effect"] == "Allow")
    enforcer, resolver = enforcer_for(edited)
    denial = s3_delivery(edited, enforcer, resolver)
    assert denial is not None
    assert denial.action == "sqs:SendMessage"
    assert denial.principal == "s3.amazonaws.com"
    assert str(AccessDenied(denial)).endswith(
        "because no resource-based policy allows the sqs:SendMessage action"
    )


# -- the KMS key statement of an encrypted queue ------------------------------------------------
def test_without_the_key_statement_for_s3_the_encrypted_queue_refuses_delivery(
    template: dict[str, Any],
) -> None:
    key = logical_id(template, "AWS::KMS::Key", "Storage/Key/")
    edited = without_statement(
        template,
        key,
        "KeyPolicy",
        lambda s: s.get("Principal") == {"Service": "s3.amazonaws.com"},
    )
    enforcer, resolver = enforcer_for(edited)
    denial = s3_delivery(edited, enforcer, resolver)
    assert denial is not None
    assert denial.action == "kms:GenerateDataKey"
    assert denial.resource == arn(resolver, key)
    assert denial.reason == "because no resource-based policy allows the kms:GenerateDataKey action"


def test_with_the_key_statement_s3_uses_the_key(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    assert s3_delivery(template, enforcer, resolver) is None
    assert {a for _, a, _ in enforcer.recorder.checked} == {
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }


# -- the other deliveries -----------------------------------------------------------------------
def test_cloudwatch_alarms_may_publish_to_the_lifecycle_topic(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    topic = ref(resolver, logical_id(template, "AWS::SNS::Topic", "Notifications/Lifecycle/"))
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:any-alarm"
    assert enforcer.check_delivery("cloudwatch.amazonaws.com", "sns:Publish", topic, source_arn=alarm) is None
    detections = ref(resolver, logical_id(template, "AWS::SNS::Topic", "Notifications/Detections/"))
    denial = enforcer.check_delivery("cloudwatch.amazonaws.com", "sns:Publish", detections, source_arn=alarm)
    assert denial is not None and denial.action == "sns:Publish"


def test_eventbridge_rules_and_schedules_may_invoke_their_targets(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    rule = logical_id(template, "AWS::Events::Rule", "Training/OnDemand/")
    trigger = arn(resolver, logical_id(template, "AWS::Lambda::Function", "Training/TriggerFunction/"))
    assert (
        enforcer.check_delivery(
            "events.amazonaws.com", "lambda:InvokeFunction", trigger, source_arn=arn(resolver, rule)
        )
        is None
    )
    serving = arn(resolver, logical_id(template, "AWS::Lambda::Function", "Serving/Controller/Function/"))
    assert enforcer.check_delivery(
        "events.amazonaws.com", "lambda:InvokeFunction", serving, source_arn=arn(resolver, rule)
    )
    scheduler_role = logical_id(template, "AWS::IAM::Role", "Serving/SchedulerRole/")
    principal = enforcer.role_principal(scheduler_role, "scheduler")
    enforcer.check_call(principal, "lambda", "Invoke", {"FunctionName": serving})
    with pytest.raises(ClientError):
        enforcer.check_call(principal, "lambda", "Invoke", {"FunctionName": trigger})


def test_the_ingestion_handler_may_create_its_project(template: dict[str, Any]) -> None:
    # CreateProject has no resource type in the Service Authorization Reference: it is
    # authorized on "*", so a grant scoped to project/<name>/* would be refused on AWS.
    enforcer, _ = enforcer_for(template)
    role = logical_id(template, "AWS::IAM::Role", "Ingestion/Handler")
    principal = enforcer.role_principal(role, "ingestion")
    enforcer.check_call(principal, "rekognition", "CreateProject", {"ProjectName": "digits"})
    assert ("rekognition:CreateProject", "*") in {(a, r) for _, a, r in enforcer.recorder.checked}


def test_functions_state_machines_and_schedules_run_as_their_roles(template: dict[str, Any]) -> None:
    enforcer, _ = enforcer_for(template)
    function = logical_id(template, "AWS::Lambda::Function", "Ingestion/Handler/")
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", "Training/StateMachine/")
    schedule = logical_id(template, "AWS::Scheduler::Schedule", "Serving/Tick")
    assigned = enforcer.policies.assigned_roles
    assert assigned[function] == logical_id(template, "AWS::IAM::Role", "Ingestion/Handler")
    assert assigned[machine] == logical_id(template, "AWS::IAM::Role", "Training/StateMachine/Role")
    assert assigned[schedule] == logical_id(template, "AWS::IAM::Role", "Serving/SchedulerRole/")
    principal = enforcer.principal_of(function, "fn")
    assert principal.arn.endswith(f"/{enforcer.policies.role(assigned[function]).name}/fn")


def test_rekognition_writes_training_output_only_with_the_owner_acl(template: dict[str, Any]) -> None:
    enforcer, resolver = enforcer_for(template)
    bucket = arn(resolver, logical_id(template, "AWS::S3::Bucket", "Storage/Data/"))
    output = f"{bucket}/digits/training-output/manifest.json"
    acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
    assert (
        enforcer.check_delivery("rekognition.amazonaws.com", "s3:PutObject", output, extra_context=acl)
        is None
    )
    # Without the ACL the bucket policy's StringEquals on s3:x-amz-acl does not hold
    assert enforcer.check_delivery("rekognition.amazonaws.com", "s3:PutObject", output) is not None
    # Nor outside a training-output prefix
    elsewhere = f"{bucket}/digits/images/a.jpg"
    assert enforcer.check_delivery("rekognition.amazonaws.com", "s3:PutObject", elsewhere, extra_context=acl)
