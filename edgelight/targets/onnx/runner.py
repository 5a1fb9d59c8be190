"""Runs an .onnx with onnxruntime's CPU execution provider (the engine onnxruntime-android links too)."""

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError


def _session(path: Path, threads: int | None, profile_dir: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the session reports every graph optimization otherwise
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(profile_dir) / "ort")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (onnxruntime raises its own Fail/InvalidGraph/... types)
        raise TargetError(f"onnxruntime could not load '{path}': {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


class OnnxRunner:
    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None:
        self.session = _session(Path(path), threads)
        self.input = self.session.get_inputs()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        expected = list(self.input.shape)
        if list(x.shape) != expected:
            raise TargetError(f"the model takes input of shape {expected}, got {list(x.shape)}")
        return self.session.run(None, {self.input.name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def close(self) -> None:
        self.session = None


def op_profile(path: Path, x: np.ndarray, runs: int) -> list[dict]:
    """onnxruntime's own profiler: mean time per op type over ``runs`` runs (node events, kernel time)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = _session(Path(path), None, tmp)
        name = session.get_inputs()[0].name
        for _ in range(max(runs, 2)):
            session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})
        events = json.loads(Path(session.end_profiling()).read_text())
    totals, counts = defaultdict(float), defaultdict(int)
    for ev in events:
        args = ev.get("args") or {}
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time") and "op_name" in args:
            totals[args["op_name"]] += ev["dur"] / 1000.0
            counts[args["op_name"]] += 1
    return [{"op": op, "mean_ms": totals[op] / counts[op], "count": counts[op], "delegated": False} for op in sorted(totals)]
