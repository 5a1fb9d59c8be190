"""What the harness knows about an artifact and the evaluation data it feeds it.

An exported artifact has a sidecar (edgelight.artifacts.read_sidecar) with its model, precision, input
shape, preprocessing, labels and data. An artifact made elsewhere has none: its input shape comes from
the file (the runtime's inspector), latency and memory are measured on seeded random inputs, and
accuracy only when the preprocessing is given (``--mean``/``--std`` with ``--data``). The eager
reference reads its checkpoint's config.json. Data are preprocessed once in the parent and handed to
each child as a .npz, so children never import torch just to normalize images.
"""

from pathlib import Path

import numpy as np

from edgelight.artifacts import SidecarError, read_sidecar
from edgelight.checkpoint import CONFIG, WEIGHTS
from edgelight.errors import UsageError
from edgelight.evaluation import EvalSet

RANDOM_INPUTS = 8  # inputs timed on when no data can be fed (latency and memory need no labels)


class BenchInputError(UsageError):
    """An artifact or data set the harness cannot use (bad path, bad folder)."""


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
        "model": ckpt.name, "precision": "fp32", "input_shape": shape, "mean": list(ckpt.preprocessing.mean), "std": list(ckpt.preprocessing.std),
        "labels": list(ckpt.classes), "params": count_params(ckpt.model), "macs": count_macs(ckpt.model, torch.zeros(shape)),
        "data": ckpt.preprocessing.data_source(), "sidecar": "checkpoint",
    }


def foreign_meta(artifact: Path, why: str = "missing") -> dict:
    """An artifact without a (usable) sidecar: named by its file, everything else read from it later."""
    return {"model": artifact.stem, "precision": "unknown", "input_shape": None, "mean": None, "std": None, "labels": None, "params": None, "macs": None,
            "data": None, "sidecar": why}


def artifact_meta(artifact: Path) -> dict:
    """model, precision, input_shape [N,C,H,W] (None: read it from the file), mean, std, labels, params, macs, data, sidecar.

    ``sidecar`` says where these came from: "ok", "missing", "unreadable" (``sidecar_error`` says why) or "checkpoint".
    """
    artifact = Path(artifact)
    if artifact.name == WEIGHTS and (artifact.parent / CONFIG).is_file():
        return _checkpoint_meta(artifact)
    try:
        side = read_sidecar(artifact)
    except SidecarError as e:
        return {**foreign_meta(artifact, "unreadable"), "sidecar_error": str(e)}
    if side is None:
        return foreign_meta(artifact)
    return {
        "model": side["model"], "precision": side["precision"], "input_shape": list(side["input_shape"]), "mean": list(side["mean"]), "std": list(side["std"]),
        "labels": list(side["labels"]), "params": side.get("params"), "macs": side.get("macs"), "weights": side.get("weights"), "weights_sha256": side.get("weights_sha256"),
        # sidecars before version 3 were verified on digits, the only data export knew then
        "data": side.get("data") if side["sidecar_version"] >= 3 else {"kind": "builtin", "name": "digits"},
        "bytes": side.get("bytes"), "sha256": side.get("sha256"), "sidecar": "ok",
    }


def sidecar_mismatch(meta: dict, info: dict) -> str | None:
    """Why the file is not the one its sidecar describes (changed or cut short after export), else None."""
    if meta.get("sidecar") != "ok":
        return None
    if isinstance(meta.get("bytes"), int) and meta["bytes"] != info["bytes"]:
        return f"the file is {info['bytes']} bytes but its sidecar says {meta['bytes']}: it changed or was cut short after export"
    if meta.get("sha256") and info.get("sha256") and meta["sha256"] != info["sha256"]:
        return "the file's sha256 differs from its sidecar's: it changed after export"
    return None


def eval_set(spec, meta: dict) -> EvalSet:
    """``spec`` (a data spec string, or a recorded source dict: its test split), preprocessed for this artifact."""
    from edgelight.data import evaluation_data, from_source

    _, c, h, w = meta["input_shape"]
    if h != w:
        raise BenchInputError(f"accuracy is measured on square inputs; {meta['model']} takes {h}x{w}")
    labels = meta.get("labels") or None
    if isinstance(spec, dict):
        ds = from_source(spec, c, h, how_to_pass="--data DATA")
    else:
        ds = evaluation_data(spec, c, h, labels, meta.get("data") if isinstance(meta.get("data"), dict) else None)
    if labels is not None and len(ds.classes) != len(labels):
        raise BenchInputError(f"{ds.name} has {len(ds.classes)} classes but {meta['model']} predicts {len(labels)}")
    return ds.eval_set(meta["mean"], meta["std"])


def random_inputs(shape: list[int]) -> EvalSet:
    x = np.random.default_rng(0).standard_normal((RANDOM_INPUTS * shape[0], *shape[1:])).astype(np.float32)
    return EvalSet("random-inputs", x, None, [])
