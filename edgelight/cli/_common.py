"""Shared CLI plumbing: one place that turns library errors into one line and an exit code."""

import contextlib
import os
import sys
import warnings

import typer

from edgelight.targets.base import quiet_libraries

STEP_ERRORS = ("TargetError", "VerificationError", "NativeKernelsError", "DeviceError")  # a step that failed: exit 1
USAGE_ERRORS = ("UnknownModelError", "DataError", "CheckpointError", "ValueError", "FileNotFoundError", "FileExistsError", "PermissionError", "IsADirectoryError", "NotADirectoryError")




def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors():
    """Known errors -> 'error: ...' and exit 2 (bad input) or 1 (a step that failed); warnings -> one line."""

    def show(message, category, *args, **kwargs):
        typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)

    quiet_libraries()
    with warnings.catch_warnings():
        warnings.showwarning = show
        # the libraries' deprecation chatter is for their maintainers; edgelight's own warnings are for the user
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"edgelight(\.|$)")
        try:
            yield
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as e:  # noqa: BLE001 (classified below; anything unknown is re-raised)
            name = type(e).__name__
            if name in USAGE_ERRORS or isinstance(e, (ValueError, OSError)):
                fail(str(e), 2)
            if name in STEP_ERRORS:
                fail(str(e), 1)
            if os.environ.get("EDGELIGHT_DEBUG"):
                raise
            fail(f"unexpected {name}: {e} (set EDGELIGHT_DEBUG=1 for the traceback)", 1)


def echo(message: str) -> None:
    print(message, file=sys.stdout, flush=True)
