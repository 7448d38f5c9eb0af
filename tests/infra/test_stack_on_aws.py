"""What only AWS would notice, checked in the synthesized template: alarms can reach the lifecycle
topic, service principals are scoped, Custom Labels gets the S3 actions the guide lists, every
function has its own service name, the outputs the CLI reads exist, and `cdk synth --output` works.

Expectations are the literals of the AWS pages cited in docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.app_factory import REPO_ROOT, STACK_NAME
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("synth")

CLOUDWATCH = "cloudwatch.amazonaws.com"
ALARMS_OF_THE_ACCOUNT = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
# Developer Guide, "Set up SDK permissions" / AmazonRekognitionCustomLabelsFullAccess: the S3 block.
DATASET_BUCKET_ACTIONS = {"s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"}
DATASET_OBJECT_ACTIONS = {"s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectTagging", "s3:GetObjectVersion"}
TRAINING_OUTPUT_ACTIONS = {"s3:PutObject"}
# API reference, S3Object: the caller must be able to read the object (and the version it names).
DETECTION_OBJECT_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion"}


@pytest.fixture(scope="module")
def synthesized(whole_stack: Synthesized) -> tuple[Any, dict[str, Any]]:
    return whole_stack.stack, whole_stack.template


def _lid(stack: Any, construct: Any) -> str:
    return str(stack.get_logical_id(construct.node.default_child))


def render(value: Any) -> str:
    """A template value as text: Ref -> ${Id}, GetAtt -> ${Id.Attr}, Join concatenated."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_grants(template: dict[str, Any], role_lid: str) -> dict[str, set[str]]:
    """resource (rendered) -> actions, over every policy attached to the role."""
    grants: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_lid} not in resource["Properties"].get("Roles", []):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for target in _as_list(statement["Resource"]):
                grants.setdefault(render(target), set()).update(_as_list(statement["Action"]))
    return grants


def _s3_grants(grants: dict[str, set[str]]) -> dict[str, set[str]]:
    s3 = {res: {a for a in actions if a.startswith("s3:")} for res, actions in grants.items()}
    return {res: actions for res, actions in s3.items() if actions}


def _function_role(template: dict[str, Any], handler: str) -> str:
    (function,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    ]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


# -- 1. alarms reach people ------------------------------------------------------------------------
def _topic_statements(template: dict[str, Any], topic_lid: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SNS::TopicPolicy"
        and {"Ref": topic_lid} in resource["Properties"]["Topics"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _assert_scoped_to_the_accounts_alarms(statement: dict[str, Any]) -> None:
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(condition["ArnLike"]["aws:SourceArn"]) == ALARMS_OF_THE_ACCOUNT


def test_cloudwatch_may_publish_alarms_to_the_lifecycle_topic(
    synthesized: tuple[Any, dict[str, Any]],
) -> None:
    stack, template = synthesized
    lifecycle = _lid(stack, stack.notifications.lifecycle_topic)
    # Given every alarm of the stack notifies the lifecycle topic
    alarms = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": lifecycle}]
    # Then the topic policy lets CloudWatch publish, for this account's alarms only
    allowed = [
        s
        for s in _topic_statements(template, lifecycle)
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": CLOUDWATCH}
    ]
    assert len(allowed) == 1
    assert allowed[0]["Action"] == "sns:Publish" and allowed[0]["Resource"] == {"Ref": lifecycle}
    _assert_scoped_to_the_accounts_alarms(allowed[0])
    # and the TLS-only statement is still there
    assert any(s["Effect"] == "Deny" for s in _topic_statements(template, lifecycle))


def test_no_alarm_publishes_to_the_detections_topic(synthesized: tuple[Any, dict[str, Any]]) -> None:
    stack, template = synthesized
    detections = _lid(stack, stack.notifications.detections_topic)
    assert all(s.get("Principal") != {"Service": CLOUDWATCH} for s in _topic_statements(template, detections))


def test_key_statements_for_services_are_scoped(synthesized: tuple[Any, dict[str, Any]]) -> None:
    stack, template = synthesized
    policy = template["Resources"][_lid(stack, stack.storage.key)]["Properties"]["KeyPolicy"]
    services: dict[str, list[dict[str, Any]]] = {}
    for statement in policy["Statement"]:
        for service in _as_list(statement.get("Principal", {}).get("Service", [])):
            services.setdefault(service, []).append(statement)
    # CloudWatch: decrypt and generate data keys for the topic, this account's alarms only
    (cloudwatch,) = services.pop(CLOUDWATCH)
    assert set(_as_list(cloudwatch["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    _assert_scoped_to_the_accounts_alarms(cloudwatch)
    # S3: only for object notifications from the data bucket of this account
    bucket = _lid(stack, stack.storage.bucket)
    s3_statements = services.pop("s3.amazonaws.com")
    assert s3_statements
    for statement in s3_statements:
        assert render(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == "${" + bucket + ".Arn}"
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # EventBridge (rule dead-letter queues): KMS gets no source keys from it, so no condition, and
    # nothing beyond the two actions the queues need
    for statement in services.pop("events.amazonaws.com"):
        assert set(_as_list(statement["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert not services, f"service principals nobody reasoned about: {sorted(services)}"


def test_s3_may_notify_the_work_queues_from_the_data_bucket_only(
    synthesized: tuple[Any, dict[str, Any]],
) -> None:
    stack, template = synthesized
    bucket = "${" + _lid(stack, stack.storage.bucket) + ".Arn}"
    for queue in (stack.ingestion.queue, stack.detection.queue):
        queue_lid = _lid(stack, queue)
        allowed = [
            statement
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::SQS::QueuePolicy"
            and {"Ref": queue_lid} in resource["Properties"]["Queues"]
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Allow"
        ]
        assert [s["Principal"] for s in allowed] == [{"Service": "s3.amazonaws.com"}]
        assert "sqs:SendMessage" in allowed[0]["Action"]
        assert render(allowed[0]["Condition"]["ArnLike"]["aws:SourceArn"]) == bucket
        assert allowed[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


# -- 4. the CDK CLI's output folder ------------------------------------------------------------------
@pytest.mark.slow
def test_cdk_outdir_receives_the_cloud_assembly(tmp_path: Path) -> None:
    # When the CDK CLI runs `cdk synth --output <dir>`, it sets CDK_OUTDIR for the app
    outdir = tmp_path / "assembly"
    env = {**os.environ, "CDK_OUTDIR": str(outdir)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Then the assembly is written there
    assert (outdir / "manifest.json").is_file()
    assert (outdir / f"{STACK_NAME}.template.json").is_file()


# -- 5. stack outputs ------------------------------------------------------------------------------------
def test_outputs_name_every_resource_the_operators_use(synthesized: tuple[Any, dict[str, Any]]) -> None:
    _, template = synthesized
    resources, outputs = template["Resources"], template["Outputs"]
    expected_types = {
        "DataBucketName": "AWS::S3::Bucket",
        "StateTableName": "AWS::DynamoDB::GlobalTable",
        "SettingsParameterName": "AWS::SSM::Parameter",
        "LifecycleTopicArn": "AWS::SNS::Topic",
        "DetectionsTopicArn": "AWS::SNS::Topic",
        "TrainingStateMachineArn": "AWS::StepFunctions::StateMachine",
        "ModelControlStateMachineArn": "AWS::StepFunctions::StateMachine",
        "IngestionQueueUrl": "AWS::SQS::Queue",
        "IngestionDeadLetterQueueUrl": "AWS::SQS::Queue",
        "DetectionQueueUrl": "AWS::SQS::Queue",
        "DetectionDeadLetterQueueUrl": "AWS::SQS::Queue",
        "TrainingTriggerDeadLetterQueueUrl": "AWS::SQS::Queue",
        "ModelControlDeadLetterQueueUrl": "AWS::SQS::Queue",
    }
    assert set(outputs) == set(expected_types)
    referenced: dict[str, str] = {}
    for key, output in outputs.items():
        value = output["Value"]
        lid = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        assert resources[lid]["Type"] == expected_types[key], key
        referenced[lid] = key
    # Every queue of the stack (work queues and dead-letter queues alike) has an output
    queues = {lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert queues <= set(referenced)
    # Both state machines, both topics
    for kind in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
        assert {lid for lid, r in resources.items() if r["Type"] == kind} <= set(referenced)


# -- 6. S3 permissions Custom Labels needs from its caller ------------------------------------------
def test_ingestion_role_has_the_dataset_reads_of_the_guide(synthesized: tuple[Any, dict[str, Any]]) -> None:
    stack, template = synthesized
    bucket = "${" + _lid(stack, stack.storage.bucket) + ".Arn}"
    grants = _s3_grants(_role_grants(template, _function_role(template, "lambdas.ingestion.handler.handle")))
    expected = {bucket: DATASET_BUCKET_ACTIONS}
    expected.update({f"{bucket}/{project}/*": DATASET_OBJECT_ACTIONS for project in stack.settings.projects})
    # CONTENT_MODERATION projects: the flush writes new versions of the adapter manifests, nothing else.
    expected.update(
        {
            f"{bucket}/{project}/adapter-manifests/*": {"s3:PutObject"}
            for project, settings in stack.settings.projects.items()
            if settings.feature == "CONTENT_MODERATION"
        }
    )
    assert grants == expected


def test_training_role_reads_datasets_and_writes_training_output(
    synthesized: tuple[Any, dict[str, Any]],
) -> None:
    # CreateProjectVersion and DistributeDatasetEntries are calls of the training state machine
    stack, template = synthesized
    bucket = "${" + _lid(stack, stack.storage.bucket) + ".Arn}"
    machine = template["Resources"][_lid(stack, stack.training.state_machine)]
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    assert "createProjectVersion" in definition and "distributeDatasetEntries" in definition
    expected = {bucket: DATASET_BUCKET_ACTIONS}
    for project in stack.settings.projects:
        expected[f"{bucket}/{project}/*"] = DATASET_OBJECT_ACTIONS
        expected[f"{bucket}/{project}/training-output/*"] = TRAINING_OUTPUT_ACTIONS
    assert _s3_grants(_role_grants(template, role)) == expected


def test_detection_role_reads_inference_images_only(synthesized: tuple[Any, dict[str, Any]]) -> None:
    stack, template = synthesized
    bucket = "${" + _lid(stack, stack.storage.bucket) + ".Arn}"
    grants = _s3_grants(_role_grants(template, _function_role(template, "lambdas.detection.handler.handle")))
    reads = {res: actions for res, actions in grants.items() if any(a.startswith("s3:Get") for a in actions)}
    assert set(reads) == {f"{bucket}/{project}/inference/*" for project in stack.settings.projects}
    for actions in reads.values():
        assert actions >= DETECTION_OBJECT_ACTIONS
    # and it writes only results and review copies; nothing at bucket level
    for resource in grants:
        assert resource.startswith(f"{bucket}/"), resource
        folder = resource.split("/")[2]
        assert folder in {"inference", "results", "review"}, resource


def test_no_stack_role_touches_another_bucket(synthesized: tuple[Any, dict[str, Any]]) -> None:
    stack, template = synthesized
    bucket = "${" + _lid(stack, stack.storage.bucket) + ".Arn}"
    cdk_notifications_role = {
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and "Handler" in r["Properties"]
        and not str(r["Properties"]["Handler"]).startswith("lambdas.")
    }
    for lid, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role" or lid in cdk_notifications_role:
            continue
        for target in _s3_grants(_role_grants(template, lid)):
            assert target == bucket or target.startswith(f"{bucket}/"), (lid, target)


# -- 7. one Powertools service name per function -----------------------------------------------------
def test_every_function_has_its_own_service_name(synthesized: tuple[Any, dict[str, Any]]) -> None:
    _, template = synthesized
    names = {
        r["Properties"]["Handler"]: r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and str(r["Properties"].get("Handler", "")).startswith("lambdas.")
    }
    assert len(names) >= 10
    assert len(set(names.values())) == len(names), names
    assert names["lambdas.ingestion.handler.handle"] == "ingestion"
    assert names["lambdas.detection.handler.handle"] == "detection"


# -- undeliverable events are kept and reported ------------------------------------------------------
def test_every_rule_target_keeps_undeliverable_events_in_an_alarmed_queue(
    synthesized: tuple[Any, dict[str, Any]],
) -> None:
    _, template = synthesized
    resources = template["Resources"]
    alarmed = {
        dimension["Value"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for dimension in r["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert rules
    for rule in rules:
        for target in rule["Properties"]["Targets"]:
            dead_letters = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            assert dead_letters in alarmed, rule["Properties"].get("Description")
    # and the functions those rules invoke asynchronously fail over to an alarmed queue too
    for config in (r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"):
        destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination["Fn::GetAtt"][0] in alarmed
