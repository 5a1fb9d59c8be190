"""The two kinds of failure the CLI tells apart, and the one place a converter's exception becomes one line.

- ``UsageError``: the user asked for something that cannot be done as asked (a bad name, option, path or
  file); exit 2. It is a ``ValueError``, so library callers can catch it the usual way.
- ``StepError``: a step that was asked for correctly failed (a lowering, a verification, a device); exit 1.

Anything else reaching the CLI is a bug in edgelight or a library: exit 1, with the traceback on request.
"""

import contextlib


class EdgelightError(Exception):
    exit_code = 1


class UsageError(EdgelightError, ValueError):
    exit_code = 2


class StepError(EdgelightError, RuntimeError):
    exit_code = 1


def first_line(e: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (converters raise pages of IR dumps)."""
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextlib.contextmanager
def converter_errors(what: str, error: type[StepError] = StepError):
    """Run a converter: its own exceptions become one ``error`` line naming ``what`` failed; ours pass through."""
    try:
        yield
    except (EdgelightError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 (any converter failure is reported the same way)
        raise error(f"{what} failed: {first_line(e)}") from e
