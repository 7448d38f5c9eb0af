"""ARNs in the service's formats, and their parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from autopilot.engine import errors

_PROJECT = re.compile(
    r"arn:[a-z\d-]+:rekognition:([a-z\d-]+):(\d{12}):project/([a-zA-Z0-9_.\-]{1,255})/(\d+)"
)
_DATASET = re.compile(
    r"arn:[a-z\d-]+:rekognition:([a-z\d-]+):(\d{12}):project/([a-zA-Z0-9_.\-]{1,255})/dataset/(train|test)/(\d+)"
)
_VERSION = re.compile(
    r"arn:[a-z\d-]+:rekognition:([a-z\d-]+):(\d{12}):project/([a-zA-Z0-9_.\-]{1,255})"
    r"/version/([a-zA-Z0-9_.\-]{1,255})/(\d+)"
)


def project_arn(region: str, account: str, name: str, created_ms: int) -> str:
    return f"arn:aws:rekognition:{region}:{account}:project/{name}/{created_ms}"


def dataset_arn(project: str, dataset_type: str, created_ms: int) -> str:
    # project is the project ARN "arn:...:project/NAME/TS"; datasets hang off the project name.
    prefix = project.rsplit("/", 1)[0]
    return f"{prefix}/dataset/{dataset_type.lower()}/{created_ms}"


def version_arn(project: str, version_name: str, created_ms: int) -> str:
    # project is the project ARN "arn:...:project/NAME/TS"; versions hang off the project name.
    prefix = project.rsplit("/", 1)[0]
    return f"{prefix}/version/{version_name}/{created_ms}"


@dataclass(frozen=True)
class VersionRef:
    region: str
    project_name: str
    version_name: str


def parse_project(arn: str) -> tuple[str, str]:
    """Returns (region, project name)."""
    match = _PROJECT.fullmatch(arn)
    if not match:
        raise errors.invalid_parameter(f"ProjectArn {arn!r} is not a valid project ARN.")
    return match.group(1), match.group(3)


def parse_dataset(arn: str) -> tuple[str, str, str]:
    """Returns (region, project name, dataset type TRAIN|TEST)."""
    match = _DATASET.fullmatch(arn)
    if not match:
        raise errors.invalid_parameter(f"DatasetArn {arn!r} is not a valid dataset ARN.")
    return match.group(1), match.group(3), match.group(4).upper()


def parse_version(arn: str) -> VersionRef:
    match = _VERSION.fullmatch(arn)
    if not match:
        raise errors.invalid_parameter(f"ProjectVersionArn {arn!r} is not a valid project version ARN.")
    return VersionRef(match.group(1), match.group(3), match.group(4))
