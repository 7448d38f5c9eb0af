"""The local runtime: the synthesized stack provisioned in moto and wired to the real handlers.

Everything is derived from the CloudFormation template that `cdk deploy` ships:

- S3 buckets, SQS queues (redrive policies), SNS topics and subscriptions, DynamoDB tables and SSM
  parameters are created in moto with the template's properties;
- bucket notifications (Custom::S3BucketNotifications, prefix/suffix filters included) are put on
  the buckets, so moto delivers S3 -> SQS / SNS itself; Lambda destinations are fed through a
  hidden "tap" queue with the same filter;
- Lambda functions are registered with the LocalLambdaService (Handler, resolved Environment,
  Timeout), event source mappings are polled here (BatchSize, ReportBatchItemFailures,
  visibility timeout scaled by the clock, redrive to the DLQ by moto);
- state machines are created from their resolved DefinitionString;
- EventBridge rules with event patterns get a tap queue as an extra target in moto, and this
  runtime delivers the matched events to the rule's real targets (moto does not deliver to
  Lambda or Step Functions); schedule rules and EventBridge Scheduler schedules fire on an
  accelerated clock with their target Input.

The runtime never names a construct of the application: a new queue, function, rule or schedule
in the stack is picked up without a change here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import boto3
from botocore.config import Config

from autopilot.local import s3_events
from autopilot.local.lambda_service import FunctionNotFoundError, LocalLambdaService
from autopilot.local.schedules import SimulatedClock, is_due, scheduled_event
from autopilot.local.sdk_error_names import use_aws_error_names
from autopilot.local.stepfunctions import create_state_machines
from autopilot.local.template import Resolver, construct_path, physical_name, resource_enabled
from autopilot.local.wiring import EventSourceMapping, Published, Schedule, Tap, Target, TimelineEntry

logger = logging.getLogger(__name__)

NOTIFICATIONS_TYPE = "Custom::S3BucketNotifications"
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous invocation twice


# ---------------------------------------------------------------------------------------------
# The runtime
# ---------------------------------------------------------------------------------------------


class LocalRuntime:
    """Provision with `provision()` (inside an active moto), then `start()` the pump or call `pump()`."""

    def __init__(
        self,
        template: dict[str, Any],
        lambda_service: LocalLambdaService,
        *,
        clock: SimulatedClock | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
        pump_interval_s: float = 0.2,
        on_timeline: Callable[[TimelineEntry], None] | None = None,
    ) -> None:
        self.template = template
        self.lambdas = lambda_service
        self.clock = clock or SimulatedClock()
        self.account = account
        self.region = region
        self.pump_interval_s = pump_interval_s
        self.on_timeline = on_timeline
        self.resolver = Resolver(template, account=account, region=region, fallback=self._fallback)
        self.mappings: list[EventSourceMapping] = []
        self.taps: list[Tap] = []
        self.schedules: list[Schedule] = []
        self.state_machines: dict[str, str] = {}
        self.functions: dict[str, str] = {}  # logical id -> function name
        self.published: list[Published] = []
        self.timeline: list[TimelineEntry] = []
        self.errors: list[str] = []
        self.executions: dict[str, str] = {}  # execution ARN -> last seen status
        self._queue_visibility: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pump_lock = threading.Lock()
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"})
        self.lambdas.listeners.append(self._on_invocation)
        self.lambda_url: str | None = None
        self.moto_url: str | None = None

    # -- clients --------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, config=self._config)  # type: ignore[call-overload]

    # -- physical ids ---------------------------------------------------------------------------
    def _fallback(self, logical_id: str, attribute: str | None) -> Any:
        """Names for resources the runtime does not emulate (roles, keys, log groups, alarms ...)."""
        resource = self.template.get("Resources", {}).get(logical_id)
        if resource is None:
            return None
        name = physical_name(logical_id)
        service = str(resource.get("Type", "AWS::Local::Resource")).split("::")[1].lower()
        if attribute is None:
            return name
        if attribute == "Arn":
            if service == "iam":
                return f"arn:aws:iam::{self.account}:role/{name}"
            if service == "kms":
                return f"arn:aws:kms:{self.region}:{self.account}:key/{uuid.uuid5(uuid.NAMESPACE_DNS, name)}"
            return f"arn:aws:{service}:{self.region}:{self.account}:{name}"
        return f"{name}.{attribute}"

    def _assign_ids(self) -> None:
        r = self.resolver
        for lid, res in self.template.get("Resources", {}).items():
            kind = res.get("Type")
            props = res.get("Properties") or {}
            if kind == "AWS::S3::Bucket":
                name = str(props.get("BucketName") or physical_name(lid, 63).lower())
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:s3:::{name}"
                r.attributes[(lid, "DomainName")] = f"{name}.s3.amazonaws.com"
                r.attributes[(lid, "RegionalDomainName")] = f"{name}.s3.{self.region}.amazonaws.com"
            elif kind == "AWS::SQS::Queue":
                fifo = bool(props.get("FifoQueue"))
                name = str(props.get("QueueName") or physical_name(lid, 75) + (".fifo" if fifo else ""))
                r.physical_ids[lid] = f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
                r.attributes[(lid, "Arn")] = f"arn:aws:sqs:{self.region}:{self.account}:{name}"
                r.attributes[(lid, "QueueName")] = name
                r.attributes[(lid, "QueueUrl")] = r.physical_ids[lid]
            elif kind == "AWS::SNS::Topic":
                fifo = bool(props.get("FifoTopic"))
                name = str(props.get("TopicName") or physical_name(lid, 250) + (".fifo" if fifo else ""))
                arn = f"arn:aws:sns:{self.region}:{self.account}:{name}"
                r.physical_ids[lid] = arn
                r.attributes[(lid, "TopicArn")] = arn
                r.attributes[(lid, "TopicName")] = name
            elif kind in TABLE_TYPES:
                name = str(props.get("TableName") or physical_name(lid, 255))
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
                r.attributes[(lid, "StreamArn")] = f"{r.attributes[(lid, 'Arn')]}/stream/local"
            elif kind == "AWS::SSM::Parameter":
                name = str(props.get("Name") or f"CFN-{physical_name(lid, 200)}")
                r.physical_ids[lid] = name
                r.attributes[(lid, "Type")] = str(props.get("Type", "String"))
                r.attributes[(lid, "Value")] = ""  # filled after resolution below
            elif kind == "AWS::Lambda::Function":
                name = str(props.get("FunctionName") or physical_name(lid, 64))
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
            elif kind == "AWS::Events::EventBus":
                name = str(props.get("Name") or physical_name(lid, 64))
                r.physical_ids[lid] = name
                r.attributes[(lid, "Name")] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:events:{self.region}:{self.account}:event-bus/{name}"
            elif kind == "AWS::Events::Rule":
                name = str(props.get("Name") or physical_name(lid, 64))
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:events:{self.region}:{self.account}:rule/{name}"
            elif kind == "AWS::Scheduler::Schedule":
                name = str(props.get("Name") or physical_name(lid, 64))
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = (
                    f"arn:aws:scheduler:{self.region}:{self.account}:schedule/default/{name}"
                )
            elif kind == "AWS::IAM::Role":
                name = physical_name(lid, 64)
                r.physical_ids[lid] = name
                r.attributes[(lid, "Arn")] = f"arn:aws:iam::{self.account}:role/{name}"
                r.attributes[(lid, "RoleId")] = f"AROA{name[-8:]}"
        from autopilot.local.stepfunctions import assign_state_machine_ids

        assign_state_machine_ids(r)

    def _enabled(self, logical_id: str) -> bool:
        return resource_enabled(self.resolver, logical_id)

    def _of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {
            lid: res for lid, res in self.resolver.resources_of_type(*types).items() if self._enabled(lid)
        }

    # -- provisioning ---------------------------------------------------------------------------
    def provision(self) -> None:
        """Creates every supported resource in the active moto backend and registers the functions."""
        self._assign_ids()
        self._create_topics()
        self._create_queues()
        self._create_buckets()
        self._create_tables()
        self._create_parameters()
        self._register_functions()
        self.state_machines = create_state_machines(self.client("stepfunctions"), self.resolver)
        self._create_subscriptions()
        self._create_mappings()
        self._create_bucket_notifications()
        self._create_event_buses_and_rules()
        self._create_schedules()
        self._observe_topics()
        self.note("runtime", self.describe_wiring())

    def describe_wiring(self) -> str:
        return (
            f"provisioned {len(self.functions)} functions, {len(self.mappings)} queue triggers, "
            f"{len(self.state_machines)} state machines, {len(self.schedules)} schedules, "
            f"{sum(1 for t in self.taps if t.kind == 'rule')} event rules"
        )

    def _create_topics(self) -> None:
        sns = self.client("sns")
        for lid, res in self._of_type("AWS::SNS::Topic").items():
            props = self.resolver.resolve(res.get("Properties") or {})
            name = self.resolver.attributes[(lid, "TopicName")]
            attributes = {}
            if props.get("FifoTopic"):
                attributes["FifoTopic"] = "true"
            if props.get("ContentBasedDeduplication"):
                attributes["ContentBasedDeduplication"] = "true"
            if props.get("DisplayName"):
                attributes["DisplayName"] = str(props["DisplayName"])
            arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
            self.resolver.physical_ids[lid] = arn
            for subscription in props.get("Subscription") or []:
                self._subscribe(lid, arn, subscription.get("Protocol"), subscription.get("Endpoint"), {})

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        queues = self._of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy needs its target to exist.
        ordered = sorted(
            queues, key=lambda lid: 1 if (queues[lid].get("Properties") or {}).get("RedrivePolicy") else 0
        )
        for lid in ordered:
            props = self.resolver.resolved_properties(lid)
            attributes: dict[str, str] = {}
            for key in (
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "MaximumMessageSize",
                "ReceiveMessageWaitTimeSeconds",
            ):
                if key in props:
                    attributes[key] = str(props[key])
            if props.get("FifoQueue"):
                attributes["FifoQueue"] = "true"
            if props.get("ContentBasedDeduplication"):
                attributes["ContentBasedDeduplication"] = "true"
            if props.get("RedrivePolicy"):
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            url = sqs.create_queue(
                QueueName=self.resolver.attributes[(lid, "QueueName")], Attributes=attributes
            )["QueueUrl"]
            self.resolver.physical_ids[lid] = url
            self.resolver.attributes[(lid, "QueueUrl")] = url
            self._queue_visibility[self.resolver.attributes[(lid, "Arn")]] = int(
                props.get("VisibilityTimeout", 30)
            )

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        for lid, res in self._of_type("AWS::S3::Bucket").items():
            name = self.resolver.physical_ids[lid]
            kwargs: dict[str, Any] = {"Bucket": name}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**kwargs)
            versioning = ((res.get("Properties") or {}).get("VersioningConfiguration") or {}).get("Status")
            if versioning:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})

    def _create_tables(self) -> None:
        dynamodb = self.client("dynamodb")
        for lid in self._of_type(*TABLE_TYPES):
            props = self.resolver.resolved_properties(lid)
            kwargs: dict[str, Any] = {
                "TableName": self.resolver.physical_ids[lid],
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            indexes = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
                for index in props.get("GlobalSecondaryIndexes") or []
            ]
            if indexes:
                kwargs["GlobalSecondaryIndexes"] = indexes
            dynamodb.create_table(**kwargs)
            ttl = props.get("TimeToLiveSpecification") or {}
            if ttl.get("Enabled") and ttl.get("AttributeName"):
                dynamodb.update_time_to_live(
                    TableName=kwargs["TableName"],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )

    def _create_parameters(self) -> None:
        ssm = self.client("ssm")
        for lid in self._of_type("AWS::SSM::Parameter"):
            props = self.resolver.resolved_properties(lid)
            value = props["Value"] if isinstance(props["Value"], str) else json.dumps(props["Value"])
            ssm.put_parameter(
                Name=self.resolver.physical_ids[lid],
                Value=value,
                Type=str(props.get("Type", "String")),
                Overwrite=True,
            )
            self.resolver.attributes[(lid, "Value")] = value

    def _register_functions(self) -> None:
        for lid in self._of_type("AWS::Lambda::Function"):
            props = self.resolver.resolved_properties(lid)
            name = self.resolver.physical_ids[lid]
            handler = props.get("Handler")
            if not handler or not _importable(str(handler)):
                continue  # CDK's own providers (custom resources, index.handler) are emulated, not run
            environment = (props.get("Environment") or {}).get("Variables") or {}
            self.lambdas.register(
                name,
                handler=str(handler),
                environment={key: str(value) for key, value in environment.items()},
                timeout_s=float(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                aliases=(lid,),
            )
            self.functions[lid] = name

    def _function_dead_letter(self, function_name: str) -> str | None:
        for lid, name in self.functions.items():
            if name == function_name:
                dlc = self.resolver.resolved_properties(lid).get("DeadLetterConfig") or {}
                return dlc.get("TargetArn")
        return None

    def _create_subscriptions(self) -> None:
        for lid in self._of_type("AWS::SNS::Subscription"):
            props = self.resolver.resolved_properties(lid)
            attributes = {}
            if props.get("FilterPolicy"):
                attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
            if props.get("FilterPolicyScope"):
                attributes["FilterPolicyScope"] = str(props["FilterPolicyScope"])
            if props.get("RawMessageDelivery"):
                attributes["RawMessageDelivery"] = "true"
            if props.get("RedrivePolicy"):
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            self._subscribe(
                lid, str(props["TopicArn"]), props.get("Protocol"), props.get("Endpoint"), attributes
            )

    def _subscribe(
        self, lid: str, topic_arn: str, protocol: Any, endpoint: Any, attributes: dict[str, str]
    ) -> None:
        sns = self.client("sns")
        if protocol == "lambda":
            tap = self._tap_queue("sns-lambda", lid, [Target(arn=str(endpoint))])
            attributes = {key: value for key, value in attributes.items() if key != "RawMessageDelivery"}
            tap.subscription_arn = sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=self._queue_arn(tap.queue_url),
                Attributes=attributes,
            )["SubscriptionArn"]
            return
        if protocol in ("sqs", "email", "email-json", "sms", "http", "https"):
            sns.subscribe(
                TopicArn=topic_arn, Protocol=str(protocol), Endpoint=str(endpoint), Attributes=attributes
            )

    def _tap_queue(self, kind: str, source: str, targets: list[Target]) -> Tap:
        sqs = self.client("sqs")
        name = f"local-tap-{kind}-{len(self.taps)}-{physical_name(source, 40)}"[:80]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        tap = Tap(kind=kind, queue_url=url, source_logical_id=source, targets=targets)
        self.taps.append(tap)
        return tap

    def _queue_arn(self, url: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{url.rstrip('/').rsplit('/', 1)[1]}"

    def _queue_url(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[1]
        for lid, _res in self._of_type("AWS::SQS::Queue").items():
            if self.resolver.attributes.get((lid, "QueueName")) == name:
                return str(self.resolver.physical_ids[lid])
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def _create_mappings(self) -> None:
        for lid in self._of_type("AWS::Lambda::EventSourceMapping"):
            props = self.resolver.resolved_properties(lid)
            source = str(props.get("EventSourceArn", ""))
            if not source.startswith("arn:aws:sqs:"):
                self.note("runtime", f"event source mapping {lid}: only SQS sources run locally ({source})")
                continue
            function = self.lambdas.lookup(str(props["FunctionName"])).name
            self.mappings.append(
                EventSourceMapping(
                    logical_id=lid,
                    function_name=function,
                    queue_arn=source,
                    queue_url=self._queue_url(source),
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    visibility_timeout_s=self._queue_visibility.get(source, 30),
                    enabled=bool(props.get("Enabled", True)),
                    batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )

    def _create_bucket_notifications(self) -> None:
        s3_events.install()  # versionId, sequencer and eTag in the records, as AWS sends them
        s3 = self.client("s3")
        for lid in self._of_type(NOTIFICATIONS_TYPE):
            props = self.resolver.resolved_properties(lid)
            bucket = str(props["BucketName"])
            config = props.get("NotificationConfiguration") or {}
            queue_configs = list(config.get("QueueConfigurations") or [])
            for lambda_config in config.get("LambdaFunctionConfigurations") or []:
                tap = self._tap_queue("s3-lambda", lid, [Target(arn=str(lambda_config["LambdaFunctionArn"]))])
                queue_configs.append(
                    {
                        "QueueArn": self._queue_arn(tap.queue_url),
                        "Events": lambda_config["Events"],
                        **({"Filter": lambda_config["Filter"]} if "Filter" in lambda_config else {}),
                    }
                )
            notification: dict[str, Any] = {}
            if queue_configs:
                notification["QueueConfigurations"] = queue_configs
            if config.get("TopicConfigurations"):
                notification["TopicConfigurations"] = config["TopicConfigurations"]
            if "EventBridgeConfiguration" in config:
                notification["EventBridgeConfiguration"] = {}
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification)

    def _targets(self, raw_targets: list[dict[str, Any]]) -> list[Target]:
        targets = []
        for raw in raw_targets:
            dead_letter = (raw.get("DeadLetterConfig") or {}).get("Arn")
            targets.append(
                Target(
                    arn=str(raw["Arn"]),
                    input=raw.get("Input"),
                    input_path=raw.get("InputPath"),
                    input_transformer=raw.get("InputTransformer"),
                    dead_letter_arn=dead_letter,
                )
            )
        return targets

    def _create_event_buses_and_rules(self) -> None:
        events = self.client("events")
        for lid in self._of_type("AWS::Events::EventBus"):
            events.create_event_bus(Name=self.resolver.physical_ids[lid])
        for lid in self._of_type("AWS::Events::Rule"):
            props = self.resolver.resolved_properties(lid)
            targets = self._targets(props.get("Targets") or [])
            enabled = props.get("State", "ENABLED") == "ENABLED"
            if props.get("ScheduleExpression"):
                self.schedules.append(Schedule(lid, str(props["ScheduleExpression"]), targets, enabled))
                continue
            if not props.get("EventPattern"):
                continue
            bus = str(props.get("EventBusName") or "default")
            bus_name = bus.rsplit("/", 1)[-1]
            name = self.resolver.physical_ids[lid]
            events.put_rule(
                Name=name,
                EventPattern=json.dumps(props["EventPattern"]),
                EventBusName=bus_name,
                State="ENABLED" if enabled else "DISABLED",
            )
            tap = self._tap_queue("rule", lid, targets)
            events.put_targets(
                Rule=name,
                EventBusName=bus_name,
                Targets=[{"Id": "local-tap", "Arn": self._queue_arn(tap.queue_url)}],
            )

    def _create_schedules(self) -> None:
        for lid in self._of_type("AWS::Scheduler::Schedule"):
            props = self.resolver.resolved_properties(lid)
            target = props.get("Target") or {}
            dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
            self.schedules.append(
                Schedule(
                    lid,
                    str(props["ScheduleExpression"]),
                    [
                        Target(
                            arn=str(target.get("Arn")), input=target.get("Input"), dead_letter_arn=dead_letter
                        )
                    ],
                    enabled=props.get("State", "ENABLED") == "ENABLED",
                )
            )

    def _observe_topics(self) -> None:
        sns = self.client("sns")
        for lid in self._of_type("AWS::SNS::Topic"):
            tap = self._tap_queue("observer", lid, [])
            sns.subscribe(
                TopicArn=self.resolver.physical_ids[lid],
                Protocol="sqs",
                Endpoint=self._queue_arn(tap.queue_url),
            )

    # -- lookups for the demo, the CLI and the tests ---------------------------------------------
    def outputs(self) -> dict[str, str]:
        """The template's Outputs, resolved against the provisioned resources (as DescribeStacks)."""
        resolved: dict[str, str] = {}
        for key, output in (self.template.get("Outputs") or {}).items():
            if "Condition" in output and not self.resolver.condition(output["Condition"]):
                continue
            resolved[key] = str(self.resolver.resolve(output["Value"]))
        return resolved

    def output(self, key: str) -> str:
        """One output's value; KeyError naming the output when the template does not declare it."""
        values = self.outputs()
        if key not in values:
            raise KeyError(f"the stack declares no output {key!r} (outputs: {', '.join(sorted(values))})")
        return values[key]

    def find(self, resource_type: str, path_contains: str = "") -> list[str]:
        """Logical ids of `resource_type` whose construct path contains `path_contains` (for the
        functions, schedules and test stacks that have no output)."""
        wanted = path_contains.lower()
        return [
            lid for lid, res in self._of_type(resource_type).items() if wanted in construct_path(res).lower()
        ]

    def physical(self, logical_id: str) -> str:
        return str(self.resolver.physical_ids[logical_id])

    def function_names(self, path_contains: str = "") -> list[str]:
        return [
            self.functions[lid]
            for lid in self.find("AWS::Lambda::Function", path_contains)
            if lid in self.functions
        ]

    # -- the pump -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-runtime-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.pump()
            except Exception as error:  # the pump must survive any one bad delivery; it is recorded
                logger.exception("local runtime pump failed")
                self.errors.append(f"pump: {type(error).__name__}: {error}")
                worked = 0
            if not worked:
                self._stop.wait(self.pump_interval_s)

    def pump(self) -> int:
        """One round: queue triggers, taps, due schedules, execution status. Returns the work done."""
        with self._pump_lock:
            done = 0
            for mapping in self.mappings:
                if mapping.enabled:
                    done += self._poll_mapping(mapping)
            for tap in list(self.taps):
                done += self._poll_tap(tap)
            done += self._fire_due_schedules()
            self._watch_executions()
            return done

    def run_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
        """Pumps (or waits for the background pump) until `predicate()` or the timeout; bounded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self._thread is None:
                if not self.pump():
                    time.sleep(poll_s)
            else:
                time.sleep(poll_s)
        return predicate()

    # -- SQS event source mappings --------------------------------------------------------------
    def _receive(self, queue_url: str, maximum: int) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        while len(messages) < maximum:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, maximum - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def _batch_ready(self, mapping: EventSourceMapping) -> bool:
        """MaximumBatchingWindowInSeconds: wait (real seconds) for a full batch, as the poller does."""
        if mapping.batching_window_s <= 0 or mapping.batch_size <= 1:
            return True
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=mapping.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        if waiting == 0:
            mapping.pending_since = None
            return False
        if waiting >= mapping.batch_size:
            return True
        now = time.monotonic()
        if mapping.pending_since is None:
            mapping.pending_since = now
        return now - mapping.pending_since >= mapping.batching_window_s

    def _poll_mapping(self, mapping: EventSourceMapping) -> int:
        if not self._batch_ready(mapping):
            return 0
        mapping.pending_since = None
        messages = self._receive(mapping.queue_url, mapping.batch_size)
        if not messages:
            return 0
        event = {"Records": [self._sqs_record(message, mapping.queue_arn) for message in messages]}
        record = self.lambdas.invoke(mapping.function_name, event)
        failed: set[str] = set()
        if record.error is not None:
            failed = {message["MessageId"] for message in messages}
        elif mapping.report_batch_item_failures and isinstance(record.result, dict):
            failures = record.result.get("batchItemFailures") or []
            failed = {str(item.get("itemIdentifier")) for item in failures}
            if any(not item.get("itemIdentifier") for item in failures):
                failed = {message["MessageId"] for message in messages}  # malformed report: retry all
        sqs = self.client("sqs")
        retry_after = max(0, round(self.clock.real_seconds(mapping.visibility_timeout_s)))
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=mapping.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=retry_after,
                )
            else:
                sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _sqs_record(self, message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = {
            key: str(value)
            for key, value in (message.get("Attributes") or {}).items()
            if key
            in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "MessageGroupId",
                "MessageDeduplicationId",
                "SequenceNumber",
            )
        }
        attributes.setdefault("ApproximateReceiveCount", "1")
        attributes.setdefault("SentTimestamp", str(int(time.time() * 1000)))
        attributes.setdefault("SenderId", self.account)
        attributes.setdefault("ApproximateFirstReceiveTimestamp", attributes["SentTimestamp"])
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.region,
        }

    # -- taps -----------------------------------------------------------------------------------
    def _poll_tap(self, tap: Tap) -> int:
        messages = self._receive(tap.queue_url, 10)
        sqs = self.client("sqs")
        for message in messages:
            sqs.delete_message(QueueUrl=tap.queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                body = json.loads(message["Body"])
            except ValueError:
                self.errors.append(f"tap {tap.kind}: unreadable message {message['Body'][:200]!r}")
                continue
            if tap.kind == "observer":
                self._observe(tap, body)
            elif tap.kind == "s3-lambda":
                if body.get("Event") == "s3:TestEvent":
                    continue
                for target in tap.targets:
                    self._invoke_async(target.arn, body)
            elif tap.kind == "sns-lambda":
                for target in tap.targets:
                    self._invoke_async(target.arn, self._sns_event(body, tap.subscription_arn))
            elif tap.kind == "rule":
                self.note("events", f"{body.get('detail-type', 'event')} matched {tap.source_logical_id}")
                for target in tap.targets:
                    self._deliver(target, body)
        return len(messages)

    def _observe(self, tap: Tap, body: dict[str, Any]) -> None:
        attributes = {
            name: str(value.get("Value")) for name, value in (body.get("MessageAttributes") or {}).items()
        }
        published = Published(
            topic_logical_id=tap.source_logical_id,
            topic_arn=str(body.get("TopicArn", "")),
            subject=body.get("Subject"),
            message=str(body.get("Message", "")),
            attributes=attributes,
            received_at=time.monotonic(),
        )
        self.published.append(published)
        self.note("sns", _describe_publication(published))

    def _sns_event(self, envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
        sns = {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope.get("MessageId"),
            "TopicArn": envelope.get("TopicArn"),
            "Subject": envelope.get("Subject"),
            "Message": envelope.get("Message"),
            "Timestamp": envelope.get("Timestamp"),
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", "local"),
            "SigningCertUrl": envelope.get("SigningCertURL", ""),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
            "MessageAttributes": envelope.get("MessageAttributes") or {},
        }
        return {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": subscription_arn,
                    "Sns": sns,
                }
            ]
        }

    # -- delivery to targets --------------------------------------------------------------------
    def _deliver(self, target: Target, event: Any) -> None:
        payload = _target_input(target, event)
        arn = target.arn
        try:
            if arn.startswith("arn:aws:lambda:"):
                self._invoke_async(arn, payload, target.dead_letter_arn)
            elif arn.startswith("arn:aws:states:"):
                started = self.client("stepfunctions").start_execution(
                    stateMachineArn=arn, input=json.dumps(payload)
                )
                self.executions[started["executionArn"]] = "RUNNING"
                self.note("stepfunctions", f"started {arn.rsplit(':', 1)[1]}")
            elif arn.startswith("arn:aws:sns:"):
                self.client("sns").publish(TopicArn=arn, Message=json.dumps(payload))
            elif arn.startswith("arn:aws:sqs:"):
                self.client("sqs").send_message(
                    QueueUrl=self._queue_url(arn), MessageBody=json.dumps(payload)
                )
            elif arn.startswith("arn:aws:events:"):
                bus = arn.rsplit("/", 1)[-1]
                entry = payload if isinstance(payload, dict) else {}
                self.client("events").put_events(
                    Entries=[
                        {
                            "Source": str(entry.get("source", "local")),
                            "DetailType": str(entry.get("detail-type", "local")),
                            "Detail": json.dumps(entry.get("detail", {})),
                            "EventBusName": bus,
                        }
                    ]
                )
            elif arn.startswith("arn:aws:scheduler:::aws-sdk:"):
                self._universal_target(arn, payload)
            else:
                self.errors.append(f"target {arn}: not supported by the local runtime")
        except Exception as error:  # a failed delivery is recorded and shown; the pump goes on
            self.errors.append(f"delivery to {arn} failed: {type(error).__name__}: {error}")
            self.note("runtime", f"delivery to {arn} failed: {error}")

    def _universal_target(self, arn: str, payload: Any) -> None:
        service, action = arn.split("aws-sdk:", 1)[1].split(":", 1)
        operation = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        client_name = {"sfn": "stepfunctions"}.get(service, service)
        result = getattr(self.client(client_name), operation)(**(payload or {}))
        if isinstance(result, dict) and "executionArn" in result:
            self.executions[result["executionArn"]] = "RUNNING"

    def _invoke_async(self, function: str, event: Any, dead_letter_arn: str | None = None) -> None:
        """Asynchronous invocation semantics: retries (two, or the function's EventInvokeConfig
        MaximumRetryAttempts), then its OnFailure destination or dead-letter queue."""
        name = self.lambdas.lookup(function).name
        retries, on_failure = self._event_invoke_config(name)
        record = None
        for _attempt in range(1 + retries):
            record = self.lambdas.invoke(name, event, invocation_type="Event")
            if record.error is None:
                return
        target = dead_letter_arn or on_failure or self._function_dead_letter(name)
        if target and target.startswith("arn:aws:sqs:"):
            self.client("sqs").send_message(QueueUrl=self._queue_url(target), MessageBody=json.dumps(event))
        elif target and target.startswith("arn:aws:sns:"):
            self.client("sns").publish(TopicArn=target, Message=json.dumps(event))
        error = record.error if record is not None else None
        self.errors.append(f"{name} failed {1 + retries} times: {error and error.get('errorMessage')}")

    def _event_invoke_config(self, function_name: str) -> tuple[int, str | None]:
        for lid in self._of_type("AWS::Lambda::EventInvokeConfig"):
            props = self.resolver.resolved_properties(lid)
            try:
                if self.lambdas.lookup(str(props.get("FunctionName", ""))).name != function_name:
                    continue
            except FunctionNotFoundError:
                continue
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            return int(props.get("MaximumRetryAttempts", ASYNC_RETRIES)), destination
        return ASYNC_RETRIES, None

    # -- schedules ------------------------------------------------------------------------------
    def _fire_due_schedules(self) -> int:
        now = self.clock.now()
        fired = 0
        for schedule in self.schedules:
            if not schedule.enabled:
                continue
            if is_due(schedule, now):
                schedule.last_fired = now
                schedule.fired += 1
                fired += 1
                self.note("scheduler", f"{schedule.expression} fired {schedule.logical_id}")
                event = scheduled_event(schedule, now, self.resolver)
                for target in schedule.targets:
                    self._deliver(target, event)
            schedule.last_checked = now
        return fired

    def pause_schedules(self, path_contains: str) -> list[Schedule]:
        """Holds the schedules whose logical id or construct path contains `path_contains`."""
        held = self._matching_schedules(path_contains)
        for schedule in held:
            schedule.enabled = False
        return held

    def resume_schedules(self, path_contains: str) -> list[Schedule]:
        resumed = self._matching_schedules(path_contains)
        for schedule in resumed:
            schedule.enabled = True
            schedule.armed_at = schedule.last_fired = schedule.last_checked = None
        return resumed

    def _matching_schedules(self, path_contains: str) -> list[Schedule]:
        resources = self.template.get("Resources", {})
        return [
            schedule
            for schedule in self.schedules
            if path_contains.lower()
            in (schedule.logical_id + construct_path(resources.get(schedule.logical_id, {}))).lower()
        ]

    def fire(self, path_contains: str) -> int:
        """Fires every schedule whose logical id or construct path contains `path_contains` now."""
        now = self.clock.now()
        count = 0
        for schedule in self._matching_schedules(path_contains):
            schedule.fired += 1
            schedule.last_fired = now
            count += 1
            self.note("scheduler", f"{schedule.expression} fired {schedule.logical_id} (on request)")
            for target in schedule.targets:
                self._deliver(target, scheduled_event(schedule, now, self.resolver))
        return count

    # -- executions and the timeline ------------------------------------------------------------
    def _watch_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for lid, arn in self.state_machines.items():
            for execution in sfn.list_executions(stateMachineArn=arn, maxResults=100).get("executions", []):
                previous = self.executions.get(execution["executionArn"])
                status = execution["status"]
                if previous != status:
                    self.executions[execution["executionArn"]] = status
                    self.note("stepfunctions", f"{_short(lid)} execution {status.lower()}")
                    self._emit_status_change(sfn, execution, arn)

    def _emit_status_change(self, sfn: Any, execution: dict[str, Any], machine_arn: str) -> None:
        """Step Functions sends "Execution Status Change" events to the default bus; moto does not."""
        try:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
        except Exception as error:  # moto cannot serialize some outputs (datetimes); send what is known
            logger.debug("describe_execution failed: %s", error)
            described = {
                "status": execution["status"],
                "startDate": execution["startDate"],
                "stopDate": execution.get("stopDate"),
            }
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": machine_arn,
            "name": execution.get("name"),
            "status": described["status"],
            "startDate": int(described["startDate"].timestamp() * 1000),
            "stopDate": int(described["stopDate"].timestamp() * 1000) if described.get("stopDate") else None,
            "input": described.get("input"),
            "output": described.get("output"),
            "error": described.get("error"),
            "cause": described.get("cause"),
        }
        self.client("events").put_events(
            Entries=[
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [execution["executionArn"]],
                }
            ]
        )

    def _on_invocation(self, record: Any) -> None:
        outcome = "failed: " + str(record.error.get("errorMessage"))[:120] if record.error else "ok"
        self.note("lambda", f"{_short_function(record.function_name)} {outcome} ({record.duration_s:.2f} s)")

    def note(self, source: str, text: str) -> None:
        entry = TimelineEntry(self.clock.elapsed_real(), source, text)
        self.timeline.append(entry)
        if self.on_timeline is not None:
            self.on_timeline(entry)

    # -- dead-letter queues ---------------------------------------------------------------------
    def dead_letter_depths(self) -> dict[str, int]:
        """Messages waiting in every queue that some redrive policy points at."""
        sqs = self.client("sqs")
        targets = set()
        for lid in self._of_type("AWS::SQS::Queue"):
            policy = self.resolver.resolved_properties(lid).get("RedrivePolicy") or {}
            if policy.get("deadLetterTargetArn"):
                targets.add(str(policy["deadLetterTargetArn"]))
        depths = {}
        for arn in sorted(targets):
            attributes = sqs.get_queue_attributes(
                QueueUrl=self._queue_url(arn), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            depths[arn.rsplit(":", 1)[1]] = int(attributes.get("ApproximateNumberOfMessages", 0))
        return depths


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _target_input(target: Target, event: Any) -> Any:
    if target.input is not None:
        return json.loads(target.input) if isinstance(target.input, str) else target.input
    if target.input_path:
        return _json_path(event, target.input_path)
    if target.input_transformer:
        paths = target.input_transformer.get("InputPathsMap") or {}
        text = str(target.input_transformer.get("InputTemplate", ""))
        for name, path in paths.items():
            value = _json_path(event, str(path))
            text = text.replace(f'"<{name}>"', json.dumps(value)).replace(
                f"<{name}>", value if isinstance(value, str) else json.dumps(value)
            )
        try:
            return json.loads(text)
        except ValueError:
            return text
    return event


def _json_path(document: Any, path: str) -> Any:
    value = document
    for part in [p for p in path.lstrip("$").split(".") if p]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _importable(handler: str) -> bool:
    import importlib.util

    module = handler.rpartition(".")[0]
    if not module:
        return False
    try:
        return (
            importlib.util.find_spec(module.split(".", 1)[0]) is not None
            and module.split(".", 1)[0] != "index"
        )
    except (ImportError, ValueError):
        return False


def _short(logical_id: str) -> str:
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def _short_function(name: str) -> str:
    parts = name.split("-")
    return _short(parts[1]) if len(parts) >= 3 else name


def _describe_publication(published: Published) -> str:
    body = published.json()
    if isinstance(body, dict) and "type" in body and "project" in body:
        detail = body.get("detail") or {}
        shown = [
            (k, v)
            for k, v in detail.items()
            if not isinstance(v, (dict, list)) and v is not None and not str(v).startswith("arn:")
        ]
        extra = ", ".join(f"{k}={v}" for k, v in shown[:4])
        return f"{body['project']}: {body['type']}" + (f" ({extra})" if extra else "")
    attributes = ", ".join(f"{k}={v}" for k, v in published.attributes.items())
    return f"message on {_short(published.topic_logical_id)}" + (f" [{attributes}]" if attributes else "")


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silences noisy library loggers (moto's interpreter, werkzeug) for the duration."""
    saved = {}
    for name in names:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Sets (or, for None, removes) process environment variables; restores them afterwards."""
    import os

    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


def _reset_handler_caches() -> None:
    """Cached boto3 clients and parameters of the handlers must not outlive one moto backend."""
    with contextlib.suppress(ImportError):
        from lambdas.common import aws

        aws.reset_clients()
    with contextlib.suppress(ImportError):
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
    # Handlers memoize their dependencies (clients, stores, settings) per warm container; a new
    # local stack is a cold start for all of them.
    import sys

    for name, module in list(sys.modules.items()):
        if not name.startswith("lambdas.") or module is None:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


@contextlib.contextmanager
def running_stack(
    template: dict[str, Any],
    *,
    clock_speed: float = 1.0,
    extra_environment: dict[str, str | None] | None = None,
    function_environment: dict[str, str] | None = None,
    on_timeline: Callable[[TimelineEntry], None] | None = None,
    start_pump: bool = True,
    capture_output: bool | TextIO = False,
    moto_server_port: int | None = None,
) -> Iterator[LocalRuntime]:
    """moto (in-process) + the local Lambda service + the provisioned template + the pump.

    `extra_environment` is applied to the process (e.g. AWS_ENDPOINT_URL_REKOGNITION of the
    engine); `function_environment` is added to every function's environment.
    """
    from moto import mock_aws

    use_aws_error_names()  # aws-sdk task errors named as on AWS, so the Retry entries match offline
    lambdas = LocalLambdaService(base_environment=function_environment, capture_output=capture_output)
    url = lambdas.start()
    environment: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": None,
        "AWS_ENDPOINT_URL_LAMBDA": url,
        **(extra_environment or {}),
    }
    runtime: LocalRuntime | None = None
    try:
        with (
            patched_environ(environment),
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
            quiet_loggers("moto.stepfunctions.parser", "moto.stepfunctions", "werkzeug"),
        ):
            _reset_handler_caches()
            server = None
            if moto_server_port is not None:
                # Same process, same backends: clients outside reach this very stack through it.
                from moto.server import ThreadedMotoServer

                server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_server_port, verbose=False)
                server.start()
            runtime = LocalRuntime(
                template, lambdas, clock=SimulatedClock(clock_speed), on_timeline=on_timeline
            )
            runtime.lambda_url = url
            if server is not None:
                host, port = server.get_host_and_port()
                runtime.moto_url = f"http://{host}:{port}"
            runtime.provision()
            if start_pump:
                runtime.start()
            try:
                yield runtime
            finally:
                runtime.stop()
                lambdas.wait_async(timeout_s=10)
                if server is not None:
                    server.stop()
                _reset_handler_caches()
    finally:
        lambdas.stop()
        lambdas.release_environment()
