"""The IAM evaluator, written from the IAM User Guide.

"Policy evaluation logic" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny overrides any Allow; within one account an Allow in an identity-based or a
resource-based policy allows; otherwise the request is implicitly denied; a KMS key policy must
allow, directly or by delegating to IAM through the account principal.
"IAM JSON policy elements" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):
Action/NotAction, Resource/NotResource, Principal/NotPrincipal, Condition operators, ...IfExists,
ForAllValues/ForAnyValue.
"""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.local.iam.evaluator import Evaluator, Principal, Statement, action_matches, arn_matches

ACCOUNT = "111122223333"
ROLE = Principal(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Worker/worker-fn",
    account=ACCOUNT,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/Worker",
)
S3_SERVICE = Principal(arn="s3.amazonaws.com", account=ACCOUNT, service="s3.amazonaws.com")
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:inbox"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
HTTPS = {"aws:SecureTransport": "true"}


def statements(*bodies: dict[str, Any]) -> list[Statement]:
    return [Statement(body, "test policy") for body in bodies]


def decide(
    action: str,
    resource: str,
    identity: list[Statement] | None = None,
    resource_policy: list[Statement] | None = None,
    principal: Principal = ROLE,
    context: dict[str, Any] | None = None,
    key_policy: list[Statement] | None = None,
) -> tuple[bool, str]:
    decision = Evaluator().decide(
        principal, action, resource, context or HTTPS, identity or [], resource_policy, key_policy
    )
    return decision.allowed, decision.reason


def test_no_policy_means_implicit_deny() -> None:
    # "By default, all requests are implicitly denied"
    allowed, reason = decide("sns:Publish", TOPIC)
    assert not allowed
    assert reason == "because no identity-based policy allows the sns:Publish action"


def test_an_identity_allow_allows() -> None:
    identity = statements({"Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC})
    assert decide("sns:Publish", TOPIC, identity)[0]


def test_explicit_deny_overrides_allow() -> None:
    identity = statements(
        {"Effect": "Allow", "Action": "sns:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sns:Publish", "Resource": TOPIC},
    )
    allowed, reason = decide("sns:Publish", TOPIC, identity)
    assert not allowed
    assert reason == "with an explicit deny in an identity-based policy"


def test_a_resource_policy_deny_overrides_an_identity_allow() -> None:
    identity = statements({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE})
    resource = statements(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sqs:*",
            "Resource": QUEUE,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    # Over HTTPS the deny does not apply; over HTTP it does.
    assert decide("sqs:SendMessage", QUEUE, identity, resource)[0]
    allowed, reason = decide(
        "sqs:SendMessage", QUEUE, identity, resource, context={"aws:SecureTransport": "false"}
    )
    assert not allowed
    assert reason == "with an explicit deny in a resource-based policy"


def test_same_account_resource_policy_allow_suffices_without_identity_allow() -> None:
    resource = statements(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE.role_arn},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
        }
    )
    assert decide("sqs:SendMessage", QUEUE, [], resource)[0]


def test_account_root_in_a_resource_policy_delegates_and_grants_nothing_alone() -> None:
    resource = statements(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
        }
    )
    assert not decide("sqs:SendMessage", QUEUE, [], resource)[0]


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("s3:GetObject", "s3:getobject", True),  # action names are case-insensitive
        ("s3:Get*", "s3:GetObjectTagging", True),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
        ("*", "kms:Decrypt", True),
        ("sqs:*", "sns:Publish", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.jpg", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::bucket/*/training-output/*", "arn:aws:s3:::bucket/p/training-output/x", True),
        (
            "arn:aws:rekognition:*:111122223333:project/digits/*",
            "arn:aws:rekognition:us-east-1:111122223333:project/digits/1",
            True,
        ),
        (
            "arn:aws:rekognition:us-east-1:111122223333:project/digits/*",
            "arn:aws:rekognition:us-east-1:111122223333:project/digitsx/1",
            False,
        ),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/k", False),  # resource ARNs are case-sensitive
        ("*", "arn:aws:sns:us-east-1:1:t", True),
    ],
)
def test_resource_wildcards(pattern: str, arn: str, matches: bool) -> None:
    assert arn_matches(pattern, arn) is matches


def test_not_action_allows_everything_else() -> None:
    identity = statements({"Effect": "Allow", "NotAction": "sns:Publish", "Resource": "*"})
    assert decide("sqs:SendMessage", QUEUE, identity)[0]
    assert not decide("sns:Publish", TOPIC, identity)[0]


def test_not_resource_allows_everything_else() -> None:
    identity = statements({"Effect": "Allow", "Action": "sns:Publish", "NotResource": TOPIC})
    assert decide("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:other")[0] is False  # no policy
    assert decide("sns:Publish", f"arn:aws:sns:us-east-1:{ACCOUNT}:other", identity)[0]
    assert not decide("sns:Publish", TOPIC, identity)[0]


def test_service_principal_needs_the_resource_policy_and_its_conditions() -> None:
    bucket = "arn:aws:s3:::uploads"
    resource = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {
                "ArnLike": {"aws:SourceArn": bucket},
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
            },
        }
    )
    good = {**HTTPS, "aws:SourceArn": bucket, "aws:SourceAccount": ACCOUNT}
    assert decide("sqs:SendMessage", QUEUE, [], resource, S3_SERVICE, good)[0]
    other_bucket = {**good, "aws:SourceArn": "arn:aws:s3:::elsewhere"}
    allowed, reason = decide("sqs:SendMessage", QUEUE, [], resource, S3_SERVICE, other_bucket)
    assert not allowed
    assert reason == "because no resource-based policy allows the sqs:SendMessage action"


def test_not_principal_excludes_the_named_principal() -> None:
    resource = statements(
        {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE.role_arn}, "Action": "sqs:*", "Resource": QUEUE},
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": QUEUE},
    )
    assert decide("sqs:SendMessage", QUEUE, [], resource)[0]
    assert not decide("sqs:SendMessage", QUEUE, [], resource, S3_SERVICE)[0]


def test_kms_key_policy_must_allow_even_with_an_identity_allow() -> None:
    identity = statements({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY})
    key_policy = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    allowed, reason = decide("kms:Decrypt", KEY, identity, key_policy=key_policy)
    assert not allowed
    assert reason == "because no resource-based policy allows the kms:Decrypt action"


def test_kms_key_policy_delegating_to_the_account_needs_an_identity_allow() -> None:
    delegation = statements(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    identity = statements(
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": KEY}
    )
    assert decide("kms:GenerateDataKey", KEY, identity, key_policy=delegation)[0]
    allowed, reason = decide("kms:GenerateDataKey", KEY, [], key_policy=delegation)
    assert not allowed
    assert reason == "because no identity-based policy allows the kms:GenerateDataKey action"


def test_for_all_values_requires_every_leading_key_to_match() -> None:
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/state"
    identity = statements(
        {
            "Effect": "Allow",
            "Action": "dynamodb:BatchGetItem",
            "Resource": table,
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["PROJECT#a", "PROJECT#b"]}},
        }
    )
    assert decide("dynamodb:BatchGetItem", table, identity, context={"dynamodb:LeadingKeys": ["PROJECT#a"]})[
        0
    ]
    assert not decide(
        "dynamodb:BatchGetItem", table, identity, context={"dynamodb:LeadingKeys": ["PROJECT#a", "PROJECT#c"]}
    )[0]


def test_string_equals_on_a_missing_key_fails_and_if_exists_holds() -> None:
    # "If the key that you specify in a policy condition is not present in the request context,
    # the values do not match" ... "...IfExists: if the key is not present, evaluate as true".
    bucket_objects = "arn:aws:s3:::b/*"
    plain = statements(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": bucket_objects,
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        }
    )
    if_exists = statements(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": bucket_objects,
            "Condition": {"StringEqualsIfExists": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        }
    )
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", plain)[0]
    assert decide(
        "s3:PutObject", "arn:aws:s3:::b/k", plain, context={"s3:x-amz-acl": "bucket-owner-full-control"}
    )[0]
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", if_exists)[0]
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", if_exists, context={"s3:x-amz-acl": "public-read"})[
        0
    ]


def test_an_unknown_condition_key_never_matches_and_is_reported() -> None:
    evaluator = Evaluator()
    identity = statements(
        {
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
        }
    )
    decision = evaluator.decide(
        ROLE, "sns:Publish", TOPIC, {**HTTPS, "aws:RequestedRegion": "us-east-1"}, identity
    )
    assert not decision.allowed
    assert evaluator.unknown_condition_keys == {"aws:RequestedRegion"}


def test_null_operator_tests_presence() -> None:
    identity = statements(
        {
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {"Null": {"aws:SourceArn": "true"}},
        }
    )
    assert decide("sns:Publish", TOPIC, identity)[0]
    assert not decide("sns:Publish", TOPIC, identity, context={**HTTPS, "aws:SourceArn": "arn:aws:s3:::b"})[0]
