"""``edgelight bench --runner native``: the harness's jobs as one bench plan for ``edgelight-bench``.

edgelight-bench (edgelight/ops/kernels/runner/) is the C++ runner a phone runs with ``adb shell``: it reads a
bench plan (bench_plan.schema.json) next to the artifacts and writes bench records. Here the harness writes
that plan, with each artifact's evaluation inputs as raw float32 and their labels as raw int32, runs the
runner on this machine (``host``) or its aarch64 build under qemu-user (``arm64-qemu``), then adds to each
record what only this side knows (the artifact's path and sha256, its weight bytes, the sidecar check, notes).
"""

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgelight.bench.records import SCHEMA_VERSION, ResultsFile, validate_plan, validate_results
from edgelight.evaluation import fixed_batches
from edgelight.utils.files import write_json

RUNTIMES = ("executorch",)


def unavailable(runtime: str) -> str | None:
    return None if runtime in RUNTIMES else "edgelight-bench runs ExecuTorch programs (--runner python measures the others)"


def write_plan(folder: Path, planned, threads, warmup: int, runs: int, device: dict) -> tuple[dict, list]:
    """The plan for the runnable entries of ``planned`` (record, job, data name), their files in ``folder``."""
    artifacts, order, written = [], [], {}
    for i, (record, job, name) in enumerate(planned):
        if job is None:
            continue
        data = np.load(job["data"])
        n = int(job["input_shape"][0])
        if job["data"] not in written:  # one inputs file per data set, shared by the artifacts that use it
            k = len(written)
            batches = [b for _, b, _ in fixed_batches(data["x"], n)]
            np.concatenate(batches).astype(np.float32).tofile(folder / f"inputs{k}.f32")
            if "y" in data.files:
                data["y"].astype(np.int32).tofile(folder / f"labels{k}.i32")
            written[job["data"]] = (k, len(batches))
        k, count = written[job["data"]]
        link = folder / f"artifact{i}{Path(job['artifact']).suffix}"
        link.symlink_to(Path(job["artifact"]).resolve())
        entry = {"file": link.name, "model": record["model"], "runtime": record["runtime"], "precision": record["precision"], "input_shape": job["input_shape"],
                 "params": record["params"], "macs": record["macs"], "inputs": {"file": f"inputs{k}.f32", "count": count, "samples": int(len(data["x"]))}}
        if "y" in data.files and name:
            entry.update(labels=f"labels{k}.i32", dataset=name)
        artifacts.append(entry)
        order.append(i)
    plan = {"schema_version": SCHEMA_VERSION, "runs": runs, "warmup": warmup, "threads": int(threads or 0), "results": "bench_results.json", "artifacts": artifacts, "device": device}
    validate_plan(plan)
    write_json(folder / "plan.json", plan)
    return plan, order


def _merge(record: dict, measured: dict, extra_notes: list[str]) -> dict:
    """The harness's record (artifact, sidecar, notes) with the runner's figures and device readings."""
    out = dict(record)
    for key in ("status", "error", "latency_ms", "memory", "accuracy", "nan_outputs", "op_profile", "timestamp"):
        out[key] = measured.get(key, out.get(key))
    out["device"] = {**record["device"], **{k: v for k, v in measured["device"].items() if k in ("cpu", "os", "cores_pinned") and v is not None}}
    out["versions"] = {**record["versions"], **measured.get("versions", {})}
    notes = record.get("notes", []) + measured.get("notes", []) + (extra_notes if measured.get("status") == "ok" else [])
    if notes:
        out["notes"] = notes
    return out


def run_native(items_planned, results: ResultsFile, launch, threads, warmup: int, runs: int, device: dict, timeout: float, extra_notes: list[str] = ()) -> None:
    """Run the plan with ``launch(plan_path) -> (argv, environment)``; records land in ``results`` in the
    order given, the not-runnable ones in their place. A runner that dies keeps the records it finished."""
    with tempfile.TemporaryDirectory(prefix="edgelight-native-") as tmp:
        folder = Path(tmp)
        plan, order = write_plan(folder, items_planned, threads, warmup, runs, device)
        measured: dict[int, dict] = {}
        why = None
        if order:
            argv, environ = launch(folder / "plan.json")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ, start_new_session=True)
            try:
                _, stderr = proc.communicate(timeout=timeout * len(order))
                why = None if proc.returncode in (0, 1) else f"edgelight-bench exited with code {proc.returncode}: {' '.join(stderr.strip().splitlines()[-1:])}"
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the runner and, under qemu, everything it started
                proc.communicate()
                why = f"edgelight-bench timed out after {timeout * len(order):.0f} s"
            done = folder / "bench_results.json"
            if done.is_file():
                got = validate_results(json.loads(done.read_text()))
                measured = {order[j]: r for j, r in enumerate(got)}
        for i, (record, job, _) in enumerate(items_planned):
            if job is None:
                results.append(record)
            elif i in measured:
                results.append(_merge(record, measured[i], list(extra_notes)))
            else:
                results.append({**record, "error": why or "edgelight-bench stopped before this artifact"})


__all__ = ["run_native", "unavailable", "write_plan"]
