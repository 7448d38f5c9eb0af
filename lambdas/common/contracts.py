"""Helpers that tie a workflow definition to the pydantic models of its data.

A state machine reads its input and the results of its steps through JSONPaths. Written as
string literals they point into dicts nobody names; written with `field_path` they name a field
of a model, and a path to a field that does not exist fails when the definition is built (at
synth), not when an execution reaches the state.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field


class ContractError(KeyError):
    """A workflow definition names a field its contract does not have."""


class Contract(BaseModel):
    """Base of the workflow contracts. Extra fields pass through: a state grows as its steps add
    their results."""

    model_config = ConfigDict(extra="allow")


class PollCount(Contract):
    """The counter of a bounded poll loop."""

    count: int


class ListedVersions(Contract):
    """DescribeProjectVersions of one version name, as a bounded poll keeps it: the list and its
    length (0: the version is gone)."""

    versions: list[dict[str, Any]] = Field(default_factory=list)
    count: int = 0


class StepError(Contract):
    """What a Catch keeps of an error: Step Functions' Error and Cause."""

    Error: str
    Cause: str | None = None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (also through `X | None`), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def field_path(model: type[BaseModel], *names: str, root: str = "$") -> str:
    """`field_path(TrainingState, "gate", "decision")` -> "$.gate.decision", checked against the model.

    Each name must be a field of the model reached so far; past a field that holds no model (a
    dict of a service response), the remaining names are taken as they are.
    """
    current: type[BaseModel] | None = model
    for index, name in enumerate(names):
        if current is None:
            break
        fields = current.model_fields
        if name not in fields:
            walked = ".".join(names[: index + 1])
            raise ContractError(
                f"{model.__name__} has no field {walked!r} (fields of {current.__name__}: "
                f"{', '.join(fields)})"
            )
        current = _nested_model(fields[name].annotation)
    return ".".join([root, *names])


def checked_fields(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """`values` keyed by fields of `model`, with every required field given (a step's payload)."""
    unknown = sorted(set(values) - set(model.model_fields))
    missing = sorted(
        name for name, info in model.model_fields.items() if info.is_required() and name not in values
    )
    if unknown or missing:
        raise ContractError(
            f"payload for {model.__name__}: unknown fields {unknown or 'none'}, "
            f"missing fields {missing or 'none'}"
        )
    return values
