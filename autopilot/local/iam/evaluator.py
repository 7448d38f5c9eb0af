"""IAM policy evaluation for one account: statements, conditions and the allow/deny decision.

Written to the IAM User Guide pages "Policy evaluation logic" (an explicit Deny in any applicable
policy wins; otherwise an Allow in an identity-based or a resource-based policy allows a request
within one account; otherwise the request is implicitly denied) and "IAM JSON policy elements"
(Action/NotAction, Resource/NotResource, Principal/NotPrincipal, Condition with its operators,
the ...IfExists suffix and the ForAllValues/ForAnyValue set qualifiers).

KMS is the exception the same page describes: a key policy must allow the request, either by
naming the principal or by delegating to IAM through the account root principal, in which case
an identity-based Allow is required as well.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Condition keys the request builder puts in the context. A condition on any other key cannot be
# judged locally: it never matches and is reported (see `Evaluator.unknown_condition_keys`).
MODELLED_KEYS = frozenset(
    {
        "aws:securetransport",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:principalservicename",
        "s3:x-amz-acl",
        "dynamodb:leadingkeys",
        "kms:calleraccount",
        "kms:viaservice",
    }
)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an assumed-role session of a role, or an AWS service principal."""

    arn: str  # arn:aws:sts::111:assumed-role/Name/session, or the service name for a service
    account: str
    role_arn: str = ""  # arn:aws:iam::111:role/Name for a role session
    service: str = ""  # e.g. "s3.amazonaws.com" for a service principal

    @property
    def is_service(self) -> bool:
        return bool(self.service)


@dataclass(frozen=True)
class Statement:
    """One policy statement with its origin (named in denials and reports)."""

    body: dict[str, Any]
    source: str  # e.g. "role IngestionHandlerRole policy IngestionHandlerRoleDefaultPolicy"

    @property
    def effect(self) -> str:
        return str(self.body.get("Effect", ""))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # AWS's wording: "because no identity-based policy allows the s3:GetObject action"
    deciding: Statement | None = None


@dataclass
class Evaluator:
    """Evaluates requests; keeps the condition keys it could not judge (thread-safe)."""

    unknown_condition_keys: set[str] = field(default_factory=set)
    unsupported_operators: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- the decision ---------------------------------------------------------------------------
    def decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: dict[str, Any],
        identity: list[Statement],
        resource_policy: list[Statement] | None = None,
        key_policy: list[Statement] | None = None,
    ) -> Decision:
        """The decision for one (principal, action, resource) within one account.

        `identity` is ignored for a service principal (services have no identity policies).
        `key_policy` is given for KMS keys: it then replaces `resource_policy` and must allow.
        """
        identity = [] if principal.is_service else identity
        resource_statements = key_policy if key_policy is not None else (resource_policy or [])
        identity_hits = self._matching(identity, principal, action, resource, context, with_principal=False)
        resource_hits = self._matching(
            resource_statements, principal, action, resource, context, with_principal=True
        )
        for statement in identity_hits:
            if statement.effect == "Deny":
                return Decision(False, "with an explicit deny in an identity-based policy", statement)
        for statement in resource_hits:
            if statement.effect == "Deny":
                return Decision(False, "with an explicit deny in a resource-based policy", statement)
        identity_allow = next((s for s in identity_hits if s.effect == "Allow"), None)
        resource_allow = next((s for s in resource_hits if s.effect == "Allow"), None)
        if key_policy is not None:
            if resource_allow is not None:
                return Decision(True, "allowed by the key policy", resource_allow)
            delegation = self._delegates_to_iam(key_policy, principal, action, resource, context)
            if delegation is None:
                return Decision(False, f"because no resource-based policy allows the {action} action")
            if identity_allow is None:
                return Decision(False, f"because no identity-based policy allows the {action} action")
            return Decision(
                True, "allowed by an identity-based policy the key policy delegates to", identity_allow
            )
        if identity_allow is not None:
            return Decision(True, "allowed by an identity-based policy", identity_allow)
        if resource_allow is not None:
            return Decision(True, "allowed by a resource-based policy", resource_allow)
        if principal.is_service:
            return Decision(False, f"because no resource-based policy allows the {action} action")
        return Decision(False, f"because no identity-based policy allows the {action} action")

    def _delegates_to_iam(
        self,
        key_policy: list[Statement],
        principal: Principal,
        action: str,
        resource: str,
        context: dict[str, Any],
    ) -> Statement | None:
        """An Allow of the key policy for the account root: IAM policies may then grant the key."""
        if principal.is_service:
            return None
        root = f"arn:{_partition(principal.role_arn)}:iam::{principal.account}:root"
        for statement in key_policy:
            if statement.effect != "Allow":
                continue
            aws = _principal_values(statement.body.get("Principal"), "AWS")
            if (root in aws or principal.account in aws) and self._applies(
                statement, principal, action, resource, context, with_principal=False
            ):
                return statement
        return None

    def _matching(
        self,
        statements: list[Statement],
        principal: Principal,
        action: str,
        resource: str,
        context: dict[str, Any],
        with_principal: bool,
    ) -> list[Statement]:
        return [
            statement
            for statement in statements
            if self._applies(statement, principal, action, resource, context, with_principal)
        ]

    # -- one statement --------------------------------------------------------------------------
    def _applies(
        self,
        statement: Statement,
        principal: Principal,
        action: str,
        resource: str,
        context: dict[str, Any],
        with_principal: bool,
    ) -> bool:
        body = statement.body
        if "Action" in body:
            if not any(action_matches(p, action) for p in _as_list(body["Action"])):
                return False
        elif "NotAction" in body:
            if any(action_matches(p, action) for p in _as_list(body["NotAction"])):
                return False
        else:
            return False
        if "Resource" in body:
            if not any(arn_matches(p, resource) for p in _as_list(body["Resource"])):
                return False
        elif "NotResource" in body:
            if any(arn_matches(p, resource) for p in _as_list(body["NotResource"])):
                return False
        elif not with_principal:
            return False  # an identity policy statement must name its resources
        if with_principal:
            # An Allow for the account root delegates to IAM; it grants a role nothing by itself.
            account_wide = statement.effect == "Deny"
            if "Principal" in body:
                if not principal_matches(body["Principal"], principal, account_wide):
                    return False
            elif "NotPrincipal" in body:
                if principal_matches(body["NotPrincipal"], principal, account_wide=True):
                    return False
            else:
                return False
        return self.conditions_hold(body.get("Condition") or {}, context)

    # -- conditions -----------------------------------------------------------------------------
    def conditions_hold(self, conditions: dict[str, Any], context: dict[str, Any]) -> bool:
        """All operators, all keys: AND; the values of one key: OR (IAM JSON policy elements)."""
        lowered = {key.lower(): value for key, value in context.items()}
        for operator, pairs in conditions.items():
            for key, expected in dict(pairs).items():
                if key.lower() not in MODELLED_KEYS:
                    with self._lock:
                        self.unknown_condition_keys.add(key)
                    return False
                if not self._condition(operator, lowered.get(key.lower()), _as_list(expected)):
                    return False
        return True

    def _condition(self, operator: str, actual: Any, expected: list[Any]) -> bool:
        qualifier = ""
        if ":" in operator:
            qualifier, operator = operator.split(":", 1)
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        if base == "Null":
            wanted = str(expected[0]).lower() == "true"
            return (actual is None) == wanted
        if actual is None:
            # A key missing from the request: ...IfExists and ForAllValues hold, all else fails.
            return if_exists or qualifier == "ForAllValues"
        test = _OPERATORS.get(base)
        if test is None:
            with self._lock:
                self.unsupported_operators.add(operator)
            return False
        values = [str(v) for v in _as_list(actual)]
        negated = base.startswith("StringNot") or base.startswith("ArnNot") or base == "NumericNotEquals"
        if qualifier == "ForAllValues":
            return all(test(value, expected) for value in values)
        if qualifier == "ForAnyValue":
            return any(test(value, expected) for value in values)
        if negated:
            return all(test(value, expected) for value in values)
        return any(test(value, expected) for value in values)


def _string_equals(value: str, expected: list[Any]) -> bool:
    return any(value == str(e) for e in expected)


def _string_equals_ignore_case(value: str, expected: list[Any]) -> bool:
    return any(value.lower() == str(e).lower() for e in expected)


def _string_like(value: str, expected: list[Any]) -> bool:
    return any(_wildcard(str(e), case_sensitive=True).match(value) for e in expected)


def _arn_like(value: str, expected: list[Any]) -> bool:
    return any(arn_matches(str(e), value) for e in expected)


def _bool(value: str, expected: list[Any]) -> bool:
    return any(value.lower() == str(e).lower() for e in expected)


def _numeric(compare: str) -> Any:
    def test(value: str, expected: list[Any]) -> bool:
        try:
            number = float(value)
            bounds = [float(e) for e in expected]
        except ValueError:
            return False
        checks = {
            "eq": lambda b: number == b,
            "ne": lambda b: number != b,
            "lt": lambda b: number < b,
            "le": lambda b: number <= b,
            "gt": lambda b: number > b,
            "ge": lambda b: number >= b,
        }
        if compare == "ne":
            return all(checks["ne"](b) for b in bounds)
        return any(checks[compare](b) for b in bounds)

    return test


_OPERATORS: dict[str, Any] = {
    "StringEquals": _string_equals,
    "StringNotEquals": lambda v, e: not _string_equals(v, e),
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringNotEqualsIgnoreCase": lambda v, e: not _string_equals_ignore_case(v, e),
    "StringLike": _string_like,
    "StringNotLike": lambda v, e: not _string_like(v, e),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": lambda v, e: not _arn_like(v, e),
    "ArnNotLike": lambda v, e: not _arn_like(v, e),
    "Bool": _bool,
    "NumericEquals": _numeric("eq"),
    "NumericNotEquals": _numeric("ne"),
    "NumericLessThan": _numeric("lt"),
    "NumericLessThanEquals": _numeric("le"),
    "NumericGreaterThan": _numeric("gt"),
    "NumericGreaterThanEquals": _numeric("ge"),
}


# -- matching helpers ---------------------------------------------------------------------------
def action_matches(pattern: str, action: str) -> bool:
    """Actions match case-insensitively; `*` and `?` are wildcards ("s3:Get*", "*")."""
    return bool(_wildcard(pattern, case_sensitive=False).match(action))


def arn_matches(pattern: str, arn: str) -> bool:
    """ARN matching as ArnLike does it: per colon-separated part, case-sensitive, `*` and `?`.

    The resource part (after the fifth colon) may itself contain colons and slashes.
    """
    if pattern == "*":
        return True
    pattern_parts = pattern.split(":", 5)
    arn_parts = arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return bool(_wildcard(pattern, case_sensitive=True).match(arn))
    return all(
        _wildcard(p, case_sensitive=True).match(a) for p, a in zip(pattern_parts, arn_parts, strict=True)
    )


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    translated = fnmatch.translate(pattern.replace("[", "[[]"))
    return re.compile(translated, 0 if case_sensitive else re.IGNORECASE)


def principal_matches(element: Any, principal: Principal, account_wide: bool = False) -> bool:
    """A Principal element against a caller (IAM JSON policy elements: Principal).

    `account_wide`: the account root ("arn:aws:iam::111:root" or "111") stands for every
    principal of the account (used for Deny and NotPrincipal); for an Allow it only delegates.
    """
    if element == "*":
        return True
    aws = _principal_values(element, "AWS")
    if "*" in aws:
        return True
    if principal.is_service:
        return principal.service in _principal_values(element, "Service")
    names = {principal.arn, principal.role_arn}
    if account_wide:
        names |= {f"arn:{_partition(principal.role_arn)}:iam::{principal.account}:root", principal.account}
    return bool(names & aws)


def _principal_values(element: Any, kind: str) -> set[str]:
    if not isinstance(element, dict):
        return {"*"} if element == "*" and kind == "AWS" else set()
    return {str(v) for v in _as_list(element.get(kind, []))}


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
