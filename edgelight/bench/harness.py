"""``run_bench``: the library call behind ``edgelight bench``.

Host: each artifact is measured in its own child process (edgelight.bench.child), one record per
(model, runtime, precision, device, threads). arm64-qemu: the same jobs on the aarch64 builds of the
runtimes under qemu-user (edgelight.arm64), records marked emulated. Phones: a bench plan goes over a DeviceTransport and
the demo app answers with records in the same schema. Records are appended to ``json_out`` as they
finish, so a failure later in the run never loses them.
"""

import contextlib
import shlex
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgelight.bench import inputs
from edgelight.bench.child import run_isolated
from edgelight.bench.records import SCHEMA_VERSION, ResultsFile, host_device, new_record
from edgelight.bench.stats import summarize
from edgelight.errors import UsageError, first_line
from edgelight.targets import get_runtime, runtimes, suffixes

DEVICE_KINDS = ("host", "arm64-qemu", "android", "ios")
RUNNERS = ("python", "native")  # native: edgelight-bench, the C++ runner a phone runs (edgelight/bench/native.py)
DEFAULT_EMULATED_CPU = "cortex-a76"  # a phone's big core; `qemu-aarch64-static -cpu help` lists the others


@dataclass(frozen=True)
class Lane:
    """Where child-process jobs run: this machine, or the aarch64 builds under qemu-user (edgelight.arm64)."""

    device: dict
    unavailable: Callable[[str], str | None]  # runtime -> why it cannot run there, or None
    run: Callable[[dict, float], dict]  # (job, timeout) -> the child's result


def host_lane() -> Lane:
    return Lane(host_device(), _unavailable, run_isolated)


def arm64_lane(cpu: str) -> Lane:
    from edgelight.arm64 import env, lane

    arm = env.require(cpu)
    return Lane(lane.device(cpu), lambda runtime: lane.unavailable(runtime) or _unavailable(runtime), lambda job, timeout: lane.run_job(arm, job, cpu, timeout))


def phone_runtimes(kind: str) -> tuple[str, ...]:
    """The runtimes a demo app links (from each runtime's record)."""
    return tuple(r.name for r in runtimes() if kind in r.apps)


def parse_device(spec: str) -> tuple[str, str | None]:
    """'host' | 'arm64-qemu[:CPU]' | 'android[:SERIAL]' | 'ios[:UDID]' -> (kind, id or None; the CPU for arm64-qemu)."""
    kind, _, ident = (spec or "host").partition(":")
    if kind not in DEVICE_KINDS or (kind == "host" and ident):
        raise UsageError(f"unknown device '{spec}'; use host, arm64-qemu[:CPU], android[:SERIAL] or ios[:UDID]")
    if kind == "arm64-qemu":
        return kind, ident or DEFAULT_EMULATED_CPU
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
    """Resolve every artifact before anything runs: a path that does not exist or whose runtime cannot be told
    is a usage error; an artifact without a usable sidecar is still measured (its record says so)."""
    known = suffixes()
    items = []
    for a in artifacts:
        path = inputs.resolve_artifact(a)
        if path.suffix not in known:
            raise UsageError(f"'{a}': cannot tell the runtime from the suffix '{path.suffix}' (expected {', '.join(known)} or a checkpoint folder)")
        items.append((path, known[path.suffix], inputs.artifact_meta(path)))
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


def _combine(results: list[dict]) -> dict:
    """K rounds of one artifact -> one result: pooled samples, the median of per-round medians, the rounds' p50s."""
    failed = next(((k, r) for k, r in enumerate(results) if not r.get("ok")), None)
    if failed is not None:
        k, r = failed
        return {**r, "error": (f"round {k + 1} of {len(results)}: " if len(results) > 1 else "") + (r.get("error") or "unknown failure")}
    merged = dict(results[-1])
    merged["samples_ms"] = [v for r in results for v in r["samples_ms"]]
    merged["round_p50"] = [float(np.median(r["samples_ms"])) for r in results]
    for key in ("load_ms", "first_ms", "peak_rss_bytes"):
        merged[key] = float(np.median([r[key] for r in results]))
    return merged


def _fill(record: dict, result: dict, runtime: str, path: Path, dataset: str | None, warmup: int) -> dict:
    if not result.get("ok"):
        record["error"] = result.get("error") or "unknown failure"
        return record
    latency = summarize(result["samples_ms"], load_ms=result["load_ms"], first_ms=result["first_ms"], warmup=warmup)
    if len(result.get("round_p50") or []) > 1:  # comparable across artifacts: every one saw the same K rounds of drift
        latency["p50"], latency["rounds"] = float(np.median(result["round_p50"])), result["round_p50"]
    record["latency_ms"] = latency
    record["memory"] = {"peak_rss_bytes": int(result["peak_rss_bytes"]), "planned_arena_bytes": None}
    if result.get("correct") is not None and dataset:
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


def _file_input_shape(runtime: str, path: Path) -> list[int]:
    """The input shape an artifact without a sidecar declares (its runtime's inspector reads the file)."""
    inspect = get_runtime(runtime).inspect
    spec = inspect(path).get("input") if inspect is not None else None
    if not spec or len(spec.get("shape") or []) != 4 or None in spec["shape"]:
        raise ValueError(f"it declares no fixed [N, C, H, W] input ({spec}); export it with a fixed shape, or give it a sidecar")
    return [int(d) for d in spec["shape"]]


def _data_for(meta: dict, dataset: str | None, mean, std, shape: list[int]) -> tuple:
    """(evaluation set, its name or None when unlabeled, notes): what this artifact is fed.

    Data the user named that cannot be used is their mistake (UsageError, before anything runs); the data an
    artifact's sidecar recorded may simply not be on this machine: measured anyway, with a note."""
    if meta["mean"] is None and mean is not None:
        if len(mean) != shape[1] or len(std) != shape[1] or min(std) <= 0:
            raise UsageError(f"--mean and --std need {shape[1]} values for {meta['model']} (std > 0), got {list(mean)} and {list(std)}")
        meta = {**meta, "mean": list(mean), "std": list(std)}
    spec = dataset if dataset is not None else meta.get("data")
    if meta["mean"] is None or spec is None:
        why = ("no sidecar: " if meta["sidecar"] != "ok" else "") + "latency and memory on random inputs"
        need = "--data with --mean and --std" if meta["mean"] is None else "--data"
        return inputs.random_inputs(shape), None, [f"{why}; accuracy needs {need}"]
    try:
        data = inputs.eval_set(spec, {**meta, "input_shape": shape})
    except UsageError as e:
        if dataset is not None:
            raise
        return inputs.random_inputs(shape), None, [f"accuracy not measured: {e}"]
    return data, data.name, []


def _plan_jobs(items, lane: Lane, tmp: Path, threads, warmup, runs, dataset, profile, mean=None, std=None) -> list[tuple]:
    """(record, job or None, data name) per artifact, in the order given: the record holds everything known
    before measuring; no job means there is nothing to run (not runnable, unreadable). Data sets are written
    once per (data, shape, preprocessing) into ``tmp``."""
    device = lane.device
    cache: dict = {}
    planned = []
    for path, runtime, meta in items:
        record = new_record(meta, runtime, device, threads, path)
        record["artifact"]["weight_bytes"] = _weight_bytes(runtime, path)
        record["artifact"]["sidecar"] = {"ok": "matches", "checkpoint": "checkpoint"}.get(meta["sidecar"], meta["sidecar"])
        notes = [meta["sidecar_error"] + "; measured as an artifact without one"] if meta.get("sidecar_error") else []
        mismatch = inputs.sidecar_mismatch(meta, record["artifact"])
        if mismatch:
            record["artifact"]["sidecar"] = "mismatch"
            notes.append(mismatch)
        if meta.get("weights") == "random":
            notes.append("random weights (exported without a trained checkpoint): accuracy is chance level")
        reason = lane.unavailable(runtime)
        shape = meta["input_shape"]
        if reason is None and shape is None:
            try:
                shape = _file_input_shape(runtime, path)
            except Exception as e:  # noqa: BLE001 (a truncated or foreign file: this record fails, the run goes on)
                record["error"] = f"cannot read the artifact: {first_line(e)}"
        if notes:
            record["notes"] = notes
        if reason:
            record.update(status="not_runnable", error=f"not runnable on {'this host' if device['kind'] == 'host' else device['name']}: {reason}")
        if reason or record["error"]:
            planned.append((record, None, None))
            continue
        key = (str(dataset), str(meta.get("data")), tuple(shape), str(meta["mean"]), str(meta["std"]), str(meta["labels"]))
        if key not in cache:
            data, name, data_notes = _data_for(meta, dataset, mean, std, shape)
            npz = tmp / f"data{len(cache)}.npz"
            np.savez(npz, x=data.x, **({"y": data.y} if data.y is not None and name else {}))
            cache[key] = (name, npz, data_notes)
        name, npz, data_notes = cache[key]
        if data_notes:
            record["notes"] = record.get("notes", []) + data_notes
        job = {"artifact": str(path), "runtime": runtime, "threads": threads, "warmup": warmup, "runs": runs, "data": str(npz), "input_shape": shape, "profile": profile}
        planned.append((record, job, name))
    return planned


def _run_host(items, results: ResultsFile, threads, warmup, runs, dataset, timeout, profile, progress, rounds=1, mean=None, std=None, lane: Lane | None = None) -> None:
    lane = lane or host_lane()
    with tempfile.TemporaryDirectory(prefix="edgelight-bench-") as tmp, _progress(progress, len(items) * rounds, "bench") as step:
        planned = [(record, job, name, []) for record, job, name in _plan_jobs(items, lane, Path(tmp), threads, warmup, runs, dataset, profile, mean, std)]
        # A B C A B C ...: artifacts compared in one run see the same machine drift, round by round
        for k in range(rounds):
            for record, job, name, got in planned:
                if job is None:
                    if k == rounds - 1:
                        results.append(record)
                    step(advance=1)
                    continue
                step(f"{record['model']} [{record['runtime']} {record['precision']}]" + (f" round {k + 1}/{rounds}" if rounds > 1 else ""))
                got.append(lane.run({**job, "profile": job["profile"] and k == rounds - 1}, timeout))
                if k == rounds - 1:
                    results.append(_fill(record, _combine(got), record["runtime"], Path(job["artifact"]), name, warmup))
                step(advance=1)


def _run_native(kind, ident, items, results: ResultsFile, threads, warmup, runs, dataset, timeout, progress, mean, std, profile, transport=None) -> None:
    """ExecuTorch programs in edgelight-bench: built here (host), its aarch64 build under qemu, or its NDK
    build pushed to an Android phone. One plan for all the artifacts (edgelight/bench/native.py)."""
    import os

    from edgelight.bench import native

    notes, device_keys = [], ("cpu", "os", "cores_pinned")
    if kind == "android":
        from edgelight.bench.transport import make_transport

        runner = native.android_runner()  # a missing or wrong binary fails before the phone is touched
        transport = transport or make_transport(kind, ident)
        device = transport.connect()
        device_keys = ("cores_pinned",)  # adb's Android version and SoC say more than uname and /proc/cpuinfo

        def execute(folder, plan, on_record):
            return transport.run_native(folder, plan, runner, on_record)
    elif kind == "arm64-qemu":
        from edgelight.arm64 import env
        from edgelight.arm64 import lane as arm_lane

        arm = env.require(ident)
        device = arm_lane.device(ident)
        notes.append(arm_lane.EMULATED_NOTE)
        execute = native.local_execute(lambda plan: arm.binary("edgelight-bench", ["--plan", str(plan)], ident), timeout)
    else:
        from edgelight.ops.kernels import build_bench_runner

        binary, device = build_bench_runner(), host_device()
        execute = native.local_execute(lambda plan: ([str(binary), "--plan", str(plan)], dict(os.environ)), timeout)
    with tempfile.TemporaryDirectory(prefix="edgelight-bench-") as tmp, _progress(progress, 1, "edgelight-bench") as step:
        planned = _plan_jobs(items, Lane(device, native.unavailable, None), Path(tmp), threads, warmup, runs, dataset, False, mean, std)
        native.run_native(planned, results, execute, threads, warmup, runs, device, notes, device_keys, profile)
        step(advance=1)


def _run_phone(kind, ident, items, results: ResultsFile, threads, warmup, runs, transport, progress) -> None:
    from edgelight.bench.transport import make_transport

    allowed = phone_runtimes(kind)
    bad = [str(p) for p, rt, _ in items if rt not in allowed]
    if bad:
        raise UsageError(f"{kind} runs {', '.join(allowed)} artifacts; not: {', '.join(bad)}")
    blind = [str(p) for p, _, m in items if m["sidecar"] != "ok"]
    if blind:  # the app feeds camera-like images: it needs the input shape, preprocessing and labels
        raise UsageError(f"a phone needs each artifact's sidecar (edgelight export writes it); none usable for: {', '.join(blind)}")
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


def run_bench(artifacts, device: str = "host", threads: int | None = None, warmup: int = 5, runs: int = 20, dataset: str | None = None, json_out=None, report_dir=None,
              progress: bool = True, timeout: float = 600.0, profile: bool = True, transport=None, command: str | None = None, rounds: int = 1, mean=None, std=None,
              runner: str = "python") -> list[dict]:
    """Measure each artifact and return the records (also written to ``json_out`` as they finish).

    ``dataset``: the data accuracy is measured on (digits, NAME:DIR, an image folder); None = each artifact's
    own (its sidecar's). ``mean`` / ``std``: the preprocessing of artifacts without a sidecar. ``rounds`` > 1:
    the artifacts run interleaved (A B C A B C ...) in that many rounds of child processes; p50 is the median
    of the per-round medians. ``threads`` None/0 = the runtime's default. ``runner`` "native": ExecuTorch
    programs run in edgelight-bench (the C++ runner, one bench plan) instead of the Python child. A DeviceError (no phone, phone
    dropped) propagates after the finished records are saved and the report (if asked for) is built from them.
    """
    kind, ident = parse_device(device)
    check_counts(threads, warmup, runs)
    if rounds < 1:
        raise UsageError(f"--rounds must be at least 1 (got {rounds})")
    if runner not in RUNNERS:
        raise UsageError(f"unknown runner '{runner}'; choose one of: {', '.join(RUNNERS)}")
    if runner == "native" and kind == "ios":
        raise UsageError("--runner native needs a shell on the device to run a binary in (adb on Android); on iOS the demo app measures")
    if runner == "native" and rounds > 1:
        raise UsageError("--rounds is for the Python runner; edgelight-bench measures each artifact once per plan")
    if (mean is None) != (std is None):
        raise UsageError("give --mean and --std together")
    if kind in ("android", "ios") and runner == "python" and (rounds > 1 or dataset is not None or mean is not None):
        raise UsageError("--rounds, --data, --mean and --std are for host runs; on a phone the demo app times each artifact as its bench plan says")
    if dataset is not None:
        from edgelight.data import check_data

        check_data(dataset)  # a bad data spec fails before anything runs
    items = _plan_items(artifacts)
    lane = arm64_lane(ident) if kind == "arm64-qemu" else host_lane() if kind == "host" else None
    if runner == "native" and kind == "android":
        from edgelight.bench.native import android_runner

        android_runner()  # no NDK build to push: say so before any folder is made or the phone is touched
    check_outputs(json_out, report_dir)  # last of the checks: it creates the folders it probes
    if command is None and Path(sys.argv[0]).name == "edgelight":
        command = shlex.join(["edgelight", *sys.argv[1:]])
    results = ResultsFile(json_out, extra={"command": command} if command else None)
    try:
        if runner == "native":
            _run_native(kind, ident, items, results, threads, warmup, runs, dataset, timeout, progress, mean, std, profile, transport)
        elif kind in ("host", "arm64-qemu"):
            _run_host(items, results, threads, warmup, runs, dataset, timeout, profile, progress, rounds, mean, std, lane)
        else:
            _run_phone(kind, ident, items, results, threads, warmup, runs, transport, progress)
    finally:
        if report_dir and results.records:
            from edgelight.bench.report import write_report

            write_report(results.records, report_dir)
    return results.records
