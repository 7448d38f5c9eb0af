"""How long an image that cannot be classified yet waits, and when detection asks for a start."""

from __future__ import annotations

from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection.policy import deferral_delay, start_request_due

SETTINGS = AppSettings(projects={"digits": ProjectSettings(model_poll_seconds=30)})


def test_an_image_waiting_for_its_model_comes_back_after_the_model_poll_interval() -> None:
    assert deferral_delay(SETTINGS, "digits", throttled=False, count=3) == 30
    assert deferral_delay(SETTINGS, "gone", throttled=False, count=0) == 60


def test_a_throttled_image_backs_off_exponentially_up_to_five_minutes() -> None:
    assert 5 <= deferral_delay(SETTINGS, "digits", throttled=True, count=0) <= 10
    assert 300 <= deferral_delay(SETTINGS, "digits", throttled=True, count=8) <= 305


def test_a_start_is_asked_for_at_most_once_a_minute() -> None:
    assert start_request_due(None, 1000.0)
    assert not start_request_due(950.0, 1000.0)
    assert start_request_due(940.0, 1000.0)
