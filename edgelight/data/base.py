"""What every data set is: float images in [0, 1], NCHW, with a train and a test split and a record of
where they came from (``source``), so a checkpoint can say which data it was trained on."""

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from edgelight.errors import UsageError


class DataError(UsageError):
    """A missing or malformed data set; the message names the file or folder at fault."""


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool  # whether horizontal flips are a valid augmentation
    # {"kind": "builtin", "name"} | {"kind": "files", "name", "path"} | {"kind": "folder", "name", "path", "classes", ...}
    source: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def eval_set(self, mean, std, split: str = "test"):
        """One split, preprocessed with (mean, std), as the numpy EvalSet every runner is evaluated on."""
        from edgelight.evaluation import EvalSet

        x, y = (self.test_x, self.test_y) if split == "test" else (self.train_x, self.train_y)
        name = self.name if self.source.get("layout") == "whole" else f"{self.name}-{split}"  # a folder used whole has no splits
        return EvalSet(name, normalize(x, mean, std).numpy(), y.numpy(), list(self.classes))


def fit(x: torch.Tensor, in_chans: int, size: int) -> torch.Tensor:
    """Resize to size x size and match the channel count (grey <-> RGB)."""
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    if x.shape[1] != in_chans:
        if in_chans not in (1, 3):
            raise DataError(f"cannot present images with {in_chans} channels (1 or 3)")
        x = x.mean(1, keepdim=True).expand(-1, in_chans, -1, -1)
    return x.contiguous()


def stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return tuple(round(v, 4) for v in x.mean((0, 2, 3)).tolist()), tuple(round(max(v, 1e-3), 4) for v in x.std((0, 2, 3)).tolist())


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
