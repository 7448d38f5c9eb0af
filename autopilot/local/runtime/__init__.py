"""The local runtime: the synthesized stack provisioned in moto and wired to the real handlers.

Everything is derived from the CloudFormation template that `cdk deploy` ships, in parts:

- `providers`: one module per resource type, each assigning the physical ids its resources answer
  Ref and Fn::GetAtt with, then creating them in moto with the template's properties (S3 buckets
  and notifications, SQS queues and redrive policies, SNS topics and subscriptions, DynamoDB
  tables, SSM parameters, Lambda functions registered with the LocalLambdaService and their event
  source mappings, state machines from their resolved definitions, EventBridge buses and rules,
  Scheduler schedules, IAM role names);
- `polling`: the one SQS poller (event source mappings: BatchSize, batching window,
  ReportBatchItemFailures, visibility timeout on the clock; and the hidden tap queues through
  which moto routes what it cannot deliver to Lambda or Step Functions);
- `delivery`: target delivery (Input, InputPath, InputTransformer) and asynchronous invocations
  with their retries and failure destinations; `scheduling`: schedules on the accelerated clock;
- `executions`: the Step Functions execution status change events moto does not send;
- `enforcement`: the template's IAM policies on every handler call, task and delivery;
- `core.LocalRuntime` composes them; `stack.running_stack` runs it all inside moto.

The runtime never names a construct of the application: a new queue, function, rule or schedule
in the stack is picked up without a change here.
"""

from autopilot.local.runtime.core import LocalRuntime
from autopilot.local.runtime.stack import patched_environ, quiet_loggers, running_stack

__all__ = ["LocalRuntime", "patched_environ", "quiet_loggers", "running_stack"]
