"""Export wall time of one model to one target, option sets side by side, interleaved (A B A B ...).

    python bench/export_time.py lrunet-14-1x --target executorch --precision fp32 \\
        --variants reuse=auto reuse=unrolled [--rounds 2] [--out bench/results/export-time.json]

Each export is a fresh `edgelight export` process (imports, lowering, verification on the checkpoint's test
split, atomic write: what a user waits for), so drift of these shared cores hits every variant alike.
Reports the median and range per variant and the ratio of each median to the first variant's.
"""

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgelight.utils.files import write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--target", required=True)
    ap.add_argument("--precision", required=True)
    ap.add_argument("--variants", nargs="+", required=True, help="option sets, each KEY=VALUE[,KEY=VALUE]")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "export-time.json")
    args = ap.parse_args(argv)
    cli = [str(Path(sys.executable).with_name("edgelight"))]
    seconds: dict[str, list[float]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory(prefix="edgelight-export-time-") as tmp:
        for r in range(args.rounds):
            for variant in args.variants:
                options = [x for kv in variant.split(",") for x in ("-O", kv)]
                command = [*cli, "export", args.model, "-t", args.target, "--precision", args.precision, *options, "--out", f"{tmp}/{r}-{len(seconds[variant])}/"]
                start = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True)
                elapsed = time.perf_counter() - start
                if proc.returncode != 0:
                    sys.exit(f"{variant}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
                seconds[variant].append(elapsed)
                print(f"round {r} {variant:24s} {elapsed:6.1f} s", flush=True)
    first = statistics.median(seconds[args.variants[0]])
    rows = [{"variant": v, "median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "n": len(s), "ratio_to_first": statistics.median(s) / first} for v, s in seconds.items()]
    command = shlex.join(["python", "bench/export_time.py", *(argv if argv is not None else sys.argv[1:])])
    write_json(args.out, {"command": command, "model": args.model, "target": args.target, "precision": args.precision, "rows": rows})
    for row in rows:
        print(f"{row['variant']:24s} median {row['median_s']:6.1f} s ({row['min_s']:.1f}-{row['max_s']:.1f}), x{row['ratio_to_first']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
