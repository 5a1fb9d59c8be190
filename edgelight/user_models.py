"""The user's own ``nn.Module``: loaded from ``my_module.py:build_fn`` and checked traceable before lowering.

``torch.export`` failures run to pages; the user needs the line of their ``forward`` that did it and the
first line of why. Loading a module file runs it: that is the point (it is the user's code, named by them).
"""

import contextlib
import importlib.util
import io
import logging
import sys
import traceback
from pathlib import Path

from edgelight.errors import UsageError, first_line


class ModuleExportError(UsageError):
    """A user module that cannot be built, traced or classified as given."""


def is_module_ref(source: str) -> bool:
    path, sep, fn = source.rpartition(":")
    return bool(sep and fn and path.endswith(".py"))


def load_build_fn(ref: str):
    """``path/to/file.py:build_fn`` -> the module (and example input, when build_fn returns one) it builds."""
    import torch

    path, _, fn_name = ref.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise ModuleExportError(f"'{file}' does not exist (expected FILE.py:FUNCTION)")
    spec = importlib.util.spec_from_file_location(f"edgelight_user_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 (their file's error, with where it happened)
        raise ModuleExportError(f"'{file}' failed to import: {first_line(e)}{_where(e, file)}") from None
    finally:
        sys.path.pop(0)
    build = getattr(module, fn_name, None)
    if not callable(build):
        found = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
        raise ModuleExportError(f"'{file}' has no function '{fn_name}' (it defines: {', '.join(found) or 'nothing callable'})")
    try:
        built = build()
    except Exception as e:  # noqa: BLE001
        raise ModuleExportError(f"{ref}() failed: {first_line(e)}{_where(e, file)}") from None
    model, example = built if isinstance(built, tuple) and len(built) == 2 else (built, None)
    if not isinstance(model, torch.nn.Module):
        raise ModuleExportError(f"{ref}() must return an nn.Module (or (module, example_input)), got {type(model).__name__}")
    return model, example


def _where(e: BaseException, prefer: Path | None = None) -> str:
    """' at FILE:LINE in FUNC: `code`' for the deepest frame outside torch and edgelight (the user's line)."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "site-packages" not in f.filename and "/torch/" not in f.filename and "/edgelight/" not in f.filename and not f.filename.startswith("<")]
    if prefer is not None:
        mine = [f for f in mine if Path(f.filename).resolve() == prefer.resolve()] or mine
    if not mine:
        return ""
    f = mine[-1]
    return f" at {Path(f.filename).name}:{f.lineno} in {f.name}" + (f": `{f.line.strip()}`" if f.line else "")


@contextlib.contextmanager
def _quiet():
    """torch.export logs the failing graph (pages of it) before raising; the error line below says what matters."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def check_exportable(model, example, name: str, labels: list[str] | None) -> list[str]:
    """Run and trace the module once; returns the class labels (given, or 0..K-1 from its output)."""
    import torch

    try:
        with torch.no_grad():
            out = model(example)
    except Exception as e:  # noqa: BLE001
        raise ModuleExportError(f"{name} fails on an input of shape {list(example.shape)}: {first_line(e)}{_where(e)}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != example.shape[0]:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModuleExportError(f"{name} must return logits [N, classes] for an input [N, C, H, W]; it returned {got}")
    try:
        with _quiet():
            torch.export.export(model, (example,), strict=False)
    except Exception as e:  # noqa: BLE001 (torch.export's many error types all mean "not traceable as written")
        raise ModuleExportError(f"{name} cannot be exported by torch.export: {first_line(e, 240)}{_where(e)}") from None
    classes = list(labels) if labels is not None else [str(i) for i in range(out.shape[1])]
    if len(classes) != out.shape[1]:
        raise ModuleExportError(f"{len(classes)} labels for {out.shape[1]} outputs of {name}")
    return [str(c) for c in classes]
