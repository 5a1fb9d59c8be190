"""Shared CLI plumbing: one place that turns library errors into one line and an exit code."""

import contextlib
import os
import sys
import warnings

import typer

from edgelight.errors import EdgelightError, first_line
from edgelight.utils.logs import quiet_libraries


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors():
    """EdgelightError -> 'error: ...' and its exit code (2: bad input, 1: a failed step); warnings -> one line."""

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
        except EdgelightError as e:  # the only errors with a message meant for the user (edgelight/errors.py)
            if os.environ.get("EDGELIGHT_DEBUG"):
                raise
            fail(str(e), e.exit_code)
        except OSError as e:  # the machine said no (disk full, a file vanished): a failed step, in its words
            if os.environ.get("EDGELIGHT_DEBUG"):
                raise
            fail(str(e), 1)
        except Exception as e:  # noqa: BLE001 (a bug in edgelight or a library: say so, keep the traceback on request)
            if os.environ.get("EDGELIGHT_DEBUG"):
                raise
            fail(f"unexpected {first_line(e)} (set EDGELIGHT_DEBUG=1 for the traceback)", 1)


def echo(message: str) -> None:
    print(message, file=sys.stdout, flush=True)
