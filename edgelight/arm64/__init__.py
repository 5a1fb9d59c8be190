"""The ARM64 lane: the phone's own code paths without a phone.

The aarch64 builds of the runtimes a phone runs (ExecuTorch's C++ runtime with XNNPACK's ARM micro-kernels,
LiteRT's aarch64 interpreter) and edgelight's cross-compiled kernels run on this machine under qemu-user, with
the emulated core chosen per run (cortex-a55, cortex-a76, max, ...: it decides which micro-kernels XNNPACK
picks). Outputs are real ARM outputs; times are emulated, never phone time, and every record says so.

- ``env``: the cached aarch64 environment (``edgelight device setup arm64``)
- ``lane``: running a bench job there; ``verify``: ARM vs x86 vs PyTorch for exported artifacts
"""
