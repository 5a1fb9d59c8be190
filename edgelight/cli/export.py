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


def parse_floats(text: str | None, what: str) -> tuple[float, ...] | None:
    """'0.5,0.5,0.5' -> (0.5, 0.5, 0.5)."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} takes comma-separated numbers, got '{text}'") from None


def export_command(
    source: Annotated[str, typer.Argument(help="a model name (its built-in checkpoint, else random weights), a checkpoint folder, or FILE.py:BUILD_FN returning your nn.Module", show_default=False)],
    target: Annotated[str, typer.Option("--target", "-t", help="executorch, tflite, coreml or onnx", show_default=False)],
    precision: Annotated[str | None, typer.Option(help="fp32, fp16, w8a8 or w8 (see `edgelight targets`); default: the target's")] = None,
    calib: Annotated[str | None, typer.Option(help="w8a8 calibration data: default the checkpoint's own train split; or digits, NAME:DIR, an image folder, a folder of .npy arrays")] = None,
    verify_data: Annotated[str | None, typer.Option(help="verification data: default the checkpoint's own test split; or digits, NAME:DIR, an image folder")] = None,
    batch: Annotated[int, typer.Option(help="fixed batch size of the artifact")] = 1,
    size: Annotated[int | None, typer.Option(help="input height and width (default: the checkpoint's)")] = None,
    out: Annotated[Path | None, typer.Option(help="artifact path, or a folder for the default name (default: exports/)")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-O", help="target option KEY=VALUE, repeatable; see `edgelight targets`")] = None,
    verify: Annotated[bool, typer.Option(help="run the artifact with its own runtime and compare with PyTorch")] = True,
    threads: Annotated[int, typer.Option(help="runtime threads for verification; 0 = the runtime's default")] = 0,
    in_chans: Annotated[int, typer.Option(help="FILE.py:BUILD_FN only: input channels (when BUILD_FN returns no example input)")] = 3,
    mean: Annotated[str | None, typer.Option(help="FILE.py:BUILD_FN only: per-channel mean, e.g. 0.5,0.5,0.5 (default 0)")] = None,
    std: Annotated[str | None, typer.Option(help="FILE.py:BUILD_FN only: per-channel std (default 1)")] = None,
    labels: Annotated[str | None, typer.Option(help="FILE.py:BUILD_FN only: comma-separated class names (default: the verification folder's, else 0..K-1)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Export a model to a .pte, .tflite, .mlpackage or .onnx, verified by its own runtime, with a JSON sidecar."""
    from edgelight.pipeline import export, export_model
    from edgelight.user_models import is_module_ref, load_build_fn

    with user_errors():
        options = parse_options(option or [])
        if is_module_ref(source):
            import torch

            model, example = load_build_fn(source)
            side = size or 32
            example = example if example is not None else torch.zeros(batch, in_chans, side, side)
            names = labels.split(",") if labels else None
            result = export(model, example, target, precision, calib, verify_data, names, out, parse_floats(mean, "--mean"), parse_floats(std, "--std"),
                            name=Path(source.rpartition(":")[0]).stem, options=options, verify=verify, threads=threads or None)
        else:
            if mean or std or labels:
                raise UsageError("--mean, --std and --labels are for FILE.py:BUILD_FN; a checkpoint carries its own")
            result = export_model(source, target, precision, calib, batch, size, out, options, verify, threads or None, verify_data)
        if as_json:
            echo(json.dumps(result.to_dict(), indent=2, default=str))
            return
        for line in describe(result):
            echo(line)


def targets_command(as_json: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False) -> None:
    """List the export targets with their precisions, options and whether their runtime runs here."""
    from edgelight.cli.models import print_table
    from edgelight.targets import TARGET_NAMES, get_target

    with user_errors():
        targets = [get_target(name) for name in TARGET_NAMES]
        rows = [{"target": t.name, "artifact": t.suffix, "precisions": list(t.precisions), "default_precision": t.default_precision,
                 "options": {k: list(v) for k, v in t.options.items()}, "runs_here": t.runnable_here() is None, "why_not": t.runnable_here()} for t in targets]
        if as_json:
            echo(json.dumps(rows, indent=2))
            return
        print_table(["target", "artifact", "precisions", "options (first = default)", "runs here"],
                    [[r["target"], r["artifact"], ", ".join(r["precisions"]), "\n".join(f"{k}={'|'.join(v)}" for k, v in r["options"].items()),
                      "yes" if r["runs_here"] else f"no: {r['why_not']}"] for r in rows])
