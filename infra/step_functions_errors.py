"""Step Functions error names of the `aws-sdk:rekognition:*` tasks, derived from the botocore model.

AWS Step Functions Developer Guide, "Learning to use AWS service SDK integrations in Step
Functions" (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html):
an AWS SDK integration fails with the error `ServiceName.ErrorName`, both in PascalCase, and the
error name always ends in `Exception`, which Step Functions appends when the service's own error
name lacks it (S3's `BucketAlreadyExists` is caught as `S3.BucketAlreadyExistsException`).

So Rekognition's `InternalServerError` shape is raised as `Rekognition.InternalServerErrorException`
and `ThrottlingException` as `Rekognition.ThrottlingException`. Every Retry and Catch of both
workflows takes its Rekognition names from here; a shape the service model does not define is
refused at synth time instead of becoming a Retry that never matches.
"""

from __future__ import annotations

import functools

SERVICE = "rekognition"  # the botocore service name and the `aws-sdk:<service>:` part of a Resource
ERROR_PREFIX = "Rekognition"  # the ServiceName part of the error names Step Functions raises
EXCEPTION_SUFFIX = "Exception"

# Waited out with backoff on every Rekognition call of both workflows.
TRANSIENT_SHAPES = (
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "InternalServerError",
    "LimitExceededException",
)
# A resource another caller is changing (a dataset update, a version starting or stopping).
BUSY_SHAPES = ("ResourceInUseException", "ResourceNotReadyException")


def error_name(shape: str) -> str:
    """The Step Functions error name of a Rekognition error shape (the documented rule)."""
    suffix = "" if shape.endswith(EXCEPTION_SUFFIX) else EXCEPTION_SUFFIX
    return f"{ERROR_PREFIX}.{shape}{suffix}"


@functools.cache
def error_shapes() -> frozenset[str]:
    """Every error shape of the Rekognition service model installed with botocore."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(SERVICE)
    return frozenset(
        shape.name for name in model.operation_names for shape in model.operation_model(name).error_shapes
    )


@functools.cache
def raised_names() -> frozenset[str]:
    """Every error name a Rekognition aws-sdk task can fail with."""
    return frozenset(error_name(shape) for shape in error_shapes())


def rekognition_error(shape: str) -> str:
    """The Step Functions name of one Rekognition error shape; refuses a shape the model lacks."""
    if shape not in error_shapes():
        known = ", ".join(sorted(error_shapes()))
        raise ValueError(
            f"{shape!r} is not an error of the Rekognition service model (botocore); use one of: {known}"
        )
    return error_name(shape)


def rekognition_errors(*shapes: str) -> list[str]:
    return [rekognition_error(shape) for shape in shapes]


def transient_errors() -> list[str]:
    """Throttling and server-side errors: retried with backoff."""
    return rekognition_errors(*TRANSIENT_SHAPES)


def busy_errors() -> list[str]:
    """The resource is being changed by someone else: retried after a longer wait."""
    return rekognition_errors(*BUSY_SHAPES)
