"""Checkpoints: ``model.safetensors`` + ``config.json`` (+ ``metrics.json``). Loading never executes code.

A checkpoint directory is what ``edgelight train --out DIR`` writes and what every
later step (eval, export, bench) reads. The built-in digits checkpoints live in
``edgelight/pretrained/<model>/`` in the same format.
"""

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from edgelight.errors import UsageError
from edgelight.utils.files import write_atomic, write_json

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.json"


def weights_digest(model) -> str:
    """sha256 over a model's state dict (names, dtypes, shapes, values in key order): which weights an
    artifact was exported from, recorded in its sidecar, so a later check can tell a fine-tuned copy of a
    built-in model from the built-in checkpoint."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().contiguous().cpu()
        digest.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class CheckpointError(UsageError):
    """A checkpoint directory that is missing, malformed, or does not match its model."""


@dataclass
class Preprocessing:
    input_size: tuple[int, int, int] = (3, 32, 32)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    dataset: str = "digits"
    # where the data came from (edgelight.data: {"kind": "builtin" | "files" | "folder", ...}); export calibrates
    # and verifies on it by default. None: not recorded (random weights, or a user module without data)
    data: dict | None = None
    resize: str | None = None  # how images of another size were fitted (edgelight.data.RESIZE for image folders)

    def to_dict(self) -> dict:
        d = {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std), "dataset": self.dataset}
        return {**d, "data": self.data, "resize": self.resize} if self.data is not None else d

    def data_source(self) -> dict | None:
        """The recorded source; a checkpoint from before sources were recorded names only its data set."""
        if self.data is not None:
            return self.data
        return {"kind": "builtin", "name": "digits"} if self.dataset == "digits" else {"kind": "files", "name": self.dataset}


@dataclass
class Checkpoint:
    """A model with everything needed to feed it and to describe it."""

    model: object
    name: str
    args: dict
    classes: list[str]
    preprocessing: Preprocessing
    metrics: dict = field(default_factory=dict)
    source: str = "random"  # "random", "builtin", "user" (an nn.Module handed to edgelight.export) or the checkpoint directory


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


def _source(data) -> dict | None:
    if data is not None and not (isinstance(data, dict) and data.get("kind") in ("builtin", "files", "folder")):
        raise TypeError("preprocessing.data must be an object with kind builtin, files or folder")
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
        preprocessing = Preprocessing(tuple(pre["input_size"]), tuple(pre["mean"]), tuple(pre["std"]), pre.get("dataset", "?"), _source(pre.get("data")), pre.get("resize"))
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
