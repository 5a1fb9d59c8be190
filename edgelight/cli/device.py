import json
from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Set up and inspect the emulated devices (the ARM64 lane).")
KINDS = ("arm64",)


def _check_kind(kind: str) -> None:
    from edgelight.errors import UsageError

    if kind not in KINDS:
        raise UsageError(f"unknown device environment '{kind}'; choose one of: {', '.join(KINDS)}")


@app.command("setup")
def setup_command(
    kind: Annotated[str, typer.Argument(help="arm64: a Debian arm64 userland, the aarch64 runtime wheels and edgelight's cross-compiled kernels, run under qemu-user")],
    force: Annotated[bool, typer.Option(help="rebuild every step, even the ready ones")] = False,
    mirror: Annotated[str, typer.Option(help="the Debian mirror debootstrap downloads from")] = "http://deb.debian.org/debian",
) -> None:
    """Build the cached aarch64 environment once (about a minute; idempotent, resumable after an interrupt)."""
    from edgelight.arm64 import env

    with user_errors():
        _check_kind(kind)
        from rich.console import Console

        console = Console(stderr=True)
        built = env.setup(mirror=mirror, force=force, say=echo, busy=lambda text: console.status(text))
        echo(f"arm64: ready in {built.root} (use --device arm64-qemu[:CPU] with edgelight bench and edgelight verify)")


@app.command("status")
def status_command(kind: Annotated[str, typer.Argument(help="arm64")] = "arm64") -> None:
    """What the environment has: each step ready, missing, stale or interrupted, and the emulated CPUs."""
    from edgelight.arm64 import env

    with user_errors():
        _check_kind(kind)
        missing = env.missing_tools()
        state = env.Arm64Env(env.home()).state()
        echo(json.dumps({"root": str(env.home()), "steps": state, "missing_tools": missing, "cpus": [] if "qemu-aarch64-static" in missing else env.qemu_cpus()}, indent=1))
        if missing or any(v != "ready" for v in state.values()):
            raise typer.Exit(1)


def verify_command(
    artifacts: Annotated[list[Path], typer.Argument(help=".pte and .tflite files with their sidecars", show_default=False)],
    device: Annotated[str, typer.Option(help="arm64-qemu[:CPU], e.g. arm64-qemu:cortex-a76 or arm64-qemu:max")] = "arm64-qemu",
    checkpoint: Annotated[str | None, typer.Option(help="the checkpoint (folder or built-in model name) the artifacts were exported from; default: the built-in one")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the reports to this file")] = None,
    timeout: Annotated[float, typer.Option(help="seconds allowed per artifact on the device")] = 900.0,
) -> None:
    """Run artifacts on the ARM builds of their runtimes and compare with PyTorch and with the x86 run."""
    from edgelight.arm64.verify import verify_on_device
    from edgelight.utils.files import write_json

    with user_errors():
        def show(r: dict) -> None:
            x86, ref, acc = r.get("vs_x86") or {}, r.get("vs_reference") or {}, r.get("accuracy") or {}
            figures = (f"vs x86: top-1 agreement {x86['top1_agreement']:.2%}, max |diff| {x86['max_abs_diff']:.3g}, {'bit-exact' if x86['bit_exact'] else 'not bit-exact'}" if x86 else "")
            figures += f"; vs PyTorch: agreement {ref['top1_agreement']:.2%}, max |diff| {ref['max_abs_diff']:.3g}" if ref else ""
            figures += f"; accuracy {acc['arm']:.2%} (x86 {acc['x86']:.2%})" if acc.get("arm") is not None else ""
            problems = f" -- {'; '.join(r['problems'])}" if r["problems"] else ""
            echo(f"{Path(r['artifact']).name:<44} {r['status']:<7} {figures}{problems}")

        reports = verify_on_device(artifacts, device=device, checkpoint=checkpoint, timeout=timeout, on_report=show)
        if json_out:
            write_json(json_out, {"device": device, "reports": reports})
            echo(f"reports: {json_out}")
        if any(r["status"] != "passed" for r in reports):
            raise typer.Exit(1)
