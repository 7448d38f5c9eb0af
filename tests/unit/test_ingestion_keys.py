"""Key decoding and routing: which uploads become which dataset entries."""

from __future__ import annotations

import pytest

from lambdas.ingestion.keys import (
    IgnoredKey,
    ImageKey,
    KeyRejected,
    ManifestKey,
    decode_key,
    parse_source_ref,
    route_key,
)

PROJECTS = ("digits", "moderation")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("digits/train/seven/my+photo.png", "digits/train/seven/my photo.png"),
        ("digits/train/caf%C3%A9/%E7%8C%AB.jpg", "digits/train/café/猫.jpg"),
        ("digits/train/a%2Bb/x.png", "digits/train/a+b/x.png"),
        ("digits/train/100%25/x.png", "digits/train/100%/x.png"),
    ],
)
def test_decode_key_handles_plus_percent_and_unicode(raw: str, decoded: str) -> None:
    # Given an S3 event key as S3 sends it / When decoded / Then it is the key the user wrote
    assert decode_key(raw) == decoded


def test_image_under_train_label_routes_to_train_dataset_with_that_label() -> None:
    route = route_key("digits/train/seven/a.png", PROJECTS)
    assert route == ImageKey(
        project="digits", dataset_type="TRAIN", label="seven", key="digits/train/seven/a.png"
    )


def test_image_under_test_label_routes_to_test_dataset() -> None:
    route = route_key("moderation/test/unsafe content/b.jpg", PROJECTS)
    assert isinstance(route, ImageKey)
    assert (route.dataset_type, route.label) == ("TEST", "unsafe content")


def test_deeper_folders_keep_the_first_folder_as_label() -> None:
    route = route_key("digits/train/7/batch-3/a.png", PROJECTS)
    assert isinstance(route, ImageKey) and route.label == "7"


@pytest.mark.parametrize(("folder", "dataset_type"), [("train", "TRAIN"), ("test", "TEST")])
def test_manifest_routes_to_its_dataset(folder: str, dataset_type: str) -> None:
    route = route_key(f"digits/manifests/{folder}/batch 1.manifest", PROJECTS)
    assert route == ManifestKey("digits", dataset_type, f"digits/manifests/{folder}/batch 1.manifest")


def test_folder_placeholder_is_ignored_not_rejected() -> None:
    assert isinstance(route_key("digits/train/seven/", PROJECTS), IgnoredKey)


def test_unknown_project_is_rejected_naming_key_and_cdk_json() -> None:
    with pytest.raises(KeyRejected) as caught:
        route_key("cats/train/tabby/a.png", PROJECTS)
    message = str(caught.value)
    assert "cats/train/tabby/a.png" in message
    assert "cdk.json" in message and "digits" in message


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("digits/train/a.png", "<label>"),
        ("digits/validation/seven/a.png", "digits/train/<label>/<file>"),
        ("digits/manifests/a.manifest", "manifests/train/"),
        ("digits/manifests/validation/a.manifest", "manifests/train/"),
        ("digits/manifests/train/a.json", ".manifest"),
        ("digits/train/ /a.png", "label name is empty"),
    ],
)
def test_misplaced_keys_are_rejected_with_the_expected_layout(key: str, hint: str) -> None:
    with pytest.raises(KeyRejected, match=None) as caught:
        route_key(key, PROJECTS)
    assert hint in str(caught.value)
    assert key in str(caught.value)


@pytest.mark.parametrize(
    ("folder", "hint"),
    [
        ("x" * 300, "300 characters; at most 256"),
        (" seven ", "starts or ends with a space"),
        ("se\tven", "control characters"),
        ("seven ", "starts or ends with a space"),
    ],
)
def test_label_folders_are_checked_like_manifest_class_names(folder: str, hint: str) -> None:
    key = f"digits/train/{folder}/a.png"
    with pytest.raises(KeyRejected) as caught:
        route_key(key, PROJECTS)
    assert hint in str(caught.value) and "Rename the folder" in str(caught.value)


def test_a_256_character_label_folder_is_accepted() -> None:
    route = route_key(f"digits/train/{'x' * 256}/a.png", PROJECTS)
    assert isinstance(route, ImageKey) and route.label == "x" * 256


def test_parse_source_ref_splits_bucket_and_key() -> None:
    assert parse_source_ref("s3://bucket/a/b c.png") == ("bucket", "a/b c.png")
    with pytest.raises(ValueError):
        parse_source_ref("https://bucket/a.png")
