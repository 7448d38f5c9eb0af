"""Engine configuration: simulated durations (scaled for tests), account, persistence directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class EngineConfig:
    """How the engine behaves.

    ``time_scale`` multiplies every simulated duration below (1.0 = realistic order of magnitude,
    0.01 = tests). Real compute (training) takes what it takes on top of the scaled minimum.
    """

    time_scale: float = 1.0
    data_dir: Path | str | None = None
    account_id: str = DEFAULT_ACCOUNT_ID
    default_region: str = DEFAULT_REGION
    # Simulated durations in seconds, before scaling.
    dataset_create_seconds: float = 5.0
    dataset_update_seconds: float = 20.0
    training_min_seconds: float = 300.0
    start_seconds: float = 120.0
    stop_seconds: float = 30.0
    delete_seconds: float = 5.0
    # Seed of every random choice (DistributeDatasetEntries, background crops).
    seed: int = 7
    # Where the service's behaviour is not documented precisely, the engine's choice is a setting
    # (docs/engine.md, "How it differs"), so that the application can be tested against each.
    # Share of lines with terminal content errors above which a dataset creation or update fails
    # (documented as 20% for manifest imports; not documented for UpdateDatasetEntries).
    content_error_fraction: float = 0.2
    # HTTP status of ThrottlingException: the API reference gives 500; the Developer Guide's error
    # list names it under both 400 and 5xx.
    throttling_status: int = 500
    # DeleteProject refused while datasets remain (Developer Guide, "Deleting a project (SDK)");
    # the API reference only requires the models to be deleted first.
    delete_project_requires_no_datasets: bool = True
    # CreateDataset on CONTENT_MODERATION projects (and so adapters trained from datasets): the
    # adapter pages document manifests (TrainingData/TestingData) for SDK training but do not say
    # that dataset operations are refused. False refuses them.
    adapter_datasets: bool = True
    # Simulated Amazon A2I (DetectModerationLabels with HumanLoopConfig): a human loop starts when
    # an unsafe label's confidence lies in [low, high).
    human_loop_band: tuple[float, float] = (50.0, 90.0)

    def scaled(self, seconds: float) -> float:
        return max(0.0, seconds * self.time_scale)

    @property
    def data_path(self) -> Path | None:
        return Path(self.data_dir) if self.data_dir is not None else None
