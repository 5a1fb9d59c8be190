"""The blocks the zoo is built from, public so a user's own network can use them (``edgelight.layers``)."""

import torch
from torch import nn
from torch.nn import functional as F

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


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle (``edgelight::channel_shuffle``): a fixed permutation, no parameters."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def shortcut(in_chs: int, out_chs: int, stride: int) -> nn.Module:
    if stride == 1 and in_chs == out_chs:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs))


class CSCBlock(nn.Module):
    """conv-shift-conv: the shift does the spatial mixing, the 1x1 convs the channel mixing."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expansion: int = 3):
        super().__init__()
        mid = int(out_chs * expansion)
        self.conv1 = ConvBnAct(in_chs, mid, 1)
        self.shift = Shift(3, 1)
        self.conv2 = nn.Conv2d(mid, out_chs, 1, stride, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.shortcut = shortcut(in_chs, out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn2(self.conv2(self.shift(self.conv1(x)))))
        return out + self.shortcut(x)


class RepeatedDepthwise(nn.Conv2d):
    """A depthwise conv with several outputs per input channel (``groups == in_channels < out_channels``).

    Same weight, same math as the nn.Conv2d it is, computed as a plain depthwise conv over the input
    channels each repeated ``multiplier`` times. XNNPACK runs a multiplier-2 depthwise conv as one tiny
    GEMM per channel group (~75% of lrunet-14-1x's fp32 time, ETDump); a plain depthwise conv runs as
    one DWConv kernel, and the repeat is a concatenation and a shuffle, which every runtime has.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiplier = self.out_channels // self.in_channels
        if self.groups != self.in_channels or multiplier == 1:
            return super().forward(x)
        repeated = channel_shuffle(torch.cat([x] * multiplier, dim=1), multiplier)  # channel m * c + k = x[c]
        return F.conv2d(repeated, self.weight, self.bias, self.stride, self.padding, self.dilation, groups=self.out_channels)


class LruBlock(nn.Module):
    """One shared (depthwise x2 -> grouped 1x1) pair, reused ``reuses`` times with per-reuse BatchNorm."""

    def __init__(self, planes: int, reuses: int):
        super().__init__()
        self.dw = RepeatedDepthwise(planes, 2 * planes, 3, padding=1, groups=planes, bias=False)
        self.pw = nn.Conv2d(2 * planes, planes, 1, groups=8, bias=False)
        self.dw_bn = nn.ModuleList(nn.BatchNorm2d(2 * planes) for _ in range(reuses))
        self.pw_bn = nn.ModuleList(nn.BatchNorm2d(planes) for _ in range(reuses))
        self.shuffle = LruShuffle()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, (dw_bn, pw_bn) in enumerate(zip(self.dw_bn, self.pw_bn)):
            out = torch.relu(pw_bn(self.pw(dw_bn(self.dw(out)))) + out)
            if i != len(self.dw_bn) - 1:
                out = self.shuffle(out)
        return out
