"""The export pipeline: checkpoint -> (quantization) -> target lowering -> verified artifact + sidecar.

One direction, one place for what every target shares: resolving the model, the
calibration data, naming, atomic publication, verification by the target's own
runner and the sidecar JSON. Targets only lower (edgelight/targets/<name>/).
"""

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgelight import __version__
from edgelight.artifacts import SIDECAR_VERSION
from edgelight.checkpoint import Checkpoint, resolve
from edgelight.data import load_digits, normalize
from edgelight.errors import StepError, UsageError, converter_errors
from edgelight.targets import get_target
from edgelight.targets.base import LoweringRequest, Runtime, TargetError
from edgelight.utils.files import probe_folder, remove_empty, write_json

CALIBRATION_SAMPLES = 256  # train-split images; enough to settle the int8 ranges of these models
THRESHOLDS = {  # (min top-1 agreement with PyTorch fp32, max |diff| relative to the logit range)
    "fp32": (0.995, 1e-3),
    "fp16": (0.99, 2e-2),
}
QUANTIZED_MAX_ACCURACY_DROP = 0.01  # w8a8 / w8: accuracy within 1 point of fp32 on trained checkpoints


class VerificationError(StepError):
    """An artifact whose outputs are off from PyTorch beyond the thresholds."""


@dataclass
class ExportResult:
    artifact: Path
    sidecar: Path
    model: str
    target: str
    precision: str
    bytes: int
    input_shape: list[int]
    op_inventory: dict
    delegated_fraction: float | None
    verification: dict
    export_seconds: float
    notes: list[str] = field(default_factory=list)
    lower_seconds: float | None = None  # the target's lowering alone (no verification, no I/O)
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["artifact"], d["sidecar"] = str(self.artifact), str(self.sidecar)
        return d


def _inputs(ckpt: Checkpoint, shape: tuple[int, ...], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits images (split 'train' or 'test') preprocessed the way the checkpoint expects."""
    ds = load_digits(shape[1], shape[2])
    x, y = (ds.train_x, ds.train_y) if split == "train" else (ds.test_x, ds.test_y)
    return normalize(x, ckpt.preprocessing.mean, ckpt.preprocessing.std), y


def calibration_batches(calib: str, ckpt: Checkpoint, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """``digits`` or a folder of ``.npy`` arrays (already preprocessed, [N,C,H,W] or [C,H,W]) or images."""
    if calib == "digits":
        x = _inputs(ckpt, shape, "train")[0][:CALIBRATION_SAMPLES]
    else:
        x = _read_calibration_dir(Path(calib), ckpt, shape)
    batch = shape[0]
    x = x[: max(batch, len(x) // batch * batch)]
    if len(x) < batch:
        x = x.repeat(batch // len(x) + 1, 1, 1, 1)[:batch]
    return list(x.split(batch))


def _read_calibration_dir(folder: Path, ckpt: Checkpoint, shape) -> torch.Tensor:
    if not folder.is_dir():
        raise UsageError(f"--calib must be 'digits' or a folder of .npy arrays or images; '{folder}' is neither")
    arrays = sorted(folder.glob("*.npy"))
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if not arrays and not images:
        raise UsageError(f"calibration folder '{folder}' holds no .npy arrays or .png/.jpg images")
    chunks = []
    for path in arrays:
        try:
            a = np.load(path, allow_pickle=False)
        except ValueError:  # numpy's message for an object array suggests unpickling it, which we never do
            raise UsageError(f"'{path}' is not a plain numeric array (it holds Python objects); save it with np.save(path, float32_array)") from None
        if a.dtype.kind not in "biuf":
            raise UsageError(f"'{path}' holds {a.dtype} values; calibration arrays must be numeric")
        if not np.isfinite(a).all():
            raise UsageError(f"'{path}' holds NaN or infinite values; calibration arrays must be finite")
        a = torch.from_numpy(a.astype(np.float32))
        a = a.unsqueeze(0) if a.dim() == 3 else a
        if tuple(a.shape[1:]) != tuple(shape[1:]):
            raise UsageError(f"'{path}' has shape {list(a.shape)}; calibration arrays must be [N,{shape[1]},{shape[2]},{shape[3]}]")
        chunks.append(a)
    if images:
        from PIL import Image

        mode = "L" if shape[1] == 1 else "RGB"
        pixels = [np.asarray(Image.open(p).convert(mode).resize((shape[3], shape[2])), dtype=np.float32) / 255.0 for p in images]
        x = torch.from_numpy(np.stack(pixels)).reshape(len(pixels), shape[2], shape[3], -1).permute(0, 3, 1, 2)
        chunks.append(normalize(x, ckpt.preprocessing.mean, ckpt.preprocessing.std))
    return torch.cat(chunks)[:CALIBRATION_SAMPLES]


def default_name(ckpt: Checkpoint, target: Runtime, precision: str, options: dict, shape: tuple[int, ...]) -> str:
    """MODEL_TARGET_PRECISION[_KEY-VALUE...][_bN][_HxW].SUFFIX: a variant never overwrites the default artifact."""
    parts = [ckpt.name, target.name, precision]
    parts += [f"{key}-{value}" for key, value in sorted(options.items()) if value != target.options[key][0]]
    if shape[0] != 1:
        parts.append(f"b{shape[0]}")
    if tuple(shape[2:]) != tuple(ckpt.preprocessing.input_size[1:]):
        parts.append(f"{shape[2]}x{shape[3]}")
    return "_".join(parts) + target.suffix


def _out_path(out: Path | None, name: str, target: Runtime) -> Path:
    """--out is the artifact's path (ending in the target's suffix) or a folder for the default name."""
    if out is None:
        return Path("exports") / name
    out = Path(out)
    if out.suffix == target.suffix:
        return out
    if out.suffix and not out.is_dir():
        raise UsageError(f"--out '{out}' must end in {target.suffix} for target {target.name} (or name a folder)")
    return out / name


def _prepare_destination(path: Path) -> list[Path]:
    """Make the artifact's folder (returns the folders it created, to remove if the export fails) and probe it."""
    missing = probe_folder(path.parent)
    if path.is_dir() and path.suffix != ".mlpackage":
        remove_empty(missing)
        raise UsageError(f"--out '{path}' is a folder")
    return missing


def _publish(tmp: Path, final: Path) -> None:
    """Atomic for files (os.replace); for a directory artifact (.mlpackage) the old one is swapped out."""
    if tmp.is_dir() and final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    else:
        os.replace(tmp, final)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def verify(
    target: Runtime, artifact: Path, ckpt: Checkpoint, model: torch.nn.Module, shape, precision: str, threads: int | None = None, name: str | None = None, hints: dict | None = None
) -> dict:
    """Run the artifact on the digits test split with its own runtime and compare with PyTorch fp32.

    ``name`` is what a failure calls the artifact (the pipeline verifies it under a temporary name).
    """
    reason = target.runnable_here()
    if reason is not None:
        report = {"status": "inspected", "reason": reason}
        if target.inspect is not None:
            report["inspection"] = target.inspect(artifact)
        return report
    x, y = _inputs(ckpt, shape, "test")
    batch = shape[0]
    usable = len(x) // batch * batch
    x, y = x[:usable], y[:usable]
    with torch.no_grad():
        reference = torch.cat([model(chunk) for chunk in x.split(120)]).numpy()  # eval mode: batch-independent
    runner = target.make_runner()
    runner.load(artifact, threads, hints)
    try:
        got = np.concatenate([runner.run(chunk.numpy()) for chunk in x.split(batch)])
    finally:
        runner.close()
    scale = float(np.abs(reference).max()) or 1.0
    diff = float(np.abs(got - reference).max())
    trained = ckpt.source != "random" and ckpt.preprocessing.dataset == "digits"
    report = {
        "status": "passed",
        "samples": int(usable),
        "dataset": "digits-test",
        "max_abs_diff": diff,
        "max_rel_diff": diff / scale,
        "top1_agreement": float((got.argmax(1) == reference.argmax(1)).mean()),
        "accuracy": float((got.argmax(1) == y.numpy()).mean()) if trained else None,
        "reference_accuracy": float((reference.argmax(1) == y.numpy()).mean()) if trained else None,
        "nan_outputs": bool(np.isnan(got).any()),
    }
    problems = ["NaN in the outputs"] if report["nan_outputs"] else []
    if precision in THRESHOLDS:
        min_agree, max_rel = THRESHOLDS[precision]
        if report["top1_agreement"] < min_agree:
            problems.append(f"top-1 agreement {report['top1_agreement']:.4f} < {min_agree}")
        if report["max_rel_diff"] > max_rel:
            problems.append(f"max relative logit difference {report['max_rel_diff']:.2e} > {max_rel:.0e}")
    elif trained and report["accuracy"] < report["reference_accuracy"] - QUANTIZED_MAX_ACCURACY_DROP:
        problems.append(f"{precision} accuracy {report['accuracy']:.4f} is more than 1 point below fp32 {report['reference_accuracy']:.4f}")
    if problems:
        report["status"] = "failed"
        raise VerificationError(f"{name or artifact.name}: verification failed: {'; '.join(problems)}")
    return report


def export_model(
    source: str,
    target: str,
    precision: str | None = None,
    calib: str = "digits",
    batch: int = 1,
    size: int | None = None,
    out: Path | None = None,
    options: dict | None = None,
    verify_artifact: bool = True,
    threads: int | None = None,
) -> ExportResult:
    """Export a checkpoint directory or a registered model name (its built-in checkpoint if any).

    Every check that can fail on user input runs before anything is written; the artifact appears
    only once lowered and verified (atomically), and its sidecar right after it.
    """
    started = time.perf_counter()
    tgt = get_target(target)
    precision, options = tgt.resolve(precision, options)  # every name, option and combination, before any work
    if batch < 1 or (size is not None and size < 8):
        raise UsageError("--batch must be >= 1 and --size >= 8")
    ckpt = resolve(source)
    model = ckpt.model.materialize() if hasattr(ckpt.model, "materialize") else ckpt.model
    model = model.eval()
    c, h, w = ckpt.preprocessing.input_size
    shape = (batch, c, size or h, size or w)
    calibration = calibration_batches(calib, ckpt, shape) if precision == "w8a8" else []
    final = _out_path(out, default_name(ckpt, tgt, precision, options, shape), tgt)
    created = _prepare_destination(final)
    metadata = {"model": ckpt.name, "model_args": ckpt.args, "classes": ckpt.classes, "preprocessing": ckpt.preprocessing.to_dict(), "edgelight_version": __version__, "precision": precision}
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    published = False
    try:
        lowering_started = time.perf_counter()
        with converter_errors(f"{tgt.name} lowering", TargetError):  # one line for any converter's failure
            report = tgt.lower(LoweringRequest(model, torch.zeros(shape), precision, calibration, tmp, metadata, options))
        lower_seconds = time.perf_counter() - lowering_started
        # runtime_options change how a runner packs weights, not what it computes (tests/test_bench.py checks they agree);
        # the verification runs without them, so the user's process never sets up LiteRT's CompiledModel (it logs at exit)
        hints = {"requires": report.requires, "runtime_options": {}}
        verification = verify(tgt, tmp, ckpt, model, shape, precision, threads, final.name, hints) if verify_artifact else {"status": "skipped"}
        size_bytes = _bytes(tmp)
        sidecar = _sidecar(metadata, tgt, ckpt, model, shape, size_bytes, report, verification, options)
        _publish(tmp, final)
        published = True
        write_json(Path(f"{final}.json"), sidecar)
    finally:
        _remove(tmp)
        if not published:
            remove_empty(created)
    return ExportResult(
        final, Path(f"{final}.json"), ckpt.name, tgt.name, precision, size_bytes, list(shape), report.op_inventory,
        report.delegated_fraction, verification, round(time.perf_counter() - started, 2), report.notes,
        round(lower_seconds, 2), options,
    )


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _sidecar(metadata, tgt: Runtime, ckpt: Checkpoint, model, shape, size_bytes, report, verification, options) -> dict:
    from edgelight.stats import count_macs, count_params

    return {
        **metadata,
        "target": tgt.name,
        "input_shape": list(shape),
        "mean": list(ckpt.preprocessing.mean),
        "std": list(ckpt.preprocessing.std),
        "labels": ckpt.classes,
        "weights": ckpt.source if ckpt.source in ("random", "builtin") else "checkpoint",
        "params": count_params(ckpt.model),
        "macs": count_macs(model, torch.zeros(1, *shape[1:])),
        "bytes": size_bytes,
        "op_inventory": report.op_inventory,
        "delegated_fraction": report.delegated_fraction,
        "verification": verification,
        "options": options,
        "requires": report.requires,  # what a runner must load beyond the runtime (edgelight's native kernels)
        "runtime_options": report.runtime_options,  # how a runner sets the runtime up (XNNPACK's weights cache)
        "notes": report.notes,
        "sidecar_version": SIDECAR_VERSION,
    }
