"""Rekognition Custom Labels integration: projects, datasets and serialized entry updates."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common import clock as shared_clock
from lambdas.common.constants import FEATURE_CONTENT_MODERATION, REKOGNITION_MAX_RESULTS

DATASET_TYPES = ("TRAIN", "TEST")
_BUSY_STATUSES = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"})
_MAX_BACKOFF_SECONDS = 30.0
# Errors that are the service's, not the request's: waited out, never turned into rejections
# (Rekognition error handling: "OK to retry? Yes").
SERVICE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
PER_REF_LOOKUPS = 25  # up to this many source-refs are looked up one by one; more: one listing


def is_service_error(error: Exception) -> bool:
    return isinstance(error, ClientError) and _code(error) in SERVICE_ERROR_CODES


class DatasetBusy(Exception):
    """The dataset stayed busy (another update, a create) until the deadline; try again later."""


class UpdateStillRunning(DatasetBusy):
    """Our update was accepted but had not finished by the deadline."""


class UpdateFailed(Exception):
    """The dataset reached UPDATE_FAILED after our update."""

    def __init__(self, dataset_arn: str, code: str, message: str) -> None:
        super().__init__(f"update of {dataset_arn} failed ({code}): {message}")
        self.code = code
        self.message = message


class DatasetUnusable(Exception):
    """CREATE_FAILED: nothing can be added until someone deletes the dataset."""


@dataclass(frozen=True)
class UpdateOutcome:
    """The dataset's description just before our update was accepted, and once it completed."""

    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class ProjectDatasets:
    project_arn: str
    datasets: dict[str, str] = field(default_factory=dict)  # dataset type -> ARN
    created_project: bool = False
    created_datasets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EntryError:
    source_ref: str
    errors: list[dict[str, Any]]


class DatasetGateway:
    """Talks to Rekognition. Every wait is bounded by a deadline on the injected monotonic clock."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        poll_seconds: float = 5.0,
        sleep: Callable[[float], None] = shared_clock.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._poll = poll_seconds
        self._sleep = sleep
        self._clock = clock

    client = aws.LazyClient("rekognition")

    # -- projects and datasets -----------------------------------------------------------------
    def find_project(self, name: str, feature: str) -> dict[str, Any] | None:
        # Without Features, DescribeProjects lists CUSTOM_LABELS projects only.
        response = self.client.describe_projects(ProjectNames=[name], Features=[feature])
        matches = [
            p for p in response.get("ProjectDescriptions", []) if p["ProjectArn"].split("/")[1] == name
        ]
        return matches[0] if len(matches) == 1 else None

    def ensure_adapter_project(self, name: str, *, auto_update: bool) -> ProjectDatasets:
        """A CONTENT_MODERATION project, created when missing, without datasets: adapters train from
        manifests (CreateProjectVersion TrainingData/TestingData), and the project must have none."""
        result = ProjectDatasets(project_arn="")
        self._find_or_create_project(
            result,
            ProjectName=name,
            Feature=FEATURE_CONTENT_MODERATION,
            AutoUpdate="ENABLED" if auto_update else "DISABLED",
        )
        return result

    def _find_or_create_project(self, result: ProjectDatasets, **arguments: str) -> dict[str, Any]:
        """The project's description, after CreateProject(`arguments`) when it is missing; records
        the ARN (and whether this call created it) in `result`."""
        name, feature = arguments["ProjectName"], arguments["Feature"]
        description = self.find_project(name, feature)
        if description is None:
            try:
                self.client.create_project(**arguments)
                result.created_project = True
            except ClientError as error:
                if _code(error) != "ResourceInUseException":  # created meanwhile by a concurrent call
                    raise
            description = self.find_project(name, feature)
            if description is None:
                raise DatasetBusy(f"project {name} is not visible yet after CreateProject")
        result.project_arn = description["ProjectArn"]
        return description

    def ensure_project(self, name: str, feature: str, deadline: float) -> ProjectDatasets:
        """The project with its TRAIN and TEST datasets, creating whatever is missing."""
        result = ProjectDatasets(project_arn="")
        arguments = {"ProjectName": name, "Feature": feature}
        if feature == FEATURE_CONTENT_MODERATION:
            arguments["AutoUpdate"] = "ENABLED"
        description = self._find_or_create_project(result, **arguments)
        for dataset in description.get("Datasets", []):
            result.datasets[dataset["DatasetType"]] = dataset["DatasetArn"]
        for dataset_type in DATASET_TYPES:
            if dataset_type in result.datasets:
                continue
            try:
                arn = self.client.create_dataset(ProjectArn=result.project_arn, DatasetType=dataset_type)[
                    "DatasetArn"
                ]
                result.created_datasets.append(dataset_type)
            except ClientError as error:
                if _code(error) != "ResourceAlreadyExistsException":
                    raise
                refreshed = self.find_project(name, feature) or {}
                arn = next(
                    d["DatasetArn"] for d in refreshed.get("Datasets", []) if d["DatasetType"] == dataset_type
                )
            result.datasets[dataset_type] = arn
        return result

    def describe(self, dataset_arn: str) -> dict[str, Any]:
        return dict(self.client.describe_dataset(DatasetArn=dataset_arn)["DatasetDescription"])

    def wait_until_idle(self, dataset_arn: str, deadline: float) -> dict[str, Any]:
        """Waits out CREATE/UPDATE_IN_PROGRESS; returns the description once nothing is running."""
        attempt = 0
        while True:
            description = self.describe(dataset_arn)
            status = description.get("Status", "")
            if status not in _BUSY_STATUSES:
                if status == "CREATE_FAILED" and description.get("StatusMessageCode") == "SERVICE_ERROR":
                    # The service's fault, and a dataset that failed to be created holds nothing:
                    # delete it; once it is gone, ensure_project creates it again.
                    self.client.delete_dataset(DatasetArn=dataset_arn)
                    raise DatasetBusy(f"dataset {dataset_arn} failed to be created (service error); deleted")
                if status == "CREATE_FAILED":
                    raise DatasetUnusable(
                        f"dataset {dataset_arn} is CREATE_FAILED: {description.get('StatusMessage', '')}; "
                        "delete it so that ingestion creates it again"
                    )
                return description
            # DELETE_IN_PROGRESS is waited out too: once the dataset is gone, ensure_project creates it.
            self._pause(attempt, deadline, f"dataset {dataset_arn} still {status}")
            attempt += 1

    # -- entries ---------------------------------------------------------------------------------
    def update_entries(self, dataset_arn: str, payload: bytes, deadline: float) -> UpdateOutcome:
        """One UpdateDatasetEntries call, after and until the dataset is idle.

        ResourceInUseException (someone else's update started in between) is waited out with
        bounded backoff. Returns the descriptions before and once the dataset is UPDATE_COMPLETE.
        """
        attempt = 0
        while True:
            before = self.wait_until_idle(dataset_arn, deadline)
            try:
                self.client.update_dataset_entries(DatasetArn=dataset_arn, Changes={"GroundTruth": payload})
                break
            except ClientError as error:
                if _code(error) != "ResourceInUseException":
                    raise
                self._pause(attempt, deadline, f"dataset {dataset_arn} in use")
                attempt += 1
        try:
            description = self.wait_until_idle(dataset_arn, deadline)
        except DatasetBusy as busy:
            raise UpdateStillRunning(str(busy)) from None
        if description.get("Status") == "UPDATE_FAILED":
            raise UpdateFailed(
                dataset_arn, description.get("StatusMessageCode", ""), description.get("StatusMessage", "")
            )
        return UpdateOutcome(before, description)

    def present(self, dataset_arn: str, source_refs: Iterable[str], max_pages: int = 2_600) -> set[str]:
        """Which of `source_refs` are entries of the dataset (ListDatasetEntries, SourceRefContains).

        A few are looked up one by one; more are found by listing the entries whose source-ref
        contains their common prefix (at most 250,000 entries: 2,500 pages of 100).
        """
        wanted = set(source_refs)
        if not wanted:
            return set()
        if len(wanted) <= PER_REF_LOOKUPS:
            return {ref for ref in sorted(wanted) if ref in self._listed(dataset_arn, ref, max_pages)}
        prefix = _common_prefix(sorted(wanted))
        return wanted & self._listed(dataset_arn, prefix if prefix.strip() else None, max_pages)

    def _listed(self, dataset_arn: str, contains: str | None, max_pages: int) -> set[str]:
        arguments: dict[str, Any] = {"DatasetArn": dataset_arn, "MaxResults": REKOGNITION_MAX_RESULTS}
        if contains:
            arguments["SourceRefContains"] = contains
        refs: set[str] = set()
        for _ in range(max_pages):
            response = self.client.list_dataset_entries(**arguments)
            refs.update(json.loads(text).get("source-ref", "") for text in response.get("DatasetEntries", []))
            token = response.get("NextToken")
            if not token:
                return refs
            arguments["NextToken"] = token
        raise DatasetBusy(f"listing {dataset_arn} did not end within {max_pages} pages")

    def entries_with_errors(
        self, dataset_arn: str, source_refs: Iterable[str], max_pages: int = 50
    ) -> list[EntryError]:
        """Entries among `source_refs` that Rekognition marked with errors (HasErrors=True)."""
        wanted = set(source_refs)
        found: list[EntryError] = []
        arguments: dict[str, Any] = {
            "DatasetArn": dataset_arn,
            "HasErrors": True,
            "MaxResults": REKOGNITION_MAX_RESULTS,
        }
        for _ in range(max_pages):
            response = self.client.list_dataset_entries(**arguments)
            for text in response.get("DatasetEntries", []):
                entry = json.loads(text)
                ref = entry.get("source-ref", "")
                if ref in wanted:
                    found.append(EntryError(ref, collect_errors(entry)))
            token = response.get("NextToken")
            if not token:
                break
            arguments["NextToken"] = token
        return found

    def _pause(self, attempt: int, deadline: float, what: str) -> None:
        delay = min(_MAX_BACKOFF_SECONDS, self._poll * (1.5**attempt)) * random.uniform(0.8, 1.2)
        if self._clock() + delay > deadline:
            raise DatasetBusy(f"{what} until the deadline")
        self._sleep(delay)


def collect_errors(node: Any) -> list[dict[str, Any]]:
    """All {"code", "message"} objects found in "errors" lists anywhere in a returned line."""
    errors: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "errors" and isinstance(value, list):
                errors.extend(item for item in value if isinstance(item, dict))
            else:
                errors.extend(collect_errors(value))
    elif isinstance(node, list):
        for value in node:
            errors.extend(collect_errors(value))
    return errors


def _common_prefix(sorted_texts: list[str]) -> str:
    """The characters every text starts with (the first and last of a sorted list bound them all)."""
    first, last = sorted_texts[0], sorted_texts[-1]
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
