"""State machines created from a template's AWS::StepFunctions::StateMachine, with resolved refs."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from autopilot.local.stepfunctions import create_state_machines, definition_of, run_execution
from autopilot.local.template import Resolver


def _template() -> dict[str, Any]:
    # A definition as CDK emits it: DefinitionString is an Fn::Join with a Ref to a topic.
    return {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
                    "DefinitionString": {
                        "Fn::Join": [
                            "",
                            [
                                '{"StartAt":"Publish","States":{"Publish":{"Type":"Task","Resource":"arn:',
                                {"Ref": "AWS::Partition"},
                                ':states:::sns:publish","Parameters":{"TopicArn":"',
                                {"Ref": "Topic"},
                                '","Message.$":"$.text"},"ResultPath":null,"Next":"Done"},'
                                '"Done":{"Type":"Pass","Result":{"ok":true},"End":true}}}',
                            ],
                        ]
                    },
                },
            },
        }
    }


def test_definition_is_resolved_created_and_executed() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        # Given a real topic and a resolver that knows it
        sns = boto3.client("sns", region_name="us-east-1")
        topic_arn = sns.create_topic(Name="sample")["TopicArn"]
        resolver = Resolver(_template(), physical_ids={"Topic": topic_arn})
        resolver.attributes[("MachineRole", "Arn")] = "arn:aws:iam::123456789012:role/machine"
        assert json.dumps(definition_of(resolver, "Machine")).count(topic_arn) == 1
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        # When the template's state machines are created and one is executed
        arns = create_state_machines(sfn, resolver)
        result = run_execution(sfn, arns["Machine"], {"text": "hello"}, timeout_s=60)
    # Then it ran the resolved definition, and the resolver knows the machine's ARN
    assert result.succeeded and result.output == {"ok": True}
    assert result.states_entered() == ["Publish", "Done"]
    assert resolver.resolve({"Ref": "Machine"}) == arns["Machine"]
