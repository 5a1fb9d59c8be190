"""The shape every target shares: a lowering that writes one artifact, and a runner.

A target module (``edgelight/targets/<name>/__init__.py``) defines ``TARGET``. Its
``lower`` turns an eval-mode model into an artifact at a temporary path; the export
pipeline owns naming, atomic publication, verification and the sidecar, so no target
repeats them. Its runner loads an artifact and maps float32 NCHW batches to logits.
"""

import contextlib
import importlib
import logging
import os
import sys
import tempfile
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
    # the options lower() understands: name -> allowed values, the first one the default
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def check_options(self, options: dict) -> dict:
        return check_options(self.name, self.options, options)


class TargetError(RuntimeError):
    """A lowering or runtime failure with a message meant for the user."""


class OptionError(TargetError, ValueError):
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


# Libraries that log import-time chatter (optional extensions, untested-version notes) at WARNING.
NOISY_LOGGERS = ("coremltools", "torchao", "torch.utils._pytree", "executorch", "absl", "jax", "litert_torch", "ai_edge_litert")


def quiet_libraries() -> None:
    """Keep the runtimes' import-time logging out of the user's terminal (targets capture their converters' output)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's C++ INFO lines


@contextlib.contextmanager
def native_log():
    """Collect what native runtime code writes to stderr (fd 2) while the block runs.

    The runtimes log CPU probing and delegate creation on every load; a runner keeps that out of
    the user's terminal and quotes the collected lines only when a load fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(ln.strip() for ln in sink.read().decode(errors="replace").splitlines() if ln.strip())


def quote_errors(lines: list[str], limit: int = 2) -> str:
    """The last error-looking lines of a native log, for a one-line message."""
    errors = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "invalid", "unsupported"))]
    return "; ".join(errors[-limit:])
