"""The content-moderation taxonomy (model version 7.0) and what adapters may be trained on.

Shared by ingestion (labels of adapter manifests are checked against it) and the local engine.

Source: Amazon Rekognition Developer Guide, "Using the image and video moderation APIs"
(moderation-api, "Label Categories"): three levels, each top-level (L1) category holding
second-level (L2) labels, some of which hold third-level (L3) labels. The adapter manifest page
(using-adapters-manifest-files) sends readers to that list for the labels an adapter supports.
"""

from __future__ import annotations

from typing import Final

from lambdas.common.constants import ADAPTER_MANIFESTS_FOLDER, MANIFEST_SUFFIX

CUSTOM_LABELS: Final = "CUSTOM_LABELS"
CONTENT_MODERATION: Final = "CONTENT_MODERATION"
BASE_MODEL_VERSION: Final = "7.0"

# L1 -> L2 -> L3 (an empty tuple: the L2 label has no third level).
TAXONOMY: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "Explicit": {
        "Explicit Nudity": (
            "Exposed Male Genitalia",
            "Exposed Female Genitalia",
            "Exposed Buttocks or Anus",
            "Exposed Female Nipple",
        ),
        "Explicit Sexual Activity": (),
        "Sex Toys": (),
    },
    "Non-Explicit Nudity of Intimate parts and Kissing": {
        "Non-Explicit Nudity": (
            "Bare Back",
            "Exposed Male Nipple",
            "Partially Exposed Buttocks",
            "Partially Exposed Female Breast",
            "Implied Nudity",
        ),
        "Obstructed Intimate Parts": ("Obstructed Female Nipple", "Obstructed Male Genitalia"),
        "Kissing on the Lips": (),
    },
    "Swimwear or Underwear": {
        "Female Swimwear or Underwear": (),
        "Male Swimwear or Underwear": (),
    },
    "Violence": {
        "Weapons": (),
        "Graphic Violence": (
            "Weapon Violence",
            "Physical Violence",
            "Self-Harm",
            "Blood & Gore",
            "Explosions and Blasts",
        ),
    },
    "Visually Disturbing": {
        "Death and Emaciation": ("Emaciated Bodies", "Corpses"),
        "Crashes": ("Air Crash",),
    },
    "Drugs & Tobacco": {
        "Products": ("Pills",),
        "Drugs & Tobacco Paraphernalia & Use": ("Smoking",),
    },
    "Alcohol": {
        "Alcohol Use": ("Drinking",),
        "Alcoholic Beverages": (),
    },
    "Rude Gestures": {"Middle Finger": ()},
    "Gambling": {},
    "Hate Symbols": {"Nazi Party": (), "White Supremacy": (), "Extremist": ()},
}


def _placement() -> dict[str, tuple[str, int]]:
    placed: dict[str, tuple[str, int]] = {}
    for top, seconds in TAXONOMY.items():
        placed[top] = ("", 1)
        for second, thirds in seconds.items():
            placed[second] = (top, 2)
            for third in thirds:
                placed[third] = (second, 3)
    return placed


# Label name -> (ParentName, TaxonomyLevel) as DetectModerationLabels reports them.
PLACEMENT: Final[dict[str, tuple[str, int]]] = _placement()
LABEL_NAMES: Final[tuple[str, ...]] = tuple(PLACEMENT)


def is_moderation_label(name: str) -> bool:
    return name in PLACEMENT


def placement(name: str) -> tuple[str, int]:
    """ParentName and TaxonomyLevel of a label; a name outside the taxonomy is a top-level label."""
    return PLACEMENT.get(name, ("", 1))


def adapter_manifest_key(project: str, dataset_type: str) -> str:
    """Where ingestion keeps a CONTENT_MODERATION project's TRAIN or TEST manifest (adapter format)."""
    return f"{project}/{ADAPTER_MANIFESTS_FOLDER}/{dataset_type.lower()}{MANIFEST_SUFFIX}"
