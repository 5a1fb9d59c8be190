"""The runtime registry: one line per runtime folder. Everything that lists runtimes derives from it.

Each folder's ``__init__.py`` is light (its heavy modules load on first use), so reading the registry
costs nothing and a missing runtime only matters to the command that needs it.
"""

import difflib
import importlib
from functools import cache

from edgelight.errors import UsageError
from edgelight.targets.base import PRECISIONS, Exporter, LoweringReport, LoweringRequest, Runner, Runtime, TargetError

REGISTRY = (  # the order is the order of tables, reports and quickstart
    "eager",  # PyTorch eager: the reference every artifact is checked against
    "executorch",
    "tflite",
    "coreml",
    "onnx",
)


@cache
def get_runtime(name: str) -> Runtime:
    if name not in REGISTRY:
        raise _unknown("runtime", name, REGISTRY)
    return importlib.import_module(f"edgelight.targets.{name}").RUNTIME


def runtimes() -> list[Runtime]:
    return [get_runtime(name) for name in REGISTRY]


def export_targets() -> list[Runtime]:
    return [r for r in runtimes() if r.exporter is not None]


def get_target(name: str) -> Runtime:
    """A runtime one exports to; the reference runtime and unknown names raise UsageError."""
    names = [r.name for r in export_targets()]
    if name in REGISTRY and name not in names:
        raise UsageError(f"'{name}' is the reference runtime, not an export target; choose one of: {', '.join(names)}")
    if name not in names:
        raise _unknown("target", name, names)
    return get_runtime(name)


def suffixes() -> dict[str, str]:
    """Artifact suffix -> runtime name."""
    return {suffix: r.name for r in runtimes() for suffix in r.suffixes}


def all_precisions() -> tuple[str, ...]:
    return tuple(PRECISIONS)


def _unknown(kind: str, name: str, choices) -> UsageError:
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.5)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return UsageError(f"unknown {kind} '{name}'{hint}; choose one of: {', '.join(choices)}")


TARGET_NAMES = tuple(r.name for r in export_targets())
RUNTIME_NAMES = REGISTRY

__all__ = [
    "PRECISIONS",
    "REGISTRY",
    "RUNTIME_NAMES",
    "TARGET_NAMES",
    "Exporter",
    "LoweringReport",
    "LoweringRequest",
    "Runner",
    "Runtime",
    "TargetError",
    "all_precisions",
    "export_targets",
    "get_runtime",
    "get_target",
    "runtimes",
    "suffixes",
]
