"""SSM parameters, with their resolved values (a JSON value is stored as its text)."""

from __future__ import annotations

import json

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name

PARAMETER_TYPE = "AWS::SSM::Parameter"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(PARAMETER_TYPE).items():
        props = res.get("Properties") or {}
        r.physical_ids[lid] = str(props.get("Name") or f"CFN-{physical_name(lid, 200)}")
        r.attributes[(lid, "Type")] = str(props.get("Type", "String"))
        r.attributes[(lid, "Value")] = ""  # filled in when the parameter is created


def create_parameters(ctx: StackContext) -> None:
    ssm = ctx.client("ssm")
    for lid in ctx.of_type(PARAMETER_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        value = props["Value"] if isinstance(props["Value"], str) else json.dumps(props["Value"])
        ssm.put_parameter(
            Name=ctx.resolver.physical_ids[lid],
            Value=value,
            Type=str(props.get("Type", "String")),
            Overwrite=True,
        )
        ctx.resolver.attributes[(lid, "Value")] = value
