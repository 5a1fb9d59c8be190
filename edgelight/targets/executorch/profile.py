"""ExecuTorch's per-op profile and the planned arena read from the program.

The Python runtime writes an ETDump (``enable_etdump=True``) and the devtools Inspector turns it into
per-event timings. XNNPACK reports its own ops inside the delegate call, marked ``delegated``. The
planned arena is read from the program, not measured. The benchmark child runs the profile after the
measurement, on a separately loaded program, so tracing never touches the latency or memory figures.
"""

import tempfile
from pathlib import Path

import numpy as np


def planned_arena_bytes(pte: Path) -> int | None:
    """Activation memory ExecuTorch planned for ``forward`` (entry 0 of non_const_buffer_sizes is reserved)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(pte).read_bytes()).program
    plans = {p.name: p for p in program.execution_plan}
    plan = plans.get("forward") or (program.execution_plan[0] if program.execution_plan else None)
    return int(sum(plan.non_const_buffer_sizes[1:])) if plan is not None else None


def op_profile(pte: Path, x: np.ndarray, runs: int) -> list[dict]:
    """Run ``forward`` ``runs`` times with ETDump on and return one row per traced event."""
    import torch
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
        return etdump_rows(etdump)


def etdump_rows(etdump: Path) -> list[dict]:
    """One row per event of the ETDump's Execute blocks (what this process or edgelight-bench traced)."""
    from executorch.devtools import Inspector

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
