"""The engine: state, lazy asynchronous transitions, persistence, S3 access and operation dispatch.

Every operation runs under one re-entrant lock (the state is small; requests are short), except
the detection operations, which take the lock only to look the model up and run inference
outside it. Training runs in worker threads and reports back under the lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from autopilot.engine import errors
from autopilot.engine.arns import parse_dataset, parse_project, parse_version
from autopilot.engine.clock import Clock
from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import ERROR_STATUS, FaultInjector
from autopilot.engine.learning.training import TrainedModel
from autopilot.engine.state import Dataset, Project, Version
from autopilot.engine.store import Store
from autopilot.engine.validation import validate_input

LOG = logging.getLogger("autopilot.engine")

Handler = Callable[["Engine", dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    locked: bool  # runs under the engine lock (detection takes it only briefly, itself)
    mutates: bool  # changes state (read-only operations do not rewrite the persisted state)


_REGISTRY: dict[str, Registration] = {}


def operation(name: str, locked: bool = True, mutates: bool = True) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        _REGISTRY[name] = Registration(func, locked, mutates)
        return func

    return register


def _ensure_operations_loaded() -> None:
    # The operation modules register themselves on import.
    from autopilot.engine import datasets, detection, projects, versions  # noqa: F401


class Engine:
    def __init__(self, config: EngineConfig | None = None, clock: Clock | None = None) -> None:
        _ensure_operations_loaded()
        self.config = config or EngineConfig()
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.faults = FaultInjector()
        self.projects: dict[tuple[str, str], Project] = {}
        self.models: dict[str, TrainedModel] = {}
        self._s3_lock = threading.Lock()
        self._s3: tuple[tuple[str | None, ...], Any] | None = None
        self._workers: list[threading.Thread] = []
        self._training_slots = threading.Semaphore(2)
        path = self.config.data_path
        self.store = Store(path) if path is not None else None
        if self.store is not None:
            self._load()

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        return self.clock.now()

    def due(self, seconds: float) -> float:
        return self.now() + self.config.scaled(seconds)

    # ------------------------------------------------------------------ S3
    def s3(self) -> Any:
        """A plain boto3 S3 client, created lazily inside the engine (moto, moto server or real S3)."""
        key = (
            os.environ.get("AWS_ENDPOINT_URL_S3"),
            os.environ.get("AWS_ENDPOINT_URL"),
            os.environ.get("AWS_ACCESS_KEY_ID"),
            os.environ.get("AWS_DEFAULT_REGION"),
        )
        with self._s3_lock:
            if self._s3 is None or self._s3[0] != key:
                client = boto3.session.Session().client(
                    "s3",
                    region_name=os.environ.get("AWS_DEFAULT_REGION") or self.config.default_region,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}),
                )
                self._s3 = (key, client)
            return self._s3[1]

    def get_object(self, bucket: str, key: str, version: str | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        return bytes(self.s3().get_object(**kwargs)["Body"].read())

    def put_object(self, bucket: str, key: str, body: bytes, content_type: str = "application/json") -> None:
        self.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    # ------------------------------------------------------------------ dispatch
    def handle(self, operation_name: str, body: Any, region: str) -> dict[str, Any]:
        registration = _REGISTRY.get(operation_name)
        if registration is None:
            raise errors.unknown_operation(operation_name)
        project = _project_hint(body)
        fault = self.faults.take("throttle", operation_name, project)
        if fault is not None:
            raise errors.throttling(fault.message or "Rate exceeded", self.config.throttling_status)
        fault = self.faults.take("error", operation_name, project)
        if fault is not None:
            status = ERROR_STATUS.get(fault.code, 400)
            if fault.code == "ThrottlingException":
                status = self.config.throttling_status
            raise errors.EngineError(
                fault.code, fault.message or f"Injected {fault.code} for {operation_name}.", status
            )
        params = validate_input(operation_name, body)
        if not registration.locked:
            return registration.handler(self, params, region)
        with self.lock:
            changed = self.refresh()
            result = registration.handler(self, params, region)
            if changed or registration.mutates:
                self.save()
            return result

    # ------------------------------------------------------------------ lookups
    def project_by_arn(self, arn: str) -> Project:
        region, name = parse_project(arn)
        project = self.projects.get((region, name))
        if project is None or project.arn != arn or self._account(arn) != self.config.account_id:
            raise errors.not_found(f"The project {arn} does not exist.")
        return project

    def dataset_by_arn(self, arn: str) -> Dataset:
        region, name, dataset_type = parse_dataset(arn)
        project = self.projects.get((region, name))
        dataset = project.datasets.get(dataset_type) if project else None
        if dataset is None or dataset.arn != arn or self._account(arn) != self.config.account_id:
            raise errors.not_found(f"The dataset {arn} does not exist.")
        return dataset

    def project_of(self, dataset: Dataset) -> Project:
        region, name, _ = parse_dataset(dataset.arn)
        return self.projects[(region, name)]

    def version_by_arn(self, arn: str) -> tuple[Project, Version]:
        ref = parse_version(arn)
        project = self.projects.get((ref.region, ref.project_name))
        version = project.versions.get(ref.version_name) if project else None
        if (
            project is None
            or version is None
            or version.arn != arn
            or self._account(arn) != self.config.account_id
        ):
            raise errors.not_found(f"The project version {arn} does not exist.")
        return project, version

    @staticmethod
    def _account(arn: str) -> str:
        return arn.split(":")[4]

    # ------------------------------------------------------------------ lazy transitions
    def refresh(self) -> bool:
        """Applies every due transition; tells whether anything changed."""
        from autopilot.engine.datasets import apply_pending
        from autopilot.engine.versions import apply_transitions

        now = self.now()
        changed = False
        for key, project in list(self.projects.items()):
            if project.delete_due is not None and now >= project.delete_due:
                del self.projects[key]
                changed = True
                continue
            for dataset_type, dataset in list(project.datasets.items()):
                if dataset.delete_due is not None and now >= dataset.delete_due:
                    del project.datasets[dataset_type]
                    changed = True
                    continue
                if dataset.pending is not None and now >= dataset.pending.due:
                    apply_pending(dataset, now)
                    changed = True
            for version in list(project.versions.values()):
                changed = apply_transitions(self, project, version, now) or changed
        return changed

    # ------------------------------------------------------------------ background work
    def run_in_background(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            with self._training_slots:
                target()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        self._workers = [w for w in self._workers if w.is_alive()]
        self._workers.append(thread)
        thread.start()

    def wait_for_background(self, timeout: float | None = None) -> None:
        for worker in list(self._workers):
            worker.join(timeout)

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        if self.store is None:
            return
        with self.lock:
            self.store.save_state([p.to_state() for p in self.projects.values()])

    def save_model(self, version_arn: str, model: TrainedModel) -> None:
        self.models[version_arn] = model
        if self.store is not None:
            self.store.save_model(version_arn, model)

    def model_for(self, version_arn: str) -> TrainedModel | None:
        model = self.models.get(version_arn)
        if model is None and self.store is not None:
            model = self.store.load_model(version_arn)
            if model is not None:
                self.models[version_arn] = model
        return model

    def forget_model(self, version_arn: str) -> None:
        self.models.pop(version_arn, None)
        if self.store is not None:
            self.store.delete_model(version_arn)

    def _load(self) -> None:
        assert self.store is not None
        for data in self.store.load_state():
            project = Project.from_state(data)
            for version in project.versions.values():
                if version.status == "TRAINING_IN_PROGRESS" and version.train_outcome is None:
                    version.train_outcome = "failed"
                    version.train_failure = (
                        "Training was interrupted because the engine stopped before it ended."
                    )
            self.projects[(project.region, project.name)] = project


def _project_hint(body: Any) -> str | None:
    """The project a request is about (for faults restricted to one project)."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("ProjectName"), str):
        return str(body["ProjectName"])
    for key in ("ProjectArn", "DatasetArn", "ProjectVersionArn", "ProjectVersion"):
        value = body.get(key)
        if isinstance(value, str) and ":project/" in value:
            return value.split(":project/", 1)[1].split("/", 1)[0]
    datasets = body.get("Datasets")
    if isinstance(datasets, list) and datasets and isinstance(datasets[0], dict):
        value = datasets[0].get("Arn")
        if isinstance(value, str) and ":project/" in value:
            return value.split(":project/", 1)[1].split("/", 1)[0]
    return None
