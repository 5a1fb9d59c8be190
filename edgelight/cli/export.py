import json
from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors
from edgelight.errors import UsageError


def parse_options(pairs: list[str]) -> dict[str, str]:
    """['io=int8', 'shift=slices'] -> {'io': 'int8', 'shift': 'slices'}."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"--option takes KEY=VALUE, got '{pair}'")
        options[key.strip()] = value.strip()
    return options


def describe(result) -> list[str]:
    """What a user wants to read after an export: where, how big, what is in it, how well it agrees."""
    v = result.verification
    lines = [f"wrote {result.artifact} ({result.bytes:,} bytes, {result.model} {result.target} {result.precision}, input {result.input_shape})"]
    if result.delegated_fraction is not None:
        lines.append(f"delegated: {result.delegated_fraction:.1%} of the graph's nodes")
    top = sorted(result.op_inventory.items(), key=lambda kv: -kv[1])[:8]
    lines.append("ops: " + ", ".join(f"{k} x{n}" for k, n in top) + (" ..." if len(result.op_inventory) > 8 else ""))
    if v.get("status") == "passed":
        acc = f", accuracy {v['accuracy']:.2%} (PyTorch fp32 {v['reference_accuracy']:.2%})" if v.get("accuracy") is not None else ""
        lines.append(f"verified on {v['samples']} {v['dataset']} images: top-1 agreement {v['top1_agreement']:.2%}, max |diff| {v['max_abs_diff']:.2e} ({v['max_rel_diff']:.1e} relative){acc}")
    elif v.get("status") == "inspected":
        lines.append(f"not run here ({v['reason']}); spec and op inventory read back from the file")
    lines += [f"note: {n}" for n in result.notes]
    lines.append(f"sidecar: {result.sidecar}  ({result.export_seconds:.1f} s)")
    return lines


def export_command(
    source: Annotated[str, typer.Argument(help="a model name (its built-in digits checkpoint, else random weights) or a checkpoint folder", show_default=False)],
    target: Annotated[str, typer.Option("--target", "-t", help="executorch, tflite or coreml", show_default=False)],
    precision: Annotated[str | None, typer.Option(help="fp32, fp16 (Core ML) or int8; default: the target's (Core ML fp16, others fp32)")] = None,
    calib: Annotated[str, typer.Option(help="int8 calibration data: 'digits' (train split) or a folder of .npy arrays / images")] = "digits",
    batch: Annotated[int, typer.Option(help="fixed batch size of the artifact")] = 1,
    size: Annotated[int | None, typer.Option(help="input height and width (default: the checkpoint's)")] = None,
    out: Annotated[Path | None, typer.Option(help="artifact path, or a folder for the default name (default: exports/)")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-O", help="target option KEY=VALUE, repeatable; see `edgelight targets`")] = None,
    verify: Annotated[bool, typer.Option(help="run the artifact on the digits test split and compare with PyTorch")] = True,
    threads: Annotated[int, typer.Option(help="runtime threads for verification; 0 = the runtime's default")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Export a model to a .pte, .tflite or .mlpackage, verified by its own runtime, with a JSON sidecar."""
    from edgelight.export import export_model

    with user_errors():
        result = export_model(source, target, precision, calib, batch, size, out, parse_options(option or []), verify, threads or None)
        if as_json:
            echo(json.dumps(result.to_dict(), indent=2, default=str))
            return
        for line in describe(result):
            echo(line)


def targets_command() -> None:
    """List the export targets with their precisions, options and whether their runtime runs here."""
    from rich.console import Console
    from rich.table import Table

    from edgelight.targets import TARGET_NAMES, get_target

    with user_errors():
        table = Table("target", "artifact", "precisions", "options (first = default)", "runs here")
        for name in TARGET_NAMES:
            t = get_target(name)
            options = "\n".join(f"{k}={'|'.join(v)}" for k, v in t.options.items())
            why = t.runnable_here()
            table.add_row(name, t.suffix, ", ".join(t.precisions), options, "yes" if why is None else f"no: {why}")
        Console().print(table)
