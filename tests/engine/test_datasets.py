"""Conformance: datasets, entries, labels, distribution, and their error conditions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.engine.conftest import BUCKET, HeldClock, unchecked, upload_colour_set, wait_dataset
from tests.engine.imaging import classification_line, detection_line, unlabeled_line

GT = "GroundTruth"


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def project_and_train(rk: Any, name: str = "ds") -> tuple[str, str]:
    project = rk.create_project(ProjectName=name)["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    wait_dataset(rk, train)
    return project, train


def update(rk: Any, arn: str, lines: list[str]) -> dict[str, Any]:
    rk.update_dataset_entries(DatasetArn=arn, Changes={GT: "\n".join(lines).encode()})
    return wait_dataset(rk, arn)


def test_create_empty_dataset(rk: Any, s3: Any) -> None:
    # Given
    project = rk.create_project(ProjectName="empty")["ProjectArn"]
    # When
    arn = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    # Then
    assert arn.startswith(project.rsplit("/", 1)[0] + "/dataset/train/")
    description = wait_dataset(rk, arn)
    assert description["Status"] == "CREATE_COMPLETE"
    assert description["StatusMessageCode"] == "SUCCESS"
    assert description["DatasetStats"] == {
        "LabeledEntries": 0,
        "TotalEntries": 0,
        "TotalLabels": 0,
        "ErrorEntries": 0,
    }
    metadata = rk.describe_projects(ProjectNames=["empty"])["ProjectDescriptions"][0]["Datasets"]
    assert [(d["DatasetType"], d["DatasetArn"], d["Status"]) for d in metadata] == [
        ("TRAIN", arn, "CREATE_COMPLETE")
    ]


def test_second_dataset_of_a_type_already_exists(rk: Any, s3: Any) -> None:
    project, _ = project_and_train(rk)
    with pytest.raises(ClientError) as info:
        rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")
    assert code(info) == "ResourceAlreadyExistsException"


def test_dataset_in_unknown_project(rk: Any) -> None:
    with pytest.raises(ClientError) as info:
        rk.create_dataset(
            ProjectArn="arn:aws:rekognition:us-east-1:123456789012:project/none/1", DatasetType="TEST"
        )
    assert code(info) == "ResourceNotFoundException"


def test_dataset_type_enum_and_arn_pattern(rk: Any) -> None:
    with pytest.raises(ClientError) as info:
        rk.create_dataset(
            ProjectArn="arn:aws:rekognition:us-east-1:123456789012:project/p/1", DatasetType="VALIDATE"
        )
    assert code(info) == "ValidationException"
    with pytest.raises(ClientError) as info:
        rk.describe_dataset(DatasetArn="arn:aws:s3:::not-a-dataset-arn-at-all")
    assert code(info) == "ValidationException"


def test_update_entries_counts_exactly(rk: Any, s3: Any) -> None:
    # Given labelled, unlabelled and erroneous lines (a too-long label name, a box outside the image)
    _, train = project_and_train(rk)
    lines = upload_colour_set(s3, "stats", 2)  # 4 images, 2 labels
    lines.append(unlabeled_line(f"s3://{BUCKET}/stats/unlabeled.png"))
    lines.append(classification_line(f"s3://{BUCKET}/stats/long.png", "x" * 300))
    lines.append(
        detection_line(
            f"s3://{BUCKET}/stats/boxes.png",
            [("cat", (10, 10, 20, 20)), ("cat", (60, 60, 40, 40)), ("dog", (0, 0, 0.5, 0.5))],
            (80, 80),
        )
    )
    # When
    description = update(rk, train, lines)
    # Then
    assert description["Status"] == "UPDATE_COMPLETE"
    assert description["DatasetStats"] == {
        "LabeledEntries": 5,  # 4 colour images + the image with one valid cat box
        "TotalEntries": 7,
        "TotalLabels": 3,  # red, blue, cat
        "ErrorEntries": 2,
    }
    labels = rk.list_dataset_labels(DatasetArn=train)["DatasetLabelDescriptions"]
    assert {d["LabelName"]: d["LabelStats"] for d in labels} == {
        "blue": {"EntryCount": 2, "BoundingBoxCount": 0},
        "cat": {"EntryCount": 1, "BoundingBoxCount": 1},
        "red": {"EntryCount": 2, "BoundingBoxCount": 0},
    }


def test_non_terminal_errors_are_kept_in_the_lines(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    update(
        rk,
        train,
        [
            classification_line(f"s3://{BUCKET}/e/long.png", "y" * 257),
            detection_line(f"s3://{BUCKET}/e/box.png", [("cat", (70, 70, 40, 40))], (80, 80)),
            classification_line(f"s3://{BUCKET}/e/fine.png", "fine"),
        ],
    )
    # When
    erroneous = rk.list_dataset_entries(DatasetArn=train, HasErrors=True)["DatasetEntries"]
    clean = rk.list_dataset_entries(DatasetArn=train, HasErrors=False)["DatasetEntries"]
    # Then
    assert len(erroneous) == 2 and len(clean) == 1
    by_ref = {json.loads(line)["source-ref"].rsplit("/", 1)[1]: json.loads(line) for line in erroneous}
    assert by_ref["long.png"]["label-metadata"]["errors"][0]["code"] == "ERROR_INVALID_LABEL_NAME_LENGTH"
    annotation = by_ref["box.png"]["bounding-box"]["annotations"][0]
    assert annotation["errors"][0]["code"] == "ERROR_INVALID_BOUNDING_BOX"


def test_too_many_boxes_and_tiny_boxes(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    many = [("cat", (i, i, 10, 10)) for i in range(51)]
    update(
        rk,
        train,
        [
            detection_line(f"s3://{BUCKET}/m/many.png", many, (200, 200)),
            detection_line(f"s3://{BUCKET}/m/tiny.png", [("cat", (5, 5, 1, 1))], (400, 400)),
        ],
    )
    lines = [
        json.loads(x) for x in rk.list_dataset_entries(DatasetArn=train, HasErrors=True)["DatasetEntries"]
    ]
    codes = {
        line["source-ref"].rsplit("/", 1)[1]: [
            e["code"] for e in line["bounding-box-metadata"].get("errors", [])
        ]
        + [e["code"] for a in line["bounding-box"]["annotations"] for e in a.get("errors", [])]
        for line in lines
    }
    assert codes == {
        "many.png": ["ERROR_TOO_MANY_BOUNDING_BOXES"],
        "tiny.png": ["ERROR_BOUNDING_BOX_TOO_SMALL"],
    }
    stats = {
        d["LabelName"]: d["LabelStats"]
        for d in rk.list_dataset_labels(DatasetArn=train)["DatasetLabelDescriptions"]
    }
    assert stats == {"cat": {"EntryCount": 1, "BoundingBoxCount": 50}}


def test_same_source_ref_updates_the_entry(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    uri = f"s3://{BUCKET}/same/1.png"
    update(rk, train, [classification_line(uri, "red")])
    description = update(rk, train, [classification_line(uri, "blue")])
    assert description["DatasetStats"]["TotalEntries"] == 1
    labels = [d["LabelName"] for d in rk.list_dataset_labels(DatasetArn=train)["DatasetLabelDescriptions"]]
    assert labels == ["blue"]


def test_list_entries_filters_and_pages(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    update(
        rk,
        train,
        [
            classification_line(f"s3://{BUCKET}/f/a-1.png", "red"),
            classification_line(f"s3://{BUCKET}/f/a-2.png", "blue"),
            classification_line(f"s3://{BUCKET}/f/b-1.png", "green"),
            unlabeled_line(f"s3://{BUCKET}/f/c-1.png"),
        ],
    )

    def refs(**kwargs: Any) -> list[str]:
        lines = rk.list_dataset_entries(DatasetArn=train, **kwargs)["DatasetEntries"]
        return sorted(json.loads(line)["source-ref"].rsplit("/", 1)[1] for line in lines)

    assert refs(ContainsLabels=["red", "green"]) == ["a-1.png", "b-1.png"]
    assert refs(Labeled=False) == ["c-1.png"]
    assert refs(Labeled=True) == ["a-1.png", "a-2.png", "b-1.png"]
    assert refs(SourceRefContains="a-") == ["a-1.png", "a-2.png"]
    pages = list(
        rk.get_paginator("list_dataset_entries").paginate(DatasetArn=train, PaginationConfig={"PageSize": 3})
    )
    assert [len(p["DatasetEntries"]) for p in pages] == [3, 1]
    with pytest.raises(ClientError) as info:
        rk.list_dataset_entries(DatasetArn=train, MaxResults=101)
    assert code(info) == "ValidationException"
    with pytest.raises(ClientError) as info:
        rk.list_dataset_entries(DatasetArn=train, ContainsLabels=[f"l{i}" for i in range(11)])
    assert code(info) == "ValidationException"
    with pytest.raises(ClientError) as info:
        rk.list_dataset_entries(DatasetArn=train, SourceRefContains="   ")
    assert code(info) == "ValidationException"


def test_list_labels_pages(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    update(rk, train, [classification_line(f"s3://{BUCKET}/l/{i}.png", f"label{i}") for i in range(5)])
    first = rk.list_dataset_labels(DatasetArn=train, MaxResults=2)
    assert len(first["DatasetLabelDescriptions"]) == 2
    second = rk.list_dataset_labels(DatasetArn=train, MaxResults=2, NextToken=first["NextToken"])
    assert second["DatasetLabelDescriptions"][0]["LabelName"] == "label2"
    with pytest.raises(ClientError) as info:
        unchecked(rk).list_dataset_labels(DatasetArn=train, MaxResults=0)
    assert code(info) == "ValidationException"


def test_too_many_content_errors_fail_the_update_and_keep_the_entries(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    update(rk, train, [classification_line(f"s3://{BUCKET}/j/1.png", "red")])
    # When one line of a two-line change is not JSON (50%, above the documented 20%)
    description = update(rk, train, [classification_line(f"s3://{BUCKET}/j/2.png", "red"), "{broken"])
    # Then nothing of that change is applied
    assert description["Status"] == "UPDATE_FAILED"
    assert description["StatusMessageCode"] == "CLIENT_ERROR"
    assert description["StatusMessage"].startswith("ERROR_TOO_MANY_RECORDS_IN_ERROR")
    assert description["DatasetStats"]["TotalEntries"] == 1
    # And the dataset accepts the next valid change
    assert (
        update(rk, train, [classification_line(f"s3://{BUCKET}/j/3.png", "red")])["Status"]
        == "UPDATE_COMPLETE"
    )


def test_a_line_without_source_ref_among_ten_is_removed_and_the_rest_applied(rk: Any, s3: Any) -> None:
    # Given ten lines, one without source-ref (a terminal content error)
    _, train = project_and_train(rk)
    lines = [classification_line(f"s3://{BUCKET}/ten/{i}.png", "red") for i in range(9)]
    lines.insert(4, json.dumps({"label": 1, "label-metadata": {"class-name": "red"}}))
    # When sent in one update
    description = update(rk, train, lines)
    # Then the update completes with the nine others, and nothing names the removed line
    assert description["Status"] == "UPDATE_COMPLETE"
    assert description["StatusMessage"] == "The dataset was successfully updated."
    assert description["DatasetStats"]["TotalEntries"] == 9


def test_a_source_ref_twice_in_one_change_is_kept_once(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    lines = [classification_line(f"s3://{BUCKET}/dup/{i}.png", "red") for i in range(9)]
    lines.append(classification_line(f"s3://{BUCKET}/dup/0.png", "blue"))
    description = update(rk, train, lines)
    assert description["Status"] == "UPDATE_COMPLETE"
    assert description["DatasetStats"]["TotalEntries"] == 9


def test_a_line_over_100000_characters_is_a_content_error(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    long_line = json.loads(classification_line(f"s3://{BUCKET}/long/x.png", "red"))
    long_line["padding"] = "x" * 100_000
    lines = [classification_line(f"s3://{BUCKET}/long/{i}.png", "red") for i in range(9)]
    description = update(rk, train, [*lines, json.dumps(long_line)])
    assert description["Status"] == "UPDATE_COMPLETE"
    assert description["DatasetStats"]["TotalEntries"] == 9


def test_the_content_error_proportion_is_configurable(s3: Any) -> None:
    from autopilot.engine.testing import running_engine

    with running_engine(time_scale=0.01, content_error_fraction=0.0) as engine:
        rk = engine.client()
        _, train = project_and_train(rk)
        lines = [classification_line(f"s3://{BUCKET}/cfg/{i}.png", "red") for i in range(9)]
        description = update(rk, train, [*lines, "{broken"])
        assert (description["Status"], description["StatusMessageCode"]) == ("UPDATE_FAILED", "CLIENT_ERROR")
        assert description["DatasetStats"]["TotalEntries"] == 0


def test_missing_source_ref_alone_fails_the_update(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    description = update(rk, train, [json.dumps({"label": 1})])
    assert description["Status"] == "UPDATE_FAILED"
    assert description["StatusMessageCode"] == "CLIENT_ERROR"


def test_changes_over_5_mb_are_rejected(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk)
    line = classification_line(f"s3://{BUCKET}/big/{'k' * 900}.png", "red")
    blob = "\n".join([line] * (5 * 1024 * 1024 // len(line) + 2)).encode()
    assert len(blob) > 5_242_880
    with pytest.raises(ClientError) as info:
        rk.update_dataset_entries(DatasetArn=train, Changes={GT: blob})
    assert code(info) == "ValidationException"


def test_one_update_at_a_time_and_no_delete_while_updating(paused: tuple[Any, HeldClock]) -> None:
    # Given a dataset being created, then updated (the engine's clock held: neither completes)
    rk, clock = paused
    clock.hold()
    project = rk.create_project(ProjectName="busy")["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    assert rk.describe_dataset(DatasetArn=train)["DatasetDescription"]["Status"] == "CREATE_IN_PROGRESS"
    with pytest.raises(ClientError) as info:
        rk.delete_dataset(DatasetArn=train)
    assert code(info) == "ResourceInUseException"
    clock.release()
    wait_dataset(rk, train)
    clock.hold()
    rk.update_dataset_entries(
        DatasetArn=train, Changes={GT: classification_line(f"s3://{BUCKET}/u/1.png", "a").encode()}
    )
    assert rk.describe_dataset(DatasetArn=train)["DatasetDescription"]["Status"] == "UPDATE_IN_PROGRESS"
    # When / Then
    with pytest.raises(ClientError) as info:
        rk.update_dataset_entries(
            DatasetArn=train, Changes={GT: classification_line(f"s3://{BUCKET}/u/2.png", "a").encode()}
        )
    assert code(info) == "ResourceInUseException"
    with pytest.raises(ClientError) as info:
        rk.delete_dataset(DatasetArn=train)
    assert code(info) == "ResourceInUseException"
    clock.release()
    assert wait_dataset(rk, train)["DatasetStats"]["TotalEntries"] == 1


def test_delete_dataset_is_asynchronous(patient: Any, s3: Any) -> None:
    rk = patient
    _, train = project_and_train(rk)
    assert rk.delete_dataset(DatasetArn=train)["ResponseMetadata"]["HTTPStatusCode"] == 200
    # First DELETE_IN_PROGRESS (API reference, DeleteDataset), during which no change is accepted
    assert rk.describe_dataset(DatasetArn=train)["DatasetDescription"]["Status"] == "DELETE_IN_PROGRESS"
    with pytest.raises(ClientError) as info:
        rk.update_dataset_entries(
            DatasetArn=train, Changes={GT: classification_line(f"s3://{BUCKET}/d/1.png", "a").encode()}
        )
    assert code(info) == "ResourceInUseException"
    # Then gone: ResourceNotFoundException
    deadline = time.monotonic() + 10
    while True:
        try:
            rk.describe_dataset(DatasetArn=train)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rk.describe_projects(ProjectNames=["ds"])["ProjectDescriptions"][0]["Datasets"] == []


def create_from_manifest(rk: Any, project_name: str, manifest_key: str) -> tuple[str, dict[str, Any]]:
    """A new project's TRAIN dataset created from a manifest in BUCKET: its ARN and its description
    once settled."""
    project = rk.create_project(ProjectName=project_name)["ProjectArn"]
    arn = rk.create_dataset(
        ProjectArn=project,
        DatasetType="TRAIN",
        DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": manifest_key}}},
    )["DatasetArn"]
    return arn, dict(wait_dataset(rk, arn))


def test_create_dataset_from_manifest(rk: Any, s3: Any) -> None:
    # Given a manifest in S3 with 9 valid lines and 1 invalid line (10% < 20%)
    lines = [*upload_colour_set(s3, "manifest", 3, ("red", "blue", "green")), "not json"]
    s3.put_object(Bucket=BUCKET, Key="manifests/train.manifest", Body="\n".join(lines).encode())
    # When
    _, description = create_from_manifest(rk, "frommanifest", "manifests/train.manifest")
    # Then
    assert description["Status"] == "CREATE_COMPLETE"
    assert description["DatasetStats"]["TotalEntries"] == 9
    assert description["DatasetStats"]["TotalLabels"] == 3
    # Removed lines are not named (Developer Guide: content errors are not returned by any API)
    assert description["StatusMessage"] == "The dataset was successfully created."


def test_create_dataset_from_mostly_invalid_manifest_fails(rk: Any, s3: Any) -> None:
    s3.put_object(
        Bucket=BUCKET,
        Key="manifests/bad.manifest",
        Body=b"{}\nnope\n" + classification_line("s3://x/y.png", "a").encode(),
    )
    arn, description = create_from_manifest(rk, "badmanifest", "manifests/bad.manifest")
    assert (description["Status"], description["StatusMessageCode"]) == ("CREATE_FAILED", "CLIENT_ERROR")
    with pytest.raises(ClientError) as info:
        rk.update_dataset_entries(
            DatasetArn=arn, Changes={GT: classification_line("s3://x/z.png", "a").encode()}
        )
    assert code(info) == "InvalidParameterException"


def test_create_dataset_from_missing_manifest(rk: Any, s3: Any) -> None:
    project = rk.create_project(ProjectName="nomanifest")["ProjectArn"]
    with pytest.raises(ClientError) as info:
        rk.create_dataset(
            ProjectArn=project,
            DatasetType="TRAIN",
            DatasetSource={
                "GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "missing.manifest"}}
            },
        )
    assert code(info) == "InvalidS3ObjectException"


def test_create_dataset_copied_from_another(rk: Any, s3: Any) -> None:
    _, source = project_and_train(rk, "source")
    update(rk, source, upload_colour_set(s3, "copy", 2))
    target_project = rk.create_project(ProjectName="target")["ProjectArn"]
    copy = rk.create_dataset(
        ProjectArn=target_project, DatasetType="TEST", DatasetSource={"DatasetArn": source}
    )["DatasetArn"]
    assert wait_dataset(rk, copy)["DatasetStats"]["TotalEntries"] == 4
    with pytest.raises(ClientError) as info:
        rk.create_dataset(
            ProjectArn=target_project,
            DatasetType="TRAIN",
            DatasetSource={
                "DatasetArn": source,
                "GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "x.manifest"}},
            },
        )
    assert code(info) == "InvalidParameterException"


def test_distribute_moves_20_percent_to_test(rk: Any, s3: Any) -> None:
    # Given 20 labelled entries in TRAIN and an empty TEST
    project, train = project_and_train(rk)
    test = rk.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, test)
    update(rk, train, upload_colour_set(s3, "dist", 10))
    # When
    rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    # Then
    train_stats = wait_dataset(rk, train)["DatasetStats"]
    test_stats = wait_dataset(rk, test)["DatasetStats"]
    assert (train_stats["TotalEntries"], test_stats["TotalEntries"]) == (16, 4)
    assert test_stats["TotalLabels"] == 2
    train_refs = {
        json.loads(x)["source-ref"] for x in rk.list_dataset_entries(DatasetArn=train)["DatasetEntries"]
    }
    test_refs = {
        json.loads(x)["source-ref"] for x in rk.list_dataset_entries(DatasetArn=test)["DatasetEntries"]
    }
    assert not train_refs & test_refs
    # And TEST is no longer empty
    with pytest.raises(ClientError) as info:
        rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    assert code(info) == "InvalidParameterException"


def test_distribute_rules(rk: Any, s3: Any) -> None:
    _, train = project_and_train(rk, "one")
    other, other_train = project_and_train(rk, "two")
    other_test = rk.create_dataset(ProjectArn=other, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, other_test)
    with pytest.raises(ClientError) as info:  # two TRAIN datasets
        rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": other_train}])
    assert code(info) == "InvalidParameterException"
    with pytest.raises(ClientError) as info:  # different projects
        rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": other_test}])
    assert code(info) == "InvalidParameterException"
    with pytest.raises(ClientError) as info:  # not two datasets
        unchecked(rk).distribute_dataset_entries(Datasets=[{"Arn": train}])
    assert code(info) == "ValidationException"


def test_distribute_needs_complete_datasets(paused: tuple[Any, HeldClock]) -> None:
    rk, clock = paused
    project = rk.create_project(ProjectName="notready")["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    test = rk.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, train)
    wait_dataset(rk, test)
    lines = [classification_line(f"s3://{BUCKET}/n/{i}.png", "a" if i % 2 else "b") for i in range(10)]
    clock.hold()  # the update stays in progress
    rk.update_dataset_entries(DatasetArn=train, Changes={GT: "\n".join(lines).encode()})
    with pytest.raises(ClientError) as info:
        rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    assert code(info) == "ResourceNotReadyException"
