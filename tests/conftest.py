"""Test-wide safety: fake credentials, a fixed region, no tracing, no real AWS.

Every test runs with dummy credentials so a mistake can never reach a real account; moto or
the local engine answer instead.
"""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "CustomLabelsAutopilotTests",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_REKOGNITION"):
    os.environ.pop(_name, None)


# ---------------------------------------------------------------------------
# Isolation: whatever a test (or a runtime it starts) puts in os.environ, e.g. AWS_ENDPOINT_URL_*
# of a local server, and whichever boto3 clients it caches, end with the test.
# ---------------------------------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_environment():
    from lambdas.common import aws

    saved = dict(os.environ)
    aws.reset_clients()
    yield
    aws.reset_clients()
    os.environ.clear()
    os.environ.update(saved)


# ---------------------------------------------------------------------------
# The local Rekognition Custom Labels engine, on a free port, for one test.
# ---------------------------------------------------------------------------


@pytest.fixture
def engine():
    """A running engine (time scale 0.01); AWS_ENDPOINT_URL_REKOGNITION points at it during the test.

    ``engine.url``, ``engine.faults`` (fault injection), ``engine.client()`` (a boto3 client).
    Start ``mock_aws()`` in the test (or a fixture) for the S3 bucket the engine reads images from.
    """
    from autopilot.engine.testing import running_engine

    with running_engine(time_scale=0.01) as running:
        yield running
