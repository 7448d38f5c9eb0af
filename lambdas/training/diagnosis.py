"""Why a training failed, from its validation results (no AWS here).

Rekognition writes, when the manifests passed the file-level checks, a manifest summary
(`manifest_summary.json`: `statistics.training` / `statistics.testing` with line counts, the
`error_json_line_indices` and the terminal content `errors`, plus `errors` spanning both) and two
validation manifests (`training_manifest_with_validation.json`, `testing_manifest_with_validation.json`):
the dataset lines with `errors` lists added at the image, the label attribute, its metadata and
each bounding-box annotation. Developer Guide: "Understanding the manifest summary" and
"Understanding training and testing validation result manifests".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

FIRST_LINES = 10  # lines in error quoted in the event and the reason


@dataclass(frozen=True)
class LineError:
    dataset: str  # training | testing
    line: int  # 0-based index in the validation manifest
    source_ref: str
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The fields under their manifest names ("source-ref")."""
        return {name.replace("_", "-"): value for name, value in asdict(self).items()}


@dataclass
class ValidationReport:
    manifest_errors: list[dict[str, str]] = field(default_factory=list)  # terminal content errors
    statistics: dict[str, dict[str, int]] = field(default_factory=dict)  # per dataset, line counts
    error_counts: dict[str, int] = field(default_factory=dict)  # JSON-line error code -> occurrences
    first_lines_in_error: list[LineError] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # files that could not be read, and why

    @property
    def empty(self) -> bool:
        return not (self.manifest_errors or self.error_counts or self.statistics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_errors": self.manifest_errors,
            "statistics": self.statistics,
            "error_counts": self.error_counts,
            "first_lines_in_error": [line.to_dict() for line in self.first_lines_in_error],
            "unavailable": self.unavailable,
        }

    def sentence(self) -> str:
        """One line for the reason: terminal errors, counts per code, the first line in error."""
        parts = []
        if self.manifest_errors:
            parts.append(", ".join(f"{e['scope']} {e['code']}" for e in self.manifest_errors))
        invalid = {name: s.get("invalid_json_lines", 0) for name, s in self.statistics.items()}
        if any(invalid.values()):
            parts.append(
                ", ".join(f"{count} invalid {name} lines" for name, count in invalid.items() if count)
            )
        if self.error_counts:
            parts.append(", ".join(f"{code} x{count}" for code, count in self.error_counts.items()))
        if self.first_lines_in_error:
            first = self.first_lines_in_error[0]
            parts.append(f"first: {first.dataset} line {first.line} {first.source_ref} {first.code}")
        return "; ".join(parts)


def _errors_of(value: Any) -> list[dict[str, Any]]:
    errors = value.get("errors") if isinstance(value, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def line_errors(line: dict[str, Any]) -> list[dict[str, Any]]:
    """Every error object of one validation manifest line: image, label attributes, their metadata
    and their bounding-box annotations."""
    found = list(_errors_of(line))
    for key, value in line.items():
        if key in ("errors", "source-ref") or not isinstance(value, dict):
            continue
        found.extend(_errors_of(value))
        for annotation in value.get("annotations") or []:
            found.extend(_errors_of(annotation))
    return found


_COUNTED = ("total_json_lines", "valid_json_lines", "invalid_json_lines", "ignored_json_lines")


def read_manifest_summary(summary: dict[str, Any], report: ValidationReport) -> None:
    statistics = summary.get("statistics") or {}
    for name in ("training", "testing"):
        stats = statistics.get(name) or {}
        if not stats:
            continue
        report.statistics[name] = {key: int(stats.get(key) or 0) for key in _COUNTED}
        for error in stats.get("errors") or []:
            report.manifest_errors.append(
                {"scope": name, "code": str(error.get("code")), "message": str(error.get("message") or "")}
            )
    for error in summary.get("errors") or []:
        report.manifest_errors.append(
            {"scope": "both", "code": str(error.get("code")), "message": str(error.get("message") or "")}
        )


def read_validation_manifest(dataset: str, lines: Iterable[str], report: ValidationReport) -> None:
    counts = Counter(report.error_counts)
    for index, raw in enumerate(lines):
        raw = raw.strip()
        if not raw:
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            counts["ERROR_INVALID_JSON_LINE"] += 1
            continue
        errors = line_errors(line) if isinstance(line, dict) else []
        for error in errors:
            code = str(error.get("code") or "UNKNOWN")
            counts[code] += 1
            if len(report.first_lines_in_error) < FIRST_LINES:
                report.first_lines_in_error.append(
                    LineError(
                        dataset,
                        index,
                        str(line.get("source-ref") or ""),
                        code,
                        str(error.get("message") or ""),
                    )
                )
    report.error_counts = dict(counts.most_common())
