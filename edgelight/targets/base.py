"""The record every runtime folder declares, and the shape of a lowering.

A runtime folder (``edgelight/targets/<name>/``) holds everything about one runtime; its ``__init__.py``
defines ``RUNTIME``, a :class:`Runtime` naming what the rest of edgelight needs to know: the artifact
suffixes, the runner, whether it runs here, the modules the benchmark child imports before its memory
baseline, the packages whose versions go in records, the profiler, the report colour, the demo apps
that bundle it, and (for a runtime one exports to) its :class:`Exporter`. Everything else (the CLI's
choices, the schemas' enums, quickstart's cells, the suites, app bundling) is derived from these records.

An exporter's ``lower`` turns an eval-mode model into an artifact at a temporary path; the export
pipeline owns naming, atomic publication, verification and the sidecar, so no runtime repeats them.
A runner loads an artifact and maps float32 NCHW batches to logits. Heavy modules are named as
``"module:attr"`` strings and imported on first use, so ``import edgelight`` stays light.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgelight.errors import StepError, UsageError

# What each precision name means wherever it appears (CLI, sidecars, records, report).
PRECISIONS = {
    "fp32": "float32 weights and compute",
    "fp16": "float16 weights and compute",
    "w8a8": "int8 weights and activations, statically calibrated (integer kernels)",
    "w8": "int8 weights, float16 compute (weight-only compression)",
}


class Runner(Protocol):
    """load -> run (many times) -> close. ``run`` takes and returns float32 numpy arrays.

    ``hints`` is what the exporter recorded for the runner (``requires``, ``runtime_options``); None: the
    runner reads them from the artifact's sidecar (edgelight.artifacts.runner_hints).
    """

    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None: ...

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass
class LoweringRequest:
    """What a target's ``lower`` gets: the model, an example input, calibration batches, options."""

    model: object  # torch.nn.Module in eval mode, custom ops intact
    example: object  # torch.Tensor, the fixed input shape of the artifact
    precision: str
    calibration: list  # list[torch.Tensor] of preprocessed inputs (empty unless int8)
    out_path: Path  # temporary path to write; the pipeline publishes it
    metadata: dict  # model, classes, preprocessing, edgelight version: for targets that embed it
    options: dict = field(default_factory=dict)  # target-specific, e.g. {"ops": "native"}


@dataclass
class LoweringReport:
    """What a target says about the artifact it wrote."""

    op_inventory: dict[str, int]  # op name -> count in the artifact
    delegated_fraction: float | None = None  # share of compute ops a delegate took, where that applies
    notes: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)  # what a runner must load beyond the runtime; into the sidecar
    runtime_options: dict = field(default_factory=dict)  # how a runner should set the runtime up for it; into the sidecar


def lazy(ref: str) -> Callable:
    """``"package.module:attr"`` -> a callable that imports the module on first call and forwards to ``attr``."""
    module, attr = ref.split(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


@dataclass(frozen=True)
class Exporter:
    """How edgelight lowers to a runtime: its precisions, options and the pre-flight check of a request."""

    precisions: tuple[str, ...]
    lower: Callable[[LoweringRequest], LoweringReport]
    # the options lower() understands: name -> allowed values, the first one the default
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_precision: str = "fp32"
    # old names still accepted for a precision, where they mean one thing on this runtime
    aliases: dict[str, str] = field(default_factory=dict)
    # (precision, options with defaults) -> None, or raises UsageError: combinations, before any work is done
    validate: Callable[[str, dict], None] | None = None


@dataclass(frozen=True)
class Runtime:
    name: str
    title: str  # what the user reads: "ExecuTorch (XNNPACK)"
    suffixes: tuple[str, ...]  # artifact suffixes; the first is what the exporter writes
    make_runner: Callable[[], Runner]
    runnable_here: Callable[[], str | None]  # None when it runs here, else the reason it cannot
    preload: tuple[str, ...] = ()  # modules the benchmark child imports before its memory baseline
    prepare: Callable[[dict], None] | None = None  # (runner hints) -> None: what else a load needs, before the baseline
    packages: tuple[str, ...] = ()  # distributions whose versions go in bench records
    color: str = "#777777"  # the report's colour for this runtime
    exporter: Exporter | None = None  # None: a reference runtime, not an export target
    inspect: Callable[[Path], dict] | None = None  # op inventory / spec of an artifact read back from disk
    profiler: Callable | None = None  # (path, x, runs) -> per-op rows; None: no_profile says why
    no_profile: str = ""
    apps: tuple[str, ...] = ()  # demo apps that bundle and run this runtime's artifacts ("android", "ios")
    listed_by: tuple[str, ...] = ()  # demo apps that bundle and list its artifacts without running them
    bench_precisions: tuple[str, ...] | None = None  # what quickstart and suites benchmark (default: all)

    # the exporter's fields, read through the runtime (``get_target(name).precisions``)
    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    @property
    def precisions(self) -> tuple[str, ...]:
        return self.exporter.precisions if self.exporter else ("fp32",)

    @property
    def options(self) -> dict[str, tuple[str, ...]]:
        return self.exporter.options if self.exporter else {}

    @property
    def default_precision(self) -> str:
        return self.exporter.default_precision if self.exporter else "fp32"

    @property
    def benched(self) -> tuple[str, ...]:
        return self.bench_precisions if self.bench_precisions is not None else self.precisions

    def lower(self, request: LoweringRequest) -> LoweringReport:
        return self.exporter.lower(request)

    def check_options(self, options: dict) -> dict:
        return check_options(self.name, self.options, options)

    def resolve(self, precision: str | None, options: dict | None) -> tuple[str, dict]:
        """The precision by its current name and the options with defaults, checked together: raises UsageError."""
        if self.exporter is None:
            raise UsageError(f"'{self.name}' is the reference runtime, not an export target")
        precision = precision or self.default_precision
        precision = self.exporter.aliases.get(precision, precision)
        if precision not in self.precisions:
            hint = " ('int8' is ambiguous here: w8 or w8a8)" if precision == "int8" else ""
            raise UsageError(f"target {self.name} supports precisions {', '.join(self.precisions)}, not '{precision}'{hint}")
        options = self.check_options(options or {})
        if self.exporter.validate is not None:
            self.exporter.validate(precision, options)
        return precision, options


class TargetError(StepError):
    """A lowering or runtime failure with a message meant for the user."""


class OptionError(UsageError):
    """An option a target does not know, or a value it does not take (a usage error)."""


def missing_module(module: str, problem: str) -> Callable[[], str | None]:
    """A runnable_here check: None when ``module`` imports, else ``problem`` with the import error."""

    def check() -> str | None:
        try:
            importlib.import_module(module)
        except ImportError as e:
            return problem.format(error=e)
        return None

    return check


def check_options(target: str, allowed: dict[str, tuple[str, ...]], options: dict | None) -> dict:
    """``options`` with every default filled in (the first allowed value); unknown names or values raise."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise OptionError(f"unknown {target} option(s): {', '.join(unknown)} (known: {', '.join(allowed) or 'none'})")
    for key, value in options.items():
        if value not in allowed[key]:
            raise OptionError(f"{target} option {key}='{value}' is not one of: {', '.join(allowed[key])}")
    return {key: options.get(key, values[0]) for key, values in allowed.items()}
