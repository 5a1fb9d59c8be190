"""One bench job on the ARM64 lane: the job and result dicts of edgelight.bench.child, run on the aarch64 builds.

- LiteRT: edgelight.bench.child itself, in the aarch64 python3 under proot + qemu-user, with ai-edge-litert's
  aarch64 wheel (the same code path as the host's child).
- ExecuTorch: ``edgelight-bench``, the native runner cross-compiled against the aarch64 executorch wheel. The
  wheel's Python runtime cannot be used there: it links libtorch, and PyPI's aarch64 torch 2.13.0 is a CUDA
  build whose libtorch needs CUDA's libraries (docs/arm64.md). The native runner is also what a phone runs.
"""

import platform
import tempfile
from pathlib import Path

import numpy as np

from edgelight.arm64.env import SUITE, Arm64Env, qemu_version
from edgelight.bench.child import collect, run_isolated
from edgelight.evaluation import fixed_batches

NOT_IN_LANE = {
    "eager": "the PyTorch reference runs on the host (edgelight verify compares the ARM outputs with it)",
    "coreml": "Core ML has no ARM Linux build",
    "onnx": "the ARM64 lane carries ExecuTorch and LiteRT, the runtimes the demo apps link",
}
EMULATED_NOTE = "emulated: latency is qemu-user time on this machine, not phone time; outputs and accuracy are the ARM build's own"


def unavailable(runtime: str) -> str | None:
    return NOT_IN_LANE.get(runtime)


def device(cpu: str) -> dict:
    from edgelight.bench.records import cpu_model

    return {
        "kind": "arm64-qemu",
        "name": f"qemu-aarch64 {cpu}",
        "serial": None,
        "cpu": f"{cpu} (emulated by qemu-aarch64 {qemu_version()} on {cpu_model()})",
        "soc": None,
        "os": f"Debian {SUITE} arm64 userland on {platform.system()} {platform.release()}",
        "cores_pinned": None,
        "compute_units": None,
        "emulated": True,
    }


def run_job(env: Arm64Env, job: dict, cpu: str, timeout: float = 600.0) -> dict:
    """``measure(job)``'s result, measured on the aarch64 build of the job's runtime."""
    # absolute paths: the emulated processes start in the userland's /, not in this process's folder
    job = {**job, **{k: str(Path(job[k]).resolve()) for k in ("artifact", "data", "logits") if job.get(k)}}
    if job["runtime"] == "executorch":
        result = _run_native(env, job, cpu, timeout)
    else:
        binds = [Path(job[k]).parent for k in ("artifact", "data", "logits") if job.get(k)]

        def launch(job_path: Path, result_path: Path):
            return env.python(["-m", "edgelight.bench.child", str(job_path), str(result_path)], cpu, binds=[job_path.parent, *binds])

        result = run_isolated(job, timeout, launch)
    if result.get("ok"):
        result["notes"] = [*(result.get("notes") or []), EMULATED_NOTE]
    return result


def _run_native(env: Arm64Env, job: dict, cpu: str, timeout: float) -> dict:
    data = np.load(job["data"])
    x, y = data["x"], (data["y"] if "y" in data.files else None)
    n = int(job["input_shape"][0])
    batches = list(fixed_batches(x, n))
    with tempfile.TemporaryDirectory(prefix="edgelight-arm64-") as tmp:
        inputs, logits, result_path = Path(tmp) / "inputs.f32", Path(tmp) / "logits.f32", Path(tmp) / "result.json"
        np.concatenate([b for _, b, _ in batches]).astype(np.float32).tofile(inputs)
        args = ["--model", job["artifact"], "--inputs", str(inputs), "--shape", ",".join(str(int(d)) for d in job["input_shape"]), "--count", str(len(batches)),
                "--warmup", str(job["warmup"]), "--runs", str(job["runs"]), "--threads", str(int(job.get("threads") or 0)), "--logits", str(logits), "--result", str(result_path)]
        argv, environ = env.binary("edgelight-bench", args, cpu)
        result = collect(argv, environ, result_path, timeout)
        if not result.get("ok"):
            return result
        per_batch = np.fromfile(logits, np.float32).reshape(len(batches), n, -1)
        out = np.concatenate([b[:real] for b, (_, _, real) in zip(per_batch, batches, strict=True)])
    if job.get("logits"):
        np.save(job["logits"], out)
    result["correct"] = None if y is None else int((out.argmax(1) == y).sum())
    result["samples"] = int(len(x))
    result["op_profile"] = None
    if job.get("profile"):
        result["notes"] = [*(result.get("notes") or []), "no op profile: edgelight-bench does not write ETDump yet"]
    return result
