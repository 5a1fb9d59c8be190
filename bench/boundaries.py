"""Where shiftresnet-20-e3's time goes at the partition boundaries, from ETDump, per lowering.

    python bench/boundaries.py [--threads 1] [--runs 200]

For each ExecuTorch program of the built-in shiftresnet-20-e3 (ops=lowered / native / delegate, and the
delegate with ``boundary=channels-last``; fp32 and w8a8, exported by ``edgelight.pipeline.export_model``): how many delegate partitions each backend has, and
per forward (mean over ``--runs`` traced runs) the time of
- XNNPACK's layout work: its ``Transpose`` and ``Convert`` events, the NCHW <-> NHWC (and in fp32 the layout
  conversion) at each partition edge, which is what splitting the graph costs;
- edgelight's kernels: the EdgelightBackend delegate calls (ops=delegate) or the ``edgelight::`` custom ops
  (ops=native);
- everything else XNNPACK runs, and the whole ``Method::execute`` ("unattributed": the rest, the executor and
  the delegate calls' own overhead).
Traced time is not latency (bench/lowering.py times the same programs untraced); it says where time goes.
Writes bench/results/boundaries.json.
"""

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"lowered": {}, "native": {"ops": "native"}, "delegate": {"ops": "delegate"},
            "delegate-channels-last": {"ops": "delegate", "boundary": "channels-last"}}
LAYOUT_EVENTS = ("Transpose", "Convert")


def delegate_backends(pte: Path) -> dict[int, str]:
    """instruction index -> backend id of each delegate call in ``forward`` (how ETDump events are placed)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    plan = deserialize_pte_binary(pte.read_bytes()).program.execution_plan[0]
    calls, index = {}, 0
    for chain in plan.chains:
        for instr in chain.instructions:
            if hasattr(instr.instr_args, "delegate_index"):
                calls[index] = plan.delegates[instr.instr_args.delegate_index].id
            index += 1
    return calls


def profile(pte: Path, x: np.ndarray, runs: int) -> dict:
    import torch
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(pte, enable_etdump=True, debug_buffer_size=0)
    method = program.load_method("forward")
    inp = torch.from_numpy(x)
    for _ in range(runs):
        method.execute([inp])
    with tempfile.TemporaryDirectory() as tmp:
        etdump = Path(tmp) / "run.etdump"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        blocks = [b for b in Inspector(etdump_path=str(etdump)).event_blocks if b.name == "Execute"]
    backends = delegate_backends(pte)
    ms = Counter()
    for ev in (ev for block in blocks for ev in block.events if ev.perf_data is not None):
        name, mean = str(ev.name), float(ev.perf_data.avg)
        if name == "Method::execute":
            ms["total"] += mean
        elif ev.is_delegated_op:  # XNNPACK's own events inside its delegate calls
            ms["xnnpack_layout" if name.startswith(LAYOUT_EVENTS) else "xnnpack_compute"] += mean
        elif name == "DELEGATE_CALL" and backends.get(ev._instruction_id) == "EdgelightBackend":
            ms["edgelight"] += mean
        elif name.startswith("edgelight::"):  # a custom-op kernel call (OPERATOR_CALL wraps it: not counted twice)
            ms["edgelight"] += mean
        elif name not in ("DELEGATE_CALL", "OPERATOR_CALL"):
            ms["other_ops"] += mean
    ms["unattributed"] = max(0.0, ms["total"] - ms["edgelight"] - ms["xnnpack_layout"] - ms["xnnpack_compute"] - ms["other_ops"])
    return {"partitions": dict(Counter(backends.values())), "ms_per_forward": {k: round(v, 4) for k, v in sorted(ms.items())}}


def main() -> int:
    from executorch.extension.pybindings import portable_lib

    from edgelight.bench.records import versions
    from edgelight.checkpoint import builtin_checkpoint_dir, load_checkpoint
    from edgelight.data import load_digits, normalize
    from edgelight.ops.kernels import load_native_kernels
    from edgelight.pipeline import export_model

    load_native_kernels()
    portable_lib._unsafe_reset_threadpool(ARGS.threads)
    ckpt_dir = builtin_checkpoint_dir("shiftresnet-20-e3")
    pre = load_checkpoint(ckpt_dir).preprocessing
    x = normalize(load_digits().test_x[:1], pre.mean, pre.std).numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgelight-boundaries-") as tmp:
        for precision in ("fp32", "w8a8"):
            for variant, options in VARIANTS.items():
                pte = Path(tmp) / f"shiftresnet-20-e3-{precision}-{variant}.pte"
                export_model(str(ckpt_dir), "executorch", precision, out=pte, options=options, threads=ARGS.threads)
                row = {"model": "shiftresnet-20-e3", "precision": precision, "variant": variant, **profile(pte, x, ARGS.runs)}
                rows.append(row)
                print(f"{precision:5} {variant:22} partitions {row['partitions']}  ms/forward {row['ms_per_forward']}", flush=True)
    result = {
        "command": shlex.join(["python", "bench/boundaries.py", *sys.argv[1:]]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "threads": ARGS.threads},
        "versions": versions(),
        "setup": {"batch": 1, "input": "3x32x32 digits test image", "traced_runs": ARGS.runs},
        "results": rows,
    }
    ARGS.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {ARGS.out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200, help="traced forwards per program")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "boundaries.json")
    ARGS = parser.parse_args()
    sys.exit(main())
