"""The demo's digits: a seeded shuffle before train, test and held-out sets are cut."""

from __future__ import annotations

from collections import Counter

from autopilot.local.sample_data import demo_split

LABELS = ("zero", "one", "two")


def indices(images: list) -> set[int]:  # type: ignore[type-arg]
    return {image.index for image in images}


def test_seeded_split_is_repeatable_disjoint_and_balanced() -> None:
    split = demo_split(6, 2, 2, labels=LABELS, seed=7)
    again = demo_split(6, 2, 2, labels=LABELS, seed=7)
    assert [i.index for i in split.held_out] == [i.index for i in again.held_out]
    parts = [indices(split.train), indices(split.test), indices(split.held_out)]
    assert sum(len(part) for part in parts) == len(set().union(*parts)) == 30
    assert Counter(image.label for image in split.train) == {"zero": 6, "one": 6, "two": 6}
    assert Counter(image.label for image in split.held_out) == {"zero": 2, "one": 2, "two": 2}


def test_shuffled_sets_are_drawn_from_the_whole_collection() -> None:
    # scikit-learn's 1,797 digits hold about 180 per label; the first 10 per label lie in the first
    # ~100 images. A seeded shuffle draws from the whole range.
    sequential = demo_split(6, 2, 2, labels=LABELS)
    shuffled = demo_split(6, 2, 2, labels=LABELS, seed=7)
    assert max(indices(sequential.held_out)) < 200
    assert max(indices(shuffled.train) | indices(shuffled.held_out)) > 900
    assert demo_split(6, 2, 2, labels=LABELS, seed=8).held_out != shuffled.held_out
