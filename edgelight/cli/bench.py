from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, fail, user_errors


def bench_command(
    artifacts: Annotated[list[Path], typer.Argument(help=".pte, .tflite, .mlpackage, .onnx files (with or without a sidecar) or checkpoint folders (eager reference)", show_default=False)],
    device: Annotated[str, typer.Option(help="host, arm64-qemu[:CPU] (the aarch64 builds under qemu-user; edgelight device setup arm64), android[:SERIAL] or ios[:UDID]")] = "host",
    threads: Annotated[int, typer.Option(help="runtime threads; 0 = the runtime's default")] = 0,
    warmup: Annotated[int, typer.Option(help="untimed runs before timing")] = 5,
    runs: Annotated[int, typer.Option(help="timed runs (at least 2: the spread is always shown)")] = 20,
    data: Annotated[str | None, typer.Option("--data", "--dataset", help="accuracy data: digits, NAME:DIR or an image folder; default: each artifact's own (its sidecar's)")] = None,
    mean: Annotated[str | None, typer.Option(help="for artifacts without a sidecar: per-channel mean, e.g. 0.5,0.5,0.5 (with --std and --data)")] = None,
    std: Annotated[str | None, typer.Option(help="for artifacts without a sidecar: per-channel std")] = None,
    rounds: Annotated[int, typer.Option(help="interleave the artifacts (A B C A B C ...) in this many rounds of child processes; p50 = median of the rounds' medians")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="results file, written after every record")] = None,
    report: Annotated[Path | None, typer.Option(help="folder for report.md, report.html and pareto.png")] = None,
    timeout: Annotated[float, typer.Option(help="seconds allowed per artifact on the host")] = 600.0,
    profile: Annotated[bool, typer.Option(help="per-op profile where the runtime gives one")] = True,
    progress: Annotated[bool, typer.Option(help="progress bar")] = True,
    runner: Annotated[str, typer.Option(help="python: each artifact in a Python child process; native: ExecuTorch programs in edgelight-bench, the C++ runner a phone runs")] = "python",
) -> None:
    """Measure artifacts: latency with its spread, peak memory, size, accuracy, params, MACs."""
    from edgelight.bench.harness import run_bench
    from edgelight.bench.transport import DeviceError
    from edgelight.cli.export import parse_floats

    with user_errors():
        try:
            records = run_bench(artifacts, device=device, threads=threads, warmup=warmup, runs=runs, dataset=data, json_out=json_out, report_dir=report, progress=progress,
                                timeout=timeout, profile=profile, rounds=rounds, mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"), runner=runner)
        except DeviceError as e:
            kept = f"; records finished so far are in {json_out}" if json_out and Path(json_out).is_file() else ""
            fail(f"{e}{kept}", 1)
        for r in records:
            lat = r.get("latency_ms")
            acc = r.get("accuracy")
            spread = f", rounds {min(lat['rounds']):.3f}-{max(lat['rounds']):.3f}" if lat and lat.get("rounds") else ""
            figures = f"p50 {lat['p50']:.3f} ms (p90 {lat['p90']:.3f}, mean {lat['mean']:.3f} ± {lat['std']:.3f}{spread})" if lat else r.get("error") or ""
            top1 = f", top-1 {acc['top1']:.2%}" if acc else ""
            mem = (r.get("memory") or {}).get("peak_rss_bytes")
            weights = r["artifact"].get("weight_bytes")
            size = f", {r['artifact']['bytes'] / 1024:.0f} KB file" + (f" ({weights / 1024:.0f} KB weights)" if weights is not None else "")
            size += f", peak RSS {mem / 2**20:.1f} MB" if mem is not None else ""
            flag = " [sidecar mismatch]" if r["artifact"].get("sidecar") == "mismatch" else ""
            flag += " [emulated: not phone time]" if r["device"].get("emulated") and lat else ""
            echo(f"{r['model']:<24} {r['runtime']:<10} {r['precision']:<7} {r['status']:<12} {figures}{top1}{size}{flag}")
        if json_out:
            echo(f"results: {json_out}")
        if report:
            echo(f"report: {Path(report) / 'report.html'}")
        if any(r["status"] == "error" for r in records):
            raise typer.Exit(1)
