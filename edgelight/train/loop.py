"""One training loop for every model and recipe: progress bars, resume, best-epoch selection.

``--out DIR`` always holds a loadable checkpoint of the best epoch so far (written
atomically after each epoch), plus ``last.safetensors`` / ``optimizer.safetensors`` /
``train_state.json`` for ``--resume``: an interrupted run loses at most one epoch.
Under ``torchrun`` the loop runs DistributedDataParallel, each rank on its shard.
"""

import math
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgelight.checkpoint import Checkpoint, Preprocessing, load_checkpoint, save_checkpoint
from edgelight.data import Dataset, evaluation_data, from_source, normalize, open_data
from edgelight.errors import UsageError
from edgelight.evaluation import evaluate as evaluate_runner
from edgelight.train.augment import random_crop, random_flip, random_rotation
from edgelight.train.recipes import RECIPES, Recipe, default_recipe
from edgelight.utils.files import write_atomic, write_json

STATE, LAST, OPTIM = "train_state.json", "last.safetensors", "optimizer.safetensors"


@dataclass
class TrainResult:
    checkpoint: Checkpoint
    metrics: dict
    out_dir: Path | None


def lr_at(recipe: Recipe, epoch: int) -> float:
    if recipe.schedule == "step":
        return recipe.lr * recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * epoch / recipe.epochs))


def accuracy(model: nn.Module, ds: Dataset, mean, std) -> float:
    """Test-split accuracy through the one evaluation every runner gets (edgelight.evaluation)."""
    return evaluate_runner(model, ds.eval_set(mean, std), batch=256).accuracy


class InitError(UsageError):
    """A --init checkpoint that does not fit the model being trained."""


def init_from(model: nn.Module, model_name: str, init: Path, classes: list[str]) -> None:
    """Start from a checkpoint: every weight must fit (strict) except the classifier head, which is re-created
    when the classes differ (in number or in names: a head's rows belong to its old classes)."""
    from edgelight.models import create_model

    src = load_checkpoint(init)
    if src.name != model_name:
        raise InitError(f"--init '{init}' holds {src.name}, not {model_name}")
    ours = {k: v for k, v in model.model_args.items() if k != "num_classes"}
    theirs = {k: v for k, v in src.args.items() if k != "num_classes"}
    if ours != theirs:
        diff = ", ".join(f"{k}={theirs.get(k)} there, {ours.get(k)} here" for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k))
        raise InitError(f"--init '{init}' was built with other arguments ({diff}); only the class count may change")
    # the head is what changes shape with the class count
    probe = create_model(model_name, **{**model.model_args, "num_classes": len(classes) + 1}).state_dict()
    target = model.state_dict()
    head = {k for k in target if probe[k].shape != target[k].shape}
    state = src.model.state_dict()
    keep = {k: v for k, v in state.items() if k not in head or src.classes == classes}
    model.load_state_dict({**{k: target[k] for k in head}, **keep}, strict=True)


def _distributed() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _augment(x: torch.Tensor, recipe: Recipe, ds: Dataset, gen: torch.Generator) -> torch.Tensor:
    x = random_crop(x, recipe.crop_padding, gen)
    x = random_rotation(x, recipe.rotation, gen)
    return random_flip(x, gen) if recipe.flip and ds.flip else x


def _save_resume_state(out: Path, model, optimizer, epoch: int, best: dict) -> None:
    from safetensors.torch import save

    write_atomic(out / LAST, save({k: v.contiguous() for k, v in model.state_dict().items()}))
    buffers = {f"{i}": optimizer.state[p]["momentum_buffer"] for i, p in enumerate(optimizer.param_groups[0]["params"]) if "momentum_buffer" in optimizer.state[p]}
    write_atomic(out / OPTIM, save({k: v.contiguous() for k, v in buffers.items()}))
    write_json(out / STATE, {"next_epoch": epoch + 1, **best})


def _load_resume_state(out: Path, model, optimizer) -> tuple[int, dict]:
    import json

    from safetensors.torch import load_file

    state = json.loads((out / STATE).read_text())
    model.load_state_dict(load_file(out / LAST))
    params = optimizer.param_groups[0]["params"]
    for key, buf in load_file(out / OPTIM).items():
        optimizer.state[params[int(key)]]["momentum_buffer"] = buf
    best = {k: state[k] for k in ("best_accuracy", "best_epoch", "train_seconds")}
    best["history"] = list(state.get("history", []))
    return state["next_epoch"], best


def train(
    model_name: str,
    dataset: str = "digits",
    data_dir: Path | None = None,
    epochs: int | None = None,
    recipe: str | None = None,
    out: Path | None = None,
    resume: bool = False,
    seed: int = 0,
    size: int = 32,
    progress: bool = True,
    init: Path | None = None,
    **model_kwargs,
) -> TrainResult:
    """Train ``model_name`` on ``dataset``: digits, cifar10 (+ ``data_dir``), cifar10:DIR, ... or an image folder.

    ``init``: a checkpoint directory of the same model to start from (fine-tuning; the head follows the classes).
    """
    from edgelight.models import create_model, get_spec

    spec = get_spec(model_name)
    rank, world = _distributed()
    in_chans = model_kwargs.pop("in_chans", 3)
    ds = open_data(dataset, in_chans, size, data_dir=data_dir)
    rec = (RECIPES[recipe] if recipe else default_recipe(spec.family, ds.name)).with_epochs(epochs)
    mean, std = (ds.mean, ds.std) if rec.normalize else ((0.0,) * in_chans, (1.0,) * in_chans)
    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=len(ds.classes), in_chans=in_chans, **model_kwargs)
    if init is not None and resume:
        raise UsageError("--init starts a new run; --resume continues the one in --out: give one of them")
    if init is not None:
        init_from(model, model_name, Path(init), ds.classes)
    preprocessing = Preprocessing(ds.input_shape, mean, std, ds.name, ds.source, ds.source.get("resize"))
    ckpt = Checkpoint(model, model_name, dict(model.model_args), ds.classes, preprocessing)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=rec.lr, momentum=rec.momentum, weight_decay=rec.weight_decay)
    criterion = nn.CrossEntropyLoss()
    out = Path(out) if out else None
    start, best = 0, {"best_accuracy": -1.0, "best_epoch": -1, "train_seconds": 0.0, "history": []}
    if resume:
        if out is None or not (out / STATE).is_file():
            raise UsageError(f"nothing to resume: {out}/{STATE} does not exist")
        start, best = _load_resume_state(out, model, optimizer)
    elif out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    gen = torch.Generator().manual_seed(seed + 1000 * start + rank)
    n = len(ds.train_x)
    steps = math.ceil(n / world / rec.batch_size)
    from rich.progress import Progress

    with Progress(disable=not progress or rank != 0, transient=False) as bar:
        task = bar.add_task(f"{model_name} on {ds.name}", total=(rec.epochs - start) * steps)
        for epoch in range(start, rec.epochs):
            began = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(rec, epoch)
            trained.train()
            # equal shards (the remainder dropped): DDP ranks must run the same number of steps or they hang
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))[: n // world * world][rank::world]
            for i in range(0, len(order), rec.batch_size):
                idx = order[i : i + rec.batch_size]
                x = normalize(_augment(ds.train_x[idx], rec, ds, gen), mean, std)
                loss = criterion(trained(x), ds.train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update(task, advance=1, description=f"{model_name} epoch {epoch + 1}/{rec.epochs} loss {loss.item():.3f}")
            best["train_seconds"] += time.perf_counter() - began
            if rank != 0:
                continue
            acc = accuracy(model, ds, mean, std)
            # per-epoch curve: what a 'time to X% accuracy' figure is read from
            best["history"].append({"epoch": epoch + 1, "test_accuracy": round(acc, 6), "train_seconds": round(best["train_seconds"], 2)})
            bar.console.print(f"epoch {epoch + 1}: test accuracy {acc:.4f} (lr {lr_at(rec, epoch):.4g})") if progress else None
            if acc > best["best_accuracy"]:
                best.update(best_accuracy=acc, best_epoch=epoch + 1)
                ckpt.metrics = _metrics(model, rec, ds, best, epoch + 1, init)
                if out is not None:
                    save_checkpoint(out, ckpt)
            if out is not None:
                _save_resume_state(out, model, optimizer, epoch, best)
    if world > 1:
        torch.distributed.barrier()  # rank 0 has written the best checkpoint; only it rewrites the final one
        torch.distributed.destroy_process_group()
    if out is not None and rank == 0 and (out / "model.safetensors").is_file():
        final = load_checkpoint(out)
        final.metrics = _metrics(final.model, rec, ds, best, rec.epochs, init)
        save_checkpoint(out, final)
    else:  # no --out: the last epoch's model, reported with the best accuracy seen
        final = ckpt
        final.metrics = _metrics(model, rec, ds, best, rec.epochs, init)
    return TrainResult(final, final.metrics, out)


def _metrics(model: nn.Module, rec: Recipe, ds: Dataset, best: dict, epochs: int, init=None) -> dict:
    return {
        "test_accuracy": round(best["best_accuracy"], 6),
        "best_epoch": best["best_epoch"],
        "epochs": epochs,
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(best["train_seconds"], 2),
        "history": list(best["history"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dataset": ds.name,
        "test_samples": len(ds.test_y),
        "init": str(init) if init else None,
        "recipe": rec.to_dict(),
        "threads": torch.get_num_threads(),
    }


def evaluate(source, dataset: str | None = None, data_dir: Path | None = None) -> dict:
    """Accuracy of a checkpoint on its own data's test split, or on another data set with the same classes."""
    from edgelight.checkpoint import resolve

    ckpt = source if isinstance(source, Checkpoint) else resolve(str(source))
    c, h, _ = ckpt.preprocessing.input_size
    if dataset is None:
        ds = from_source(ckpt.preprocessing.data_source(), c, h, how_to_pass="edgelight eval CKPT --data DATA")
    elif data_dir is not None:
        ds = open_data(dataset, c, h, classes=ckpt.classes, data_dir=data_dir)
    else:
        ds = evaluation_data(dataset, c, h, ckpt.classes, ckpt.preprocessing.data_source(), how_to_pass="edgelight eval CKPT --data DATA")
    if len(ds.classes) != len(ckpt.classes):
        raise UsageError(f"{ds.name} has {len(ds.classes)} classes but the checkpoint predicts {len(ckpt.classes)}")
    acc = accuracy(ckpt.model, ds, ckpt.preprocessing.mean, ckpt.preprocessing.std)
    return {"model": ckpt.name, "dataset": ds.name, "test_accuracy": round(acc, 6), "samples": len(ds.test_y), "source": ckpt.source}
