"""Keeping the runtimes' chatter out of the user's terminal, and quoting it when something fails."""

import contextlib
import ctypes
import logging
import os
import sys
import tempfile

# Libraries that log import-time chatter (optional extensions, untested-version notes) at WARNING.
NOISY_LOGGERS = ("coremltools", "torchao", "torch.utils._pytree", "executorch", "absl", "jax", "litert_torch", "ai_edge_litert")


def quiet_libraries() -> None:
    """Keep the runtimes' import-time logging out of the user's terminal (targets capture their converters' output)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT's C++ INFO lines


@contextlib.contextmanager
def native_log():
    """Collect what native runtime code writes to stderr (fd 2) while the block runs.

    The runtimes log CPU probing and delegate creation on every load; a runner keeps that out of
    the user's terminal and quotes the collected lines only when a load fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            # what a library left buffered (C stdio, or Python's sys.stderr that pybind11 redirects into: LiteRT's
            # logger) must land in the sink, not in the terminal later
            sys.stderr.flush()
            _flush_c_streams()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(ln.strip() for ln in sink.read().decode(errors="replace").splitlines() if ln.strip())


def _flush_c_streams() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def quote_errors(lines: list[str], limit: int = 2) -> str:
    """The last error-looking lines of a native log, for a one-line message."""
    errors = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "invalid", "unsupported"))]
    return "; ".join(errors[-limit:])
