"""The one ``torch.library`` handle for the edgelight namespace."""

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

    LIB.impl(f"{name}.out", out_kernel, "CPU")
    LIB.impl(f"{name}.out", lambda x, *args, out: out, "Meta")
