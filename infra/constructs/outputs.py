"""The stack's outputs: one CfnOutput per resource an operator (or the CLI) addresses.

Ids are the OUTPUT_* constants, so `DescribeStacks` answers with them as OutputKey; declared on
the stack itself, CDK keeps the id as the logical id (no hash), which the tests assert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput

from lambdas.common.constants import (
    OUTPUT_DATA_BUCKET,
    OUTPUT_DETECTION_DEAD_LETTER_QUEUE,
    OUTPUT_DETECTION_QUEUE,
    OUTPUT_DETECTIONS_TOPIC,
    OUTPUT_INGESTION_DEAD_LETTER_QUEUE,
    OUTPUT_INGESTION_QUEUE,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_MODEL_CONTROL_DEAD_LETTER_QUEUE,
    OUTPUT_MODEL_CONTROL_STATE_MACHINE,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
    OUTPUT_TRAINING_STATE_MACHINE,
    OUTPUT_TRAINING_TRIGGER_DEAD_LETTER_QUEUE,
)

if TYPE_CHECKING:
    from infra.stack import AutopilotStack


def declare_outputs(stack: AutopilotStack) -> list[CfnOutput]:
    storage, notifications = stack.storage, stack.notifications
    ingestion, training, serving, detection = stack.ingestion, stack.training, stack.serving, stack.detection
    values = {
        OUTPUT_DATA_BUCKET: (storage.bucket.bucket_name, "Data bucket: uploads, results, training output"),
        OUTPUT_STATE_TABLE: (storage.state_table.table_name, "State table (production, training, serving)"),
        OUTPUT_SETTINGS_PARAMETER: (storage.settings_parameter.parameter_name, "Settings parameter (SSM)"),
        OUTPUT_LIFECYCLE_TOPIC: (notifications.lifecycle_topic.topic_arn, "Lifecycle events and alarms"),
        OUTPUT_DETECTIONS_TOPIC: (notifications.detections_topic.topic_arn, "Detection results"),
        OUTPUT_TRAINING_STATE_MACHINE: (training.state_machine.state_machine_arn, "Training workflow"),
        OUTPUT_MODEL_CONTROL_STATE_MACHINE: (serving.state_machine.state_machine_arn, "Model start/stop"),
        OUTPUT_INGESTION_QUEUE: (ingestion.queue.queue_url, "Ingestion work queue"),
        OUTPUT_INGESTION_DEAD_LETTER_QUEUE: (ingestion.dlq.queue_url, "Ingestion dead-letter queue"),
        OUTPUT_DETECTION_QUEUE: (detection.queue.queue_url, "Detection work queue"),
        OUTPUT_DETECTION_DEAD_LETTER_QUEUE: (detection.dlq.queue_url, "Detection dead-letter queue"),
        OUTPUT_TRAINING_TRIGGER_DEAD_LETTER_QUEUE: (
            training.dlq.queue_url,
            "Failed training trigger invocations (schedules, rules)",
        ),
        OUTPUT_MODEL_CONTROL_DEAD_LETTER_QUEUE: (serving.dlq.queue_url, "Undelivered model control requests"),
    }
    return [
        CfnOutput(stack, output_id, value=value, description=description)
        for output_id, (value, description) in values.items()
    ]
