"""LruNet's layer reuse at run time: peak RSS, latency, file and accuracy per reuse count, fp32 and int8.

    python bench/reuse.py [--rounds 3] [--runs 30] [--models lrunet-1-1x lrunet-4-1x lrunet-8-1x lrunet-14-1x]

Each model is exported to ExecuTorch and LiteRT in fp32 and w8a8 (the last model with verification and its
export wall time, plus Core ML fp16 and w8: the export-time goal covers all three targets). Then, round
after round, every artifact is measured in a fresh child process of the harness (edgelight.bench.child):
ExecuTorch fp32 as exported (reuse=auto: each reused block a loop over one delegate) and unrolled; unrolled
fp32 twice, XNNPACK's weights cache off then on (runner hints overridden); w8a8 once as its sidecar says.
A B C A B C ... in one run, so drift between rounds hits every arm alike. Reported: the median over rounds
of peak RSS above the child's baseline and of the p50 latency, with min-max spread; the goal figures of
issue 13 side by side. Writes bench/results/reuse.json.
"""

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgelight.artifacts import runner_hints  # noqa: E402
from edgelight.bench import inputs  # noqa: E402
from edgelight.bench.child import run_isolated  # noqa: E402
from edgelight.pipeline import export_model  # noqa: E402
from edgelight.utils.files import write_json  # noqa: E402

RUNTIMES = ("executorch", "tflite")
PRECISIONS = ("fp32", "w8a8")
CACHE = "xnnpack_weight_cache"


def _spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _export_all(models: list[str], out_dir: Path) -> tuple[list, dict]:
    """(model, runtime, precision, artifact, arms) per artifact, and the last model's export wall times (the
    targets' defaults: what a user runs). ExecuTorch fp32 twice: reuse=auto (the loop) and reuse=unrolled."""
    cells, export_s = [], {}
    for model in models:
        timed = model == models[-1]
        for runtime in RUNTIMES:
            for precision in PRECISIONS:
                variants = [{}, {"reuse": "unrolled"}] if (runtime, precision) == ("executorch", "fp32") else [{}]
                for options in variants:
                    start = time.perf_counter()
                    result = export_model(model, runtime, precision, out=out_dir, options=options, verify_artifact=timed)
                    if timed and not options:
                        export_s[f"{runtime} {precision}"] = time.perf_counter() - start
                    cells.append((model, runtime, precision, result.artifact, _arms(runtime, precision, options)))
                    print(f"exported {result.artifact.name} ({result.artifact.stat().st_size:,} bytes): {runner_hints(result.artifact)['runtime_options']}", flush=True)
    for precision in ("fp16", "w8"):  # Core ML: export only (its runtime is macOS)
        start = time.perf_counter()
        export_model(models[-1], "coreml", precision, out=out_dir)
        export_s[f"coreml {precision}"] = time.perf_counter() - start
    return cells, export_s


def _arms(runtime: str, precision: str, options: dict) -> list:
    """(label, runner hints or None = the sidecar's) for one artifact."""
    if runtime == "executorch" and precision == "fp32" and not options:
        return [("fp32, loop", None)]
    if precision == "fp32":
        return [("fp32, copy per use", {"requires": [], "runtime_options": {CACHE: False}}), ("fp32, packed once", {"requires": [], "runtime_options": {CACHE: True}})]
    return [(precision, None)]


def _measure(cells: list, rounds: int, runs: int, threads: int) -> dict:
    samples: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgelight-reuse-") as tmp:
        for r in range(rounds):
            for model, runtime, _precision, path, arms in cells:
                meta = inputs.artifact_meta(path)
                npz = Path(tmp) / f"{model}.npz"
                if not npz.exists():
                    data = inputs.eval_set("digits", meta)
                    np.savez(npz, x=data.x[:64], y=data.y[:64])
                for label, hints in arms:
                    job = {"artifact": str(path), "runtime": runtime, "threads": threads, "warmup": 5, "runs": runs, "data": str(npz), "input_shape": meta["input_shape"]}
                    res = run_isolated({**job, "hints": hints} if hints else job, 600)
                    if not res.get("ok"):
                        print(f"round {r} {model} {runtime} {label}: {res.get('error')}", file=sys.stderr)
                        continue
                    entry = samples.setdefault((model, runtime, label), {"rss_mb": [], "p50_ms": [], "top1": [], "bytes": path.stat().st_size})
                    entry["rss_mb"].append(res["peak_rss_bytes"] / 2**20)
                    entry["p50_ms"].append(statistics.median(res["samples_ms"]))
                    entry["top1"].append(res["correct"] / res["samples"])
                    print(f"round {r} {model:13s} {runtime:10s} {label:19s} peak RSS {entry['rss_mb'][-1]:6.2f} MB  p50 {entry['p50_ms'][-1]:.3f} ms", flush=True)
    return samples


def _goals(samples: dict, small: str, big: str, export_s: dict) -> list[dict]:
    def med(key, field):
        return statistics.median(samples[key][field]) if key in samples else None

    goals = []
    for runtime in RUNTIMES:
        labels = sorted({label for (_, rt, label) in samples if rt == runtime})
        for label in labels:
            a, b = med((small, runtime, label), "rss_mb"), med((big, runtime, label), "rss_mb")
            if a is not None and b is not None:
                goals.append({"goal": "peak RSS growth <= 1.5 MB", "runtime": runtime, "arm": label, f"rss({big}) - rss({small}) MB": b - a, "met": b - a <= 1.5})
        int8 = (big, runtime, "w8a8")
        for label in (x for x in labels if x.startswith("fp32") and x != "fp32, copy per use"):
            fp32 = (big, runtime, label)
            if fp32 in samples and int8 in samples:
                speedup = med(fp32, "p50_ms") / med(int8, "p50_ms")
                goals.append({"goal": "int8 >= 1.5x faster than fp32", "runtime": runtime, "arm": label, "fp32 p50 ms": med(fp32, "p50_ms"), "w8a8 p50 ms": med(int8, "p50_ms"), "speedup": speedup, "met": speedup >= 1.5})
                ratio = samples[int8]["bytes"] / samples[fp32]["bytes"]
                goals.append({"goal": "int8 file <= 0.6x fp32", "runtime": runtime, "arm": label, "fp32 bytes": samples[fp32]["bytes"], "w8a8 bytes": samples[int8]["bytes"], "ratio": ratio, "met": ratio <= 0.6})
    total = sum(export_s.values())
    goals.append({"goal": f"{big} export to every target, fp32 + int8, <= 60 s", "seconds": export_s, "total_s": total, "met": total <= 60})
    return goals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["lrunet-1-1x", "lrunet-4-1x", "lrunet-8-1x", "lrunet-14-1x"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    cells, export_s = _export_all(args.models, HERE / "artifacts" / "reuse")
    samples = _measure(cells, args.rounds, args.runs, args.threads)
    rows = [
        {"model": m, "runtime": rt, "arm": label, "bytes": v["bytes"], "peak_rss_mb": _spread(v["rss_mb"]), "p50_ms": _spread(v["p50_ms"]), "top1_64": v["top1"][0]}
        for (m, rt, label), v in samples.items()
    ]
    goals = _goals(samples, args.models[0], args.models[-1], export_s)
    command = shlex.join(["python", "bench/reuse.py", *(argv if argv is not None else sys.argv[1:])])
    write_json(HERE / "results" / "reuse.json", {"command": command, "rows": rows, "goals": goals})
    print(json.dumps(goals, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
