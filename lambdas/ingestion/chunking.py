"""Packs dataset lines into as few UpdateDatasetEntries calls as the 5 MB limit allows.

Changes.GroundTruth is the lines joined by newlines and may hold at most UPDATE_ENTRIES_MAX_BYTES
bytes. Lines are at most 100,000 characters (a few hundred KB), tiny against 5 MB, so filling
each chunk in turn (next fit) stays within one call of the lower bound ceil(total bytes / limit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from lambdas.common.constants import UPDATE_ENTRIES_MAX_BYTES
from lambdas.ingestion.lines import Line


class LineTooLarge(ValueError):
    pass


def lower_bound(lines: Sequence[Line], limit: int = UPDATE_ENTRIES_MAX_BYTES) -> int:
    """The fewest calls any strategy needs for these lines."""
    return math.ceil(payload_bytes(lines) / limit) if lines else 0


def payload_bytes(lines: Sequence[Line]) -> int:
    """Bytes of all lines joined by newlines."""
    return sum(line.size for line in lines) - 1 if lines else 0


def pack(lines: Iterable[Line], limit: int = UPDATE_ENTRIES_MAX_BYTES) -> Iterator[list[Line]]:
    """Yields chunks whose newline-joined payload is at most `limit` bytes, in input order."""
    chunk: list[Line] = []
    used = -1  # n lines need n - 1 separators: start at -1 and count one newline per line
    for line in lines:
        if line.size - 1 > limit:
            raise LineTooLarge(f"{line.source_ref}: a {line.size - 1}-byte line cannot fit one update")
        if chunk and used + line.size > limit:
            yield chunk
            chunk, used = [], -1
        chunk.append(line)
        used += line.size
    if chunk:
        yield chunk


def encode(chunk: Sequence[Line]) -> bytes:
    return "\n".join(line.text for line in chunk).encode("utf-8")
