"""Lines waiting for their dataset update, and the lease that lets one updater run per dataset.

Both live in the state table under the project's partition:

    pk = PROJECT#<project>   sk = STAGED#<TYPE>#<time>#<id>   lines (JSON), attempts
    pk = PROJECT#<project>   sk = INGESTION_LEASE#<TYPE>       owner, expires_at
    pk = PROJECT#<project>   sk = APPLIED#<TYPE>#<hash>        ref, seq (last applied or refused line)
    pk = PROJECT#<project>   sk = INGESTION_RETRY#<TYPE>       since, attempts (service-error streak)
    pk = PROJECT#<project>   sk = INGESTION_TASK               task (image-level or bounding boxes)

A staged item holds the lines of one SQS batch (or one part of a manifest) and is never changed
after it is written, so an updater can delete the items it applied without racing new uploads:
those land in new items. Duplicates across items (a redelivered upload) are merged when read: one
line per source-ref, the newest S3 event wins, exactly like the dataset itself (same source-ref =
update). The ordering token (`seq`) of the last line applied per source-ref and dataset is kept
after the staged items are gone, so that a late redelivery of an older event never undoes it.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.constants import (
    ITEM_APPLIED_PREFIX,
    ITEM_INGESTION_LEASE_PREFIX,
    ITEM_INGESTION_RETRY_PREFIX,
    ITEM_INGESTION_TASK,
    ITEM_STAGED_ENTRY_PREFIX,
    STATE_PK,
    STATE_SK,
)
from lambdas.common.production import StateTableClient, project_key, state_key
from lambdas.ingestion.lines import Line

ITEM_MAX_BYTES = 300 * 1024  # DynamoDB items hold 400 KB; keep room for keys and attributes
_BATCH_WRITE_MAX = 25
_BATCH_GET_MAX = 100


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


def newest_versions(batches: Sequence[StagedBatch]) -> list[tuple[Line, str]]:
    """One (line, seq) per source-ref, the one with the greatest seq (ties: the later item)."""
    newest: dict[str, tuple[Line, str]] = {}
    for batch in batches:
        for line, seq in batch.versions:
            current = newest.get(line.source_ref)
            if current is None or current[1] <= seq:
                newest[line.source_ref] = (line, seq)
    return list(newest.values())


def newest_lines(batches: Sequence[StagedBatch]) -> list[Line]:
    """One line per source-ref, the one with the greatest seq (ties: the later item)."""
    return [line for line, _ in newest_versions(batches)]


def applied_key(dataset_type: str, dataset_arn: str, source_ref: str) -> str:
    """Per dataset (a deleted and recreated dataset starts afresh) and source-ref; hashed because a
    source-ref can be longer than a DynamoDB sort key."""
    digest = hashlib.sha256(f"{dataset_arn}\n{source_ref}".encode()).hexdigest()
    return f"{ITEM_APPLIED_PREFIX}{dataset_type}#{digest}"


@dataclass(frozen=True)
class RetryStreak:
    """Consecutive flushes that met a service error (not the lines' fault): since when, how many."""

    since: float
    attempts: int


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
        self._tasks: dict[str, str] = {}

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
        for item in self._staged_items(project, staged_prefix(dataset_type)):
            versions = [(Line(ref, text), seq) for ref, seq, text in json.loads(item["lines"]["S"])]
            found.append(StagedBatch(item[STATE_SK]["S"], versions, int(item["attempts"]["N"])))
            total += len(versions)
            if total >= max_lines:
                return found
        return found

    def staged_counts(self, project: str) -> dict[str, int]:
        """Lines waiting for a dataset update, per dataset type (for `autopilot queues`)."""
        counts: dict[str, int] = {}
        for item in self._staged_items(project, ITEM_STAGED_ENTRY_PREFIX):
            dataset_type = item[STATE_SK]["S"].removeprefix(ITEM_STAGED_ENTRY_PREFIX).split("#", 1)[0]
            try:
                count = len(json.loads(item.get("lines", {}).get("S", "[]")))
            except ValueError:
                count = 1
            counts[dataset_type] = counts.get(dataset_type, 0) + count
        return counts

    def _staged_items(self, project: str, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": STATE_PK, "#sk": STATE_SK},
            ExpressionAttributeValues={":pk": {"S": project_key(project)}, ":prefix": {"S": prefix}},
            ConsistentRead=True,
        )
        for page in pages:
            yield from page.get("Items", [])

    def remove(self, project: str, dataset_type: str, batches: Sequence[StagedBatch]) -> None:
        self._batch_write([{"DeleteRequest": {"Key": state_key(project, batch.sk)}} for batch in batches])

    # -- ordering tokens of applied lines -------------------------------------------------------
    def applied_seqs(
        self, project: str, dataset_type: str, dataset_arn: str, refs: Sequence[str]
    ) -> dict[str, str]:
        """The seq of the last line applied (or refused by the service) per source-ref, if any."""
        keys = {applied_key(dataset_type, dataset_arn, ref): ref for ref in dict.fromkeys(refs)}
        found: dict[str, str] = {}
        pending = list(keys)
        for start in range(0, len(pending), _BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [state_key(project, sk) for sk in pending[start : start + _BATCH_GET_MAX]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[keys[item[STATE_SK]["S"]]] = item["seq"]["S"]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            if request:
                raise RuntimeError(f"DynamoDB left keys unread in {self.table_name}")
        return found

    def record_applied(
        self, project: str, dataset_type: str, dataset_arn: str, versions: Sequence[tuple[str, str]]
    ) -> None:
        """Remembers (source-ref, seq) pairs as the last applied lines."""
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            **state_key(project, applied_key(dataset_type, dataset_arn, ref)),
                            "ref": {"S": ref},
                            "seq": {"S": seq},
                        }
                    }
                }
                for ref, seq in dict(versions).items()
            ]
        )

    # -- service-error streak ---------------------------------------------------------------------
    def _retry_key(self, project: str, dataset_type: str) -> dict[str, Any]:
        return state_key(project, f"{ITEM_INGESTION_RETRY_PREFIX}{dataset_type}")

    def retry_streak(self, project: str, dataset_type: str) -> RetryStreak | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._retry_key(project, dataset_type), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return RetryStreak(float(item["since"]["N"]), int(item["attempts"]["N"]))

    def save_retry_streak(self, project: str, dataset_type: str, streak: RetryStreak) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                **self._retry_key(project, dataset_type),
                "since": {"N": repr(streak.since)},
                "attempts": {"N": str(streak.attempts)},
            },
        )

    def clear_retry_streak(self, project: str, dataset_type: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._retry_key(project, dataset_type))

    # -- the project's task type ------------------------------------------------------------------
    def project_task(self, project: str, proposed: str) -> str:
        """The project's task type; the first caller fixes it to `proposed`. Cached: it never changes."""
        cached = self._tasks.get(project)
        if cached is not None:
            return cached
        key = state_key(project, ITEM_INGESTION_TASK)
        item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item={**key, "task": {"S": proposed}},
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": STATE_PK},
                )
                task = proposed
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)["Item"]
                task = item["task"]["S"]
        else:
            task = item["task"]["S"]
        self._tasks[project] = task
        return task

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


class Stager:
    """Stages the lines of one batch of uploads, image and manifest lines alike.

    Image lines are held and written together after the batch (a few batched writes instead of one
    per image); a manifest's blocks are written as they are read (`StagingStore.stage`, inside the
    manifest's idempotency record, which must not outlive its lines). Either way the dataset is
    remembered, so that every dataset that got new lines is flushed.
    """

    def __init__(self, store: StagingStore) -> None:
        self.store = store
        self.held: dict[tuple[str, str], list[tuple[Line, str]]] = {}
        self.touched: set[tuple[str, str]] = set()

    def hold(self, project: str, dataset_type: str, versions: Sequence[tuple[Line, str]]) -> None:
        self.held.setdefault((project, dataset_type), []).extend(versions)

    def staged(self, project: str, dataset_type: str) -> None:
        """Lines of this dataset were staged already (a manifest's blocks)."""
        self.touched.add((project, dataset_type))

    def write_held(self) -> int:
        """Writes the held lines; returns how many."""
        written = 0
        for (project, dataset_type), versions in self.held.items():
            written += self.store.stage_versions(project, dataset_type, versions)
            self.touched.add((project, dataset_type))
        self.held.clear()
        return written
