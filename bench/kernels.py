"""Native edgelight kernels: ratios measured through real calls, written to bench/results/kernels.json.

    python bench/kernels.py [--runs 7] [--quick]

Two harnesses, both real runtime code:
- the C++ micro-benchmark (edgelight/ops/kernels/tests/kernels_bench.cpp, built by the same CMake project):
  the registered ExecuTorch kernels called directly vs memcpy of the same bytes, and fused shift->1x1 vs
  the same kernel without the shift; each run times baseline and candidate back to back;
- executorch.runtime programs (.pte, XNNPACK threadpool reset to 1 thread, our kernels are single-threaded):
  native shift vs the one-hot depthwise lowering delegated to XNNPACK, native fused CSC vs XNNPACK's 1x1
  conv, and shiftresnet-20-e3 end to end, native (fused) vs the all-XNNPACK depthwise lowering, fp32 and int8.
Every figure is the median over runs; the spread is [min, max] of the per-run ratios.
"""

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

import edgelight.ops  # noqa: F401
from edgelight.ops.kernels import configure_and_build, load_native_kernels

RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"
SHAPES = [(48, 32, 32, 16), (96, 16, 16, 32), (192, 8, 8, 64)]  # shiftresnet-20-e3: mid width, H, W, out width


def summarize(name, baseline, cand_us, base_us, goal=None, **extra):
    ratios = [c / b for c, b in zip(cand_us, base_us)]
    row = {"case": name, "baseline": baseline, "us_median": round(statistics.median(cand_us), 2),
           "baseline_us_median": round(statistics.median(base_us), 2), "ratio_median": round(statistics.median(ratios), 3),
           "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)], "runs": len(ratios), **extra}
    if goal is not None:
        row["goal"], row["meets_goal"] = goal, row["ratio_median"] <= goal
    print(f"{name:44s} {row['us_median']:9.1f} us vs {baseline:34s} {row['baseline_us_median']:9.1f} us  "
          f"x{row['ratio_median']:.2f} [{row['ratio_spread'][0]:.2f}, {row['ratio_spread'][1]:.2f}]")
    return row


def cpp_bench(runs):
    build = Path(tempfile.mkdtemp(prefix="edgelight-bench-"))
    configure_and_build(build, {"EDGELIGHT_KERNELS_BENCH": "ON", "EDGELIGHT_NATIVE_ARCH": "ON"}, ["edgelight_kernels_bench"])
    out = subprocess.run([str(build / "edgelight_kernels_bench"), str(runs)], capture_output=True, text=True, check=True)
    rows = []
    for line in out.stdout.splitlines():
        d = json.loads(line)
        goal = 1.5 if d["case"].startswith("shift_") else None if d["case"].startswith("nhwc_") else 1.1
        rows.append(summarize(f"{d['case']} {d['shape']}", d["baseline"], d["us"], d["baseline_us"], goal,
                              harness="C++ kernel bench"))
    return rows


class Runner:
    """A loaded .pte; keeps the Program alive for its Method (the Method reads the program's buffers)."""

    def __init__(self, pte: bytes):
        from executorch.runtime import Runtime

        self.program = Runtime.get().load_program(pte)
        self.method = self.program.load_method("forward")

    def time_us(self, inputs, iters):
        self.method.execute(inputs)
        start = time.perf_counter()
        for _ in range(iters):
            self.method.execute(inputs)
        return (time.perf_counter() - start) / iters * 1e6


def pair(name, baseline, cand: Runner, base: Runner, inputs, runs, iters, goal=None, **extra):
    extra.update(candidate_graph=getattr(cand, "layout", None), baseline_graph=getattr(base, "layout", None))
    c, b = [], []
    for _ in range(runs):  # alternate so machine noise hits both
        b.append(base.time_us(inputs, iters))
        c.append(cand.time_us(inputs, iters))
    return summarize(name, baseline, c, b, goal, harness="executorch.runtime", **extra)


def lower(module, example, native, quantize=False, calib=(), fuse=True):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgelight.ops.lowering import lowered
    from edgelight.targets.executorch.native import prepare_native

    def export(m):
        if native:
            return torch.export.export(m, (example,))
        with lowered("depthwise"):
            return torch.export.export(m, (example,))

    if quantize:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(export(module).module(), quantizer)
        for batch in calib:
            prepared(batch)
        module = convert_pt2e(prepared)
    ep = export(module)
    if native:
        ep = prepare_native(ep, "w8a8" if quantize else "fp32", fuse=fuse)
    else:
        # without it the one-hot weight reaches XNNPACK as a lift_fresh_copy output: the copy is delegated and
        # the depthwise conv falls back to the portable kernel (measured ~100x slower)
        from executorch.exir.passes.constant_prop_pass import constant_prop_pass

        ep = constant_prop_pass(ep)
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    ops = [str(n.target) for n in edge.exported_program().graph.nodes if n.op == "call_function"]
    outside = sorted({o.split("ops_")[-1] for o in ops if "convolution" in o or "edgelight" in o})
    runner = Runner(edge.to_executorch().buffer)
    runner.layout = {"delegate_calls": sum("executorch_call_delegate" in o for o in ops), "outside_xnnpack": outside}
    return runner


class Shift(torch.nn.Module):
    def forward(self, x):
        return edgelight.ops.shift2d(x)


class ShiftConv(torch.nn.Module):
    def __init__(self, c, o, shift=True):
        super().__init__()
        self.conv, self.shift = torch.nn.Conv2d(c, o, 1), shift

    def forward(self, x):
        return torch.relu(self.conv(edgelight.ops.shift2d(x) if self.shift else x))


def runtime_bench(runs, quick):
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(1)
    rows = []
    for c, h, w, o in SHAPES[:1] if quick else SHAPES:
        x = torch.randn(1, c, h, w)
        rows.append(pair(f"shift_fp32 {c}x{h}x{w} (program)", "XNNPACK one-hot depthwise 3x3",
                         lower(Shift(), x, True), lower(Shift(), x, False), [x], runs, 200))
        fused, alone = ShiftConv(c, o).eval(), ShiftConv(c, o, shift=False).eval()
        alone.conv = fused.conv
        rows.append(pair(f"fused_shift_conv1x1_fp32 {c}x{h}x{w}->{o} (program)", "XNNPACK 1x1 conv alone",
                         lower(fused, x, True), lower(alone, x, False), [x], runs, 200, goal=1.1))
    from edgelight.models import create_model

    torch.manual_seed(0)
    model, x = create_model("shiftresnet-20-e3").eval(), torch.randn(1, 3, 32, 32)
    calib = [torch.randn(1, 3, 32, 32) for _ in range(4)]
    for precision in ("fp32", "w8a8"):
        q = precision == "w8a8"
        xnnpack = lower(model, x, False, q, calib)
        for fuse in (True, False):
            name = f"shiftresnet-20-e3 {precision} native{'+fused' if fuse else ' (shift op only)'}"
            rows.append(pair(name, "all-XNNPACK depthwise lowering", lower(model, x, True, q, calib, fuse), xnnpack,
                             [x], runs, 50))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one shape for the per-op programs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_native_kernels()
    rows = cpp_bench(args.runs) + runtime_bench(args.runs, args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": "python bench/kernels.py" + (" --quick" if args.quick else "") + f" --runs {args.runs}",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch_threads": 1,
        "xnnpack_threads": 1, "rows": rows}, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
