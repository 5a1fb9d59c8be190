"""The `edgelight` command: thin typer commands over library functions.

Every user mistake becomes one clear line on stderr and a non-zero exit (2 for bad
arguments, 1 for failures), never a traceback.
"""

from typing import Annotated

import typer

from edgelight.cli import bench, bundle, device, export, models, quickstart, train

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich", help="edgelight: parameter-efficient CNNs from the paper to the phone.")
app.command("quickstart")(quickstart.quickstart_command)
app.command("models")(models.models_command)
app.command("train")(train.train_command)
app.command("eval")(train.eval_command)
app.command("export")(export.export_command)
app.command("targets")(export.targets_command)
app.command("bench")(bench.bench_command)
app.command("bundle")(bundle.bundle_command)
app.command("verify")(device.verify_command)
app.add_typer(device.app, name="device")


def _version(value: bool) -> None:
    if value:
        from edgelight import __version__

        typer.echo(f"edgelight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False) -> None:
    """edgelight: parameter-efficient CNNs from the paper to the phone."""


def main() -> None:
    """Run the app; a command-line mistake is one `error:` line too (not the boxed usage panel), exit 2."""
    # typer's click exceptions (typer vendors click); BadParameter, MissingParameter, NoSuchOption... derive from it
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        code = app(standalone_mode=False)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `edgelight`: the help, as before
            typer.echo(e.ctx.get_help())
            code = 0
        else:
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
            typer.secho(f"error: {e.format_message()}{where}", err=True, fg=typer.colors.RED)
            code = 2
    except typer.Abort:  # Ctrl-C while the parser itself was reading input
        typer.secho("error: interrupted", err=True, fg=typer.colors.RED)
        code = 130
    raise SystemExit(code if isinstance(code, int) else 0)
