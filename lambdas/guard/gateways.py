"""The account guard's AWS calls: listing, stopping, and its memory in the state table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import (
    FEATURE_CONTENT_MODERATION,
    FEATURE_CUSTOM_LABELS,
    GUARD_PK,
    ITEM_GUARD_SWEEP,
    REKOGNITION_MAX_RESULTS,
    STATE_PK,
    STATE_SK,
)
from lambdas.guard.policy import ACTIVE_STATUSES, GuardMemory, RunningVersion

MAX_PAGES = 1000  # 100,000 projects or versions per project: far beyond the account quotas


def _pages(call: Callable[..., dict[str, Any]], key: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    return aws.iter_pages(call, key, max_pages=MAX_PAGES, MaxResults=REKOGNITION_MAX_RESULTS, **arguments)


def project_name(project_arn: str) -> str:
    """arn:aws:rekognition:REGION:ACCOUNT:project/NAME/1234567890123 -> NAME."""
    return project_arn.split(":", 5)[-1].split("/")[1]


class AccountModels:
    """Every project of both features in the client's region, and their running versions."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    client = aws.LazyClient("rekognition")

    def projects(self) -> list[dict[str, Any]]:
        # Without Features only CUSTOM_LABELS projects are listed.
        return list(
            _pages(
                self.client.describe_projects,
                "ProjectDescriptions",
                Features=[FEATURE_CUSTOM_LABELS, FEATURE_CONTENT_MODERATION],
            )
        )

    def running_versions(self) -> tuple[list[RunningVersion], int]:
        """(RUNNING / STARTING versions, number of projects looked at)."""
        projects = self.projects()
        found = []
        for project in projects:
            arn = project["ProjectArn"]
            try:
                versions = list(
                    _pages(
                        self.client.describe_project_versions, "ProjectVersionDescriptions", ProjectArn=arn
                    )
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    continue  # deleted between the two calls
                raise
            for version in versions:
                if version.get("Status") not in ACTIVE_STATUSES:
                    continue
                version_arn = version["ProjectVersionArn"]
                found.append(
                    RunningVersion(
                        project=project_name(arn),
                        project_arn=arn,
                        feature=str(project.get("Feature") or FEATURE_CUSTOM_LABELS),
                        version_arn=version_arn,
                        version_name=version_arn.split("/version/", 1)[1].split("/", 1)[0],
                        status=str(version["Status"]),
                        min_units=int(version.get("MinInferenceUnits") or 1),
                        max_units=int(version["MaxInferenceUnits"])
                        if version.get("MaxInferenceUnits")
                        else None,
                    )
                )
        return found, len(projects)

    def stop(self, version_arn: str) -> str:
        """Stops a version; a version already stopping (ResourceInUseException) counts as stopped."""
        try:
            return str(self.client.stop_project_version(ProjectVersionArn=version_arn).get("Status", ""))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceInUseException":
                return "STOPPING"
            raise


class GuardStore:
    """The guard's one item in the state table (pk GUARD_PK, sk ITEM_GUARD_SWEEP)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self._table = table_name
        self._client = client

    client = aws.LazyClient("dynamodb")

    @staticmethod
    def key() -> dict[str, Any]:
        return {STATE_PK: {"S": GUARD_PK}, STATE_SK: {"S": ITEM_GUARD_SWEEP}}

    def load(self) -> GuardMemory:
        item = self.client.get_item(TableName=self._table, Key=self.key(), ConsistentRead=True).get("Item")
        if not item:
            return GuardMemory()
        return GuardMemory.from_dict(json.loads(item["memory"]["S"]))

    def save(self, memory: GuardMemory, swept_at: str) -> None:
        self.client.put_item(
            TableName=self._table,
            Item={
                **self.key(),
                "memory": {"S": json.dumps(memory.to_dict())},
                "swept_at": {"S": swept_at},
            },
        )
