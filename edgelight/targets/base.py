"""The shape every target shares: a lowering that writes one artifact, and a runner.

A target module (``edgelight/targets/<name>/__init__.py``) defines ``TARGET``. Its
``lower`` turns an eval-mode model into an artifact at a temporary path; the export
pipeline owns naming, atomic publication, verification and the sidecar, so no target
repeats them. Its runner loads an artifact and maps float32 NCHW batches to logits.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

PRECISIONS = ("fp32", "fp16", "int8")


class Runner(Protocol):
    """load -> run (many times) -> close. ``run`` takes and returns float32 numpy arrays."""

    def load(self, path: Path, threads: int | None = None) -> None: ...

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


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    lower: Callable[[LoweringRequest], LoweringReport]
    make_runner: Callable[[], Runner]
    runnable_here: Callable[[], str | None]  # None when it runs here, else the reason it cannot
    default_precision: str = "fp32"
    inspect: Callable[[Path], dict] | None = None  # op inventory / spec of an artifact read back from disk


class TargetError(RuntimeError):
    """A lowering or runtime failure with a message meant for the user."""
