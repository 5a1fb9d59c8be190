"""Latency summaries from timed samples. Never a single run: the spread is part of the figure."""

import math
from collections.abc import Sequence

import numpy as np


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default, the same as the phone side must use)."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def summarize(samples_ms: Sequence[float], *, load_ms: float, first_ms: float, warmup: int) -> dict:
    """The record's ``latency_ms`` object from steady-state samples taken after ``warmup`` runs.

    ``std`` is the sample standard deviation (ddof=1), which is why at least two samples are needed.
    """
    xs = np.asarray(samples_ms, dtype=np.float64)
    if xs.ndim != 1 or xs.size < 2:
        raise ValueError(f"need at least 2 timed runs to show a spread, got {xs.size}")
    if not np.all(np.isfinite(xs)) or np.any(xs < 0):
        raise ValueError("latency samples must be finite and non-negative")
    for name, v in (("load", load_ms), ("first", first_ms)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} time must be finite and non-negative, got {v}")
    return {
        "load": float(load_ms),
        "first": float(first_ms),
        "mean": float(xs.mean()),
        "std": float(xs.std(ddof=1)),
        "p50": percentile(xs, 50),
        "p90": percentile(xs, 90),
        "p99": percentile(xs, 99),
        "min": float(xs.min()),
        "max": float(xs.max()),
        "runs": int(xs.size),
        "warmup": int(warmup),
    }
