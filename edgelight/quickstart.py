"""The README's main job on the built-in digits checkpoints: export, verify, benchmark, report.

``quickstart()`` exports every committed checkpoint to every target (the cells below), verifies each
artifact with its own runtime, benchmarks everything that runs on this host next to the eager PyTorch
reference, and writes ``OUT/results.json`` plus ``OUT/report/{report.md,report.html,pareto.png}``.
A cell that fails is reported and the rest goes on; the summary says which.
"""

import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from edgelight.errors import UsageError

MAX_JOBS = 4  # each worker holds its own torch and converters in memory


def default_cells() -> tuple[tuple[str, str], ...]:
    """(target, precision) per artifact: every export target x the precisions its record benchmarks."""
    from edgelight.targets import export_targets

    return tuple((r.name, p) for r in export_targets() for p in r.benched)


CELLS = default_cells()


@dataclass
class QuickstartResult:
    out_dir: Path
    exports: list = field(default_factory=list)  # ExportResult of each cell that exported
    failures: list[str] = field(default_factory=list)  # "model target precision: why"
    records: list[dict] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out_dir / "report" / "report.html"


def builtin_models() -> list[str]:
    from edgelight.checkpoint import PRETRAINED_DIR, builtin_checkpoint_dir

    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if builtin_checkpoint_dir(p.name)) if PRETRAINED_DIR.is_dir() else []


def default_jobs() -> int:
    """Exports run side by side: most of an export is single-threaded graph passes, so one per core pays."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_JOBS))


def _quiet_worker() -> None:
    """A worker process shows the user what the CLI would: edgelight's warnings, not the libraries' chatter."""
    import torch

    from edgelight.utils.logs import quiet_libraries

    quiet_libraries()
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"edgelight(\.|$)")
    torch.set_num_threads(1)  # the workers already fill the cores


def _export_all(tasks: list[tuple], jobs: int, say: Callable[[str], None]):
    """Yield (task index, ExportResult or the exception) as each export finishes; jobs=1 runs in this process."""
    from edgelight.pipeline import export_model

    if jobs == 1:
        for i, args in enumerate(tasks):
            try:
                yield i, export_model(*args[:3], **args[3])
            except Exception as e:  # noqa: BLE001 (one failed cell is a finding to report, not the end of the run)
                yield i, e
        return
    say(f"exporting {len(tasks)} artifacts, {jobs} at a time")
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker)
    try:
        futures = {pool.submit(export_model, *args[:3], **args[3]): i for i, args in enumerate(tasks)}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as e:  # noqa: BLE001 (a worker that died fails its cells, and the run goes on)
                yield futures[future], e
    finally:  # Ctrl-C or an error: drop the queued cells, and let the running ones clean up after themselves
        pool.shutdown(wait=True, cancel_futures=True)


def quickstart(out_dir: Path = Path("quickstart"), models: list[str] | None = None, cells=CELLS, runs: int = 20, warmup: int = 5,
               threads: int = 1, progress: bool = True, say: Callable[[str], None] = print, jobs: int | None = None) -> QuickstartResult:
    from edgelight.bench.harness import check_counts, check_outputs, run_bench
    from edgelight.checkpoint import builtin_checkpoint_dir

    out_dir = Path(out_dir)
    models = models or builtin_models()
    if not models:
        raise UsageError("no built-in checkpoints found in edgelight/pretrained (is the package installed whole?)")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1 (got {jobs})")
    check_counts(threads, warmup, runs)  # before the exports: a bad count should not cost minutes
    checkpoints = {}
    for model in models:
        checkpoints[model] = builtin_checkpoint_dir(model)
        if checkpoints[model] is None:
            raise UsageError(f"'{model}' has no built-in checkpoint; built in: {', '.join(builtin_models())}")
    check_outputs(out_dir / "results.json", out_dir / "report")  # last of the checks: it creates the folders it probes
    cells_of = [(model, target, precision) for model in models for target, precision in cells]
    tasks = [(str(checkpoints[m]), t, p, {"out": out_dir / "artifacts", "threads": threads}) for m, t, p in cells_of]
    result = QuickstartResult(out_dir)
    exported = {}
    for done, (i, outcome) in enumerate(_export_all(tasks, jobs, say), 1):
        model, target, precision = cells_of[i]
        if isinstance(outcome, Exception):
            result.failures.append(f"{model} {target} {precision}: {outcome}")
            say(f"[{done}/{len(tasks)}] export {model} -> {target} {precision} failed: {outcome}")
            continue
        v = outcome.verification
        figures = f"top-1 agreement {v['top1_agreement']:.2%}, accuracy {v['accuracy']:.2%}" if v.get("status") == "passed" else v.get("reason", v["status"])
        say(f"[{done}/{len(tasks)}] export {model} -> {target} {precision}: {outcome.artifact.name}, {outcome.bytes / 1024:.0f} KB, {figures} ({outcome.export_seconds:.0f} s)")
        exported[i] = outcome
    result.exports = [exported[i] for i in sorted(exported)]
    # each model's eager PyTorch reference, then its artifacts in cell order
    artifacts = [a for m in models for a in [checkpoints[m], *(exported[i].artifact for i in sorted(exported) if cells_of[i][0] == m)]]
    say(f"benchmark {len(artifacts)} artifacts ({runs} timed runs after {warmup} warm-up, {threads} thread(s), each in its own process)")
    result.records = run_bench(artifacts, threads=threads, warmup=warmup, runs=runs, json_out=out_dir / "results.json",
                               report_dir=out_dir / "report", progress=progress, command="edgelight quickstart")
    return result
