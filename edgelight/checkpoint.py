"""Checkpoints: ``model.safetensors`` + ``config.json`` (+ ``metrics.json``). Loading never executes code.

A checkpoint directory is what ``edgelight train --out DIR`` writes and what every
later step (eval, export, bench) reads. The built-in digits checkpoints live in
``edgelight/pretrained/<model>/`` in the same format.
"""

import contextlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.json"


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, malformed, or does not match its model."""


@dataclass
class Preprocessing:
    input_size: tuple[int, int, int] = (3, 32, 32)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    dataset: str = "digits"

    def to_dict(self) -> dict:
        return {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std), "dataset": self.dataset}


@dataclass
class Checkpoint:
    """A model with everything needed to feed it and to describe it."""

    model: object
    name: str
    args: dict
    classes: list[str]
    preprocessing: Preprocessing
    metrics: dict = field(default_factory=dict)
    source: str = "random"  # "random", "builtin" or the checkpoint directory


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the whole new content, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def probe_folder(folder: Path) -> list[Path]:
    """Create ``folder`` if needed and check that a file can be written in it, before any long work.

    Returns the folders it created (so a caller that fails later can remove them); raises PermissionError
    with the reason, leaving nothing behind.
    """
    folder = Path(folder)
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".edgelight-probe-").close()
    except OSError as e:
        remove_empty(missing)
        reason = "it is a file" if folder.is_file() else e.strerror or str(e)
        raise PermissionError(f"cannot write to '{folder}': {reason}") from None
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove the given folders, innermost first, where they are still empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: dict) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_checkpoint(out_dir: Path, ckpt: Checkpoint) -> None:
    from safetensors.torch import save

    from edgelight import __version__

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in ckpt.model.state_dict().items()}
    write_atomic(out_dir / WEIGHTS, save(state, metadata={"format": "pt", "model": ckpt.name}))
    config = {
        "edgelight_version": __version__,
        "model": ckpt.name,
        "model_args": ckpt.args,
        "classes": ckpt.classes,
        "preprocessing": ckpt.preprocessing.to_dict(),
    }
    write_json(out_dir / CONFIG, config)
    if ckpt.metrics:
        write_json(out_dir / METRICS, ckpt.metrics)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"'{path.parent}' is not a checkpoint directory: {path.name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"'{path}' is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"'{path}' must hold a JSON object")
    return data


def load_checkpoint(ckpt_dir: Path) -> Checkpoint:
    """Rebuild the model from config.json and load its safetensors weights (strict)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from edgelight.models import UnknownModelError, create_model

    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"'{ckpt_dir}' is not a checkpoint directory (expected {WEIGHTS} and {CONFIG})")
    config = _read_json(ckpt_dir / CONFIG)
    try:
        name, args = config["model"], dict(config.get("model_args", {}))
        pre = config.get("preprocessing", {})
        preprocessing = Preprocessing(tuple(pre["input_size"]), tuple(pre["mean"]), tuple(pre["std"]), pre.get("dataset", "?"))
        classes = list(config.get("classes") or [str(i) for i in range(args.get("num_classes", 10))])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"'{ckpt_dir / CONFIG}' lacks a required field ({e})") from None
    try:
        model = create_model(name, **args)
    except UnknownModelError as e:
        raise CheckpointError(f"'{ckpt_dir / CONFIG}': {e}") from None
    except TypeError as e:
        raise CheckpointError(f"'{ckpt_dir / CONFIG}': model arguments do not fit {name} ({e})") from None
    try:
        state = load_file(ckpt_dir / WEIGHTS)
    except FileNotFoundError:
        raise CheckpointError(f"'{ckpt_dir}' has no {WEIGHTS}") from None
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"'{ckpt_dir / WEIGHTS}' is not a readable safetensors file ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise CheckpointError(f"'{ckpt_dir}': the weights do not match {name} {args} ({first})") from None
    metrics = _read_json(ckpt_dir / METRICS) if (ckpt_dir / METRICS).is_file() else {}
    if len(classes) != args.get("num_classes", 10):
        raise CheckpointError(f"'{ckpt_dir / CONFIG}': {len(classes)} class names for {args.get('num_classes', 10)} outputs")
    return Checkpoint(model.eval(), name, args, classes, preprocessing, metrics, source=str(ckpt_dir))


def builtin_checkpoint_dir(name: str) -> Path | None:
    path = PRETRAINED_DIR / name
    return path if (path / WEIGHTS).is_file() else None


def resolve(source: str) -> Checkpoint:
    """A checkpoint directory, or a model name (its built-in digits checkpoint, else random weights with a warning)."""
    from edgelight.models import create_model, get_spec

    path = Path(source)
    if path.is_dir():
        return load_checkpoint(path)
    if os.sep in source or source.startswith("."):
        raise CheckpointError(f"'{source}' is not a checkpoint directory")
    builtin = builtin_checkpoint_dir(source)
    if builtin is not None:
        ckpt = load_checkpoint(builtin)
        ckpt.source = "builtin"
        return ckpt
    spec = get_spec(source)  # raises UnknownModelError with suggestions
    warnings.warn(f"{source} has no built-in checkpoint: using random weights", stacklevel=2)
    model = create_model(source).eval()
    size = spec.input_size
    return Checkpoint(model, source, dict(model.model_args), [str(i) for i in range(10)], Preprocessing((3, size, size)), source="random")


def trained_like_batchnorm(model, seed: int = 0):
    """Random BatchNorm affine parameters and running statistics, in place (returns the eval model).

    A fresh BatchNorm is the identity in eval mode and equal across LruNet's reuses, so an untrained
    model folds, dedupes and compares like no trained one does; benchmarks and tests that have no
    trained weights use this instead.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def random_checkpoint(name: str, out_dir: Path, seed: int = 0, size: int = 32) -> Path:
    """A checkpoint directory of ``name`` with random weights and trained-like BatchNorms (digits labels)."""
    import torch

    from edgelight.models import create_model

    torch.manual_seed(seed)
    model = trained_like_batchnorm(create_model(name), seed)
    save_checkpoint(out_dir, Checkpoint(model, name, dict(model.model_args), [str(i) for i in range(10)], Preprocessing((3, size, size))))
    return Path(out_dir)
