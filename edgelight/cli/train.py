import json
import os
from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors
from edgelight.errors import UsageError


def train_command(
    model: Annotated[str, typer.Argument(help="a registered model name (see `edgelight models`)")],
    data: Annotated[str | None, typer.Option(help="an image folder (DIR/<class>/* or DIR/train + DIR/val|test), digits, or cifar10:DIR / cifar100:DIR / fashion-mnist:DIR")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits (built in), cifar10, cifar100 or fashion-mnist (with --data-dir)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="folder with the data set's files (not needed for digits)")] = None,
    init: Annotated[Path | None, typer.Option(help="fine-tune: start from this checkpoint folder of the same model (the classifier head follows the new classes)")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="override the recipe's epoch count")] = None,
    recipe: Annotated[str | None, typer.Option(help="lrunet, shiftresnet, mobilenetv2 or digits (default: by model and data set)")] = None,
    out: Annotated[Path | None, typer.Option(help="checkpoint directory to write (default: runs/MODEL)")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run saved in --out")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    in_chans: Annotated[int, typer.Option(min=1)] = 3,
    size: Annotated[int, typer.Option(min=8, help="input height and width")] = 32,
    progress: Annotated[bool, typer.Option(help="progress bar and per-epoch lines")] = True,
) -> None:
    """Train a model with its paper's recipe; writes OUT/model.safetensors, config.json, metrics.json."""
    from edgelight.models import get_spec
    from edgelight.train import RECIPES, train

    with user_errors():
        get_spec(model)
        out = out or Path("runs") / model  # a trained model is never thrown away
        if recipe is not None and recipe not in RECIPES:
            raise UsageError(f"unknown recipe '{recipe}'; choose one of: {', '.join(RECIPES)}")
        result = train(model, _data(data, dataset), data_dir, epochs, recipe, out, resume, seed, size, progress=progress, init=init, in_chans=in_chans)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 speaks (and writes)
            echo(json.dumps({k: v for k, v in result.metrics.items() if k not in ("recipe", "history")}))
            echo(f"checkpoint written to {out}")


def _data(data: str | None, dataset: str | None) -> str:
    if data is not None and dataset is not None:
        raise UsageError("give --data or --dataset, not both")
    return data or dataset or "digits"


def eval_command(
    ckpt_dir: Annotated[str, typer.Argument(help="a checkpoint directory, or a model name for its built-in checkpoint")],
    data: Annotated[str | None, typer.Option(help="default: the data the checkpoint was trained on; an image folder, digits or NAME:DIR")] = None,
    dataset: Annotated[str | None, typer.Option(help="a built-in name (cifar10, cifar100, fashion-mnist with --data-dir)")] = None,
    data_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Test accuracy of a checkpoint."""
    from edgelight.train import evaluate

    with user_errors():
        spec = None if data is None and dataset is None else _data(data, dataset)
        echo(json.dumps(evaluate(ckpt_dir, spec, data_dir)))
