"""The demo's synthesized template, kept between runs while nothing it is made from changed.

Synthesizing the CDK app takes 14-22 s of a demo run (a jsii process, every construct). The
template depends only on the app's sources (infra/, and lambdas/, which is the functions' code
asset and whose hash is in the template), cdk.json, pyproject.toml, the context overrides and
the installed CDK library; the cache key is a digest of all of them, so any change synthesizes
afresh. The cache is one JSON file in the demo's state folder (`.local-stack/`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

SOURCE_FOLDERS = ("infra", "lambdas")
SOURCE_FILES = ("cdk.json", "pyproject.toml")
CACHE_FILE = "synth-cache.json"


def sources_digest(root: Path, context: dict[str, Any]) -> str:
    """sha256 over the context, the CDK library version and every source file (path and bytes)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    try:
        digest.update(metadata.version("aws-cdk-lib").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"no aws-cdk-lib")
    digest.update(sys.version.encode())
    paths = [root / name for name in SOURCE_FILES]
    for folder in SOURCE_FOLDERS:
        paths.extend(
            path
            for path in (root / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        )
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"missing")
        digest.update(b"\0")
    return digest.hexdigest()


def cached_template(
    synthesize: Callable[[], dict[str, Any]], root: Path, context: dict[str, Any], state_dir: Path
) -> tuple[dict[str, Any], bool]:
    """The template from the cache when the sources are unchanged, else `synthesize()` (then
    cached). Returns (template, whether it came from the cache)."""
    key = sources_digest(root, context)
    path = state_dir / CACHE_FILE
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key and isinstance(cached.get("template"), dict):
            return cached["template"], True
    except (OSError, ValueError):
        pass  # no cache yet, or an unreadable one: synthesize
    template = synthesize()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"key": key, "template": template}), encoding="utf-8")
    temporary.replace(path)
    return template, False
