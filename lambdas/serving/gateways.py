"""The controller's AWS calls, each behind a small class that takes an optional injected client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.common import aws
from lambdas.common.executions import ExecutionStarter
from lambdas.common.production import get_production


@dataclass(frozen=True)
class ServingTarget:
    """The production version of a project, with the ARNs the state machine needs."""

    project: str
    project_arn: str
    version_arn: str
    version_name: str


class RekognitionModels:
    def __init__(self, rekognition_client: Any | None = None) -> None:
        self._client = rekognition_client
        self._project_arns: dict[str, str] = {}

    client = aws.LazyClient("rekognition")

    def project_arn(self, project: str) -> str | None:
        if project not in self._project_arns:
            response = self.client.describe_projects(ProjectNames=[project])
            for description in response.get("ProjectDescriptions", []):
                if description["ProjectArn"].split("/")[1] == project:
                    self._project_arns[project] = description["ProjectArn"]
        return self._project_arns.get(project)

    def status(self, target: ServingTarget) -> str | None:
        """Current status of the target version; None when it no longer exists."""
        response = self.client.describe_project_versions(
            ProjectArn=target.project_arn, VersionNames=[target.version_name]
        )
        for description in response.get("ProjectVersionDescriptions", []):
            if description.get("ProjectVersionArn") == target.version_arn:
                return str(description["Status"])
        return None

    def status_message(self, target: ServingTarget) -> str | None:
        """StatusMessage of the target version (why a start failed); None when there is none."""
        response = self.client.describe_project_versions(
            ProjectArn=target.project_arn, VersionNames=[target.version_name]
        )
        for description in response.get("ProjectVersionDescriptions", []):
            if description.get("ProjectVersionArn") == target.version_arn:
                return description.get("StatusMessage") or None
        return None


def load_target(
    project: str, models: RekognitionModels, *, table_name: str | None = None, client: Any | None = None
) -> ServingTarget | None:
    record = get_production(project, table_name=table_name, client=client)
    if record is None:
        return None
    project_arn = models.project_arn(project)
    if project_arn is None:
        return None
    return ServingTarget(
        project=project,
        project_arn=project_arn,
        version_arn=record.version_arn,
        version_name=record.version_name,
    )


class QueueBacklog:
    ATTRIBUTES = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )

    def __init__(self, queue_url: str | None, sqs_client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = sqs_client

    def backlog(self) -> int:
        """Messages waiting, in flight or delayed on the detection queue (0 when none is wired)."""
        if not self._queue_url:
            return 0
        client = self._client or aws.client("sqs")
        response = client.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=list(self.ATTRIBUTES))
        attributes = response.get("Attributes", {})
        return sum(int(attributes.get(name, 0)) for name in self.ATTRIBUTES)


# The model control state machine is started like the training one: one starter for both.
TransitionStarter = ExecutionStarter
