"""The engine: state, lookups, persistence, S3 access and background work.

Every operation runs under one re-entrant lock (the state is small; requests are short), except
the detection operations, which take the lock only to look the model up and run inference
outside it. Training runs in worker threads and reports back under the lock. Dispatch lives in
`autopilot.engine.operations`, lazy transitions in `autopilot.engine.transitions`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from autopilot.engine import errors
from autopilot.engine.arns import parse_dataset, parse_project, parse_version
from autopilot.engine.clock import Clock
from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import FaultInjector
from autopilot.engine.learning.training import TrainedModel
from autopilot.engine.state import Dataset, Project, Version
from autopilot.engine.store import Store

LOG = logging.getLogger("autopilot.engine")


class Engine:
    def __init__(self, config: EngineConfig | None = None, clock: Clock | None = None) -> None:
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

    def read_s3_object(self, s3_object: dict[str, Any], detail: bool) -> bytes:
        """The object an `S3Object` member names, or the service's InvalidS3ObjectException
        (with the engine's finding appended when `detail`)."""
        try:
            return self.get_object(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))
        except (ClientError, BotoCoreError) as exc:
            message = (
                "Unable to get object metadata from S3. Check object key, region and/or access permissions."
            )
            if detail:
                message += f" (s3://{s3_object['Bucket']}/{s3_object['Name']}: {exc})"
            raise errors.invalid_s3_object(message) from exc

    # ------------------------------------------------------------------ lookups
    def project_by_arn(self, arn: str) -> Project:
        region, name = parse_project(arn)
        project = self.projects.get((region, name))
        if project is None or project.arn != arn or self._account(arn) != self.config.account_id:
            raise errors.not_found(f"The project {arn} does not exist.")
        return project

    def open_project(self, arn: str) -> Project:
        """A project that takes new datasets and versions (CREATED), or InvalidParameterException."""
        project = self.project_by_arn(arn)
        if project.status != "CREATED":
            raise errors.invalid_parameter(f"The project {project.name} is {project.status}.")
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
