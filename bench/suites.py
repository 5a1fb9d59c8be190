"""Benchmark suites: models x targets x precisions, the source of the project's comparison tables.

Each suite is run by ``python bench/run_suite.py NAME``; its records land in
``bench/results/NAME.json`` together with the command that produced them.
"""

from dataclasses import dataclass, field

from edgelight.targets import export_targets

ALL_TARGETS = {r.name: r.benched for r in export_targets()}  # every target, the precisions its record benchmarks


@dataclass(frozen=True)
class Suite:
    models: tuple[str, ...]
    targets: dict = field(default_factory=lambda: dict(ALL_TARGETS))  # target -> precisions
    eager: bool = True  # also measure the eager PyTorch reference from the checkpoint
    runs: int = 50
    warmup: int = 10
    threads: int = 1  # one thread: comparable across hosts and the shared CI box

    def cells(self) -> list[tuple[str, str, str]]:
        return [(m, t, p) for m in self.models for t, ps in self.targets.items() for p in ps]


SUITES = {
    # a minute on a laptop: one built-in model through every target
    "smoke": Suite(models=("shiftresnet-20-e3",), targets={"executorch": ("fp32",), "tflite": ("fp32",), "coreml": ("fp16",)}, runs=20, warmup=5),
    # the built-in digits checkpoints through every target and precision: what to ship, by the numbers
    "builtin": Suite(models=("lrunet-14-1x", "mobilenetv2-cifar-050", "shiftresnet-20-e3"), targets={"executorch": ("fp32", "w8a8"), "tflite": ("fp32", "w8a8"), "coreml": ("fp16", "w8")}),
    # the fourth target next to the two it competes with on Android, fp32 and w8a8 (docs/targets/onnx.md)
    "onnx": Suite(models=("shiftresnet-20-e3", "resnet-20", "lrunet-4-1x"), targets={t: ("fp32", "w8a8") for t in ("executorch", "tflite", "onnx")}, runs=30, warmup=5),
    # the paper's parameter-efficiency story: reuse (LruNet) vs shift vs depthwise at CIFAR scale
    "cifar-efficient": Suite(models=("lrunet-1-1x", "lrunet-4-1x", "lrunet-8-1x", "shiftresnet-20-e1", "shiftresnet-20-e3", "resnet-20", "mobilenetv2-cifar-050")),
}
