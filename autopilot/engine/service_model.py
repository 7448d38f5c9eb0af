"""The botocore Rekognition service model: the authority for every shape, range, pattern and enum."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel


@functools.cache
def service_model() -> ServiceModel:
    loader = botocore.session.get_session().get_component("data_loader")
    return ServiceModel(loader.load_service_model("rekognition", "service-2"), service_name="rekognition")


def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)


def operation_names() -> list[str]:
    return list(service_model().operation_names)


def raw_shape(name: str) -> dict[str, Any]:
    return dict(service_model().shape_for(name).metadata)
