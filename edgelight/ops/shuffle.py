"""``edgelight::channel_shuffle``: the ShuffleNet channel shuffle.

``out[:, j * g + i] = in[:, i * (C / g) + j]`` (view as [N, g, C/g, H, W], swap the
two group axes, flatten). Its inverse is the shuffle with ``C / g`` groups, which is
the backward pass.
"""

import torch

from edgelight.ops._library import ACTIVE_LOWERING, LIB, define_with_out, register_out_kernels

define_with_out("channel_shuffle", "Tensor x, int groups")


def _check(x: torch.Tensor, groups: int) -> None:
    torch._check(x.dim() == 4, lambda: f"channel_shuffle expects an NCHW tensor, got {x.dim()} dims")
    torch._check(groups >= 1 and x.shape[1] % groups == 0, lambda: f"{x.shape[1]} channels do not split into {groups} groups")


@torch.library.impl(LIB, "channel_shuffle", "CPU")
def _channel_shuffle_cpu(x: torch.Tensor, groups: int) -> torch.Tensor:
    _check(x, groups)
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h * w).transpose(1, 2).reshape(n, c, h, w).contiguous()


@torch.library.register_fake("edgelight::channel_shuffle")
def _channel_shuffle_fake(x, groups):
    _check(x, groups)
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    x, groups = inputs
    ctx.inverse_groups = x.shape[1] // groups


def _backward(ctx, grad):
    return torch.ops.edgelight.channel_shuffle(grad, ctx.inverse_groups), None


torch.library.register_autograd("edgelight::channel_shuffle", _backward, setup_context=_setup)
register_out_kernels("channel_shuffle", _channel_shuffle_cpu)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle (one node under torch.export, unless lowered)."""
    lowering = ACTIVE_LOWERING.get()
    if lowering is not None:
        return lowering["channel_shuffle"](x, groups)
    return torch.ops.edgelight.channel_shuffle(x, groups)


def channel_shuffle_reference(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Plain reference: an explicit channel permutation."""
    c = x.shape[1]
    per_group = c // groups
    order = [i * per_group + j for j in range(per_group) for i in range(groups)]
    return x[:, order]
