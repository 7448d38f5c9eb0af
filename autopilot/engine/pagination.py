"""NextToken pagination: opaque tokens carrying an offset and a fingerprint of the query."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from autopilot.engine import errors

T = TypeVar("T")
DEFAULT_PAGE = 100


def _fingerprint(context: Any) -> str:
    return hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()[:16]


def page(items: Sequence[T], params: dict[str, Any], context: Any) -> tuple[list[T], str | None]:
    """Returns one page of ``items`` and the NextToken of the next page (None on the last page)."""
    size = int(params.get("MaxResults") or DEFAULT_PAGE)
    start = 0
    token = params.get("NextToken")
    fingerprint = _fingerprint(context)
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            start = int(decoded["o"])
            if decoded["f"] != fingerprint or start < 0:
                raise ValueError("token of another query")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise errors.invalid_pagination_token() from exc
    chunk = list(items[start : start + size])
    end = start + size
    if end >= len(items):
        return chunk, None
    return chunk, base64.urlsafe_b64encode(json.dumps({"o": end, "f": fingerprint}).encode()).decode()


def paged_response(
    items: Sequence[T], params: dict[str, Any], context: Any, member: str, render: Callable[[T], Any]
) -> dict[str, Any]:
    """A list operation's response: one page of ``items`` rendered under ``member``, and NextToken."""
    chunk, token = page(items, params, context)
    result: dict[str, Any] = {member: [render(item) for item in chunk]}
    if token:
        result["NextToken"] = token
    return result
