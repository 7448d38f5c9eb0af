"""The one stack: composes one construct per concern, nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.constructs.app import AppScope
from infra.constructs.detection import Detection
from infra.constructs.guard import Guard
from infra.constructs.ingestion import Ingestion
from infra.constructs.monitoring import Monitoring
from infra.constructs.notifications import Notifications
from infra.constructs.outputs import declare_outputs
from infra.constructs.serving import Serving
from infra.constructs.storage import Storage
from infra.constructs.training import Training
from lambdas.common.settings import AppSettings


class AutopilotStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AppSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.storage = Storage(self, "Storage", settings=settings)
        self.notifications = Notifications(self, "Notifications", settings=settings, key=self.storage.key)
        app = AppScope(settings=settings, storage=self.storage, notifications=self.notifications)
        self.ingestion = Ingestion(self, "Ingestion", **app)
        self.training = Training(self, "Training", **app)
        self.serving = Serving(self, "Serving", **app)
        self.detection = Detection(self, "Detection", serving=self.serving, **app)
        self.guard = Guard(self, "Guard", detection=self.detection, **app)
        self.monitoring = Monitoring(self, "Monitoring", settings=settings, stack=self)
        self.outputs = declare_outputs(self)
