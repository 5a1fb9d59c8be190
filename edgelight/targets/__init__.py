"""Registry of export targets and runtimes, keyed by name.

Targets are imported only when asked for, so ``import edgelight`` stays light and a
missing runtime only matters to the command that needs it.
"""

import difflib
import importlib

from edgelight.targets.base import PRECISIONS, LoweringReport, LoweringRequest, Runner, Target, TargetError

TARGET_NAMES = ("executorch", "tflite", "coreml")
RUNTIME_NAMES = ("eager", *TARGET_NAMES)  # eager PyTorch is the reference runtime, not an export target
SUFFIXES = {".pte": "executorch", ".tflite": "tflite", ".mlpackage": "coreml", ".safetensors": "eager"}


def _unknown(kind: str, name: str, choices) -> ValueError:
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.5)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return ValueError(f"unknown {kind} '{name}'{hint}; choose one of: {', '.join(choices)}")


def get_target(name: str) -> Target:
    if name not in RUNTIME_NAMES:
        raise _unknown("target", name, TARGET_NAMES)
    return importlib.import_module(f"edgelight.targets.{name}").TARGET


def target_for_artifact(path) -> Target:
    from pathlib import Path

    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"'{path}': cannot tell the runtime from the suffix '{suffix}' (expected one of {', '.join(SUFFIXES)})")
    return get_target(SUFFIXES[suffix])


__all__ = ["PRECISIONS", "RUNTIME_NAMES", "TARGET_NAMES", "LoweringReport", "LoweringRequest", "Runner", "Target", "TargetError", "get_target", "target_for_artifact"]
