"""Cached clients come from one shared boto3 Session, built on first use and forgotten on reset."""

from __future__ import annotations

import pytest

from lambdas.common import aws


def test_clients_share_one_session_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.reset_clients()
    created = []
    real_session = aws.boto3.session.Session

    def counting_session(*args: object, **kwargs: object) -> object:
        created.append(1)
        return real_session(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aws.boto3.session, "Session", counting_session)
    # Given three clients of different services, one asked for twice
    sqs, sns, again = aws.client("sqs"), aws.client("sns"), aws.client("sqs")
    # Then they came from a single Session, and the cached client is reused
    assert len(created) == 1
    assert again is sqs and sns is not sqs
    # When the cache is reset (tests switching endpoints), a new Session is built on next use
    aws.reset_clients()
    aws.client("sqs")
    assert len(created) == 2
    aws.reset_clients()
