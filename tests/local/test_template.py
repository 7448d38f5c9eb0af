"""The resolver of CloudFormation intrinsics and the synthesized template of the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.local.template import (
    Resolver,
    UnresolvedReferenceError,
    deep_merge,
    physical_name,
    references,
    resources_of_type,
)

TEMPLATE: dict[str, Any] = {
    "Parameters": {"BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/hnb659fds/version"}},
    "Conditions": {
        "IsEast": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "NotEast": {"Fn::Not": [{"Condition": "IsEast"}]},
        "Both": {"Fn::And": [{"Condition": "IsEast"}, {"Fn::Or": [{"Condition": "NotEast"}, True]}]},
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}, "Condition": "NotEast"},
    },
}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        TEMPLATE,
        physical_ids={"Bucket": "data-bucket", "Topic": "arn:aws:sns:us-east-1:123456789012:topic"},
        attributes={("Bucket", "Arn"): "arn:aws:s3:::data-bucket", ("Topic", "TopicName"): "topic"},
    )


def test_ref_and_get_att_in_both_forms(resolver: Resolver) -> None:
    # Given refs to resources, pseudo parameters and a template parameter
    value = {
        "bucket": {"Ref": "Bucket"},
        "arn": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "name": {"Fn::GetAtt": "Topic.TopicName"},
        "region": {"Ref": "AWS::Region"},
        "partition": {"Ref": "AWS::Partition"},
        "account": {"Ref": "AWS::AccountId"},
        "suffix": {"Ref": "AWS::URLSuffix"},
        "parameter": {"Ref": "BootstrapVersion"},
    }
    # When resolved
    resolved = resolver.resolve(value)
    # Then each becomes its physical value
    assert resolved == {
        "bucket": "data-bucket",
        "arn": "arn:aws:s3:::data-bucket",
        "name": "topic",
        "region": "us-east-1",
        "partition": "aws",
        "account": "123456789012",
        "suffix": "amazonaws.com",
        "parameter": "/cdk-bootstrap/hnb659fds/version",
    }


def test_join_sub_select_split(resolver: Resolver) -> None:
    # Given the string functions CDK emits
    value = [
        {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/${!Literal}/${Topic.TopicName}"},
        {"Fn::Sub": ["${Name}-${AWS::Region}", {"Name": {"Ref": "Bucket"}}]},
        {"Fn::Select": [1, {"Fn::Split": [":", {"Ref": "Topic"}]}]},
    ]
    # When resolved
    resolved = resolver.resolve(value)
    # Then
    assert resolved == [
        "arn:aws:s3:::data-bucket/*",
        "arn:aws:s3:::data-bucket/${Literal}/topic",
        "data-bucket-us-east-1",
        "aws",
    ]


def test_conditions_if_and_no_value(resolver: Resolver) -> None:
    # Given Fn::If on conditions, one branch AWS::NoValue
    value = {
        "A": {"Fn::If": ["IsEast", "east", "elsewhere"]},
        "B": {"Fn::If": ["NotEast", "x", {"Ref": "AWS::NoValue"}]},
        "C": {"Fn::If": ["Both", [1, {"Ref": "AWS::NoValue"}, 2], []]},
    }
    # When resolved in us-east-1
    resolved = resolver.resolve(value)
    # Then the true branches are taken and NoValue removes keys and list items
    assert resolved == {"A": "east", "C": [1, 2]}


def test_unresolvable_reference_names_the_resource(resolver: Resolver) -> None:
    # Given a queue that has no physical id
    # When it is referenced
    with pytest.raises(UnresolvedReferenceError) as raised:
        resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]})
    # Then the error says which resource and type
    assert "Queue" in str(raised.value) and "AWS::SQS::Queue" in str(raised.value)


def test_fallback_supplies_missing_values() -> None:
    # Given a resolver with a fallback
    resolver = Resolver(TEMPLATE, fallback=lambda lid, att: f"{lid}:{att}" if lid == "Queue" else None)
    # When refs are resolved
    # Then the fallback answers for the queue only
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "Queue:Arn"
    assert resolver.resolve({"Ref": "Queue"}) == "Queue:None"
    with pytest.raises(UnresolvedReferenceError):
        resolver.resolve({"Ref": "Topic"})


def test_helpers() -> None:
    # Given the sample template
    # Then the helpers find resources, references and stable names
    assert list(resources_of_type(TEMPLATE, "AWS::S3::Bucket", "AWS::SNS::Topic")) == ["Bucket", "Topic"]
    assert references({"a": [{"Ref": "Bucket"}, {"Fn::Sub": "${Topic.TopicName}${AWS::Region}"}]}) == {
        "Bucket",
        "Topic",
    }
    name = physical_name("SomeVeryLongLogicalId" * 5)
    assert len(name) == 64 and name == physical_name("SomeVeryLongLogicalId" * 5)
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_synthesized_template_holds_the_application(template: dict[str, Any]) -> None:
    # Given the real app synthesized without cdk-nag
    # Then it has the data bucket, the topics, the tables and the settings parameter
    assert resources_of_type(template, "AWS::S3::Bucket")
    assert len(resources_of_type(template, "AWS::SNS::Topic")) >= 2
    assert len(resources_of_type(template, "AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")) >= 2
    parameters = resources_of_type(template, "AWS::SSM::Parameter")
    assert parameters
    # And every intrinsic in it resolves once physical ids are known (fallback names everything)
    resolver = Resolver(template, fallback=lambda lid, att: f"{lid}.{att}")
    resolved = resolver.resolve(template["Resources"])
    settings = next(iter(parameters))
    assert json.loads(resolved[settings]["Properties"]["Value"])["projects"]
