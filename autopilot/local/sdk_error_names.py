"""moto's Step Functions interpreter names aws-sdk task errors as AWS does, for Rekognition.

AWS raises `Rekognition.<ErrorShape>` (with `Exception` appended when the shape lacks it; see
infra/step_functions_errors.py). moto 5.2's aws-sdk task builds the same name from the botocore
exception class, but takes the service part from a small table of known services
(`_SERVICE_ERROR_NAMES` in moto/stepfunctions/parser/.../state_task_service_aws_sdk.py) and,
for a service it does not list, from the Resource's lower-case service name: the error comes back
as `rekognition.ThrottlingException` and a Retry on `Rekognition.ThrottlingException` never fires
offline.

`use_aws_error_names()` adds Rekognition to that table, nothing else; it is idempotent and is
applied by `running_stack` (the local runtime) and by the tests that run state machines in moto.
A moto upgrade that moves the table makes it fail loudly rather than silently run other names.
"""

from __future__ import annotations

from infra.step_functions_errors import ERROR_PREFIX, SERVICE

_MODULE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk"


def use_aws_error_names() -> None:
    import importlib

    module = importlib.import_module(_MODULE)
    table = getattr(module, "_SERVICE_ERROR_NAMES", None)
    if not isinstance(table, dict):
        raise RuntimeError(
            f"{_MODULE} has no _SERVICE_ERROR_NAMES table (a different moto version?): aws-sdk task "
            "errors would not carry AWS's names offline; adapt autopilot/local/sdk_error_names.py"
        )
    table[SERVICE] = ERROR_PREFIX
