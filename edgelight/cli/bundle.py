"""`edgelight bundle`: copy exported models, labels and preprocessing into the Android or iOS demo app."""

from pathlib import Path
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors


def bundle_command(
    artifacts: Annotated[list[Path], typer.Argument(help="Exported .pte / .tflite / .mlpackage files, each with its .json sidecar beside it.")],
    app: Annotated[str, typer.Option("--app", help="Which demo app: android or ios.")],
    app_dir: Annotated[Path | None, typer.Option("--app-dir", help="The app folder (default: android_demo/ or ios_demo/ of this checkout).")] = None,
) -> None:
    """Copy artifacts into a demo app and update the manifest it reads at start."""
    from edgelight.apps.bundle import bundle

    with user_errors():
        written = bundle(artifacts, app, app_dir)
    for path in written:
        echo(str(path))
