"""Checks a raw JSON response against the botocore output shape: members, types, enums, ranges."""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.model import Shape

from autopilot.engine.service_model import operation_model


def problems(operation: str, raw: dict[str, Any]) -> list[str]:
    shape = operation_model(operation).output_shape
    found: list[str] = []
    if shape is not None:
        _check(shape, raw, operation, found)
    return found


def _check(shape: Shape, value: Any, path: str, found: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            found.append(f"{path}: expected object, got {type(value).__name__}")
            return
        members = shape.members  # type: ignore[attr-defined]
        for name, child in value.items():
            if name not in members:
                found.append(f"{path}.{name}: not a member of {shape.name}")
            else:
                _check(members[name], child, f"{path}.{name}", found)
    elif kind == "list":
        if not isinstance(value, list):
            found.append(f"{path}: expected list")
            return
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", found)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            found.append(f"{path}: expected map")
    elif kind == "string":
        if not isinstance(value, str):
            found.append(f"{path}: expected string, got {value!r}")
            return
        if shape.enum and value not in shape.enum:
            found.append(f"{path}: {value!r} not in enum {shape.enum}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            found.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{path}: longer than {meta['max']}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            found.append(f"{path}: expected integer, got {value!r}")
        elif "min" in meta and value < meta["min"]:
            found.append(f"{path}: below {meta['min']}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            found.append(f"{path}: expected number, got {value!r}")
        elif ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            found.append(f"{path}: {value} outside [{meta.get('min')}, {meta.get('max')}]")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            found.append(f"{path}: expected epoch seconds, got {value!r}")
    elif kind == "boolean" and not isinstance(value, bool):
        found.append(f"{path}: expected boolean")


class ShapeRecorder:
    """Registers on a boto3 client and checks every raw response body against its output shape."""

    def __init__(self, client: Any) -> None:
        self.found: list[str] = []
        self.checked: set[str] = set()
        client.meta.events.register("before-parse.rekognition.*", self._inspect)

    def _inspect(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        if response_dict.get("status_code") != 200:
            return
        body = response_dict.get("body") or b"{}"
        raw = json.loads(body)
        self.checked.add(operation_model.name)
        self.found.extend(problems(operation_model.name, raw))
