"""IAM enforced offline: the synthesized policies checked on every call the local stack makes.

See docs/local.md, "IAM enforcement", for what is evaluated and how it differs from IAM.
"""

from autopilot.local.iam.enforcer import AccessDenied, Denial, Enforcer, Recorder, task_operation
from autopilot.local.iam.evaluator import Decision, Evaluator, Principal, Statement
from autopilot.local.iam.policies import Policies, extract_policies

__all__ = [
    "AccessDenied",
    "Decision",
    "Denial",
    "Enforcer",
    "Evaluator",
    "Policies",
    "Principal",
    "Recorder",
    "Statement",
    "extract_policies",
    "task_operation",
]
