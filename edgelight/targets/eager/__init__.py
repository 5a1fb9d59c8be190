"""PyTorch eager: the reference runtime every artifact is compared with. Its 'artifact' is a checkpoint.

Not an export target (no exporter): a checkpoint is what ``edgelight train --out DIR`` writes.
"""

from edgelight.targets.base import Runtime, lazy

RUNTIME = Runtime(
    name="eager",
    title="PyTorch eager (reference)",
    suffixes=(".safetensors",),
    make_runner=lazy("edgelight.targets.eager.runner:EagerRunner"),
    runnable_here=lambda: None,
    preload=("torch", "edgelight.models", "edgelight.checkpoint"),
    packages=("torch",),
    color="#4c72b0",
    no_profile="eager is the reference; use torch.profiler for a per-op view",
)
