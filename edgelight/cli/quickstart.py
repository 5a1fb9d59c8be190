from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors


def quickstart_command(
    out: Annotated[Path, typer.Option(help="folder for the artifacts, results.json and the report")] = Path("quickstart"),
    runs: Annotated[int, typer.Option(help="timed runs per artifact (at least 2)")] = 20,
    threads: Annotated[int, typer.Option(help="runtime threads for the benchmark")] = 1,
    progress: Annotated[bool, typer.Option(help="progress bar")] = True,
    jobs: Annotated[int | None, typer.Option(help="exports run side by side (default: one per core, at most 4)")] = None,
) -> None:
    """The main job on the built-in digits checkpoints: export to every target, verify, benchmark, report."""
    from edgelight.bench.report import COLUMNS, row
    from edgelight.quickstart import quickstart

    with user_errors():
        result = quickstart(out, runs=runs, threads=threads, progress=progress, say=echo, jobs=jobs)
    echo("")
    shown = ("p50 ms", "top-1", "size KB", "weights KB", "peak RSS MB")
    echo(f"{'model':<24} {'runtime':<10} {'prec':<5} " + " ".join(f"{c:>11}" for c in shown))
    for r in result.records:
        cells = dict(zip(COLUMNS, row(r)))
        echo(f"{r['model']:<24} {r['runtime']:<10} {r['precision']:<5} " + " ".join(f"{cells[c]:>11}" for c in shown) + (f"  ({r['status']})" if r["status"] != "ok" else ""))
    for failure in result.failures:
        echo(f"failed: {failure}")
    echo(f"results: {out / 'results.json'}")
    echo(f"report:  {result.report}")
    if result.failures or any(r["status"] == "error" for r in result.records):
        raise typer.Exit(1)
