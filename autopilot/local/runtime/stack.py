"""`running_stack`: moto (in-process) + the local Lambda service + the provisioned template + the pump."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from autopilot.local.lambda_service import LocalLambdaService
from autopilot.local.runtime.accelerated import waits_on
from autopilot.local.runtime.core import LocalRuntime
from autopilot.local.schedules import SimulatedClock
from autopilot.local.sdk_error_names import use_aws_error_names
from autopilot.local.wiring import TimelineEntry


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
    iam: bool = True,
) -> Iterator[LocalRuntime]:
    """moto (in-process) + the local Lambda service + the provisioned template + the pump.

    `extra_environment` is applied to the process (e.g. AWS_ENDPOINT_URL_REKOGNITION of the
    engine); `function_environment` is added to every function's environment. `iam=False`
    turns the IAM checks off (debugging only; every flow runs with them).
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
    clock = SimulatedClock(clock_speed)
    try:
        with (
            patched_environ(environment),
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
            waits_on(clock),
            quiet_loggers("moto.stepfunctions.parser", "moto.stepfunctions", "werkzeug"),
        ):
            _reset_handler_caches()
            server = None
            if moto_server_port is not None:
                # Same process, same backends: clients outside reach this very stack through it.
                from moto.server import ThreadedMotoServer

                server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_server_port, verbose=False)
                server.start()
            runtime = LocalRuntime(template, lambdas, clock=clock, on_timeline=on_timeline, iam=iam)
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
                runtime.release()
                if server is not None:
                    server.stop()
                _reset_handler_caches()
    finally:
        lambdas.stop()
        lambdas.release_environment()
