"""Human review with Amazon A2I: the HumanLoopConfig detection sends, and what the answer means.

No AWS here. The loop name is derived from the image version, so a redelivered image (same bucket,
key and version id, or ETag when the bucket is not versioned) asks for the same loop, and two
different images never share one. HumanLoopName must match ``^[a-z0-9](-*[a-z0-9])*`` and be at
most 63 characters (botocore model of DetectModerationLabels), and be unique within the Region of
the account (A2I DescribeHumanLoop reference): the name is ``<project slug>-<40 hex digits of the
SHA-256 of bucket, key and version>``, at most 61 characters.

A redelivery reaches Rekognition only when the first attempt stopped after the call (the
idempotency record otherwise answers it). A2I's StartHumanLoop refuses a name that is in use only
when the input data differs (ConflictException); the same image gives the same input, so the
service is expected to answer with the same loop. If it refuses the name all the same,
`is_name_in_use` recognises the refusal and detection asks again without a human loop: the loop
that exists already holds the image, so it is neither lost nor reviewed twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from lambdas.common.constants import HUMAN_LOOP_ACTIVATED, HUMAN_LOOP_NOT_ACTIVATED

HUMAN_LOOP_NAME_MAX = 63
HUMAN_LOOP_NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
DIGEST_CHARS = 40
SLUG_CHARS = HUMAN_LOOP_NAME_MAX - DIGEST_CHARS - 2  # room for the separator, and one spare
# Errors that may mean "this HumanLoopName is taken": A2I's own name conflict, or a parameter error
# about the loop name (DetectModerationLabels documents neither for a reused name).
NAME_IN_USE_CODES = frozenset({"ConflictException", "InvalidParameterException", "ValidationException"})
# A2I quota of in-progress human loops: wait, as for throttling.
QUOTA_CODES = frozenset({"HumanLoopQuotaExceededException"})


def human_loop_name(project: str, bucket: str, key: str, version: str | None) -> str:
    """The loop name of one image version: stable for the same version, distinct for others."""
    digest = hashlib.sha256("\0".join((bucket, key, version or "")).encode()).hexdigest()[:DIGEST_CHARS]
    slug = re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-")[:SLUG_CHARS].strip("-")
    name = f"{slug}-{digest}" if slug else digest
    assert len(name) <= HUMAN_LOOP_NAME_MAX and HUMAN_LOOP_NAME_PATTERN.match(name), name
    return name


@dataclass(frozen=True)
class HumanLoopRequest:
    name: str
    flow_definition_arn: str
    content_classifiers: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        """DetectModerationLabels HumanLoopConfig."""
        config: dict[str, Any] = {"HumanLoopName": self.name, "FlowDefinitionArn": self.flow_definition_arn}
        if self.content_classifiers:
            config["DataAttributes"] = {"ContentClassifiers": list(self.content_classifiers)}
        return config

    def loop_arn(self) -> str:
        """The human loop ARN A2I gives this name: the flow definition's partition, Region and
        account, resource ``human-loop/<name>``."""
        prefix = self.flow_definition_arn.split(":flow-definition/", 1)[0]
        return f"{prefix}:human-loop/{self.name}"


def activation_record(request: HumanLoopRequest, output: dict[str, Any] | None) -> dict[str, Any]:
    """The result's ``human_loop`` from HumanLoopActivationOutput ("no HumanLoopArn: the input did
    not trigger human review", per its reference)."""
    output = output or {}
    arn = output.get("HumanLoopArn")
    conditions: Any = output.get("HumanLoopActivationConditionsEvaluationResults")
    if isinstance(conditions, str):
        with contextlib.suppress(ValueError):  # otherwise kept as the service sent it
            conditions = json.loads(conditions)
    return {
        "name": request.name,
        "flow_definition_arn": request.flow_definition_arn,
        "status": HUMAN_LOOP_ACTIVATED if arn else HUMAN_LOOP_NOT_ACTIVATED,
        "arn": arn,
        "reasons": list(output.get("HumanLoopActivationReasons") or []),
        "conditions": conditions,
        "already_started": False,
    }


def already_started_record(request: HumanLoopRequest) -> dict[str, Any]:
    """The result's ``human_loop`` when the service refused the name because a loop with it exists
    (an earlier attempt for the same image version started it)."""
    return {
        "name": request.name,
        "flow_definition_arn": request.flow_definition_arn,
        "status": HUMAN_LOOP_ACTIVATED,
        "arn": request.loop_arn(),
        "reasons": [],
        "conditions": None,
        "already_started": True,
    }


def is_name_in_use(code: str, message: str, request: HumanLoopRequest) -> bool:
    """Whether an error refuses the human loop's name because a loop with it exists."""
    if code not in NAME_IN_USE_CODES:
        return False
    text = message.lower()
    names_the_loop = request.name in message or "humanloopname" in text or "human loop" in text
    return names_the_loop and any(word in text for word in ("exist", "already", "in use", "same name"))
