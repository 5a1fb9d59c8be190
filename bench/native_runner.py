"""edgelight-bench (the C++ runner) against the Python harness on the host: top-1 and latency, interleaved.

    python bench/native_runner.py [--rounds 5] [--runs 30]

Every built-in checkpoint is exported to ExecuTorch in fp32 and w8a8. Then, round after round, each program
is measured once by each runner, through the same ``edgelight bench`` code path (``run_bench`` with runner
"python", a fresh harness child, or "native", a fresh edgelight-bench process on a one-artifact plan), on its
own digits test split, 1 thread. The two runners alternate A B / B A from round to round so drift hits both
alike. Reported per program: the median over rounds of each runner's p50 with min-max spread, the median of
the per-round ratios native / python with their spread, and whether top-1 is equal. Issue 16 item 4's
measure: the ratio is "within the spread" when 1.0 lies inside the min-max of the per-round ratios.
Writes bench/results/native_runner.json.
"""

import argparse
import shlex
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgelight.bench.harness import run_bench  # noqa: E402
from edgelight.checkpoint import PRETRAINED_DIR  # noqa: E402
from edgelight.pipeline import export_model  # noqa: E402
from edgelight.utils.files import write_json  # noqa: E402

RUNNERS = ("python", "native")


def _spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    models = sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.safetensors").is_file())
    out = HERE / "artifacts" / "native_runner"
    artifacts = [export_model(m, "executorch", p, out=out, verify_artifact=False).artifact for m in models for p in ("fp32", "w8a8")]
    p50 = {(a, r): [] for a in artifacts for r in RUNNERS}
    accuracy = {(a, r): set() for a in artifacts for r in RUNNERS}
    for round_ in range(args.rounds):
        for artifact in artifacts:
            for runner in RUNNERS if round_ % 2 == 0 else RUNNERS[::-1]:
                (record,) = run_bench([artifact], threads=args.threads, warmup=5, runs=args.runs, progress=False, profile=False, runner=runner)
                if record["status"] != "ok":
                    print(f"round {round_} {artifact.name} {runner}: {record['error']}", file=sys.stderr)
                    continue
                p50[artifact, runner].append(record["latency_ms"]["p50"])
                accuracy[artifact, runner].add(record["accuracy"]["top1"])
                print(f"round {round_} {artifact.name:32s} {runner:6s} p50 {p50[artifact, runner][-1]:.3f} ms  top-1 {record['accuracy']['top1']:.4f}", flush=True)
    rows = []
    for artifact in artifacts:
        py, nat = p50[artifact, "python"], p50[artifact, "native"]
        if not py or len(py) != len(nat):
            continue
        ratios = [n / p for p, n in zip(py, nat, strict=True)]
        rows.append({
            "artifact": artifact.name,
            "python_p50_ms": _spread(py),
            "native_p50_ms": _spread(nat),
            "native_over_python": _spread(ratios),
            "ratio_within_round_spread": min(ratios) <= 1.0 <= max(ratios),
            "top1": {r: sorted(accuracy[artifact, r]) for r in RUNNERS},
            "top1_equal": accuracy[artifact, "python"] == accuracy[artifact, "native"] and len(accuracy[artifact, "python"]) == 1,
        })
    command = shlex.join(["python", "bench/native_runner.py", *(argv if argv is not None else sys.argv[1:])])
    write_json(HERE / "results" / "native_runner.json", {"command": command, "threads": args.threads, "runs": args.runs, "rounds": args.rounds, "rows": rows})
    for row in rows:
        r = row["native_over_python"]
        print(f"{row['artifact']:32s} python {row['python_p50_ms']['median']:.3f} native {row['native_p50_ms']['median']:.3f} ms  "
              f"ratio {r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]  top-1 equal {row['top1_equal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
