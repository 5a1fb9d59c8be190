"""One artifact's measurement, in a fresh child process: ``python -m edgelight.bench.child JOB RESULT``.

Why a child: a corrupt artifact, a wrong input shape or a runtime abort (SIGSEGV, SIGABRT) must end
one record, not the whole run; and a fresh process gives a clean RSS baseline for peak memory.
The parent side is ``run_isolated``; the child side is ``measure``.

Peak memory = peak RSS of the child after load and inference, minus the RSS just before loading
(after the runtime library and the data set are imported, so neither is counted).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak is the model's, not the imports'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def _rss_bytes() -> int:
    rss = _status_kb("VmRSS")
    if rss is not None:
        return rss * 1024
    return _peak_rss_bytes()  # no /proc (macOS): the peak so far is the best baseline available


def _timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter_ns()
    out = fn(*args)
    return (time.perf_counter_ns() - t0) / 1e6, out


def measure(job: dict) -> dict:
    """Load, time, check accuracy (when the data has labels), then profile. Errors carry the stage that failed."""
    import importlib

    from edgelight.artifacts import runner_hints
    from edgelight.evaluation import EvalSet, evaluate
    from edgelight.targets import get_runtime

    runtime, path = job["runtime"], Path(job["artifact"])
    data = np.load(job["data"])
    x, y = data["x"], (data["y"] if "y" in data.files else None)  # no labels: latency and memory only
    n = int(job["input_shape"][0])
    first = np.ascontiguousarray(x[:n], dtype=np.float32)
    record = get_runtime(runtime)
    hints = job.get("hints") or runner_hints(path)  # a job may override them (bench/reuse.py: cache off vs on)
    for mod in record.preload:  # imported before the baseline so that library code pages are not charged to the model
        importlib.import_module(mod)
    if record.prepare is not None:
        record.prepare(hints)
    runner = record.make_runner()
    exact = _reset_peak()
    baseline = _rss_bytes()
    notes = [] if exact else ["peak RSS could not be reset after imports; it may include import-time memory"]
    stage = "load"
    try:
        load_ms, _ = _timed(runner.load, path, job.get("threads") or None, hints)
        stage = "first inference"
        first_ms, out = _timed(runner.run, first)
        outs = [np.asarray(out)]
        stage = "warm-up"
        for _ in range(job["warmup"]):
            runner.run(first)
        stage = "timed runs"
        samples = []
        for _ in range(job["runs"]):
            ms, out = _timed(runner.run, first)
            samples.append(ms)
        outs.append(np.asarray(out))
        stage = "accuracy" if y is not None else "outputs"
        evaluation = evaluate(runner, EvalSet("bench", x, y, []), n)
        outs.append(evaluation.logits)
        correct = evaluation.correct
        if job.get("logits"):  # edgelight verify compares them across machines
            np.save(job["logits"], evaluation.logits)
        peak = max(0, _peak_rss_bytes() - baseline)
    except Exception as e:
        raise RuntimeError(f"{stage} failed: {type(e).__name__}: {e}") from e
    finally:
        with contextlib.suppress(Exception):  # a runner half-loaded must not mask the real error
            runner.close()
    nan = any(not np.all(np.isfinite(o)) for o in outs)
    if nan:
        notes.append("NaN or Inf in the outputs")
    result = {"load_ms": load_ms, "first_ms": first_ms, "samples_ms": samples, "peak_rss_bytes": peak, "correct": correct, "samples": int(len(x)), "nan_outputs": nan, "op_profile": None, "notes": notes}
    if job.get("profile"):
        try:
            why = record.no_profile if record.profiler is None else None
            result["op_profile"] = None if why else record.profiler(path, first, job["runs"])
            if why:
                notes.append(f"no op profile: {why}")
        except Exception as e:  # noqa: BLE001 (a failed profile must not lose the measurement)
            notes.append(f"op profile failed: {type(e).__name__}: {e}")
    return result


def main(argv: list[str]) -> int:
    from edgelight.utils.files import write_json

    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        write_json(result_path, {"ok": True, **measure(job)})
    except Exception as e:  # noqa: BLE001 (every failure becomes this record's error)
        traceback.print_exc()
        write_json(result_path, {"ok": False, "error": str(e) or type(e).__name__})
    return 0


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def _python_child(job_path: Path, result_path: Path) -> tuple[list[str], dict]:
    return [sys.executable, "-m", "edgelight.bench.child", str(job_path), str(result_path)], {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_isolated(job: dict, timeout: float = 600.0, launch=_python_child) -> dict:
    """Run ``measure(job)`` in a fresh interpreter. Always returns a dict with ok=True or ok=False+error.

    ``launch(job_path, result_path) -> (argv, environment)`` starts the child (edgelight.arm64.lane runs it in
    the aarch64 interpreter under qemu-user)."""
    with tempfile.TemporaryDirectory(prefix="edgelight-bench-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        argv, env = launch(job_path, result_path)
        return collect(argv, env, result_path, timeout)


def collect(argv: list[str], env: dict, result_path: Path, timeout: float) -> dict:
    """Run a child that writes its result to ``result_path``; a timeout or a crash becomes ok=False + why."""
    # its own process group: on a timeout everything it started goes (proot's emulated child, not only proot)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s (child killed)"}
    if result_path.is_file():
        try:
            return json.loads(result_path.read_text())
        except json.JSONDecodeError:
            pass
    tail = " | ".join(line for line in stderr.strip().splitlines()[-3:])
    how = f"killed by {_signal_name(proc.returncode)}" if proc.returncode < 0 else f"exited with code {proc.returncode}"
    return {"ok": False, "error": f"runtime crashed ({how}) before writing a result" + (f": {tail}" if tail else "")}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
