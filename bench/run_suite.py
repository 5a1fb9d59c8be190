"""Export a suite's models x targets x precisions and benchmark them: ``python bench/run_suite.py NAME``.

Writes bench/results/NAME.json (records + the command) and bench/results/NAME/ (report.md,
report.html, pareto.png). Artifacts are exported with ``edgelight.pipeline.export_model`` into
bench/artifacts/NAME/ (not committed). A cell that fails to export is reported and skipped; a
cell that cannot run here (Core ML off macOS) becomes a 'not_runnable' record.
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites import SUITES  # noqa: E402


def export_cells(name: str, suite) -> list[Path]:
    from edgelight.checkpoint import builtin_checkpoint_dir
    from edgelight.pipeline import export_model

    artifacts = []
    for model in suite.models:
        ckpt = builtin_checkpoint_dir(model)
        if suite.eager and ckpt is not None:
            artifacts.append(Path(ckpt))
        source = str(ckpt) if ckpt is not None else model
        for model_, target, precision in [c for c in suite.cells() if c[0] == model]:
            try:
                # the bench measures accuracy itself, so the exporter's own verification is skipped
                exported = export_model(source, target, precision, out=HERE / "artifacts" / name, verify_artifact=False)
                artifacts.append(Path(exported.artifact))
            except Exception as e:  # noqa: BLE001 (one cell's failed export must not sink the suite)
                print(f"export failed: {model_} {target} {precision}: {type(e).__name__}: {e}", file=sys.stderr)
    return artifacts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", choices=sorted(SUITES))
    ap.add_argument("--device", default="host", help="host, android[:SERIAL] or ios[:UDID]")
    ap.add_argument("--threads", type=int, default=None, help="override the suite's thread count")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    args = ap.parse_args(argv)
    suite = SUITES[args.suite]

    from edgelight.bench.harness import run_bench

    os.chdir(HERE.parent)  # records name artifacts relative to the repository root
    artifacts = [p.resolve().relative_to(HERE.parent) if p.resolve().is_relative_to(HERE.parent) else p for p in export_cells(args.suite, suite)]
    if not artifacts:
        print("nothing to benchmark: every export failed", file=sys.stderr)
        return 1
    command = shlex.join(["python", "bench/run_suite.py", *(argv if argv is not None else sys.argv[1:])])
    records = run_bench(
        artifacts,
        device=args.device,
        threads=args.threads if args.threads is not None else suite.threads,
        runs=args.runs or suite.runs,
        warmup=args.warmup if args.warmup is not None else suite.warmup,
        json_out=HERE / "results" / f"{args.suite}.json",
        report_dir=HERE / "results" / args.suite,
        command=command,
    )
    print(f"{len(records)} records -> {HERE / 'results' / (args.suite + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
