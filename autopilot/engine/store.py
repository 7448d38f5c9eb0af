"""Optional persistence: JSON state and pickled models under a data directory."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from autopilot.engine.learning.training import TrainedModel

STATE_FILE = "state.json"
MODELS_DIR = "models"
FORMAT_VERSION = 1


class Store:
    """Writes the whole state atomically (temp file + rename) and one pickle per trained model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / MODELS_DIR).mkdir(parents=True, exist_ok=True)

    def load_state(self) -> list[dict[str, Any]]:
        path = self.root / STATE_FILE
        if not path.exists():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has state format {data.get('format')}; this engine reads {FORMAT_VERSION}."
            )
        return list(data["projects"])

    def save_state(self, projects: list[dict[str, Any]]) -> None:
        payload = json.dumps({"format": FORMAT_VERSION, "projects": projects}, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".state-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.replace(tmp, self.root / STATE_FILE)

    def _model_path(self, version_arn: str) -> Path:
        return self.root / MODELS_DIR / (hashlib.sha256(version_arn.encode()).hexdigest()[:32] + ".pkl")

    def save_model(self, version_arn: str, model: TrainedModel) -> None:
        path = self._model_path(version_arn)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def load_model(self, version_arn: str) -> TrainedModel | None:
        path = self._model_path(version_arn)
        if not path.exists():
            return None
        with path.open("rb") as handle:
            model = pickle.load(handle)  # our own files, written by save_model
        return model if isinstance(model, TrainedModel) else None

    def delete_model(self, version_arn: str) -> None:
        self._model_path(version_arn).unlink(missing_ok=True)
