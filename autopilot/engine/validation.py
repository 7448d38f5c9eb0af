"""Server-side input validation, walked generically over the botocore input shapes.

botocore checks types, required members and ``min`` on the client side; the service enforces
``max``, ``pattern``, ``enum`` and numeric ranges. The engine enforces all of them, so raw HTTP
clients, the CLI and Step Functions tasks see the same answers as boto3 users. Messages follow
the service's "1 validation error detected: ..." format.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

from botocore.model import Shape

from autopilot.engine import errors
from autopilot.engine.service_model import operation_model

# Unicode classes used by Tag patterns; Python's re has no \p{...}.
_UNICODE_CLASSES = {r"\p{L}": r"^\W\d_", r"\p{Z}": r"\s", r"\p{N}": r"\d"}


@functools.cache
def _compile(pattern: str) -> re.Pattern[str]:
    translated = pattern
    if r"\p{" in translated:
        # [\p{L}\p{Z}\p{N}_.:/=+\-@] -> word characters and spaces plus the listed punctuation.
        translated = translated.replace(r"\p{L}\p{Z}\p{N}", r"\w\s")
        for key, value in _UNICODE_CLASSES.items():
            translated = translated.replace(key, value)
    return re.compile(translated, re.DOTALL)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _violation(path: str, value: Any, constraint: str) -> str:
    shown = value if isinstance(value, int | float) else str(value)[:100]
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


def validate_input(operation: str, params: Any) -> dict[str, Any]:
    """Validates ``params`` against the operation's input shape; returns them with blobs decoded.

    Raises ``InvalidParameterException`` for wrong types, unknown or missing members, and
    ``ValidationException`` for length, range, pattern and enum violations.
    """
    model = operation_model(operation)
    if not isinstance(params, dict):
        raise errors.invalid_parameter("The request body must be a JSON object.")
    shape = model.input_shape
    if shape is None:
        return {}
    problems: list[str] = []
    decoded = _walk(shape, params, "", problems)
    if problems:
        raise errors.validation(
            f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
            + "; ".join(problems)
        )
    return decoded


def _walk(shape: Shape, value: Any, path: str, problems: list[str]) -> Any:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise errors.invalid_parameter(f"{path or 'request'} must be an object.")
        members = shape.members  # type: ignore[attr-defined]
        for name in value:
            if name not in members:
                raise errors.invalid_parameter(f"Unknown parameter {path + '.' if path else ''}{name}.")
        for name in shape.required_members:  # type: ignore[attr-defined]
            if value.get(name) is None:
                raise errors.invalid_parameter(
                    f"Missing required parameter {path + '.' if path else ''}{name}."
                )
        result = {}
        for name, member_value in value.items():
            if member_value is None:
                continue
            child = f"{path}.{_camel(name)}" if path else _camel(name)
            result[name] = _walk(members[name], member_value, child, problems)
        return result
    if kind == "list":
        if not isinstance(value, list):
            raise errors.invalid_parameter(f"{path} must be a list.")
        _check_length(len(value), meta, path, value, problems, "length")
        member = shape.member  # type: ignore[attr-defined]
        return [_walk(member, item, f"{path}.{i + 1}.member", problems) for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise errors.invalid_parameter(f"{path} must be a map.")
        _check_length(len(value), meta, path, value, problems, "length")
        key_shape, value_shape = shape.key, shape.value  # type: ignore[attr-defined]
        return {
            _walk(key_shape, k, f"{path}.key", problems): _walk(value_shape, v, f"{path}.value", problems)
            for k, v in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            raise errors.invalid_parameter(f"{path} must be a string.")
        _check_length(len(value), meta, path, value, problems, "length")
        pattern = meta.get("pattern")
        if pattern and not _compile(pattern).fullmatch(value):
            problems.append(
                _violation(path, value, f"Member must satisfy regular expression pattern: {pattern}")
            )
        if shape.enum and value not in shape.enum:
            problems.append(
                _violation(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            )
        return value
    if kind == "blob":
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        elif isinstance(value, str):
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise errors.invalid_parameter(f"{path} must be base64-encoded bytes.") from exc
        else:
            raise errors.invalid_parameter(f"{path} must be base64-encoded bytes.")
        _check_length(len(data), meta, path, "<bytes>", problems, "length")
        return data
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.invalid_parameter(f"{path} must be an integer.")
        _check_range(value, meta, path, problems)
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise errors.invalid_parameter(f"{path} must be a number.")
        _check_range(float(value), meta, path, problems)
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise errors.invalid_parameter(f"{path} must be a boolean.")
        return value
    return value


def _check_length(
    size: float, meta: dict[str, Any], path: str, value: Any, problems: list[str], what: str
) -> None:
    if "min" in meta and size < meta["min"]:
        problems.append(
            _violation(path, value, f"Member must have {what} greater than or equal to {meta['min']}")
        )
    if "max" in meta and size > meta["max"]:
        problems.append(
            _violation(path, value, f"Member must have {what} less than or equal to {meta['max']}")
        )


def _check_range(value: float, meta: dict[str, Any], path: str, problems: list[str]) -> None:
    _check_length(value, meta, path, value, problems, "value")
