"""Small blocks shared by several model families."""

import torch
from torch import nn

from edgelight.ops import channel_shuffle, shift2d


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (never below 90% of it), as in MobileNet."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation; submodule names stay stable for checkpoints."""

    def __init__(self, in_chs, out_chs, kernel_size=3, stride=1, groups=1, act_layer=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        if act_layer is not None:
            self.act = act_layer(inplace=True)


class Shift(nn.Module):
    """The parameter-free shift as a module (``edgelight::shift2d``)."""

    def __init__(self, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shift2d(x, self.kernel_size, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}"


class LruShuffle(nn.Module):
    """LruNet's ShuffleBlock: swap the two channel halves, then a g=2 channel shuffle.

    Net effect: ``out[2i] = x[C/2 + i]`` and ``out[2i + 1] = x[i]``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        return channel_shuffle(torch.cat([x[:, half:], x[:, :half]], dim=1), 2)
