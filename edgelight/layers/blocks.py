"""The blocks the zoo is built from, public so a user's own network can use them (``edgelight.layers``)."""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from edgelight.ops import channel_shuffle, shift2d
from edgelight.ops.shift import shift_offsets, shifted_channels


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


def direction_order(channels: int, kernel_size: int = 3) -> list[int]:
    """The channels sorted by shift direction: group g (channels g, g + k^2, ...) becomes one contiguous block."""
    k2, main = kernel_size * kernel_size, shifted_channels(channels, kernel_size)
    return [c for g in range(k2) for c in range(g, main, k2)] + list(range(main, channels))


def _cat_in_fives(parts: list[torch.Tensor]) -> torch.Tensor:
    """Channel cat as a tree of cats of at most five inputs: LiteRT's XNNPACK delegate takes no wider one."""
    while len(parts) > 5:
        chunks = [parts[i : i + 5] for i in range(0, len(parts), 5)]
        parts = [chunk[0] if len(chunk) == 1 else torch.cat(chunk, dim=1) for chunk in chunks]
    return torch.cat(parts, dim=1)


class GroupedShift(nn.Module):
    """``Shift`` over channels in ``direction_order``: block g of ``channels // k^2`` channels moves by
    direction g, the rest stay. Zero pad + one stride-1 slice per block + cat: plain copies that XNNPACK runs
    in fp32 and in int8 (one scale throughout) without a depthwise conv's nine multiply-adds per value."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        self.channels, self.kernel_size, self.dilation = channels, kernel_size, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        main, k2 = shifted_channels(self.channels, self.kernel_size), self.kernel_size**2
        pad, per = (self.kernel_size // 2) * abs(self.dilation), main // k2
        padded = F.pad(x[:, :main] if main < self.channels else x, (pad, pad, pad, pad))
        offsets = shift_offsets(self.channels, self.kernel_size, self.dilation)
        blocks = [padded[:, g * per : (g + 1) * per, pad + dy : pad + dy + h, pad + dx : pad + dx + w] for g, (dy, dx) in enumerate(offsets)]
        return _cat_in_fives(blocks + ([x[:, main:]] if main < self.channels else []))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, dilation={self.dilation}"


def group_shift_directions(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` whose CSC blocks shift direction-sorted channels (``GroupedShift``), and how many.

    Exact: conv1's output channels (and its BatchNorm) are permuted into ``direction_order`` and conv2's
    input channels with them, so every block computes what it did. Shifts outside a CSC block are left as
    they are (their neighbours are not known to be permutable)."""
    model, count = copy.deepcopy(model), 0
    for block in model.modules():
        if not (isinstance(block, CSCBlock) and type(block.shift) is Shift and shifted_channels(block.conv2.in_channels, block.shift.kernel_size)):
            continue
        order = torch.tensor(direction_order(block.conv2.in_channels, block.shift.kernel_size))
        conv, bn = block.conv1.conv, block.conv1.bn
        with torch.no_grad():
            for tensor in (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var):
                tensor.copy_(tensor[order])
            block.conv2.weight.copy_(block.conv2.weight[:, order])
        block.shift = GroupedShift(block.conv2.in_channels, block.shift.kernel_size, block.shift.dilation)
        count += 1
    return model, count


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
