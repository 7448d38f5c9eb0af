"""A small CDK stack wired like the application (S3 -> SQS -> Lambda, rules, schedules, a state
machine), used to prove that the local runtime derives its behaviour from CDK definitions."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from tests.local import sample_handlers

HANDLERS = "tests.local.sample_handlers"
_ = sample_handlers


def _function(stack: Stack, construct_id: str, handler: str, environment: dict[str, str]) -> lambda_.Function:
    return lambda_.Function(
        stack,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler=f"{HANDLERS}.{handler}",
        code=lambda_.Code.from_inline("def handle(event, context):\n    return None\n"),
        timeout=Duration.seconds(30),
        environment=environment,
    )


def build_wiring_template(outdir: str, prefix: str = "digits/train/") -> dict[str, Any]:
    app = App(outdir=outdir)
    stack = Stack(app, "WiringTest")
    bucket = s3.Bucket(stack, "Data")
    topic = sns.Topic(stack, "Events")
    dlq = sqs.Queue(stack, "Dlq")
    queue = sqs.Queue(
        stack,
        "Queue",
        visibility_timeout=Duration.seconds(30),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=2),
    )
    bucket.add_event_notification(
        s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue), s3.NotificationKeyFilter(prefix=prefix)
    )
    consumer = _function(
        stack, "Consumer", "sqs_consumer", {"TOPIC_ARN": topic.topic_arn, "BUCKET_NAME": bucket.bucket_name}
    )
    consumer.add_event_source(sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True))
    topic.grant_publish(consumer)

    doubler = _function(stack, "Doubler", "double", {"SAMPLE_MARKER": "from-template"})
    machine = sfn.StateMachine(
        stack,
        "Machine",
        definition_body=sfn.DefinitionBody.from_chainable(
            tasks.LambdaInvoke(stack, "Double", lambda_function=doubler, payload_response_only=True).next(
                tasks.SnsPublish(
                    stack,
                    "Announce",
                    topic=topic,
                    message=sfn.TaskInput.from_json_path_at("States.JsonToString($)"),
                    result_path=sfn.JsonPath.DISCARD,
                )
            )
        ),
    )
    events.Rule(
        stack,
        "OnDemand",
        event_pattern=events.EventPattern(source=["wiring.test"], detail_type=["Double Requested"]),
        targets=[targets.SfnStateMachine(machine, input=events.RuleTargetInput.from_event_path("$.detail"))],
    )
    events.Rule(
        stack,
        "Every",
        schedule=events.Schedule.rate(Duration.minutes(5)),
        targets=[targets.LambdaFunction(doubler, event=events.RuleTargetInput.from_object({"value": 50}))],
    )
    failures = sqs.Queue(stack, "Failures")
    failer = lambda_.Function(
        stack,
        "Failer",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler=f"{HANDLERS}.fail",
        code=lambda_.Code.from_inline("def handle(event, context):\n    return None\n"),
        retry_attempts=0,
        on_failure=destinations.SqsDestination(failures),
    )
    events.Rule(
        stack,
        "FailRequested",
        event_pattern=events.EventPattern(source=["wiring.test"], detail_type=["Fail Requested"]),
        targets=[targets.LambdaFunction(failer)],
    )
    # Found through outputs, as the application stack's resources are.
    CfnOutput(stack, "DataBucketName", value=bucket.bucket_name)
    CfnOutput(stack, "FailuresQueueUrl", value=failures.queue_url)
    assembly = app.synth()
    return dict(assembly.get_stack_by_name("WiringTest").template)
