"""UPDATE_FAILED from the service, through the ingestion handler (moto + the local engine, whose
fault injection makes UpdateDatasetEntries end UPDATE_FAILED with a SERVICE_ERROR).

docs/ingestion.md: "If the dataset ends UPDATE_FAILED, the staged items are kept and retried ...
After 3 failed attempts the item's lines are dropped and published as entries.rejected with the
service's status message." No SQS record fails meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from autopilot.engine.testing import RunningEngine, running_engine
from bench.ingestion_burst import png_bytes
from lambdas.common import aws, config
from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_ENTRIES_REJECTED
from lambdas.ingestion import handler
from tests.unit.ingestion_world import OfflineIngestion

pytestmark = pytest.mark.xdist_group("ingestion-engine")

SERVICE_MESSAGE = "An internal error occurred while updating the dataset (injected)."


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OfflineIngestion, RunningEngine]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), running_engine(time_scale=0.001) as engine:
        offline = OfflineIngestion()
        offline.activate(monkeypatch)
        yield offline, engine
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()


def with_datasets(offline: OfflineIngestion) -> None:
    """The project and its datasets exist, with one entry (the fault then only meets updates)."""
    offline.put("digits/train/1/first.png", png_bytes())
    offline.drain()
    assert len(offline.dataset_entries("digits", "TRAIN")) == 1


def test_one_failed_update_is_retried_and_the_entry_arrives(
    world: tuple[OfflineIngestion, RunningEngine],
) -> None:
    offline, engine = world
    # Given the service fails the next update of the project
    with_datasets(offline)
    engine.faults.fail_dataset_update(count=1, project="digits", message=SERVICE_MESSAGE)
    # When an image is uploaded and every message is delivered
    offline.put("digits/train/7/a.png", png_bytes())
    report = offline.drain()
    # Then the entry arrived on a later flush, nothing was rejected and no record failed
    assert sorted(e["source-ref"].rsplit("/", 1)[1] for e in offline.dataset_entries("digits", "TRAIN")) == [
        "a.png",
        "first.png",
    ]
    assert [e for e in offline.events() if e["type"] == EVENT_ENTRIES_REJECTED] == []
    assert [e for e in offline.events() if e["type"] == EVENT_ENTRIES_APPLIED]
    assert report.failures == 0


# Three updates in a row that end UPDATE_FAILED with SERVICE_ERROR no longer drop anything: the lines
# are waited out and land (test_ingestion_handler.py
# test_twenty_images_survive_three_failed_updates_in_a_row, and the flusher's service-error tests).
