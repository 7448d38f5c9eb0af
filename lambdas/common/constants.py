"""Names shared by the CDK stack, the Lambda handlers, the local runtime and the tests.

One source of truth: infra builds filters and environment variables from these, the handlers
parse keys and read the environment with them, and the tests import them instead of repeating
literals.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------------------
# S3 layout: every key starts with "<project>/" followed by one of these folders.
# ---------------------------------------------------------------------------
TRAIN_FOLDER: Final = "train"  # <project>/train/<label>/<file>
TEST_FOLDER: Final = "test"  # <project>/test/<label>/<file>
MANIFESTS_FOLDER: Final = "manifests"  # <project>/manifests/(train|test)/<name>.manifest
INFERENCE_FOLDER: Final = "inference"  # <project>/inference/<anything>
RESULTS_FOLDER: Final = "results"  # <project>/results/<inference key>.json
REVIEW_FOLDER: Final = "review"  # <project>/review/<inference key>
TRAINING_OUTPUT_FOLDER: Final = "training-output"  # OutputConfig.S3KeyPrefix of every version
# CONTENT_MODERATION projects: ingestion keeps the adapter's manifests here (not a notified folder),
# <project>/adapter-manifests/train.manifest and .../test.manifest; training reads their versions.
ADAPTER_MANIFESTS_FOLDER: Final = "adapter-manifests"
ADAPTER_MANIFEST_ENTRIES_METADATA: Final = "entries"  # x-amz-meta-entries: the manifest's line count
ADAPTER_GROUNDTRUTH_ATTRIBUTE: Final = "content-moderation-groundtruth"  # using-adapters-manifest-files

MANIFEST_SUFFIX: Final = ".manifest"
IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png")

# Ingestion listens on these folders, detection on INFERENCE_FOLDER. The stack creates one S3
# notification per (configured project, folder) pair: prefix "<project>/<folder>/".
INGESTION_FOLDERS: Final = (TRAIN_FOLDER, TEST_FOLDER, MANIFESTS_FOLDER)
DETECTION_FOLDERS: Final = (INFERENCE_FOLDER,)

# Rekognition dataset types, by folder.
DATASET_TYPE_BY_FOLDER: Final = {TRAIN_FOLDER: "TRAIN", TEST_FOLDER: "TEST"}

# ---------------------------------------------------------------------------
# Environment variables read by the handlers (validated by pydantic models in each handler).
# ---------------------------------------------------------------------------
ENV_BUCKET: Final = "BUCKET_NAME"
ENV_LIFECYCLE_TOPIC: Final = "LIFECYCLE_TOPIC_ARN"
ENV_DETECTIONS_TOPIC: Final = "DETECTIONS_TOPIC_ARN"
ENV_STATE_TABLE: Final = "STATE_TABLE_NAME"
ENV_IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE_NAME"
ENV_SETTINGS_PARAMETER: Final = "SETTINGS_PARAMETER_NAME"
ENV_TRAINING_STATE_MACHINE: Final = "TRAINING_STATE_MACHINE_ARN"
ENV_MODEL_CONTROL_STATE_MACHINE: Final = "MODEL_CONTROL_STATE_MACHINE_ARN"
ENV_DETECTION_QUEUE_URL: Final = "DETECTION_QUEUE_URL"
ENV_EVENT_BUS: Final = "EVENT_BUS_NAME"

# ---------------------------------------------------------------------------
# Powertools service names (POWERTOOLS_SERVICE_NAME), one per function: the "service" dimension
# of its metrics and the "service" key of its logs, so no two functions' metrics merge.
# ---------------------------------------------------------------------------
SERVICE_INGESTION: Final = "ingestion"
SERVICE_DETECTION: Final = "detection"
SERVICE_MODEL_CONTROLLER: Final = "model-controller"
SERVICE_GUARD: Final = "account-guard"
# Training functions: this prefix + the function's role in the workflow (training-trigger, ...).
SERVICE_TRAINING_PREFIX: Final = "training-"

# ---------------------------------------------------------------------------
# Stack outputs (CfnOutput ids, the OutputKey of DescribeStacks). The operator CLI finds every
# resource through these on AWS, and the local runtime resolves the same outputs from the template.
# ---------------------------------------------------------------------------
OUTPUT_DATA_BUCKET: Final = "DataBucketName"
OUTPUT_STATE_TABLE: Final = "StateTableName"
OUTPUT_SETTINGS_PARAMETER: Final = "SettingsParameterName"
OUTPUT_LIFECYCLE_TOPIC: Final = "LifecycleTopicArn"
OUTPUT_DETECTIONS_TOPIC: Final = "DetectionsTopicArn"
OUTPUT_TRAINING_STATE_MACHINE: Final = "TrainingStateMachineArn"
OUTPUT_MODEL_CONTROL_STATE_MACHINE: Final = "ModelControlStateMachineArn"
OUTPUT_INGESTION_QUEUE: Final = "IngestionQueueUrl"
OUTPUT_INGESTION_DEAD_LETTER_QUEUE: Final = "IngestionDeadLetterQueueUrl"
OUTPUT_DETECTION_QUEUE: Final = "DetectionQueueUrl"
OUTPUT_DETECTION_DEAD_LETTER_QUEUE: Final = "DetectionDeadLetterQueueUrl"
OUTPUT_TRAINING_TRIGGER_DEAD_LETTER_QUEUE: Final = "TrainingTriggerDeadLetterQueueUrl"
OUTPUT_MODEL_CONTROL_DEAD_LETTER_QUEUE: Final = "ModelControlDeadLetterQueueUrl"
OUTPUT_WORK_QUEUES: Final = (OUTPUT_INGESTION_QUEUE, OUTPUT_DETECTION_QUEUE)
OUTPUT_DEAD_LETTER_QUEUES: Final = (
    OUTPUT_INGESTION_DEAD_LETTER_QUEUE,
    OUTPUT_DETECTION_DEAD_LETTER_QUEUE,
    OUTPUT_TRAINING_TRIGGER_DEAD_LETTER_QUEUE,
    OUTPUT_MODEL_CONTROL_DEAD_LETTER_QUEUE,
)
STACK_OUTPUTS: Final = (
    OUTPUT_DATA_BUCKET,
    OUTPUT_STATE_TABLE,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_DETECTIONS_TOPIC,
    OUTPUT_TRAINING_STATE_MACHINE,
    OUTPUT_MODEL_CONTROL_STATE_MACHINE,
    *OUTPUT_WORK_QUEUES,
    *OUTPUT_DEAD_LETTER_QUEUES,
)

# ---------------------------------------------------------------------------
# State table (DynamoDB, single table). Partition key "pk" = "PROJECT#<name>", sort key "sk"
# = one of the item kinds below.
# ---------------------------------------------------------------------------
STATE_PK: Final = "pk"
STATE_SK: Final = "sk"
STATE_TTL_ATTRIBUTE: Final = "expires_at"
PROJECT_PK_PREFIX: Final = "PROJECT#"
ITEM_PRODUCTION: Final = "PRODUCTION"  # the promoted version, its F1 and dataset snapshot
ITEM_TRAINING: Final = "TRAINING"  # the in-flight training lock and last-trained counts
ITEM_SERVING: Final = "SERVING"  # model controller state: last detection, override, transition
# The account guard's memory between sweeps: one item (pk GUARD_PK, sk ITEM_GUARD_SWEEP) holding the
# running versions it saw (since when) and each project's inference-unit hours of the current UTC day.
GUARD_PK: Final = "GUARD"
ITEM_GUARD_SWEEP: Final = "SWEEP"
ITEM_KEPT_EVENT_PREFIX: Final = "EVENT#"  # + event type + "#" + time + "#" + id: kept lifecycle events
KEPT_EVENT_DAYS: Final = 14  # how long kept events stay (the table's TTL), for `autopilot report`
ITEM_USAGE_PREFIX: Final = "USAGE#"  # + time + "#" + status: the usage ledger (RUNNING / STOPPED records)
USAGE_LEDGER_RETENTION_DAYS: Final = 455  # as long as CloudWatch keeps hourly metrics (15 months)

# ---------------------------------------------------------------------------
# Events. Lifecycle messages on the lifecycle topic carry message attributes
# "event_type" and "project"; detections carry the attributes in DETECTION_ATTRIBUTES.
# ---------------------------------------------------------------------------
EVENT_SOURCE: Final = "custom-labels-autopilot"
ATTR_EVENT_TYPE: Final = "event_type"
ATTR_PROJECT: Final = "project"

EVENT_ENTRIES_APPLIED: Final = "entries.applied"
EVENT_ENTRIES_REJECTED: Final = "entries.rejected"
EVENT_PROJECT_CREATED: Final = "project.created"
EVENT_TRAINING_SKIPPED: Final = "training.skipped"
EVENT_TRAINING_STARTED: Final = "training.started"
EVENT_TRAINING_DATASET_SPLIT: Final = "training.dataset_split"  # empty TEST filled from TRAIN
EVENT_TRAINING_COMPLETED: Final = "training.completed"
EVENT_TRAINING_FAILED: Final = "training.failed"
EVENT_VERSION_PROMOTED: Final = "version.promoted"
EVENT_VERSION_REJECTED: Final = "version.rejected"
EVENT_VERSION_DELETED: Final = "version.deleted"
# A version of a project that the training workflow did not create (an AutoUpdate adapter retrained
# by the service on a new base model version, or a version made by hand).
EVENT_VERSION_DISCOVERED: Final = "version.discovered"
EVENT_MODEL_STARTING: Final = "model.starting"
EVENT_MODEL_RUNNING: Final = "model.running"
EVENT_MODEL_START_FAILED: Final = "model.start_failed"
EVENT_MODEL_START_ABANDONED: Final = "model.start_abandoned"  # the controller stopped retrying
EVENT_MODEL_STOPPING: Final = "model.stopping"
EVENT_MODEL_STOPPED: Final = "model.stopped"
EVENT_MODEL_STOP_FAILED: Final = "model.stop_failed"
# Account guard (every project of the account, configured or not).
EVENT_GUARD_UNMANAGED_RUNNING: Final = "guard.unmanaged_running"
EVENT_GUARD_STOPPED: Final = "guard.stopped"  # the guard stopped a model (unmanaged or over budget)
EVENT_GUARD_BUDGET_EXCEEDED: Final = "guard.budget_exceeded"

# EventBridge detail-types for on-demand triggers (sent by the CLI, received by the stack).
DETAIL_TYPE_TRAIN_REQUESTED: Final = "Autopilot Training Requested"
DETAIL_TYPE_MODEL_CONTROL_REQUESTED: Final = "Autopilot Model Control Requested"

# Detection message attributes.
ATTR_TOP_LABEL: Final = "top_label"
ATTR_CONFIDENCE: Final = "confidence"
ATTR_STATUS: Final = "status"
# Moderation results: whether an A2I human loop started, and who answered (adapter or base model).
ATTR_HUMAN_LOOP: Final = "human_loop"
HUMAN_LOOP_ACTIVATED: Final = "activated"
HUMAN_LOOP_NOT_ACTIVATED: Final = "not_activated"
ATTR_ANSWERED_BY: Final = "answered_by"
ANSWERED_BY_ADAPTER: Final = "adapter"
ANSWERED_BY_BASE_MODEL: Final = "base_model"
DETECTION_STATUS_OK: Final = "CLASSIFIED"
DETECTION_STATUS_NO_LABEL: Final = "NO_LABEL"
DETECTION_STATUS_ERROR: Final = "ERROR"

# ---------------------------------------------------------------------------
# Rekognition
# ---------------------------------------------------------------------------
FEATURE_CUSTOM_LABELS: Final = "CUSTOM_LABELS"
FEATURE_CONTENT_MODERATION: Final = "CONTENT_MODERATION"
UPDATE_ENTRIES_MAX_BYTES: Final = 5 * 1024 * 1024  # Changes.GroundTruth must stay under this
REKOGNITION_MAX_RESULTS: Final = 100  # List*/Describe* page size ceiling
VERSION_TAG_MANAGED_BY: Final = "managed-by"

# ---------------------------------------------------------------------------
# Ingestion (labeling on upload)
# ---------------------------------------------------------------------------
ENV_INGESTION_QUEUE_URL: Final = "INGESTION_QUEUE_URL"  # flush requests are sent back to this queue
ENV_INGESTION_FLUSH_DELAY: Final = "INGESTION_FLUSH_DELAY_SECONDS"  # debounce before a dataset update
ENV_DATASET_POLL_SECONDS: Final = "DATASET_POLL_SECONDS"  # DescribeDataset poll interval
ITEM_INGESTION_LEASE_PREFIX: Final = "INGESTION_LEASE#"  # + dataset type: one updater per dataset
ITEM_STAGED_ENTRY_PREFIX: Final = "STAGED#"  # + dataset type + "#" + source-ref: lines awaiting update
GROUND_TRUTH_LABEL_ATTRIBUTE: Final = "autopilot-label"  # image-level label attribute of folder uploads
ENV_INGESTION_RETRY_HOURS: Final = "INGESTION_RETRY_HOURS"  # service errors waited out this long, then alarm
ITEM_APPLIED_PREFIX: Final = "APPLIED#"  # + dataset type + "#" + hash: token of the last applied line
ITEM_INGESTION_RETRY_PREFIX: Final = "INGESTION_RETRY#"  # + dataset type: service-error streak
ITEM_INGESTION_TASK: Final = "INGESTION_TASK"  # the project's task type, fixed by its first entries
ITEM_SEEN_VERSION_PREFIX: Final = "SEEN_VERSION#"  # + version name: a version reported once
METRIC_INGESTION_STALLED: Final = "DatasetUpdatesStalled"  # staged lines kept after the retry bound
INGESTION_RETRY_HOURS_DEFAULT: Final = 24  # service errors are waited out this long before the alarm
# SQS DelaySeconds: 0 to 900 (SendMessage, Amazon SQS API Reference).
SQS_MAX_DELAY_SECONDS: Final = 900

# Rekognition Custom Labels limits checked before anything is sent.
IMAGE_MAX_BYTES: Final = 15 * 1024 * 1024
IMAGE_MIN_SIDE: Final = 64
IMAGE_MAX_SIDE: Final = 4096
IMAGE_MAX_ASPECT_RATIO: Final = 20.0
LABEL_NAME_MAX_LENGTH: Final = 256
MAX_LABELS_PER_IMAGE: Final = 50
MAX_BOXES_PER_IMAGE: Final = 50
DATASET_ENTRY_MAX_CHARS: Final = 100_000  # one JSON line of UpdateDatasetEntries / ListDatasetEntries

# ---------------------------------------------------------------------------
# Serving (model controller) and detection
# ---------------------------------------------------------------------------
# Actions accepted in the detail of DETAIL_TYPE_MODEL_CONTROL_REQUESTED (and by the controller's
# direct input): force a start or a stop for "override_minutes", or clear the override ("auto").
CONTROL_ACTION_START: Final = "start"
CONTROL_ACTION_STOP: Final = "stop"
CONTROL_ACTION_AUTO: Final = "auto"
CONTROL_TRIGGER_SCHEDULE: Final = "schedule"  # "trigger" value the controller schedules send
CONTROL_TRIGGER_DETECTION: Final = "detection"  # "trigger" of detection's start requests
DEFAULT_OVERRIDE_MINUTES: Final = 60

# Model control state machine input "action".
TRANSITION_START: Final = "START"
TRANSITION_STOP: Final = "STOP"

# CloudWatch metrics (namespace from POWERTOOLS_METRICS_NAMESPACE, dimension METRIC_DIMENSION_PROJECT).
METRIC_DIMENSION_PROJECT: Final = "project"
METRIC_MODEL_RUNNING_MINUTES: Final = "ModelRunningMinutes"  # per controller tick while RUNNING
# Minutes a model ran while the controller wanted it stopped (stop pending, failed or refused).
METRIC_MODEL_RUNNING_UNWANTED_MINUTES: Final = "ModelRunningWithoutDemandMinutes"
METRIC_IMAGES_CLASSIFIED: Final = "ImagesClassified"
# Account guard, per sweep (no dimension: one figure for the account and region).
METRIC_UNMANAGED_MODELS_RUNNING: Final = "UnmanagedModelsRunning"
METRIC_UNMANAGED_INFERENCE_UNITS: Final = "UnmanagedInferenceUnits"
METRIC_GUARD_STOPS: Final = "GuardStops"
METRIC_IMAGES_DEFERRED: Final = "ImagesDeferred"
METRIC_IMAGE_ERRORS: Final = "ImageErrors"

# SQS message attributes on detection messages sent back to the queue while the model is not
# ready or throttled (the original S3 notification body is kept unchanged).
DEFER_ATTR_COUNT: Final = "autopilot_deferrals"
DEFER_ATTR_FIRST_AT: Final = "autopilot_first_deferred_at"
