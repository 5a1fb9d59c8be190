"""``edgelight verify --device arm64-qemu``: is an artifact verified on x86 also right on the ARM build?

Each .pte / .tflite runs on the checkpoint's own data (its sidecar's) three ways: PyTorch fp32 (the
reference), the host's runtime (x86) and the aarch64 build under qemu-user. The ARM outputs must pass the
export verification's thresholds against PyTorch (fp32: top-1 agreement and logit difference; w8a8: accuracy
within 1 point of fp32); against x86 the report says how far apart they are and whether they are bit-exact
(XNNPACK's ARM micro-kernels round int8 differently from x86's, so w8a8 need not be).
"""

import tempfile
from pathlib import Path

import numpy as np

from edgelight.errors import StepError, UsageError, first_line
from edgelight.evaluation import Evaluation, evaluate

LANE_RUNTIMES = ("executorch", "tflite")


class ArmVerificationError(StepError):
    """At least one artifact failed on the ARM build (every artifact is still reported)."""


def _reference(meta: dict, checkpoint: str | None, data):
    """PyTorch's evaluation on ``data`` and what it came from (None when the artifact's weights cannot be had).

    Without --checkpoint the built-in checkpoint of the artifact's model is the reference only when the
    sidecar's ``weights_sha256`` says the artifact was exported from those weights (a fine-tuned copy in a
    folder of the same model name has other weights); a sidecar from before that field: exported by name."""
    from edgelight.checkpoint import builtin_checkpoint_dir, resolve, weights_digest

    recorded = meta.get("weights_sha256")
    if checkpoint is None:
        builtin = meta.get("weights") in ("builtin", "checkpoint") and builtin_checkpoint_dir(meta["model"]) is not None
        if not builtin or (recorded is None and meta.get("weights") != "builtin"):
            return None, "no PyTorch reference: exported with random weights or from a checkpoint not named (give --checkpoint)"
        ckpt = resolve(meta["model"])
        if recorded is not None and recorded != weights_digest(ckpt.model):
            return None, f"no PyTorch reference: exported from other weights than the built-in {meta['model']} (give --checkpoint)"
    else:
        ckpt = resolve(checkpoint)
        if ckpt.name != meta["model"]:
            raise UsageError(f"--checkpoint is a {ckpt.name} but the artifact is a {meta['model']}")
        if recorded is not None and recorded != weights_digest(ckpt.model):
            raise UsageError(f"--checkpoint {checkpoint} holds other weights than the artifact was exported from (its sidecar's weights_sha256)")
    label = "built-in checkpoint " + ckpt.name if ckpt.source == "builtin" else checkpoint
    return evaluate(ckpt.model.eval(), data, batch=min(120, len(data.x))), f"PyTorch fp32: {label}"


def _host_run(runtime: str, path: Path, data, n: int) -> Evaluation:
    from edgelight.artifacts import runner_hints
    from edgelight.targets import get_runtime

    runner = get_runtime(runtime).make_runner()
    runner.load(path, None, runner_hints(path))
    try:
        return evaluate(runner, data, batch=n)
    finally:
        runner.close()


def _arm_run(lane, runtime: str, path: Path, data, shape: list[int], timeout: float) -> Evaluation:
    with tempfile.TemporaryDirectory(prefix="edgelight-verify-") as tmp:
        npz, logits = Path(tmp) / "data.npz", Path(tmp) / "logits.npy"
        np.savez(npz, x=data.x, **({"y": data.y} if data.y is not None else {}))
        job = {"artifact": str(path), "runtime": runtime, "threads": None, "warmup": 0, "runs": 2, "data": str(npz), "input_shape": shape, "profile": False, "logits": str(logits)}
        result = lane.run(job, timeout)
        if not result.get("ok"):
            raise StepError(f"the ARM build failed: {result.get('error')}")
        out = np.load(logits)
    correct = None if data.y is None else int((out.argmax(1) == data.y).sum())
    return Evaluation(out, correct, len(out))


def verify_artifact(lane, path: Path, runtime: str, meta: dict, checkpoint: str | None, timeout: float) -> dict:
    from edgelight.bench import inputs
    from edgelight.pipeline import compare_outputs

    report = {"artifact": str(path), "model": meta["model"], "runtime": runtime, "precision": meta["precision"], "device": lane.device["name"], "status": "passed", "problems": []}
    data = inputs.eval_set(meta["data"], meta)
    shape = meta["input_shape"]
    arm = _arm_run(lane, runtime, path, data, shape, timeout)
    x86 = _host_run(runtime, path, data, shape[0])
    report["vs_x86"] = {
        "top1_agreement": float((arm.logits.argmax(1) == x86.logits.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(arm.logits - x86.logits).max()),
        "bit_exact": bool(np.array_equal(arm.logits, x86.logits)),
    }
    report["accuracy"] = {"dataset": data.name, "arm": arm.accuracy, "x86": x86.accuracy}
    reference, source = _reference(meta, checkpoint, data)
    report["reference"] = source
    if reference is not None:
        vs, problems = compare_outputs(arm, reference, meta["precision"], data.y is not None, data.name)
        report["vs_reference"] = {k: vs[k] for k in ("top1_agreement", "max_abs_diff", "max_rel_diff")}
        report["accuracy"]["reference"] = vs["reference_accuracy"]
        report["problems"] += problems
    elif np.isnan(arm.logits).any():
        report["problems"].append("NaN in the outputs")
    if report["problems"]:
        report["status"] = "failed"
    return report


def verify_on_device(artifacts, device: str = "arm64-qemu", checkpoint: str | None = None, timeout: float = 600.0, on_report=None) -> list[dict]:
    """One report per artifact (a failed one says why and the others still run); ``on_report`` sees each as it lands."""
    from edgelight.bench.harness import _plan_items, arm64_lane, parse_device

    kind, cpu = parse_device(device)
    if kind != "arm64-qemu":
        raise UsageError(f"verify runs on arm64-qemu[:CPU] (the aarch64 builds under qemu-user); '{device}' is not one")
    items = _plan_items(artifacts)
    for path, runtime, meta in items:
        if runtime not in LANE_RUNTIMES:
            raise UsageError(f"'{path}': the ARM64 lane verifies {' and '.join(LANE_RUNTIMES)} artifacts, not {runtime}")
        if meta["sidecar"] != "ok":
            raise UsageError(f"'{path}': verification needs the artifact's sidecar (its model, preprocessing and data), which is {meta['sidecar']}")
    lane = arm64_lane(cpu)
    reports = []
    for path, runtime, meta in items:
        try:
            report = verify_artifact(lane, path, runtime, meta, checkpoint, timeout)
        except UsageError:
            raise
        except Exception as e:  # noqa: BLE001 (one artifact's failure is its report; the others still run)
            report = {"artifact": str(path), "model": meta["model"], "runtime": runtime, "precision": meta["precision"], "device": lane.device["name"], "status": "failed",
                      "problems": [str(e) if isinstance(e, StepError) else first_line(e)]}
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports
