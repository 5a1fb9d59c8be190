"""LruNet's shared weights at run time: peak RSS and latency with XNNPACK's weights cache off vs on.

    python bench/weight_cache.py [--rounds 3] [--runs 30] [--models lrunet-1-1x lrunet-4-1x lrunet-14-1x]

Each model is exported fp32 to ExecuTorch and LiteRT once (its sidecar asks for the cache: reused conv
weights). Then, round after round, every (model, runtime) is measured in a fresh child process of the
harness (edgelight.bench.child) twice, cache off then on, with the runner hints overridden: A B A B ... in
one run, so drift between rounds hits both alike. Reported per (model, runtime): the median over rounds of
the peak RSS above the child's baseline and of the p50 latency, with min-max spread, and per runtime the
goal figure peak RSS(lrunet-14-1x) - peak RSS(lrunet-1-1x). Writes bench/results/weight_cache.json.
"""

import argparse
import json
import shlex
import statistics
import sys
import tempfile
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


def _spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["lrunet-1-1x", "lrunet-4-1x", "lrunet-14-1x"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    out_dir = HERE / "artifacts" / "weight_cache"
    cells = []
    for model in args.models:
        for runtime in RUNTIMES:
            result = export_model(model, runtime, "fp32", out=out_dir, verify_artifact=False)
            cells.append((model, runtime, result.artifact))
            print(f"exported {result.artifact.name}: runtime_options {runner_hints(result.artifact)['runtime_options']}", flush=True)
    samples: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgelight-wc-") as tmp:
        for r in range(args.rounds):
            for model, runtime, path in cells:
                meta = inputs.artifact_meta(path)
                npz = Path(tmp) / f"{model}.npz"
                if not npz.exists():
                    data = inputs.eval_set("digits", meta)
                    np.savez(npz, x=data.x[:64], y=data.y[:64])
                for cache in (False, True):
                    hints = {"requires": [], "runtime_options": {"xnnpack_weight_cache": cache}}
                    job = {"artifact": str(path), "runtime": runtime, "threads": args.threads, "warmup": 5, "runs": args.runs, "data": str(npz), "input_shape": meta["input_shape"], "hints": hints}
                    res = run_isolated(job, 600)
                    if not res.get("ok"):
                        print(f"round {r} {model} {runtime} cache={cache}: {res.get('error')}", file=sys.stderr)
                        continue
                    entry = samples.setdefault((model, runtime, cache), {"rss_mb": [], "p50_ms": [], "top1": []})
                    entry["rss_mb"].append(res["peak_rss_bytes"] / 2**20)
                    entry["p50_ms"].append(statistics.median(res["samples_ms"]))
                    entry["top1"].append(res["correct"] / res["samples"])
                    print(f"round {r} {model:13s} {runtime:10s} cache={'on ' if cache else 'off'} peak RSS {entry['rss_mb'][-1]:6.2f} MB  p50 {entry['p50_ms'][-1]:.3f} ms", flush=True)
    rows = [{"model": m, "runtime": rt, "weight_cache": c, "peak_rss_mb": _spread(v["rss_mb"]), "p50_ms": _spread(v["p50_ms"]), "top1": v["top1"][0]} for (m, rt, c), v in samples.items()]
    goals = []
    small, big = args.models[0], args.models[-1]
    for runtime in RUNTIMES:
        for cache in (False, True):
            a, b = samples.get((small, runtime, cache)), samples.get((big, runtime, cache))
            if a and b:
                goals.append({"runtime": runtime, "weight_cache": cache, f"rss({big}) - rss({small}) MB": statistics.median(b["rss_mb"]) - statistics.median(a["rss_mb"]), "goal_mb": 1.5})
        off, on = samples.get((big, runtime, False)), samples.get((big, runtime, True))
        if off and on:
            goals.append({"runtime": runtime, f"{big} p50 cache on / off": statistics.median(on["p50_ms"]) / statistics.median(off["p50_ms"])})
    command = shlex.join(["python", "bench/weight_cache.py", *(argv if argv is not None else sys.argv[1:])])
    write_json(HERE / "results" / "weight_cache.json", {"command": command, "rows": rows, "goals": goals})
    print(json.dumps(goals, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
