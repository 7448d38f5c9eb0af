"""Flush requests: delayed messages to the ingestion queue that ask for one dataset's update."""

from __future__ import annotations

import json
from typing import Any

from lambdas.common import aws
from lambdas.ingestion.policy import flush_request, request_delay


class FlushQueue:
    client = aws.LazyClient("sqs")

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def request(self, project: str, dataset_type: str, delay: int) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(flush_request(project, dataset_type)),
            DelaySeconds=request_delay(delay),
        )
