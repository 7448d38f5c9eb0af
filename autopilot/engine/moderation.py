"""The content-moderation taxonomy, shared with the lambdas (lambdas/common/moderation.py holds it:
ingestion validates adapter labels against the same list the engine trains and answers with)."""

from __future__ import annotations

from lambdas.common.moderation import (
    BASE_MODEL_VERSION,
    CONTENT_MODERATION,
    CUSTOM_LABELS,
    LABEL_NAMES,
    PLACEMENT,
    TAXONOMY,
    is_moderation_label,
    placement,
)

__all__ = [
    "BASE_MODEL_VERSION",
    "CONTENT_MODERATION",
    "CUSTOM_LABELS",
    "LABEL_NAMES",
    "PLACEMENT",
    "TAXONOMY",
    "is_moderation_label",
    "placement",
]
