"""The README's main job on the built-in digits checkpoints: export, verify, benchmark, report.

``quickstart()`` exports every committed checkpoint to every target (the cells below), verifies each
artifact with its own runtime, benchmarks everything that runs on this host next to the eager PyTorch
reference, and writes ``OUT/results.json`` plus ``OUT/report/{report.md,report.html,pareto.png}``.
A cell that fails is reported and the rest goes on; the summary says which.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# (target, precision) per artifact: every target, the precision a user ships first, and int8 where it runs here
CELLS = (("executorch", "fp32"), ("executorch", "int8"), ("tflite", "fp32"), ("tflite", "int8"), ("coreml", "fp16"))


@dataclass
class QuickstartResult:
    out_dir: Path
    exports: list = field(default_factory=list)  # ExportResult of each cell that exported
    failures: list[str] = field(default_factory=list)  # "model target precision: why"
    records: list[dict] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out_dir / "report" / "report.html"


def builtin_models() -> list[str]:
    from edgelight.checkpoint import PRETRAINED_DIR, builtin_checkpoint_dir

    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if builtin_checkpoint_dir(p.name)) if PRETRAINED_DIR.is_dir() else []


def quickstart(out_dir: Path = Path("quickstart"), models: list[str] | None = None, cells=CELLS, runs: int = 20, warmup: int = 5,
               threads: int = 1, progress: bool = True, say: Callable[[str], None] = print) -> QuickstartResult:
    from edgelight.bench.harness import run_bench
    from edgelight.checkpoint import builtin_checkpoint_dir
    from edgelight.export import export_model

    out_dir = Path(out_dir)
    models = models or builtin_models()
    if not models:
        raise FileNotFoundError("no built-in checkpoints found in edgelight/pretrained (is the package installed whole?)")
    result = QuickstartResult(out_dir)
    artifacts = []
    for n, model in enumerate(models, 1):
        ckpt = builtin_checkpoint_dir(model)
        if ckpt is None:
            raise ValueError(f"'{model}' has no built-in checkpoint; built in: {', '.join(builtin_models())}")
        artifacts.append(ckpt)  # the eager PyTorch reference
        for target, precision in cells:
            say(f"[{n}/{len(models)}] export {model} -> {target} {precision}")
            try:
                exported = export_model(str(ckpt), target, precision, out=out_dir / "artifacts", threads=threads)
            except Exception as e:  # noqa: BLE001 (one failed cell is a finding to report, not the end of the run)
                result.failures.append(f"{model} {target} {precision}: {e}")
                say(f"  failed: {e}")
                continue
            v = exported.verification
            figures = f"top-1 agreement {v['top1_agreement']:.2%}, accuracy {v['accuracy']:.2%}" if v.get("status") == "passed" else v.get("reason", v["status"])
            say(f"  {exported.artifact.name}: {exported.bytes / 1024:.0f} KB, {figures}")
            result.exports.append(exported)
            artifacts.append(exported.artifact)
    say(f"benchmark {len(artifacts)} artifacts ({runs} timed runs after {warmup} warm-up, {threads} thread(s), each in its own process)")
    result.records = run_bench(artifacts, threads=threads, warmup=warmup, runs=runs, json_out=out_dir / "results.json",
                               report_dir=out_dir / "report", progress=progress, command="edgelight quickstart")
    return result
