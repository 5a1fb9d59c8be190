"""What the harness needs to know about an artifact (its sidecar) and the evaluation data it feeds it.

An exported artifact has a sidecar next to it (``m.pte`` -> ``m.pte.json``) with model, precision,
input_shape, mean, std, labels, params and macs. The eager reference reads its checkpoint's
config.json instead. The data set is preprocessed once in the parent and handed to each child as a
.npz, so children never import torch just to normalize images.
"""

import json
from pathlib import Path

import numpy as np

from edgelight.artifacts import current_precision, sidecar_path
from edgelight.checkpoint import CONFIG, WEIGHTS
from edgelight.errors import UsageError
from edgelight.targets import suffixes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class BenchInputError(UsageError):
    """An artifact or data set the harness cannot use (bad path, missing sidecar, bad folder)."""


def resolve_artifact(path) -> Path:
    """A checkpoint folder means its weights file (the eager artifact); anything else is taken as is."""
    path = Path(path)
    if not path.exists():
        raise BenchInputError(f"'{path}' does not exist")
    if path.is_dir() and path.suffix != ".mlpackage" and (path / WEIGHTS).is_file():
        return path / WEIGHTS
    return path


def _checkpoint_meta(weights: Path) -> dict:
    import torch

    from edgelight.checkpoint import load_checkpoint
    from edgelight.stats import count_macs, count_params

    ckpt = load_checkpoint(weights.parent)
    shape = [1, *ckpt.preprocessing.input_size]
    return {
        "model": ckpt.name,
        "precision": "fp32",
        "input_shape": shape,
        "mean": list(ckpt.preprocessing.mean),
        "std": list(ckpt.preprocessing.std),
        "labels": list(ckpt.classes),
        "params": count_params(ckpt.model),
        "macs": count_macs(ckpt.model, torch.zeros(shape)),
    }


def artifact_meta(artifact: Path) -> dict:
    """model, precision, input_shape [N,C,H,W], mean, std, labels, params, macs."""
    artifact = Path(artifact)
    if artifact.name == WEIGHTS and (artifact.parent / CONFIG).is_file():
        return _checkpoint_meta(artifact)
    side = sidecar_path(artifact)
    if not side.is_file():
        raise BenchInputError(f"'{artifact}' has no sidecar '{side.name}' (edgelight export writes one next to each artifact)")
    try:
        meta = json.loads(side.read_text())
        shape = [int(v) for v in meta["input_shape"]]
        if len(shape) != 4:
            raise UsageError(f"input_shape must be [N,C,H,W], got {shape}")
        return {
            "model": str(meta["model"]),
            # a version 1 sidecar says int8: today's name depends on the runtime (w8 on Core ML, w8a8 elsewhere)
            "precision": current_precision(suffixes().get(artifact.suffix, ""), str(meta["precision"])),
            "input_shape": shape,
            "mean": [float(v) for v in meta.get("mean", [0.0] * shape[1])],
            "std": [float(v) for v in meta.get("std", [1.0] * shape[1])],
            "labels": [str(v) for v in meta.get("labels", [])],
            "params": meta.get("params"),
            "macs": meta.get("macs"),
            "weights": meta.get("weights"),  # "random" when exported without a trained checkpoint
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise BenchInputError(f"sidecar '{side}' is unusable: {e}") from None


def _load_image_folder(folder: Path, labels: list[str], c: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """DIR/<label>/<image>: class folders named after the model's labels (or 0..K-1)."""
    from PIL import Image

    names = labels or sorted(p.name for p in folder.iterdir() if p.is_dir())
    xs, ys = [], []
    for k, name in enumerate(names):
        sub = folder / name
        if not sub.is_dir():
            continue
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                img = Image.open(f).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
                a = np.asarray(img, dtype=np.float32) / 255.0
                xs.append(a[None] if c == 1 else a.transpose(2, 0, 1))
                ys.append(k)
    if not xs:
        raise BenchInputError(f"'{folder}' holds no images in class folders named {names[:5]}...")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def eval_set(dataset: str, meta: dict) -> tuple[str, np.ndarray, np.ndarray]:
    """(data set name, normalized float32 NCHW inputs, int labels) shaped for this artifact."""
    _, c, h, w = meta["input_shape"]
    if dataset == "digits":
        from edgelight.data import load_dataset

        ds = load_dataset("digits", in_chans=c, size=h)
        x, y, name = ds.test_x.numpy().astype(np.float32), ds.test_y.numpy().astype(np.int64), "digits"
    elif Path(dataset).is_dir():
        x, y = _load_image_folder(Path(dataset), meta["labels"], c, h, w)
        name = Path(dataset).name
    else:
        raise BenchInputError(f"--dataset must be 'digits' or an existing folder of class subfolders, got '{dataset}'")
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    return name, ((x - mean) / std).astype(np.float32), y
