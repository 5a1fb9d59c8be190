"""``edgelight bench --runner native``: the harness's jobs as one bench plan for ``edgelight-bench``.

edgelight-bench (edgelight/ops/kernels/runner/) is the C++ runner a phone runs with ``adb shell``: it reads a
bench plan (bench_plan.schema.json) next to the artifacts and writes bench records. Here the harness writes
that plan, with each artifact's evaluation inputs as raw float32 and their labels as raw int32, runs the
runner on this machine (``host``), its aarch64 build under qemu-user (``arm64-qemu``), or its NDK build on
an Android phone over adb (``android``: pushed, run with ``adb shell``, removed), then adds to each record
what only this side knows (the artifact's path and sha256, its weight bytes, the sidecar check, notes).
"""

import contextlib
import json
import os
import signal
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgelight.bench.records import SCHEMA_VERSION, ResultsFile, validate_plan, validate_results
from edgelight.bench.transport import DeviceError
from edgelight.errors import UsageError
from edgelight.evaluation import fixed_batches
from edgelight.utils.files import write_json

RUNTIMES = ("executorch",)


def unavailable(runtime: str) -> str | None:
    return None if runtime in RUNTIMES else "edgelight-bench runs ExecuTorch programs (--runner python measures the others)"


def write_plan(folder: Path, planned, threads, warmup: int, runs: int, device: dict, profile: bool = False) -> tuple[dict, list]:
    """The plan for the runnable entries of ``planned`` (record, job, data name), their files in ``folder``;
    ``profile``: each artifact also gets an ETDump file, traced after its measurement."""
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
        if profile:
            entry["etdump"] = f"artifact{i}.etdump"
        artifacts.append(entry)
        order.append(i)
    plan = {"schema_version": SCHEMA_VERSION, "runs": runs, "warmup": warmup, "threads": int(threads or 0), "results": "bench_results.json", "artifacts": artifacts, "device": device}
    validate_plan(plan)
    write_json(folder / "plan.json", plan)
    return plan, order


def _merge(record: dict, measured: dict, extra_notes: list[str], device_keys: tuple[str, ...]) -> dict:
    """The harness's record (artifact, sidecar, notes) with the runner's figures and the device fields it read."""
    out = dict(record)
    for key in ("status", "error", "latency_ms", "memory", "accuracy", "nan_outputs", "op_profile", "timestamp"):
        out[key] = measured.get(key, out.get(key))
    out["device"] = {**record["device"], **{k: v for k, v in measured["device"].items() if k in device_keys and v is not None}}
    out["versions"] = {**record["versions"], **measured.get("versions", {})}
    notes = record.get("notes", []) + measured.get("notes", []) + (extra_notes if measured.get("status") == "ok" else [])
    if notes:
        out["notes"] = notes
    return out


# execute(folder, plan, on_record) -> why it stopped early, or None: runs plan.json in ``folder`` (where its
# files are) and hands on each record the runner finished, in plan order. A DeviceError it raises (a phone
# that dropped) propagates after the records finished so far are saved.
Execute = Callable[[Path, dict, Callable[[dict], None]], str | None]


def run_native(items_planned, results: ResultsFile, execute: Execute, threads, warmup: int, runs: int, device: dict, extra_notes: list[str] = (),
               device_keys: tuple[str, ...] = ("cpu", "os", "cores_pinned"), profile: bool = False) -> None:
    """Run the plan of ``items_planned`` with ``execute``; records land in ``results`` in the order given,
    the not-runnable ones in their place. ``device_keys``: the device fields the runner's own reading wins.
    ``profile``: op profiles from the ETDumps the runner writes next to the plan (``execute`` runs it here)."""
    with tempfile.TemporaryDirectory(prefix="edgelight-native-") as tmp:
        folder = Path(tmp)
        plan, order = write_plan(folder, items_planned, threads, warmup, runs, device, profile)
        got: list[dict] = []
        why, dropped = None, None
        if order:
            try:
                why = execute(folder, plan, got.append)
            except DeviceError as e:
                why, dropped = f"not measured: {e}", e
        measured = {order[j]: _with_profile(r, folder, plan["artifacts"][j]) for j, r in enumerate(got)}
        for i, (record, job, _) in enumerate(items_planned):
            if job is None:
                results.append(record)
            elif i in measured:
                results.append(_merge(record, measured[i], list(extra_notes), device_keys))
            else:
                results.append({**record, "error": why or "edgelight-bench stopped before this artifact"})
        if dropped:
            raise dropped


def _with_profile(measured: dict, folder: Path, entry: dict) -> dict:
    """The runner's record with ``op_profile`` read from its ETDump (edgelight.targets.executorch.profile)."""
    etdump = folder / entry["etdump"] if "etdump" in entry else None
    if etdump is None or measured.get("status") != "ok" or not etdump.is_file():
        return measured
    from edgelight.targets.executorch.profile import etdump_rows

    try:
        return {**measured, "op_profile": etdump_rows(etdump)}
    except Exception as e:  # noqa: BLE001 (a profile that cannot be read must not lose the measurement)
        return {**measured, "notes": measured.get("notes", []) + [f"op profile failed: {type(e).__name__}: {e}"]}


def local_execute(launch, timeout: float) -> Execute:
    """Run edgelight-bench here with ``launch(plan_path) -> (argv, environment)``: the host build, or the
    aarch64 build under qemu. ``timeout`` is per artifact; on expiry the whole process group is killed."""

    def execute(folder: Path, plan: dict, on_record) -> str | None:
        argv, environ = launch(folder / "plan.json")
        limit = timeout * len(plan["artifacts"])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=limit)
            why = None if proc.returncode in (0, 1) else f"edgelight-bench exited with code {proc.returncode}: {' '.join(stderr.strip().splitlines()[-1:])}"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the runner and, under qemu, everything it started
            proc.communicate()
            why = f"edgelight-bench timed out after {limit:.0f} s"
        done = folder / plan["results"]
        if done.is_file():
            for r in validate_results(json.loads(done.read_text())):
                on_record(r)
        return why

    return execute


ANDROID_RUNNER_ENV = "EDGELIGHT_ANDROID_RUNNER"
_EM_AARCH64, _PT_INTERP = 183, 3


def android_runner() -> list[Path]:
    """edgelight-bench built with the NDK, then the shared libraries next to it: what goes to the phone.
    Checked here (an arm64 ELF, not a glibc build) so a wrong file fails before anything is pushed."""
    folder = os.environ.get(ANDROID_RUNNER_ENV)
    how = "build it with the Android NDK (docs/native-runner.md#android) and set EDGELIGHT_ANDROID_RUNNER to the folder that holds it"
    if not folder:
        raise UsageError(f"--device android --runner native pushes edgelight-bench for Android: {how}")
    binary = Path(folder) / "edgelight-bench"
    if not binary.is_file():
        raise UsageError(f"no edgelight-bench in {folder} ({ANDROID_RUNNER_ENV}): {how}")
    interp = _elf_interpreter(binary)
    if "ld-linux" in interp:
        raise UsageError(f"{binary} is a glibc build (its loader is {interp}); Android runs bionic builds: {how}")
    return [binary, *sorted(p for p in Path(folder).glob("*.so") if p.is_file())]


def _elf_interpreter(path: Path) -> str:
    """The program interpreter of an arm64 ELF executable ('' when static); UsageError for anything else."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)  # the ELF header, program headers and interpreter path sit at the start
    if head[:5] != b"\x7fELF\x02" or struct.unpack_from("<H", head, 18)[0] != _EM_AARCH64:
        raise UsageError(f"{path} is not an arm64 (aarch64) ELF executable")
    phoff, = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    for k in range(phnum):
        at = phoff + k * phentsize
        if at + 40 > len(head):
            break
        p_type, = struct.unpack_from("<I", head, at)
        if p_type == _PT_INTERP:
            offset, = struct.unpack_from("<Q", head, at + 8)
            size, = struct.unpack_from("<Q", head, at + 32)
            return head[offset:offset + size].rstrip(b"\0").decode(errors="replace")
    return ""


__all__ = ["android_runner", "local_execute", "run_native", "unavailable", "write_plan"]
