"""Lines waiting for their dataset update, and the lease that lets one updater run per dataset.

Both live in the state table under the project's partition:

    pk = PROJECT#<project>   sk = STAGED#<TYPE>#<time>#<id>   lines (JSON), attempts
    pk = PROJECT#<project>   sk = INGESTION_LEASE#<TYPE>       owner, expires_at

A staged item holds the lines of one SQS batch (or one part of a manifest) and is never changed
after it is written, so an updater can delete the items it applied without racing new uploads:
those land in new items. Duplicates across items (a redelivered upload) are merged when read: one
line per source-ref, the newest S3 event wins, exactly like the dataset itself (same source-ref =
update).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.constants import (
    ITEM_INGESTION_LEASE_PREFIX,
    ITEM_STAGED_ENTRY_PREFIX,
    STATE_PK,
    STATE_SK,
)
from lambdas.common.production import StateTableClient, project_key, state_key
from lambdas.ingestion.lines import Line

ITEM_MAX_BYTES = 300 * 1024  # DynamoDB items hold 400 KB; keep room for keys and attributes
_BATCH_WRITE_MAX = 25


@dataclass(frozen=True)
class StagedBatch:
    sk: str
    versions: list[tuple[Line, str]]  # (line, seq)
    attempts: int = 0


def staged_prefix(dataset_type: str) -> str:
    return f"{ITEM_STAGED_ENTRY_PREFIX}{dataset_type}#"


def event_seq(event_time: str, sequencer: str) -> str:
    """Orders S3 events on one key: time first, then the sequencer right-padded as AWS documents."""
    return f"{event_time}#{(sequencer or '').upper().ljust(32, '0')}"


def newest_lines(batches: Sequence[StagedBatch]) -> list[Line]:
    """One line per source-ref, the one with the greatest seq (ties: the later item)."""
    newest: dict[str, tuple[Line, str]] = {}
    for batch in batches:
        for line, seq in batch.versions:
            current = newest.get(line.source_ref)
            if current is None or current[1] <= seq:
                newest[line.source_ref] = (line, seq)
    return [line for line, _ in newest.values()]


def split_versions(
    versions: Sequence[tuple[Line, str]], max_bytes: int = ITEM_MAX_BYTES
) -> Iterator[list[Any]]:
    """Groups (line, seq) pairs into item payloads of at most ~max_bytes of JSON."""
    part: list[Any] = []
    used = 0
    for line, seq in versions:
        record = [line.source_ref, seq, line.text]
        size = len(json.dumps(record, ensure_ascii=False).encode("utf-8")) + 1
        if part and used + size > max_bytes:
            yield part
            part, used = [], 0
        part.append(record)
        used += size
    if part:
        yield part


class StagingStore(StateTableClient):
    def __init__(
        self, table_name: str, client: Any | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(table_name, client)
        self._clock = clock

    def stage(self, project: str, dataset_type: str, lines: Sequence[Line], seq: str) -> int:
        """Stages the lines of one event; returns how many lines were written."""
        return self.stage_versions(project, dataset_type, [(line, seq) for line in lines])

    def stage_versions(self, project: str, dataset_type: str, versions: Sequence[tuple[Line, str]]) -> int:
        """Stages (line, seq) pairs in as few new items as their size allows."""
        items = [
            {
                **state_key(
                    project, f"{staged_prefix(dataset_type)}{self._clock():017.6f}#{uuid.uuid4().hex}"
                ),
                "lines": {"S": json.dumps(part, separators=(",", ":"), ensure_ascii=False)},
                "line_count": {"N": str(len(part))},
                "attempts": {"N": "0"},
            }
            for part in split_versions(versions)
        ]
        self._batch_write([{"PutRequest": {"Item": item}} for item in items])
        return len(versions)

    def batches(self, project: str, dataset_type: str, max_lines: int) -> list[StagedBatch]:
        """The oldest staged items of one dataset, up to about `max_lines` lines."""
        found: list[StagedBatch] = []
        total = 0
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": STATE_PK, "#sk": STATE_SK},
            ExpressionAttributeValues={
                ":pk": {"S": project_key(project)},
                ":prefix": {"S": staged_prefix(dataset_type)},
            },
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                versions = [(Line(ref, text), seq) for ref, seq, text in json.loads(item["lines"]["S"])]
                found.append(StagedBatch(item[STATE_SK]["S"], versions, int(item["attempts"]["N"])))
                total += len(versions)
                if total >= max_lines:
                    return found
        return found

    def remove(self, project: str, dataset_type: str, batches: Sequence[StagedBatch]) -> None:
        self._batch_write([{"DeleteRequest": {"Key": state_key(project, batch.sk)}} for batch in batches])

    def count_attempt(self, project: str, batch: StagedBatch) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=state_key(project, batch.sk),
            UpdateExpression="ADD attempts :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def _batch_write(self, requests: list[dict[str, Any]], max_rounds: int = 8) -> None:
        """BatchWriteItem, 25 at a time, resending unprocessed items with bounded backoff."""
        for start in range(0, len(requests), _BATCH_WRITE_MAX):
            pending = requests[start : start + _BATCH_WRITE_MAX]
            for attempt in range(max_rounds):
                response = self.client.batch_write_item(RequestItems={self.table_name: pending})
                pending = response.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            if pending:
                raise RuntimeError(f"DynamoDB left {len(pending)} writes unprocessed in {self.table_name}")


class DatasetLease(StateTableClient):
    """A time-bounded lease per dataset: at most one holder updates a dataset at any time.

    A holder that dies loses the lease when it expires, so nothing waits on it forever.
    """

    def __init__(
        self, table_name: str, client: Any | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(table_name, client)
        self._clock = clock

    def _key(self, project: str, dataset_type: str) -> dict[str, Any]:
        return state_key(project, f"{ITEM_INGESTION_LEASE_PREFIX}{dataset_type}")

    def acquire(self, project: str, dataset_type: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **self._key(project, dataset_type),
                    "owner": {"S": owner},
                    "expires_at": {"N": str(int(now + seconds))},
                },
                ConditionExpression="attribute_not_exists(#pk) OR expires_at < :now OR #owner = :owner",
                ExpressionAttributeNames={"#pk": STATE_PK, "#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": str(int(now))}, ":owner": {"S": owner}},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def release(self, project: str, dataset_type: str, owner: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=self._key(project, dataset_type),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
