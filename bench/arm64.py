"""The ARM64 lane's full matrix: every built-in checkpoint x ExecuTorch / LiteRT x fp32 / w8a8 on emulated cores.

    python bench/run_suite.py builtin        # once: exports the built-in checkpoints into bench/artifacts/builtin
    edgelight device setup arm64             # once: the aarch64 environment
    python bench/arm64.py [--cpus cortex-a76 max]

Each artifact runs through ``edgelight verify --device arm64-qemu:CPU`` (edgelight.arm64.verify): the ARM
build's outputs on the checkpoint's digits test split against PyTorch fp32 and against the x86 run of the
same file, with accuracy, top-1 agreement, max |diff| and bit-exactness, and the wall time of each check.
Writes bench/results/arm64.json and prints the table docs/arm64.md quotes.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgelight.arm64 import env  # noqa: E402
from edgelight.arm64.verify import verify_on_device  # noqa: E402
from edgelight.utils.files import write_json  # noqa: E402

ARTIFACTS = HERE / "artifacts" / "builtin"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", nargs="+", default=["cortex-a76", "max"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "w8a8"])
    ap.add_argument("--fp32-cpus-skip", nargs="*", default=["max"], help="CPUs on which fp32 is not run (max: XNNPACK's SME kernels emulate ~8x slower, >10 min per artifact)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per artifact on the emulated core")
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="the folder of exported artifacts (with sidecars) to check")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "arm64.json")
    args = ap.parse_args()
    files = sorted(p for p in args.artifacts.glob("*") if p.suffix in {".pte", ".tflite"})
    if not files:
        sys.exit(f"no artifacts in {args.artifacts}: run python bench/run_suite.py builtin first")
    rows, started = [], time.monotonic()
    command = shlex.join(["python", "bench/arm64.py", *sys.argv[1:]])
    for cpu in args.cpus:
        for f in files:
            precision = f.stem.rsplit("_", 1)[-1]
            if precision not in args.precisions or (precision == "fp32" and cpu in args.fp32_cpus_skip):
                continue
            t0 = time.monotonic()
            report = verify_on_device([f], device=f"arm64-qemu:{cpu}", timeout=args.timeout)[0]
            report.update(cpu=cpu, seconds=round(time.monotonic() - t0, 1))
            rows.append(report)
            print(_row(report), flush=True)
            # after every check: a run cut short keeps what it finished
            write_json(args.out, {"command": command, "qemu": env.qemu_version(), "total_seconds": round(time.monotonic() - started, 1), "reports": rows})
    total = round(time.monotonic() - started, 1)
    print(f"\n{len(rows)} checks in {total:.0f} s; {sum(r['status'] == 'passed' for r in rows)} passed -> {args.out}")
    return 0


def _row(r: dict) -> str:
    x86, ref, acc = r.get("vs_x86") or {}, r.get("vs_reference") or {}, r.get("accuracy") or {}
    cells = [r["cpu"], r["model"], r["runtime"], r["precision"], r["status"],
             f"{acc['arm']:.2%}" if acc.get("arm") is not None else "–", f"{acc['x86']:.2%}" if acc.get("x86") is not None else "–",
             f"{x86['top1_agreement']:.2%}" if x86 else "–", f"{x86['max_abs_diff']:.3g}" if x86 else "–", ("yes" if x86["bit_exact"] else "no") if x86 else "–",
             f"{ref['top1_agreement']:.2%}" if ref else "–", f"{r['seconds']:.0f}"]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())
