"""The one ``torch.library`` handle for the edgelight namespace."""

from contextvars import ContextVar

import torch

LIB = torch.library.Library("edgelight", "DEF")


def define_with_out(name: str, args: str) -> None:
    """Define ``name(args) -> Tensor`` and its ``.out`` overload (ExecuTorch plans memory on the out variant)."""
    LIB.define(f"{name}({args}) -> Tensor")
    LIB.define(f"{name}.out({args}, *, Tensor(a!) out) -> Tensor(a!)")


def register_out_kernels(name: str, functional) -> None:
    """CPU and fake kernels for ``name.out``: run the functional kernel, write into ``out``."""

    def out_kernel(x, *args, out):
        result = functional(x, *args)
        out.resize_(result.shape)
        out.copy_(result)
        return out

    def out_meta(x, *args, out):
        # the functional op's fake kernel checks the arguments and gives the shape, as the CPU kernel does
        result = getattr(torch.ops.edgelight, name).default(x, *args)
        if out.shape != result.shape:
            out.resize_(result.shape)
        return out

    LIB.impl(f"{name}.out", out_kernel, "CPU")
    LIB.impl(f"{name}.out", out_meta, "Meta")


# The lowering a target asked for while it traces a model (see edgelight.ops.lowering.lowered):
# None keeps each op as a single custom node, else {"shift2d": fn, "channel_shuffle": fn}.
ACTIVE_LOWERING: ContextVar[dict | None] = ContextVar("edgelight_lowering", default=None)
