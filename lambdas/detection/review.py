"""Low-confidence routing: results below the project's review floor copy the image to
`<project>/review/<inference key remainder>`. A person looks at it and moves it into
`<project>/train/<label>/`, where ingestion turns it into a dataset entry.
"""

from __future__ import annotations

from lambdas.common.constants import DETECTION_STATUS_ERROR, REVIEW_FOLDER
from lambdas.detection.detect import ImageRef


def review_key(image: ImageRef) -> str:
    return f"{image.project}/{REVIEW_FOLDER}/{image.remainder}"


def needs_review(status: str, top_confidence: float | None, review_confidence: float | None) -> bool:
    """True when a person should look: no label at all, or the best label below the floor.

    Errors are reported, not reviewed (the image itself is unusable); None disables review.
    """
    if review_confidence is None or status == DETECTION_STATUS_ERROR:
        return False
    return top_confidence is None or top_confidence < review_confidence
