"""Lambda functions (registered with the local Lambda service: Handler, resolved Environment,
Timeout, MemorySize), their SQS event source mappings, and what an asynchronous invocation of
them does on failure (EventInvokeConfig, DeadLetterConfig)."""

from __future__ import annotations

import importlib.util

from autopilot.local.lambda_service import FunctionNotFoundError
from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name
from autopilot.local.wiring import EventSourceMapping

FUNCTION_TYPE = "AWS::Lambda::Function"
MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"
INVOKE_CONFIG_TYPE = "AWS::Lambda::EventInvokeConfig"
ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous invocation twice


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(FUNCTION_TYPE).items():
        name = str((res.get("Properties") or {}).get("FunctionName") or physical_name(lid, 64))
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:lambda:{ctx.region}:{ctx.account}:function:{name}"


def register_functions(ctx: StackContext) -> None:
    for lid in ctx.of_type(FUNCTION_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        handler = props.get("Handler")
        if not handler or not _importable(str(handler)):
            continue  # CDK's own providers (custom resources, index.handler) are emulated, not run
        name = ctx.resolver.physical_ids[lid]
        environment = (props.get("Environment") or {}).get("Variables") or {}
        ctx.lambdas.register(
            name,
            handler=str(handler),
            environment={key: str(value) for key, value in environment.items()},
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            aliases=(lid,),
        )
        ctx.functions[lid] = name


def create_mappings(ctx: StackContext) -> None:
    for lid in ctx.of_type(MAPPING_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        source = str(props.get("EventSourceArn", ""))
        if not source.startswith("arn:aws:sqs:"):
            ctx.note("runtime", f"event source mapping {lid}: only SQS sources run locally ({source})")
            continue
        ctx.mappings.append(
            EventSourceMapping(
                logical_id=lid,
                function_name=ctx.lambdas.lookup(str(props["FunctionName"])).name,
                queue_arn=source,
                queue_url=ctx.queue_url(source),
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in (props.get("FunctionResponseTypes") or []),
                visibility_timeout_s=ctx.queue_visibility.get(source, 30),
                enabled=bool(props.get("Enabled", True)),
                batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            )
        )


def dead_letter_target(ctx: StackContext, function_name: str) -> str | None:
    """The function's DeadLetterConfig target, if any."""
    for lid, name in ctx.functions.items():
        if name == function_name:
            return (ctx.resolver.resolved_properties(lid).get("DeadLetterConfig") or {}).get("TargetArn")
    return None


def event_invoke_config(ctx: StackContext, function_name: str) -> tuple[int, str | None]:
    """(MaximumRetryAttempts, OnFailure destination) of the function's asynchronous invocations."""
    for lid in ctx.of_type(INVOKE_CONFIG_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        try:
            if ctx.lambdas.lookup(str(props.get("FunctionName", ""))).name != function_name:
                continue
        except FunctionNotFoundError:
            continue
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return int(props.get("MaximumRetryAttempts", ASYNC_RETRIES)), destination
    return ASYNC_RETRIES, None


def _importable(handler: str) -> bool:
    module = handler.rpartition(".")[0]
    if not module:
        return False
    package = module.split(".", 1)[0]
    try:
        return importlib.util.find_spec(package) is not None and package != "index"
    except (ImportError, ValueError):
        return False
