"""The sidecar: the JSON file next to every exported artifact (``m.pte`` -> ``m.pte.json``).

It says what the artifact is (model, precision, input shape, preprocessing, labels, the data it was
verified on), how it was made (options, op inventory, bytes and sha256) and what a runner needs beyond
the runtime (``requires``, ``runtime_options``). Its schema is ``artifact.schema.json``; ``write_sidecar``
validates at write and ``read_sidecar`` is the one reader (the bench harness, ``bundle``, the runners).
Version 1 sidecars (no ``sidecar_version``) named precisions ``int8``; they are read with today's names.
"""

import functools
import json
from pathlib import Path

from edgelight.errors import UsageError

SIDECAR_VERSION = 4  # 4: weights_sha256; 3: sha256 and data; 2: precisions w8a8 / w8; 1: int8
SCHEMA = Path(__file__).with_name("artifact.schema.json")
LEGACY_PRECISIONS = {"coreml": {"int8": "w8"}, "*": {"int8": "w8a8"}}  # version 1 name -> today's, per runtime
RUNTIME_OF_SUFFIX = {".pte": "executorch", ".tflite": "tflite", ".mlpackage": "coreml", ".onnx": "onnx"}


class SidecarError(UsageError):
    """A sidecar that is not valid JSON or does not follow artifact.schema.json."""


def sidecar_path(artifact: Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def current_precision(runtime: str, precision: str) -> str:
    """A precision as named today (a version 1 sidecar's 'int8' meant w8 on Core ML, w8a8 elsewhere)."""
    return LEGACY_PRECISIONS.get(runtime, LEGACY_PRECISIONS["*"]).get(precision, precision)


@functools.cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_sidecar(side, where: str) -> dict:
    """Schema and the rules a schema cannot say (one mean / std value per input channel)."""
    errors = sorted(_validator().iter_errors(side), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise SidecarError(f"{where}: invalid sidecar at {at}: {e.message}")
    channels = side["input_shape"][1]
    for key in ("mean", "std"):
        if len(side[key]) != channels:
            raise SidecarError(f"{where}: {key} must hold {channels} numbers (one per input channel), got {side[key]}")
    return side


def write_sidecar(artifact: Path, side: dict) -> Path:
    from edgelight.utils.files import write_json

    path = sidecar_path(artifact)
    write_json(path, check_sidecar({**side, "sidecar_version": SIDECAR_VERSION}, str(path)))
    return path


def read_sidecar(artifact: Path) -> dict | None:
    """The artifact's sidecar, checked, with today's precision names; None when there is none."""
    path = sidecar_path(artifact)
    if not path.is_file():
        return None
    try:
        side = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SidecarError(f"{path}: not valid JSON ({e})") from None
    side = check_sidecar(side, str(path))
    runtime = side.get("target") or RUNTIME_OF_SUFFIX.get(Path(artifact).suffix, "")
    return {**side, "precision": current_precision(runtime, side["precision"]), "sidecar_version": side.get("sidecar_version", 1)}


def runner_hints(artifact: Path) -> dict:
    """What the exporter recorded for the runner: ``requires`` (None when no sidecar says) and
    ``runtime_options`` (empty when none). An unreadable sidecar gives no hints (the runner reads the file)."""
    try:
        side = read_sidecar(artifact) or {}
    except SidecarError:
        side = {}
    requires, options = side.get("requires"), side.get("runtime_options")
    return {"requires": list(requires) if isinstance(requires, list) else None, "runtime_options": dict(options) if isinstance(options, dict) else {}}
