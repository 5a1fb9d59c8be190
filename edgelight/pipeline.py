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
from edgelight.artifacts import SIDECAR_VERSION, check_sidecar, sidecar_path, write_sidecar
from edgelight.checkpoint import Checkpoint, resolve, weights_digest
from edgelight.data import Dataset, evaluation_data, from_source, normalize, open_data
from edgelight.data.folders import IMAGE_SUFFIXES, folder_classes, read_flat_images
from edgelight.errors import StepError, UsageError, converter_errors
from edgelight.evaluation import EvalSet, Evaluation, evaluate
from edgelight.targets import get_target
from edgelight.targets.base import LoweringRequest, Runtime, TargetError
from edgelight.utils.files import content_digest, probe_folder, remove_empty

CALIBRATION_SAMPLES = 256  # train-split images; enough to settle the int8 ranges of these models
THRESHOLDS = {  # (min top-1 agreement with PyTorch fp32, max |diff| relative to the logit range)
    "fp32": (0.995, 1e-3),
    "fp16": (0.99, 2e-2),
}
QUANTIZED_MAX_ACCURACY_DROP = 0.01  # w8a8 / w8: accuracy within 1 point of fp32 on trained checkpoints
VERIFY_RANDOM_SAMPLES = 64  # a user module exported without data is checked on this many seeded random inputs


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


class _Data:
    """The data an export calibrates and verifies on: the checkpoint's own unless told otherwise, opened once."""

    def __init__(self, ckpt: Checkpoint, shape: tuple[int, ...], precision: str):
        self.ckpt, self.shape, self._own = ckpt, shape, None
        self.how_to_pass = "--calib DATA and --verify-data DATA" if precision == "w8a8" else "--verify-data DATA"
        self.verified_source = None  # the source of the data verification used, for the sidecar (None: inputs given as arrays)

    def own_source(self) -> dict | None:
        return self.ckpt.preprocessing.data_source() if self.ckpt.source != "user" else None

    def own(self) -> Dataset | None:
        """The data the checkpoint was trained on (None for a user module, which records none)."""
        if self._own is None and self.own_source() is not None:
            self._own = from_source(self.own_source(), self.shape[1], self.shape[2], self.how_to_pass)
        return self._own

    def calibration(self, calib) -> list[torch.Tensor]:
        """Preprocessed [N,C,H,W] batches of the artifact's batch size: the train split of the data (or given inputs)."""
        pre = self.ckpt.preprocessing
        if isinstance(calib, (torch.Tensor, np.ndarray)):
            x = torch.as_tensor(np.asarray(calib, dtype=np.float32))
            if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.shape[1:]):
                raise UsageError(f"calibration inputs must be [N,{self.shape[1]},{self.shape[2]},{self.shape[3]}], got {list(x.shape)}")
        elif calib is None and self.own() is not None:
            x = normalize(self.own().train_x, pre.mean, pre.std)
        elif calib is None:
            raise UsageError("w8a8 needs calibration data: pass calibration= (preprocessed inputs, an image folder or a data set name)")
        elif Path(str(calib)).is_dir() and not any(p.is_dir() and not p.name.startswith(".") for p in Path(str(calib)).iterdir()):
            x = _read_calibration_dir(Path(str(calib)), self.ckpt, self.shape)  # a flat folder of .npy arrays or unlabeled images
        else:  # a data set, or a folder of class folders: all of it (it was given to calibrate on, not to train)
            x = normalize(open_data(str(calib), self.shape[1], self.shape[2], whole=True).train_x, pre.mean, pre.std)
        x = x[:CALIBRATION_SAMPLES]
        batch = self.shape[0]
        x = x[: max(batch, len(x) // batch * batch)]
        if len(x) < batch:
            x = x.repeat(batch // len(x) + 1, 1, 1, 1)[:batch]
        return list(x.split(batch))

    def verification(self, eval_data) -> EvalSet:
        """The test split of the data (labels when known) that the artifact's outputs are checked on."""
        pre, classes = self.ckpt.preprocessing, self.ckpt.classes
        if isinstance(eval_data, EvalSet):
            data = eval_data
        elif isinstance(eval_data, tuple) and len(eval_data) == 2:
            data = EvalSet("user", np.asarray(eval_data[0], dtype=np.float32), np.asarray(eval_data[1], dtype=np.int64), classes)
        elif isinstance(eval_data, (torch.Tensor, np.ndarray)):
            data = EvalSet("user", np.asarray(eval_data, dtype=np.float32), None, classes)
        elif eval_data is not None:
            ds = evaluation_data(str(eval_data), self.shape[1], self.shape[2], classes, self.own_source(), self.how_to_pass)
            data, self.verified_source = ds.eval_set(pre.mean, pre.std), ds.source
        elif self.own() is not None:
            data, self.verified_source = self.own().eval_set(pre.mean, pre.std), self.own().source
        else:  # a user module with no data: agreement with PyTorch on seeded random inputs (no accuracy)
            x = torch.randn((VERIFY_RANDOM_SAMPLES, *self.shape[1:]), generator=torch.Generator().manual_seed(0)).numpy()
            data = EvalSet("random-inputs", x, None, classes)
        if data.x.ndim != 4 or tuple(data.x.shape[1:]) != tuple(self.shape[1:]) or not len(data.x):
            raise UsageError(f"verification inputs must be [N,{self.shape[1]},{self.shape[2]},{self.shape[3]}] with N >= 1, got {list(data.x.shape)}")
        if data.y is not None and (len(data.y) != len(data.x) or len(data.classes) != len(classes)):
            raise UsageError(f"verification data {data.name} has {len(data.classes)} classes and {len(data.y)} labels for {len(data.x)} inputs; the model predicts {len(classes)} classes")
        return data


def calibration_batches(calib, ckpt: Checkpoint, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """int8 calibration batches: ``None`` (the checkpoint's own train split), a data spec, a folder, or inputs."""
    return _Data(ckpt, shape, "w8a8").calibration(calib)


def _read_calibration_dir(folder: Path, ckpt: Checkpoint, shape) -> torch.Tensor:
    if not folder.is_dir():
        raise UsageError(f"--calib must be a data set (digits, NAME:DIR, an image folder) or a folder of .npy arrays or images; '{folder}' is none of these")
    arrays = sorted(folder.glob("*.npy"))
    images = read_flat_images(folder, shape[1], shape[2], CALIBRATION_SAMPLES)
    if not arrays and images is None:
        raise UsageError(f"calibration folder '{folder}' holds no .npy arrays, images ({', '.join(IMAGE_SUFFIXES)}) or class folders")
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
    if images is not None:
        chunks.append(normalize(torch.from_numpy(images), ckpt.preprocessing.mean, ckpt.preprocessing.std))
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


def compare_outputs(got: Evaluation, reference: Evaluation, precision: str, trained: bool, dataset: str | None) -> tuple[dict, list[str]]:
    """An artifact's outputs against PyTorch's on the same inputs: the report and what breaks the thresholds."""
    scale = float(np.abs(reference.logits).max()) or 1.0
    diff = float(np.abs(got.logits - reference.logits).max())
    report = {
        "status": "passed",
        "samples": got.samples,
        "dataset": dataset,
        "max_abs_diff": diff,
        "max_rel_diff": diff / scale,
        "top1_agreement": float((got.logits.argmax(1) == reference.logits.argmax(1)).mean()),
        "accuracy": got.accuracy if trained else None,
        "reference_accuracy": reference.accuracy if trained else None,
        "nan_outputs": bool(np.isnan(got.logits).any()),
    }
    problems = ["NaN in the outputs"] if report["nan_outputs"] else []
    if precision in THRESHOLDS:
        min_agree, max_rel = THRESHOLDS[precision]
        if report["top1_agreement"] < min_agree:
            problems.append(f"top-1 agreement {report['top1_agreement']:.4f} < {min_agree}")
        if report["max_rel_diff"] > max_rel:
            problems.append(f"max relative logit difference {report['max_rel_diff']:.2e} > {max_rel:.0e}")
    elif trained and report["accuracy"] < report["reference_accuracy"] - QUANTIZED_MAX_ACCURACY_DROP:
        problems.append(f"{precision} accuracy {report['accuracy']:.4f} is more than 1 point below fp32 {report['reference_accuracy']:.4f} on {dataset}")
    if problems:
        report["status"] = "failed"
    return report, problems


def verify(
    target: Runtime, artifact: Path, ckpt: Checkpoint, model: torch.nn.Module, shape, precision: str, data: EvalSet, threads: int | None = None,
    name: str | None = None, hints: dict | None = None,
) -> dict:
    """Run the artifact on ``data`` with its own runtime and compare with PyTorch fp32 (and, with labels, accuracy).

    ``name`` is what a failure calls the artifact (the pipeline verifies it under a temporary name).
    """
    reason = target.runnable_here()
    if reason is not None:
        report = {"status": "inspected", "reason": reason}
        if target.inspect is not None:
            report["inspection"] = target.inspect(artifact)
        return report
    reference = evaluate(model, data, batch=min(120, len(data.x)))  # eval mode: batch-independent
    runner = target.make_runner()
    runner.load(artifact, threads, hints)
    try:
        got = evaluate(runner, data, batch=shape[0])
    finally:
        runner.close()
    trained = ckpt.source != "random" and data.y is not None  # a random model's accuracy says nothing
    report, problems = compare_outputs(got, reference, precision, trained, data.name)
    if problems:
        raise VerificationError(f"{name or artifact.name}: verification failed: {'; '.join(problems)}")
    return report


def export_model(
    source: str,
    target: str,
    precision: str | None = None,
    calib=None,
    batch: int = 1,
    size: int | None = None,
    out: Path | None = None,
    options: dict | None = None,
    verify_artifact: bool = True,
    threads: int | None = None,
    verify_data=None,
) -> ExportResult:
    """Export a checkpoint directory or a registered model name (its built-in checkpoint if any).

    ``calib`` / ``verify_data``: a data spec (digits, NAME:DIR, an image folder) or, for calib, a folder of .npy
    arrays / unlabeled images; by default the data the checkpoint was trained on.
    """
    tgt = get_target(target)
    precision, options = tgt.resolve(precision, options)  # every name, option and combination, before any work
    if batch < 1 or (size is not None and size < 8):
        raise UsageError("--batch must be >= 1 and --size >= 8")
    ckpt = resolve(source)
    model = ckpt.model.materialize() if hasattr(ckpt.model, "materialize") else ckpt.model
    c, h, w = ckpt.preprocessing.input_size
    return _export(ckpt, model.eval(), tgt, precision, options, (batch, c, size or h, size or w), out, calib, verify_data, verify_artifact, threads)


def export(
    model: torch.nn.Module,
    example_input: torch.Tensor,
    target: str,
    precision: str | None = None,
    calibration=None,
    eval_data=None,
    labels: list[str] | None = None,
    out: Path | None = None,
    mean=None,
    std=None,
    name: str | None = None,
    options: dict | None = None,
    verify: bool = True,
    threads: int | None = None,
) -> ExportResult:
    """Export any eval-mode ``nn.Module`` that torch.export can trace, through the same pipeline as the zoo.

    ``example_input`` fixes the artifact's input shape [N, C, H, W]. ``calibration`` (w8a8) and ``eval_data``
    are preprocessed inputs (``eval_data`` may be ``(x, y)`` for an accuracy check), or a data spec (digits,
    NAME:DIR, an image folder) read and preprocessed with ``mean`` / ``std``. ``labels`` name the outputs.
    """
    from edgelight.checkpoint import Preprocessing
    from edgelight.user_models import check_exportable

    tgt = get_target(target)
    precision, options = tgt.resolve(precision, options)
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"export takes a torch.nn.Module, got {type(model).__name__}")
    example = torch.as_tensor(example_input)
    if example.dim() != 4 or example.dtype != torch.float32:
        raise UsageError(f"example_input must be a float32 [N, C, H, W] tensor, got {example.dtype} {list(example.shape)}")
    model = model.eval()
    name = name or type(model).__name__.lower()
    c = example.shape[1]
    mean = tuple(float(v) for v in mean) if mean is not None else (0.0,) * c
    std = tuple(float(v) for v in std) if std is not None else (1.0,) * c
    if len(mean) != c or len(std) != c or min(std) <= 0:
        raise UsageError(f"mean and std need {c} values (one per input channel), std > 0; got {list(mean)} and {list(std)}")
    folder = next((Path(str(d)) for d in (eval_data, calibration) if isinstance(d, (str, Path)) and Path(str(d)).is_dir()), None)
    if labels is None and folder is not None and any(p.is_dir() for p in folder.iterdir()):
        labels = folder_classes(folder)  # a folder's class names are the outputs' labels
    classes = check_exportable(model, example, name, labels)
    pre = Preprocessing(tuple(example.shape[1:]), mean, std, "user", None)
    ckpt = Checkpoint(model, name, {}, classes, pre, source="user")
    return _export(ckpt, model, tgt, precision, options, tuple(example.shape), out, calibration, eval_data, verify, threads)


def _export(ckpt: Checkpoint, model, tgt: Runtime, precision: str, options: dict, shape: tuple, out, calib, verify_data, verify_artifact: bool, threads) -> ExportResult:
    """The pipeline both entry points share. Every check that can fail on user input runs before anything is
    written; the artifact appears only once lowered and verified (atomically), and its sidecar right after it."""
    started = time.perf_counter()
    data = _Data(ckpt, shape, precision)
    calibration = data.calibration(calib) if precision == "w8a8" else []
    eval_set = data.verification(verify_data) if verify_artifact and tgt.runnable_here() is None else None
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
        if not verify_artifact:
            verification = {"status": "skipped"}
        else:
            verification = verify(tgt, tmp, ckpt, model, shape, precision, eval_set, threads, final.name, hints)
        size_bytes, sha256 = content_digest(tmp)
        source = data.verified_source if eval_set is not None else (ckpt.preprocessing.data_source() if ckpt.source != "user" else None)
        sidecar = check_sidecar({**_sidecar(metadata, tgt, ckpt, model, shape, size_bytes, sha256, report, verification, options, source), "sidecar_version": SIDECAR_VERSION}, final.name)
        _publish(tmp, final)  # only a checked sidecar may follow it
        published = True
        write_sidecar(final, sidecar)
    finally:
        _remove(tmp)
        if not published:
            remove_empty(created)
    return ExportResult(
        final, sidecar_path(final), ckpt.name, tgt.name, precision, size_bytes, list(shape), report.op_inventory,
        report.delegated_fraction, verification, round(time.perf_counter() - started, 2), report.notes,
        round(lower_seconds, 2), options,
    )


def _sidecar(metadata, tgt: Runtime, ckpt: Checkpoint, model, shape, size_bytes, sha256, report, verification, options, source) -> dict:
    from edgelight.stats import count_macs, count_params

    return {
        **metadata,
        "target": tgt.name,
        "input_shape": list(shape),
        "mean": list(ckpt.preprocessing.mean),
        "std": list(ckpt.preprocessing.std),
        "labels": ckpt.classes,
        "weights": ckpt.source if ckpt.source in ("random", "builtin", "user") else "checkpoint",
        "weights_sha256": weights_digest(ckpt.model),
        "params": count_params(ckpt.model),
        "macs": count_macs(model, torch.zeros(1, *shape[1:])),
        "bytes": size_bytes,
        "sha256": sha256,
        "data": source,  # the data the artifact was verified on (a bench measures its accuracy there)
        "op_inventory": report.op_inventory,
        "delegated_fraction": report.delegated_fraction,
        "verification": verification,
        "options": options,
        "requires": report.requires,  # what a runner must load beyond the runtime (edgelight's native kernels)
        "runtime_options": report.runtime_options,  # how a runner sets the runtime up (XNNPACK's weights cache)
        "notes": report.notes,
        "sidecar_version": SIDECAR_VERSION,
    }
