"""The sidecar: the JSON file next to every exported artifact (``m.pte`` -> ``m.pte.json``).

It says what the artifact is (model, precision, input shape, preprocessing, labels), how it was made
(options, op inventory) and verified, and what a runner needs beyond the runtime (``requires``). The
Python side, the bench harness and both demo apps read it. Version 1 sidecars (no ``sidecar_version``)
named precisions ``int8``; they are read with today's names.
"""

import json
from pathlib import Path

SIDECAR_VERSION = 2
LEGACY_PRECISIONS = {"coreml": {"int8": "w8"}, "*": {"int8": "w8a8"}}  # version 1 name -> today's, per runtime


def sidecar_path(artifact: Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def current_precision(runtime: str, precision: str) -> str:
    """A precision as named today (a version 1 sidecar's 'int8' meant w8 on Core ML, w8a8 elsewhere)."""
    return LEGACY_PRECISIONS.get(runtime, LEGACY_PRECISIONS["*"]).get(precision, precision)


def runner_hints(artifact: Path) -> dict:
    """What the exporter recorded for the runner: ``requires`` (None when no version 2 sidecar says) and
    ``runtime_options`` (empty when none)."""
    try:
        side = json.loads(sidecar_path(artifact).read_text())
    except (OSError, ValueError):
        side = None
    side = side if isinstance(side, dict) else {}
    requires, options = side.get("requires"), side.get("runtime_options")
    return {
        "requires": [str(r) for r in requires] if isinstance(requires, list) else None,
        "runtime_options": dict(options) if isinstance(options, dict) else {},
    }
