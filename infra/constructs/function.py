"""One Lambda function with its own role and its own log group: the only way the stack makes one.

Code: the repository's `lambdas/` package, copied by local bundling (no Docker) into the asset as
`lambdas/...`, so handlers are addressed as "lambdas.<concern>.handler.handle" on AWS, in tests
and in the local runtime alike. Dependencies beyond boto3 (Powertools and pydantic) come from the
AWS-managed Powertools layer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import jsii
from aws_cdk import (
    Acknowledgment,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
# Layer version of the AWS-managed "AWSLambdaPowertoolsPythonV3" layer; override with the
# cdk.json context key "powertools_layer_version".
DEFAULT_POWERTOOLS_LAYER_VERSION = 27
METRICS_NAMESPACE = "CustomLabelsAutopilot"  # POWERTOOLS_METRICS_NAMESPACE of every function


@jsii.implements(ILocalBundling)
class _CopyLambdasPackage:
    """Copies lambdas/ (without caches) into the asset folder; returns True so Docker is never used."""

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        shutil.copytree(
            LAMBDAS_DIR,
            Path(output_dir) / "lambdas",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True


def lambdas_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        bundling=BundlingOptions(
            # Never pulled: local bundling above always succeeds.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            local=_CopyLambdasPackage(),
        ),
    )


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PowertoolsLayer")
    if existing is not None:
        return existing  # type: ignore[return-value]
    version = stack.node.try_get_context("powertools_layer_version") or DEFAULT_POWERTOOLS_LAYER_VERSION
    arn = (
        f"arn:{stack.partition}:lambda:{stack.region}:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-python312-arm64:{version}"
    )
    return lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)


class FunctionOptions(TypedDict):
    """What sets one function apart, besides its environment."""

    handler: str
    service_name: str
    description: str
    timeout: NotRequired[Duration | None]
    memory_size: NotRequired[int]
    reserved_concurrent_executions: NotRequired[int | None]


class AutopilotFunction(Construct):
    """A Python Lambda function, its dedicated role and its explicit, retained log group.

    The role starts with nothing but permission to write to its own log group; callers grant
    the rest on named resources.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service_name: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration | None = None,
        memory_size: int = 512,
        reserved_concurrent_executions: int | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        # Powertools service name (a constant of lambdas.common.constants), unique per function.
        self.service_name = service_name
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs only {description}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambdas_code(),
            description=description,
            role=self.role,
            timeout=timeout or Duration.seconds(60),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_group=self.log_group,
            layers=[powertools_layer(self)],
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason="Python 3.12 on purpose: it matches the AWS-managed Powertools layer build the "
                "functions use (AWSLambdaPowertoolsPythonV3-python312-arm64).",
            )
        )

    def metric(self, name: str, *, statistic: str, period: Duration) -> cloudwatch.Metric:
        """One of the function's own Powertools metrics (its service dimension is the construct id)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": self.node.id},
            statistic=statistic,
            period=period,
        )
