"""Per-op profiles and static memory read from the artifact, where the runtime offers them.

- ExecuTorch: the Python runtime writes an ETDump (``enable_etdump=True``) and the devtools
  Inspector turns it into per-event timings. XNNPACK reports its own ops inside the delegate call,
  marked ``delegated``. The planned arena is read from the program, not measured.
- LiteRT: the Python ``Interpreter`` of ai-edge-litert 2.3.0 exposes no op profiler (only the C++
  ``benchmark_model --enable_op_profiling`` does), so a .tflite record has ``op_profile: null``.
- Core ML and eager: none here.

The profile runs in the same child as the measurement but after it, on a separately loaded
program, so tracing never touches the latency or memory figures.
"""

import tempfile
from pathlib import Path

import numpy as np

NO_PROFILE = {
    "tflite": "the ai-edge-litert Python Interpreter has no op profiler; run benchmark_model --enable_op_profiling for one",
    "coreml": "Core ML gives no per-op timing through coremltools",
    "eager": "eager is the reference; use torch.profiler for a per-op view",
}


def planned_arena_bytes(pte: Path) -> int | None:
    """Activation memory ExecuTorch planned for ``forward`` (entry 0 of non_const_buffer_sizes is reserved)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(pte).read_bytes()).program
    plans = {p.name: p for p in program.execution_plan}
    plan = plans.get("forward") or (program.execution_plan[0] if program.execution_plan else None)
    return int(sum(plan.non_const_buffer_sizes[1:])) if plan is not None else None


def executorch_op_profile(pte: Path, x: np.ndarray, runs: int) -> list[dict]:
    """Run ``forward`` ``runs`` times with ETDump on and return one row per traced event."""
    import torch
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(Path(pte), enable_etdump=True, debug_buffer_size=0)
    method = program.load_method("forward")
    inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    for _ in range(max(runs, 2)):
        method.execute([inp])
    with tempfile.TemporaryDirectory() as tmp:
        etdump = Path(tmp) / "run.etdump"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        if not etdump.is_file() or etdump.stat().st_size == 0:
            raise RuntimeError("this executorch build wrote an empty ETDump (event tracer off)")
        inspector = Inspector(etdump_path=str(etdump))
    rows = []
    for block in inspector.event_blocks:
        if block.name != "Execute":  # 'Default' holds load/init, already in latency_ms.load
            continue
        for ev in block.events:
            if ev.perf_data is None:
                continue
            rows.append({"op": str(ev.name), "mean_ms": float(ev.perf_data.avg), "count": len(ev.perf_data.raw), "delegated": bool(ev.is_delegated_op)})
    return rows


def op_profile(runtime: str, path: Path, x: np.ndarray, runs: int) -> tuple[list[dict] | None, str | None]:
    """(rows, None) or (None, why there is no profile)."""
    if runtime == "executorch":
        return executorch_op_profile(path, x, runs), None
    return None, NO_PROFILE.get(runtime, f"no op profiler for {runtime}")
