"""The evaluation gate step: reads the new and the production version's evaluation results,
decides PROMOTE or REJECT (lambdas.training.gate) and reports training.completed, and
version.rejected when it rejects."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.common.constants import EVENT_TRAINING_COMPLETED, EVENT_VERSION_REJECTED
from lambdas.training import gate as gate_logic
from lambdas.training import outputs as training_outputs
from lambdas.training.contracts import GateRequest, GateResult, ProductionSummary
from lambdas.training.outputs import TrainingOutputs
from lambdas.training.rekognition import TrainingRekognition, version_info
from lambdas.training.state import TrainingStateStore
from lambdas.training.trigger import Publisher

logger = Logger(child=True)
_MISSING = ("NoSuchKey", "404")


def _label_scores(outputs: TrainingOutputs, description: dict[str, Any] | None) -> dict[str, Any] | None:
    """LabelEvaluationResults of a version's evaluation summary (None: the version has none)."""
    location = training_outputs.summary_location(description or {})
    if location is None:
        return None
    try:
        return gate_logic.label_scores(outputs.read_json(location))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None  # the summary was deleted with the training output
        raise
    except ValueError as error:
        # A summary without per-label results (e.g. another feature's format): no label figures;
        # a configured label floor then fails by name ("no evaluation result").
        logger.warning("evaluation summary without per-label results", extra={"error": str(error)})
        return None


def _tested_set(outputs: TrainingOutputs, description: dict[str, Any] | None) -> tuple[str, int] | None:
    """Digest and size of the TEST lines a version was evaluated on (TestingDataResult.Output)."""
    locations = training_outputs.asset_locations(description or {}, "TestingDataResult", "Output")
    if not locations:
        return None
    lines: list[str] = []
    try:
        for location in locations:
            lines.extend(outputs.lines(location))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    return gate_logic.evaluation_set_digest(lines)


def evaluation_note(new: tuple[str, int] | None, old: tuple[str, int] | None, has_production: bool) -> dict:
    if not has_production:
        return {"same_test_set": None, "test_set_note": "no production version to compare with"}
    if new is None or old is None:
        return {
            "same_test_set": None,
            "test_set_note": "each version was evaluated on its own TEST set; the tested manifests could not "
            "be compared",
        }
    if new[0] == old[0]:
        return {
            "same_test_set": True,
            "test_set_note": "both versions were evaluated on the same TEST dataset snapshot "
            f"({new[1]} images)",
        }
    return {
        "same_test_set": False,
        "test_set_note": f"each version was evaluated on its own TEST set ({new[1]} vs {old[1]} images, "
        "different content): per-label differences mix the model and the test set",
    }


def run_gate(
    request: GateRequest,
    *,
    store: TrainingStateStore,
    rekognition: TrainingRekognition,
    outputs: TrainingOutputs,
    publisher: Publisher,
) -> GateResult:
    project, settings, description = request.project, request.settings, request.version
    version = version_info(description)
    production = store.get_production(project)
    status, production_description = None, None
    if production is not None:
        production_description = rekognition.describe_version_raw(
            request.project_arn, production.version_name
        )
        status = str(production_description["Status"]) if production_description else "DELETED"
    new_labels = _label_scores(outputs, description) or {}
    old_labels = _label_scores(outputs, production_description)
    labels = gate_logic.label_table(new_labels, old_labels)
    floors = {str(k): float(v) for k, v in (settings.label_f1_floors or {}).items()}
    max_drop = settings.max_label_f1_drop
    note = evaluation_note(
        _tested_set(outputs, description) if production is not None else None,
        _tested_set(outputs, production_description),
        production is not None,
    )
    # Both events name the new version the same way.
    about_version = {"version_arn": version.arn, "version_name": version.name, "f1_score": version.f1_score}
    publisher.publish(
        EVENT_TRAINING_COMPLETED,
        project,
        **about_version,
        billable_training_seconds=description.get("BillableTrainingTimeInSeconds"),
        labels=labels,
    )
    decision = gate_logic.evaluate(
        version.f1_score,
        production=production,
        f1_floor=float(settings.f1_floor),
        margin=float(settings.promotion_margin),
    )
    failures = gate_logic.check_labels(
        new_labels, old_labels, floors=floors, max_drop=float(max_drop) if max_drop is not None else None
    )
    decision = gate_logic.apply_label_rules(decision, failures)
    if not decision.promote:
        publisher.publish(
            EVENT_VERSION_REJECTED,
            project,
            **about_version,
            reason=decision.reason,
            production_version_arn=production.version_arn if production else None,
            production_f1_score=production.f1_score if production else None,
            label_failures=[failure.to_dict() for failure in decision.label_failures],
            labels=labels,
            **note,
        )
    logger.info(
        "evaluation gate",
        extra={"project": project, "decision": decision.decision, "reason": decision.reason},
    )
    summary = gate_logic.production_summary(production, status)
    return GateResult(
        decision=decision.decision,
        reason=decision.reason,
        f1_score=decision.f1_score,
        version_arn=version.arn,
        production=ProductionSummary.model_validate(summary) if summary else None,
        old_running=status == "RUNNING",
        label_failures=[failure.label for failure in decision.label_failures],
        same_test_set=note["same_test_set"],
    )
