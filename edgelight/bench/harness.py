"""``run_bench``: the library call behind ``edgelight bench``.

Host: each artifact is measured in its own child process (edgelight.bench.child), one record per
(model, runtime, precision, device, threads). Phones: a bench plan goes over a DeviceTransport and
the demo app answers with records in the same schema. Records are appended to ``json_out`` as they
finish, so a failure later in the run never loses them.
"""

import contextlib
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgelight.bench import inputs
from edgelight.bench.child import run_isolated
from edgelight.bench.records import SCHEMA_VERSION, ResultsFile, host_device, new_record
from edgelight.bench.stats import summarize
from edgelight.errors import UsageError
from edgelight.targets import get_runtime, runtimes, suffixes

DEVICE_KINDS = ("host", "android", "ios")


def phone_runtimes(kind: str) -> tuple[str, ...]:
    """The runtimes a demo app links (from each runtime's record)."""
    return tuple(r.name for r in runtimes() if kind in r.apps)


def parse_device(spec: str) -> tuple[str, str | None]:
    """'host' | 'android[:SERIAL]' | 'ios[:UDID]' -> (kind, id or None)."""
    kind, _, ident = (spec or "host").partition(":")
    if kind not in DEVICE_KINDS or (kind == "host" and ident):
        raise UsageError(f"unknown device '{spec}'; use host, android[:SERIAL] or ios[:UDID]")
    return kind, ident or None


def check_counts(threads, warmup, runs) -> None:
    if runs < 2:
        raise UsageError(f"--runs must be at least 2 so the spread can be shown (got {runs})")
    if warmup < 0:
        raise UsageError(f"--warmup must be >= 0 (got {warmup})")
    if threads is not None and threads < 0:
        raise UsageError(f"--threads must be >= 0 (got {threads})")


def check_outputs(json_out, report_dir) -> None:
    """Refuse result and report paths that cannot be written before anything is measured."""
    from edgelight.utils.files import probe_folder

    if json_out is not None:
        if Path(json_out).is_dir():
            raise UsageError(f"--json '{json_out}' is a folder; give the results file's path")
        probe_folder(Path(json_out).parent)
    if report_dir is not None:
        if Path(report_dir).exists() and not Path(report_dir).is_dir():
            raise UsageError(f"--report '{report_dir}' is a file; give a folder for the report")
        probe_folder(Path(report_dir))


def _plan_items(artifacts) -> list[tuple[Path, str, dict]]:
    """Resolve every artifact before anything runs, so bad input fails fast with one clear line."""
    from edgelight.targets import PRECISIONS

    known = suffixes()
    items = []
    for a in artifacts:
        path = inputs.resolve_artifact(a)
        if path.suffix not in known:
            raise UsageError(f"'{a}': cannot tell the runtime from the suffix '{path.suffix}' (expected {', '.join(known)} or a checkpoint folder)")
        meta = inputs.artifact_meta(path)
        if meta["precision"] not in PRECISIONS:
            raise UsageError(f"'{a}': its sidecar says precision '{meta['precision']}'; expected one of {', '.join(PRECISIONS)}")
        items.append((path, known[path.suffix], meta))
    if not items:
        raise UsageError(f"give at least one artifact ({', '.join(s for s in known if s != '.safetensors')} or a checkpoint folder)")
    return items


def _unavailable(runtime: str) -> str | None:
    """Why this runtime cannot run here (target missing, or its own runnable_here reason)."""
    try:
        return get_runtime(runtime).runnable_here()
    except (ImportError, AttributeError) as e:
        return f"the {runtime} runner is not available in this install ({type(e).__name__}: {e})"


def _weight_bytes(runtime: str, path: Path) -> int | None:
    """Distinct constant bytes, read from the file by the runtime's inspector (None where it cannot say)."""
    inspect = get_runtime(runtime).inspect
    try:
        value = inspect(path).get("weights_bytes") if inspect is not None else None
    except Exception:  # noqa: BLE001 (an unreadable file becomes the record's error when it is run)
        return None
    return int(value) if value is not None else None


def _fill(record: dict, result: dict, runtime: str, path: Path, dataset: str, warmup: int) -> dict:
    if not result.get("ok"):
        record["error"] = result.get("error") or "unknown failure"
        return record
    record["latency_ms"] = summarize(result["samples_ms"], load_ms=result["load_ms"], first_ms=result["first_ms"], warmup=warmup)
    record["memory"] = {"peak_rss_bytes": int(result["peak_rss_bytes"]), "planned_arena_bytes": None}
    record["accuracy"] = {"dataset": dataset, "top1": result["correct"] / result["samples"], "samples": int(result["samples"])}
    record["nan_outputs"] = bool(result["nan_outputs"])
    record["op_profile"] = result.get("op_profile")
    record["status"] = "ok"
    notes = record.get("notes", []) + list(result.get("notes") or [])
    inspect = get_runtime(runtime).inspect
    if inspect is not None:
        try:
            record["memory"]["planned_arena_bytes"] = inspect(path).get("planned_arena_bytes")
        except Exception as e:  # noqa: BLE001 (a missing static figure must not lose the measured ones)
            notes.append(f"planned arena unreadable: {type(e).__name__}: {e}")
    if notes:
        record["notes"] = notes
    return record


@contextlib.contextmanager
def _progress(enabled: bool, total: int, what: str):
    if not enabled:
        yield lambda desc=None, advance=0: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task(what, total=total)

        def step(desc=None, advance=0):
            bar.update(task, description=desc or what, advance=advance)

        yield step


def _run_host(items, results: ResultsFile, threads, warmup, runs, dataset, timeout, profile, progress) -> None:
    device = host_device()
    cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgelight-bench-") as tmp, _progress(progress, len(items), "bench") as step:
        for path, runtime, meta in items:
            step(f"{meta['model']} [{runtime} {meta['precision']}]")
            record = new_record(meta, runtime, device, threads, path)
            record["artifact"]["weight_bytes"] = _weight_bytes(runtime, path)
            if meta.get("weights") == "random":
                record["notes"] = ["random weights (exported without a trained checkpoint): accuracy is chance level"]
            reason = _unavailable(runtime)
            if reason:
                record.update(status="not_runnable", error=f"not runnable on this host: {reason}")
            else:
                key = (dataset, tuple(meta["input_shape"][1:]), tuple(meta["mean"]), tuple(meta["std"]), tuple(meta["labels"]))
                if key not in cache:
                    name, x, y = inputs.eval_set(dataset, meta)
                    npz = Path(tmp) / f"data{len(cache)}.npz"
                    np.savez(npz, x=x, y=y)
                    cache[key] = (name, npz)
                name, npz = cache[key]
                job = {"artifact": str(path), "runtime": runtime, "threads": threads, "warmup": warmup, "runs": runs, "data": str(npz), "input_shape": meta["input_shape"], "profile": profile}
                _fill(record, run_isolated(job, timeout), runtime, path, name, warmup)
            results.append(record)
            step(advance=1)


def _run_phone(kind, ident, items, results: ResultsFile, threads, warmup, runs, transport, progress) -> None:
    from edgelight.bench.transport import make_transport

    allowed = phone_runtimes(kind)
    bad = [str(p) for p, rt, _ in items if rt not in allowed]
    if bad:
        raise UsageError(f"{kind} runs {', '.join(allowed)} artifacts; not: {', '.join(bad)}")
    transport = transport or make_transport(kind, ident)
    transport.connect()
    names = [p.name for p, _, _ in items]
    if len(set(names)) != len(names):
        raise UsageError("artifact file names must be unique: they land in one folder on the phone")
    plan = {
        "schema_version": SCHEMA_VERSION,
        "runs": runs,
        "warmup": warmup,
        "threads": int(threads or 0),
        "results": "bench_results.json",
        "artifacts": [{"file": p.name, "model": m["model"], "runtime": rt, "precision": m["precision"], "input_shape": m["input_shape"], "params": m.get("params"), "macs": m.get("macs")} for p, rt, m in items],
    }
    with _progress(progress, len(items), f"{kind} bench") as step:

        def on_record(r):
            results.append(r)
            step(f"{r['model']} [{r['runtime']} {r['precision']}]", advance=1)

        transport.run_plan(plan, [p for p, _, _ in items], on_record)


def run_bench(artifacts, device: str = "host", threads: int | None = None, warmup: int = 5, runs: int = 20, dataset: str = "digits", json_out=None, report_dir=None, progress: bool = True, timeout: float = 600.0, profile: bool = True, transport=None, command: str | None = None) -> list[dict]:
    """Measure each artifact and return the records (also written to ``json_out`` as they finish).

    ``threads`` None/0 = the runtime's default. A DeviceError (no phone, phone dropped) propagates
    after the finished records are saved and the report (if asked for) is built from them.
    """
    kind, ident = parse_device(device)
    check_counts(threads, warmup, runs)
    if dataset != "digits" and not Path(dataset).is_dir():
        raise UsageError(f"--dataset must be 'digits' or an existing folder, got '{dataset}'")
    items = _plan_items(artifacts)
    check_outputs(json_out, report_dir)  # last of the checks: it creates the folders it probes
    if command is None and Path(sys.argv[0]).name == "edgelight":
        command = shlex.join(["edgelight", *sys.argv[1:]])
    results = ResultsFile(json_out, extra={"command": command} if command else None)
    try:
        if kind == "host":
            _run_host(items, results, threads, warmup, runs, dataset, timeout, profile, progress)
        else:
            _run_phone(kind, ident, items, results, threads, warmup, runs, transport, progress)
    finally:
        if report_dir and results.records:
            from edgelight.bench.report import write_report

            write_report(results.records, report_dir)
    return results.records
