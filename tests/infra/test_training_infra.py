"""The training construct in the synthesized template: schedules, triggers, state machine, IAM, cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.app_factory import build_app
from lambdas.common.constants import DETAIL_TYPE_TRAIN_REQUESTED, EVENT_SOURCE
from lambdas.common.settings import load_cdk_context, settings_from_context
from lambdas.training import naming

REPO = Path(__file__).resolve().parents[2]
SETTINGS = settings_from_context(load_cdk_context(str(REPO / "cdk.json")))
# Rekognition actions that belong to detection and serving, never to training.
FOREIGN_ACTIONS = {"rekognition:DetectCustomLabels", "rekognition:DetectModerationLabels"}


@pytest.fixture(scope="module")
def synthesized(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], dict[str, Any] | None, Path]:
    """Synthesized once with cdk-nag; the validation report is read even when synth is refused."""
    outdir = tmp_path_factory.mktemp("training-infra")
    app, stack = build_app(outdir=str(outdir), nag=True)
    try:
        assembly = app.synth()
        template = dict(assembly.get_stack_by_name(stack.stack_name).template)
    except RuntimeError:
        template = {}
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return template, report, outdir


@pytest.fixture(scope="module")
def template(synthesized: tuple[dict[str, Any], dict[str, Any] | None, Path]) -> Template:
    raw, _, _ = synthesized
    if not raw:
        pytest.fail("synth was refused by cdk-nag; see test_cdk_nag_has_no_unacknowledged_training_findings")
    return Template.from_json(raw)


def _resources(template: Template, type_: str, prefix: str = "Training") -> dict[str, Any]:
    return {k: v for k, v in template.find_resources(type_).items() if k.startswith(prefix)}


def _statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith(role_prefix):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources_of(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _joined(value: Any) -> str:
    """Fn::Join of literal parts and refs as one string (refs shown as <Ref>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_joined(part) for part in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def test_cdk_nag_has_no_unacknowledged_training_findings(
    synthesized: tuple[dict[str, Any], dict[str, Any] | None, Path],
) -> None:
    # Given the app synthesized with the AwsSolutions checks
    _, report, _ = synthesized
    assert report is not None, "cdk-nag wrote no validation report"
    # Then no finding of the training construct is open, and each acknowledgment gives a reason
    open_findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
        if "/Training/" in construct["constructPath"]
    ]
    assert open_findings == []
    acknowledged = [
        violation
        for plugin in report["pluginReports"]
        for violation in plugin.get("suppressedViolations", [])
        if any("/Training/" in c["constructPath"] for c in violation["violatingConstructs"])
    ]
    assert acknowledged and all(len(violation["reason"]) > 40 for violation in acknowledged)


def test_one_schedule_per_project_invokes_the_trigger_with_the_project(template: Template) -> None:
    schedules = _resources(template, "AWS::Scheduler::Schedule")
    inputs = {}
    for schedule in schedules.values():
        properties = schedule["Properties"]
        target = properties["Target"]
        assert target["Arn"]["Fn::GetAtt"][0].startswith("TrainingTriggerFunction")
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 3
        payload = json.loads(target["Input"])
        inputs[payload["project"]] = properties["ScheduleExpression"]
        assert payload["force"] is False
    assert inputs == {name: project.training_schedule for name, project in SETTINGS.projects.items()}


def test_the_schedule_role_may_only_invoke_the_trigger(template: Template) -> None:
    statements = _statements(template, "TrainingScheduleRole")
    invoke = [s for s in statements if "lambda:InvokeFunction" in _actions(s)]
    assert len(invoke) == 1
    targets = {_joined(r) for r in _resources_of(invoke[0])}
    assert all(target.startswith("<TrainingTriggerFunction") for target in targets)
    assert {a for s in statements for a in _actions(s)} <= {
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }


def test_on_demand_requests_and_ended_executions_have_rules(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": [EVENT_SOURCE], "detail-type": [DETAIL_TYPE_TRAIN_REQUESTED]},
            "Targets": [
                Match.object_like(
                    {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("^TrainingTrigger"), "Arn"]}}
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.states"],
                    "detail": Match.object_like({"status": ["FAILED", "TIMED_OUT", "ABORTED"]}),
                }
            ),
        },
    )


def test_state_machine_rekognition_actions_are_scoped_to_the_project_arns(template: Template) -> None:
    statements = _statements(template, "TrainingStateMachineRole")
    rekognition = [s for s in statements if any(a.startswith("rekognition:") for a in _actions(s))]
    actions = {a for s in rekognition for a in _actions(s)}
    assert actions == {
        "rekognition:CreateProjectVersion",
        "rekognition:DescribeDataset",
        "rekognition:DescribeProjectVersions",
        "rekognition:DistributeDatasetEntries",
        "rekognition:StartProjectVersion",
        "rekognition:StopProjectVersion",
        "rekognition:TagResource",
    }
    assert not actions & FOREIGN_ACTIONS
    expected = {
        f"arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project/{name}/*"
        for name in SETTINGS.projects
    }
    for statement in rekognition:
        assert {_joined(r) for r in _resources_of(statement)} == expected


def test_state_machine_may_publish_to_the_encrypted_topic_and_read_the_project_images(
    template: Template,
) -> None:
    # Given the state machine role (its SnsPublish tasks, and CreateProjectVersion run with it)
    statements = _statements(template, "TrainingStateMachineRole")
    actions = {a for s in statements for a in _actions(s)}
    # Then it may publish to the lifecycle topic and use the key that topic is encrypted with
    assert {"sns:Publish", "kms:Decrypt", "kms:GenerateDataKey*"} <= actions
    kms = next(s for s in statements if "kms:Decrypt" in _actions(s))
    assert all("Key" in _joined(r) for r in _resources_of(kms))
    # And it reads the images only below the configured projects' prefixes
    reads = next(s for s in statements if "s3:GetObject" in _actions(s))
    assert sorted(_joined(r).rsplit("/", 2)[-2] for r in _resources_of(reads)) == sorted(SETTINGS.projects)


def test_no_training_role_has_a_wildcard_rekognition_grant_except_describe_projects(
    template: Template,
) -> None:
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        if not logical_id.startswith("Training"):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = [a for a in _actions(statement) if a.startswith("rekognition:")]
            assert "rekognition:*" not in actions and not set(actions) & FOREIGN_ACTIONS
            if "*" in _resources_of(statement):
                assert set(actions) <= {"rekognition:DescribeProjects"}, (logical_id, actions)


def test_state_machine_is_bounded_logged_traced_and_reads_waits_from_its_input(template: Template) -> None:
    (machine,) = _resources(template, "AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    definition = json.loads(_joined(properties["DefinitionString"]))
    assert definition["TimeoutSeconds"] == naming.execution_timeout_seconds(SETTINGS)
    states = definition["States"]
    waits = {name: state for name, state in states.items() if state["Type"] == "Wait"}
    assert waits and all("SecondsPath" in state and "Seconds" not in state for state in waits.values())
    # Every task either reports its failure or is part of the failure/clean-up path itself.
    uncaught = [
        name
        for name, state in states.items()
        if state["Type"] == "Task"
        and not any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", []))
    ]
    assert uncaught == []
    # The polling loops are bounded by counters from the input.
    bounds = [
        choice["NumericGreaterThanEqualsPath"]
        for state in states.values()
        if state["Type"] == "Choice"
        for choice in state["Choices"]
        if "NumericGreaterThanEqualsPath" in choice
    ]
    assert sorted(bounds) == [
        "$.settings.max_model_polls",
        "$.settings.max_polls",
        "$.settings.max_split_polls",
    ]


def test_create_project_version_sends_name_output_description_tags_and_adapter_config(
    template: Template,
) -> None:
    (machine,) = _resources(template, "AWS::StepFunctions::StateMachine").values()
    states = json.loads(_joined(machine["Properties"]["DefinitionString"]))["States"]
    model = states["CreateProjectVersion"]["Parameters"]
    adapter = states["CreateAdapterVersion"]["Parameters"]
    assert model["VersionName.$"] == "$.version_name"
    assert model["OutputConfig"]["S3Bucket"].startswith("<StorageData")
    assert model["OutputConfig"]["S3KeyPrefix.$"] == "$.output_prefix"
    assert model["VersionDescription.$"] == "$.preflight.description"
    assert model["Tags"]["managed-by"] == EVENT_SOURCE
    assert "FeatureConfig" not in model
    assert adapter["FeatureConfig"] == {
        "ContentModeration": {"ConfidenceThreshold.$": "$.settings.moderation_confidence_threshold"}
    }


def test_adapters_train_from_manifest_assets_or_the_automatic_test_split(template: Template) -> None:
    (machine,) = _resources(template, "AWS::StepFunctions::StateMachine").values()
    states = json.loads(_joined(machine["Properties"]["DefinitionString"]))["States"]
    # The project's feature chooses datasets or manifests.
    assert states["TrainsFromManifests?"]["Choices"] == [
        {"Variable": "$.settings.feature", "StringEquals": "CONTENT_MODERATION", "Next": "AdapterPreflight"}
    ]
    assert states["TrainsFromManifests?"]["Default"] == "DescribeTestDataset"
    train_asset = [{"GroundTruthManifest": {"S3Object.$": "$.adapter.train_manifest"}}]
    with_tests = states["CreateAdapterVersion"]["Parameters"]
    assert with_tests["TrainingData"] == {"Assets": train_asset}
    assert with_tests["TestingData"] == {
        "Assets": [{"GroundTruthManifest": {"S3Object.$": "$.adapter.test_manifest"}}]
    }
    auto = states["CreateAutoSplitAdapterVersion"]["Parameters"]
    assert auto["TrainingData"] == {"Assets": train_asset}
    assert auto["TestingData"] == {"AutoCreate": True}
    assert auto["FeatureConfig"] == {
        "ContentModeration": {"ConfidenceThreshold.$": "$.settings.moderation_confidence_threshold"}
    }
    without = states["CreateAutoSplitAdapterVersionWithoutThreshold"]["Parameters"]
    assert without["TestingData"] == {"AutoCreate": True}
    assert "FeatureConfig" not in without
    # Datasets never reach an adapter request, and manifests never reach a model request.
    assert "TrainingData" not in states["CreateProjectVersion"]["Parameters"]
    for name in ("CreateAdapterVersion", "CreateAutoSplitAdapterVersion"):
        assert states[name]["Next"] == "PublishStarted"


def test_the_trigger_may_read_only_the_adapter_manifests_of_moderation_projects(template: Template) -> None:
    statements = _statements(template, "TrainingTriggerFunction")
    reads = [_joined(r) for s in statements if _actions(s) == ["s3:GetObject"] for r in _resources_of(s)]
    assert len(reads) == 1 and reads[0].startswith("<StorageData")
    assert reads[0].endswith(".Arn>/moderation/adapter-manifests/*")


def test_the_bucket_policy_lets_rekognition_retrain_auto_update_adapters(template: Template) -> None:
    # Developer Guide, "Setting up AutoUpdate permissions" (using-adapters-autoupdate): the
    # rekognition service principal lists the bucket, reads the training data, writes the output.
    (policy,) = template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": Match.string_like_regexp("StorageData")}}}
    ).values()
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    auto = [
        statements[sid]
        for sid in (
            "AllowRekognitionAutoUpdateActions",
            "AllowRekognitionAutoUpdateReads",
            "AllowRekognitionAutoUpdateOutput",
        )
    ]
    assert all(
        s["Principal"] == {"Service": "rekognition.amazonaws.com"} and s["Effect"] == "Allow" for s in auto
    )
    assert _actions(auto[0]) == ["s3:ListBucket"]
    assert _joined(auto[0]["Resource"]).endswith(".Arn>")
    assert sorted(_actions(auto[1])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert [_joined(r).split(">", 1)[1] for r in _resources_of(auto[1])] == ["/moderation/*"]
    assert _actions(auto[2]) == ["s3:PutObject"]
    assert [_joined(r).split(">", 1)[1] for r in _resources_of(auto[2])] == ["/moderation/training-output/*"]
    # Not IAM actions: S3 authorizes HeadObject with s3:GetObject and HeadBucket with s3:ListBucket.
    assert not any(a in ("s3:HeadObject", "s3:HeadBucket") for s in auto for a in _actions(s))


def test_training_functions_and_queue_follow_the_conventions(template: Template) -> None:
    functions = _resources(template, "AWS::Lambda::Function")
    assert len(functions) == 8
    assert all(
        f["Properties"]["Handler"].startswith("lambdas.training.handlers.") for f in functions.values()
    )
    (queue,) = _resources(template, "AWS::SQS::Queue").values()
    assert "KmsMasterKeyId" in queue["Properties"]
    # Failed asynchronous invocations of the trigger and of the execution-end backstop are kept
    on_failure = [
        c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        for c in _resources(template, "AWS::Lambda::EventInvokeConfig").values()
    ]
    assert len(on_failure) == 2 and all("TrainingTriggerDlq" in _joined(d) for d in on_failure)
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        Match.object_like({"Queues": [{"Ref": Match.string_like_regexp("^TrainingTriggerDlq")}]}),
    )
