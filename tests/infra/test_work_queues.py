"""Every work queue of the app dead-letters a message after 5 receives (docs/ingestion.md,
docs/serving.md: "dead-letter queue after 5 receives"), and its DLQ has an alarm."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.local.template import synth_template

pytestmark = pytest.mark.xdist_group("synth")

DOCUMENTED_RECEIVES = 5


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(synth_template()["Resources"])


def _path(resource: dict[str, Any]) -> str:
    return str(resource.get("Metadata", {}).get("aws:cdk:path", ""))


def test_each_queue_a_function_consumes_dead_letters_after_5_receives(resources: dict[str, Any]) -> None:
    consumed = {
        mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        for mapping in resources.values()
        if mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    # The two work queues of the app: S3 uploads to ingestion, and images to detection
    assert sorted(_path(resources[q]) for q in consumed) == [
        "CustomLabelsAutopilot/Detection/Queue/Resource",
        "CustomLabelsAutopilot/Ingestion/Queue/Resource",
    ]
    for queue in consumed:
        redrive = resources[queue]["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == DOCUMENTED_RECEIVES, queue
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert resources[dlq]["Type"] == "AWS::SQS::Queue"
        alarms = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}
            in r["Properties"].get("Dimensions", [])
        ]
        assert len(alarms) == 1, f"one alarm on the dead-letter queue of {queue}"
