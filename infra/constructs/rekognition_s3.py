"""The S3 permissions Rekognition Custom Labels uses from the role that calls it.

Custom Labels reads dataset images, writes training output and reads the images it classifies
with the caller's credentials (Developer Guide, "Set up SDK permissions"; the S3 block of the
AWS managed policy AmazonRekognitionCustomLabelsFullAccess; API reference, S3Object: "the user
must have permission to access the S3 object"). Each function below grants exactly the actions
those pages list for one use, on the data bucket and the configured projects' prefixes only.
See docs/architecture.md ("S3 permissions for Custom Labels") for the pages and the mapping.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from lambdas.common.constants import FEATURE_CONTENT_MODERATION, INFERENCE_FOLDER, TRAINING_OUTPUT_FOLDER
from lambdas.common.settings import AppSettings

# Bucket-level reads of the guide's list (the bucket ARN is their only resource).
DATASET_BUCKET_ACTIONS = ("s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket")
# Object-level reads of the guide's list: the images (and manifests) a dataset operation reads.
DATASET_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectTagging", "s3:GetObjectVersion")
# The guide's one write: CreateProjectVersion's OutputConfig location.
TRAINING_OUTPUT_ACTIONS = ("s3:PutObject",)
# DetectCustomLabels / DetectModerationLabels with Image.S3Object: read the object (and the
# version the request names).
DETECTION_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")


def adapter_projects(settings: AppSettings) -> list[str]:
    """The configured CONTENT_MODERATION projects: adapters trained from manifests in S3."""
    return sorted(name for name, p in settings.projects.items() if p.feature == FEATURE_CONTENT_MODERATION)


def grant_dataset_images_read(role: iam.IRole, bucket: s3.IBucket, projects: list[str]) -> None:
    """UpdateDatasetEntries, CreateDataset, DistributeDatasetEntries and CreateProjectVersion read
    the dataset's images (and manifests) under `<project>/` with the caller's permissions."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CustomLabelsDatasetBucket",
            actions=list(DATASET_BUCKET_ACTIONS),
            resources=[bucket.bucket_arn],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CustomLabelsDatasetImages",
            actions=list(DATASET_OBJECT_ACTIONS),
            resources=[bucket.arn_for_objects(f"{project}/*") for project in sorted(projects)],
        )
    )


def grant_training_output_write(role: iam.IRole, bucket: s3.IBucket, projects: list[str]) -> None:
    """CreateProjectVersion writes the training output under `<project>/training-output/`."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CustomLabelsTrainingOutput",
            actions=list(TRAINING_OUTPUT_ACTIONS),
            resources=[
                bucket.arn_for_objects(f"{project}/{TRAINING_OUTPUT_FOLDER}/*")
                for project in sorted(projects)
            ],
        )
    )


def grant_detection_images_read(
    role: iam.IRole, bucket: s3.IBucket, projects: list[str], *, extra_actions: tuple[str, ...] = ()
) -> None:
    """DetectCustomLabels / DetectModerationLabels read the image under `<project>/inference/`."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CustomLabelsInferenceImages",
            actions=[*DETECTION_OBJECT_ACTIONS, *extra_actions],
            resources=[
                bucket.arn_for_objects(f"{project}/{INFERENCE_FOLDER}/*") for project in sorted(projects)
            ],
        )
    )
